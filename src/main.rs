//! `runner`: plan, train and inspect VAE experiments from spec files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aevb::VERSION;
use aevb::launch::shard::{self, ShardArg};
use aevb::prepare;
use aevb::report;
use aevb::runner;
use aevb::spec::{self, Spec, SpecError};
use aevb::sweep::{self, PlannedRun};
use aevb::trained::RunNotFound;

mod commands;
use commands::trained::TrainedCommand;
use commands::{cluster, training};
use training::Part;

#[derive(Parser)]
#[command(name = "runner", version = VERSION, about = "Declarative VAE experiments (AEVB) on burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct SpecArgs {
    /// Experiment spec (TOML or YAML).
    pub spec: PathBuf,
    /// Override a spec key: --set objective.beta=0.5 (repeatable; wins over file and env).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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
        /// A results folder, e.g. results/beta_grid; several (or a shell glob) are reported
        /// as one study, with a `study` column naming each row's folder.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
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
        /// Seeds per spec: its own and the next N − 1 (bless with several, e.g. 5, to
        /// measure the seed standard deviation the gate is in units of).
        #[arg(long, default_value_t = 1)]
        seeds: usize,
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
    #[command(flatten)]
    Trained(TrainedCommand),
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
            training::print_plan(&spec, &runs, runner::workers(&spec, None));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep {
            args,
            force,
            workers,
            shard,
        } => sweep_command(&args, force, workers, shard),
        Command::Slurm { args, submit } => cluster::slurm_command(&args, submit),
        Command::K8s { args } => cluster::k8s_command(&args),
        Command::Collect { dir } => cluster::collect_command(&dir),
        Command::Run { args, force } => {
            let (mut spec, _) = load(&args)?;
            spec.sweep = Default::default();
            let file = args.spec.display().to_string();
            let runs = sweep::expand(&spec, &file)?;
            // The same run finished by the spec's sweep (same id) is not trained again.
            if !force && let Some(done) = training::finished_by_sweep(&spec, &runs) {
                eprintln!("{done}");
                return Ok(ExitCode::SUCCESS);
            }
            spec.name = format!("{}-run", spec.name);
            training::train(&spec, &runs, 1, force, &file, Part::Whole)
        }
        Command::Report {
            dirs,
            metric,
            by,
            format,
        } => commands::results::report_command(&dirs, &metric, by, format),
        Command::Check {
            specs,
            baseline,
            bless,
            seeds,
            results,
        } => commands::results::check_command(&specs, &baseline, bless, seeds, &results),
        Command::Trained(command) => commands::trained::dispatch(command),
    }
}

/// `runner sweep`: the whole plan, or one shard of it.
fn sweep_command(
    args: &SpecArgs,
    force: bool,
    workers: Option<std::num::NonZeroUsize>,
    shard: Option<ShardArg>,
) -> anyhow::Result<ExitCode> {
    let (spec, runs) = load(args)?;
    let file = args.spec.display().to_string();
    let shard = shard
        .map(|s| s.resolve(&|k| std::env::var(k).ok()))
        .transpose()
        .map_err(|m| SpecError::new(&file, "--shard", m))?;
    let workers = runner::workers(&spec, workers.map(|w| w.get()));
    if spec.sweep.halving.is_some() {
        // Every shard ranks every rung: it gets all runs and trains its part of each.
        let part = match shard {
            Some(shard) => Part::Shard { shard, plan: &runs },
            None => Part::Whole,
        };
        return training::train(&spec, &runs, workers, force, &file, part);
    }
    if let Some(shard) = shard {
        let plan = runs;
        let all = plan.len();
        let runs = shard::select(&plan, shard);
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
        let part = Part::Shard { shard, plan: &plan };
        return training::train(&spec, &runs, workers, force, &file, part);
    }
    training::train(&spec, &runs, workers, force, &file, Part::Whole)
}

pub fn load(args: &SpecArgs) -> anyhow::Result<(Spec, Vec<PlannedRun>)> {
    let spec = spec::load(&args.spec, &args.set)?;
    let runs = sweep::expand(&spec, &args.spec.display().to_string())?;
    Ok((spec, runs))
}
