#!/usr/bin/env bash
# A scheduler that preempts often: runs SPEC through once as the reference, then again in
# another folder, killing each attempt with SIGNAL (KILL or TERM) every SECONDS and
# restarting it, until it finishes. Prints the attempts it took and the saved progress after
# each, and checks that every result column of the finished row (all but the bookkeeping:
# resumes, wall times, timestamps) equals the reference's, bit for bit.
#
#   bash scripts/kill-every.sh [SPEC] [SIGNAL] [SECONDS] [MAX_ATTEMPTS] [RUNNER]
#   (defaults: experiments/faults/kill_loop.toml KILL 2.5 15 target/release/runner)
#
# Exit 0 when the run finished within MAX_ATTEMPTS with the reference's numbers.
set -euo pipefail

spec=$(realpath "${1:-experiments/faults/kill_loop.toml}")
signal=${2:-KILL}
seconds=${3:-2.5}
max=${4:-15}
runner=$(realpath "${5:-target/release/runner}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "kill-every: $*"; }

start=$(date +%s.%N)
"$runner" sweep "$spec" --set "runtime.results_dir=$work/reference" >"$work/reference.log" 2>&1
say "reference run: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s uninterrupted"

attempt=0
while :; do
    attempt=$((attempt + 1))
    if [ "$attempt" -gt "$max" ]; then
        say "FAILED: not finished within $max attempts"
        exit 1
    fi
    set +e
    # (In a subshell: bash's own "Killed" notice stays out of the output.)
    (timeout -s "$signal" "$seconds" "$runner" sweep "$spec" \
        --set "runtime.results_dir=$work/killed") >"$work/attempt-$attempt.log" 2>&1
    status=$?
    set -e
    progress=$(python3 - "$work/killed" <<'EOF'
import glob, json, struct, sys
# The saved progress of the run: training checkpoint and evaluation phases.
root = sys.argv[1]
records = glob.glob(f"{root}/*/runs/*/record.json")
if records:
    print("finished"); sys.exit()
parts = []
for state in sorted(glob.glob(f"{root}/*/runs/*/checkpoints/*/state.toml")):
    parts.append("checkpoint " + state.split("/")[-2])
for f in sorted(glob.glob(f"{root}/*/runs/*/checkpoints/*/evaluation.safetensors")):
    raw = open(f, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    done = header["log_px"]["shape"][0]
    flight = header["in_flight"]["shape"][0]
    phases = [p for p in ("elbo_terms", "metrics") if p in header]
    parts.append(f"evaluation: {'+'.join(phases) or 'nothing'} saved, {done} examples done, {flight} blocks part-way")
print("; ".join(parts) or "nothing saved")
EOF
)
    say "attempt $attempt: exit $status; $progress"
    if [ "$progress" = finished ]; then
        break
    fi
done

python3 - "$work/reference" "$work/killed" <<'EOF'
import glob, json, sys
bookkeeping = {"resumes", "resume_notes", "checkpoints_written", "checkpoint_seconds",
               "wall_seconds", "samples_per_second", "finished_at"}
def row(root):
    (path,) = glob.glob(f"{root}/*/runs/*/record.json")
    r = json.load(open(path))
    r["config"]["runtime"]["results_dir"] = None
    return r
a, b = row(sys.argv[1]), row(sys.argv[2])
differ = [k for k in sorted(set(a) | set(b)) if k not in bookkeeping and a.get(k) != b.get(k)]
if differ:
    print("kill-every: FAILED: columns differ from the uninterrupted run:", differ)
    sys.exit(1)
print(f"kill-every: every result column equals the uninterrupted run's "
      f"(test log p(x) {b['test_log_px']!r} ± {b['test_log_px_se']!r}, ESS mean {b['log_px_ess_mean']!r}); "
      f"row says resumes = {b['resumes']}, wall_seconds = {b['wall_seconds']:.1f}")
EOF
say "finished in $attempt attempts (SIG$signal every $seconds s)"
