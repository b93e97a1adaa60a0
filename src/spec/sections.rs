//! The spec's sections a run is made of: data, model, objective, training and evaluation.

use serde::{Deserialize, Serialize};

pub use super::conv::ConvLayer;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    Synthetic,
    Digits,
    Mnist,
    FashionMnist,
    Table,
    /// dSprites, generated: see `[data.sprites]`.
    Sprites,
    /// dSprites' published .npz file at `data.path`.
    Dsprites,
    /// CIFAR-10's binary batches in the folder at `data.path`.
    #[serde(rename = "cifar10")]
    Cifar10,
    /// Your own PNG and JPEG files under the folder at `data.path` (class subfolders become
    /// labels), at `data.image_size` and `data.channels`.
    ImageFolder,
    /// Images and their generative factors in an .npz at `data.path` (`imgs`,
    /// `latents_classes`, `latents_values`), any shape, any number of factors.
    Npz,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Binarization {
    None,
    Static,
    Dynamic,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StaticBinarization {
    /// `x > threshold`.
    Threshold,
    /// One Bernoulli(x) sample, drawn once from `data.split_seed`.
    Sample,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Directory of IDX files (mnist, fashion_mnist) or a Parquet/CSV file (table).
    pub path: Option<String>,
    /// Table datasets: a second file that holds the test split.
    pub test_path: Option<String>,
    /// Fraction of examples held out for testing where a dataset has no test split of its own.
    pub test_fraction: f64,
    /// Seed of everything about the data that is not training: splits, static samples,
    /// the synthetic model. Kept apart from `train.seed` so all seeds share one test set.
    pub split_seed: u64,
    pub binarization: Binarization,
    pub static_mode: StaticBinarization,
    pub threshold: f64,
    /// Use only the first N training / test examples (quick checks, CI).
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Training examples held out as a validation set (a seeded draw, `split_seed`): early
    /// stopping reads their ELBO instead of the test set's, so that the test set chooses
    /// nothing. 0: none.
    #[serde(skip_serializing_if = "is_zero")]
    pub validation: usize,
    /// Table datasets: the columns to use (default: every numeric column).
    pub columns: Option<Vec<String>>,
    /// `image_folder`: the side images are resized and centre-cropped to (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// `image_folder`: 1 (grey) or 3 (RGB, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// `npz`: the factors' names, one per column of `latents_classes` (default factor_0 …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor_names: Option<Vec<String>>,
    pub synthetic: SyntheticConfig,
    pub sprites: SpritesConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Digits,
            path: None,
            test_path: None,
            test_fraction: 0.2,
            split_seed: 0,
            binarization: Binarization::None,
            static_mode: StaticBinarization::Threshold,
            threshold: 0.5,
            train_limit: None,
            test_limit: None,
            validation: 0,
            columns: None,
            image_size: None,
            channels: None,
            factor_names: None,
            synthetic: SyntheticConfig::default(),
            sprites: SpritesConfig::default(),
        }
    }
}

/// `dataset = "sprites"`: dSprites' factor grid, generated (`data/sprites.rs`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpritesConfig {
    /// Image side: 64 (dSprites) or 32.
    pub resolution: usize,
    /// Images drawn from the 737,280 combinations (or the rows of dSprites' file) with
    /// `data.split_seed` (0: all of them).
    pub count: usize,
}

impl Default for SpritesConfig {
    fn default() -> Self {
        Self {
            resolution: 64,
            count: 50_000,
        }
    }
}

/// x = W z + b + noise_std * e, z ~ N(0, I), e ~ N(0, I): log p(x) is known exactly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    pub train_size: usize,
    pub test_size: usize,
    pub data_dim: usize,
    pub latent_dim: usize,
    pub noise_std: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            train_size: 2000,
            test_size: 500,
            data_dim: 16,
            latent_dim: 2,
            noise_std: 0.5,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Tanh,
    Relu,
    Softplus,
    Sigmoid,
    Elu,
    Gelu,
    LeakyRelu,
    Identity,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Hidden layer widths; empty means the heads read the input directly (a linear model).
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// Convolutions (image data only): the encoder's run on the image before its dense
    /// layers; the decoder's (transposed) run after its dense layers, back to the image.
    /// Empty for a fully connected network, and then left out of the run's identity.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conv: Vec<ConvLayer>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![400],
            activation: Activation::Relu,
            conv: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LikelihoodKind {
    Bernoulli,
    Gaussian,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VarianceKind {
    /// One learned log-variance per output dimension.
    Learned,
    /// A second output head of the decoder network.
    Head,
    /// `model.fixed_variance`, not learned.
    Fixed,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PriorKind {
    StandardNormal,
    Normal,
    Mixture,
    /// The VampPrior (Tomczak & Welling 2018): the mixture of the encoder's posteriors at
    /// `pseudo_inputs` learned inputs.
    Vamp,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// PyTorch's `nn.Linear` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias.
    Pytorch,
    /// N(0, init_std^2) weights and zero biases (Kingma & Welling use 0.01).
    Normal,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub latent_dim: usize,
    pub encoder: MlpConfig,
    pub decoder: MlpConfig,
    pub likelihood: LikelihoodKind,
    pub variance: VarianceKind,
    pub fixed_variance: f64,
    pub prior: PriorKind,
    /// `normal` prior: learn its mean and scale (else they stay at N(0, I)'s values).
    pub prior_learned: bool,
    /// `mixture` prior: number of diagonal Gaussian components.
    pub prior_components: usize,
    /// `vamp` prior: number of learned pseudo-inputs K (the paper's 500). Left out of a
    /// run's identity at its default.
    #[serde(skip_serializing_if = "is_default_pseudo_inputs")]
    pub pseudo_inputs: usize,
    pub init: InitKind,
    pub init_std: f64,
    /// Encoder (and learned decoder) log-variances are clamped to [-limit, limit] so that an
    /// exploding head saturates instead of turning into inf/NaN.
    pub logvar_limit: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            latent_dim: 20,
            encoder: MlpConfig::default(),
            decoder: MlpConfig::default(),
            likelihood: LikelihoodKind::Bernoulli,
            variance: VarianceKind::Learned,
            fixed_variance: 1.0,
            prior: PriorKind::StandardNormal,
            prior_learned: true,
            prior_components: 10,
            pseudo_inputs: DEFAULT_PSEUDO_INPUTS,
            init: InitKind::Pytorch,
            init_std: 0.01,
            logvar_limit: 30.0,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    Elbo,
    Iwae,
    /// DIP-VAE-I (Kumar et al. 2018): the ELBO less a penalty on the covariance of the
    /// posterior means over the minibatch (`dip_lambda_od`, `dip_lambda_d`).
    DipVaeI,
    /// DIP-VAE-II: the same penalty on the aggregate posterior's covariance,
    /// Cov[μ] + E[diag σ²].
    DipVaeIi,
    /// β-TCVAE (Chen et al. 2018): the ELBO less (β − 1) times the total correlation of the
    /// aggregate posterior, estimated by minibatch-weighted sampling.
    BetaTcvae,
    /// AnnealedVAE / controlled capacity (Burgess et al. 2018): E[log p(x|z)] less
    /// γ·|KL − C|, C raised linearly from 0 to `capacity_max` over `capacity_steps` steps.
    Annealed,
    /// FactorVAE (Kim & Mnih 2018): the ELBO less γ times a discriminator's estimate of the
    /// total correlation (its logit difference between q(z) and the product of marginals,
    /// which it learns from dimension-wise permuted samples with an optimiser of its own).
    FactorVae,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KlMode {
    Analytic,
    MonteCarlo,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    pub kind: ObjectiveKind,
    pub beta: f64,
    /// L, Monte Carlo samples of z per data point for the ELBO.
    pub mc_samples: usize,
    pub kl: KlMode,
    /// k, importance samples per data point for the IWAE bound.
    pub iwae_k: usize,
    /// β ramps linearly from 0 to `beta` over this many epochs (0: no warm-up).
    pub kl_warmup_epochs: usize,
    /// DIP-VAE: weight of the squared off-diagonal covariances (λ_od; the paper's default
    /// 10). Left out of a run's identity at its default.
    #[serde(skip_serializing_if = "is_default_lambda_od")]
    pub dip_lambda_od: f64,
    /// DIP-VAE: weight of the squared deviations of the diagonal from 1 (λ_d; default
    /// 10·λ_od for DIP-VAE-I and λ_od for -II, as the paper sets them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dip_lambda_d: Option<f64>,
    /// AnnealedVAE: the capacity C reached at the end of its ramp, nats (Burgess et al.:
    /// 25 on dSprites; disentanglement_lib's default). Left out of a run's identity at its
    /// default, as are the two below.
    #[serde(skip_serializing_if = "is_default_capacity_max")]
    pub capacity_max: f64,
    /// AnnealedVAE: optimiser steps over which C rises linearly from 0 (disentanglement_lib:
    /// 100,000).
    #[serde(skip_serializing_if = "is_default_capacity_steps")]
    pub capacity_steps: usize,
    /// AnnealedVAE: γ, the weight on |KL − C| (disentanglement_lib: 1000).
    #[serde(skip_serializing_if = "is_default_capacity_gamma")]
    pub capacity_gamma: f64,
    /// FactorVAE: γ, the weight on the discriminator's TC estimate (disentanglement_lib's
    /// smallest study value, 10; Kim & Mnih report 40 best on dSprites).
    #[serde(skip_serializing_if = "is_default_factor_gamma")]
    pub factor_gamma: f64,
    /// FactorVAE: the discriminator's hidden layers (LeakyReLU 0.2; the paper's six of 1000).
    #[serde(skip_serializing_if = "is_default_discriminator_hidden")]
    pub discriminator_hidden: Vec<usize>,
    /// FactorVAE: the discriminator's Adam learning rate (β₁ 0.5, β₂ 0.9, as the paper).
    #[serde(skip_serializing_if = "is_default_discriminator_lr")]
    pub discriminator_lr: f64,
}

pub const DEFAULT_FACTOR_GAMMA: f64 = 10.0;
pub const DEFAULT_DISCRIMINATOR_HIDDEN: [usize; 6] = [1000; 6];
pub const DEFAULT_DISCRIMINATOR_LR: f64 = 1e-4;

fn is_default_factor_gamma(v: &f64) -> bool {
    *v == DEFAULT_FACTOR_GAMMA
}

fn is_default_discriminator_hidden(v: &[usize]) -> bool {
    v == DEFAULT_DISCRIMINATOR_HIDDEN
}

fn is_default_discriminator_lr(v: &f64) -> bool {
    *v == DEFAULT_DISCRIMINATOR_LR
}

pub const DEFAULT_PSEUDO_INPUTS: usize = 500;

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn is_default_pseudo_inputs(v: &usize) -> bool {
    *v == DEFAULT_PSEUDO_INPUTS
}

pub const DEFAULT_CAPACITY_MAX: f64 = 25.0;
pub const DEFAULT_CAPACITY_STEPS: usize = 100_000;
pub const DEFAULT_CAPACITY_GAMMA: f64 = 1000.0;

fn is_default_capacity_max(v: &f64) -> bool {
    *v == DEFAULT_CAPACITY_MAX
}

fn is_default_capacity_steps(v: &usize) -> bool {
    *v == DEFAULT_CAPACITY_STEPS
}

fn is_default_capacity_gamma(v: &f64) -> bool {
    *v == DEFAULT_CAPACITY_GAMMA
}

pub const DEFAULT_DIP_LAMBDA_OD: f64 = 10.0;

fn is_default_lambda_od(v: &f64) -> bool {
    *v == DEFAULT_DIP_LAMBDA_OD
}

impl ObjectiveConfig {
    /// Whether the objective is one of the DIP-VAEs.
    pub fn is_dip(&self) -> bool {
        matches!(self.kind, ObjectiveKind::DipVaeI | ObjectiveKind::DipVaeIi)
    }

    /// (λ_od, λ_d) of a DIP-VAE, with the paper's λ_d where the spec gives none.
    pub fn dip_lambdas(&self) -> (f64, f64) {
        let od = self.dip_lambda_od;
        let ratio = if self.kind == ObjectiveKind::DipVaeI {
            10.0
        } else {
            1.0
        };
        (od, self.dip_lambda_d.unwrap_or(ratio * od))
    }
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            kind: ObjectiveKind::Elbo,
            beta: 1.0,
            mc_samples: 1,
            kl: KlMode::Analytic,
            iwae_k: 5,
            kl_warmup_epochs: 0,
            dip_lambda_od: DEFAULT_DIP_LAMBDA_OD,
            dip_lambda_d: None,
            capacity_max: DEFAULT_CAPACITY_MAX,
            capacity_steps: DEFAULT_CAPACITY_STEPS,
            capacity_gamma: DEFAULT_CAPACITY_GAMMA,
            factor_gamma: DEFAULT_FACTOR_GAMMA,
            discriminator_hidden: DEFAULT_DISCRIMINATOR_HIDDEN.to_vec(),
            discriminator_lr: DEFAULT_DISCRIMINATOR_LR,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    Adagrad,
    Sgd,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    /// Burda et al. (2015): 3^i epochs at lr * 10^(-i/7), i = 0..7 (3280 epochs in all).
    Burda,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    /// L2 penalty on every weight (a N(0, 1/(N·wd)) prior, as in the AEVB paper).
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub seed: u64,
    pub shuffle: bool,
    /// A run diverges when a metric is not finite, or when a bound moves more than this
    /// many times max(|ELBO at initialisation|, 1) nats away from its initial value.
    pub divergence_factor: f64,
    /// Write the run's full training state every this many epochs (0: only when the
    /// process is interrupted by SIGINT or SIGTERM). An interrupted or killed run resumes
    /// from its last checkpoint. Does not change the numbers, so not part of the run id.
    pub checkpoint_every_epochs: usize,
    /// Also write it as training goes (at the next minibatch), at most this many seconds
    /// apart (0: off): the first one second into each attempt, then as often as writing
    /// them costs at most 5% of the time, so that a scheduler's kill loses little work
    /// whatever the epoch length. Not part of the run id.
    pub checkpoint_every_seconds: f64,
    /// Checkpoints kept per run while it trains (removed once it has finished, unless failed).
    pub keep_last: usize,
    /// Early stopping (0: off): stop when the validation ELBO (the test ELBO without a
    /// validation set) has not improved by more than `early_stopping_min_delta` nats for
    /// this many evaluations in a row.
    pub early_stopping_patience: usize,
    pub early_stopping_min_delta: f64,
    /// With early stopping: the run's model is the one of its best evaluation, not the
    /// one `early_stopping_patience` evaluations later where it stopped; the final
    /// evaluation, the saved model and the row are of that model.
    #[serde(skip_serializing_if = "is_false")]
    pub restore_best: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            seed: 0,
            shuffle: true,
            divergence_factor: 100.0,
            checkpoint_every_epochs: 0,
            checkpoint_every_seconds: 600.0,
            keep_last: 1,
            early_stopping_patience: 0,
            early_stopping_min_delta: 0.0,
            restore_best: false,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// K, importance samples for the final test log p(x) estimate.
    pub importance_samples: usize,
    /// Estimate log p(x) on the first N test examples only (None: all of them).
    pub log_px_examples: Option<usize>,
    /// Upper bound on the rows (examples × samples) evaluated at once: bounds memory.
    pub max_rows_per_chunk: usize,
    /// Evaluate the test ELBO every this many epochs (the last epoch always is).
    pub every_epochs: usize,
    /// Write TensorBoard images every this many epochs (0: only at the end).
    pub images_every_epochs: usize,
    /// Active units: posterior-mean variance across the test set above this.
    pub active_unit_threshold: f64,
    /// Save the final log p(x) estimate's progress whenever this many seconds of it have
    /// passed since the last save (0: after every group of blocks), and on SIGINT/SIGTERM:
    /// a rerun continues it to the same numbers. Not part of the run id.
    pub checkpoint_every_seconds: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            importance_samples: 5000,
            log_px_examples: None,
            max_rows_per_chunk: 65_536,
            every_epochs: 1,
            images_every_epochs: 5,
            active_unit_threshold: 0.01,
            checkpoint_every_seconds: 10.0,
        }
    }
}
