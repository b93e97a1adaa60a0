//! What training ends with.

use super::state::EpochMetrics;
use super::stopping::Divergence;
use crate::model::Vae;

/// A run's training, ended: its model and how it got there.
pub struct TrainOutcome {
    /// The trained model (on the plain device, for evaluation).
    pub model: Vae,
    /// The engine that took the steps (`Engine::name`): `fused`, `flex`, `ndarray`, `cuda`.
    pub engine: &'static str,
    pub epochs: Vec<EpochMetrics>,
    /// Epoch (1-based) in which the run diverged (see [`Divergence`]), and why.
    pub diverged_at: Option<usize>,
    pub diverged_because: Option<String>,
    /// Epoch (1-based) after which early stopping ended the run, and why.
    pub stopped_at: Option<usize>,
    pub stopped_because: Option<String>,
    /// A stop was asked for (SIGINT/SIGTERM): the run is unfinished and was checkpointed.
    pub interrupted: bool,
    /// Paused at an [`EpochLimit::Pause`], checkpointed, with its active units there (its
    /// test ELBO is the last epoch's).
    pub paused_active_units: Option<usize>,
    /// The divergence rule, anchored at the model's ELBO before training.
    pub divergence: Divergence,
    /// Training seconds over every attempt.
    pub train_seconds: f64,
    pub examples_seen: u64,
    /// Times this run continued from a checkpoint.
    pub resumes: usize,
    /// `train.restore_best`: early stopping ended the run and `model` is the one of this
    /// epoch (1-based), its best evaluation.
    pub restored_epoch: Option<usize>,
}
