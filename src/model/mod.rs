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
