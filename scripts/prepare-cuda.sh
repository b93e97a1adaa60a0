#!/usr/bin/env bash
# Prepares, offline from any download site but PyPI, the static LLVM 23 that burn's CUDA
# backend links: cubecl-cuda depends on cubecl-llvm, whose build dependency
# tracel-llvm-bundler downloads a prebuilt LLVM at build time unless its cache prefix
#   ${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-<bundler version>/
# holds the sentinel file .tracel-llvm-installed; cubecl-llvm then links the prefix's LLVM
# statically through its bin/llvm-config. This script points that prefix (a symlink) at
# the relocatable static LLVM 23.1 SDK from PyPI (mlc-llvm-static, plus the package that
# holds the NVPTX target). Idempotent; never touches a prefix it did not make.
#
#   scripts/prepare-cuda.sh && cargo build --release --features cuda
#
# On a machine with internet access none of this is needed: the bundler downloads its own.
# Needs python3 with pip (and g++ for the build). AEVB_LLVM_SDK_DIR moves the SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLER_EXPECTED="23.1.0-4"          # LLVM 23.1, release 4
SDK_VERSION="23.1.1.post0"           # PyPI: mlc-llvm-static(-extra-targets)

bundler=$(awk '$0 == "name = \"tracel-llvm-bundler\"" { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if [ -z "$bundler" ]; then
    echo "error: Cargo.lock has no tracel-llvm-bundler; is this the aevb repository?" >&2
    exit 1
fi
if [ "$bundler" != "$BUNDLER_EXPECTED" ]; then
    echo "error: Cargo.lock has tracel-llvm-bundler $bundler, but this script prepares LLVM for $BUNDLER_EXPECTED;" >&2
    echo "       check which LLVM the new bundler wants, then update BUNDLER_EXPECTED and SDK_VERSION here" >&2
    exit 1
fi

data="${XDG_DATA_HOME:-$HOME/.local/share}"
prefix="$data/tracel/tracel-llvm-$bundler"
sdk="${AEVB_LLVM_SDK_DIR:-$data/aevb/mlc-llvm-static-$SDK_VERSION}"
static="$sdk/mlc_llvm_static/static"

if [ -e "$prefix" ] && [ ! -L "$prefix" ]; then
    echo "$prefix exists and was not made by this script (a bundler download?); left as it is"
    exit 0
fi

if [ ! -x "$static/bin/llvm-config" ]; then
    echo "installing the static LLVM $SDK_VERSION SDK from PyPI into $sdk (about 90 MiB)"
    rm -rf "$sdk.partial"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$sdk.partial" \
        "mlc-llvm-static==$SDK_VERSION" "mlc-llvm-static-extra-targets==$SDK_VERSION"
    rm -rf "$sdk"
    mv "$sdk.partial" "$sdk"
fi

version=$("$static/bin/llvm-config" --version)
case "$version" in
    23.*) ;;
    *) echo "error: $static has LLVM $version; the bundler $bundler needs LLVM 23" >&2; exit 1 ;;
esac
if ! "$static/bin/llvm-config" --targets-built | tr ' ' '\n' | grep -qx NVPTX; then
    echo "error: $static lacks the NVPTX target (is mlc-llvm-static-extra-targets installed?)" >&2
    exit 1
fi

# Change nothing that is already right: the bundler's build script reruns when the
# sentinel's mtime changes, and with it the whole CUDA chain recompiles (~20 minutes).
mkdir -p "$(dirname "$prefix")"
if [ "$(readlink "$prefix" || true)" != "$static" ]; then
    ln -sfn "$static" "$prefix"
fi
if [ ! -e "$prefix/.tracel-llvm-installed" ]; then
    touch "$prefix/.tracel-llvm-installed"
fi
echo "ready: $prefix -> $static (LLVM $version with NVPTX)"
