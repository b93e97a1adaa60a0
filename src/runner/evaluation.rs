//! A run's final evaluation at β = 1: train and test ELBO, the test log p(x) by importance
//! sampling with its diagnostics, and active units, each mean with its standard error.
//!
//! The log p(x) estimate is the slow part (minutes at K = 5000), so it survives schedulers:
//! its progress (whole blocks of examples) is saved beside the trained model's checkpoint
//! after its first group of blocks, then as often as saving costs at most 5% of the time
//! (and at least every `eval.checkpoint_every_seconds`), and on SIGINT/SIGTERM; a rerun
//! continues it.
//! Blocks carry their own noise streams, so the continued estimate equals one that ran
//! through, bit for bit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::data::{self, Dataset};
use crate::eval::{self, ImportanceExamples, LogPxJob};
use crate::model::Vae;
use crate::progress::RunProgress;
use crate::sinks::results::{RunRecord, write_atomic};
use crate::spec::{Binarization, RunConfig};
use crate::train::eval_rng;

/// Saving the estimate's progress may take up to one part in SAVE_SHARE of its time.
const SAVE_SHARE: f64 = 20.0;

/// File of the estimate's progress, inside the trained model's checkpoint folder.
pub const PROGRESS_FILE: &str = "evaluation.safetensors";

/// How a final evaluation ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Evaluated {
    Done,
    /// Stopped by SIGINT/SIGTERM with its progress saved.
    Interrupted,
}

/// Where a run's estimate saves its progress, and what it must match to be continued: the
/// run, the trained model (its examples seen), K, the examples, the seed and the engine.
pub(super) struct ProgressFile {
    pub path: Option<PathBuf>,
    pub key: HashMap<String, String>,
}

impl ProgressFile {
    pub(super) fn new(
        checkpoint: Option<PathBuf>,
        run_id: &str,
        examples_seen: u64,
        config: &RunConfig,
        examples: usize,
    ) -> Self {
        let key = [
            ("run_id", run_id.to_string()),
            ("examples_seen", examples_seen.to_string()),
            ("k", config.eval.importance_samples.to_string()),
            ("examples", examples.to_string()),
            ("seed", config.train.seed.to_string()),
            ("max_rows", config.eval.max_rows_per_chunk.to_string()),
            ("engine", crate::engine::identity(config)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            path: checkpoint.map(|dir| dir.join(PROGRESS_FILE)),
            key,
        }
    }

    /// The saved progress, if there is one for exactly this estimate.
    pub(super) fn load(&self) -> Option<ImportanceExamples> {
        let bytes = std::fs::read(self.path.as_ref()?).ok()?;
        read_progress(&bytes, &self.key).ok()
    }

    pub(super) fn save(&self, done: &ImportanceExamples) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        write_atomic(path, &progress_bytes(done, &self.key)?)
    }
}

fn progress_bytes(
    done: &ImportanceExamples,
    key: &HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let arrays = [
        ("log_px", bytes(&done.log_px)),
        ("ess", bytes(&done.ess)),
        ("log_w_sd", bytes(&done.log_w_sd)),
    ];
    let views = arrays
        .iter()
        .map(|(name, data)| {
            Ok((
                *name,
                TensorView::new(Dtype::F64, vec![data.len() / 8], data)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, Some(key.clone()))?)
}

fn read_progress(
    bytes: &[u8],
    key: &HashMap<String, String>,
) -> anyhow::Result<ImportanceExamples> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    anyhow::ensure!(
        header.metadata().as_ref() == Some(key),
        "saved for another estimate"
    );
    let tensors = safetensors::SafeTensors::deserialize(bytes)?;
    let array = |name: &str| -> anyhow::Result<Vec<f64>> {
        Ok(tensors
            .tensor(name)?
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect())
    };
    let done = ImportanceExamples {
        log_px: array("log_px")?,
        ess: array("ess")?,
        log_w_sd: array("log_w_sd")?,
    };
    anyhow::ensure!(
        done.ess.len() == done.len() && done.log_w_sd.len() == done.len(),
        "arrays of different lengths"
    );
    let examples: usize = key
        .get("examples")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(
        done.len() <= examples
            && (done.len().is_multiple_of(eval::blocks::BLOCK_EXAMPLES) || done.len() == examples),
        "not whole blocks"
    );
    Ok(done)
}

/// Final numbers at β = 1 on the trained model, into `record`; on `threads` threads.
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
        elbo_terms(m, data, config, record);
        let subset = log_px_subset(data, config);
        let Some(done) = log_px(m, &subset, config, saved, progress)? else {
            return Ok(Evaluated::Interrupted);
        };
        let summary = done.summary();
        record.test_log_px = Some(summary.log_px.mean);
        record.test_log_px_se = summary.log_px.se();
        record.log_px_examples = summary.log_px.n;
        record.log_px_ess_mean = Some(summary.ess_mean);
        record.log_px_ess_min = Some(summary.ess_min);
        record.log_w_sd_mean = Some(summary.log_w_sd_mean);
        if let Some(warning) = summary.warning(config.eval.importance_samples) {
            progress.note(&warning);
        }
        // One pass of the encoder over the test set serves all three.
        let (means, _) = eval::posterior_params(model, &data.test);
        let latent = config.model.latent_dim;
        record.active_units = Some(eval::count_active(
            &means,
            latent,
            config.eval.active_unit_threshold,
        ));
        let scores = crate::metrics::Scores::of(&means, latent, data.test_factors.as_ref());
        record.set_disentanglement(&scores);
        Ok(Evaluated::Done)
    })?
}

/// The train and test ELBO terms. Dynamically binarized training data are scored on one
/// fixed binarization.
fn elbo_terms(m: &eval::Model<'_>, data: &Dataset, config: &RunConfig, record: &mut RunRecord) {
    let mut train_data = data.train.clone();
    if config.data.binarization == Binarization::Dynamic {
        data::bernoulli_sample(&mut train_data.values, &mut eval_rng(config.train.seed));
    }
    let train = eval::elbo(m, &train_data, config);
    let test = eval::elbo(m, &data.test, config);
    record.train_elbo = Some(train.elbo.mean);
    record.train_recon = Some(train.recon.mean);
    record.train_kl = Some(train.kl.mean);
    record.test_elbo = Some(test.elbo.mean);
    record.test_recon = Some(test.recon.mean);
    record.test_kl = Some(test.kl.mean);
    record.test_elbo_se = test.elbo.se();
    record.test_kl_se = test.kl.se();
}

/// The test examples log p(x) is estimated on (`eval.log_px_examples`, else all).
pub fn log_px_subset(data: &Dataset, config: &RunConfig) -> data::Matrix {
    match config.eval.log_px_examples {
        Some(n) => data.test.head(n),
        None => data.test.clone(),
    }
}

/// The estimate, continued from saved progress where there is some; `None` when a stop
/// was asked for (its progress saved).
fn log_px(
    m: &eval::Model<'_>,
    subset: &data::Matrix,
    config: &RunConfig,
    saved: &ProgressFile,
    progress: &RunProgress,
) -> anyhow::Result<Option<ImportanceExamples>> {
    let k = config.eval.importance_samples;
    let mut done = saved.load().unwrap_or_default();
    progress.evaluation_start(subset.rows, k);
    if !done.is_empty() {
        progress.note(&format!(
            "log p(x): continuing from saved progress ({} of {} examples done)",
            done.len(),
            subset.rows
        ));
    }
    let every = config.eval.checkpoint_every_seconds;
    // The first finished group is saved at once, so that an attempt killed seconds later
    // keeps it; after that, whenever `every` seconds have passed or saving would cost at
    // most 1/SAVE_SHARE of the time since the last save.
    let mut last_save: Option<(Instant, f64)> = None;
    let mut save_error = None;
    let job = LogPxJob {
        k,
        max_rows: config.eval.max_rows_per_chunk,
        seed: config.train.seed,
        stoppable: true,
    };
    let complete = eval::log_px(m, subset, job, &mut done, &mut |partial| {
        progress.evaluation(partial.len(), subset.rows);
        let due = last_save.is_none_or(|(at, cost): (Instant, f64)| {
            let since = at.elapsed().as_secs_f64();
            since >= every || since >= SAVE_SHARE * cost
        });
        // The last group too: a kill before the record is written loses nothing.
        if due || crate::interrupt::requested() || partial.len() == subset.rows {
            let started = Instant::now();
            if let Err(e) = saved.save(partial) {
                save_error.get_or_insert(e);
            }
            last_save = Some((Instant::now(), started.elapsed().as_secs_f64()));
        }
        crate::test_signal::after_evaluated(partial.len());
    });
    if let Some(e) = save_error {
        progress.note(&format!("cannot save the evaluation's progress: {e:#}"));
    }
    if !complete {
        saved.save(&done)?;
        return Ok(None);
    }
    Ok(Some(done))
}
