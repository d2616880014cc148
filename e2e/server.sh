# Sourced by the e2e scripts: builds the server binary ($bin) and picks a free port
# ($port, $base) and a fresh data directory ($data, with the server log at $log).
cargo build --locked -q -p gatehouse-server --bin gatehouse
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/gatehouse"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
base="http://127.0.0.1:$port"
data="$(mktemp -d)"
log="$data/server.log"
