//! The commands on trained models: figures, tables, `runner eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use aevb::progress::fmt_opt;
use aevb::trained::{TrainedRun, figures, reevaluate, tables};

#[derive(Subcommand)]
pub enum TrainedCommand {
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
        #[command(flatten)]
        options: EvalOptions,
    },
}

/// `runner eval`'s options.
#[derive(clap::Args, Clone)]
pub struct EvalOptions {
    /// K (default: the run's own, which reproduces its recorded estimate exactly).
    #[arg(long)]
    pub importance_samples: Option<usize>,
    /// On the first N test examples (default: as many as the run used).
    #[arg(long)]
    pub examples: Option<usize>,
    /// Record this estimate even when the row holds one with more samples or examples.
    #[arg(long)]
    pub replace: bool,
    /// Threads (default: every core); the numbers are the same on any count.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write one row per test example (index, label, ELBO terms, log p(x), ESS) to
    /// per_example.parquet in the run's folder (or in --out).
    #[arg(long)]
    pub per_example: bool,
    /// Recompute the disentanglement metrics (dis_*) of the saved model on its
    /// evaluation set and update its row, instead of the log p(x) estimate.
    #[arg(long)]
    pub metrics: bool,
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// A finished run: its folder (results/<experiment>/runs/<id>), run id or label.
    pub run: String,
    /// The results folder to look for run ids and labels in.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// The spec the run was trained from: ids and labels are looked for in its experiment,
    /// in its `runtime.results_dir` (instead of --results).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Where to write the files (default: the run's figures/ folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs one command on a trained model.
pub fn dispatch(command: TrainedCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrainedCommand::Sample { run, n, seed } => {
            let trained = open(&run)?;
            let seed = seed.unwrap_or(trained.config().train.seed);
            wrote(figures::sample(
                &trained,
                n.max(1),
                seed,
                run.out.as_deref(),
            )?)
        }
        TrainedCommand::Reconstruct { run, n } => wrote(figures::reconstruct(
            &open(&run)?,
            n.max(1),
            run.out.as_deref(),
        )?),
        TrainedCommand::Encode { run } => wrote(tables::encode(&open(&run)?, run.out.as_deref())?),
        TrainedCommand::Traverse {
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
        TrainedCommand::PseudoInputs { run, max } => wrote(figures::pseudo_inputs(
            &open(&run)?,
            max,
            run.out.as_deref(),
        )?),
        TrainedCommand::Interpolate { run, pairs, steps } => wrote(figures::interpolate(
            &open(&run)?,
            pairs,
            steps.max(2),
            run.out.as_deref(),
        )?),
        TrainedCommand::Manifold { run, size } => wrote(figures::manifold(
            &open(&run)?,
            size.max(2),
            run.out.as_deref(),
        )?),
        TrainedCommand::Eval { run, options } => eval_command(&run, options),
    }
}

fn open(run: &RunArgs) -> anyhow::Result<TrainedRun> {
    match &run.spec {
        Some(path) => {
            let spec = aevb::spec::load(path, &[])?;
            let results = PathBuf::from(&spec.runtime.results_dir);
            TrainedRun::open_in(&run.run, &results, Some(&spec.name))
        }
        None => TrainedRun::open(&run.run, &run.results),
    }
}

fn wrote(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    for p in paths {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `runner eval RUN --metrics`: the disentanglement metrics of the saved model, recomputed
/// on its evaluation set (the test split `runner encode` writes), printed and recorded.
fn metrics_command(run: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut trained = open(run)?;
    let scores = reevaluate::remeasure(&mut trained)?;
    for (name, value) in scores.named() {
        let shown = value.map_or("null (undefined here)".into(), |v| format!("{v:.6}"));
        println!("{name:<26} {shown}");
    }
    eprintln!(
        "updated {} and the experiment's tables",
        trained.dir.join("record.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `runner eval RUN`: the log p(x) estimate again (or, with --metrics, the disentanglement
/// metrics), printed and recorded in the run's row.
fn eval_command(run: &RunArgs, options: EvalOptions) -> anyhow::Result<ExitCode> {
    if options.metrics {
        return metrics_command(run);
    }
    let mut request = reevaluate::Request {
        k: options.importance_samples,
        examples: options.examples,
        replace: options.replace,
        threads: options.threads,
        per_example: None,
    };
    let mut trained = open(run)?;
    if options.per_example {
        let dir = run.out.clone().unwrap_or_else(|| trained.dir.clone());
        request.per_example = Some(dir.join("per_example.parquet"));
    }
    let k = request.k.unwrap_or(trained.record.log_px_k);
    eprintln!(
        "run {} ({}): estimating test log p(x) with K = {k}",
        trained.record.run_id, trained.record.label
    );
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let r = reevaluate::reevaluate(&mut trained, &request, &mut |done, n| {
        if last.elapsed().as_secs_f64() > 10.0 {
            eprintln!("  {done}/{n} examples");
            last = std::time::Instant::now();
        }
    })?;
    println!(
        "test ELBO      {:.4} ± {:.4} nats (recorded at the end of training: {})",
        r.test_elbo.mean,
        r.test_elbo.se,
        fmt_opt(r.recorded_test_elbo)
    );
    let s = &r.log_px;
    println!(
        "test log p(x)  {:.4} ± {:.4} nats with K = {} on {} examples (was {} with K = {} on {}); {:.1} s",
        s.log_px.mean,
        s.log_px.se,
        r.k,
        s.log_px.n,
        fmt_opt(r.previous_log_px),
        r.previous_k,
        r.previous_examples,
        started.elapsed().as_secs_f64()
    );
    println!(
        "importance weights: effective sample size mean {:.1}, min {:.2} of K = {}; log-weight sd {:.2}",
        s.ess_mean, s.ess_min, r.k, s.log_w_sd_mean
    );
    println!("log p(x) estimate took {:.2} s", r.log_px_seconds);
    if let Some(warning) = s.warning(r.k) {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = &request.per_example {
        eprintln!("wrote {}", path.display());
    }
    if r.recorded {
        eprintln!(
            "updated {} and the experiment's tables",
            trained.dir.join("record.json").display()
        );
    } else {
        eprintln!(
            "the row keeps its estimate with K = {} on {} examples: this one used fewer samples or examples (--replace to record it anyway)",
            r.previous_k, r.previous_examples
        );
    }
    Ok(ExitCode::SUCCESS)
}
