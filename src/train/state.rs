//! A run's training state: what a checkpoint holds and a resume restores, the metrics of
//! each epoch, and the observer that sees them.

use crate::data::Dataset;
use crate::engine::{self, Engine};

/// JSON has no NaN or infinity: serde_json writes them as `null`. Fields that may hold them
/// (the metrics of a diverged epoch) read `null` back as NaN instead of failing to load.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Metrics of one epoch; test values only on epochs that were evaluated.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Training examples processed so far (the AEVB paper's x-axis).
    pub examples_seen: u64,
    pub beta: f64,
    pub lr: f64,
    /// Mean training objective (β-weighted bound) over the epoch's minibatches.
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_objective: f64,
    /// Mean ELBO terms on the minibatches as they were trained (β = 1).
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_elbo: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_recon: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_kl: f64,
    /// The mean total correlation estimate over the epoch's examples: β-TCVAE's
    /// minibatch-weighted one, FactorVAE's discriminator's (its logit difference).
    #[serde(default)]
    pub train_tc: Option<f64>,
    /// FactorVAE: the discriminator's mean loss (ln 2 ≈ 0.693 when it cannot tell q(z) from
    /// the product of its marginals).
    #[serde(default)]
    pub train_discriminator_loss: Option<f64>,
    /// AnnealedVAE: the capacity C at the epoch's last step, nats.
    #[serde(default)]
    pub capacity: Option<f64>,
    pub test_elbo: Option<f64>,
    pub test_recon: Option<f64>,
    pub test_kl: Option<f64>,
    /// Standard errors of the test ELBO and KL over the test examples.
    #[serde(default)]
    pub test_elbo_se: Option<f64>,
    #[serde(default)]
    pub test_kl_se: Option<f64>,
    /// The ELBO of the validation set (`data.validation`), which early stopping reads
    /// where there is one, and its standard error over the validation examples.
    #[serde(default)]
    pub valid_elbo: Option<f64>,
    #[serde(default)]
    pub valid_elbo_se: Option<f64>,
    /// Wall seconds of the epoch: its training pass, evaluation and observers.
    #[serde(deserialize_with = "f64_or_nan")]
    pub seconds: f64,
    /// Wall seconds of the training pass alone (minibatches and optimiser steps), what
    /// PyTorch's reference scripts report as an epoch's time (benches/side_by_side.py).
    #[serde(default, deserialize_with = "f64_or_nan")]
    pub train_pass_seconds: f64,
}

/// Hooks for progress bars, sinks and checkpoints; the loop knows nothing about any of them.
pub trait Observer {
    /// After each optimiser step, with the training examples seen so far.
    fn on_batch(&mut self, _examples_seen: u64) {}
    /// After each epoch; `engine` gives the model (`Engine::model`) where the observer needs
    /// it (images), so epochs that need none copy nothing.
    fn on_epoch(&mut self, _metrics: &EpochMetrics, _engine: &dyn Engine, _data: &Dataset) {}
    /// The full training state, every `train.checkpoint_every_epochs` epochs, when a stop
    /// is asked for (SIGINT/SIGTERM), and when training ends (before the final evaluation):
    /// what [`Resume`] continues from.
    fn on_checkpoint(&mut self, _checkpoint: Checkpoint<'_>) {}
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {}

/// Where training stands, at a minibatch boundary: with the model and optimiser state, all
/// that continuing needs. The random streams are derived from (seed, epoch, step), so their
/// position is `epoch` and `step`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// The epoch in progress (0-based) and the minibatches of it already trained.
    pub epoch: usize,
    pub step: usize,
    /// The epoch's sums so far over examples: β-weighted bound, recon, KL.
    #[serde(deserialize_with = "f64_or_nan")]
    pub sum_bound: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sum_recon: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sum_kl: f64,
    /// β-TCVAE's total correlation summed over the epoch's examples so far.
    #[serde(default, deserialize_with = "f64_or_nan")]
    pub sum_tc: f64,
    /// FactorVAE's discriminator loss summed likewise.
    #[serde(default, deserialize_with = "f64_or_nan")]
    pub sum_discriminator: f64,
    /// Seconds spent in the epoch in progress.
    pub epoch_seconds: f64,
    pub examples_seen: u64,
    /// Metrics of the finished epochs.
    pub epochs: Vec<EpochMetrics>,
    /// The divergence rule's anchor (NaN before the first minibatch).
    #[serde(deserialize_with = "f64_or_nan")]
    pub divergence_initial: f64,
    /// Training seconds over every attempt so far.
    pub train_seconds: f64,
    /// Early stopping: the best ELBO so far of the set it watches (validation, else test)
    /// and evaluations since it improved.
    pub best_test_elbo: Option<f64>,
    pub evaluations_without_improvement: usize,
    /// Attempts that continued from a checkpoint before this one.
    pub resumes: usize,
    /// Early stopping ended training after this epoch (1-based), for this reason.
    #[serde(default)]
    pub stopped: Option<(usize, String)>,
    /// The epoch (1-based) of the best evaluation early stopping has seen, and whether
    /// early stopping (not a limit) is what ended the run.
    #[serde(default)]
    pub best_epoch: Option<usize>,
    #[serde(default)]
    pub stopped_early: bool,
}

impl TrainState {
    /// The epoch in progress is done: the next one starts at its first minibatch.
    pub(super) fn start_next_epoch(&mut self) {
        self.epoch += 1;
        self.step = 0;
        self.sum_bound = 0.0;
        self.sum_recon = 0.0;
        self.sum_kl = 0.0;
        self.sum_tc = 0.0;
        self.sum_discriminator = 0.0;
        self.epoch_seconds = 0.0;
    }
}

/// What a checkpoint holds, borrowed from the loop.
pub struct Checkpoint<'a> {
    pub state: &'a TrainState,
    /// The engine: its model and optimiser state.
    pub engine: &'a dyn Engine,
    /// `train.restore_best`: the engine's files at the best evaluation so far.
    pub best: Option<&'a engine::Files>,
}

/// A run continued from a checkpoint: its state and its engine's model and optimiser state.
pub struct Resume {
    pub state: TrainState,
    pub engine: engine::Saved,
    /// The engine's files at the best evaluation so far (`train.restore_best`).
    pub best: Option<engine::Files>,
}
