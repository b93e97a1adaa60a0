//! Log-densities and KL divergences, summed over dimensions: one value per row, in nats.
//! Every formula keeps its constants, so numbers are comparable across runs and papers.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

pub const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Sums each row: [N, D] -> [N].
pub fn sum_rows(t: Tensor<2>) -> Tensor<1> {
    t.sum_dim(1).squeeze_dim::<1>(1)
}

/// log Bernoulli(x | sigmoid(logits)) = x·l − softplus(l), with
/// softplus(l) = max(l, 0) + log1p(exp(−|l|)), so no logits overflow and no log(sigmoid).
pub fn bernoulli_logits(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    let softplus = relu(logits.clone()) + logits.clone().abs().neg().exp().log1p();
    sum_rows(x * logits - softplus)
}

/// log N(x | mean, exp(logvar)) with a diagonal covariance; `logvar` broadcasts.
pub fn normal_diag(x: Tensor<2>, mean: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let sq = (x - mean).square() * logvar.clone().neg().exp();
    sum_rows((sq + logvar).add_scalar(LN_2PI).mul_scalar(-0.5))
}

/// log N(z | 0, I).
pub fn standard_normal(z: Tensor<2>) -> Tensor<1> {
    sum_rows(z.square().add_scalar(LN_2PI).mul_scalar(-0.5))
}

/// KL(N(m1, e^lv1) || N(m2, e^lv2)) for diagonal Gaussians; the prior side broadcasts.
pub fn kl_normal_normal(m1: Tensor<2>, lv1: Tensor<2>, m2: Tensor<2>, lv2: Tensor<2>) -> Tensor<1> {
    let ratio = (lv1.clone() - lv2.clone()).exp();
    let maha = (m1 - m2).square() * lv2.clone().neg().exp();
    sum_rows((ratio + maha - lv1 + lv2).sub_scalar(1.0).mul_scalar(0.5))
}

/// KL(N(m, e^lv) || N(0, I)).
pub fn kl_standard_normal(mean: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    sum_rows(
        (logvar.clone().exp() + mean.square() - logvar)
            .sub_scalar(1.0)
            .mul_scalar(0.5),
    )
}

/// log Σ exp along `dim`, keeping it (size 1); the max is detached, as it cancels.
pub fn log_sum_exp<const D: usize>(t: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = t.clone().max_dim(dim).detach();
    (t - max.clone()).exp().sum_dim(dim).log() + max
}

/// log-mean-exp of a [K, N] tensor of log-weights over its K rows: [N].
pub fn log_mean_exp_rows(log_w: Tensor<2>) -> Tensor<1> {
    let k = log_w.dims()[0] as f64;
    log_sum_exp(log_w, 0).squeeze_dim::<1>(0).sub_scalar(k.ln())
}
