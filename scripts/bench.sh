#!/usr/bin/env bash
# Ingest throughput benchmark on SQLite and PostgreSQL, single and composite
# posts (benches/ingest.rs): rates and latencies, the HTTP ceiling they are
# judged against, and the bytes written to disk per stored value. Installs
# what is missing (scripts/setup.sh), starts PostgreSQL if needed
# (scripts/postgres.sh), builds the release server (through cargo bench),
# then runs the bench; arguments pass through:
#   ./scripts/bench.sh --backend sqlite --kind single --duration 5
#   ./scripts/bench.sh --backend sqlite --connections 8
#   ./scripts/bench.sh --backend sqlite --server NEW --server OLD   (side by side)
#   ./scripts/bench.sh --help
# Exits non-zero when a post was refused or an acknowledged value is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
log() { printf '\033[1;34m[bench]\033[0m %s\n' "$*" >&2; }

bash scripts/setup.sh || { log "setup failed"; exit 1; }
bash scripts/postgres.sh || { log "PostgreSQL is not available"; exit 1; }
export FLOWNEXUS_TEST_PG_URL="${FLOWNEXUS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

# Schemas left behind by killed bench runs.
psql "$FLOWNEXUS_TEST_PG_URL" -Atqc \
  "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'fxb\_%'" \
  | psql "$FLOWNEXUS_TEST_PG_URL" -q >/dev/null 2>&1 || true

# `cargo bench` builds the release server binary too (bins are built for
# benches) and puts it at target/release/flownexus, where the bench starts it.
# A separate `cargo build --release --bin flownexus` first would be overwritten
# by that build and, since the bench's dev-dependencies change the feature
# set and the cdylib lib output has no hash in its name, each of the two
# builds would recompile the flownexus crate every time (about 2 min each
# on 2 cores).
log "building the release server and the bench"
cargo bench --features ssr --bench ingest --no-run
log "running the benchmark"
exec cargo bench --features ssr --bench ingest -- "$@"
