//! p(x|z): an MLP, then (image data, optional) transposed convolutions back to the image,
//! with a Bernoulli (logits) or Gaussian (mean, variance) output.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;

use super::conv::{ConvStack, Stage};
use super::density::{bernoulli_logits, normal_diag};
use super::mlp::{Init, Mlp, activate, dense};
use crate::spec::{LikelihoodKind, ModelConfig, VarianceKind};

#[derive(Module, Debug)]
pub struct Decoder {
    pub body: Mlp,
    /// Logits (Bernoulli) or means (Gaussian); with transposed convolutions, the activated
    /// input of the first of them.
    pub out: Linear,
    /// Transposed convolutions from `out` (reshaped) to the image; the last gives the logits
    /// or means.
    pub conv: Option<ConvStack>,
    /// Gaussian `variance = "head"`: log-variances from the network.
    pub logvar_head: Option<Linear>,
    /// Gaussian `variance = "learned"`: one log-variance per output dimension.
    pub logvar: Option<Param<Tensor<1>>>,
    #[module(skip)]
    pub likelihood: LikelihoodKind,
    #[module(skip)]
    pub fixed_logvar: f64,
    #[module(skip)]
    pub logvar_limit: f64,
}

impl Decoder {
    /// `conv`: the planned transposed convolutions (empty for a fully connected decoder).
    pub fn new(
        data_dim: usize,
        conv: &[Stage],
        config: &ModelConfig,
        init: Init,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let spec = &config.decoder;
        let body = Mlp::new(
            config.latent_dim,
            &spec.hidden,
            spec.activation,
            init,
            rng,
            device,
        );
        let width = body.out_dim(config.latent_dim);
        let out_dim = conv.first().map_or(data_dim, |s| s.input.len());
        let out = dense(width, out_dim, init, rng, device);
        let conv = (!conv.is_empty())
            .then(|| ConvStack::new(conv, spec.activation, false, init, rng, device));
        let gaussian = config.likelihood == LikelihoodKind::Gaussian;
        let logvar_head = (gaussian && config.variance == VarianceKind::Head)
            .then(|| dense(width, data_dim, init, rng, device));
        let logvar = (gaussian && config.variance == VarianceKind::Learned)
            .then(|| Param::from_data(TensorData::new(vec![0f32; data_dim], [data_dim]), device));
        Self {
            body,
            out,
            conv,
            logvar_head,
            logvar,
            likelihood: config.likelihood,
            fixed_logvar: config.fixed_variance.ln(),
            logvar_limit: config.logvar_limit,
        }
    }

    /// Dimensions of the data it models.
    pub fn data_dim(&self) -> usize {
        match &self.conv {
            Some(conv) => conv.output_len(),
            None => self.out.weight.val().dims()[1],
        }
    }

    /// The last hidden layer and the logits or means.
    fn output(&self, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = self.body.forward(z);
        let out = self.out.forward(h.clone());
        match &self.conv {
            Some(conv) => (h, conv.forward(activate(out, conv.activation))),
            None => (h, out),
        }
    }

    /// log p(x|z) for each row of z [M, Z] against x [M, D]: [M].
    pub fn log_prob(&self, z: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
        let (h, out) = self.output(z);
        match self.likelihood {
            LikelihoodKind::Bernoulli => bernoulli_logits(out, x),
            LikelihoodKind::Gaussian => {
                let logvar = self.gaussian_logvar(h, &out);
                normal_diag(x, out, logvar)
            }
        }
    }

    /// E[x|z]: probabilities (Bernoulli) or means (Gaussian), for pictures and reconstructions.
    pub fn mean(&self, z: Tensor<2>) -> Tensor<2> {
        let (_, out) = self.output(z);
        match self.likelihood {
            LikelihoodKind::Bernoulli => sigmoid(out),
            LikelihoodKind::Gaussian => out,
        }
    }

    fn gaussian_logvar(&self, h: Tensor<2>, out: &Tensor<2>) -> Tensor<2> {
        let lim = self.logvar_limit;
        if let Some(head) = &self.logvar_head {
            head.forward(h).clamp(-lim, lim)
        } else if let Some(logvar) = &self.logvar {
            logvar.val().clamp(-lim, lim).unsqueeze_dim::<2>(0)
        } else {
            out.zeros_like().add_scalar(self.fixed_logvar)
        }
    }
}
