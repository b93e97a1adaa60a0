//! The commands on trained models: figures, tables, `runner eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use aevb::progress::fmt_opt;
use aevb::trained::{TrainedRun, reevaluate};

use crate::RunArgs;

pub fn open(run: &RunArgs) -> anyhow::Result<TrainedRun> {
    TrainedRun::open(&run.run, &run.results)
}

pub fn wrote(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    for p in paths {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `runner eval RUN --metrics`: the disentanglement metrics of the saved model, recomputed
/// on its evaluation set (the test split `runner encode` writes), printed and recorded.
pub fn metrics_command(run: &RunArgs) -> anyhow::Result<ExitCode> {
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

pub fn eval_command(
    run: &RunArgs,
    mut request: reevaluate::Request,
    per_example: bool,
) -> anyhow::Result<ExitCode> {
    let mut trained = open(run)?;
    if per_example {
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
