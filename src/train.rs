//! Training a run: its state and metrics, the random streams that make it resumable at any
//! minibatch, and the entry points; the epoch loop itself is `trainer`.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::Dataset;
use crate::engine::{self, Engine};
use crate::model::Vae;
use crate::spec::{LrSchedule, RunConfig, TrainConfig};

mod stopping;
mod trainer;
pub use stopping::{Divergence, EpochLimit};
use trainer::Trainer;

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
    fn start_next_epoch(&mut self) {
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

/// Salt that keeps the evaluation noise stream apart from the training stream.
pub const EVAL_SEED_SALT: u64 = 0x5EED_E7A1;

/// The independent random streams of a run, each a function of (seed, epoch, step), so
/// that a run continued from any minibatch draws exactly what an uninterrupted one does.
#[derive(Clone, Copy)]
enum Stream {
    /// Weight initialisation.
    Init,
    /// An epoch's minibatch order.
    Shuffle,
    /// A minibatch's noise (reparameterisation, dynamic binarisation).
    Step,
}

fn stream(seed: u64, stream: Stream, epoch: usize, step: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(step as u64).to_le_bytes());
    key[24] = stream as u8 + 1;
    StdRng::from_seed(key)
}

/// Trains `config` to its end: [`train_until`] without a limit.
pub fn train(
    config: &RunConfig,
    data: &Dataset,
    device: &Device,
    threads: usize,
    observer: &mut dyn Observer,
    resume: Option<Resume>,
) -> anyhow::Result<TrainOutcome> {
    train_until(config, data, device, threads, observer, resume, None)
}

/// Trains `config` from scratch, or from `resume`, on `device` (the fused engine: on
/// `threads` threads). Fails only on a resume whose model or optimiser state does not fit
/// this config. Ends at `limit` where one is set.
pub fn train_until(
    config: &RunConfig,
    data: &Dataset,
    device: &Device,
    threads: usize,
    observer: &mut dyn Observer,
    resume: Option<Resume>,
    limit: Option<&EpochLimit>,
) -> anyhow::Result<TrainOutcome> {
    // This thread computes the run (and then evaluates it): no slow subnormal arithmetic.
    crate::fpu::flush_subnormals();
    let mut state = TrainState {
        divergence_initial: f64::NAN,
        ..TrainState::default()
    };
    let mut best = None;
    let saved = resume.map(|resume| {
        state = resume.state;
        state.resumes += 1;
        best = resume.best;
        resume.engine
    });
    let engine = engine::start(config, data, device, threads, &mut init_rng(config), saved)?;
    let trainer = Trainer::new(config, data, observer, engine, state, limit);
    trainer.with_best(best).run(device, threads)
}

/// The weight initialisation's stream (an engine restarted from saved files draws it too).
fn init_rng(config: &RunConfig) -> StdRng {
    stream(config.train.seed, Stream::Init, 0, 0)
}

/// A fresh evaluation noise stream: every evaluation of a run uses the same draws.
pub fn eval_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ EVAL_SEED_SALT)
}

/// Learning rate of a (0-based) epoch.
pub fn lr_at(t: &TrainConfig, epoch: usize) -> f64 {
    match t.lr_schedule {
        LrSchedule::Constant => t.lr,
        LrSchedule::Burda => {
            // Stage i lasts 3^i epochs at lr · 10^(−i/7), i = 0..=7.
            let mut end = 0;
            for i in 0..=7u32 {
                end += 3usize.pow(i);
                if epoch < end {
                    return t.lr * 10f64.powf(-(i as f64) / 7.0);
                }
            }
            t.lr * 10f64.powf(-1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the reads from the device made before each step's `on_batch`.
    struct Reads(Vec<u64>);
    impl Observer for Reads {
        fn on_batch(&mut self, _examples_seen: u64) {
            self.0.push(crate::data::device::reads());
        }
    }

    /// One epoch of burn's autodiff on flex: the reads made during each step, and the run's
    /// epoch metrics.
    fn reads_per_step_on_flex() -> (Vec<u64>, Vec<EpochMetrics>) {
        let mut config = RunConfig::default();
        config.data.dataset = crate::spec::DatasetKind::Digits;
        config.data.binarization = crate::spec::Binarization::Dynamic;
        config.model.latent_dim = 3;
        config.model.encoder.hidden = vec![16];
        config.model.decoder.hidden = vec![16];
        config.train.epochs = 1;
        config.train.batch_size = 64;
        config.runtime.backend = crate::spec::BackendKind::Flex;
        let data = crate::data::load(&config.data).unwrap();
        assert!(data.dynamic_binarization);
        let device = burn::tensor::Device::flex();
        let mut reads = Reads(Vec::new());
        let outcome = train(&config, &data, &device, 1, &mut reads, None).unwrap();
        assert_eq!(reads.0.len(), data.train.rows.div_ceil(64));
        let during: Vec<u64> = reads.0.windows(2).map(|w| w[1] - w[0]).collect();
        (during, outcome.epochs)
    }

    #[test]
    fn a_burn_training_step_reads_nothing_back_from_the_device() {
        let (during, epochs) = reads_per_step_on_flex();
        assert!(during.len() > 10, "{during:?}");
        assert!(during.iter().all(|&r| r == 0), "reads per step: {during:?}");
        // The sums were read once, at the pass's end: the epoch's metrics are all there.
        let e = &epochs[0];
        assert!(e.train_elbo.is_finite() && e.train_elbo < 0.0, "{e:?}");
        assert!((e.train_elbo - (e.train_recon - e.train_kl)).abs() < 1e-9);
        assert!(e.test_elbo.is_some_and(f64::is_finite));
    }

    #[test]
    fn divergence_is_a_non_finite_bound_or_one_far_from_its_initial_value() {
        // Allowed distance: 100 × max(|−50|, 1) = 5000 nats.
        let d = Divergence {
            initial: -50.0,
            factor: 100.0,
        };
        assert_eq!(d.check("b", -40.0), None);
        assert_eq!(d.check("b", -5049.0), None);
        assert!(
            d.check("b", -5051.0)
                .is_some_and(|m| m.contains("b -5.051"))
        );
        assert!(d.check("b", 4951.0).is_some());
        assert!(d.check("b", f64::NAN).is_some_and(|m| m.contains("NaN")));
        assert!(d.check("b", f64::NEG_INFINITY).is_some());
        // Near zero the scale is 1 nat, not |initial|.
        let small = Divergence {
            initial: 0.2,
            factor: 100.0,
        };
        assert_eq!(small.check("b", 100.1), None);
        assert!(small.check("b", 100.3).is_some());
    }

    #[test]
    fn burda_schedule_has_3280_epochs_in_eight_stages() {
        let t = TrainConfig {
            lr: 1e-3,
            lr_schedule: LrSchedule::Burda,
            ..TrainConfig::default()
        };
        assert_eq!(lr_at(&t, 0), 1e-3);
        assert!((lr_at(&t, 1) - 1e-3 * 10f64.powf(-1.0 / 7.0)).abs() < 1e-15);
        assert!((lr_at(&t, 3) - lr_at(&t, 1)).abs() < 1e-18);
        assert!(lr_at(&t, 4) < lr_at(&t, 3));
        // 1 + 3 + ... + 3^7 = 3280: the last stage runs at 1e-3 · 10^(−1).
        assert!((lr_at(&t, 3279) - 1e-3 * 10f64.powf(-1.0)).abs() < 1e-15);
        assert!(lr_at(&t, 3279) < lr_at(&t, 1092));
    }
}
