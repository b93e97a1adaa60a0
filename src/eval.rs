//! Evaluation, always at β = 1: the ELBO and its terms, log p(x) by importance sampling,
//! and active units. Everything is batched so memory stays bounded whatever K is.

use burn::tensor::Tensor;
use rand::rngs::StdRng;

use crate::data::Matrix;
use crate::model::prior::host;
use crate::model::{LatentPrior, Vae};
use crate::objective;
use crate::spec::{KlMode, RunConfig};
use crate::train::to_tensor;

/// Mean per-example values in nats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElboTerms {
    pub elbo: f64,
    pub recon: f64,
    pub kl: f64,
}

/// Examples per evaluation batch for bounds computed with one sample per example.
const EVAL_BATCH: usize = 1000;

/// The ELBO (β = 1) with the run's L and KL mode (analytic wherever the prior allows,
/// which is the lower-variance choice for IWAE-trained models too).
pub fn elbo(model: &Vae, data: &Matrix, config: &RunConfig, rng: &mut StdRng) -> ElboTerms {
    let device = model_device(model);
    let has_closed_form = config.model.prior != crate::spec::PriorKind::Mixture;
    let kl_mode = match config.objective.kind {
        crate::spec::ObjectiveKind::Elbo => config.objective.kl,
        crate::spec::ObjectiveKind::Iwae if has_closed_form => KlMode::Analytic,
        crate::spec::ObjectiveKind::Iwae => KlMode::MonteCarlo,
    };
    let samples = config.objective.mc_samples;
    let mut sums = [0f64; 2];
    for start in (0..data.rows).step_by(EVAL_BATCH) {
        let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(data.rows)).collect();
        let x = to_tensor(&data.gather(&rows), &device);
        let terms = objective::elbo(model, x, samples, kl_mode, 1.0, rng);
        sums[0] += sum(terms.recon);
        sums[1] += sum(terms.kl);
    }
    let n = data.rows as f64;
    ElboTerms {
        elbo: (sums[0] - sums[1]) / n,
        recon: sums[0] / n,
        kl: sums[1] / n,
    }
}

/// The mean IWAE bound with k samples per example (k = 1 is the ELBO).
pub fn iwae_bound(model: &Vae, data: &Matrix, k: usize, rng: &mut StdRng) -> f64 {
    per_example_log_px(model, data, k, 65_536, rng)
        .iter()
        .sum::<f64>()
        / data.rows as f64
}

/// log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), per example.
/// Samples are drawn in chunks of at most `max_rows` decoder rows and combined with a
/// running log-sum-exp in f64, so K = 5000 needs no more memory than K = 50.
pub fn per_example_log_px(
    model: &Vae,
    data: &Matrix,
    k: usize,
    max_rows: usize,
    rng: &mut StdRng,
) -> Vec<f64> {
    per_example_log_px_observed(model, data, k, max_rows, rng, &mut |_| {})
}

/// [`per_example_log_px`], calling `on_examples` with the number of examples done after
/// each batch of them (the estimate with K = 5000 takes minutes: progress shows it).
pub fn per_example_log_px_observed(
    model: &Vae,
    data: &Matrix,
    k: usize,
    max_rows: usize,
    rng: &mut StdRng,
    on_examples: &mut dyn FnMut(usize),
) -> Vec<f64> {
    let device = model_device(model);
    let examples_per_batch = (max_rows / k.min(max_rows)).clamp(1, data.rows.max(1));
    let mut out = Vec::with_capacity(data.rows);
    for start in (0..data.rows).step_by(examples_per_batch) {
        let rows: Vec<usize> = (start..(start + examples_per_batch).min(data.rows)).collect();
        let n = rows.len();
        let x = to_tensor(&data.gather(&rows), &device);
        let q = model.encoder.forward(x.clone());
        let samples_per_chunk = (max_rows / n).clamp(1, k);
        // Running max and scaled sum of weights per example.
        let mut max = vec![f64::NEG_INFINITY; n];
        let mut acc = vec![0f64; n];
        let mut done = 0;
        while done < k {
            let s = samples_per_chunk.min(k - done);
            let objective::Draws { eps, z, log_px_z } =
                objective::draw(model, &q, x.clone(), s, rng);
            let log_w = log_px_z + model.prior.log_prob(z) - q.log_prob_at(eps);
            let log_w = host(log_w); // [s · n], s blocks of n
            for (idx, lw) in log_w.iter().enumerate() {
                let i = idx % n;
                let lw = *lw as f64;
                if lw > max[i] {
                    acc[i] = acc[i] * (max[i] - lw).exp() + 1.0;
                    max[i] = lw;
                } else {
                    acc[i] += (lw - max[i]).exp();
                }
            }
            done += s;
        }
        out.extend((0..n).map(|i| max[i] + acc[i].ln() - (k as f64).ln()));
        on_examples(out.len());
    }
    out
}

/// The mean of [`per_example_log_px_observed`] over `data` (nats per example), and the
/// number of examples it averages: what a run's row records as `test_log_px`.
pub fn mean_log_px(
    model: &Vae,
    data: &Matrix,
    k: usize,
    max_rows: usize,
    rng: &mut StdRng,
    on_examples: &mut dyn FnMut(usize),
) -> (f64, usize) {
    let per_example = per_example_log_px_observed(model, data, k, max_rows, rng, on_examples);
    let n = per_example.len();
    (per_example.iter().sum::<f64>() / n.max(1) as f64, n)
}

/// Latent dimensions whose posterior mean varies across `data` with variance above
/// `threshold` (Burda et al. 2015).
pub fn active_units(model: &Vae, data: &Matrix, threshold: f64) -> usize {
    let (means, _) = posterior_params(model, data);
    let latent = means.len().checked_div(data.rows).unwrap_or(0);
    count_active(&means, latent, threshold)
}

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

fn sum(t: Tensor<1>) -> f64 {
    host(t).iter().map(|&v| v as f64).sum()
}

fn model_device(model: &Vae) -> burn::tensor::Device {
    model.decoder.out.weight.val().device()
}
