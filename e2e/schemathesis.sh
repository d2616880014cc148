#!/usr/bin/env bash
# Schema-driven API testing (issue #9): schemathesis (PyPI, pinned) generates requests from
# GET /api/v2/openapi.json and sends them to a running server as its owner, through every
# phase (coverage, fuzzing, stateful). Zero failures means: no 5xx, and every response's
# status code, content type, headers and body match what the document says.
#
# Usage: e2e/schemathesis.sh [max-examples]   (default 25; the seed is fixed, so a run is
#        reproducible — SCHEMATHESIS_SEED=<n> picks another)
set -euo pipefail
cd "$(dirname "$0")"

examples="${1:-25}"
seed="${SCHEMATHESIS_SEED:-20261129}"
version="4.32.5"

if [ ! -x .venv/bin/schemathesis ] || ! .venv/bin/schemathesis --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==$version"
fi

source ./server.sh
# Rate limits off: thousands of generated requests would otherwise be 429s, not tests.
"$bin" server --http-address "127.0.0.1:$port" --access-url "$base" --data-dir "$data" \
  --experiments mcp-server-http --provisioner-daemons 0 --dangerous-disable-rate-limits >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 50); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

email="schemathesis@example.com"
password="SomeSecurePassword!"
curl -fs -X POST "$base/api/v2/users/first" \
  -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"username\":\"schemathesis\",\"password\":\"$password\"}" >/dev/null
session="$(curl -fs -X POST "$base/api/v2/users/login" -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')"
# A named API token, so a generated logout cannot end the run's own session.
token="$(curl -fs -X POST "$base/api/v2/users/me/keys/tokens" -H "Coder-Session-Token: $session" \
  -H 'Content-Type: application/json' -d '{"token_name":"schemathesis"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"

# Left out: logout (it would end the session under test) and the CPU profile (it samples
# for 30 s by design).
if .venv/bin/schemathesis run "$base/api/v2/openapi.json" \
  --header "Coder-Session-Token: $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$examples" --seed "$seed" \
  --exclude-path /api/v2/users/logout --exclude-path /api/v2/debug/pprof/profile \
  --no-color; then
  echo "schemathesis: every generated request answered as documented, no 5xx: passed"
else
  echo "--- server log ---" >&2
  tail -n 50 "$log" >&2
  echo "schemathesis: FAILED"
  exit 1
fi
