//! Training objectives: the ELBO (β, L samples, analytic or Monte Carlo KL), the IWAE
//! bound, and the β-VAE family (DIP-VAE, β-TCVAE, AnnealedVAE). Each returns per-example
//! terms so training and evaluation share one code path.

pub mod factor_vae;
pub mod total_correlation;

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::density::log_mean_exp_rows;
use crate::model::encoder::repeat_rows;
use crate::model::{Posterior, Vae};
use crate::spec::{KlMode, ObjectiveConfig, ObjectiveKind};

/// Per-example values, each [N], in nats.
pub struct Terms {
    /// The bound being optimised, with β applied (ELBO_β or IWAE_β).
    pub bound: Tensor<1>,
    /// E_q[log p(x|z)].
    pub recon: Tensor<1>,
    /// KL(q(z|x) || p(z)), analytic or estimated on the same samples.
    pub kl: Tensor<1>,
    /// β-TCVAE: the minibatch-weighted total correlation at each example's z.
    pub tc: Option<Tensor<1>>,
}

/// Where training stands, for the objectives that change over it or need the data's size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// β at this epoch (after its warm-up).
    pub beta: f64,
    /// AnnealedVAE's capacity C at this step, nats (0 for the other objectives).
    pub capacity: f64,
    /// Training examples: N of β-TCVAE's minibatch-weighted sampling.
    pub dataset_size: usize,
}

impl Schedule {
    /// A fixed β and nothing else (evaluation, tests).
    pub fn beta(beta: f64) -> Self {
        Schedule {
            beta,
            capacity: 0.0,
            dataset_size: 0,
        }
    }
}

/// The schedule at optimiser step `step` (0-based, counted over the whole run) of `epoch`.
pub fn schedule_at(
    config: &ObjectiveConfig,
    epoch: usize,
    step: u64,
    dataset_size: usize,
) -> Schedule {
    Schedule {
        beta: beta_at(config, epoch),
        capacity: capacity_at(config, step),
        dataset_size,
    }
}

/// AnnealedVAE's C before step `step` (0-based), as disentanglement_lib computes it:
/// C_max · min(1, step / capacity_steps); C_max from the start with no ramp.
pub fn capacity_at(config: &ObjectiveConfig, step: u64) -> f64 {
    if config.kind != ObjectiveKind::Annealed {
        0.0
    } else if config.capacity_steps == 0 {
        config.capacity_max
    } else {
        config.capacity_max * (step as f64 / config.capacity_steps as f64).min(1.0)
    }
}

impl Terms {
    /// What the optimiser minimises: the negative mean bound.
    pub fn loss(&self) -> Tensor<1> {
        self.bound.clone().mean().neg()
    }
}

/// Standard normal noise of shape [rows, cols], drawn on the host from `rng`.
pub fn standard_normal(rows: usize, cols: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Evaluates `config`'s objective on the batch `x` at `schedule` (β on the KL/log-ratio).
pub fn evaluate(
    vae: &Vae,
    x: Tensor<2>,
    config: &ObjectiveConfig,
    schedule: &Schedule,
    rng: &mut StdRng,
) -> Terms {
    let beta = schedule.beta;
    match config.kind {
        ObjectiveKind::Elbo => elbo(vae, x, config.mc_samples, config.kl, beta, rng),
        ObjectiveKind::Iwae => iwae(vae, x, config.iwae_k, beta, rng),
        ObjectiveKind::DipVaeI | ObjectiveKind::DipVaeIi => {
            let q = vae.encoder.forward(x.clone());
            let terms = elbo_from(vae, &q, x, config.mc_samples, config.kl, beta, rng);
            let (od, d) = config.dip_lambdas();
            let second = config.kind == ObjectiveKind::DipVaeIi;
            let penalty = dip_penalty(&q, second, od, d);
            // The penalty is the minibatch's: each example's bound carries it, so the mean
            // bound is the mean ELBO less the penalty.
            let n = terms.bound.dims()[0];
            Terms {
                bound: terms.bound - penalty.expand([n]),
                ..terms
            }
        }
        ObjectiveKind::BetaTcvae => {
            // disentanglement_lib's form: the ELBO less (β − 1)·TC, so β = 1 is the VAE.
            let q = vae.encoder.forward(x.clone());
            let (recon, kl, draws) = elbo_parts(vae, &q, x, 1, config.kl, rng);
            let tc = total_correlation::total_correlation(&q, draws.z, schedule.dataset_size);
            Terms {
                bound: recon.clone() - kl.clone() - tc.clone().mul_scalar(beta - 1.0),
                recon,
                kl,
                tc: Some(tc),
            }
        }
        ObjectiveKind::FactorVae => {
            unreachable!("FactorVAE needs its discriminator: objective::factor_vae::vae_terms")
        }
        ObjectiveKind::Annealed => {
            // γ·|KL − C| on the minibatch's mean KL (disentanglement_lib), carried by each
            // example's value as DIP-VAE's penalty is.
            let terms = elbo(vae, x, config.mc_samples, config.kl, 1.0, rng);
            let n = terms.recon.dims()[0];
            let penalty = (terms.kl.clone().mean().sub_scalar(schedule.capacity))
                .abs()
                .mul_scalar(config.capacity_gamma);
            Terms {
                bound: terms.recon.clone() - penalty.expand([n]),
                ..terms
            }
        }
    }
}

/// DIP-VAE's penalty on the minibatch (Kumar et al. 2018): with C = Cov[μ] over the
/// minibatch (divided by N, as the paper's estimator), or for DIP-VAE-II C = Cov[μ] +
/// mean diag σ², λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)². A [1] tensor.
pub fn dip_penalty(q: &Posterior, second: bool, lambda_od: f64, lambda_d: f64) -> Tensor<1> {
    let [n, z] = q.mean.dims();
    let centred = q.mean.clone() - q.mean.clone().mean_dim(0);
    let mut cov = centred
        .clone()
        .transpose()
        .matmul(centred)
        .div_scalar(n as f64);
    let eye = Tensor::<2>::eye(z, &cov.device());
    if second {
        // [1, Z] mean variances broadcast onto the identity: diag(E[σ²]).
        let var = q.logvar.clone().exp().mean_dim(0);
        cov = cov + eye.clone() * var;
    }
    let diag = (cov.clone() * eye.clone()).sum_dim(1).squeeze_dim::<1>(1);
    let off = cov * (eye.ones_like() - eye);
    let off_sq = off.square().sum();
    let diag_sq = diag.sub_scalar(1.0).square().sum();
    off_sq.mul_scalar(lambda_od) + diag_sq.mul_scalar(lambda_d)
}

/// ELBO_β = E_q[log p(x|z)] − β KL(q || p), averaged over L reparameterised samples.
/// An analytic KL is asked for only where the prior has one (validated in the spec).
pub fn elbo(
    vae: &Vae,
    x: Tensor<2>,
    samples: usize,
    kl_mode: KlMode,
    beta: f64,
    rng: &mut StdRng,
) -> Terms {
    let q = vae.encoder.forward(x.clone());
    elbo_from(vae, &q, x, samples, kl_mode, beta, rng)
}

/// [`elbo`] from a posterior already computed for `x`.
fn elbo_from(
    vae: &Vae,
    q: &Posterior,
    x: Tensor<2>,
    samples: usize,
    kl_mode: KlMode,
    beta: f64,
    rng: &mut StdRng,
) -> Terms {
    let (recon, kl, _) = elbo_parts(vae, q, x, samples, kl_mode, rng);
    Terms {
        bound: recon.clone() - kl.clone().mul_scalar(beta),
        recon,
        kl,
        tc: None,
    }
}

/// E_q[log p(x|z)] and the KL ([N] each) on `samples` draws, and the draws.
fn elbo_parts(
    vae: &Vae,
    q: &Posterior,
    x: Tensor<2>,
    samples: usize,
    kl_mode: KlMode,
    rng: &mut StdRng,
) -> (Tensor<1>, Tensor<1>, Draws) {
    let [n, _] = x.dims();
    let draws = draw(vae, q, x, samples, rng);
    let recon = mean_over_samples(draws.log_px_z.clone(), samples, n);
    // Specs refuse an analytic KL against a prior without one; should one get here
    // anyway, the Monte Carlo estimate is the correct answer, not a panic.
    let analytic = match kl_mode {
        KlMode::Analytic => vae.prior_kl(q),
        KlMode::MonteCarlo => None,
    };
    let kl = match analytic {
        Some(kl) => kl,
        None => {
            let log_ratio = q.log_prob_at(draws.eps.clone()) - vae.log_prior(draws.z.clone());
            mean_over_samples(log_ratio, samples, n)
        }
    };
    (recon, kl, draws)
}

/// IWAE_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i|x)] (Burda et al. 2015). With β ≠ 1 the
/// log-ratio log p(z) − log q(z|x) inside each weight is scaled by β.
pub fn iwae(vae: &Vae, x: Tensor<2>, k: usize, beta: f64, rng: &mut StdRng) -> Terms {
    let [n, _] = x.dims();
    let q = vae.encoder.forward(x.clone());
    let Draws { eps, z, log_px_z } = draw(vae, &q, x, k, rng);
    let log_ratio = q.log_prob_at(eps) - vae.log_prior(z);
    let log_w = log_px_z.clone() - log_ratio.clone().mul_scalar(beta);
    Terms {
        bound: log_mean_exp_rows(log_w.reshape([k, n])),
        recon: mean_over_samples(log_px_z, k, n),
        kl: mean_over_samples(log_ratio, k, n),
        tc: None,
    }
}

/// `samples` reparameterised draws z ~ q(z|x) per row of x, and log p(x|z) at each.
pub struct Draws {
    /// The standard normal noise behind z: [samples·N, Z], samples blocks of N rows.
    pub eps: Tensor<2>,
    pub z: Tensor<2>,
    /// [samples·N].
    pub log_px_z: Tensor<1>,
}

/// Draws from a posterior `q` already computed for `x`, so that a caller sampling in
/// chunks (the importance sampler) encodes each example once.
pub fn draw(vae: &Vae, q: &Posterior, x: Tensor<2>, samples: usize, rng: &mut StdRng) -> Draws {
    let [n, d] = q.mean.dims();
    assert_eq!(x.dims()[0], n, "q and x describe different batches");
    let eps = standard_normal(samples * n, d, rng, &x.device());
    let z = q.reparameterize(eps.clone());
    let log_px_z = vae.decoder.log_prob(z.clone(), repeat_rows(x, samples));
    Draws { eps, z, log_px_z }
}

/// [L·N] laid out as L blocks of N -> mean over the L samples: [N].
fn mean_over_samples(v: Tensor<1>, samples: usize, n: usize) -> Tensor<1> {
    if samples == 1 {
        v
    } else {
        v.reshape([samples, n]).mean_dim(0).squeeze_dim::<1>(0)
    }
}

/// β at a given epoch (0-based) under a linear warm-up from 0 over `warmup` epochs.
pub fn beta_at(config: &ObjectiveConfig, epoch: usize) -> f64 {
    if config.kl_warmup_epochs == 0 {
        config.beta
    } else {
        config.beta * ((epoch + 1) as f64 / config.kl_warmup_epochs as f64).min(1.0)
    }
}
