//! What takes the optimiser steps of a run: burn's autodiff on the run's device (every model,
//! every backend), or the fused CPU engine (the MLP models with a standard normal prior, on
//! CPU, fastest there). The training loop sees only [`Engine`].

pub mod autodiff;
pub mod fused;
pub mod support;

use burn::tensor::Device;
use rand::rngs::StdRng;

use crate::data::batch::Batch;
use crate::model::Vae;
use crate::spec::{BackendKind, ObjectiveConfig, RunConfig};

/// One step's sums over its minibatch's examples, in nats.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepSums {
    /// The objective as trained (β-weighted bound, or the family's objective).
    pub bound: f64,
    /// E[log p(x|z)].
    pub recon: f64,
    pub kl: f64,
    /// The total correlation estimate: β-TCVAE's minibatch-weighted one, FactorVAE's
    /// discriminator's.
    pub tc: Option<f64>,
    /// FactorVAE: the discriminator's loss (its mean times the minibatch's examples).
    pub discriminator: Option<f64>,
}

impl StepSums {
    /// (bound, recon, KL).
    pub fn as_array(&self) -> [f64; 3] {
        [self.bound, self.recon, self.kl]
    }

    pub fn finite(&self) -> bool {
        [
            self.bound,
            self.recon,
            self.kl,
            self.tc.unwrap_or(0.0),
            self.discriminator.unwrap_or(0.0),
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

pub trait Engine {
    /// One optimiser step on `batch` at `schedule` (β, capacity, data size). Its sums stay
    /// where they were computed until [`Engine::take_sums`].
    fn step(
        &mut self,
        batch: &Batch<'_>,
        objective: &ObjectiveConfig,
        schedule: &crate::objective::Schedule,
        lr: f64,
        rng: &mut StdRng,
    );
    /// The sums of the steps taken since the last call, oldest first: on a device, one read
    /// for all of them (a read waits for every step queued before it).
    fn take_sums(&mut self) -> Vec<StepSums>;
    /// Whether the sums are host values already, so that reading them after every step
    /// costs nothing (the fused engine); burn's routes read once per logging interval.
    fn sums_on_host(&self) -> bool {
        false
    }
    /// One step and its sums, read at once (tests and benchmarks that step by hand).
    fn step_and_read(
        &mut self,
        batch: &Batch<'_>,
        objective: &ObjectiveConfig,
        schedule: &crate::objective::Schedule,
        lr: f64,
        rng: &mut StdRng,
    ) -> StepSums {
        self.step(batch, objective, schedule, lr, rng);
        self.take_sums()
            .pop()
            .expect("a step leaves its sums until they are taken")
    }
    /// The model as it stands, on the plain device: for evaluation, images and saving.
    fn model(&self) -> Vae;
    /// The full state a checkpoint keeps, as (file name, bytes).
    fn checkpoint_files(&self) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>>;
    /// What computes the steps, as runs record it (`backend`): `fused`, or the burn backend
    /// autodiff runs on (`flex`, `ndarray`, `cuda`).
    fn name(&self) -> &'static str;
    /// The fused engine's flat model and threads, which evaluation reads in place; `None`
    /// for autodiff (evaluation then goes through [`Engine::model`]).
    fn fused_parts(&self) -> Option<(&fused::layout::Layout, &[f32], &fused::products::Threads)> {
        None
    }
}

/// An engine's checkpoint files held in memory: (file name, bytes).
pub type Files = Vec<(String, Vec<u8>)>;

/// An engine's state read back from a checkpoint folder.
pub enum Saved {
    Autodiff {
        model: burn::store::ModuleRecord,
        optimizer: burn::optim::OptimizerRecord,
        /// FactorVAE's discriminator and its optimiser, where the run has one.
        critic: Option<autodiff::Records>,
    },
    Fused(fused::Saved),
}

impl Saved {
    /// Parses what [`Engine::checkpoint_files`] gave (a checkpoint's files, read back);
    /// fails on anything unreadable (so that the caller can fall back to an older one).
    pub fn from_files(files: &Files) -> anyhow::Result<Self> {
        let find = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, b)| b);
        let read = |name: &str| {
            find(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{name}: not among the saved files"))
        };
        Self::parse(&read, &|name| find(name).is_some())
    }

    fn parse(
        read: &dyn Fn(&str) -> anyhow::Result<Vec<u8>>,
        exists: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<Self> {
        if exists(fused::CHECKPOINT_FILE) {
            let saved = fused::Saved::from_bytes(&read(fused::CHECKPOINT_FILE)?)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", fused::CHECKPOINT_FILE))?;
            return Ok(Saved::Fused(saved));
        }
        // A module's record and its optimiser's, from their two files.
        let records = |module: &str, optimizer: &str| -> anyhow::Result<autodiff::Records> {
            let m = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
                read(module)?,
            ))
            .map_err(|e| anyhow::anyhow!("{module}: {e}"))?;
            let o = burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
                read(optimizer)?,
            ))
            .map_err(|e| anyhow::anyhow!("{optimizer}: {e}"))?;
            Ok((m, o))
        };
        let (model, optimizer) = records(autodiff::MODEL_FILE, autodiff::OPTIMIZER_FILE)?;
        let critic = exists(autodiff::CRITIC_FILE)
            .then(|| records(autodiff::CRITIC_FILE, autodiff::CRITIC_OPTIMIZER_FILE))
            .transpose()?;
        Ok(Saved::Autodiff {
            model,
            optimizer,
            critic,
        })
    }
}

/// Bumped whenever an engine's maths changes (a step, a bound, an initialisation): part of
/// every run's identity and of every checkpoint, so that results and checkpoints of older
/// numerics are never mixed with new ones. Version 3: evaluation noise drawn per block of
/// examples (eval::blocks), the same on any thread count.
pub const NUMERICS_VERSION: u32 = 3;

/// What trains `config`: `Fused` (aevb's engine) where the spec asks for it explicitly or
/// says `cpu` and the engine covers the model (`support::fused`), else the burn backend
/// autodiff runs on (`cpu` without cover falls to flex, the faster of burn's CPU backends).
pub fn kind_for(config: &RunConfig) -> BackendKind {
    match config.runtime.backend {
        BackendKind::Cpu if support::fused(config).is_ok() => BackendKind::Fused,
        BackendKind::Cpu => crate::backend::DEFAULT_CPU,
        other => other,
    }
}

/// Why the fused engine cannot train `config`, if it cannot.
pub fn fused_unsupported(config: &RunConfig) -> Option<support::Unsupported> {
    support::fused(config).err()
}

/// Which engine trains `config`: fused or burn's autodiff.
pub fn uses_fused(config: &RunConfig) -> bool {
    kind_for(config) == BackendKind::Fused
}

/// The engine as a run's identity records it: its name and numerics version ("fused/2",
/// "flex/2"). Two runs of one config on different engines are different runs.
pub fn identity(config: &RunConfig) -> String {
    format!(
        "{}/{NUMERICS_VERSION}",
        crate::backend::name(kind_for(config))
    )
}

/// Threads that compute one run: `runtime.threads`, else the cores split evenly between the
/// `workers` runs trained at once. Only the fused engine uses more than one (burn's CPU
/// backends are built without their thread pools; a CUDA run is driven by one host thread).
/// Recorded with every run: with the engine and seed, what reproduces its numbers.
pub fn threads_per_run(config: &RunConfig, workers: usize) -> usize {
    match kind_for(config) {
        BackendKind::Fused => config
            .runtime
            .threads
            .unwrap_or_else(|| (crate::backend::cores() / workers.max(1)).max(1)),
        _ => 1,
    }
}

/// Whether a checkpoint's engine state can continue a run of `config`: written by the
/// engine that trains it now, with the same numerics (`identity`). The reason when not.
pub fn accepts(config: &RunConfig, saved: &Saved, saved_identity: &str) -> Result<(), String> {
    let wanted = identity(config);
    let kind_matches = matches!(
        (saved, uses_fused(config)),
        (Saved::Fused(_), true) | (Saved::Autodiff { .. }, false)
    );
    if saved_identity != wanted || !kind_matches {
        let written = if saved_identity.is_empty() {
            "an older aevb".to_string()
        } else {
            saved_identity.to_string()
        };
        return Err(format!(
            "written by {written}, but this run trains on {wanted}"
        ));
    }
    Ok(())
}

/// Starts the run's engine: initial weights from the run's seed (the same for both engines),
/// or the state of a checkpoint. `device` is the run's plain device; `threads` the threads a
/// fused run computes on.
pub fn start(
    config: &RunConfig,
    input: impl Into<crate::model::Input>,
    device: &Device,
    threads: usize,
    init_rng: &mut StdRng,
    resume: Option<Saved>,
) -> anyhow::Result<Box<dyn Engine>> {
    let input = input.into();
    if config.runtime.backend == BackendKind::Fused
        && let Err(why) = support::fused(config)
    {
        anyhow::bail!("the fused engine cannot train this run: {why}");
    }
    if uses_fused(config) {
        let init = Vae::try_new(&config.model, input, init_rng, device)?;
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
            Some(Saved::Autodiff {
                model,
                optimizer,
                critic,
            }) => Some(((model, optimizer), critic)),
            Some(Saved::Fused(_)) => {
                anyhow::bail!(
                    "the checkpoint was written by the fused engine, this run trains on autodiff"
                )
            }
        };
        Ok(Box::new(autodiff::AutodiffEngine::new(
            config, input, device, init_rng, resume,
        )?))
    }
}
