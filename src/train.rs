//! Training a run: its state and metrics, the random streams that make it resumable at any
//! minibatch, and the entry points; the epoch loop itself is `trainer`.

use burn::tensor::Device;

use crate::data::Dataset;
use crate::engine;
use crate::spec::RunConfig;

mod outcome;
mod schedule;
mod state;
mod stopping;
mod streams;
mod trainer;
pub use outcome::TrainOutcome;
pub use schedule::lr_at;
pub use state::{Checkpoint, EpochMetrics, Observer, Resume, Silent, TrainState, f64_or_nan};
pub use stopping::{Divergence, EpochLimit};
use streams::init_rng;
pub use streams::{EVAL_SEED_SALT, eval_rng};
use trainer::Trainer;

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
}
