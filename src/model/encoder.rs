//! q(z|x): convolutions (image data, optional), an MLP, and mean and log-variance heads (a
//! diagonal Gaussian).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

use super::conv::{ConvStack, Stage};
use super::mlp::{Init, Mlp, dense};
use crate::spec::MlpConfig;

/// A diagonal Gaussian per row: N(mean, exp(logvar)).
#[derive(Clone, Debug)]
pub struct Posterior {
    pub mean: Tensor<2>,
    pub logvar: Tensor<2>,
}

impl Posterior {
    /// z = mean + exp(logvar / 2) · eps, for eps [L·N, Z] holding L blocks of N rows.
    pub fn reparameterize(&self, eps: Tensor<2>) -> Tensor<2> {
        let samples = eps.dims()[0] / self.mean.dims()[0];
        let std = self.logvar.clone().mul_scalar(0.5).exp();
        repeat_rows(self.mean.clone(), samples) + repeat_rows(std, samples) * eps
    }

    /// log q(z|x) at z = mean + std · eps, written in eps: −½ Σ (log 2π + logvar + eps²).
    pub fn log_prob_at(&self, eps: Tensor<2>) -> Tensor<1> {
        let samples = eps.dims()[0] / self.mean.dims()[0];
        let logvar = repeat_rows(self.logvar.clone(), samples);
        super::density::sum_rows(
            (logvar + eps.square())
                .add_scalar(super::density::LN_2PI)
                .mul_scalar(-0.5),
        )
    }
}

/// [N, D] -> [L·N, D]: L copies of the block, one after another.
pub fn repeat_rows(t: Tensor<2>, copies: usize) -> Tensor<2> {
    if copies == 1 {
        t
    } else {
        t.repeat_dim(0, copies)
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    /// Convolutions on the image, before the dense layers.
    pub conv: Option<ConvStack>,
    pub body: Mlp,
    pub mean: Linear,
    pub logvar: Linear,
    #[module(skip)]
    pub logvar_limit: f64,
}

impl Encoder {
    /// `conv`: the planned convolutions on the image (empty for a fully connected encoder).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data_dim: usize,
        conv: &[Stage],
        latent_dim: usize,
        config: &MlpConfig,
        logvar_limit: f64,
        init: Init,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let conv = (!conv.is_empty())
            .then(|| ConvStack::new(conv, config.activation, true, init, rng, device));
        let data_dim = conv.as_ref().map_or(data_dim, ConvStack::output_len);
        let body = Mlp::new(
            data_dim,
            &config.hidden,
            config.activation,
            init,
            rng,
            device,
        );
        let width = body.out_dim(data_dim);
        Self {
            mean: dense(width, latent_dim, init, rng, device),
            logvar: dense(width, latent_dim, init, rng, device),
            conv,
            body,
            logvar_limit,
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Posterior {
        let x = match &self.conv {
            Some(conv) => conv.forward(x),
            None => x,
        };
        let h = self.body.forward(x);
        // A saturating log-variance keeps exp() finite; divergence elsewhere is caught by
        // the training loop's NaN check.
        let logvar = self
            .logvar
            .forward(h.clone())
            .clamp(-self.logvar_limit, self.logvar_limit);
        Posterior {
            mean: self.mean.forward(h),
            logvar,
        }
    }
}
