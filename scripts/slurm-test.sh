#!/usr/bin/env bash
# A real single-node Slurm cluster, from Debian's packages (slurm-wlm, munge): slurmctld and
# slurmd on localhost, run as root, configured in a temporary folder. Submits a digits sweep
# of 6 runs as an array of 3 tasks with `runner slurm --submit`, waits for the job, and
# checks with `runner collect` that runs.parquet holds every run exactly once, status ok.
#
#   bash scripts/slurm-test.sh [path/to/runner]     (default: target/release/runner)
#
# Skips (exit 0, with a message saying why) where root or apt-get is missing.
set -euo pipefail

runner=$(realpath "${1:-target/release/runner}")
say() { echo "slurm-test: $*"; }

if [ "$(id -u)" != 0 ]; then
    say "skipped: slurmd must run as root, and this is $(id -un)"
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        say "skipped: Slurm is not installed and there is no apt-get to install it"
        exit 0
    fi
    say "installing slurm-wlm and munge from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/aevb-slurm.XXXXXX)
chmod 0755 "$work"   # the munge user reads its key below
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pkill -f "slurmstepd" 2>/dev/null || true
}
trap cleanup EXIT
show_logs() {
    for f in "$work"/slurm/*.log "$work"/results/*/slurm/*.out; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
    done
}

# munge: a fresh key, and the daemon as the munge user, with its socket in the work folder.
mkdir -p "$work/munge" "$work/slurm/state" "$work/slurm/spool"
chown munge:munge "$work/munge"
if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$work/munge/munge.key" --force
else
    dd if=/dev/urandom of="$work/munge/munge.key" bs=1 count=1024 status=none
fi
chown munge:munge "$work/munge/munge.key"
chmod 0400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
pids+=("$(cat "$work/munge/munged.pid")")

host=$(hostname -s)
cpus=$(nproc)
cat >"$work/slurm/slurm.conf" <<EOF
ClusterName=aevbtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/slurm/state
SlurmdSpoolDir=$work/slurm/spool
SlurmctldPidFile=$work/slurm/slurmctld.pid
SlurmdPidFile=$work/slurm/slurmd.pid
SlurmctldLogFile=$work/slurm/slurmctld.log
SlurmdLogFile=$work/slurm/slurmd.log
SlurmctldPort=46817
SlurmdPort=46818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=aevbnode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=aevbnode Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N aevbnode
sleep 1
pids+=("$(cat "$work/slurm/slurmctld.pid")" "$(cat "$work/slurm/slurmd.pid")")

deadline=$((SECONDS + 60))
until sinfo -h -N -o %T 2>/dev/null | grep -q idle; do
    if [ $SECONDS -gt $deadline ]; then
        say "FAILED: the node did not become idle"; sinfo || true; show_logs; exit 1
    fi
    sleep 1
done
say "cluster up: $(sinfo -h -N -o '%N %T %c CPUs')"

cd "$work"
cat >grid.toml <<'EOF'
name = "slurm_digits"
[data]
dataset = "digits"
[model]
latent_dim = 3
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 4
batch_size = 64
checkpoint_every_epochs = 1
[eval]
importance_samples = 50
images_every_epochs = 0
[runtime.slurm]
tasks = 3
cpus_per_task = 1
time = "00:10:00"
[sweep.grid]
"objective.beta" = [0.5, 1.0, 2.0]
"train.seed" = [0, 1]
EOF

job=$("$runner" slurm grid.toml --submit)
say "submitted array job $job"
deadline=$((SECONDS + 600))
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do
    if [ $SECONDS -gt $deadline ]; then
        say "FAILED: job $job still queued or running after 10 minutes"; squeue; show_logs; exit 1
    fi
    sleep 2
done
logs=$(ls results/slurm_digits/slurm/*.out 2>/dev/null | wc -l)
summary=$("$runner" collect results/slurm_digits 2>/dev/null)
say "$logs task logs; runs.parquet: $summary"
if [ "$logs" != 3 ] || [ "$summary" != "6 rows, 6 distinct runs: 6 ok, 0 diverged, 0 failed" ]; then
    say "FAILED: expected 3 task logs and 6 rows, 6 distinct runs, all ok"
    show_logs
    exit 1
fi
for f in results/slurm_digits/slurm/*.out; do
    grep -q "shard [0-2]/3: 2 of the sweep's 6 runs" "$f" || {
        say "FAILED: $f does not show a shard of 2 runs"; show_logs; exit 1; }
done
say "ok: 6 runs over 3 array tasks, each run once, all ok"

# Requeue near the time limit: the script asks Slurm for USR1 two minutes before the limit;
# on it the runner checkpoints mid-run (SIGTERM) and the task requeues itself, and the
# requeued task continues the run from that checkpoint (there are no periodic ones here).
cat >long.toml <<'EOF'
name = "slurm_requeue"
[data]
dataset = "digits"
[model]
latent_dim = 3
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 3000                # ~11 s on the fused engine: long enough to be signalled mid-run
batch_size = 16
[eval]
importance_samples = 50
images_every_epochs = 0
[runtime.slurm]
tasks = 1
EOF
job=$("$runner" slurm long.toml --submit 2>/dev/null)
deadline=$((SECONDS + 120))
until [ -d results/slurm_requeue/tb ]; do
    if [ $SECONDS -gt $deadline ]; then say "FAILED: the long run did not start"; show_logs; exit 1; fi
    sleep 0.5
done
sleep 2
# What Slurm sends at the --signal time, without waiting for a real time limit.
scancel --signal=USR1 --batch "${job}_0"
say "sent USR1 (the time-limit warning) to array task ${job}_0 while it trained"
deadline=$((SECONDS + 120))
until squeue -h -j "$job" -o %T 2>/dev/null | grep -q PENDING; do
    if [ $SECONDS -gt $deadline ]; then say "FAILED: the task did not requeue itself"; squeue; show_logs; exit 1; fi
    sleep 0.5
done
# A requeued job waits a while before it is eligible again; the test does not, but it lets
# the node finish the first attempt and lets the clock pass the second of the requeue:
# slurmd revokes the job's credential when it kills the first attempt and refuses any launch
# of that job id whose credential is not newer, to the whole second ("Job 4 already killed,
# do not launch batch job" / "Job credential revoked": seen twice here when the release
# fell in the same second as the kill).
deadline=$((SECONDS + 120))
until sinfo -h -N -o %T 2>/dev/null | grep -qx idle; do
    if [ $SECONDS -gt $deadline ]; then say "FAILED: the node did not become idle after the requeue"; sinfo -N; show_logs; exit 1; fi
    sleep 0.5
done
requeued_by=$(date +%s)
until [ "$(date +%s)" -gt "$requeued_by" ]; do sleep 0.1; done
scontrol update JobId="${job}_0" StartTime=now
deadline=$((SECONDS + 600))
# Waits for the run's record, not for runs.parquet: the interrupted first attempt already
# wrote the (empty) tables, and squeue can list nothing for a moment while the job moves
# from requeued to pending (one CI run saw both and looked for a record too early).
until compgen -G 'results/slurm_requeue/runs/*/record.json' >/dev/null \
    && [ -z "$(squeue -h -j "$job" 2>/dev/null)" ]; do
    if [ $SECONDS -gt $deadline ]; then say "FAILED: the requeued task did not finish"; squeue; show_logs; exit 1; fi
    sleep 2
done
record=$(ls results/slurm_requeue/runs/*/record.json)
if ! grep -q '"resumes": 1' "$record" || ! grep -q '"status": "ok"' "$record" \
    || ! grep -q "stopped by a signal: 1 runs checkpointed" results/slurm_requeue/slurm/*.out \
    || ! grep -q "continuing from checkpoint" results/slurm_requeue/slurm/*.out; then
    say "FAILED: the requeued run did not continue from its checkpoint"
    grep -E '"(resumes|status|epochs_done)"' "$record" || true
    show_logs
    exit 1
fi
say "ok: on the time-limit signal the task checkpointed, requeued itself and continued its run"
rm -rf "$work"
