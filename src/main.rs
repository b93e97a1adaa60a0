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
use aevb::trained::{RunNotFound, figures, tables};

mod commands;
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
    /// A VampPrior run's learned pseudo-inputs, as images (`figures/pseudo_inputs.png`).
    PseudoInputs {
        #[command(flatten)]
        run: RunArgs,
        /// At most this many (of the prior's K).
        #[arg(long, default_value_t = 100)]
        max: usize,
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
        /// K (default: the run's own, which reproduces its recorded estimate exactly).
        #[arg(long)]
        importance_samples: Option<usize>,
        /// On the first N test examples (default: as many as the run used).
        #[arg(long)]
        examples: Option<usize>,
        /// Record this estimate even when the row holds one with more samples or examples.
        #[arg(long)]
        replace: bool,
        /// Threads (default: every core); the numbers are the same on any count.
        #[arg(long)]
        threads: Option<usize>,
        /// Also write one row per test example (index, label, ELBO terms, log p(x), ESS) to
        /// per_example.parquet in the run's folder (or in --out).
        #[arg(long)]
        per_example: bool,
        /// Recompute the disentanglement metrics (dis_*) of the saved model on its
        /// evaluation set and update its row, instead of the log p(x) estimate.
        #[arg(long)]
        metrics: bool,
    },
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// A finished run: its folder (results/<experiment>/runs/<id>), run id or label.
    pub run: String,
    /// The results folder to look for run ids and labels in.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where to write the files (default: the run's figures/ folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
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
            spec.name = format!("{}-run", spec.name);
            let file = args.spec.display().to_string();
            let runs = sweep::expand(&spec, &file)?;
            training::train(&spec, &runs, 1, force, &file, Part::Whole)
        }
        Command::Report {
            dir,
            metric,
            by,
            format,
        } => commands::results::report_command(&dir, &metric, by, format),
        Command::Check {
            specs,
            baseline,
            bless,
            seeds,
            results,
        } => commands::results::check_command(&specs, &baseline, bless, seeds, &results),
        Command::Sample { run, n, seed } => {
            let trained = commands::trained::open(&run)?;
            let seed = seed.unwrap_or(trained.config().train.seed);
            commands::trained::wrote(figures::sample(
                &trained,
                n.max(1),
                seed,
                run.out.as_deref(),
            )?)
        }
        Command::Reconstruct { run, n } => commands::trained::wrote(figures::reconstruct(
            &commands::trained::open(&run)?,
            n.max(1),
            run.out.as_deref(),
        )?),
        Command::Encode { run } => commands::trained::wrote(tables::encode(
            &commands::trained::open(&run)?,
            run.out.as_deref(),
        )?),
        Command::Traverse {
            run,
            steps,
            dims,
            example,
        } => commands::trained::wrote(figures::traverse(
            &commands::trained::open(&run)?,
            steps.max(2),
            dims,
            example,
            run.out.as_deref(),
        )?),
        Command::PseudoInputs { run, max } => commands::trained::wrote(figures::pseudo_inputs(
            &commands::trained::open(&run)?,
            max,
            run.out.as_deref(),
        )?),
        Command::Interpolate { run, pairs, steps } => {
            commands::trained::wrote(figures::interpolate(
                &commands::trained::open(&run)?,
                pairs,
                steps.max(2),
                run.out.as_deref(),
            )?)
        }
        Command::Manifold { run, size } => commands::trained::wrote(figures::manifold(
            &commands::trained::open(&run)?,
            size.max(2),
            run.out.as_deref(),
        )?),
        Command::Eval {
            run,
            importance_samples,
            examples,
            replace,
            threads,
            per_example,
            metrics,
        } => {
            if metrics {
                return commands::trained::metrics_command(&run);
            }
            let request = aevb::trained::reevaluate::Request {
                k: importance_samples,
                examples,
                replace,
                threads,
                per_example: None,
            };
            commands::trained::eval_command(&run, request, per_example)
        }
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
