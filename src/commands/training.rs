//! `runner sweep` and `runner run` (training a plan) and `runner plan` (showing one).

use std::path::Path;
use std::process::ExitCode;

use aevb::prepare;
use aevb::progress::fmt_opt;
use aevb::spec::Spec;
use aevb::sweep::PlannedRun;
use aevb::{backend, runner};

/// What of a sweep's plan one process trains.
pub enum Part<'a> {
    Whole,
    /// One shard of `plan` (`--shard`): a successive-halving search gets the whole plan and
    /// trains its part of each rung; other sweeps are cut to their shard before they get here.
    Shard {
        shard: aevb::launch::shard::Shard,
        plan: &'a [PlannedRun],
    },
}

/// Where `runner run`'s one run was already finished by the spec's sweep (a run of the same
/// id, ok or diverged, in `results/<name>/`), said in a line; none when it was not.
pub fn finished_by_sweep(spec: &Spec, runs: &[PlannedRun]) -> Option<String> {
    let [run] = runs else { return None };
    let results =
        aevb::sinks::results::ResultsDir::new(Path::new(&spec.runtime.results_dir), &spec.name);
    let record = results.record(&run.id)?;
    (record.status != aevb::sinks::results::RunStatus::Failed).then(|| {
        format!(
            "{}: run {} is already finished ({}) by the spec's sweep, as `{}`: its record, model and logs are in {} (--force trains it again into {}-run/)",
            spec.name,
            run.id,
            record.status.as_str(),
            record.label,
            results.run_dir(&run.id).display(),
            spec.name
        )
    })
}

/// Trains `runs`, this process's `part` of the sweep.
pub fn train(
    spec: &Spec,
    runs: &[PlannedRun],
    workers: usize,
    force: bool,
    file: &str,
    part: Part<'_>,
) -> anyhow::Result<ExitCode> {
    let shard = match &part {
        Part::Shard { shard, .. } => Some(*shard),
        Part::Whole => None,
    };
    let root = Path::new(&spec.runtime.results_dir);
    let experiment_dir = root.join(&spec.name);
    let prepared = prepare::preflight(runs, &experiment_dir, file)?;
    eprintln!(
        "{}: {} runs, {} at a time, results in {}",
        spec.name,
        runs.len(),
        workers.min(runs.len()).max(1),
        experiment_dir.display()
    );
    for line in compute_lines(runs, workers.min(runs.len()).max(1)) {
        eprintln!("  {line}");
    }
    let commit = runner::experiments_commit(Path::new(file));
    // Ctrl-C or SIGTERM (Slurm, Kubernetes) checkpoints the runs in progress and stops.
    aevb::interrupt::install();
    let summary = match &spec.sweep.halving {
        // `runner run` trains the base config alone: no halving over one run.
        Some(halving) if runs.len() > 1 => {
            if let Some(line) = halving_line(spec, runs) {
                eprintln!("  {line}");
            }
            let h = runner::halving::Halving {
                spec,
                halving,
                results_root: root,
                workers,
                force,
                prepared: &prepared,
                experiments_commit: commit.as_deref(),
                shard,
            };
            runner::halving::run_halving(&h, runs)?
        }
        _ => runner::run_sweep(
            spec,
            runs,
            root,
            workers,
            force,
            &prepared,
            commit.as_deref(),
        )?,
    };
    let mut summary = summary;
    if summary.write_error.is_none() {
        let plan = match part {
            Part::Shard { plan, .. } => Some(plan),
            Part::Whole => None,
        };
        match runner::final_tables(spec, root, plan) {
            Ok(runner::FinalTables::Deferred { unfinished }) => eprintln!(
                "note: the tables in {} are brought up to date by the shard that finishes the sweep's last run ({unfinished} to go), or by `runner collect {}`",
                experiment_dir.display(),
                experiment_dir.display()
            ),
            Ok(runner::FinalTables::Rebuilt { left_out }) => summary.left_out = left_out,
            Err(e) => summary.write_error = Some(format!("{e:#}")),
        }
    }
    let per_run = bytes_per_run(runs, &prepared);
    Ok(outcome(spec, &summary, &experiment_dir, per_run))
}

/// About the bytes one run of `runs` writes at its peak: its model, its checkpoints (the
/// weights and the optimiser's two moments each; `keep_last` of them and one being
/// written), and a mebibyte for logs, records and the evaluation's progress.
fn bytes_per_run(runs: &[PlannedRun], prepared: &prepare::Prepared) -> f64 {
    let files = |run: &PlannedRun| -> Option<f64> {
        let data = prepared.datasets.get(&run.config.data).ok()?;
        let parameters = aevb::model::parameter_count(&run.config.model, &*data);
        let checkpoints = run.config.train.keep_last as f64 + 1.0;
        Some(4.0 * parameters * (1.0 + 3.0 * checkpoints) + f64::from(1u32 << 20))
    };
    runs.iter().filter_map(files).fold(0.0, f64::max)
}

/// One message for a sweep stopped by a full disk: the folder, the space free and needed,
/// and the commands that finish the work and bring the tables up to date.
fn disk_full(experiment_dir: &Path, per_run: f64) {
    let free = aevb::resources::free_disk_bytes(experiment_dir)
        .map_or("unknown".to_string(), |b| {
            aevb::resources::human_bytes(b as f64)
        });
    eprintln!(
        "error: the disk holding {dir} is full ({free} free); a run of this sweep writes about {need} (its model, checkpoints and logs). Runs that finished are intact; the runs that failed for lack of space left no checkpoints behind. Free at least {need}, then rerun this command to train the rest; until then runs.parquet and epochs.parquet may not list every finished run (`runner collect {dir}` brings them up to date).",
        dir = experiment_dir.display(),
        need = aevb::resources::human_bytes(per_run),
    );
}

/// What the sweep did, said on stderr, and its exit code: 0 when every run is ok, 1 for
/// diverged, failed or missing runs and write errors, 128 + the signal when stopped by one.
fn outcome(
    spec: &Spec,
    summary: &runner::SweepSummary,
    experiment_dir: &Path,
    bytes_per_run: f64,
) -> ExitCode {
    eprintln!(
        "{}: {} ok, {} diverged, {} failed ({} already finished, skipped)",
        spec.name, summary.ok, summary.diverged, summary.failed, summary.skipped
    );
    let disk_is_full = summary
        .write_error
        .as_deref()
        .is_some_and(aevb::resources::is_disk_full);
    if disk_is_full {
        disk_full(experiment_dir, bytes_per_run);
    } else if let Some(e) = &summary.write_error {
        eprintln!(
            "error: {e}\nerror: the sweep stopped; runs that finished before it are intact in {} (rerun to train the rest)",
            experiment_dir.display()
        );
    }
    if !summary.elsewhere.is_empty() {
        eprintln!(
            "note: {} runs were being trained by another process on this folder at the same time ({}); their rows appear when it finishes them",
            summary.elsewhere.len(),
            summary.elsewhere.join(", ")
        );
    }
    if !summary.missing.is_empty() {
        eprintln!(
            "error: {} runs have no record in {} although they finished or were skipped ({}); was the folder changed during the sweep? Rerun to train them again",
            summary.missing.len(),
            experiment_dir.join("runs").display(),
            summary.missing.join(", ")
        );
    }
    if !summary.left_out.is_empty() {
        super::print_left_out(experiment_dir, &summary.left_out);
    }
    if !summary.interrupted.is_empty() || aevb::interrupt::requested() {
        eprintln!(
            "stopped by a signal: {} runs checkpointed ({}); rerun the same command to continue them where they stopped",
            summary.interrupted.len(),
            summary.interrupted.join(", ")
        );
        let signal = aevb::interrupt::signal().unwrap_or(libc::SIGTERM);
        return ExitCode::from((128 + signal) as u8);
    }
    if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// What computes the runs: each engine with its runs, the threads per run and how they fill
/// the cores, the instruction set the fused loops run with.
fn compute_lines(runs: &[PlannedRun], concurrent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    // Why the fused engine does not cover a run → those runs' labels, in plan order.
    let mut fallback: Vec<(String, Vec<&str>)> = Vec::new();
    let mut fused = 0;
    let mut cuda = 0;
    let mut threads = 1;
    for run in runs {
        let kind = aevb::engine::kind_for(&run.config);
        if kind == aevb::spec::BackendKind::Cuda {
            cuda += 1;
        } else if kind == aevb::spec::BackendKind::Fused {
            fused += 1;
            threads = threads.max(aevb::engine::threads_per_run(&run.config, concurrent));
        } else if run.config.runtime.backend == aevb::spec::BackendKind::Cpu
            && let Some(why) = aevb::engine::fused_unsupported(&run.config)
        {
            let why = why.to_string();
            match fallback.iter_mut().find(|(w, _)| *w == why) {
                Some((_, labels)) => labels.push(&run.label),
                None => fallback.push((why, vec![&run.label])),
            }
        }
    }
    if fused > 0 {
        let cores = backend::cores();
        let used = concurrent * threads;
        lines.push(format!(
            "fused engine: {}, {} each × {concurrent} at a time = {used} of {cores} cores (runtime.threads, runtime.workers); loops for {}",
            plural(fused, "run"),
            plural(threads, "thread"),
            aevb::engine::fused::math::level_name()
        ));
        if used > cores {
            lines.push(format!(
                "note: {used} threads on {cores} cores: runs will slow each other down"
            ));
        }
    }
    if cuda > 0 {
        lines.push(format!(
            "cuda: {}, {concurrent} at a time on one GPU: {}",
            plural(cuda, "run"),
            backend::CUDA_ROUTE
        ));
    } else if backend::cuda_usable() {
        lines.push(
            "a CUDA GPU is usable here: `--set runtime.backend=cuda` trains these runs on it \
             (docs/performance.md compares the two routes)"
                .to_string(),
        );
    }
    if !fallback.is_empty() {
        let n: usize = fallback.iter().map(|(_, l)| l.len()).sum();
        lines.push(format!(
            "autodiff on {}: {} the fused engine does not cover:",
            backend::name(backend::DEFAULT_CPU),
            plural(n, "run")
        ));
        // One line per reason; a long list of labels is cut to its first three.
        for (why, labels) in &fallback {
            let shown = labels
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = match labels.len() {
                0..=3 => String::new(),
                m => format!(" and {} more", m - 3),
            };
            lines.push(format!(
                "  {why}: {} ({shown}{more})",
                plural(labels.len(), "run")
            ));
        }
    }
    lines
}

/// The run's parameter count, from the shape its data declare ("?" for a table, whose
/// columns are known once read; "shape error" where the convolutions do not fit).
fn parameters(config: &aevb::spec::RunConfig) -> String {
    match aevb::model::Input::declared(&config.data) {
        None => "?".into(),
        Some(input) => {
            let n = aevb::model::parameter_count(&config.model, input);
            if n.is_nan() {
                "shape error".into()
            } else {
                format!("{n:.0}")
            }
        }
    }
}

/// A network as the plan shows it: its dense widths, with its convolutions' channels before
/// them (encoder) or after them (decoder).
fn network(net: &aevb::spec::MlpConfig, encoder: bool) -> String {
    if net.conv.is_empty() {
        return format!("{:?}", net.hidden);
    }
    let conv: Vec<usize> = net.conv.iter().map(|l| l.channels).collect();
    if encoder {
        format!("conv {conv:?} → {:?}", net.hidden)
    } else {
        format!("{:?} → conv {conv:?}", net.hidden)
    }
}

/// The successive-halving budget: its rungs and the most epochs it trains.
fn halving_line(spec: &Spec, runs: &[PlannedRun]) -> Option<String> {
    let halving = spec.sweep.halving.as_ref()?;
    let epochs = runs.first()?.config.train.epochs;
    Some(format!(
        "successive halving: rungs at {:?} epochs, the best 1/{} of each goes on; at most {} epochs in all, against {} for the {} runs trained through",
        runner::halving::rung_epochs(halving, epochs),
        halving.reduction,
        runner::halving::epoch_budget(halving, runs.len(), epochs),
        runs.len() * epochs,
        runs.len()
    ))
}

/// A setting as a spec spells it (`standard_normal`, not the type's `StandardNormal`).
fn spelling<T: serde::Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{value:?}"),
    }
}

pub fn print_plan(spec: &Spec, runs: &[PlannedRun], workers: usize) {
    let base = spec.run_config();
    println!("experiment  {}", spec.name);
    if !spec.description.is_empty() {
        println!("            {}", spec.description);
    }
    println!(
        "data        {}; encoder {}, {} latents, decoder {}; {} likelihood, {} prior",
        spelling(&base.data.dataset),
        network(&base.model.encoder, true),
        base.model.latent_dim,
        network(&base.model.decoder, false),
        spelling(&base.model.likelihood),
        spelling(&base.model.prior)
    );
    let results =
        aevb::sinks::results::ResultsDir::new(Path::new(&spec.runtime.results_dir), &spec.name);
    let to_train = runs
        .iter()
        .filter(|r| results.record(&r.id).is_none())
        .count();
    let concurrent = workers.min(to_train).max(1);
    println!(
        "runs        {} on backend {}, {} to train, {} at a time ({} cores here)",
        runs.len(),
        backend::name(base.runtime.backend),
        to_train,
        concurrent,
        backend::cores()
    );
    if let Some(line) = halving_line(spec, runs) {
        println!("            {line}");
    }
    for line in compute_lines(runs, concurrent) {
        println!("            {line}");
    }
    println!();
    println!(
        "{:<14} {:<40} {:>7} {:>10} {:>11}  status",
        "id", "label", "epochs", "beta", "parameters"
    );
    for run in runs {
        let status = match results.record(&run.id) {
            Some(r) => format!(
                "done ({}), test ELBO {}",
                r.status.as_str(),
                fmt_opt(r.test_elbo)
            ),
            None => match aevb::checkpoint::Checkpoints::new(&results.run_dir(&run.id), &run.id)
                .newest_position()
            {
                Some((epochs, minibatches)) => format!(
                    "to continue from its checkpoint: {epochs} epochs and {minibatches} minibatches done"
                ),
                None => "to run".into(),
            },
        };
        println!(
            "{:<14} {:<40} {:>7} {:>10} {:>11}  {}",
            run.id,
            run.label,
            run.config.train.epochs,
            run.config.objective.beta,
            parameters(&run.config),
            status
        );
    }
}
