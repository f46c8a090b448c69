#!/usr/bin/env bash
# Builds the browser version of the wgmd viewer into web/dist/ (index.html + wgmd.js +
# wgmd_bg.wasm), from a clean clone. Needs the wasm32 target and the wasm-bindgen CLI of the
# exact version in Cargo.lock:
#   rustup target add wasm32-unknown-unknown
#   cargo install wasm-bindgen-cli --version "$(the version below)"
# Serve the folder with any static file server, e.g. `python3 -m http.server -d web/dist 8080`,
# and open http://127.0.0.1:8080/ in a browser with WebGPU.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$want" ]; then
    echo "web/build.sh: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
if ! command -v wasm-bindgen >/dev/null 2>&1; then
    echo "web/build.sh: wasm-bindgen is not installed: cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
have=$(wasm-bindgen --version | awk '{ print $2 }')
if [ "$have" != "$want" ]; then
    echo "web/build.sh: wasm-bindgen $have is installed but Cargo.lock has $want: cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "web/build.sh: the wasm32 target is missing: rustup target add wasm32-unknown-unknown" >&2
    exit 1
fi

target_dir=${CARGO_TARGET_DIR:-target}
# The library as a cdylib for the browser only (native builds stay rlib-only). The
# wasm-release profile (Cargo.toml) trades a little speed for build time and size.
cargo rustc --lib --target wasm32-unknown-unknown --profile wasm-release --crate-type cdylib
out=web/dist
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$out.tmp" --out-name wgmd \
    "$target_dir/wasm32-unknown-unknown/wasm-release/wgmd.wasm"
cp web/index.html "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "web/build.sh: built $out ($(du -sh "$out" | cut -f1)); serve it with: python3 -m http.server -d $out 8080"
