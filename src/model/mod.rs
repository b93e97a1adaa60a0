//! The model zoo: encoders, decoders and priors, assembled into a VAE from a `ModelConfig`.

pub mod decoder;
pub mod density;
pub mod encoder;
pub mod mlp;
pub mod prior;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

pub use decoder::Decoder;
pub use encoder::{Encoder, Posterior};
pub use prior::{LatentPrior, Prior};

use crate::spec::ModelConfig;

#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub prior: Prior,
}

impl Vae {
    /// A new model with weights drawn from `rng`.
    pub fn new(config: &ModelConfig, data_dim: usize, rng: &mut StdRng, device: &Device) -> Self {
        let init = mlp::Init {
            kind: config.init,
            std: config.init_std,
        };
        let encoder = Encoder::new(
            data_dim,
            config.latent_dim,
            &config.encoder,
            config.logvar_limit,
            init,
            rng,
            device,
        );
        let decoder = Decoder::new(data_dim, config, init, rng, device);
        let prior = Prior::new(config, rng, device);
        Self {
            encoder,
            decoder,
            prior,
        }
    }

    /// E[x | z = mean of q(z|x)]: what the model reconstructs.
    pub fn reconstruct(&self, x: Tensor<2>) -> Tensor<2> {
        self.decoder.mean(self.encoder.forward(x).mean)
    }
}

/// Parameters of the model a config builds for `data_dim`-dimensional data (f64, so that
/// absurd sizes cannot overflow).
pub fn parameter_count(config: &ModelConfig, data_dim: usize) -> f64 {
    let dense = |i: f64, o: f64| i * o + o;
    let chain = |first: f64, hidden: &[usize]| -> (f64, f64) {
        hidden.iter().fold((0.0, first), |(n, width), &h| {
            (n + dense(width, h as f64), h as f64)
        })
    };
    let (d, z) = (data_dim as f64, config.latent_dim as f64);
    let (enc, enc_out) = chain(d, &config.encoder.hidden);
    let (dec, dec_out) = chain(z, &config.decoder.hidden);
    let variance = match (config.likelihood, config.variance) {
        (crate::spec::LikelihoodKind::Gaussian, crate::spec::VarianceKind::Head) => {
            dense(dec_out, d)
        }
        (crate::spec::LikelihoodKind::Gaussian, _) => d,
        _ => 0.0,
    };
    let prior = match config.prior {
        crate::spec::PriorKind::StandardNormal => 0.0,
        crate::spec::PriorKind::Normal => 2.0 * z,
        crate::spec::PriorKind::Mixture => config.prior_components as f64 * (2.0 * z + 1.0),
    };
    enc + 2.0 * dense(enc_out, z) + dec + dense(dec_out, d) + variance + prior
}

/// A generous estimate of the bytes a run needs: parameters with their gradients and
/// optimiser state, and the activations (forward and backward) of the largest batch of
/// rows it pushes through the network, in training or in evaluation.
pub fn memory_estimate_bytes(
    config: &crate::spec::RunConfig,
    data_dim: usize,
    train_rows: usize,
    test_rows: usize,
) -> f64 {
    let m = &config.model;
    let params = parameter_count(m, data_dim);
    let widths = (3 * data_dim + 2 * m.latent_dim) as f64
        + m.encoder
            .hidden
            .iter()
            .chain(&m.decoder.hidden)
            .map(|&h| h as f64)
            .sum::<f64>();
    let samples = config.objective.mc_samples.max(config.objective.iwae_k) as f64;
    // A batch larger than the training set is the whole set.
    let train_rows = config.train.batch_size.min(train_rows) as f64 * samples;
    let eval_rows = (config.eval.max_rows_per_chunk as f64)
        .min(test_rows as f64 * config.eval.importance_samples as f64)
        .max(1000f64.min(test_rows as f64) * samples);
    const F32: f64 = 4.0;
    F32 * (6.0 * params + 2.0 * train_rows.max(eval_rows) * widths)
}
