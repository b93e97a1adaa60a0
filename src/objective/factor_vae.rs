//! FactorVAE's two losses (Kim & Mnih 2018), in disentanglement_lib's form: the VAE
//! maximises E[log p(x|z)] − β·KL − γ·TĈ with TĈ = D(z)₀ − D(z)₁, the discriminator's
//! logit difference at the example's z (its estimate of log q(z) − log Π_d q(z_d)); the
//! discriminator minimises −½(E log softmax(D(z))₀ + E log softmax(D(z̃))₁) on the same
//! minibatch, z̃ the codes with each dimension shuffled across the minibatch on its own
//! (samples of the product of marginals), both detached from the VAE.

use burn::tensor::{Int, Tensor, TensorData, activation};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Schedule, Terms, elbo_parts};
use crate::model::Vae;
use crate::model::discriminator::Discriminator;
use crate::spec::ObjectiveConfig;

/// D(z)₀ − D(z)₁ per example: [N].
pub fn total_correlation(logits: Tensor<2>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let on_q = logits.clone().slice([0..n, 0..1]);
    let permuted = logits.slice([0..n, 1..2]);
    (on_q - permuted).reshape([n])
}

/// Each column of `z` [N, Z] shuffled across the rows on its own (one permutation per
/// dimension, drawn from `rng` in column order).
pub fn permute_dims(z: Tensor<2>, rng: &mut StdRng) -> Tensor<2> {
    let [n, d] = z.dims();
    let mut index = vec![0i64; n * d];
    let mut order: Vec<i64> = (0..n as i64).collect();
    for j in 0..d {
        order.shuffle(rng);
        for (i, &row) in order.iter().enumerate() {
            index[i * d + j] = row;
        }
    }
    let index = Tensor::<2, Int>::from_data(TensorData::new(index, [n, d]), &z.device());
    z.gather(0, index)
}

/// The discriminator's loss on logits of true codes and of permuted ones: a [1] tensor.
pub fn discriminator_loss(on_q: Tensor<2>, on_permuted: Tensor<2>) -> Tensor<1> {
    let [n, _] = on_q.dims();
    let [m, _] = on_permuted.dims();
    let real = activation::log_softmax(on_q, 1).slice([0..n, 0..1]).mean();
    let fake = activation::log_softmax(on_permuted, 1)
        .slice([0..m, 1..2])
        .mean();
    (real + fake).mul_scalar(-0.5)
}

/// The VAE's terms (bound less γ·TĈ, with TĈ in `tc`) and the codes z the discriminator
/// saw, for its own step.
pub fn vae_terms(
    vae: &Vae,
    critic: &Discriminator,
    x: Tensor<2>,
    config: &ObjectiveConfig,
    schedule: &Schedule,
    rng: &mut StdRng,
) -> (Terms, Tensor<2>) {
    let q = vae.encoder.forward(x.clone());
    let (recon, kl, draws) = elbo_parts(vae, &q, x, 1, config.kl, rng);
    let tc = total_correlation(critic.forward(draws.z.clone()));
    let bound = recon.clone()
        - kl.clone().mul_scalar(schedule.beta)
        - tc.clone().mul_scalar(config.factor_gamma);
    let terms = Terms {
        bound,
        recon,
        kl,
        tc: Some(tc),
    };
    (terms, draws.z)
}
