//! The training loop: seeded shuffling and noise, per-epoch metrics, NaN detection.

use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdaGradConfig, AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::{Dataset, Matrix, bernoulli_sample};
use crate::eval;
use crate::model::Vae;
use crate::objective;
use crate::spec::{LrSchedule, OptimizerKind, RunConfig, TrainConfig};

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
    pub test_elbo: Option<f64>,
    pub test_recon: Option<f64>,
    pub test_kl: Option<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub seconds: f64,
}

/// Hooks for progress bars and sinks; the loop knows nothing about either.
pub trait Observer {
    /// After each optimiser step, with the training examples seen so far.
    fn on_batch(&mut self, _examples_seen: u64) {}
    fn on_epoch(&mut self, _metrics: &EpochMetrics, _model: &Vae, _data: &Dataset) {}
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {}

pub struct TrainOutcome {
    /// The trained model (on the plain device, for evaluation).
    pub model: Vae,
    pub epochs: Vec<EpochMetrics>,
    /// Epoch (1-based) in which the run diverged (see [`Divergence`]), and why.
    pub diverged_at: Option<usize>,
    pub diverged_because: Option<String>,
    /// The divergence rule, anchored at the model's ELBO before training.
    pub divergence: Divergence,
    pub train_seconds: f64,
    pub examples_seen: u64,
}

/// When a run counts as diverged: a metric that is not finite, or a bound (nats per example)
/// that has moved more than `factor` × max(|initial|, 1) nats away from `initial`, the ELBO
/// of the untrained model on the first minibatch. Training improves a bound by far less
/// than that (MNIST: from about −540 to −100 nats); an exploding optimiser (lr = 1e6 gave
/// −3.7e29) leaves it far behind, finite or not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    pub initial: f64,
    pub factor: f64,
}

impl Divergence {
    /// Why `value` (a bound named `what`) counts as diverged, if it does.
    pub fn check(&self, what: &str, value: f64) -> Option<String> {
        let allowed = self.factor * self.initial.abs().max(1.0);
        if !value.is_finite() {
            Some(format!("{what} became {value}"))
        } else if self.initial.is_finite() && (value - self.initial).abs() > allowed {
            Some(format!(
                "{what} {value:.6e} nats moved more than {allowed:.4e} nats (train.divergence_factor = {} × max(|{:.2}|, 1)) from its value at initialisation",
                self.factor, self.initial
            ))
        } else {
            None
        }
    }
}

/// Salt that keeps the evaluation noise stream apart from the training stream.
pub const EVAL_SEED_SALT: u64 = 0x5EED_E7A1;

pub fn train(
    config: &RunConfig,
    data: &Dataset,
    device: &Device,
    observer: &mut dyn Observer,
) -> TrainOutcome {
    // This thread computes the run (and then evaluates it): no slow subnormal arithmetic.
    crate::fpu::flush_subnormals();
    let t = &config.train;
    let mut rng = StdRng::seed_from_u64(t.seed);
    let train_device = device.clone().autodiff();
    let mut model = Vae::new(&config.model, data.dim(), &mut rng, &train_device);
    let mut optimizer = optimizer(t);
    let mut order: Vec<usize> = (0..data.train.rows).collect();
    let mut epochs = Vec::new();
    let mut examples_seen = 0u64;
    let mut diverged_at = None;
    let mut diverged_because = None;
    let mut divergence = Divergence {
        initial: f64::NAN,
        factor: t.divergence_factor,
    };
    let started = Instant::now();

    for epoch in 0..t.epochs {
        let epoch_start = Instant::now();
        if t.shuffle {
            order.shuffle(&mut rng);
        }
        let beta = objective::beta_at(&config.objective, epoch);
        let lr = lr_at(t, epoch);
        let mut sums = [0f64; 3]; // bound_β, recon, kl, summed over examples
        for batch in order.chunks(t.batch_size) {
            let mut xb = data.train.gather(batch);
            if data.dynamic_binarization {
                bernoulli_sample(&mut xb.values, &mut rng);
            }
            let x = to_tensor(&xb, &train_device);
            let terms = objective::evaluate(&model, x, &config.objective, beta, &mut rng);
            let loss = terms.loss();
            let stats = Tensor::cat(
                vec![
                    terms.bound.clone().sum().detach(),
                    terms.recon.sum().detach(),
                    terms.kl.sum().detach(),
                ],
                0,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            let stats = crate::model::prior::host(stats);
            if examples_seen == 0 {
                // Computed before the first step: the bound of the untrained model.
                divergence.initial = (stats[1] as f64 - stats[2] as f64) / batch.len() as f64;
            }
            for (s, v) in sums.iter_mut().zip(&stats) {
                *s += *v as f64;
            }
            examples_seen += batch.len() as u64;
            observer.on_batch(examples_seen);
            if !stats.iter().all(|v| v.is_finite()) {
                break;
            }
        }
        let n = data.train.rows as f64;
        let mut metrics = EpochMetrics {
            epoch: epoch + 1,
            examples_seen,
            beta,
            lr,
            train_objective: sums[0] / n,
            train_elbo: (sums[1] - sums[2]) / n,
            train_recon: sums[1] / n,
            train_kl: sums[2] / n,
            ..Default::default()
        };
        let train_bound = if sums.iter().all(|v| v.is_finite()) {
            metrics.train_elbo
        } else {
            f64::NAN
        };
        if let Some(why) = divergence.check("the training ELBO", train_bound) {
            diverged_at = Some(epoch + 1);
            diverged_because = Some(why);
            metrics.seconds = epoch_start.elapsed().as_secs_f64();
            epochs.push(metrics);
            break;
        }
        let last = epoch + 1 == t.epochs;
        if last || (epoch + 1).is_multiple_of(config.eval.every_epochs) {
            let plain = model.valid();
            let test = eval::elbo(&plain, &data.test, config, &mut eval_rng(t.seed));
            metrics.test_elbo = Some(test.elbo);
            metrics.test_recon = Some(test.recon);
            metrics.test_kl = Some(test.kl);
            if let Some(why) = divergence.check("the test ELBO", test.elbo) {
                diverged_at = Some(epoch + 1);
                diverged_because = Some(why);
            }
        }
        metrics.seconds = epoch_start.elapsed().as_secs_f64();
        observer.on_epoch(&metrics, &model.valid(), data);
        epochs.push(metrics);
        if diverged_at.is_some() {
            break;
        }
    }
    TrainOutcome {
        model: model.valid(),
        epochs,
        diverged_at,
        diverged_because,
        divergence,
        train_seconds: started.elapsed().as_secs_f64(),
        examples_seen,
    }
}

/// A fresh evaluation noise stream: every evaluation of a run uses the same draws.
pub fn eval_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ EVAL_SEED_SALT)
}

pub fn to_tensor(m: &Matrix, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(m.values.clone(), [m.rows, m.cols]), device)
}

fn optimizer(t: &TrainConfig) -> ModuleOptimizer {
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(t.adam_beta1 as f32)
            .with_beta_2(t.adam_beta2 as f32)
            .with_epsilon(t.adam_epsilon as f32)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adagrad => AdaGradConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new().with_weight_decay(decay).init(),
    }
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
