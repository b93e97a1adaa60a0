//! burn's autodiff engine: the model on the run's autodiff device, `objective.rs` for the
//! loss, burn-optim for the update. Trains every model on every backend (CPU and CUDA).

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdaGradConfig, AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

use super::Engine;
use crate::data::batch::Batch;
use crate::data::device::host;
use crate::model::Vae;
use crate::model::discriminator::Discriminator;
use crate::objective::{self, factor_vae};
use crate::spec::{ObjectiveConfig, ObjectiveKind, OptimizerKind, RunConfig, TrainConfig};

/// The checkpoint files: burn's burnpack records of the model (it keeps the parameter ids
/// the optimiser state is keyed by) and of the optimiser.
pub const MODEL_FILE: &str = "model.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// FactorVAE's discriminator and its optimiser, beside them.
pub const CRITIC_FILE: &str = "critic.bpk";
pub const CRITIC_OPTIMIZER_FILE: &str = "critic_optimizer.bpk";

/// A module's and its optimiser's saved state.
pub type Records = (burn::store::ModuleRecord, burn::optim::OptimizerRecord);

pub struct AutodiffEngine {
    /// Always present between steps; taken out during one, so that the optimiser owns the
    /// only handle to each parameter and can update it in place.
    model: Option<Vae>,
    optimizer: ModuleOptimizer,
    /// FactorVAE's discriminator, trained beside the VAE.
    critic: Option<Critic>,
    device: Device,
    name: &'static str,
    /// Each step's sums, still on the device: (bound, recon, KL[, TC[, discriminator]]).
    pending: Vec<Tensor<1>>,
}

/// FactorVAE's discriminator with its own Adam (β₁ 0.5, β₂ 0.9, as Kim & Mnih).
struct Critic {
    /// Taken out during a step, as the model is.
    net: Option<Discriminator>,
    optimizer: ModuleOptimizer,
    lr: f64,
}

impl Critic {
    fn new(
        config: &RunConfig,
        device: &Device,
        init_rng: &mut StdRng,
        resume: Option<Records>,
    ) -> anyhow::Result<Self> {
        let o = &config.objective;
        let mut net = Discriminator::new(
            config.model.latent_dim,
            &o.discriminator_hidden,
            init_rng,
            device,
        );
        let mut optimizer = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.9)
            .with_epsilon(1e-8)
            .init();
        if let Some((record, saved)) = resume {
            net = net.try_load_record(record).map_err(|e| {
                anyhow::anyhow!("the checkpoint's discriminator does not fit this run: {e}")
            })?;
            optimizer = optimizer.load_record(saved);
        }
        Ok(Critic {
            net: Some(net),
            optimizer,
            lr: o.discriminator_lr,
        })
    }
}

impl AutodiffEngine {
    pub fn new(
        config: &RunConfig,
        input: crate::model::Input,
        device: &Device,
        init_rng: &mut StdRng,
        resume: Option<(Records, Option<Records>)>,
    ) -> anyhow::Result<Self> {
        let name = crate::backend::device_name(device);
        let device = device.clone().autodiff();
        let mut model = Vae::try_new(&config.model, input, init_rng, &device)?;
        let mut optimizer = optimizer(&config.train);
        let (resume, critic_resume) = match resume {
            Some((model, critic)) => (Some(model), critic),
            None => (None, None),
        };
        // Drawn after the VAE's weights, from the same seeded stream.
        let critic = (config.objective.kind == ObjectiveKind::FactorVae)
            .then(|| Critic::new(config, &device, init_rng, critic_resume))
            .transpose()?;
        if let Some((record, saved)) = resume {
            model = model.try_load_record(record).map_err(|e| {
                anyhow::anyhow!("the checkpoint's model does not fit this run: {e}")
            })?;
            optimizer = optimizer.load_record(saved);
        }
        Ok(Self {
            model: Some(model),
            optimizer,
            critic,
            name,
            device,
            pending: Vec::new(),
        })
    }
}

impl AutodiffEngine {
    fn trained(&self) -> &Vae {
        self.model
            .as_ref()
            .expect("the model is back after every step")
    }
}

impl Engine for AutodiffEngine {
    fn name(&self) -> &'static str {
        self.name
    }

    fn step(
        &mut self,
        batch: &Batch<'_>,
        config: &ObjectiveConfig,
        schedule: &objective::Schedule,
        lr: f64,
        rng: &mut StdRng,
    ) {
        let model = self
            .model
            .take()
            .expect("the model is back after every step");
        let x = batch.on(&self.device, rng);
        if let Some(critic) = self.critic.as_mut() {
            let (sums, model) = factor_vae_step(
                model,
                &mut self.optimizer,
                critic,
                x,
                config,
                schedule,
                lr,
                rng,
            );
            self.model = Some(model);
            self.pending.push(sums);
            return;
        }
        let terms = objective::evaluate(&model, x, config, schedule, rng);
        let loss = terms.loss();
        let mut parts = vec![
            terms.bound.clone().sum().detach(),
            terms.recon.sum().detach(),
            terms.kl.sum().detach(),
        ];
        parts.extend(terms.tc.map(|tc| tc.sum().detach()));
        self.pending.push(Tensor::cat(parts, 0));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(lr, model, grads));
    }

    fn take_sums(&mut self) -> Vec<super::StepSums> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let width = self.pending[0].dims()[0];
        let steps = std::mem::take(&mut self.pending);
        let values = host(Tensor::cat(steps, 0));
        values
            .chunks(width)
            .map(|s| super::StepSums {
                bound: s[0] as f64,
                recon: s[1] as f64,
                kl: s[2] as f64,
                tc: s.get(3).map(|&v| v as f64),
                discriminator: s.get(4).map(|&v| v as f64),
            })
            .collect()
    }

    fn model(&self) -> Vae {
        self.trained().valid()
    }

    fn checkpoint_files(&self) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
        let mut files = vec![
            (
                MODEL_FILE,
                self.trained().clone().into_record().into_bytes()?.to_vec(),
            ),
            (OPTIMIZER_FILE, self.optimizer.into_bytes()?.to_vec()),
        ];
        if let Some(critic) = &self.critic {
            let net = critic
                .net
                .as_ref()
                .expect("the discriminator is back after every step");
            files.push((
                CRITIC_FILE,
                net.clone().into_record().into_bytes()?.to_vec(),
            ));
            files.push((
                CRITIC_OPTIMIZER_FILE,
                critic.optimizer.into_bytes()?.to_vec(),
            ));
        }
        Ok(files)
    }
}

/// One FactorVAE step: the VAE's update on its bound less γ·TĈ, then the discriminator's
/// on the same minibatch's codes (detached) against their dimension-wise permutation. Its
/// sums stay on the device: (bound, recon, KL, TC, discriminator loss × examples).
#[allow(clippy::too_many_arguments)]
fn factor_vae_step(
    model: Vae,
    optimizer: &mut ModuleOptimizer,
    critic: &mut Critic,
    x: Tensor<2>,
    config: &ObjectiveConfig,
    schedule: &objective::Schedule,
    lr: f64,
    rng: &mut StdRng,
) -> (Tensor<1>, Vae) {
    let net = critic
        .net
        .take()
        .expect("the discriminator is back after every step");
    let n = x.dims()[0];
    let (terms, z) = factor_vae::vae_terms(&model, &net, x, config, schedule, rng);
    let loss = terms.loss();
    let tc = terms.tc.clone().expect("FactorVAE reports its TC estimate");
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optimizer.step(lr, model, grads);

    let z = z.detach();
    let permuted = factor_vae::permute_dims(z.clone(), rng);
    let d_loss = factor_vae::discriminator_loss(net.forward(z), net.forward(permuted));
    let stats = Tensor::cat(
        vec![
            terms.bound.sum().detach(),
            terms.recon.sum().detach(),
            terms.kl.sum().detach(),
            tc.sum().detach(),
            d_loss.clone().detach().mul_scalar(n as f64),
        ],
        0,
    );
    let d_grads = GradientsParams::from_grads(d_loss.backward(), &net);
    critic.net = Some(critic.optimizer.step(critic.lr, net, d_grads));
    (stats, model)
}

fn optimizer(t: &TrainConfig) -> ModuleOptimizer {
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(t.adam_beta1 as f32)
            .with_beta_2(t.adam_beta2 as f32)
            .with_epsilon(t.adam_epsilon as f32)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adagrad => AdaGradConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new().with_weight_decay(decay).init(),
    }
}
