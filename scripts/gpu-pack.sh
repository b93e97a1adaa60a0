#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that reaches no registry, into two
# folders each small enough for one device carry (64 MiB): DIR/main holds the CUDA runner
# (stripped, xz: python3's lzma unpacks it wherever PyTorch is), the MNIST IDX files and the
# PyTorch peer scripts; DIR/numerics the numerical-test binary. Each CUDA binary links the
# static LLVM and CubeCL's kernels (~42 and ~33 MiB as xz), so the two travel in two calls
# on the same warm machine.
#
#   scripts/gpu-pack.sh [DIR]        default DIR: target/gpu-carry (ignored by git)
#
# Inputs (environment): AEVB_MNIST (default ../shared/data/mnist), AEVB_PEER (default
# ../shared/peer); AEVB_PACK_BUILD=0 packs the binaries already built instead of building;
# AEVB_PACK_CPU=1 packs a CPU build (for the rehearsal with GPU_CHECK_BACKEND=cpu).
# Prints the sizes and the command that runs the check on the device.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/gpu-carry}
mnist=${AEVB_MNIST:-../shared/data/mnist}
peer=${AEVB_PEER:-../shared/peer}
features=(--features cuda)
[ "${AEVB_PACK_CPU:-0}" = 1 ] && features=()

if [ "${AEVB_PACK_BUILD:-1}" = 1 ]; then
    [ ${#features[@]} -gt 0 ] && bash scripts/prepare-cuda.sh
    cargo build --release --locked "${features[@]}" --bin runner --test numerics
fi
# The newest numerics test binary of that build (cargo names it with a hash).
numerics=$(cargo test --release --locked "${features[@]}" --test numerics --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "numerics" and m.get("executable"):
        print(m["executable"])')

rm -rf "$dir"
mkdir -p "$dir/main/bin" "$dir/main/mnist" "$dir/main/peer" "$dir/numerics/bin"
pack() { # name source folder
    cp "$2" "$3/$1"
    strip "$3/$1"
    xz -9e -T2 "$3/$1"
}
pack runner target/release/runner "$dir/main/bin"
pack numerics "$numerics" "$dir/numerics/bin"
cp "$mnist"/*-ubyte.gz "$dir/main/mnist/"
cp "$peer"/*.py "$dir/main/peer/"
du -ab "$dir" | sort -k2 | awk '{ printf "%10.1f MiB  %s\n", $1 / 1048576, $2 }'
for part in main numerics; do
    total=$(du -sb "$dir/$part" | cut -f1)
    if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
        echo "error: $dir/$part holds $((total / 1048576)) MiB, more than a device carry's 64 MiB" >&2
        exit 1
    fi
done
commit=$(git rev-parse --short HEAD)
cat <<EOF

two calls on one warm device machine:
1. carry ["$dir/main"]:
   GPU_BIN=$dir/main/bin GPU_DATA=$dir/main/mnist GPU_PEER=$dir/main/peer GPU_COMMIT=$commit OUT=\$OUT bash scripts/gpu-check.sh all
2. carry ["$dir/numerics"]:
   GPU_BIN=$dir/numerics/bin GPU_COMMIT=$commit OUT=\$OUT bash scripts/gpu-check.sh numerics
EOF
