#!/usr/bin/env bash
# Ingest throughput benchmark on SQLite and PostgreSQL, single and composite
# posts (benches/ingest.rs). Installs what is missing (scripts/setup.sh),
# starts PostgreSQL if needed (scripts/postgres.sh), builds the release
# server, then runs the bench; arguments are passed through, e.g.
#   ./scripts/bench.sh --backend sqlite --kind single --duration 5
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

log "building the release server"
cargo build --release --features ssr --bin flownexus
log "running the benchmark"
exec cargo bench --features ssr --bench ingest -- "$@"
