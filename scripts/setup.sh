#!/usr/bin/env bash
# Installs everything flownexus needs to build, run and test, idempotently.
# Each step checks whether its work is already done and skips it if so, so a
# warm machine passes through this script in a few seconds.
#
# Why these steps: rustup here has no wasm32 target and cannot download one.
# Debian's rustc-web (1.96) ships its exact std sources, so we build the wasm32
# std with it once and link it into rustup as the "web" toolchain that
# rust-toolchain.toml selects. Tools are installed into ~/.cargo/bin and
# node_modules; nothing is downloaded by cargo-leptos at build time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_LEPTOS_VERSION="0.3.11"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- 1. Debian packages --------------------------------------------------------
APT_PACKAGES=(rustc-web cargo-web libstd-rust-web-dev rust-web-src lld-22
  rustfmt-web rust-web-clippy chromium pkg-config
  libcoap3-bin)  # coap-client: an independent CoAP peer for tests/lwm2m.rs
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v psql >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: all packages present"
fi
if [ ! -e /usr/bin/rust-lld ]; then
  $SUDO ln -sf "$(ls /usr/bin/*lld-22* /usr/lib/llvm-22/bin/lld 2>/dev/null | head -1)" /usr/bin/rust-lld
fi

# --- 2. wasm32 std for the web toolchain --------------------------------------
SYSROOT="$(/usr/bin/rustc --print sysroot)"
WASM_LIB="$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib"
STAMP="$WASM_LIB/.flownexus-std-stamp"
RUSTC_HASH="$(/usr/bin/rustc -vV | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$RUSTC_HASH" ]; then
  log "building the wasm32 std with $(/usr/bin/rustc --version) (about 35 s)"
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/src"
  cat >"$tmp/Cargo.toml" <<'EOF'
[package]
name = "wasmstdbuild"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
[profile.release]
panic = "abort"
EOF
  echo '#![no_std]' >"$tmp/src/lib.rs"
  (cd "$tmp" && RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes RUSTC=/usr/bin/rustc \
    /usr/bin/cargo build -q --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort)
  $SUDO mkdir -p "$WASM_LIB"
  for f in "$tmp"/target/wasm32-unknown-unknown/release/deps/*.rlib; do
    case "$(basename "$f")" in libwasmstdbuild-*) continue ;; esac
    $SUDO cp "$f" "$WASM_LIB/"
  done
  echo "$RUSTC_HASH" | $SUDO tee "$STAMP" >/dev/null
  rm -rf "$tmp"
else
  log "wasm32 std: present"
fi

# --- 3. rustup toolchain "web" -------------------------------------------------
if ! rustup toolchain list | grep -q '^web'; then
  log "linking /usr as rustup toolchain 'web'"
  rustup toolchain link web /usr
else
  log "rustup toolchain web: linked"
fi

# --- 4. cargo tools, built with the web toolchain -------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15-18 min cold)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo +web install -q cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
else
  log "cargo-leptos: $CARGO_LEPTOS_VERSION present"
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly (pinned in Cargo.toml).
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WB_VERSION" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (about 3 min cold)"
  # No --locked: its lockfile pins a webpki-roots this registry lacks.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo +web install -q wasm-bindgen-cli --version "$WB_VERSION"
else
  log "wasm-bindgen-cli: $WB_VERSION present"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo +web install -q cargo-nextest --locked
else
  log "cargo-nextest: present"
fi

# --- 5. npm packages (tailwind, binaryen's wasm-opt, playwright) ----------------
npm_stamp() { { cat package.json; cat package-lock.json 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
if [ ! -d node_modules ] || [ "$(cat node_modules/.flownexus-stamp 2>/dev/null || true)" != "$(npm_stamp)" ]; then
  if [ -f package-lock.json ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    log "npm install"
    npm install --no-audit --no-fund --loglevel=error
  fi
  npm_stamp >node_modules/.flownexus-stamp
else
  log "node_modules: up to date"
fi

# --- 6. independent LwM2M peers for tests/lwm2m_peers.rs ------------------------
# Python: aiocoap (a CoAP stack no one here wrote) and cbor2, for
# tests/peers/aiocoap_device.py, into the machine's python3.
AIOCOAP_VERSION="0.4.17"
CBOR2_VERSION="6.3.0"
py_peers() {
  python3 -c 'from importlib.metadata import version as v; print(v("aiocoap"), v("cbor2"))' 2>/dev/null || true
}
if ! command -v python3 >/dev/null 2>&1; then
  log "apt: installing python3 python3-pip"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
fi
if [ "$(py_peers)" != "$AIOCOAP_VERSION $CBOR2_VERSION" ]; then
  log "pip: installing aiocoap $AIOCOAP_VERSION and cbor2 $CBOR2_VERSION"
  pip_args=(-q --disable-pip-version-check --root-user-action=ignore
    "aiocoap==$AIOCOAP_VERSION" "cbor2==$CBOR2_VERSION")
  # A Debian python3 is "externally managed" (PEP 668); pyenv's is not.
  python3 -m pip install "${pip_args[@]}" 2>/dev/null ||
    python3 -m pip install --break-system-packages "${pip_args[@]}"
else
  log "aiocoap $AIOCOAP_VERSION, cbor2 $CBOR2_VERSION: present"
fi

# npm: lwm2m-node-lib (AGPL; only ever run as a separate process by
# tests/peers/node_client.js), pinned by tests/peers/package-lock.json.
peers_stamp() { cat tests/peers/package.json tests/peers/package-lock.json | sha256sum | cut -d' ' -f1; }
if [ ! -d tests/peers/node_modules ] ||
  [ "$(cat tests/peers/node_modules/.flownexus-stamp 2>/dev/null || true)" != "$(peers_stamp)" ]; then
  log "npm ci in tests/peers (lwm2m-node-lib)"
  (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
  peers_stamp >tests/peers/node_modules/.flownexus-stamp
else
  log "tests/peers/node_modules: up to date"
fi

log "done"
