//! β-TCVAE's total correlation by minibatch-weighted sampling (Chen et al. 2018, §4.1 and
//! their Appendix C.1). With a minibatch of M examples from N, each z_i drawn from q(z|x_i),
//!
//!   log q(z_i)       ≈ log Σ_j q(z_i|x_j) − log(N·M)
//!   log Π_d q(z_id)  ≈ Σ_d [log Σ_j q(z_id|x_j) − log(N·M)]
//!
//! and the KL of each example splits into index-code mutual information, total correlation
//! and dimension-wise KL: log q(z_i|x_i) − log p(z_i) = MI_i + TC_i + DWKL_i, with
//! MI_i = log q(z_i|x_i) − log q(z_i), TC_i = log q(z_i) − log Π_d q(z_id),
//! DWKL_i = log Π_d q(z_id) − log p(z_i). disentanglement_lib drops the log(N·M) terms
//! (they do not change gradients); they are kept here so that the logged TC is the estimate.

use burn::tensor::Tensor;

use crate::model::Posterior;
use crate::model::density::log_sum_exp;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Each example's terms, [M] each, in nats.
pub struct Decomposition {
    pub mutual_information: Tensor<1>,
    pub total_correlation: Tensor<1>,
    pub dimension_kl: Tensor<1>,
}

/// log q(z_i | x_j) per latent dimension for every pair: [M (i), M (j), D].
fn pairwise_log_density(q: &Posterior, z: Tensor<2>) -> Tensor<3> {
    let [m, d] = z.dims();
    let z = z.reshape([m, 1, d]);
    let mean = q.mean.clone().reshape([1, m, d]);
    let logvar = q.logvar.clone().reshape([1, m, d]);
    let diff = z - mean;
    (diff.square() * logvar.clone().neg().exp() + logvar)
        .add_scalar(LN_2PI)
        .mul_scalar(-0.5)
}

/// (log q(z_i), log Π_d q(z_id)) estimated on the minibatch, [M] each.
fn aggregate_log_densities(
    q: &Posterior,
    z: Tensor<2>,
    dataset_size: usize,
) -> (Tensor<1>, Tensor<1>) {
    let [m, _] = z.dims();
    let log_nm = ((dataset_size.max(m) * m) as f64).ln();
    let pairs = pairwise_log_density(q, z);
    // [M, M, 1] → sum over d → LSE over j → [M].
    let joint = log_sum_exp(pairs.clone().sum_dim(2), 1)
        .reshape([m])
        .sub_scalar(log_nm);
    // [M, 1, D] → LSE over j per dimension, then Σ_d → [M].
    let marginals = log_sum_exp(pairs, 1)
        .sub_scalar(log_nm)
        .sum_dim(2)
        .reshape([m]);
    (joint, marginals)
}

/// The minibatch-weighted total correlation of each example's z: [M].
pub fn total_correlation(q: &Posterior, z: Tensor<2>, dataset_size: usize) -> Tensor<1> {
    let (joint, marginals) = aggregate_log_densities(q, z, dataset_size);
    joint - marginals
}

/// The three terms, given log q(z_i|x_i) and log p(z_i) at the same z ([M] each).
pub fn decompose(
    q: &Posterior,
    z: Tensor<2>,
    log_q_z_given_x: Tensor<1>,
    log_p_z: Tensor<1>,
    dataset_size: usize,
) -> Decomposition {
    let (joint, marginals) = aggregate_log_densities(q, z, dataset_size);
    Decomposition {
        mutual_information: log_q_z_given_x - joint.clone(),
        total_correlation: joint - marginals.clone(),
        dimension_kl: marginals - log_p_z,
    }
}
