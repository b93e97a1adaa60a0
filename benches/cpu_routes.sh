#!/usr/bin/env bash
# The engine-strategy table of issue 19: the canonical epoch (1 and 2 threads), the conv
# beta-VAE at 64x64 and 32x32 (1 and 2 threads) and the IWAE k = 50 pass on every CPU route,
# alternating routes within each repeat, PyTorch beside them.
# Build the route binaries first (each is a feature build of burn's chain):
#   cargo build --release --example cpu_routes && cp target/release/examples/cpu_routes /tmp/cpu_routes_default
#   cargo build --release --features bench-flex-threads --example cpu_routes && cp … /tmp/cpu_routes_flexthreads
#   scripts/prepare-cuda.sh && cargo build --release --features bench-cubecl-cpu --example cpu_routes && cp … /tmp/cpu_routes_cubecl
# usage: benches/cpu_routes.sh [DATA_DIR] [REPEATS] [PYTHON] [WORKLOADS]   (prints lines; medians at the end)
# WORKLOADS: canonical,conv,iwae (default all); ROUTE_TIMEOUT caps one invocation (600 s).
set -uo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data/mnist}"
repeats="${2:-3}"
python="${3:-python3}"
workloads="${4:-canonical,conv,iwae}"   # any of canonical, conv, iwae, comma-separated
limit="${ROUTE_TIMEOUT:-600}"  # seconds one route invocation may take (not AEVB_*: those are spec overrides)
out=$(mktemp)
wants() { [[ ",$workloads," == *",$1,"* ]]; }
# binary route threads workload epochs: one invocation, named by its route; one that runs
# past $limit prints a line saying so (the medians skip it).
route() {
    [ -x "$1" ] || return 0
    local name="$2"
    [ "$1" = /tmp/cpu_routes_flexthreads ] && name=flex+rayon+simd
    timeout "$limit" "$1" "$2" "$3" "$data" "$5" "$4" | sed "s/route=$2 /route=$name /"
    [ "${PIPESTATUS[0]}" = 124 ] && echo "# $4 route=$name threads=$3: did not finish in $limit s"
    return 0
}
routes() { # threads workload epochs
    route /tmp/cpu_routes_default fused "$1" "$2" "$3"
    route /tmp/cpu_routes_default flex "$1" "$2" "$3"
    route /tmp/cpu_routes_flexthreads flex "$1" "$2" "$3"
    route /tmp/cpu_routes_cubecl cubecl-cpu "$1" "$2" "$3"
}
torch() { "$python" -c "import torch" 2>/dev/null; }
for r in $(seq "$repeats"); do
    if wants canonical; then
        for t in 1 2; do
            routes $t canonical 3
            if torch; then
                j=$(mktemp)
                "$python" ../shared/peer/pytorch_vae.py --data "$data" --threads $t --epochs 3 --json "$j" >/dev/null 2>&1 \
                    && "$python" -c "import json,sys; e=json.load(open('$j'))['epochs']; print('canonical route=pytorch threads=$t train_pass_seconds=[%s]' % ', '.join('%.3f' % x['train_s'] for x in e))"
            fi
        done
    fi
    if wants conv; then
        for w in conv64 conv32; do
            for t in 1 2; do
                routes $t $w 1
                if torch; then
                    s=$("$python" ../shared/peer/pytorch_conv_vae.py --threads $t --size ${w#conv} 2>/dev/null \
                        | "$python" -c "import json,sys; print('%.3f' % json.load(sys.stdin)['train_s_per_1000_examples'])")
                    echo "$w route=pytorch threads=$t train_pass_seconds=[$s]"
                fi
            done
        done
    fi
    if wants iwae; then
        routes 1 iwae 1
        if torch; then
            s=$("$python" ../shared/peer/pytorch_iwae.py --data "$data" --k 50 --threads 1 --train-limit 6000 --flush-denormal 2>/dev/null \
                | sed -n 's/.*epoch 1: *\([0-9.]*\) *s,.*/\1/p')
            [ -n "$s" ] && echo "iwae-k50 route=pytorch threads=1 train_pass_seconds=[$s]"
        fi
    fi
done | tee "$out"
echo
echo "medians (seconds per epoch; iwae: one pass over 6,000 examples; conv: per 1,000 examples):"
"$python" - "$out" <<'PY'
import re, statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) route=(\S+) threads=(\d+).*train_pass_seconds=\[([^\]]*)\]", line)
    if m:
        rows[(m[1], m[2], m[3])] += [float(x) for x in m[4].split(",") if x.strip()]
for (w, r, t), xs in sorted(rows.items()):
    print(f"{w:10} {r:18} {t} threads: {statistics.median(xs):.2f} s (n = {len(xs)})")
PY
