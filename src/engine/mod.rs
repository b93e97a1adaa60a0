//! What takes the optimiser steps of a run: burn's autodiff on the run's device (every model,
//! every backend), or the fused CPU engine (the MLP models with a standard normal prior, on
//! CPU, fastest there). The training loop sees only [`Engine`].

pub mod autodiff;
pub mod fused;

use std::path::Path;

use burn::tensor::Device;
use rand::rngs::StdRng;

use crate::data::Matrix;
use crate::model::Vae;
use crate::spec::{ObjectiveConfig, RunConfig};

pub trait Engine {
    /// One optimiser step on the minibatch `x`; returns its sums of the β-weighted bound,
    /// E[log p(x|z)] and the KL (nats, summed over the minibatch's examples).
    fn step(
        &mut self,
        x: &Matrix,
        objective: &ObjectiveConfig,
        beta: f64,
        lr: f64,
        rng: &mut StdRng,
    ) -> [f64; 3];
    /// The model as it stands, on the plain device: for evaluation, images and saving.
    fn model(&self) -> Vae;
    /// The full state a checkpoint keeps, as (file name, bytes).
    fn checkpoint_files(&self) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>>;
    /// What computes the steps, as runs record it (`backend`): `fused`, or the burn backend
    /// autodiff runs on (`flex`, `ndarray`, `cuda`).
    fn name(&self) -> &'static str;
}

/// An engine's state read back from a checkpoint folder.
pub enum Saved {
    Autodiff {
        model: burn::store::ModuleRecord,
        optimizer: burn::optim::OptimizerRecord,
    },
    Fused(fused::Saved),
}

impl Saved {
    /// Reads what [`Engine::checkpoint_files`] wrote into `dir`; fails on anything unreadable
    /// (so that the caller can fall back to an older checkpoint).
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(name).display()))
        };
        if dir.join(fused::CHECKPOINT_FILE).exists() {
            let saved = fused::Saved::from_bytes(&read(fused::CHECKPOINT_FILE)?)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", fused::CHECKPOINT_FILE))?;
            return Ok(Saved::Fused(saved));
        }
        let model = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            read(autodiff::MODEL_FILE)?,
        ))
        .map_err(|e| anyhow::anyhow!("{}: {e}", autodiff::MODEL_FILE))?;
        let optimizer = burn::optim::OptimizerRecord::from_bytes(
            burn::tensor::Bytes::from_bytes_vec(read(autodiff::OPTIMIZER_FILE)?),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", autodiff::OPTIMIZER_FILE))?;
        Ok(Saved::Autodiff { model, optimizer })
    }
}

/// Which engine trains `config`: fused where the backend asks for it (explicitly, or `cpu`
/// on a model it covers), autodiff otherwise.
pub fn uses_fused(config: &RunConfig) -> bool {
    crate::backend::resolve_for(config) == crate::spec::BackendKind::Fused
}

/// Starts the run's engine: initial weights from the run's seed (the same for both engines),
/// or the state of a checkpoint. `device` is the run's plain device; `threads` the threads a
/// fused run computes on.
pub fn start(
    config: &RunConfig,
    data_dim: usize,
    device: &Device,
    threads: usize,
    init_rng: &mut StdRng,
    resume: Option<Saved>,
) -> anyhow::Result<Box<dyn Engine>> {
    if uses_fused(config) {
        let init = Vae::new(&config.model, data_dim, init_rng, device);
        let resume = match resume {
            None => None,
            Some(Saved::Fused(saved)) => Some(saved),
            Some(Saved::Autodiff { .. }) => {
                anyhow::bail!(
                    "the checkpoint was written by the autodiff engine, this run trains on the fused one"
                )
            }
        };
        Ok(Box::new(fused::FusedEngine::new(
            config, init, device, threads, resume,
        )?))
    } else {
        let resume = match resume {
            None => None,
            Some(Saved::Autodiff { model, optimizer }) => Some((model, optimizer)),
            Some(Saved::Fused(_)) => {
                anyhow::bail!(
                    "the checkpoint was written by the fused engine, this run trains on autodiff"
                )
            }
        };
        Ok(Box::new(autodiff::AutodiffEngine::new(
            config, data_dim, device, init_rng, resume,
        )?))
    }
}
