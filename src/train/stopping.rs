//! When training ends before its epochs: divergence, early stopping, and the limits that
//! successive halving sets.

use super::state::TrainState;
use crate::spec::TrainConfig;

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

/// Where this attempt ends short of `train.epochs` (successive halving's rungs). Not part
/// of a run's config: the run is the same run, and continuing it from the pause trains
/// exactly what an uninterrupted run does.
#[derive(Clone, Debug, PartialEq)]
pub enum EpochLimit {
    /// Train to this epoch, evaluate the test ELBO and the active units there, checkpoint
    /// and leave the run unfinished.
    Pause(usize),
    /// End the run after this epoch (from its checkpoint, if it is there already), as early
    /// stopping does, with this reason in its row.
    Stop { epoch: usize, reason: String },
}

impl EpochLimit {
    pub fn epoch(&self) -> usize {
        match self {
            EpochLimit::Pause(e) | EpochLimit::Stop { epoch: e, .. } => *e,
        }
    }
}

/// Early stopping after an evaluation with ELBO `elbo` on the set it watches (`watched`:
/// "validation" or "test"): why the run stops, if it does.
pub(super) fn early_stop(
    state: &mut TrainState,
    elbo: f64,
    watched: &str,
    t: &TrainConfig,
) -> Option<String> {
    match state.best_test_elbo {
        Some(best) if elbo <= best + t.early_stopping_min_delta => {
            state.evaluations_without_improvement += 1;
        }
        _ => {
            state.best_test_elbo = Some(elbo);
            state.evaluations_without_improvement = 0;
            state.best_epoch = Some(state.epoch + 1);
        }
    }
    let best = state.best_test_elbo.unwrap_or(elbo);
    (state.evaluations_without_improvement >= t.early_stopping_patience).then(|| {
        format!(
            "stopped early: the {watched} ELBO has not improved on its best, {best:.4} nats, by more than {} nats in {} evaluations",
            t.early_stopping_min_delta, t.early_stopping_patience
        )
    })
}
