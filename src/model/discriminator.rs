//! FactorVAE's discriminator (Kim & Mnih 2018): an MLP from a latent code to two logits,
//! "drawn from q(z)" against "drawn from the product of its marginals", with LeakyReLU(0.2)
//! hidden layers as in the paper and disentanglement_lib. PyTorch's initialisation, from
//! the run's seeded generator.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, activation};
use rand::rngs::StdRng;

use super::mlp::{Init, dense};
use crate::spec::InitKind;

#[derive(Module, Debug)]
pub struct Discriminator {
    pub hidden: Vec<Linear>,
    pub out: Linear,
}

impl Discriminator {
    pub fn new(latent: usize, hidden: &[usize], rng: &mut StdRng, device: &Device) -> Self {
        let init = Init {
            kind: InitKind::Pytorch,
            std: 0.0,
        };
        let mut width = latent;
        let hidden = hidden
            .iter()
            .map(|&h| {
                let layer = dense(width, h, init, rng, device);
                width = h;
                layer
            })
            .collect();
        Discriminator {
            hidden,
            out: dense(width, 2, init, rng, device),
        }
    }

    /// [N, 2] logits of z [N, Z]: column 0 "from q(z)", column 1 "permuted".
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let h = self
            .hidden
            .iter()
            .fold(z, |h, layer| activation::leaky_relu(layer.forward(h), 0.2));
        self.out.forward(h)
    }
}
