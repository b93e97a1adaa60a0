//! The model zoo: encoders, decoders and priors, assembled into a VAE from a `ModelConfig`.

pub mod conv;
pub mod decoder;
pub mod density;
pub mod discriminator;
pub mod encoder;
pub mod mlp;
pub mod prior;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

pub use decoder::Decoder;
pub use encoder::{Encoder, Posterior};
pub use prior::{LatentPrior, Prior};

use crate::data::{Dataset, ImageShape};
use crate::spec::ModelConfig;

/// What a model reads: rows of `dim` values, images of `image`'s shape where they are images
/// (what convolutions need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    pub dim: usize,
    pub image: Option<ImageShape>,
}

impl Input {
    /// What `config`'s data will be, without reading them (`None` for a table).
    pub fn declared(config: &crate::spec::DataConfig) -> Option<Self> {
        crate::data::declared_shape(config).map(|(dim, image)| Self { dim, image })
    }
}

impl From<usize> for Input {
    /// Flat rows of `dim` values.
    fn from(dim: usize) -> Self {
        Self { dim, image: None }
    }
}

impl From<ImageShape> for Input {
    fn from(image: ImageShape) -> Self {
        Self {
            dim: image.len(),
            image: Some(image),
        }
    }
}

impl From<&Dataset> for Input {
    fn from(data: &Dataset) -> Self {
        Self {
            dim: data.dim(),
            image: data.image_shape,
        }
    }
}

#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub prior: Prior,
}

impl Vae {
    /// A new model with weights drawn from `rng`. Panics where the config's convolutions do
    /// not fit the input, which runs check before they start ([`Vae::try_new`] says why).
    pub fn new(
        config: &ModelConfig,
        input: impl Into<Input>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        Self::try_new(config, input, rng, device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A new model with weights drawn from `rng`, or why the config's convolutions do not
    /// fit the input.
    pub fn try_new(
        config: &ModelConfig,
        input: impl Into<Input>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Self, conv::ShapeError> {
        let input = input.into();
        let plan = conv::plan(config, input.image)?;
        let data_dim = input.dim;
        let init = mlp::Init {
            kind: config.init,
            std: config.init_std,
        };
        let encoder = Encoder::new(
            data_dim,
            &plan.encoder,
            config.latent_dim,
            &config.encoder,
            config.logvar_limit,
            init,
            rng,
            device,
        );
        let decoder = Decoder::new(data_dim, &plan.decoder, config, init, rng, device);
        let prior = Prior::new(config, data_dim, rng, device);
        Ok(Self {
            encoder,
            decoder,
            prior,
        })
    }

    /// log p(z) per row of z [N, Z] (the VampPrior through this model's encoder).
    pub fn log_prior(&self, z: Tensor<2>) -> Tensor<1> {
        match &self.prior {
            Prior::StandardNormal(p) => p.log_prob(z),
            Prior::Normal(p) => p.log_prob(z),
            Prior::Mixture(p) => p.log_prob(z),
            Prior::Vamp(p) => p.log_prob(&self.encoder, z),
        }
    }

    /// KL(q || p) per row where the prior has a closed form.
    pub fn prior_kl(&self, q: &Posterior) -> Option<Tensor<1>> {
        match &self.prior {
            Prior::StandardNormal(p) => p.analytic_kl(q),
            Prior::Normal(p) => p.analytic_kl(q),
            Prior::Mixture(p) => p.analytic_kl(q),
            Prior::Vamp(_) => None,
        }
    }

    /// n draws from p(z).
    pub fn sample_prior(&self, n: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
        match &self.prior {
            Prior::StandardNormal(p) => p.sample(n, rng, device),
            Prior::Normal(p) => p.sample(n, rng, device),
            Prior::Mixture(p) => p.sample(n, rng, device),
            Prior::Vamp(p) => p.sample(&self.encoder, n, rng, device),
        }
    }

    /// The prior's marginal along latent dimension `dim` as (weight, mean, sd) components.
    pub fn prior_marginal(&self, dim: usize) -> Vec<(f64, f64, f64)> {
        self.prior.marginal(&self.encoder, dim)
    }

    /// What the model reads: its data's dimension, and the image shape its convolutions
    /// read or write (none for a fully connected model).
    pub fn input(&self) -> Input {
        let shape = |[channels, height, width]: [usize; 3]| ImageShape {
            channels,
            height,
            width,
        };
        let image = match (&self.encoder.conv, &self.decoder.conv) {
            (Some(conv), _) => Some(shape(conv.input)),
            (None, Some(conv)) => Some(shape(conv.output)),
            (None, None) => None,
        };
        Input {
            dim: self.decoder.data_dim(),
            image,
        }
    }

    /// f32 values the decoder's forward pass holds per sample row: its activations and
    /// convolution patches (what bounds the rows evaluation pushes through at once).
    pub fn decoder_floats_per_row(&self) -> usize {
        let d = &self.decoder;
        let hidden: Vec<usize> = d
            .body
            .layers
            .iter()
            .map(|l| l.weight.val().dims()[1])
            .collect();
        let conv = d.conv.as_ref().map_or(0, |c| c.floats_per_row);
        decoder_floats_per_row(&hidden, d.out.weight.val().dims()[1], conv, d.data_dim())
    }

    /// The device the model's parameters live on.
    pub fn device(&self) -> Device {
        self.decoder.out.weight.val().device()
    }

    /// E[x | z = mean of q(z|x)]: what the model reconstructs.
    pub fn reconstruct(&self, x: Tensor<2>) -> Tensor<2> {
        self.decoder.mean(self.encoder.forward(x).mean)
    }
}

/// Parameters of the model a config builds for its input (f64, so that absurd sizes cannot
/// overflow); NaN where its convolutions do not fit the input (a spec error found first).
pub fn parameter_count(config: &ModelConfig, input: impl Into<Input>) -> f64 {
    let input = input.into();
    let Ok(plan) = conv::plan(config, input.image) else {
        return f64::NAN;
    };
    let dense = |i: f64, o: f64| i * o + o;
    let chain = |first: f64, hidden: &[usize]| -> (f64, f64) {
        hidden.iter().fold((0.0, first), |(n, width), &h| {
            (n + dense(width, h as f64), h as f64)
        })
    };
    let convs = |stages: &[conv::Stage]| stages.iter().map(|s| s.parameters() as f64).sum::<f64>();
    let (d, z) = (input.dim as f64, config.latent_dim as f64);
    let enc_in = plan.encoder_output().map_or(d, |s| s.len() as f64);
    let dec_out = plan.decoder_input().map_or(d, |s| s.len() as f64);
    let (enc, enc_width) = chain(enc_in, &config.encoder.hidden);
    let (dec, dec_width) = chain(z, &config.decoder.hidden);
    let variance = match (config.likelihood, config.variance) {
        (crate::spec::LikelihoodKind::Gaussian, crate::spec::VarianceKind::Head) => {
            dense(dec_width, d)
        }
        (crate::spec::LikelihoodKind::Gaussian, _) => d,
        _ => 0.0,
    };
    let prior = match config.prior {
        crate::spec::PriorKind::StandardNormal => 0.0,
        crate::spec::PriorKind::Normal => 2.0 * z,
        crate::spec::PriorKind::Mixture => config.prior_components as f64 * (2.0 * z + 1.0),
        crate::spec::PriorKind::Vamp => config.pseudo_inputs as f64 * d,
    };
    convs(&plan.encoder)
        + enc
        + 2.0 * dense(enc_width, z)
        + dec
        + dense(dec_width, dec_out)
        + convs(&plan.decoder)
        + variance
        + prior
}

/// f32 values a decoder's forward pass holds per sample row: each hidden layer before and
/// after its activation, the output layer's two (`out` wide: the data, or the reshape its
/// transposed convolutions read), their `conv_floats`, and two rows of the data (the
/// likelihood's parameters and its scratch). The burn model, the fused engine's layout and
/// the memory estimate all count with this.
pub fn decoder_floats_per_row(
    hidden: &[usize],
    out: usize,
    conv_floats: usize,
    data_dim: usize,
) -> usize {
    2 * hidden.iter().sum::<usize>() + 2 * out + conv_floats + 2 * data_dim
}

/// Bytes of decoder activations one thread's chunk of evaluation rows may hold: 8,192 rows
/// of the canonical MLP fit many times over, a 64×64 conv decoder's take ~120 rows a chunk.
pub const EVAL_CHUNK_BYTES: usize = 256 << 20;

/// Sample rows per evaluation chunk for a decoder holding `floats_per_row` values a row,
/// within [`EVAL_CHUNK_BYTES`] and at most `asked`. How rows are chunked does not change any
/// number (every chunk continues its block's noise stream).
pub fn eval_chunk_rows(floats_per_row: usize, asked: usize) -> usize {
    (EVAL_CHUNK_BYTES / (4 * floats_per_row.max(1))).clamp(1, asked.max(1))
}

/// A generous estimate of the bytes a run needs, by what needs them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Parameters with their gradients and optimiser state.
    pub parameters: f64,
    /// Activations (forward and backward) of a training minibatch, all its samples.
    pub training: f64,
    /// Activations of the largest chunk of rows the evaluation pushes through at once.
    pub evaluation: f64,
    /// Activations of one row (forward and backward).
    pub row: f64,
}

impl MemoryEstimate {
    /// The run's peak: its parameters, and the larger of its two activation peaks.
    pub fn bytes(&self) -> f64 {
        self.parameters + self.training.max(self.evaluation)
    }

    /// The setting to change when `limit` bytes are too few: `model` when its parameters
    /// and a block of 64 rows alone exceed them, else `train.batch_size` or
    /// `eval.max_rows_per_chunk`, whichever peak is larger.
    pub fn key_over(&self, limit: f64) -> &'static str {
        if self.parameters + 64.0 * self.row > limit {
            "model"
        } else if self.training >= self.evaluation {
            "train.batch_size"
        } else {
            "eval.max_rows_per_chunk"
        }
    }
}

/// [`memory_estimate`]'s bytes.
pub fn memory_estimate_bytes(
    config: &crate::spec::RunConfig,
    input: impl Into<Input>,
    train_rows: usize,
    test_rows: usize,
) -> f64 {
    memory_estimate(config, input, train_rows, test_rows).bytes()
}

/// A generous estimate of the bytes a run needs: parameters with their gradients and
/// optimiser state, and the activations (forward and backward) of the largest batch of
/// rows it pushes through the network, in training or in evaluation.
pub fn memory_estimate(
    config: &crate::spec::RunConfig,
    input: impl Into<Input>,
    train_rows: usize,
    test_rows: usize,
) -> MemoryEstimate {
    let input = input.into();
    let m = &config.model;
    let params = parameter_count(m, input);
    let plan = conv::plan(m, input.image).unwrap_or_default();
    let dense = |hidden: &[usize]| hidden.iter().map(|&h| 2.0 * h as f64).sum::<f64>();
    let decoder_row = (3 * input.dim + m.latent_dim) as f64
        + dense(&m.decoder.hidden)
        + plan.decoder_input().map_or(0.0, |s| 2.0 * s.len() as f64)
        + conv::floats_per_row(&plan.decoder) as f64;
    // The rows of the chunks evaluation takes, as the scorers size them.
    let decoder_floats = decoder_floats_per_row(
        &m.decoder.hidden,
        plan.decoder_input().map_or(input.dim, |s| s.len()),
        conv::floats_per_row(&plan.decoder),
        input.dim,
    );
    let widths = decoder_row
        + m.latent_dim as f64
        + dense(&m.encoder.hidden)
        + conv::floats_per_row(&plan.encoder) as f64;
    let samples = config.objective.mc_samples.max(config.objective.iwae_k) as f64;
    // A batch larger than the training set is the whole set.
    let train_rows = config.train.batch_size.min(train_rows) as f64 * samples;
    let chunk = eval_chunk_rows(decoder_floats, config.eval.max_rows_per_chunk) as f64;
    let eval_rows = chunk
        .min(test_rows as f64 * config.eval.importance_samples as f64)
        .max(64f64.min(test_rows as f64) * samples);
    const F32: f64 = 4.0;
    MemoryEstimate {
        parameters: F32 * 6.0 * params,
        training: F32 * 2.0 * train_rows * widths,
        evaluation: F32 * 2.0 * eval_rows * widths,
        row: F32 * 2.0 * widths,
    }
}
