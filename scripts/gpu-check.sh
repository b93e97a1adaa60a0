#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU (run through the device tool: see
# README "CUDA"). Two parts, because a CUDA binary links a static LLVM (~200 MB; ~46 MB
# compressed) and the runner and the numerical tests do not travel together:
#
#   scripts/gpu-check.sh numerics   the numerical tests (tests/numerics.rs) on CUDA: closed
#                                   forms, finite differences and the digits training
#                                   tests, training *and* evaluating on CUDA
#   scripts/gpu-check.sh timing     the canonical epoch (PyTorch's VAE example, 3 epochs)
#                                   on CUDA against PyTorch on the same GPU, a 4-run sweep
#                                   (4 seeds, 4 workers on one GPU) against 4 PyTorch
#                                   processes at once, and the fused engine on the host's
#                                   cores for scale
#   scripts/gpu-check.sh objectives the β-VAE family's objectives (autodiff only) on the
#                                   Burgess conv net at 64×64: one epoch of 5,000 sprites on
#                                   CUDA against flex on the host (500 sprites), seconds per
#                                   1,000 examples
#   scripts/gpu-check.sh conv       the Burgess conv β-VAE at 64×64, batch 64: seconds per
#                                   1,000 training examples on CUDA (the second epoch, after
#                                   the kernels are compiled and tuned) against PyTorch's
#                                   (../shared/peer/pytorch_conv_vae.py) on the same GPU
#   scripts/gpu-check.sh iwae       Burda's IWAE k = 50 (784-200-200-50 tanh, batch 20) on
#                                   6,000 training images, CUDA against PyTorch
#   scripts/gpu-check.sh profile    one canonical epoch under Nsight Systems (where nsys is
#                                   installed): the kernel and CUDA API summaries
#   scripts/gpu-check.sh all        what a lease of ~10 minutes holds, in order of worth:
#                                   timing, conv, iwae, numerics, profile (each part whose
#                                   binary was carried; every step has its own limit)
#
# PyTorch runs through benches/torch_precision.py, in full f32 and with TF32 (burn's
# tensor-core matmuls stage f32 as TF32 where the GPU has it): the log says which is which.
#
# Inputs (environment): GPU_BIN, a folder holding runner and/or numerics as .xz or .zst (the
# stripped binaries of `cargo build --release --features cuda --bin runner --test numerics`;
# scripts/gpu-pack.sh makes the folder, with the data and peer scripts, under the 64 MiB a
# device carry holds); GPU_DATA, the MNIST IDX folder; GPU_PEER, the PyTorch peer scripts; OUT, the
# folder the logs and summary.md go to; GPU_COMMIT, the commit the binaries were built from
# (the copy on the device machine need not carry git history). Every step has its own time limit, and its log
# is written as it runs, so a step that hangs or fails still leaves the others' numbers.
# A rehearsal on a machine without a GPU: GPU_CHECK_BACKEND=cpu GPU_CHECK_TORCH=cpu.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: scripts/gpu-check.sh all|timing|conv|iwae|numerics|profile|objectives}
: "${GPU_BIN:?} ${OUT:?}"
mkdir -p "$OUT"
work=$(mktemp -d)
summary="$OUT/summary.md"

step() { # name limit-seconds command...: runs it, logs to $OUT/name.log, notes rc and seconds
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "== $name: $*" | tee -a "$OUT/$name.log"
    timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
    local rc=$?
    echo "| $name | rc $rc | $((SECONDS - t0)) s |" | tee -a "$summary"
    tail -n 25 "$OUT/$name.log"
    return $rc
}

unpack() { # name: GPU_BIN/name.xz (python3's lzma: on any machine with PyTorch) or name.zst -> $work/name
    if [ -e "$GPU_BIN/$1.xz" ]; then
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            "$GPU_BIN/$1.xz" "$work/$1"
    elif command -v zstd >/dev/null; then
        zstd -q -d "$GPU_BIN/$1.zst" -o "$work/$1"
    else
        LD_LIBRARY_PATH="${GPU_TOOLS:?no zstd here: carry one and name its folder in GPU_TOOLS}" \
            "$GPU_TOOLS/zstd" -q -d "$GPU_BIN/$1.zst" -o "$work/$1"
    fi && chmod +x "$work/$1"
}

# A binary was carried: name.xz or name.zst in GPU_BIN.
carried() {
    [ -e "$GPU_BIN/$1.xz" ] || [ -e "$GPU_BIN/$1.zst" ]
}

# cudarc loads libcuda and libnvrtc at run time: the driver's folder, the toolkit's, and
# the NVIDIA wheels beside PyTorch.
wheels=$(python3 -c 'import glob, site; print(":".join(d for p in site.getsitepackages() for d in glob.glob(p + "/nvidia/*/lib")))' 2>/dev/null)
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:/usr/local/cuda/lib64:${wheels}:${LD_LIBRARY_PATH:-}"

{
    echo "# gpu-check $part, $(date -u +%FT%TZ), binaries from commit ${GPU_COMMIT:-unknown}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1
    echo "cpus $(nproc)"
    echo
    echo "| step | exit | seconds |"
    echo "| --- | --- | --- |"
} | tee "$summary"

backend=${GPU_CHECK_BACKEND:-cuda}
torch_device=${GPU_CHECK_TORCH:-cuda}

# PyTorch with its f32 precision stated: "${torch_run[@]}" fp32|tf32 SCRIPT ARGS...
torch_run=(python3 benches/torch_precision.py)

# Seconds per 1,000 training examples of each epoch of the runs under a results folder.
per_thousand() {
    python3 - "$1" <<'EOF3'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "runs", "*", "epochs.json"))):
    rows = json.load(open(f))
    seen = [e["examples_seen"] for e in rows]
    steps = [b - a for a, b in zip([0] + seen[:-1], seen)]
    print(os.path.basename(sys.argv[1]), "s per 1,000 examples by epoch",
          [round(1000 * e["train_pass_seconds"] / n, 4) for e, n in zip(rows, steps)],
          "test_elbo", [round(e.get("test_elbo") or float("nan"), 2) for e in rows])
EOF3
}

part_numerics() {
    unpack numerics || return 1
    # One thread: the tests share one device; their order then reads like the log.
    AEVB_TEST_BACKEND=$backend step numerics 240 "$work/numerics" --test-threads 1
    grep -E "^test |test result" "$OUT/numerics.log" >>"$summary"
}

part_conv() {
    unpack runner || return 1
    local runner="$work/runner" n=${GPU_CONV_COUNT:-6464}
    # Two epochs of n sprites (n/64 steps each, ~1% held out): the first compiles and tunes.
    step conv-aevb 150 "$runner" run experiments/sprites_burgess64.toml \
        --set runtime.backend=$backend --set train.epochs=2 --set "data.sprites.count=$n" \
        --set eval.importance_samples=1 --set eval.log_px_examples=1 --set eval.images_every_epochs=0 \
        --set "runtime.results_dir=$work/conv-aevb"
    per_thousand "$work/conv-aevb" | tee -a "$summary"
    local blocks=${GPU_CONV_BLOCKS:-6}
    for precision in fp32 tf32; do
        step "conv-torch-$precision" 90 "${torch_run[@]}" $precision "$GPU_PEER/pytorch_conv_vae.py" \
            --device "$torch_device" --blocks "$blocks" --json "$OUT/conv-torch-$precision.json"
        grep -E "allow_tf32|_s_per_1000_examples" "$OUT/conv-torch-$precision.log" >>"$summary"
    done
}

part_iwae() {
    unpack runner || return 1
    : "${GPU_DATA:?}"
    local runner="$work/runner" limit=${GPU_IWAE_LIMIT:-6000}
    step iwae-aevb 150 "$runner" run experiments/repro/iwae_mnist.toml \
        --set runtime.backend=$backend --set objective.kind=iwae --set objective.iwae_k=50 \
        --set "data.train_limit=$limit" --set train.epochs=2 --set "data.path=$GPU_DATA" \
        --set eval.importance_samples=1 --set eval.log_px_examples=1 \
        --set "runtime.results_dir=$work/iwae-aevb"
    per_thousand "$work/iwae-aevb" | tee -a "$summary"
    step iwae-torch 90 "${torch_run[@]}" tf32 "$GPU_PEER/pytorch_iwae.py" --data "$GPU_DATA" --k 50 \
        --epochs 2 --train-limit "$limit" --device "$torch_device"
    tail -n 4 "$OUT/iwae-torch.log" >>"$summary"
}

part_timing() {
    unpack runner || return 1
    : "${GPU_DATA:?} ${GPU_PEER:?}"
    runner="$work/runner"
    base=experiments/repro/pytorch_example.toml
    quiet=(--set eval.importance_samples=1 --set eval.log_px_examples=1 --set eval.images_every_epochs=0)
    # A first CUDA run on built-in data: does the backend start at all (and its kernels compile)?
    step smoke 90 "$runner" run experiments/ci/digits.toml --set runtime.backend=$backend \
        --set train.epochs=1 --set "runtime.results_dir=$work/smoke" "${quiet[@]}"
    step canonical-cuda 150 "$runner" run "$base" --set runtime.backend=$backend --set train.epochs=3 \
        --set "data.path=$GPU_DATA" --set "runtime.results_dir=$work/canonical-cuda" "${quiet[@]}"
    for precision in fp32 tf32; do
        step "canonical-torch-$precision" 60 "${torch_run[@]}" $precision benches/pytorch_vae_gpu.py \
            --peer "$GPU_PEER" --data "$GPU_DATA" --epochs 3 --device "$torch_device" \
            --json "$OUT/canonical-torch-$precision.json"
    done
    printf 'extends = "%s"\nname = "gpu_sweep"\n[runtime]\nbackend = "%s"\nworkers = 4\n[sweep.grid]\n"train.seed" = [1, 2, 3, 4]\n' \
        "$PWD/$base" "$backend" >"$work/sweep.toml"
    step sweep-cuda 150 "$runner" sweep "$work/sweep.toml" --set train.epochs=2 \
        --set "data.path=$GPU_DATA" --set "runtime.results_dir=$work/sweep-cuda" "${quiet[@]}"
    sweep_torch() {
        local pids=() s
        for s in 1 2 3 4; do
            python3 benches/pytorch_vae_gpu.py --peer "$GPU_PEER" --data "$GPU_DATA" --epochs 2 \
                --seed "$s" --device "$torch_device" --json "$OUT/sweep-torch-$s.json" &
            pids+=($!)
        done
        local rc=0
        for p in "${pids[@]}"; do wait "$p" || rc=1; done
        return $rc
    }
    export -f sweep_torch
    export GPU_PEER GPU_DATA OUT torch_device
    step sweep-torch 60 bash -c sweep_torch
    step canonical-fused 60 "$runner" run "$base" --set runtime.backend=cpu --set train.epochs=2 \
        --set "runtime.threads=$(nproc)" --set "data.path=$GPU_DATA" \
        --set "runtime.results_dir=$work/canonical-fused" "${quiet[@]}"
    # log p(x), K = 1000 on 1,000 test images, on the CUDA-trained run (evaluated where it trained).
    trained=$(dirname "$(ls "$work"/canonical-cuda/*/runs/*/epochs.json | head -1)")
    step log-px-cuda 90 "$runner" eval "$trained" --results "$work/canonical-cuda" \
        --importance-samples 1000 --examples 1000
    # Per-epoch numbers from every run's epochs.json, into the summary.
    python3 - "$work" "$OUT" >>"$summary" <<'EOF'
import glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
print()
for name in ["smoke", "canonical-cuda", "canonical-fused", "sweep-cuda"]:
    for f in sorted(glob.glob(os.path.join(work, name, "*", "runs", "*", "epochs.json"))):
        rows = json.load(open(f))
        print(f"{name} {os.path.basename(os.path.dirname(f))}: train_pass_seconds",
              [round(e["train_pass_seconds"], 3) for e in rows],
              "test_elbo", [round(e.get("test_elbo", float("nan")), 2) for e in rows])
for f in sorted(glob.glob(os.path.join(out, "*torch*.json"))):
    d = json.load(open(f))
    print(os.path.basename(f), d.get("device"), "train_s", [round(e["train_s"], 3) for e in d["epochs"]],
          "test_loss", [round(e["test_loss"], 2) for e in d["epochs"]])
EOF
}

part_objectives() {
    unpack runner || return 1
    runner="$work/runner"
    for kind in elbo beta_tcvae factor_vae annealed dip_vae_i; do
        # GPU_OBJECTIVES_COUNT shrinks the CUDA runs' data for a rehearsal.
        for where in "$backend ${GPU_OBJECTIVES_COUNT:-5100}" "flex 600"; do
            set -- $where
            step "$kind-$1" 150 "$runner" run experiments/sprites_burgess64.toml \
                --set "objective.kind=$kind" --set "runtime.backend=$1" --set train.epochs=1 \
                --set "data.sprites.count=$2" --set "data.test_fraction=$(python3 -c "print(100/$2)")" \
                --set eval.importance_samples=1 --set eval.log_px_examples=1 --set eval.images_every_epochs=0 \
                --set "runtime.results_dir=$work/objectives-$kind-$1"
        done
    done
    python3 - "$work" >>"$summary" <<'EOF2'
import glob, json, os, sys
print()
print("| objective | backend | train examples | s per 1,000 |")
print("| --- | --- | --- | --- |")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "objectives-*", "*", "runs", "*", "epochs.json"))):
    name = f.split("objectives-")[1].split("/")[0]
    kind, backend = name.rsplit("-", 1)
    e = json.load(open(f))[0]
    n = e["examples_seen"]
    print(f"| {kind} | {backend} | {n} | {1000 * e['train_pass_seconds'] / n:.3f} |")
EOF2
}

# Where a CUDA step's time goes: one epoch of the canonical model under Nsight Systems, its
# kernel and API summaries into the log (the report itself stays on the machine). Only
# where nsys is installed.
part_profile() {
    unpack runner || return 1
    local nsys
    nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys 2>/dev/null) || {
        echo "| profile | skipped: no nsys here | 0 s |" | tee -a "$summary"
        return 0
    }
    step profile 150 "$nsys" profile --stats=true --force-overwrite=true -o "$work/canonical" \
        "$work/runner" run experiments/repro/pytorch_example.toml --set runtime.backend=$backend \
        --set train.epochs=1 --set "data.path=$GPU_DATA" --set "runtime.results_dir=$work/profile" \
        --set eval.importance_samples=1 --set eval.log_px_examples=1 --set eval.images_every_epochs=0
    grep -A 14 -E "cuda_gpu_kern_sum|cuda_api_sum" "$OUT/profile.log" | head -n 40 >>"$summary"
}

case "$part" in
profile)
    part_profile
    ;;
all)
    # In order of worth, so that a lease cut short still leaves the first parts' numbers.
    carried runner && { part_timing; part_conv; part_iwae; }
    carried numerics && part_numerics
    carried runner && part_profile
    carried runner && [ -n "${GPU_OBJECTIVES_ALL:-}" ] && part_objectives
    ;;
conv)
    part_conv
    ;;
iwae)
    part_iwae
    ;;
numerics)
    part_numerics
    ;;
timing)
    part_timing
    ;;
objectives)
    part_objectives
    ;;
*)
    echo "unknown part $part: expected all, timing, conv, iwae, numerics, profile or objectives" >&2
    exit 2
    ;;
esac
cat "$summary"
