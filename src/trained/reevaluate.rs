//! `runner eval`: re-estimate a trained run's test log p(x), by default with the run's own K
//! (which reproduces the recorded numbers bit for bit, on any thread count), or with more
//! importance samples (the last step of the IWAE paper's protocol, K = 5000) and update its
//! row; optionally write every test example's values to a Parquet file.
//!
//! The row keeps the better-founded estimate: a new one replaces the recorded one only when
//! it uses at least as many samples on at least as many examples (or `--replace` says so),
//! so a quick check with K = 1000 never overwrites a K = 5000 number.

use std::path::{Path, PathBuf};

use polars::prelude::{Column, DataFrame};

use crate::eval::{self, ExampleTerms, ImportanceExamples, LogPxJob, LogPxSummary};
use crate::sinks::parquet::write_parquet_atomic;
use crate::sinks::results::{ResultsDir, RunRecord};

use super::TrainedRun;

/// What `runner eval` was asked for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Importance samples (default: the run's recorded K).
    pub k: Option<usize>,
    /// On the first N test examples (default: as many as the run used).
    pub examples: Option<usize>,
    pub replace: bool,
    /// Threads to evaluate on (default: every core); the numbers do not depend on it.
    pub threads: Option<usize>,
    /// Write one row per test example to this Parquet file.
    pub per_example: Option<PathBuf>,
}

pub struct Reevaluation {
    /// The test ELBO of the loaded model, with the run's own evaluation noise: equal to the
    /// recorded one (a check that the saved model is the trained one).
    pub test_elbo: eval::Estimate,
    pub recorded_test_elbo: Option<f64>,
    pub log_px: LogPxSummary,
    /// Wall seconds of the log p(x) estimate alone.
    pub log_px_seconds: f64,
    pub k: usize,
    pub previous_log_px: Option<f64>,
    pub previous_k: usize,
    pub previous_examples: usize,
    /// Whether the row now holds the new estimate (else it kept the previous one).
    pub recorded: bool,
}

/// Whether an estimate with `k` samples on `examples` examples may replace the recorded
/// one (`previous`: its K and examples, where there is one).
pub fn supersedes(k: usize, examples: usize, previous: Option<(usize, usize)>) -> bool {
    previous.is_none_or(|(pk, pn)| k >= pk && examples >= pn)
}

/// Recomputes the test ELBO and estimates log p(x) as `request` says, then rewrites the
/// run's record and the experiment's tables where the estimate supersedes the recorded
/// one. `progress` gets the examples done so far.
pub fn reevaluate(
    run: &mut TrainedRun,
    request: &Request,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Reevaluation> {
    let config = run.record.config.clone();
    let k = request.k.unwrap_or(run.record.log_px_k.max(1));
    anyhow::ensure!(k > 0, "--importance-samples: expected at least 1 sample");
    let threads = request.threads.unwrap_or_else(crate::backend::cores).max(1);
    let test = &run.data.test;
    let n = request
        .examples
        .or(config.eval.log_px_examples)
        .unwrap_or(test.rows)
        .min(test.rows);
    let subset = test.head(n);
    let job = LogPxJob {
        k,
        max_rows: config.eval.max_rows_per_chunk,
        seed: config.train.seed,
        stoppable: false,
    };
    let (terms, importance, log_px_seconds) =
        eval::with_model(&run.model, &config, threads, |m| {
            let terms = eval::elbo_examples(m, test, &config);
            let mut importance = eval::LogPxProgress::default();
            let started = std::time::Instant::now();
            eval::log_px(m, &subset, job, &mut importance, &mut |done| {
                progress(done.examples_done(k), n)
            });
            (terms, importance.examples, started.elapsed().as_secs_f64())
        })?;
    if let Some(path) = &request.per_example {
        write_per_example(path, &terms, &importance, run.data.test_labels.as_deref())?;
    }
    let summary = importance.summary();
    let previous = run
        .record
        .test_log_px
        .map(|_| (run.record.log_px_k, run.record.log_px_examples));
    let recorded = request.replace || supersedes(k, summary.log_px.n, previous);
    let result = Reevaluation {
        test_elbo: terms.summary().elbo,
        recorded_test_elbo: run.record.test_elbo,
        log_px: summary,
        log_px_seconds,
        k,
        previous_log_px: run.record.test_log_px,
        previous_k: run.record.log_px_k,
        previous_examples: run.record.log_px_examples,
        recorded,
    };
    if recorded {
        record(run, &result)?;
    }
    Ok(result)
}

/// The disentanglement metrics of the saved model on its evaluation set (the test split's
/// posterior means; the same numbers the run recorded at the end of training), written
/// into its row and the experiment's tables.
pub fn remeasure(run: &mut TrainedRun) -> anyhow::Result<crate::metrics::Scores> {
    let latent = run.record.config.model.latent_dim;
    let (means, _) = eval::posterior_params(&run.model, &run.data.test);
    let threshold = run.record.config.eval.active_unit_threshold;
    let active = eval::active_dims(&means, latent, threshold);
    let scores =
        crate::metrics::Scores::of(&means, latent, &active, run.data.test_factors.as_ref());
    update(run, |r| r.set_disentanglement(&scores))?;
    Ok(scores)
}

/// Writes the new estimate into the run's row and the experiment's tables.
fn record(run: &mut TrainedRun, result: &Reevaluation) -> anyhow::Result<()> {
    let s = &result.log_px;
    update(run, |r| {
        r.test_log_px = Some(s.log_px.mean);
        r.test_log_px_se = s.log_px.se();
        r.log_px_k = result.k;
        r.log_px_examples = s.log_px.n;
        r.log_px_ess_mean = Some(s.ess_mean);
        r.log_px_ess_min = Some(s.ess_min);
        r.log_w_sd_mean = Some(s.log_w_sd_mean);
    })
}

/// Changes the run's record with `change` and rewrites it and the experiment's tables,
/// holding the run's claim (so no sweep or other evaluation writes it meanwhile).
fn update(run: &mut TrainedRun, change: impl FnOnce(&mut RunRecord)) -> anyhow::Result<()> {
    // The run's folder is results/<experiment>/runs/<id>.
    let experiment = run
        .dir
        .parent()
        .and_then(|runs| runs.parent())
        .ok_or_else(|| anyhow::anyhow!("{}: not inside a results folder", run.dir.display()))?;
    let out = ResultsDir {
        root: experiment.to_path_buf(),
    };
    let Some(_claim) = out.claim(&run.record.run_id)? else {
        anyhow::bail!(
            "run {} is being trained or evaluated by another process; try again when it is done",
            run.record.run_id
        );
    };
    change(&mut run.record);
    out.save_record(&run.record)?;
    out.write_tables()?;
    Ok(())
}

/// One row per test example: its index, label (where the data have them), ELBO terms, and
/// log p(x) with its ESS and log-weight spread (null past the examples it was estimated on).
pub fn write_per_example(
    path: &Path,
    terms: &ExampleTerms,
    importance: &ImportanceExamples,
    labels: Option<&[u32]>,
) -> anyhow::Result<()> {
    let rows = terms.recon.len();
    let padded = |v: &[f64]| -> Vec<Option<f64>> { (0..rows).map(|i| v.get(i).copied()).collect() };
    let mut columns = vec![Column::new(
        "index".into(),
        (0..rows as i64).collect::<Vec<_>>(),
    )];
    if let Some(labels) = labels {
        columns.push(Column::new(
            "label".into(),
            labels[..rows.min(labels.len())].to_vec(),
        ));
    }
    columns.extend([
        Column::new("elbo".into(), terms.elbo()),
        Column::new("recon".into(), terms.recon.clone()),
        Column::new("kl".into(), terms.kl.clone()),
        Column::new("log_px".into(), padded(&importance.log_px)),
        Column::new("ess".into(), padded(&importance.ess)),
        Column::new("log_w_sd".into(), padded(&importance.log_w_sd)),
    ]);
    let mut frame = DataFrame::new(rows, columns)?;
    write_parquet_atomic(path, &mut frame)
}
