#!/usr/bin/env bash
# The whole test suite: formatting, clippy (server and wasm), the Playwright
# end-to-end tests against the release build in Debian Chromium, and the Rust
# unit and integration tests on SQLite and PostgreSQL. Installs what is
# missing first (scripts/setup.sh) and starts PostgreSQL if it is not running.
# Ends with cargo-nextest's summary; exits non-zero if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
log() { printf '\033[1;34m[test]\033[0m %s\n' "$*" >&2; }

bash scripts/setup.sh || { log "setup failed"; exit 1; }
bash scripts/postgres.sh || { log "PostgreSQL is not available"; exit 1; }
export FLOWNEXUS_TEST_PG_URL="${FLOWNEXUS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

failed=()
step() {
  local name="$1"; shift
  log "$name"
  local start=$SECONDS
  if "$@"; then
    log "$name: ok ($((SECONDS - start)) s)"
  else
    log "$name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

step "cargo fmt --check" cargo fmt --all -- --check
step "clippy (server)" cargo clippy --features ssr --all-targets -- -D warnings
step "clippy (browser, wasm32)" cargo clippy --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings

e2e() {
  # `cargo leptos end-to-end` builds the server and the front (once: a
  # `cargo leptos build` before it generated the front's JS and WASM a
  # second time) and starts the server; Playwright's global setup then
  # makes the tests' device token with the server's CLI.
  local data port
  data="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  export FLOWNEXUS_DATA_DIR="$data"
  export FLOWNEXUS_LISTEN_ADDR="127.0.0.1:$port"
  # The native LwM2M server on a UDP port of its own (end2end/tests/lwm2m.spec.ts).
  coap_port="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  export FLOWNEXUS_LWM2M_COAP_ADDR="127.0.0.1:$coap_port"
  export FLOWNEXUS_ADMIN_PASSWORD="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export FLOWNEXUS_LOG="warn"
  # The Playwright global setup starts a fake of the LwM2M server's REST API
  # (end2end/fake-leshan.mjs, the documented downlink contract) on this port.
  export FLOWNEXUS_LWM2M_REST_URL="http://127.0.0.1:${FAKE_LESHAN_PORT:-18080}"
  local rc=0
  cargo leptos end-to-end --release || rc=1
  unset FLOWNEXUS_DATA_DIR FLOWNEXUS_LISTEN_ADDR FLOWNEXUS_ADMIN_PASSWORD FLOWNEXUS_LOG FLOWNEXUS_LWM2M_REST_URL FLOWNEXUS_LWM2M_COAP_ADDR
  rm -rf "$data"
  return $rc
}
step "end-to-end (Playwright, release build, Chromium)" e2e

if [ ${#failed[@]} -gt 0 ]; then
  log "failed so far: ${failed[*]}"
fi
log "Rust unit and integration tests (SQLite and PostgreSQL)"
# --release reuses the dependencies the release server build compiled above.
cargo nextest run --release --features ssr --no-fail-fast
rust_rc=$?
if [ ${#failed[@]} -gt 0 ] || [ $rust_rc -ne 0 ]; then
  [ $rust_rc -ne 0 ] && failed+=("rust tests")
  log "FAILED: ${failed[*]}"
  exit 1
fi
exit 0
