//! The forward pass on its own: the encoder, S reparameterised samples per example, the
//! decoder's log-likelihood and (where asked) the log-ratio log q(z|x) − log p(z) of each
//! sample. Training (`network::step`) goes back through what it leaves in the [`Workspace`];
//! evaluation reads the per-sample values and goes no further.

use super::conv::{self, StackWork};
use super::kernels;
use super::layout::{Dense, Layout};
use super::prior::{PriorPiece, PriorWork};
use super::products::{Threads, View};
use crate::spec::{Activation, LikelihoodKind};

/// Buffers reused from step to step (no allocation once the first step has sized them).
#[derive(Default)]
pub struct Workspace {
    pub(super) enc_pre: Vec<Vec<f32>>,
    pub(super) enc_post: Vec<Vec<f32>>,
    pub(super) mean: Vec<f32>,
    pub(super) logvar_raw: Vec<f32>,
    pub(super) logvar: Vec<f32>,
    pub(super) sigma: Vec<f32>,
    pub(super) z: Vec<f32>,
    pub(super) dec_pre: Vec<Vec<f32>>,
    pub(super) dec_post: Vec<Vec<f32>>,
    pub(super) out: Vec<f32>,
    /// The variance head's raw output and its clamped log-variances (then their gradient).
    pub(super) head: Vec<f32>,
    pub(super) head_logvar: Vec<f32>,
    pub(super) scratch: Vec<f32>,
    /// One row of scratch per piece of the Bernoulli likelihood.
    pub(super) rows: Vec<f32>,
    pub(super) output_logvar: Vec<f32>,
    pub(super) log_px: Vec<f32>,
    pub(super) log_ratio: Vec<f32>,
    pub(super) coef_px: Vec<f32>,
    pub(super) coef_ratio: Vec<f32>,
    pub(super) grad: Vec<f32>,
    pub(super) spare: Vec<f32>,
    pub(super) dmean: Vec<f32>,
    pub(super) dlogvar: Vec<f32>,
    /// log p(z) per sample, and what the prior's backward pass needs.
    pub(super) log_prior: Vec<f32>,
    pub(super) prior: PriorWork,
    /// The convolutions' activations (image models).
    pub(super) enc_conv: StackWork,
    pub(super) dec_conv: StackWork,
    /// With decoder convolutions: the output dense layer before and after its activation.
    pub(super) out_pre: Vec<f32>,
    pub(super) out_post: Vec<f32>,
}

pub(super) use super::flat::sized;

pub(super) fn dense_forward(
    t: &Threads,
    p: &[f32],
    layer: &Dense,
    input: &[f32],
    rows: usize,
    out: &mut Vec<f32>,
) {
    let out = sized(out, rows * layer.d_out);
    kernels::fill_rows(out, &p[layer.bias.range()]);
    t.matmul(
        out,
        View::new(input, rows, layer.d_in),
        View::new(&p[layer.weight.range()], layer.d_in, layer.d_out),
        true,
    );
}

/// An MLP body forward: keeps every layer's input to the activation and its output.
#[allow(clippy::too_many_arguments)]
pub(super) fn chain_forward(
    t: &Threads,
    p: &[f32],
    layers: &[Dense],
    a: Activation,
    input: &[f32],
    rows: usize,
    pre: &mut Vec<Vec<f32>>,
    post: &mut Vec<Vec<f32>>,
) {
    pre.resize_with(layers.len(), Vec::new);
    post.resize_with(layers.len(), Vec::new);
    for (l, layer) in layers.iter().enumerate() {
        let (done, rest) = post.split_at_mut(l);
        let x = if l == 0 { input } else { &done[l - 1][..] };
        dense_forward(t, p, layer, x, rows, &mut pre[l]);
        let y = sized(&mut rest[0], rows * layer.d_out);
        kernels::activate(a, &pre[l], y);
    }
}

/// Rows per piece when `rows` rows of `d` values are spread over the run's threads.
pub(super) fn rows_per_piece(t: &Threads, rows: usize, d: usize) -> usize {
    (t.piece(rows * d, 8 * d) / d).max(1)
}

/// The Bernoulli likelihood of every row, in pieces of whole rows on the run's threads
/// (each row's sum in one fixed order: the same bits on any thread count). `rows_scratch`
/// holds one row of scratch per piece.
pub(super) fn bernoulli_log_px(
    t: &Threads,
    logits: &mut [f32],
    x: &[f32],
    log_px: &mut [f32],
    rows_scratch: &mut Vec<f32>,
    d: usize,
    for_backward: bool,
) {
    let per = rows_per_piece(t, log_px.len(), d);
    let scratch = sized(rows_scratch, log_px.len().div_ceil(per) * d);
    let pieces = logits
        .chunks_mut(per * d)
        .zip(log_px.chunks_mut(per))
        .zip(scratch.chunks_mut(d))
        .enumerate();
    t.each(pieces, |(i, ((l, o), row))| {
        if for_backward {
            kernels::bernoulli_log_px(l, x, o, row, i * per)
        } else {
            kernels::bernoulli_log_px_forward(l, x, o, row, i * per)
        }
    });
}

/// Forward through the VAE for the n rows of `x` with the S·n × Z draws `eps` (sample s of
/// example i in row s·n + i): leaves μ, log σ², σ, z and the decoder's activations in `w`,
/// log p(x|z) of every sample row in `w.log_px`, and (with `needs_ratio`) log q(z|x) − log p(z)
/// in `w.log_ratio`. With `for_backward` the Bernoulli likelihood leaves the sigmoid of the
/// logits in `w.out` (what its gradient needs); without, the logits stay (evaluation).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    layout: &Layout,
    t: &Threads,
    p: &[f32],
    x: &[f32],
    eps: &[f32],
    needs_ratio: bool,
    for_backward: bool,
    w: &mut Workspace,
) {
    let d = layout.data_dim;
    let zd = layout.latent_dim;
    let n = x.len() / d;
    let rows = eps.len() / zd;
    encode(layout, t, p, x, n, w);
    sample_z(eps, n, zd, w);
    decode(layout, t, p, x, rows, for_backward, w);
    if needs_ratio {
        log_ratio(layout, t, p, eps, n, w);
    }
}

/// The encoder (convolutions, then dense layers) and its heads: μ (`w.mean`), log σ² raw
/// and clamped (`w.logvar_raw`, `w.logvar`) and σ (`w.sigma`) for the `n` rows of `x`.
fn encode(layout: &Layout, t: &Threads, p: &[f32], x: &[f32], n: usize, w: &mut Workspace) {
    let zd = layout.latent_dim;
    let enc_in: &[f32] = if layout.encoder_conv.is_empty() {
        x
    } else {
        let a = layout.encoder_activation;
        conv::forward(t, p, &layout.encoder_conv, a, x, n, &mut w.enc_conv);
        &w.enc_conv.output
    };
    chain_forward(
        t,
        p,
        &layout.encoder,
        layout.encoder_activation,
        enc_in,
        n,
        &mut w.enc_pre,
        &mut w.enc_post,
    );
    let h: &[f32] = w.enc_post.last().map_or(enc_in, |v| &v[..]);
    dense_forward(t, p, &layout.mean, h, n, &mut w.mean);
    dense_forward(t, p, &layout.logvar, h, n, &mut w.logvar_raw);
    let lim = layout.logvar_limit;
    let logvar = sized(&mut w.logvar, n * zd);
    let sigma = sized(&mut w.sigma, n * zd);
    for ((lv, s), &raw) in logvar.iter_mut().zip(sigma.iter_mut()).zip(&w.logvar_raw) {
        *lv = raw.clamp(-lim, lim);
        *s = super::math::exp(0.5 * *lv);
    }
}

/// z = μ + σ ε for every draw in `eps`: S blocks of `n` rows.
fn sample_z(eps: &[f32], n: usize, zd: usize, w: &mut Workspace) {
    let rows = eps.len() / zd;
    let z = sized(&mut w.z, rows * zd);
    for (r, (zr, er)) in z.chunks_exact_mut(zd).zip(eps.chunks_exact(zd)).enumerate() {
        let i = r % n;
        let (m, s) = (&w.mean[i * zd..][..zd], &w.sigma[i * zd..][..zd]);
        for j in 0..zd {
            zr[j] = m[j] + s[j] * er[j];
        }
    }
}

/// The decoder from `w.z` and the likelihood of `x` under it: log p(x|z) per sample in
/// `w.log_px` (Bernoulli: the logits turned into what the backward pass needs where
/// `for_backward`).
fn decode(
    layout: &Layout,
    t: &Threads,
    p: &[f32],
    x: &[f32],
    rows: usize,
    for_backward: bool,
    w: &mut Workspace,
) {
    let d = layout.data_dim;
    let lim = layout.logvar_limit;
    chain_forward(
        t,
        p,
        &layout.decoder,
        layout.decoder_activation,
        &w.z,
        rows,
        &mut w.dec_pre,
        &mut w.dec_post,
    );
    let hd: &[f32] = w.dec_post.last().map_or(&w.z, |v| &v[..]);
    if layout.decoder_conv.is_empty() {
        dense_forward(t, p, &layout.out, hd, rows, &mut w.out);
    } else {
        // The output layer, activated, is the transposed convolutions' input; their output
        // is the logits or means.
        let a = layout.decoder_activation;
        dense_forward(t, p, &layout.out, hd, rows, &mut w.out_pre);
        kernels::activate(a, &w.out_pre, sized(&mut w.out_post, w.out_pre.len()));
        conv::forward(
            t,
            p,
            &layout.decoder_conv,
            a,
            &w.out_post,
            rows,
            &mut w.dec_conv,
        );
        std::mem::swap(&mut w.out, &mut w.dec_conv.output);
    }
    if let Some(head) = &layout.logvar_head {
        dense_forward(t, p, head, hd, rows, &mut w.head);
        let clamped = sized(&mut w.head_logvar, rows * d);
        for (v, &u) in clamped.iter_mut().zip(&w.head) {
            *v = u.clamp(-lim, lim);
        }
    }
    let log_px = sized(&mut w.log_px, rows);
    let scratch = sized(&mut w.scratch, d);
    let output_logvar = sized(&mut w.output_logvar, d);
    match layout.likelihood {
        LikelihoodKind::Bernoulli => {
            bernoulli_log_px(t, &mut w.out, x, log_px, &mut w.rows, d, for_backward)
        }
        LikelihoodKind::Gaussian if layout.logvar_head.is_some() => {
            kernels::gaussian_rows_log_px(&w.out, x, &w.head_logvar, log_px, scratch);
        }
        LikelihoodKind::Gaussian => {
            match &layout.output_logvar {
                Some(slot) => {
                    for (o, &v) in output_logvar.iter_mut().zip(&p[slot.range()]) {
                        *o = v.clamp(-lim, lim);
                    }
                }
                None => output_logvar.fill(layout.fixed_logvar),
            }
            kernels::gaussian_log_px(&w.out, x, output_logvar, log_px, scratch);
        }
    }
}

/// log q(z|x) − log p(z) per sample into `w.log_ratio`, log q = −½ Σ (ε² + log σ² + ln 2π)
/// at the drawn ε.
fn log_ratio(layout: &Layout, t: &Threads, p: &[f32], eps: &[f32], n: usize, w: &mut Workspace) {
    let zd = layout.latent_dim;
    let rows = eps.len() / zd;
    let log_ratio = sized(&mut w.log_ratio, rows);
    if layout.prior != PriorPiece::StandardNormal {
        let log_prior = sized(&mut w.log_prior, rows);
        layout
            .prior
            .log_prob(t, p, &w.z, zd, log_prior, &mut w.prior);
        let ln_2pi = crate::model::density::LN_2PI as f32;
        for (r, lr) in log_ratio.iter_mut().enumerate() {
            let i = r % n;
            let (er, lv) = (&eps[r * zd..][..zd], &w.logvar[i * zd..][..zd]);
            let log_q: f32 = -0.5 * (0..zd).map(|j| er[j] * er[j] + lv[j] + ln_2pi).sum::<f32>();
            *lr = log_q - log_prior[r];
        }
    } else {
        for (r, lr) in log_ratio.iter_mut().enumerate() {
            let i = r % n;
            let (zr, er) = (&w.z[r * zd..][..zd], &eps[r * zd..][..zd]);
            let lv = &w.logvar[i * zd..][..zd];
            let mut acc = 0.0f32;
            for j in 0..zd {
                acc += zr[j] * zr[j] - lv[j] - er[j] * er[j];
            }
            *lr = 0.5 * acc;
        }
    }
}

/// KL(q(z|x_i) ‖ p(z)) in closed form for one example's μ and log σ² (a normal prior).
pub fn analytic_kl(layout: &Layout, p: &[f32], mean: &[f32], logvar: &[f32]) -> f64 {
    if layout.prior == PriorPiece::StandardNormal {
        mean.iter()
            .zip(logvar)
            .map(|(&m, &lv)| 0.5 * (super::math::exp(lv) + m * m - lv - 1.0) as f64)
            .sum()
    } else {
        layout.prior.normal_kl(p, mean, logvar)
    }
}

/// The mean log p(x|z) over each example's samples, and the mean log-ratio (the Monte
/// Carlo KL): per example, from what [`forward`] left in `w` for `n` examples.
pub fn per_example_means(
    w: &Workspace,
    n: usize,
    ratio: bool,
) -> impl Iterator<Item = (f64, f64)> + '_ {
    let samples = w.log_px.len() / n.max(1);
    (0..n).map(move |i| {
        let mean =
            |v: &[f32]| (0..samples).map(|s| v[s * n + i] as f64).sum::<f64>() / samples as f64;
        let kl = if ratio { mean(&w.log_ratio) } else { f64::NAN };
        (mean(&w.log_px), kl)
    })
}

impl Workspace {
    /// log p(x|z) of every sample row of the last [`forward`].
    pub fn log_px(&self) -> &[f32] {
        &self.log_px
    }

    /// log q(z|x) − log p(z) of every sample row of the last [`forward`] (if it was asked).
    pub fn log_ratio(&self) -> &[f32] {
        &self.log_ratio
    }

    /// Example i's posterior mean and log-variance from the last [`forward`].
    pub fn posterior(&self, i: usize, zd: usize) -> (&[f32], &[f32]) {
        (&self.mean[i * zd..][..zd], &self.logvar[i * zd..][..zd])
    }
}
