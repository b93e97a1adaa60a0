//! Where each parameter of a VAE lives in one flat buffer. One buffer means the optimiser is a
//! single loop and a checkpoint is three arrays; the names are burn's record paths, so the
//! two engines' models convert one to one.

use super::prior::PriorPiece;
use crate::spec::{Activation, LikelihoodKind, ModelConfig, PriorKind, VarianceKind};

/// One named parameter tensor: `shape` row-major at `offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl Slot {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A dense layer `y = x·W + b`, W stored [d_in, d_out] (burn's `Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub weight: Slot,
    pub bias: Slot,
    pub d_in: usize,
    pub d_out: usize,
}

/// The fused engine's model: an MLP encoder with mean and log-variance heads, an MLP decoder
/// with a Bernoulli or Gaussian output (fixed, learned or head variance), and a prior piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub slots: Vec<Slot>,
    pub encoder: Vec<Dense>,
    pub encoder_activation: Activation,
    pub mean: Dense,
    pub logvar: Dense,
    pub decoder: Vec<Dense>,
    pub decoder_activation: Activation,
    pub out: Dense,
    /// Gaussian with `variance = "head"`: a second output layer giving each example's
    /// log-variances.
    pub logvar_head: Option<Dense>,
    /// Gaussian with `variance = "learned"`: one log-variance per data dimension.
    pub output_logvar: Option<Slot>,
    pub likelihood: LikelihoodKind,
    pub prior: PriorPiece,
    /// Gaussian with `variance = "fixed"`: ln σ².
    pub fixed_logvar: f32,
    pub logvar_limit: f32,
    pub data_dim: usize,
    pub latent_dim: usize,
    pub len: usize,
}

struct Builder {
    slots: Vec<Slot>,
    len: usize,
}

impl Builder {
    fn slot(&mut self, name: String, shape: Vec<usize>) -> Slot {
        let slot = Slot {
            name,
            shape,
            offset: self.len,
        };
        self.len += slot.len();
        self.slots.push(slot.clone());
        slot
    }

    fn dense(&mut self, prefix: &str, d_in: usize, d_out: usize) -> Dense {
        Dense {
            weight: self.slot(format!("{prefix}.weight"), vec![d_in, d_out]),
            bias: self.slot(format!("{prefix}.bias"), vec![d_out]),
            d_in,
            d_out,
        }
    }

    fn chain(&mut self, prefix: &str, d_in: usize, hidden: &[usize]) -> (Vec<Dense>, usize) {
        let mut width = d_in;
        let layers = hidden
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let layer = self.dense(&format!("{prefix}.layers.{i}"), width, h);
                width = h;
                layer
            })
            .collect();
        (layers, width)
    }
}

impl Layout {
    pub fn new(model: &ModelConfig, data_dim: usize) -> Self {
        let mut b = Builder {
            slots: Vec::new(),
            len: 0,
        };
        let z = model.latent_dim;
        let (encoder, width) = b.chain("encoder.body", data_dim, &model.encoder.hidden);
        let mean = b.dense("encoder.mean", width, z);
        let logvar = b.dense("encoder.logvar", width, z);
        let (decoder, width) = b.chain("decoder.body", z, &model.decoder.hidden);
        let out = b.dense("decoder.out", width, data_dim);
        let gaussian = model.likelihood == LikelihoodKind::Gaussian;
        let logvar_head = (gaussian && model.variance == VarianceKind::Head)
            .then(|| b.dense("decoder.logvar_head", width, data_dim));
        let output_logvar = (gaussian && model.variance == VarianceKind::Learned)
            .then(|| b.slot("decoder.logvar".into(), vec![data_dim]));
        let prior = match model.prior {
            PriorKind::StandardNormal => PriorPiece::StandardNormal,
            PriorKind::Normal => PriorPiece::Normal {
                mean: b.slot("prior.mean".into(), vec![z]),
                logvar: b.slot("prior.logvar".into(), vec![z]),
                learned: model.prior_learned,
            },
            PriorKind::Mixture => {
                let k = model.prior_components;
                PriorPiece::Mixture {
                    means: b.slot("prior.means".into(), vec![k, z]),
                    logvars: b.slot("prior.logvars".into(), vec![k, z]),
                    logits: b.slot("prior.logits".into(), vec![k]),
                    k,
                }
            }
        };
        Self {
            len: b.len,
            slots: b.slots,
            encoder,
            encoder_activation: model.encoder.activation,
            mean,
            logvar,
            decoder,
            decoder_activation: model.decoder.activation,
            out,
            logvar_head,
            output_logvar,
            likelihood: model.likelihood,
            prior,
            fixed_logvar: model.fixed_variance.ln() as f32,
            logvar_limit: model.logvar_limit as f32,
            data_dim,
            latent_dim: z,
        }
    }
}
