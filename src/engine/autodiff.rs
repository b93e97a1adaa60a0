//! burn's autodiff engine: the model on the run's autodiff device, `objective.rs` for the
//! loss, burn-optim for the update. Trains every model on every backend (CPU and CUDA).

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdaGradConfig, AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

use super::Engine;
use crate::data::Matrix;
use crate::model::Vae;
use crate::objective;
use crate::spec::{ObjectiveConfig, OptimizerKind, RunConfig, TrainConfig};

/// The checkpoint files: burn's burnpack records of the model (it keeps the parameter ids
/// the optimiser state is keyed by) and of the optimiser.
pub const MODEL_FILE: &str = "model.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";

pub struct AutodiffEngine {
    /// Always present between steps; taken out during one, so that the optimiser owns the
    /// only handle to each parameter and can update it in place.
    model: Option<Vae>,
    optimizer: ModuleOptimizer,
    device: Device,
    name: &'static str,
}

impl AutodiffEngine {
    pub fn new(
        config: &RunConfig,
        input: crate::model::Input,
        device: &Device,
        init_rng: &mut StdRng,
        resume: Option<(burn::store::ModuleRecord, burn::optim::OptimizerRecord)>,
    ) -> anyhow::Result<Self> {
        let name = crate::backend::device_name(device);
        let device = device.clone().autodiff();
        let mut model = Vae::try_new(&config.model, input, init_rng, &device)?;
        let mut optimizer = optimizer(&config.train);
        if let Some((record, saved)) = resume {
            model = model.try_load_record(record).map_err(|e| {
                anyhow::anyhow!("the checkpoint's model does not fit this run: {e}")
            })?;
            optimizer = optimizer.load_record(saved);
        }
        Ok(Self {
            model: Some(model),
            optimizer,
            name,
            device,
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
        x: &Matrix,
        config: &ObjectiveConfig,
        schedule: &objective::Schedule,
        lr: f64,
        rng: &mut StdRng,
    ) -> super::StepSums {
        let model = self
            .model
            .take()
            .expect("the model is back after every step");
        let x = crate::train::to_tensor(x, &self.device);
        let terms = objective::evaluate(&model, x, config, schedule, rng);
        let loss = terms.loss();
        let mut parts = vec![
            terms.bound.clone().sum().detach(),
            terms.recon.sum().detach(),
            terms.kl.sum().detach(),
        ];
        parts.extend(terms.tc.map(|tc| tc.sum().detach()));
        // One read back from the device for all of them.
        let stats = Tensor::cat(parts, 0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(lr, model, grads));
        let stats = crate::model::prior::host(stats);
        super::StepSums {
            bound: stats[0] as f64,
            recon: stats[1] as f64,
            kl: stats[2] as f64,
            tc: stats.get(3).map(|&v| v as f64),
        }
    }

    fn model(&self) -> Vae {
        self.trained().valid()
    }

    fn checkpoint_files(&self) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![
            (
                MODEL_FILE,
                self.trained().clone().into_record().into_bytes()?.to_vec(),
            ),
            (OPTIMIZER_FILE, self.optimizer.into_bytes()?.to_vec()),
        ])
    }
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
