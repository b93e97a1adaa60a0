//! p(z). A new prior is a `LatentPrior` plus a variant of `Prior`: the objectives and the
//! training loop only ever call the trait's three methods.

use burn::module::{Module, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, StandardNormal};

use super::density::{LN_2PI, kl_normal_normal, kl_standard_normal, log_sum_exp, standard_normal};
use super::encoder::Posterior;
use crate::spec::{ModelConfig, PriorKind};

pub trait LatentPrior {
    /// log p(z) per row of z [N, Z].
    fn log_prob(&self, z: Tensor<2>) -> Tensor<1>;
    /// KL(q || p) per row where it has a closed form; None where it must be estimated.
    fn analytic_kl(&self, q: &Posterior) -> Option<Tensor<1>>;
    /// n draws from p(z), made with `rng` on the host.
    fn sample(&self, n: usize, rng: &mut StdRng, device: &Device) -> Tensor<2>;
}

fn normal_draws(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// N(0, I).
#[derive(Module, Debug)]
pub struct StandardNormalPrior {
    #[module(skip)]
    pub latent_dim: usize,
}

impl LatentPrior for StandardNormalPrior {
    fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        standard_normal(z)
    }
    fn analytic_kl(&self, q: &Posterior) -> Option<Tensor<1>> {
        Some(kl_standard_normal(q.mean.clone(), q.logvar.clone()))
    }
    fn sample(&self, n: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
        let z = normal_draws(n * self.latent_dim, rng);
        Tensor::from_data(TensorData::new(z, [n, self.latent_dim]), device)
    }
}

/// N(mean, exp(logvar)) per dimension, learned or fixed at N(0, I)'s values.
#[derive(Module, Debug)]
pub struct DiagonalNormalPrior {
    pub mean: Param<Tensor<1>>,
    pub logvar: Param<Tensor<1>>,
}

impl DiagonalNormalPrior {
    fn params(&self) -> (Tensor<2>, Tensor<2>) {
        (
            self.mean.val().unsqueeze_dim::<2>(0),
            self.logvar.val().unsqueeze_dim::<2>(0),
        )
    }
}

impl LatentPrior for DiagonalNormalPrior {
    fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        let (mean, logvar) = self.params();
        super::density::normal_diag(z, mean, logvar)
    }
    fn analytic_kl(&self, q: &Posterior) -> Option<Tensor<1>> {
        let (mean, logvar) = self.params();
        Some(kl_normal_normal(
            q.mean.clone(),
            q.logvar.clone(),
            mean,
            logvar,
        ))
    }
    fn sample(&self, n: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
        let mean: Vec<f32> = host(self.mean.val());
        let std: Vec<f32> = host(self.logvar.val())
            .iter()
            .map(|lv| (0.5 * lv).exp())
            .collect();
        let d = mean.len();
        let eps = normal_draws(n * d, rng);
        let z = eps
            .iter()
            .enumerate()
            .map(|(i, e)| mean[i % d] + std[i % d] * e)
            .collect();
        Tensor::from_data(TensorData::new(z, [n, d]), device)
    }
}

/// Σ_k π_k N(mean_k, exp(logvar_k)), with π = softmax(logits); all learned.
#[derive(Module, Debug)]
pub struct MixturePrior {
    pub means: Param<Tensor<2>>,
    pub logvars: Param<Tensor<2>>,
    pub logits: Param<Tensor<1>>,
}

impl MixturePrior {
    /// The components' weights up to their sum, exp(logit − max logit), and that sum:
    /// π_k = weights[k] / total.
    fn weights(&self) -> (Vec<f64>, f64) {
        let logits: Vec<f32> = host(self.logits.val());
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> = logits.iter().map(|l| ((l - max) as f64).exp()).collect();
        let total = weights.iter().sum();
        (weights, total)
    }
}

/// log Σ_k w_k N(z; mean_k, exp(logvar_k)) per row of z [N, Z], components [K, Z], log
/// weights [K].
fn mixture_log_prob(
    z: Tensor<2>,
    means: Tensor<2>,
    logvars: Tensor<2>,
    log_weights: Tensor<1>,
) -> Tensor<1> {
    let [n, _] = z.dims();
    let k = means.dims()[0];
    let z = z.unsqueeze_dim::<3>(1); // [N, 1, Z]
    let means = means.unsqueeze_dim::<3>(0); // [1, K, Z]
    let logvars = logvars.unsqueeze_dim::<3>(0);
    let sq = (z - means).square() * logvars.clone().neg().exp();
    let per_component = (sq + logvars)
        .add_scalar(LN_2PI)
        .mul_scalar(-0.5)
        .sum_dim(2)
        .reshape([n, k]); // [N, K]
    log_sum_exp(per_component + log_weights.unsqueeze_dim::<2>(0), 1).squeeze_dim::<1>(1)
}

/// n draws of a mixture with host-side components ([K·Z] each) and weights up to `total`.
fn mixture_sample(
    means: &[f32],
    logvars: &[f32],
    weights: &[f64],
    total: f64,
    d: usize,
    n: usize,
    rng: &mut StdRng,
) -> Vec<f32> {
    let k = weights.len();
    let mut z = Vec::with_capacity(n * d);
    for _ in 0..n {
        let mut u = rng.random::<f64>() * total;
        let mut c = k - 1;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                c = i;
                break;
            }
            u -= w;
        }
        for j in 0..d {
            let e: f32 = StandardNormal.sample(rng);
            z.push(means[c * d + j] + (0.5 * logvars[c * d + j]).exp() * e);
        }
    }
    z
}

impl LatentPrior for MixturePrior {
    fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        mixture_log_prob(
            z,
            self.means.val(),
            self.logvars.val(),
            log_softmax(self.logits.val(), 0),
        )
    }
    fn analytic_kl(&self, _q: &Posterior) -> Option<Tensor<1>> {
        None
    }
    fn sample(&self, n: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
        let [_, d] = self.means.val().dims();
        let means: Vec<f32> = host(self.means.val());
        let logvars: Vec<f32> = host(self.logvars.val());
        let (weights, total) = self.weights();
        let z = mixture_sample(&means, &logvars, &weights, total, d, n, rng);
        Tensor::from_data(TensorData::new(z, [n, d]), device)
    }
}

/// The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) Σ_k q(z | u_k), the encoder's
/// posteriors at K learned pseudo-inputs u_k. Initialised as the paper's MNIST code does
/// (N(0.05, 0.01²) per pixel) and, for data in [0, 1] (a Bernoulli likelihood), clamped to
/// that range where the encoder reads them (hardtanh, as theirs). The encoder is the VAE's
/// own, so gradients from both of its uses add up.
#[derive(Module, Debug)]
pub struct VampPrior {
    pub pseudo_inputs: Param<Tensor<2>>,
    #[module(skip)]
    pub clamp: bool,
}

impl VampPrior {
    /// The inputs as the encoder reads them, [K, D].
    pub fn inputs(&self) -> Tensor<2> {
        let u = self.pseudo_inputs.val();
        if self.clamp { u.clamp(0.0, 1.0) } else { u }
    }

    /// The inputs as the encoder reads them, on the host: [K·D] values, row-major.
    pub fn inputs_host(&self) -> Vec<f32> {
        host(self.inputs())
    }

    /// The mixture's components: the encoder's posteriors at the pseudo-inputs.
    pub fn components(&self, encoder: &super::encoder::Encoder) -> Posterior {
        encoder.forward(self.inputs())
    }

    pub fn log_prob(&self, encoder: &super::encoder::Encoder, z: Tensor<2>) -> Tensor<1> {
        let q = self.components(encoder);
        let k = q.mean.dims()[0];
        let uniform = Tensor::<1>::zeros([k], &z.device()).sub_scalar((k as f64).ln());
        mixture_log_prob(z, q.mean, q.logvar, uniform)
    }

    pub fn sample(
        &self,
        encoder: &super::encoder::Encoder,
        n: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<2> {
        let q = self.components(encoder);
        let [k, d] = q.mean.dims();
        let (means, logvars) = (host(q.mean), host(q.logvar));
        let z = mixture_sample(&means, &logvars, &vec![1.0; k], k as f64, d, n, rng);
        Tensor::from_data(TensorData::new(z, [n, d]), device)
    }

    /// Latent dimension `dim`'s marginal: K equally weighted normals.
    pub fn marginal(&self, encoder: &super::encoder::Encoder, dim: usize) -> Vec<(f64, f64, f64)> {
        let q = self.components(encoder);
        let [k, d] = q.mean.dims();
        let (means, logvars) = (host(q.mean), host(q.logvar));
        (0..k)
            .map(|c| {
                (
                    1.0 / k as f64,
                    means[c * d + dim] as f64,
                    (0.5 * logvars[c * d + dim] as f64).exp(),
                )
            })
            .collect()
    }
}

use crate::data::device::host;

#[derive(Module, Debug)]
pub enum Prior {
    StandardNormal(StandardNormalPrior),
    Normal(DiagonalNormalPrior),
    Mixture(MixturePrior),
    Vamp(VampPrior),
}

impl Prior {
    /// A new prior of `config` for data of `data_dim` values (the VampPrior's inputs).
    pub fn new(config: &ModelConfig, data_dim: usize, rng: &mut StdRng, device: &Device) -> Self {
        let z = config.latent_dim;
        match config.prior {
            PriorKind::StandardNormal => {
                Prior::StandardNormal(StandardNormalPrior { latent_dim: z })
            }
            PriorKind::Normal => {
                let param = |v: Vec<f32>| {
                    Param::from_data(TensorData::new(v, [z]), device)
                        .set_require_grad(config.prior_learned)
                };
                Prior::Normal(DiagonalNormalPrior {
                    mean: param(vec![0.0; z]),
                    logvar: param(vec![0.0; z]),
                })
            }
            PriorKind::Mixture => {
                let k = config.prior_components;
                // Spread the component means so they do not start identical.
                let means = normal_draws(k * z, rng);
                Prior::Mixture(MixturePrior {
                    means: Param::from_data(TensorData::new(means, [k, z]), device),
                    logvars: Param::from_data(TensorData::new(vec![0f32; k * z], [k, z]), device),
                    logits: Param::from_data(TensorData::new(vec![0f32; k], [k]), device),
                })
            }
            PriorKind::Vamp => {
                let k = config.pseudo_inputs;
                let init = Normal::new(0.05f32, 0.01).expect("a valid normal");
                let u: Vec<f32> = (0..k * data_dim).map(|_| init.sample(rng)).collect();
                Prior::Vamp(VampPrior {
                    pseudo_inputs: Param::from_data(TensorData::new(u, [k, data_dim]), device),
                    clamp: config.likelihood == crate::spec::LikelihoodKind::Bernoulli,
                })
            }
        }
    }

    /// The prior's marginal along latent dimension `dim`, as normal components
    /// (weight, mean, standard deviation): one for the normal priors, K for the mixture and
    /// the VampPrior (whose components `encoder` gives).
    pub fn marginal(&self, encoder: &super::encoder::Encoder, dim: usize) -> Vec<(f64, f64, f64)> {
        match self {
            Prior::Vamp(p) => p.marginal(encoder, dim),
            Prior::StandardNormal(_) => vec![(1.0, 0.0, 1.0)],
            Prior::Normal(p) => {
                let (mean, logvar) = (host(p.mean.val()), host(p.logvar.val()));
                vec![(1.0, mean[dim] as f64, (0.5 * logvar[dim] as f64).exp())]
            }
            Prior::Mixture(p) => {
                let [k, d] = p.means.val().dims();
                let (means, logvars) = (host(p.means.val()), host(p.logvars.val()));
                let (weights, total) = p.weights();
                (0..k)
                    .map(|c| {
                        (
                            weights[c] / total,
                            means[c * d + dim] as f64,
                            (0.5 * logvars[c * d + dim] as f64).exp(),
                        )
                    })
                    .collect()
            }
        }
    }
}
