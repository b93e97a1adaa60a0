//! What the fused engine can train: decided field by field over every config that changes
//! what a step computes. Each config is destructured without `..`, so a field added to the
//! model, objective or training config does not compile until someone says here whether
//! the fused engine computes it; a model it cannot train is refused with the reason by
//! `engine::start` itself (library callers included), never trained differently from what
//! is evaluated.

use crate::spec::{
    Activation, LikelihoodKind, MlpConfig, ModelConfig, ObjectiveConfig, ObjectiveKind, PriorKind,
    RunConfig, TrainConfig, VarianceKind,
};

/// Why the fused engine cannot train a run: the spec key and what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub key: &'static str,
    /// The value the config gives the key, as the spec writes it.
    pub value: String,
    pub reason: &'static str,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {} ({})", self.key, self.value, self.reason)
    }
}

/// `Ok` when the fused engine trains `config` exactly as burn's autodiff would.
pub fn fused(config: &RunConfig) -> Result<(), Unsupported> {
    model(&config.model)?;
    objective(&config.objective)?;
    training(&config.train)
}

fn model(m: &ModelConfig) -> Result<(), Unsupported> {
    let ModelConfig {
        latent_dim: _,
        encoder,
        decoder,
        likelihood,
        variance,
        fixed_variance: _,
        prior,
        prior_learned: _,
        prior_components: _,
        pseudo_inputs: _,
        init: _,
        init_std: _,
        logvar_limit: _,
    } = m;
    mlp(encoder)?;
    mlp(decoder)?;
    // Every prior: N(0, I), a diagonal normal (learned or fixed), a mixture, and the
    // VampPrior with a dense encoder (engine/fused/vamp.rs).
    match prior {
        PriorKind::StandardNormal | PriorKind::Normal | PriorKind::Mixture => {}
        PriorKind::Vamp if !encoder.conv.is_empty() => {
            return Err(Unsupported {
                key: "model.prior",
                value: "\"vamp\"".into(),
                reason: "the VampPrior with a convolutional encoder (its pseudo-inputs through the convolutions) trains on burn's autodiff",
            });
        }
        PriorKind::Vamp => {}
    }
    // Every likelihood and variance: Bernoulli; Gaussian with a fixed, a learned or a
    // network-given (head) variance.
    match (likelihood, variance) {
        (LikelihoodKind::Bernoulli, _)
        | (
            LikelihoodKind::Gaussian,
            VarianceKind::Fixed | VarianceKind::Learned | VarianceKind::Head,
        ) => Ok(()),
    }
}

/// Every activation is the fused engine's (GELU the exact one, x·Φ(x), as burn's); the
/// match is exhaustive so that a new one must be decided here. Convolutions of any kernel,
/// stride and padding are the fused engine's too (engine/fused/conv.rs).
fn mlp(config: &MlpConfig) -> Result<(), Unsupported> {
    let MlpConfig {
        hidden: _,
        activation,
        conv: _,
    } = config;
    match activation {
        Activation::Gelu
        | Activation::Tanh
        | Activation::Relu
        | Activation::Softplus
        | Activation::Sigmoid
        | Activation::Elu
        | Activation::LeakyRelu
        | Activation::Identity => Ok(()),
    }
}

/// Every objective setting is computed by the fused engine (ELBO with analytic or Monte
/// Carlo KL, L samples, β and its warm-up; IWAE(k)).
fn objective(o: &ObjectiveConfig) -> Result<(), Unsupported> {
    let ObjectiveConfig {
        kind,
        beta: _,
        mc_samples: _,
        kl: _,
        iwae_k: _,
        kl_warmup_epochs: _,
        dip_lambda_od: _,
        dip_lambda_d: _,
        capacity_max: _,
        capacity_steps: _,
        capacity_gamma: _,
        factor_gamma: _,
        discriminator_hidden: _,
        discriminator_lr: _,
    } = o;
    let value = serde_json::to_string(kind).unwrap_or_else(|_| format!("{kind:?}"));
    let autodiff_only = |reason| {
        Err(Unsupported {
            key: "objective.kind",
            value: value.clone(),
            reason,
        })
    };
    match kind {
        ObjectiveKind::Elbo | ObjectiveKind::Iwae => Ok(()),
        ObjectiveKind::BetaTcvae => autodiff_only(
            "β-TCVAE's minibatch-weighted total correlation trains on burn's autodiff",
        ),
        ObjectiveKind::Annealed => {
            autodiff_only("AnnealedVAE's capacity objective trains on burn's autodiff")
        }
        ObjectiveKind::FactorVae => {
            autodiff_only("FactorVAE's discriminator trains on burn's autodiff")
        }
        ObjectiveKind::DipVaeI | ObjectiveKind::DipVaeIi => Err(Unsupported {
            key: "objective.kind",
            // As the spec writes it: "dip_vae_i".
            value: serde_json::to_string(kind).unwrap_or_else(|_| format!("{kind:?}")),
            reason: "DIP-VAE's minibatch covariance penalty trains on burn's autodiff",
        }),
    }
}

/// Every optimiser and schedule is the fused engine's too (Adam, AdaGrad, SGD, weight
/// decay, the learning-rate schedules); the rest is the loop's, shared by both engines.
fn training(t: &TrainConfig) -> Result<(), Unsupported> {
    let TrainConfig {
        epochs: _,
        batch_size: _,
        optimizer: _,
        lr: _,
        lr_schedule: _,
        weight_decay: _,
        adam_beta1: _,
        adam_beta2: _,
        adam_epsilon: _,
        seed: _,
        shuffle: _,
        divergence_factor: _,
        checkpoint_every_epochs: _,
        checkpoint_every_seconds: _,
        keep_last: _,
        early_stopping_patience: _,
        early_stopping_min_delta: _,
        restore_best: _,
    } = t;
    Ok(())
}
