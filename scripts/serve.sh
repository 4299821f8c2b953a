#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh), builds the release site and
# server, and starts flownexus on the embedded SQLite database under data/.
# Settings: Leptos.toml, overridden by FLOWNEXUS_* environment variables.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
bash scripts/setup.sh
cargo leptos build --release
exec target/release/flownexus serve
