//! Evaluation, always at β = 1: the ELBO and its terms, log p(x) by importance sampling,
//! and active units, each per example so that every mean carries its standard error.
//!
//! Examples are evaluated in fixed blocks with their own noise streams ([`blocks`]), spread
//! over the run's threads: the numbers depend on the model, the data, the seed and the
//! engine, not on the thread count, and a stopped estimate continues block by block to the
//! same numbers as one that ran through. Runs the fused engine trains are evaluated by its
//! forward pass (on its parameters in place during training); the others by burn.

pub mod blocks;
pub mod importance;
mod model;
pub mod scorer;
pub mod stats;

use crate::data::Matrix;
use crate::data::device::host;
use crate::data::device::to_tensor;
use crate::engine::fused::products::Threads;
use crate::model::Vae;
use crate::spec::{KlMode, ObjectiveKind, PriorKind, RunConfig};
use blocks::Purpose;
pub use importance::{
    ImportanceExamples, InFlight, LogPxJob, LogPxProgress, LogPxSummary, SINGLE_WEIGHT_ESS,
    iwae_bound, log_px, log_px_examples,
};
use model::one_thread;
pub use model::{Flat, Model, with_engine, with_model};
use scorer::{BurnScorer, FusedScorer, Scorer};
pub use stats::{Estimate, LogWeights};

/// Per-example ELBO terms in nats: E_q[log p(x|z)] and the KL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExampleTerms {
    pub recon: Vec<f64>,
    pub kl: Vec<f64>,
}

impl ExampleTerms {
    pub fn elbo(&self) -> Vec<f64> {
        self.recon
            .iter()
            .zip(&self.kl)
            .map(|(r, k)| r - k)
            .collect()
    }

    pub fn summary(&self) -> ElboTerms {
        ElboTerms {
            elbo: Estimate::of(&self.elbo()),
            recon: Estimate::of(&self.recon),
            kl: Estimate::of(&self.kl),
        }
    }
}

/// Means over examples with their standard errors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ElboTerms {
    pub elbo: Estimate,
    pub recon: Estimate,
    pub kl: Estimate,
}

/// Whether the evaluation ELBO of `config` takes the KL in closed form: the run's own KL
/// mode for ELBO training; for IWAE-trained models analytic wherever the prior has one
/// (the lower-variance choice); a mixture prior has none.
fn analytic_kl(config: &RunConfig) -> bool {
    let closed_form = config.model.prior != PriorKind::Mixture;
    match config.objective.kind {
        ObjectiveKind::Elbo
        | ObjectiveKind::DipVaeI
        | ObjectiveKind::DipVaeIi
        | ObjectiveKind::BetaTcvae
        | ObjectiveKind::Annealed
        | ObjectiveKind::FactorVae => config.objective.kl == KlMode::Analytic && closed_form,
        ObjectiveKind::Iwae => closed_form,
    }
}

/// The ELBO terms (β = 1, the run's L) of every row of `data`, with the run's seed.
pub fn elbo_examples(model: &Model<'_>, data: &Matrix, config: &RunConfig) -> ExampleTerms {
    match model {
        Model::Fused {
            layout,
            params,
            threads,
        } => match FusedScorer::new(layout, params) {
            Ok(s) => elbo_blocks(&s, threads, data, config),
            Err(e) => panic!("cannot start evaluation threads: {e:#}"),
        },
        Model::Burn(vae) => elbo_blocks(&BurnScorer::new(vae), &one_thread(), data, config),
    }
}

/// [`elbo_examples`], summarised.
pub fn elbo(model: &Model<'_>, data: &Matrix, config: &RunConfig) -> ElboTerms {
    elbo_examples(model, data, config).summary()
}

fn elbo_blocks<S: Scorer>(
    scorer: &S,
    threads: &Threads,
    data: &Matrix,
    config: &RunConfig,
) -> ExampleTerms {
    let (d, zd) = (data.cols, scorer.latent_dim());
    let samples = config.objective.mc_samples.max(1);
    let seed = config.train.seed;
    let analytic = analytic_kl(config);
    let mut terms = ExampleTerms::default();
    blocks::run(
        threads,
        data.rows,
        |work: &mut S::Work, b| {
            let r = blocks::block_range(b, data.rows);
            let mut eps = Vec::new();
            let mut rng = blocks::stream(seed, Purpose::Elbo, b);
            blocks::draw(&mut rng, samples * r.len() * zd, &mut eps);
            let mut out = Vec::new();
            let x = &data.values[r.start * d..r.end * d];
            scorer.elbo_terms(work, x, &eps, analytic, &mut out);
            out
        },
        |out| {
            for (recon, kl) in out {
                terms.recon.push(recon);
                terms.kl.push(kl);
            }
        },
    );
    terms
}

/// Examples per batch where the encoder alone runs (posterior parameters, active units).
const EVAL_BATCH: usize = 1000;

/// Posterior means and log-variances of every row of `data`, row-major [N, Z] each.
pub fn posterior_params(model: &Vae, data: &Matrix) -> (Vec<f32>, Vec<f32>) {
    let device = model_device(model);
    let (mut means, mut logvars) = (Vec::new(), Vec::new());
    for start in (0..data.rows).step_by(EVAL_BATCH) {
        let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(data.rows)).collect();
        let q = model
            .encoder
            .forward(to_tensor(&data.gather(&rows), &device));
        means.extend(host(q.mean));
        logvars.extend(host(q.logvar));
    }
    (means, logvars)
}

/// Columns of a row-major [N, Z] matrix whose (population) variance > threshold: the
/// active units.
pub fn active_dims(means: &[f32], latent: usize, threshold: f64) -> Vec<usize> {
    if latent == 0 || means.is_empty() {
        return Vec::new();
    }
    let n = (means.len() / latent) as f64;
    (0..latent)
        .filter(|&j| {
            let col = means.iter().skip(j).step_by(latent).map(|&v| v as f64);
            let mean = col.clone().sum::<f64>() / n;
            let var = col.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            var > threshold
        })
        .collect()
}

/// How many [`active_dims`] there are.
pub fn count_active(means: &[f32], latent: usize, threshold: f64) -> usize {
    active_dims(means, latent, threshold).len()
}

fn model_device(model: &Vae) -> burn::tensor::Device {
    model.device()
}
