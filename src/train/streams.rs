//! The independent random streams of a run, each a function of its seed and position, so
//! that a run continued from any minibatch draws exactly what an uninterrupted one does.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::spec::RunConfig;

/// Salt that keeps the evaluation noise stream apart from the training stream.
pub const EVAL_SEED_SALT: u64 = 0x5EED_E7A1;

/// The independent random streams of a run, each a function of (seed, epoch, step), so
/// that a run continued from any minibatch draws exactly what an uninterrupted one does.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    /// Weight initialisation.
    Init,
    /// An epoch's minibatch order.
    Shuffle,
    /// A minibatch's noise (reparameterisation, dynamic binarisation).
    Step,
}

pub(super) fn stream(seed: u64, stream: Stream, epoch: usize, step: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(step as u64).to_le_bytes());
    key[24] = stream as u8 + 1;
    StdRng::from_seed(key)
}

/// The weight initialisation's stream (an engine restarted from saved files draws it too).
pub(super) fn init_rng(config: &RunConfig) -> StdRng {
    stream(config.train.seed, Stream::Init, 0, 0)
}

/// A fresh evaluation noise stream: every evaluation of a run uses the same draws.
pub fn eval_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ EVAL_SEED_SALT)
}
