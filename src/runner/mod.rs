//! Runs a planned sweep: skips finished runs, trains the rest on `workers` threads, shows
//! progress, and records every run (ok, diverged or failed) without stopping the sweep.
//! One run's attempt (train, evaluate, save) is `attempt`.

mod attempt;
mod eval_progress;
pub mod evaluation;
pub mod halving;
mod ledger;
mod rung;
mod shared;

use attempt::{Executed, execute};
pub use rung::RungResult;
use shared::Shared;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::prepare::Prepared;
use crate::progress::{Progress, RunWork};
use crate::sinks::results::{ResultsDir, RunStatus, TABLE_REFRESH};
use crate::sinks::tensorboard::{ExperimentRecord, integer_keys, remove_top_level_events};
use crate::spec::{BackendKind, RunConfig, Spec};
use crate::sweep::PlannedRun;
use crate::{VERSION, backend};

/// Sensible default parallelism: one run per core on CPU (a sweep's runs are independent, so
/// running them side by side scales best; a run left alone gets every core as threads), one
/// at a time on a GPU.
pub fn default_workers(config: &RunConfig) -> usize {
    match backend::resolve(config.runtime.backend) {
        BackendKind::Cuda => 1,
        _ => backend::cores(),
    }
}

pub fn workers(spec: &Spec, override_: Option<usize>) -> usize {
    override_
        .or(spec.runtime.workers)
        .unwrap_or_else(|| default_workers(&spec.run_config()))
        .max(1)
}

#[derive(Default)]
pub struct SweepSummary {
    pub skipped: usize,
    pub ok: usize,
    pub diverged: usize,
    pub failed: usize,
    /// Runs of the plan with no record on disk at the end although none is still to train
    /// (their folder was removed during the sweep).
    pub missing: Vec<String>,
    /// Runs another process was training at the same time (their claims were held).
    pub elsewhere: Vec<String>,
    /// The write error that stopped the sweep ("cannot write path: reason"), if one did.
    pub write_error: Option<String>,
    /// Runs stopped by SIGINT/SIGTERM, checkpointed: the next invocation continues them.
    pub interrupted: Vec<String>,
    /// Runs (ids) paused at a successive-halving rung, checkpointed, with `rung.json`.
    pub paused: Vec<String>,
    /// Runs the final tables had to leave out, as "id: why" (a record or epochs that cannot
    /// be read).
    pub left_out: Vec<String>,
}

impl SweepSummary {
    fn count(&mut self, status: RunStatus) {
        match status {
            RunStatus::Ok => self.ok += 1,
            RunStatus::Diverged => self.diverged += 1,
            RunStatus::Failed => self.failed += 1,
        }
    }

    pub fn all_ok(&self) -> bool {
        self.diverged == 0
            && self.failed == 0
            && self.missing.is_empty()
            && self.left_out.is_empty()
            && self.write_error.is_none()
            && self.interrupted.is_empty()
    }
}

/// Trains every run that has no record yet (every run with `force`). `prepared` holds the
/// runs' data and devices, loaded, checked and started by `prepare` before anything was
/// written.
pub fn run_sweep(
    spec: &Spec,
    runs: &[PlannedRun],
    results_root: &Path,
    workers: usize,
    force: bool,
    prepared: &Prepared,
    experiments_commit: Option<&str>,
) -> anyhow::Result<SweepSummary> {
    let out = ResultsDir::new(results_root, &spec.name);
    let mut summary = SweepSummary::default();
    let todo = to_train(&out, runs, force, &mut summary);
    // Each run's device, started by `prepare` before anything was written.
    let devices = todo
        .iter()
        .map(|run| {
            prepared.devices.get(&run.config.runtime).ok_or_else(|| {
                anyhow::anyhow!(
                    "run {}: its device was not started (prepare::preflight)",
                    run.id
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(&out.root)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.root.display()))?;
    let domains = swept_domains(runs);
    {
        let _lock = out.lock()?;
        remove_top_level_events(&out.tensorboard_dir());
    }
    let experiment = ExperimentRecord::new(&spec.name, &domains);
    let text_keys = integer_keys(&domains);
    let shared = Shared {
        spec,
        out: &out,
        datasets: &prepared.datasets,
        text_keys: &text_keys,
        experiment: &experiment,
        experiments_commit,
        force,
        concurrent: workers.min(todo.len()).max(1),
    };

    let progress = Progress::new(todo.len());
    let pool = Pool {
        shared: &shared,
        todo: &todo,
        devices: &devices,
        progress: &progress,
        next: AtomicUsize::new(0),
        recorded: AtomicUsize::new(0),
        finished: Mutex::new(&mut summary),
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.min(todo.len()) {
            scope.spawn(|| pool.work());
        }
    });
    progress.overall.finish_and_clear();
    if summary.write_error.is_none() && !crate::interrupt::requested() {
        // Every run of the plan has a record now, unless its files vanished meanwhile.
        let elsewhere = summary.elsewhere.clone();
        summary.missing = runs
            .iter()
            .filter(|r| {
                out.record(&r.id).is_none()
                    && !elsewhere.contains(&r.label)
                    && !summary.paused.contains(&r.id)
            })
            .map(|r| r.label.clone())
            .collect();
    }
    Ok(summary)
}

/// The runs of the plan without a record (all of them with `force`), counting the others
/// in `summary`; diverged runs are deterministic and count as finished, failed ones are
/// retried. Says when finished runs come from another aevb version.
fn to_train(
    out: &ResultsDir,
    runs: &[PlannedRun],
    force: bool,
    summary: &mut SweepSummary,
) -> Vec<PlannedRun> {
    let mut todo = Vec::new();
    let mut other_versions: Vec<String> = Vec::new();
    for run in runs {
        let record = crate::sinks::results::read_record(&out.run_dir(&run.id));
        if let Err(e) = &record
            && !force
        {
            eprintln!(
                "note: run {} ({}) trains again: its record cannot be read ({e:#})",
                run.id, run.label
            );
        }
        match record.ok().flatten() {
            Some(r) if !force && r.status != RunStatus::Failed => {
                summary.skipped += 1;
                summary.count(r.status);
                if r.aevb_version != VERSION {
                    other_versions.push(r.aevb_version);
                }
            }
            _ => todo.push(run.clone()),
        }
    }
    if !other_versions.is_empty() {
        other_versions.sort();
        other_versions.dedup();
        eprintln!(
            "note: finished runs kept from another aevb version ({}; this is {VERSION}); their numbers may differ from this version's; --force retrains them",
            other_versions.join(", ")
        );
    }
    todo
}

/// The workers of one sweep: they take the runs to train in order, and share the counts
/// and the first write error, which stops the sweep (a full or read-only disk fails every
/// later run).
struct Pool<'a> {
    shared: &'a Shared<'a>,
    todo: &'a [PlannedRun],
    /// Each run's device, started by `prepare` before anything was written.
    devices: &'a [&'a burn::tensor::Device],
    progress: &'a Progress,
    next: AtomicUsize,
    /// Runs recorded by this process (what the test signal `runs=N` counts).
    recorded: AtomicUsize,
    finished: Mutex<&'a mut SweepSummary>,
}

impl Pool<'_> {
    fn stopped(&self) -> bool {
        crate::interrupt::requested()
            || self
                .finished
                .lock()
                .map(|s| s.write_error.is_some())
                .unwrap_or(true)
    }

    fn note(&self, f: impl FnOnce(&mut SweepSummary)) {
        if let Ok(mut s) = self.finished.lock() {
            f(&mut s);
        }
    }

    /// One worker: takes runs until none is left or the sweep stops.
    fn work(&self) {
        crate::fpu::flush_subnormals();
        while !self.stopped() {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(run) = self.todo.get(i) else { break };
            if !self.train(run, self.devices[i]) {
                break;
            }
        }
    }

    /// Claims, trains and records one run; false when the sweep must stop.
    fn train(&self, run: &PlannedRun, device: &burn::tensor::Device) -> bool {
        let out = self.shared.out;
        // Another `runner sweep` on this folder may be training it, or may have finished
        // it since this one planned: claim it, then look again.
        let claim = match out.claim(&run.id) {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                self.progress.overall.inc(1);
                self.note(|s| s.elsewhere.push(run.label.clone()));
                return true;
            }
            Err(e) => {
                self.note(|s| {
                    s.write_error.get_or_insert(format!("{e:#}"));
                });
                return true;
            }
        };
        if let Some(r) = out
            .record(&run.id)
            .filter(|r| !self.shared.force && r.status != RunStatus::Failed)
        {
            self.progress.overall.inc(1);
            self.note(|s| {
                s.skipped += 1;
                s.count(r.status);
            });
            return true;
        }
        let work = self
            .shared
            .datasets
            .get(&run.config.data)
            .map(|d| RunWork::of(&run.config, d.train.rows, d.test.rows))
            .unwrap_or_default();
        let bar = self.progress.run(&run.label, work);
        let Executed {
            record,
            write_error,
            interrupted,
            paused,
        } = execute(self.shared, run, device, &bar);
        bar.finish();
        let Ok(mut summary) = self.finished.lock() else {
            return false;
        };
        if paused || interrupted {
            if paused {
                summary.paused.push(run.id.clone());
            } else {
                summary.interrupted.push(run.label.clone());
            }
            if let Some(e) = write_error {
                summary.write_error.get_or_insert(e);
            }
            return true;
        }
        self.progress.finished(&record);
        summary.count(record.status);
        // The tables, only when they are due (`TABLE_REFRESH`): rebuilding them reads
        // every run folder.
        let tables = out
            .refresh_tables(TABLE_REFRESH)
            .err()
            .map(|e| format!("{e:#}"));
        if let Some(e) = write_error.or(tables) {
            summary.write_error.get_or_insert(e);
        }
        // Released once the record shows the run.
        drop(claim);
        let n = self.recorded.fetch_add(1, Ordering::SeqCst) + 1;
        crate::test_signal::after_runs_finished(n);
        true
    }
}

/// What a process did to the tables as it ended.
pub enum FinalTables {
    /// Rebuilt, leaving out these runs (whose record or epochs could not be read).
    Rebuilt { left_out: Vec<String> },
    /// A shard that left runs of the plan unfinished: the tables were refreshed only if
    /// stale; the shard that finishes the last run (or `runner collect`) rebuilds them.
    Deferred { unfinished: usize },
}

/// The tables at the end of a process: rebuilt, waiting for the folder lock, unless the
/// process is one shard of `plan` (`Some`) and runs of the plan still have no record; then
/// only refreshed when stale, so that a 10,000-task array does not read the whole folder
/// 10,000 times.
pub fn final_tables(
    spec: &Spec,
    results_root: &Path,
    plan: Option<&[PlannedRun]>,
) -> anyhow::Result<FinalTables> {
    let out = ResultsDir::new(results_root, &spec.name);
    if !out.root.is_dir() {
        return Ok(FinalTables::Rebuilt {
            left_out: Vec::new(),
        });
    }
    let unfinished = plan.map_or(0, |plan| {
        plan.iter()
            .filter(|r| !out.run_dir(&r.id).join("record.json").is_file())
            .count()
    });
    if unfinished == 0 {
        let left_out = out.write_tables()?.left_out;
        return Ok(FinalTables::Rebuilt { left_out });
    }
    out.refresh_tables(TABLE_REFRESH)?;
    Ok(FinalTables::Deferred { unfinished })
}

/// The git commit of the repository holding the spec file `spec`, with "-dirty" when files
/// in its folder have uncommitted changes; None outside a repository (or without git).
pub fn experiments_commit(spec: &Path) -> Option<String> {
    let dir = spec
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// Every swept key with the values it takes, for the HParams experiment record.
fn swept_domains(runs: &[PlannedRun]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    // Values seen per key, by their JSON text: linear in the runs (a 10,000-seed sweep).
    let mut seen: std::collections::HashSet<(String, String)> = Default::default();
    for run in runs {
        for (k, v) in &run.swept {
            if !seen.insert((k.clone(), v.to_string())) {
                continue;
            }
            match out.iter_mut().find(|(key, _)| key == k) {
                Some((_, values)) => values.push(v.clone()),
                None => out.push((k.clone(), vec![v.clone()])),
            }
        }
    }
    out
}
