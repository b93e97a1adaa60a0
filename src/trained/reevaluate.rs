//! `runner eval`: re-estimate a trained run's test log p(x) with more importance samples
//! (the last step of the IWAE paper's protocol, K = 5000) and update its row.
//!
//! The row keeps the better-founded estimate: a new one replaces the recorded one only when
//! it uses at least as many samples on at least as many examples (or `--replace` says so),
//! so a quick check with K = 1000 never overwrites a K = 5000 number.

use crate::eval;
use crate::sinks::results::ResultsDir;
use crate::train::eval_rng;

use super::TrainedRun;

pub struct Reevaluation {
    /// The test ELBO of the loaded model, with the run's own evaluation noise: equal to the
    /// recorded one (a check that the saved model is the trained one).
    pub test_elbo: f64,
    pub recorded_test_elbo: Option<f64>,
    pub log_px: f64,
    pub k: usize,
    pub examples: usize,
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

/// Recomputes the test ELBO and estimates log p(x) with `k` samples on the first `examples`
/// test examples (default: as many as the run used), then rewrites the run's record and the
/// experiment's tables. `progress` gets the examples done so far.
pub fn reevaluate(
    run: &mut TrainedRun,
    k: usize,
    examples: Option<usize>,
    replace: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Reevaluation> {
    anyhow::ensure!(k > 0, "--importance-samples: expected at least 1 sample");
    let config = run.record.config.clone();
    let seed = config.train.seed;
    let test = &run.data.test;
    let elbo = eval::elbo(&run.model, test, &config, &mut eval_rng(seed)).elbo;
    let n = examples
        .or(config.eval.log_px_examples)
        .unwrap_or(test.rows)
        .min(test.rows);
    let subset = test.head(n);
    let (log_px, examples) = eval::mean_log_px(
        &run.model,
        &subset,
        k,
        config.eval.max_rows_per_chunk,
        &mut eval_rng(seed),
        &mut |done| progress(done, n),
    );
    let previous = run
        .record
        .test_log_px
        .map(|_| (run.record.log_px_k, run.record.log_px_examples));
    let recorded = replace || supersedes(k, examples, previous);
    let result = Reevaluation {
        test_elbo: elbo,
        recorded_test_elbo: run.record.test_elbo,
        log_px,
        k,
        examples,
        previous_log_px: run.record.test_log_px,
        previous_k: run.record.log_px_k,
        previous_examples: run.record.log_px_examples,
        recorded,
    };
    if !recorded {
        return Ok(result);
    }
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
    run.record.test_log_px = Some(log_px);
    run.record.log_px_k = k;
    run.record.log_px_examples = result.examples;
    out.save_record(&run.record)?;
    out.write_tables()?;
    Ok(result)
}
