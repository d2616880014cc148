#!/usr/bin/env bash
# Real third-party clients against a running Gatehouse: the official MCP TypeScript SDK
# (discovery → registration → consent → token → tools → refresh → revoke) and a headless
# Chromium that signs in and approves consent. Installs what it needs (npm packages from
# the lockfile, Debian's chromium) and starts its own server on a free port.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null 2>&1 || { echo "error: Node.js 20+ is required for the e2e tests" >&2; exit 1; }
if [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo build --locked -q -p gatehouse-server --bin gatehouse
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/gatehouse"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
data="$(mktemp -d)"
log="$data/server.log"
"$bin" server --http-address "127.0.0.1:$port" --access-url "$base" --data-dir "$data" \
  --experiments mcp-server-http --provisioner-daemons 0 >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 50); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$base/healthz" >/dev/null || { echo "error: the server did not start" >&2; cat "$log" >&2; exit 1; }

email="e2e-admin@example.com"
password="SomeSecurePassword!"
curl -fs -X POST "$base/api/v2/users/first" \
  -d "{\"email\":\"$email\",\"username\":\"e2e-admin\",\"password\":\"$password\"}" >/dev/null

failed=0
for script in mcp-client.mjs browser-consent.mjs; do
  echo "== e2e: $script"
  if ! node "$script" "$base" "$email" "$password"; then
    failed=$((failed + 1))
    echo "e2e: $script FAILED" >&2
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "--- server log ---" >&2
  tail -n 50 "$log" >&2
  exit 1
fi
