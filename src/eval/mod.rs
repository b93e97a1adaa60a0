//! Evaluation, always at β = 1: the ELBO and its terms, log p(x) by importance sampling,
//! and active units, each per example so that every mean carries its standard error.
//!
//! Examples are evaluated in fixed blocks with their own noise streams ([`blocks`]), spread
//! over the run's threads: the numbers depend on the model, the data, the seed and the
//! engine, not on the thread count, and a stopped estimate continues block by block to the
//! same numbers as one that ran through. Runs the fused engine trains are evaluated by its
//! forward pass (on its parameters in place during training); the others by burn.

pub mod blocks;
pub mod scorer;
pub mod stats;

use crate::data::Matrix;
use crate::data::device::host;
use crate::data::device::to_tensor;
use crate::engine::Engine;
use crate::engine::fused::layout::Layout;
use crate::engine::fused::products::Threads;
use crate::model::Vae;
use crate::spec::{KlMode, ObjectiveKind, PriorKind, RunConfig};
use blocks::Purpose;
use scorer::{BurnScorer, FusedScorer, Scorer};
pub use stats::{Estimate, LogWeights};

/// The model being evaluated, and where.
pub enum Model<'a> {
    /// The fused engine's flat parameters, evaluated on `threads`.
    Fused {
        layout: &'a Layout,
        params: &'a [f32],
        threads: &'a Threads,
    },
    /// A burn model on its device, one block at a time.
    Burn(&'a Vae),
}

/// A burn model flattened for the fused engine's forward pass, with the threads to run on.
pub struct Flat {
    layout: Layout,
    params: Vec<f32>,
    threads: Threads,
}

impl Flat {
    fn model(&self) -> Model<'_> {
        Model::Fused {
            layout: &self.layout,
            params: &self.params,
            threads: &self.threads,
        }
    }
}

/// `f` on `vae` as the run's engine evaluates it: flattened onto the fused engine's forward
/// pass on `threads` threads where that engine trains `config`, else burn's modules. A
/// saved model evaluated this way gives the recorded numbers bit for bit.
pub fn with_model<T>(
    vae: &Vae,
    config: &RunConfig,
    threads: usize,
    f: impl FnOnce(&Model<'_>) -> T,
) -> anyhow::Result<T> {
    if crate::engine::uses_fused(config) {
        let (layout, params) = crate::engine::fused::flatten(config, vae);
        let flat = Flat {
            layout,
            params,
            threads: Threads::new(threads)?,
        };
        Ok(f(&flat.model()))
    } else {
        Ok(f(&Model::Burn(vae)))
    }
}

/// `f` on a training engine's model as it stands: the fused engine's parameters in place
/// (nothing copied), else the autodiff engine's model on the plain device.
pub fn with_engine<T>(engine: &dyn Engine, f: impl FnOnce(&Model<'_>) -> T) -> T {
    match engine.fused_parts() {
        Some((layout, params, threads)) => f(&Model::Fused {
            layout,
            params,
            threads,
        }),
        None => f(&Model::Burn(&engine.model())),
    }
}

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

fn one_thread() -> Threads {
    Threads::new(1).expect("one thread needs no pool")
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
        0,
        |work: &mut S::Work, b| {
            let r = blocks::block_range(b, data.rows);
            let mut eps = Vec::new();
            let mut rng = blocks::stream(seed, Purpose::Elbo, b);
            blocks::draw(&mut rng, samples * r.len() * zd, &mut eps);
            let mut out = Vec::new();
            let x = &data.values[r.start * d..r.end * d];
            scorer.elbo_terms(work, x, &eps, analytic, &mut out);
            Some(out)
        },
        |_, out| {
            for (recon, kl) in out {
                terms.recon.push(recon);
                terms.kl.push(kl);
            }
            true
        },
    );
    terms
}

/// An importance-sampling estimate of log p(x) per example, with its diagnostics. Holds
/// whole blocks of examples, from the first: a partial one is an estimate's saved progress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportanceExamples {
    /// log (1/K) Σ_k p(x, z_k) / q(z_k|x).
    pub log_px: Vec<f64>,
    /// Effective sample size of the K normalised weights.
    pub ess: Vec<f64>,
    /// Standard deviation of the K log-weights.
    pub log_w_sd: Vec<f64>,
}

impl ImportanceExamples {
    pub fn len(&self) -> usize {
        self.log_px.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_px.is_empty()
    }

    fn push(&mut self, w: &LogWeights) {
        self.log_px.push(w.log_mean());
        self.ess.push(w.ess());
        self.log_w_sd.push(w.sd());
    }

    pub fn summary(&self) -> LogPxSummary {
        let n = self.ess.len().max(1) as f64;
        LogPxSummary {
            log_px: Estimate::of(&self.log_px),
            ess_mean: self.ess.iter().sum::<f64>() / n,
            ess_min: self.ess.iter().copied().fold(f64::INFINITY, f64::min),
            log_w_sd_mean: self.log_w_sd.iter().sum::<f64>() / n,
            single_weight_fraction: self.ess.iter().filter(|&&e| e < SINGLE_WEIGHT_ESS).count()
                as f64
                / n,
        }
    }
}

/// An example whose weights have an ESS below this rests on about one of its K samples.
pub const SINGLE_WEIGHT_ESS: f64 = 2.0;

/// The estimate over a set of examples, and how far its importance weights can be trusted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogPxSummary {
    pub log_px: Estimate,
    pub ess_mean: f64,
    pub ess_min: f64,
    pub log_w_sd_mean: f64,
    /// Fraction of examples with ESS < [`SINGLE_WEIGHT_ESS`].
    pub single_weight_fraction: f64,
}

impl LogPxSummary {
    /// A warning for the run's log when the estimate rests on too few effective samples:
    /// more than a tenth of the examples with about one weight carrying all the mass.
    pub fn warning(&self, k: usize) -> Option<String> {
        (self.single_weight_fraction > 0.1).then(|| {
            format!(
                "log p(x): {:.0}% of examples have an effective sample size below {SINGLE_WEIGHT_ESS} of K = {k} (mean {:.1}, min {:.2}); the estimate is dominated by single samples: raise eval.importance_samples",
                100.0 * self.single_weight_fraction,
                self.ess_mean,
                self.ess_min
            )
        })
    }
}

/// How an importance-sampling estimate runs.
#[derive(Clone, Copy, Debug)]
pub struct LogPxJob {
    /// Samples per example.
    pub k: usize,
    /// At most this many decoder rows at once (bounds memory).
    pub max_rows: usize,
    pub seed: u64,
    /// Stop part-way on SIGINT/SIGTERM (what has been done stays in the partial estimate).
    pub stoppable: bool,
}

/// log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), for every row of `data`,
/// continuing `partial` (whole blocks already done). Samples are drawn in chunks and
/// combined with a running log-sum-exp in f64, so K = 5000 needs no more memory than
/// K = 50. `on_progress` sees the estimate after each group of blocks (to show or save it).
/// Returns whether every example is done (false: stopped by a signal).
pub fn log_px(
    model: &Model<'_>,
    data: &Matrix,
    job: LogPxJob,
    partial: &mut ImportanceExamples,
    on_progress: &mut dyn FnMut(&ImportanceExamples),
) -> bool {
    match model {
        Model::Fused {
            layout,
            params,
            threads,
        } => match FusedScorer::new(layout, params) {
            Ok(s) => log_px_blocks(&s, threads, data, job, partial, on_progress),
            Err(e) => panic!("cannot start evaluation threads: {e:#}"),
        },
        Model::Burn(vae) => log_px_blocks(
            &BurnScorer::new(vae),
            &one_thread(),
            data,
            job,
            partial,
            on_progress,
        ),
    }
}

/// [`log_px`] from the start, run through (no stopping).
pub fn log_px_examples(
    model: &Model<'_>,
    data: &Matrix,
    k: usize,
    max_rows: usize,
    seed: u64,
) -> ImportanceExamples {
    let mut out = ImportanceExamples::default();
    let job = LogPxJob {
        k,
        max_rows,
        seed,
        stoppable: false,
    };
    log_px(model, data, job, &mut out, &mut |_| {});
    out
}

/// The mean IWAE bound with k samples per example (k = 1 is a one-sample ELBO).
pub fn iwae_bound(model: &Model<'_>, data: &Matrix, k: usize, seed: u64) -> f64 {
    let all = log_px_examples(model, data, k, 65_536, seed);
    all.log_px.iter().sum::<f64>() / all.len().max(1) as f64
}

fn log_px_blocks<S: Scorer>(
    scorer: &S,
    threads: &Threads,
    data: &Matrix,
    job: LogPxJob,
    partial: &mut ImportanceExamples,
    on_progress: &mut dyn FnMut(&ImportanceExamples),
) -> bool {
    let (d, zd) = (data.cols, scorer.latent_dim());
    let k = job.k.max(1);
    assert!(
        partial.len() == data.rows || partial.len().is_multiple_of(blocks::BLOCK_EXAMPLES),
        "saved progress holds whole blocks"
    );
    let first = partial.len().div_ceil(blocks::BLOCK_EXAMPLES);
    let max_rows = scorer.chunk_rows(job.max_rows);
    blocks::run(
        threads,
        data.rows,
        first,
        |work: &mut S::Work, b| {
            let r = blocks::block_range(b, data.rows);
            let n = r.len();
            let x = &data.values[r.start * d..r.end * d];
            let mut rng = blocks::stream(job.seed, Purpose::LogPx, b);
            let per_chunk = (max_rows / n).clamp(1, k);
            let (mut eps, mut log_w) = (Vec::new(), Vec::new());
            let mut weights = vec![LogWeights::default(); n];
            let mut done = 0;
            while done < k {
                if job.stoppable && crate::interrupt::requested() {
                    return None;
                }
                let s = per_chunk.min(k - done);
                blocks::draw(&mut rng, s * n * zd, &mut eps);
                scorer.log_weights(work, x, &eps, &mut log_w);
                // Row s·n + i: each example takes its samples in order.
                for (row, &lw) in log_w.iter().enumerate() {
                    weights[row % n].push(lw);
                }
                done += s;
            }
            Some(weights)
        },
        |_, weights| {
            for w in &weights {
                partial.push(w);
            }
            on_progress(partial);
            true
        },
    )
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

/// Count of columns of a row-major [N, Z] matrix whose (population) variance > threshold.
pub fn count_active(means: &[f32], latent: usize, threshold: f64) -> usize {
    if latent == 0 || means.is_empty() {
        return 0;
    }
    let n = (means.len() / latent) as f64;
    (0..latent)
        .filter(|&j| {
            let col = means.iter().skip(j).step_by(latent).map(|&v| v as f64);
            let mean = col.clone().sum::<f64>() / n;
            let var = col.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            var > threshold
        })
        .count()
}

fn model_device(model: &Vae) -> burn::tensor::Device {
    model.device()
}
