//! `runner slurm`: an sbatch script for a Slurm array job, one shard of the sweep per array
//! task, and (`--submit`) its submission.

use std::path::{Path, PathBuf};

use super::{shell_quote, shell_words};
use crate::spec::Spec;
use crate::sweep::PlannedRun;

/// What the script needs besides the spec: absolute paths, as a compute node sees them.
pub struct Launch<'a> {
    pub spec: &'a Spec,
    /// The spec file, absolute.
    pub spec_path: &'a Path,
    /// `--set` overrides, passed on to every task.
    pub sets: &'a [String],
    pub runs: &'a [PlannedRun],
    /// The runner binary the tasks run.
    pub runner: &'a str,
    /// The working directory of the submission (relative paths in the spec are from there).
    pub workdir: &'a Path,
}

/// The array tasks a launch uses (see [`super::shards`]).
pub fn tasks(spec: &Spec, runs: &[PlannedRun]) -> usize {
    super::shards(spec.runtime.slurm.tasks, runs)
}

/// The folder of the experiment's Slurm files (script and task logs).
pub fn slurm_dir(spec: &Spec, workdir: &Path) -> PathBuf {
    super::launch_dir(spec, workdir, "slurm")
}

/// The sbatch script.
pub fn script(l: &Launch) -> String {
    let c = &l.spec.runtime.slurm;
    let tasks = tasks(l.spec, l.runs);
    let logs = slurm_dir(l.spec, l.workdir);
    let mut array = format!("0-{}", tasks - 1);
    if let Some(p) = c.max_parallel {
        array.push_str(&format!("%{}", p.max(1)));
    }
    let mut directives = vec![
        format!("--job-name=aevb-{}", l.spec.name),
        format!("--array={array}"),
        format!("--cpus-per-task={}", c.cpus_per_task.max(1)),
        format!("--chdir={}", l.workdir.display()),
        format!("--output={}/%A_%a.out", logs.display()),
        // A requeued task appends to its log instead of replacing it.
        "--open-mode=append".to_string(),
        // USR1 two minutes before the time limit: checkpoint, stop and requeue.
        "--signal=B:USR1@120".to_string(),
    ];
    if let Some(p) = &c.partition {
        directives.push(format!("--partition={p}"));
    }
    if let Some(t) = &c.time {
        directives.push(format!("--time={t}"));
    }
    if let Some(m) = &c.mem {
        directives.push(format!("--mem={m}"));
    }
    if c.gpus > 0 {
        directives.push(format!("--gres=gpu:{}", c.gpus));
    }
    if c.requeue {
        directives.push("--requeue".to_string());
    }
    directives.extend(c.extra.iter().cloned());
    let mut command = vec![
        l.runner.to_string(),
        "sweep".into(),
        l.spec_path.display().to_string(),
        "--shard".into(),
        "auto".into(),
        "--workers".into(),
        c.cpus_per_task.max(1).to_string(),
    ];
    for s in l.sets {
        command.extend(["--set".to_string(), s.clone()]);
    }
    let mut out = String::from("#!/bin/bash\n");
    out.push_str(&format!(
        "# Written by `runner slurm` (aevb {}): experiment {}, {} runs over {tasks} array tasks.\n# Each task trains its shard of the runs (`--shard auto` reads SLURM_ARRAY_TASK_ID);\n# all write to one results folder. Submit with: sbatch {}\n",
        crate::VERSION,
        l.spec.name,
        l.runs.len(),
        shell_quote(&logs.join(format!("{}.sbatch", l.spec.name)).display().to_string())
    ));
    for d in &directives {
        out.push_str(&format!("#SBATCH {d}\n"));
    }
    out.push_str(&format!(
        r#"
# The runner checkpoints its runs and stops on SIGTERM. Slurm sends TERM on scancel and
# preemption (a preempted task is requeued by Slurm when PreemptMode=REQUEUE), and USR1
# (asked for above) two minutes before the time limit: then this task requeues itself, and
# the requeued task continues every unfinished run from its checkpoint.
AEVB_RUNNER={runner}
set -- {args}
requeue=0
"$AEVB_RUNNER" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap 'requeue={requeue_on_limit}; kill -TERM "$pid" 2>/dev/null' USR1
status=0
wait "$pid" || status=$?
# A trapped signal interrupts `wait`: wait again until the runner has checkpointed.
while kill -0 "$pid" 2>/dev/null; do
    status=0
    wait "$pid" || status=$?
done
if [ "$requeue" = 1 ]; then
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$status"
"#,
        runner = shell_quote(l.runner),
        args = shell_words(&command[1..]),
        requeue_on_limit = u8::from(c.requeue),
    ));
    out
}

/// Writes the script to `<results>/<name>/slurm/<name>.sbatch` (creating the log folder).
pub fn write(l: &Launch) -> anyhow::Result<PathBuf> {
    let dir = slurm_dir(l.spec, l.workdir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.sbatch", l.spec.name));
    crate::sinks::results::write_atomic(&path, script(l).as_bytes())?;
    Ok(path)
}

/// Runs `sbatch script`; the job id it reports.
pub fn submit(script: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run sbatch (is Slurm installed here?): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints "jobid" or "jobid;cluster".
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(
        !id.is_empty(),
        "sbatch printed no job id: {}",
        stdout.trim()
    );
    Ok(id)
}
