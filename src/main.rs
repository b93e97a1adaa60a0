//! `runner`: plan, train and inspect VAE experiments from spec files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aevb::launch::shard::{self, ShardArg};
use aevb::launch::{k8s, slurm};
use aevb::prepare::{self, DataCache};
use aevb::progress::fmt_opt;
use aevb::runner;
use aevb::spec::{self, Spec, SpecError};
use aevb::sweep::{self, PlannedRun};
use aevb::trained::{RunNotFound, TrainedRun, figures, reevaluate, tables};
use aevb::{VERSION, backend};
use aevb::{check, report};

#[derive(Parser)]
#[command(name = "runner", version = VERSION, about = "Declarative VAE experiments (AEVB) on burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct SpecArgs {
    /// Experiment spec (TOML or YAML).
    spec: PathBuf,
    /// Override a spec key: --set objective.beta=0.5 (repeatable; wins over file and env).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Show the runs a spec expands to, as a table; trains nothing.
    Plan(SpecArgs),
    /// Train every run of the spec's sweep that has not finished yet.
    Sweep {
        #[command(flatten)]
        args: SpecArgs,
        /// Rerun runs that already finished.
        #[arg(long)]
        force: bool,
        /// Runs trained at once (default: runtime.workers, else one per core on CPU).
        #[arg(long)]
        workers: Option<std::num::NonZeroUsize>,
        /// Train only shard I of N of the runs (I/N, 0-based), or `auto`: the shard of this
        /// Slurm array task or Kubernetes Indexed Job pod, from the environment.
        #[arg(long, value_name = "I/N|auto")]
        shard: Option<ShardArg>,
    },
    /// Train the spec's base config as a single run (its [sweep] is ignored).
    Run {
        #[command(flatten)]
        args: SpecArgs,
        #[arg(long)]
        force: bool,
    },
    /// Aggregate a results folder over seeds: a table, and plots in <DIR>/report/.
    Report {
        /// A results folder, e.g. results/beta_grid.
        dir: PathBuf,
        /// Primary metric: sorts the table and is plotted against each swept key.
        #[arg(long, default_value = "test_elbo")]
        metric: String,
        /// Group by these config keys (comma-separated; default: the swept keys but the seed).
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        /// Table format; markdown, csv and json are also saved in <DIR>/report/.
        #[arg(long, value_enum, default_value = "table")]
        format: report::Format,
    },
    /// Train small deterministic specs and compare their metrics with a baseline.
    Check {
        /// Spec files (or folders of them).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// Baseline TOML: tolerances and the expected metrics per run.
        #[arg(long)]
        baseline: PathBuf,
        /// Rewrite the baseline from the current results (for intentional changes).
        #[arg(long)]
        bless: bool,
        /// Where the check runs write their results.
        #[arg(long, default_value = "results/check")]
        results: PathBuf,
    },
    /// Write an sbatch script for a Slurm array job, one shard of the sweep per task
    /// (resources from [runtime.slurm]); --submit also submits it.
    Slurm {
        #[command(flatten)]
        args: SpecArgs,
        /// Submit the script with sbatch and print the job id.
        #[arg(long)]
        submit: bool,
    },
    /// Write a Kubernetes Indexed Job manifest, one shard of the sweep per completion index
    /// (image and resources from [runtime.k8s]).
    K8s {
        #[command(flatten)]
        args: SpecArgs,
    },
    /// Rebuild runs.parquet and epochs.parquet of a results folder from its finished runs
    /// (safe at any time, also while shards are still writing).
    Collect {
        /// An experiment's results folder, e.g. results/beta_grid.
        dir: PathBuf,
    },
    /// Draw samples from a trained run's model: a PNG grid and a Parquet of z and E[x|z].
    Sample {
        #[command(flatten)]
        run: RunArgs,
        /// Number of samples.
        #[arg(short = 'n', long, default_value_t = 64)]
        n: usize,
        /// Seed of the prior draws (default: the run's train.seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Test inputs beside their reconstructions (PNG and Parquet).
    Reconstruct {
        #[command(flatten)]
        run: RunArgs,
        #[arg(short = 'n', long, default_value_t = 32)]
        n: usize,
    },
    /// Posterior means and log-variances of every test example (Parquet, with labels where
    /// the data have them) and the latent scatter of the test set.
    Encode {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Latent traversals: one row per latent dimension, ordered by KL.
    Traverse {
        #[command(flatten)]
        run: RunArgs,
        /// Images per row (prior quantiles from 2.5% to 97.5%).
        #[arg(long, default_value_t = 11)]
        steps: usize,
        /// At most this many dimensions (the ones with the most KL).
        #[arg(long, default_value_t = 20)]
        dims: usize,
        /// The test example whose posterior mean holds the other dimensions.
        #[arg(long, default_value_t = 0)]
        example: usize,
    },
    /// Interpolations between the posterior means of pairs of test examples.
    Interpolate {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
    },
    /// For a 2-D latent space: the learned data manifold on a grid of prior quantiles (the
    /// AEVB paper's Figure 4) and the test set's latent scatter coloured by label.
    Manifold {
        #[command(flatten)]
        run: RunArgs,
        /// Images per side of the grid.
        #[arg(long, default_value_t = 20)]
        size: usize,
    },
    /// Re-estimate a trained run's test log p(x) with K importance samples and update its row.
    Eval {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 5000)]
        importance_samples: usize,
        /// On the first N test examples (default: as many as the run used).
        #[arg(long)]
        examples: Option<usize>,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// A finished run: its folder (results/<experiment>/runs/<id>), run id or label.
    run: String,
    /// The results folder to look for run ids and labels in.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where to write the files (default: the run's figures/ folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`runner plan | head`) would
    // panic; a command-line tool should just stop, as ripgrep does.
    #[cfg(unix)]
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<SpecError>() {
            Some(spec_error) => {
                eprintln!("error: {spec_error}");
                ExitCode::from(2)
            }
            None if e.downcast_ref::<RunNotFound>().is_some() => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Plan(args) => {
            let (spec, runs) = load(&args)?;
            // Data problems show at plan time too.
            prepare::load_data(&runs, &args.spec.display().to_string())?;
            print_plan(&spec, &runs, runner::workers(&spec, None));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep {
            args,
            force,
            workers,
            shard,
        } => {
            let (spec, mut runs) = load(&args)?;
            let file = args.spec.display().to_string();
            if let Some(shard) = shard {
                let shard = shard
                    .resolve(&|k| std::env::var(k).ok())
                    .map_err(|m| SpecError::new(&file, "--shard", m))?;
                let all = runs.len();
                runs = shard::select(&runs, shard);
                eprintln!(
                    "{}: shard {}/{}: {} of the sweep's {all} runs",
                    spec.name,
                    shard.index,
                    shard.count,
                    runs.len()
                );
                if runs.is_empty() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let workers = runner::workers(&spec, workers.map(|w| w.get()));
            train(&spec, &runs, workers, force, &file)
        }
        Command::Slurm { args, submit } => slurm_command(&args, submit),
        Command::K8s { args } => k8s_command(&args),
        Command::Collect { dir } => collect_command(&dir),
        Command::Run { args, force } => {
            let (mut spec, _) = load(&args)?;
            spec.sweep = Default::default();
            spec.name = format!("{}-run", spec.name);
            let file = args.spec.display().to_string();
            let runs = sweep::expand(&spec, &file)?;
            train(&spec, &runs, 1, force, &file)
        }
        Command::Report {
            dir,
            metric,
            by,
            format,
        } => report_command(&dir, &metric, by, format),
        Command::Check {
            specs,
            baseline,
            bless,
            results,
        } => check_command(&specs, &baseline, bless, &results),
        Command::Sample { run, n, seed } => {
            let trained = open(&run)?;
            let seed = seed.unwrap_or(trained.config().train.seed);
            wrote(figures::sample(
                &trained,
                n.max(1),
                seed,
                run.out.as_deref(),
            )?)
        }
        Command::Reconstruct { run, n } => wrote(figures::reconstruct(
            &open(&run)?,
            n.max(1),
            run.out.as_deref(),
        )?),
        Command::Encode { run } => wrote(tables::encode(&open(&run)?, run.out.as_deref())?),
        Command::Traverse {
            run,
            steps,
            dims,
            example,
        } => wrote(figures::traverse(
            &open(&run)?,
            steps.max(2),
            dims,
            example,
            run.out.as_deref(),
        )?),
        Command::Interpolate { run, pairs, steps } => wrote(figures::interpolate(
            &open(&run)?,
            pairs,
            steps.max(2),
            run.out.as_deref(),
        )?),
        Command::Manifold { run, size } => wrote(figures::manifold(
            &open(&run)?,
            size.max(2),
            run.out.as_deref(),
        )?),
        Command::Eval {
            run,
            importance_samples,
            examples,
        } => eval_command(&run, importance_samples, examples),
    }
}

fn slurm_command(args: &SpecArgs, submit: bool) -> anyhow::Result<ExitCode> {
    let (spec, runs) = load(args)?;
    let file = args.spec.display().to_string();
    // Problems with the data show here, not in every array task.
    prepare::load_data(&runs, &file)?;
    let workdir = std::env::current_dir()?;
    let spec_path = std::fs::canonicalize(&args.spec)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.spec.display()))?;
    let runner = match &spec.runtime.slurm.runner {
        Some(r) => r.clone(),
        None => std::env::current_exe()?.display().to_string(),
    };
    let launch = slurm::Launch {
        spec: &spec,
        spec_path: &spec_path,
        sets: &args.set,
        runs: &runs,
        runner: &runner,
        workdir: &workdir,
    };
    let script = slurm::write(&launch)?;
    eprintln!(
        "wrote {}: {} runs over {} array tasks, logs beside it",
        script.display(),
        runs.len(),
        slurm::tasks(&spec, &runs)
    );
    if submit {
        let id = slurm::submit(&script)?;
        println!("{id}");
        eprintln!(
            "submitted job {id}; `squeue -j {id}` shows it, `runner collect {}` tabulates what has finished",
            Path::new(&spec.runtime.results_dir)
                .join(&spec.name)
                .display()
        );
    } else {
        eprintln!("submit with: sbatch {}", script.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn k8s_command(args: &SpecArgs) -> anyhow::Result<ExitCode> {
    let (spec, runs) = load(args)?;
    let file = args.spec.display().to_string();
    prepare::load_data(&runs, &file)?;
    let text = k8s::manifest(&spec, &file, &args.set, &runs)?;
    let path = k8s::write(&spec, &text, &std::env::current_dir()?)?;
    eprintln!(
        "wrote {}: {} runs over {} indexed pods; apply with: kubectl apply -f {}",
        path.display(),
        runs.len(),
        k8s::completions(&spec, &runs),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn collect_command(dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.join("runs").is_dir() {
        return Err(RunNotFound(format!(
            "{}: not an experiment's results folder (no runs/ in it)",
            dir.display()
        ))
        .into());
    }
    let out = aevb::sinks::results::ResultsDir {
        root: dir.to_path_buf(),
    };
    out.write_tables()?;
    // What the table says, read back from the file just written.
    use polars::prelude::SerReader;
    let path = out.runs_parquet();
    let table = polars::prelude::ParquetReader::new(std::fs::File::open(&path)?).finish()?;
    let text = |name: &str| -> anyhow::Result<Vec<String>> {
        let c = table.column(name)?.str()?.clone();
        Ok(c.iter().map(|v| v.unwrap_or("").to_string()).collect())
    };
    let (ids, statuses) = (text("run_id")?, text("status")?);
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    let count = |s: &str| statuses.iter().filter(|v| *v == s).count();
    println!(
        "{} rows, {} distinct runs: {} ok, {} diverged, {} failed",
        ids.len(),
        distinct.len(),
        count("ok"),
        count("diverged"),
        count("failed")
    );
    eprintln!(
        "wrote {} and {}",
        out.runs_parquet().display(),
        out.epochs_parquet().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn open(run: &RunArgs) -> anyhow::Result<TrainedRun> {
    TrainedRun::open(&run.run, &run.results)
}

fn wrote(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    for p in paths {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_command(run: &RunArgs, k: usize, examples: Option<usize>) -> anyhow::Result<ExitCode> {
    let mut trained = open(run)?;
    eprintln!(
        "run {} ({}): estimating test log p(x) with K = {k}",
        trained.record.run_id, trained.record.label
    );
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let r = reevaluate::reevaluate(&mut trained, k, examples, &mut |done, n| {
        if last.elapsed().as_secs_f64() > 10.0 {
            eprintln!("  {done}/{n} examples");
            last = std::time::Instant::now();
        }
    })?;
    println!(
        "test ELBO      {:.4} nats (recorded at the end of training: {})",
        r.test_elbo,
        fmt_opt(r.recorded_test_elbo)
    );
    println!(
        "test log p(x)  {:.4} nats with K = {} on {} examples (was {} with K = {} on {}); {:.1} s",
        r.log_px,
        r.k,
        r.examples,
        fmt_opt(r.previous_log_px),
        r.previous_k,
        r.previous_examples,
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "updated {} and the experiment's tables",
        trained.dir.join("record.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn report_command(
    dir: &Path,
    metric: &str,
    by: Option<Vec<String>>,
    format: report::Format,
) -> anyhow::Result<ExitCode> {
    let runs = report::read_runs(dir)?;
    // A grouping of one's own gets a folder of its own, beside the default report's.
    let out = match &by {
        Some(keys) => report::report_dir(dir).join(format!("by_{}", keys.join("+"))),
        None => report::report_dir(dir),
    };
    let mut by = by.unwrap_or_else(|| report::default_group_keys(&runs));
    let varying = report::varying_keys(&runs, &by);
    if !varying.is_empty() {
        eprintln!(
            "note: the runs in {} also differ in {}, which are not swept (runs of other invocations, or --set); grouping by them too so that only runs of one config are averaged",
            dir.display(),
            varying.join(", ")
        );
        by.extend(varying);
    }
    if let Some(warning) = report::scale_warning(&runs) {
        eprintln!("warning: {warning}");
    }
    let table = report::aggregate(&dir.join("runs.parquet"), &by, metric)?;
    let text = report::render(&table, format)?;
    print!("{text}");
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let extension = match format {
        report::Format::Table => "txt",
        report::Format::Markdown => "md",
        report::Format::Csv => "csv",
        report::Format::Json => "json",
    };
    let path = out.join(format!("summary.{extension}"));
    aevb::sinks::results::write_atomic(&path, text.as_bytes())?;
    eprintln!("wrote {}", path.display());
    let epochs_path = dir.join("epochs.parquet");
    let epochs = if epochs_path.is_file() {
        let read = std::fs::File::open(&epochs_path)
            .map_err(anyhow::Error::from)
            .and_then(|f| Ok(polars::prelude::ParquetReader::new(f).finish()?));
        Some(read.map_err(|e| {
            anyhow::anyhow!(
                "{}: not a readable Parquet file: {e:#}",
                epochs_path.display()
            )
        })?)
    } else {
        None
    };
    use polars::prelude::SerReader;
    for file in report::write_plots(&runs, epochs.as_ref(), &by, metric, &out)? {
        eprintln!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn check_command(
    specs: &[PathBuf],
    baseline_path: &Path,
    bless: bool,
    results: &Path,
) -> anyhow::Result<ExitCode> {
    let previous = if baseline_path.is_file() {
        Some(check::Baseline::load(baseline_path)?)
    } else if bless {
        None
    } else {
        anyhow::bail!(
            "{}: baseline not found (create it with --bless)",
            baseline_path.display()
        );
    };
    let mut records = Vec::new();
    let mut loaded = Vec::new();
    for file in spec::spec_files(specs) {
        let (spec, runs) = load(&SpecArgs {
            spec: file.clone(),
            set: Vec::new(),
        })?;
        let name = file.display().to_string();
        let datasets = prepare::preflight(&runs, &results.join(&spec.name), &name)?;
        let commit = runner::experiments_commit(&file);
        loaded.push((spec, runs, datasets, commit));
    }
    for (spec, runs, datasets, commit) in &loaded {
        // Always retrain: a check must measure the code as it is now.
        let workers = runner::workers(spec, None);
        let summary = runner::run_sweep(
            spec,
            runs,
            results,
            workers,
            true,
            datasets,
            commit.as_deref(),
        )?;
        if let Some(e) = summary.write_error {
            anyhow::bail!("{e}");
        }
        let dir = aevb::sinks::results::ResultsDir::new(results, &spec.name);
        records.extend(runs.iter().filter_map(|r| dir.record(&r.id)));
    }
    let backend = records
        .first()
        .map(|r| r.backend.clone())
        .unwrap_or_else(|| "none".into());
    if bless {
        let blessed = check::bless(&records, previous.as_ref(), &backend);
        aevb::sinks::results::write_atomic(baseline_path, blessed.to_text()?.as_bytes())?;
        eprintln!(
            "blessed {} runs into {}",
            blessed.runs.len(),
            baseline_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(baseline) = previous else {
        anyhow::bail!("{}: baseline not found", baseline_path.display());
    };
    if baseline.backend != backend {
        eprintln!(
            "warning: the baseline was made on backend {}, this check ran on {backend}",
            baseline.backend
        );
    }
    let comparisons = check::compare(&baseline, &records);
    print!("{}", check::render(&comparisons));
    let failed = comparisons.iter().filter(|c| !c.passed()).count();
    if failed > 0 {
        eprintln!(
            "check: {failed} of {} comparisons FAILED",
            comparisons.len()
        );
        Ok(ExitCode::from(1))
    } else {
        eprintln!("check: all {} comparisons passed", comparisons.len());
        Ok(ExitCode::SUCCESS)
    }
}

fn load(args: &SpecArgs) -> anyhow::Result<(Spec, Vec<PlannedRun>)> {
    let spec = spec::load(&args.spec, &args.set)?;
    let runs = sweep::expand(&spec, &args.spec.display().to_string())?;
    Ok((spec, runs))
}

fn train(
    spec: &Spec,
    runs: &[PlannedRun],
    workers: usize,
    force: bool,
    file: &str,
) -> anyhow::Result<ExitCode> {
    let root = Path::new(&spec.runtime.results_dir);
    let experiment_dir = root.join(&spec.name);
    let datasets: DataCache = prepare::preflight(runs, &experiment_dir, file)?;
    eprintln!(
        "{}: {} runs, {} at a time, results in {}",
        spec.name,
        runs.len(),
        workers.min(runs.len()).max(1),
        experiment_dir.display()
    );
    let commit = runner::experiments_commit(Path::new(file));
    // Ctrl-C or SIGTERM (Slurm, Kubernetes) checkpoints the runs in progress and stops.
    aevb::interrupt::install();
    let summary = runner::run_sweep(
        spec,
        runs,
        root,
        workers,
        force,
        &datasets,
        commit.as_deref(),
    )?;
    eprintln!(
        "{}: {} ok, {} diverged, {} failed ({} already finished, skipped)",
        spec.name, summary.ok, summary.diverged, summary.failed, summary.skipped
    );
    if let Some(e) = &summary.write_error {
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
    if !summary.interrupted.is_empty() || aevb::interrupt::requested() {
        eprintln!(
            "stopped by a signal: {} runs checkpointed ({}); rerun the same command to continue them where they stopped",
            summary.interrupted.len(),
            summary.interrupted.join(", ")
        );
        let signal = aevb::interrupt::signal().unwrap_or(libc::SIGTERM);
        return Ok(ExitCode::from((128 + signal) as u8));
    }
    Ok(if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_plan(spec: &Spec, runs: &[PlannedRun], workers: usize) {
    let base = spec.run_config();
    println!("experiment  {}", spec.name);
    if !spec.description.is_empty() {
        println!("            {}", spec.description);
    }
    println!(
        "data        {:?}; encoder {:?}, {} latents, decoder {:?}; {:?} likelihood, {:?} prior",
        base.data.dataset,
        base.model.encoder.hidden,
        base.model.latent_dim,
        base.model.decoder.hidden,
        base.model.likelihood,
        base.model.prior
    );
    println!(
        "runs        {} on backend {}, {} at a time ({} cores here)",
        runs.len(),
        backend::name(base.runtime.backend),
        workers,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let results =
        aevb::sinks::results::ResultsDir::new(Path::new(&spec.runtime.results_dir), &spec.name);
    println!();
    println!(
        "{:<14} {:<40} {:>7} {:>10}  status",
        "id", "label", "epochs", "beta"
    );
    for run in runs {
        let status = match results.record(&run.id) {
            Some(r) => format!(
                "done ({}), test ELBO {}",
                r.status.as_str(),
                fmt_opt(r.test_elbo)
            ),
            None => match aevb::checkpoint::Checkpoints::new(&results.run_dir(&run.id), &run.id)
                .list()
                .last()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            {
                // Checkpoint folders are named <epochs done>-<minibatches of the next one>.
                Some(name) => match name.split_once('-') {
                    Some((e, b)) => format!(
                        "to continue from its checkpoint: {} epochs and {} minibatches done",
                        e.parse::<u64>().unwrap_or(0),
                        b.parse::<u64>().unwrap_or(0)
                    ),
                    None => "to continue from its checkpoint".into(),
                },
                None => "to run".into(),
            },
        };
        println!(
            "{:<14} {:<40} {:>7} {:>10}  {}",
            run.id, run.label, run.config.train.epochs, run.config.objective.beta, status
        );
    }
}
