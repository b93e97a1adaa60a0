//! Where each parameter of a VAE lives in one flat buffer. One buffer means the optimiser is a
//! single loop and a checkpoint is three arrays; the names are burn's record paths, so the
//! two engines' models convert one to one.

use super::prior::PriorPiece;
use crate::model::Input;
use crate::model::conv::{Stage, plan};
use crate::spec::{Activation, LikelihoodKind, ModelConfig, PriorKind, VarianceKind};

pub use super::flat::Slot;

/// A dense layer `y = x·W + b`, W stored [d_in, d_out] (burn's `Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub weight: Slot,
    pub bias: Slot,
    pub d_in: usize,
    pub d_out: usize,
}

/// A convolution (or transposed convolution): burn's weight tensor [C_out, C_in, k, k] (or
/// [C_in, C_out, k, k]) and bias [C_out], and the shapes it maps between.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSlot {
    pub weight: Slot,
    pub bias: Slot,
    pub stage: Stage,
}

/// The fused engine's model: convolutions on image data (optional), an MLP encoder with mean and log-variance heads, an MLP decoder
/// with a Bernoulli or Gaussian output (fixed, learned or head variance), and a prior piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub slots: Vec<Slot>,
    /// Convolutions on the image before the encoder's dense layers.
    pub encoder_conv: Vec<ConvSlot>,
    pub encoder: Vec<Dense>,
    pub encoder_activation: Activation,
    pub mean: Dense,
    pub logvar: Dense,
    pub decoder: Vec<Dense>,
    pub decoder_activation: Activation,
    pub out: Dense,
    /// Transposed convolutions from `out` (activated, reshaped) to the image.
    pub decoder_conv: Vec<ConvSlot>,
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

    fn convs(&mut self, prefix: &str, stages: &[Stage]) -> Vec<ConvSlot> {
        stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let (cin, cout, k) = (stage.input.channels, stage.output.channels, stage.kernel);
                let shape = if stage.transposed {
                    vec![cin, cout, k, k]
                } else {
                    vec![cout, cin, k, k]
                };
                ConvSlot {
                    weight: self.slot(format!("{prefix}.layers.{i}.weight"), shape),
                    bias: self.slot(format!("{prefix}.layers.{i}.bias"), vec![cout]),
                    stage: *stage,
                }
            })
            .collect()
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
    /// f32 values the decoder's forward pass holds per sample row
    /// (`model::decoder_floats_per_row`).
    pub fn decoder_floats_per_row(&self) -> usize {
        let hidden: Vec<usize> = self.decoder.iter().map(|l| l.d_out).collect();
        let stages: Vec<Stage> = self.decoder_conv.iter().map(|c| c.stage).collect();
        let conv = crate::model::conv::floats_per_row(&stages);
        crate::model::decoder_floats_per_row(&hidden, self.out.d_out, conv, self.data_dim)
    }

    /// The layout of `model` on `input`, whose convolutions (if any) fit it (runs check
    /// that before they start: `model::conv::plan`).
    pub fn new(model: &ModelConfig, input: Input) -> Self {
        let mut b = Builder {
            slots: Vec::new(),
            len: 0,
        };
        let data_dim = input.dim;
        let plan = plan(model, input.image).unwrap_or_else(|e| panic!("{e}"));
        let z = model.latent_dim;
        let encoder_conv = b.convs("encoder.conv", &plan.encoder);
        let enc_in = plan.encoder_output().map_or(data_dim, |s| s.len());
        let (encoder, width) = b.chain("encoder.body", enc_in, &model.encoder.hidden);
        let mean = b.dense("encoder.mean", width, z);
        let logvar = b.dense("encoder.logvar", width, z);
        let (decoder, width) = b.chain("decoder.body", z, &model.decoder.hidden);
        let dec_out = plan.decoder_input().map_or(data_dim, |s| s.len());
        let out = b.dense("decoder.out", width, dec_out);
        let decoder_conv = b.convs("decoder.conv", &plan.decoder);
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
            PriorKind::Vamp => {
                let k = model.pseudo_inputs;
                PriorPiece::Vamp {
                    means: b.slot("prior.components.means".into(), vec![k, z]),
                    logvars: b.slot("prior.components.logvars".into(), vec![k, z]),
                    pseudo: b.slot("prior.pseudo_inputs".into(), vec![k, data_dim]),
                    k,
                    clamp: model.likelihood == LikelihoodKind::Bernoulli,
                }
            }
        };
        Self {
            len: b.len,
            slots: b.slots,
            encoder_conv,
            encoder,
            encoder_activation: model.encoder.activation,
            mean,
            logvar,
            decoder,
            decoder_activation: model.decoder.activation,
            out,
            decoder_conv,
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
