//! Adam, AdaGrad and SGD as one pass over the flat parameter buffer, with burn-optim's update
//! rules (weight decay as an L2 term added to the gradient; Adam's bias corrections folded
//! into the step as burn does), so both engines follow the same optimiser.

use super::math::multiversion;
use super::products::Threads;
use crate::spec::{OptimizerKind, TrainConfig};

/// The optimiser's state: moments (Adam), squared-gradient sums (AdaGrad), and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Steps taken so far.
    pub time: u64,
    /// Adam: first moments; AdaGrad: sums of squared gradients; SGD: empty.
    pub first: Vec<f32>,
    /// Adam: second moments; otherwise empty.
    pub second: Vec<f32>,
}

impl Optimizer {
    pub fn new(t: &TrainConfig, len: usize) -> Self {
        let (first, second) = match t.optimizer {
            OptimizerKind::Adam => (vec![0.0; len], vec![0.0; len]),
            OptimizerKind::Adagrad => (vec![0.0; len], Vec::new()),
            OptimizerKind::Sgd => (Vec::new(), Vec::new()),
        };
        Self {
            kind: t.optimizer,
            weight_decay: t.weight_decay as f32,
            beta1: t.adam_beta1 as f32,
            beta2: t.adam_beta2 as f32,
            epsilon: match t.optimizer {
                // burn's AdaGradConfig as the autodiff engine builds it (train::optimizer).
                OptimizerKind::Adagrad => 1e-8,
                _ => t.adam_epsilon as f32,
            },
            time: 0,
            first,
            second,
        }
    }

    /// One update of `params` with gradient `grads` at learning rate `lr`, spread over the
    /// run's threads (every parameter's update is its own, so any split gives the same bits).
    pub fn step(&mut self, lr: f64, params: &mut [f32], grads: &[f32], threads: &Threads) {
        let piece = threads.piece(params.len(), 64);
        self.time += 1;
        let lr = lr as f32;
        let wd = self.weight_decay;
        match self.kind {
            OptimizerKind::Adam => {
                let t = self.time.min(i32::MAX as u64) as i32;
                let bc2 = (1.0 - self.beta2.powi(t)).sqrt();
                let factor = bc2 / (1.0 - self.beta1.powi(t));
                let c = AdamConstants {
                    lr,
                    wd,
                    beta1: self.beta1,
                    beta2: self.beta2,
                    factor,
                    eps: self.epsilon * bc2,
                };
                let pieces = params
                    .chunks_mut(piece)
                    .zip(grads.chunks(piece))
                    .zip(self.first.chunks_mut(piece))
                    .zip(self.second.chunks_mut(piece));
                threads.each(pieces, |(((p, g), m), v)| adam(p, g, m, v, c));
            }
            OptimizerKind::Adagrad => {
                let eps = self.epsilon;
                let pieces = params
                    .chunks_mut(piece)
                    .zip(grads.chunks(piece))
                    .zip(self.first.chunks_mut(piece));
                threads.each(pieces, |((p, g), s)| adagrad(p, g, s, lr, wd, eps));
            }
            OptimizerKind::Sgd => {
                let pieces = params.chunks_mut(piece).zip(grads.chunks(piece));
                threads.each(pieces, |(p, g)| sgd(p, g, lr, wd));
            }
        }
    }
}

#[derive(Clone, Copy)]
struct AdamConstants {
    lr: f32,
    wd: f32,
    beta1: f32,
    beta2: f32,
    factor: f32,
    eps: f32,
}

multiversion! {
    fn adam(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: AdamConstants) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if c.wd != 0.0 { g + c.wd * *p } else { g };
            *m = *m * c.beta1 + g * (1.0 - c.beta1);
            *v = *v * c.beta2 + g * g * (1.0 - c.beta2);
            *p -= (*m * c.factor / (v.sqrt() + c.eps)) * c.lr;
        }
    }
}

multiversion! {
    fn adagrad(p: &mut [f32], g: &[f32], sum: &mut [f32], lr: f32, wd: f32, eps: f32) {
        for ((p, &g), s) in p.iter_mut().zip(g).zip(sum.iter_mut()) {
            let g = if wd != 0.0 { g + wd * *p } else { g };
            *s += g * g;
            *p -= g / (s.sqrt() + eps) * lr;
        }
    }
}

multiversion! {
    fn sgd(p: &mut [f32], g: &[f32], lr: f32, wd: f32) {
        for (p, &g) in p.iter_mut().zip(g) {
            let g = if wd != 0.0 { g + wd * *p } else { g };
            *p -= g * lr;
        }
    }
}
