//! A run's final evaluation at β = 1: train and test ELBO, the test log p(x) by importance
//! sampling with its diagnostics, and active units, each mean with its standard error.
//!
//! Every phase survives schedulers that kill often: the ELBO terms are saved once computed,
//! the log p(x) estimate (the slow part: minutes at K = 5000) after its first round of
//! chunks, then after each round of about half a second as long as saving costs at most 5%
//! of the time (and at least every `eval.checkpoint_every_seconds`), and on SIGINT/SIGTERM;
//! the metrics once computed. All of it goes beside the trained model's checkpoint and a
//! rerun continues from it. Blocks carry their own noise streams, and a block part-way is
//! saved exactly where it stands, so the continued estimate equals one that ran through,
//! bit for bit.

use std::time::Instant;

use super::eval_progress::{ElboParts, EvalProgress, MetricParts, ProgressFile};
use crate::data::{self, Dataset};
use crate::eval::{self, LogPxJob};
use crate::model::Vae;
use crate::progress::RunProgress;
use crate::sinks::results::RunRecord;
use crate::spec::{Binarization, RunConfig};
use crate::test_signal::{Phase, at_phase};
use crate::train::eval_rng;

/// Saving the estimate's progress may take up to one part in SAVE_SHARE of its time.
const SAVE_SHARE: f64 = 20.0;

/// How a final evaluation ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Evaluated {
    Done,
    /// Stopped by SIGINT/SIGTERM with its progress saved.
    Interrupted,
}

/// Final numbers at β = 1 on the trained model, into `record`; on `threads` threads.
/// Continues from the progress `saved` holds, and saves each phase as it ends.
pub(super) fn final_evaluation(
    model: &Vae,
    data: &Dataset,
    config: &RunConfig,
    threads: usize,
    saved: &ProgressFile,
    record: &mut RunRecord,
    progress: &RunProgress,
) -> anyhow::Result<Evaluated> {
    eval::with_model(model, config, threads, |m| {
        let mut state = saved.load().unwrap_or_default();
        at_phase(Phase::Evaluation);
        let elbo = match state.elbo {
            Some(parts) => parts,
            None => {
                let parts = elbo_terms(m, data, config);
                state.elbo = Some(parts);
                save_noting(saved, &state, progress);
                parts
            }
        };
        record_elbo(&elbo, record);
        at_phase(Phase::LogPx);
        let subset = log_px_subset(data, config);
        if !log_px(m, &subset, config, saved, &mut state, progress)? {
            return Ok(Evaluated::Interrupted);
        }
        let summary = state.log_px.examples.summary();
        record.test_log_px = Some(summary.log_px.mean);
        record.test_log_px_se = summary.log_px.se();
        record.log_px_examples = summary.log_px.n;
        record.log_px_ess_mean = Some(summary.ess_mean);
        record.log_px_ess_min = Some(summary.ess_min);
        record.log_w_sd_mean = Some(summary.log_w_sd_mean);
        if let Some(warning) = summary.warning(config.eval.importance_samples) {
            progress.note(&warning);
        }
        at_phase(Phase::Metrics);
        let metrics = match state.metrics {
            Some(parts) => parts,
            None => {
                let parts = metrics(model, data, config);
                state.metrics = Some(parts);
                save_noting(saved, &state, progress);
                parts
            }
        };
        if metrics[0] < 2.0 {
            progress.note(&format!(
                "dis_gaussian_tc: {} active unit(s), fewer than two: there is no correlation to measure, so it is left empty",
                metrics[0]
            ));
        }
        record_metrics(&metrics, record);
        at_phase(Phase::Record);
        Ok(Evaluated::Done)
    })?
}

/// Saves `state`; a failure is said, and costs only what a kill would.
fn save_noting(saved: &ProgressFile, state: &EvalProgress, progress: &RunProgress) {
    if let Err(e) = saved.save(state) {
        progress.note(&format!("cannot save the evaluation's progress: {e:#}"));
    }
}

/// Active units and the disentanglement scores: one pass of the encoder over the test set
/// serves them all.
fn metrics(model: &Vae, data: &Dataset, config: &RunConfig) -> MetricParts {
    let (means, _) = eval::posterior_params(model, &data.test);
    let latent = config.model.latent_dim;
    let active = eval::active_dims(&means, latent, config.eval.active_unit_threshold);
    let scores = crate::metrics::Scores::of(&means, latent, &active, data.test_factors.as_ref());
    let mut parts = [f64::NAN; 1 + crate::metrics::NAMES.len()];
    parts[0] = active.len() as f64;
    for (slot, (_, v)) in parts[1..].iter_mut().zip(scores.named()) {
        *slot = v.unwrap_or(f64::NAN);
    }
    parts
}

fn record_metrics(parts: &MetricParts, record: &mut RunRecord) {
    record.active_units = Some(parts[0] as usize);
    let values = std::array::from_fn(|i| Some(parts[1 + i]).filter(|v| !v.is_nan()));
    record.set_disentanglement(&crate::metrics::Scores::from_values(values));
}

/// The train and test ELBO terms. Dynamically binarized training data are scored on one
/// fixed binarization.
fn elbo_terms(m: &eval::Model<'_>, data: &Dataset, config: &RunConfig) -> ElboParts {
    let mut train_data = data.train.clone();
    if config.data.binarization == Binarization::Dynamic {
        data::bernoulli_sample(&mut train_data.values, &mut eval_rng(config.train.seed));
    }
    let train = eval::elbo(m, &train_data, config);
    let test = eval::elbo(m, &data.test, config);
    let none = f64::NAN;
    [
        train.elbo.mean,
        train.recon.mean,
        train.kl.mean,
        test.elbo.mean,
        test.recon.mean,
        test.kl.mean,
        test.elbo.se().unwrap_or(none),
        test.kl.se().unwrap_or(none),
    ]
}

fn record_elbo(p: &ElboParts, record: &mut RunRecord) {
    record.train_elbo = Some(p[0]);
    record.train_recon = Some(p[1]);
    record.train_kl = Some(p[2]);
    record.test_elbo = Some(p[3]);
    record.test_recon = Some(p[4]);
    record.test_kl = Some(p[5]);
    record.test_elbo_se = Some(p[6]).filter(|v| v.is_finite());
    record.test_kl_se = Some(p[7]).filter(|v| v.is_finite());
}

/// The test examples log p(x) is estimated on (`eval.log_px_examples`, else all).
pub fn log_px_subset(data: &Dataset, config: &RunConfig) -> data::Matrix {
    match config.eval.log_px_examples {
        Some(n) => data.test.head(n),
        None => data.test.clone(),
    }
}

/// The estimate, continued from `state`; false when a stop was asked for (its progress
/// saved).
fn log_px(
    m: &eval::Model<'_>,
    subset: &data::Matrix,
    config: &RunConfig,
    saved: &ProgressFile,
    state: &mut EvalProgress,
    progress: &RunProgress,
) -> anyhow::Result<bool> {
    let k = config.eval.importance_samples;
    progress.evaluation_start(subset.rows, k);
    let begun = state.log_px.samples_done(k);
    if begun > 0 {
        progress.note(&format!(
            "log p(x): continuing from saved progress ({} of {} examples done, {:.1}% of the samples)",
            state.log_px.examples_done(k),
            subset.rows,
            100.0 * begun as f64 / (subset.rows as f64 * k.max(1) as f64)
        ));
    }
    let every = config.eval.checkpoint_every_seconds;
    // The first round is saved at once, so that an attempt killed seconds later keeps it;
    // after that, whenever `every` seconds have passed or saving would cost at most
    // 1/SAVE_SHARE of the time since the last save.
    let mut last_save: Option<(Instant, f64)> = None;
    let mut save_error = None;
    let job = LogPxJob {
        k,
        max_rows: config.eval.max_rows_per_chunk,
        seed: config.train.seed,
        stoppable: true,
    };
    let (elbo, metrics) = (state.elbo, state.metrics);
    let complete = eval::log_px(m, subset, job, &mut state.log_px, &mut |now| {
        let done = now.examples_done(k);
        progress.evaluation(done, subset.rows);
        let due = last_save.is_none_or(|(at, cost): (Instant, f64)| {
            let since = at.elapsed().as_secs_f64();
            since >= every || since >= SAVE_SHARE * cost
        });
        // The last round too: a kill before the record is written loses nothing.
        if due || crate::interrupt::requested() || done == subset.rows {
            let started = Instant::now();
            if let Err(e) = saved.save_parts(elbo.as_ref(), now, metrics.as_ref()) {
                save_error.get_or_insert(e);
            }
            last_save = Some((Instant::now(), started.elapsed().as_secs_f64()));
        }
        crate::test_signal::after_evaluated(done);
    });
    if let Some(e) = save_error {
        progress.note(&format!("cannot save the evaluation's progress: {e:#}"));
    }
    if !complete {
        saved.save(state)?;
    }
    Ok(complete)
}
