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
python3 -c 'import prometheus_client' 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore prometheus-client
if ! command -v chromium >/dev/null 2>&1 || ! command -v certutil >/dev/null 2>&1; then
  echo "installing Debian's chromium and NSS tools (certutil) for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libnss3-tools >/dev/null
fi

source ./server.sh
source ./tls.sh
# The clients meet Gatehouse over HTTPS, as in a deployment: its own listener with a
# certificate from a throwaway CA, which each client trusts the way it trusts a private
# CA (curl --cacert, Node's NODE_EXTRA_CA_CERTS, Chromium's NSS database). Nothing turns
# verification off. Plain HTTP beside it is redirected to the https access URL.
make_test_ca "$data/tls"
tls_port="$(free_port)"
plain="http://127.0.0.1:$port"
base="https://localhost:$tls_port"
metrics_port="$(free_port)"
"$bin" server --http-address "127.0.0.1:$port" --access-url "$base" --data-dir "$data" \
  --tls-enable=true --tls-address "127.0.0.1:$tls_port" \
  --tls-cert-file "$data/tls/server.crt" --tls-key-file "$data/tls/server.key" \
  --experiments mcp-server-http --provisioner-daemons 0 \
  --prometheus-enable --prometheus-address "127.0.0.1:$metrics_port" >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
export NODE_EXTRA_CA_CERTS="$data/tls/ca.pem"
curl() { command curl --cacert "$data/tls/ca.pem" "$@"; }
for _ in $(seq 1 50); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$base/healthz" >/dev/null || { echo "error: the server did not start" >&2; cat "$log" >&2; exit 1; }
redirected="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$plain/api/v2/buildinfo")"
[ "$redirected" = "307 $base/api/v2/buildinfo" ] \
  || { echo "error: plain HTTP was not redirected to the access URL: $redirected" >&2; exit 1; }
# Chromium reads trust anchors from the NSS database under $HOME: a fresh one for this run.
browser_home="$data/browser-home"
mkdir -p "$browser_home/.pki/nssdb"
certutil -d "sql:$browser_home/.pki/nssdb" -N --empty-password
certutil -d "sql:$browser_home/.pki/nssdb" -A -t "C,," -n gatehouse-e2e-ca -i "$data/tls/ca.pem"

email="e2e-admin@example.com"
password="SomeSecurePassword!"
curl -fs -X POST "$base/api/v2/users/first" \
  -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"username\":\"e2e-admin\",\"password\":\"$password\"}" >/dev/null

failed=0
for script in mcp-client.mjs browser-consent.mjs; do
  echo "== e2e: $script (over $base)"
  if ! HOME="$browser_home" node "$script" "$base" "$email" "$password"; then
    failed=$((failed + 1))
    echo "e2e: $script FAILED" >&2
  fi
done
# Traffic of every label kind, then the real Prometheus text parser reads the metrics.
echo "== e2e: prometheus_check.py"
session="$(curl -fs -X POST "$base/api/v2/users/login" -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')"
curl -fs -o /dev/null "$base/api/v2/users/me" -H "Coder-Session-Token: $session"
curl -s -o /dev/null "$base/api/v2/nope/AAAA"
curl -s -o /dev/null "$base/gatehouse-e2e-static"
curl -fs -o /dev/null "$base/.well-known/oauth-protected-resource/api/experimental/mcp/http"
curl -s -o /dev/null -X POST "$base/oauth2/tokens" -d grant_type=authorization_code
if ! python3 prometheus_check.py "http://127.0.0.1:$metrics_port/metrics"; then
  failed=$((failed + 1))
  echo "e2e: prometheus_check.py FAILED" >&2
fi

# Schema-driven testing, against a server of its own (rate limits off).
echo "== e2e: schemathesis.sh"
if ! bash schemathesis.sh; then
  failed=$((failed + 1))
  echo "e2e: schemathesis.sh FAILED" >&2
fi

if [ "$failed" -ne 0 ]; then
  echo "--- server log ---" >&2
  tail -n 50 "$log" >&2
  exit 1
fi
