//! One minibatch through the VAE and back, with the gradients written out by hand:
//! the encoder, S reparameterised samples per example (L for the ELBO, k for IWAE), the
//! decoder's log-likelihood, the KL or log-ratio terms, and the chain rule back to every
//! parameter. The same maths as `objective.rs` on burn's autodiff, which the tests compare
//! it with gradient for gradient.

use super::conv;
use super::flat::sized;
use super::forward::{self, Workspace, rows_per_piece};
use super::kernels;
use super::layout::{Dense, Layout};
use super::prior::PriorPiece;
use super::products::{Threads, View};
use crate::spec::{Activation, LikelihoodKind};

/// The objective of a step.
#[derive(Clone, Copy, Debug)]
pub enum Objective {
    /// ELBO_β with `samples` draws; the KL analytic (standard normal prior) or estimated.
    Elbo { samples: usize, analytic_kl: bool },
    /// IWAE_β with k importance samples.
    Iwae { k: usize },
}

impl Objective {
    pub fn samples(&self) -> usize {
        match *self {
            Objective::Elbo { samples, .. } => samples,
            Objective::Iwae { k } => k,
        }
    }
}

/// Sums over the minibatch's examples: the β-weighted bound, E[log p(x|z)] and the KL (or
/// mean log-ratio for IWAE), as the autodiff engine reports them.
pub type Sums = [f64; 3];

/// A dense layer's weight and bias gradients (written, not added) into `g`, from its input
/// and the gradient of its output.
fn dense_param_grads(
    t: &Threads,
    g: &mut [f32],
    layer: &Dense,
    input: &[f32],
    rows: usize,
    grad: &[f32],
) {
    t.matmul(
        &mut g[layer.weight.range()],
        View::new(input, rows, layer.d_in).t(),
        View::new(grad, rows, layer.d_out),
        false,
    );
    kernels::column_sums(grad, &mut g[layer.bias.range()], false);
}

/// Back through a dense layer whose output gradient is in `grad`: writes its weight and bias
/// gradients into `g`, and (if `input_grad`) leaves the input's gradient in `grad`.
#[allow(clippy::too_many_arguments)]
fn dense_backward(
    t: &Threads,
    p: &[f32],
    g: &mut [f32],
    layer: &Dense,
    input: &[f32],
    rows: usize,
    grad: &mut Vec<f32>,
    spare: &mut Vec<f32>,
    input_grad: bool,
) {
    dense_param_grads(t, g, layer, input, rows, grad);
    if input_grad {
        let dx = sized(spare, rows * layer.d_in);
        t.matmul(
            dx,
            View::new(grad, rows, layer.d_out),
            View::new(&p[layer.weight.range()], layer.d_in, layer.d_out).t(),
            false,
        );
        std::mem::swap(grad, spare);
    }
}

/// Back through an MLP body, `grad` holding the gradient of its output.
#[allow(clippy::too_many_arguments)]
fn chain_backward(
    t: &Threads,
    p: &[f32],
    g: &mut [f32],
    layers: &[Dense],
    a: Activation,
    input: &[f32],
    rows: usize,
    pre: &[Vec<f32>],
    post: &[Vec<f32>],
    grad: &mut Vec<f32>,
    spare: &mut Vec<f32>,
    input_grad: bool,
) {
    for l in (0..layers.len()).rev() {
        kernels::activation_backward(a, &pre[l], &post[l], grad);
        let x = if l == 0 { input } else { &post[l - 1][..] };
        dense_backward(
            t,
            p,
            g,
            &layers[l],
            x,
            rows,
            grad,
            spare,
            l > 0 || input_grad,
        );
    }
}

/// Back through the encoder's mean and log-variance heads and its dense body, from the
/// heads' gradients (`rows` × Z each) and the body's activations (`pre`, `post`) at `input`:
/// writes their parameter gradients into `g`; with `input_grad`, leaves the gradient of
/// `input` in `grad` (for the convolutions before the body, or the VampPrior's
/// pseudo-inputs).
#[allow(clippy::too_many_arguments)]
pub(super) fn encoder_backward(
    t: &Threads,
    p: &[f32],
    g: &mut [f32],
    layout: &Layout,
    input: &[f32],
    rows: usize,
    (pre, post): (&[Vec<f32>], &[Vec<f32>]),
    (dmean, dlogvar): (&[f32], &[f32]),
    grad: &mut Vec<f32>,
    spare: &mut Vec<f32>,
    input_grad: bool,
) {
    let h: &[f32] = post.last().map_or(input, |v| &v[..]);
    let (zd, width) = (layout.latent_dim, layout.mean.d_in);
    let heads = [(&layout.mean, dmean), (&layout.logvar, dlogvar)];
    for (head, dhead) in heads {
        dense_param_grads(t, g, head, h, rows, dhead);
    }
    if layout.encoder.is_empty() && !input_grad {
        return;
    }
    let dh = sized(grad, rows * width);
    for (i, (head, dhead)) in heads.into_iter().enumerate() {
        t.matmul(
            dh,
            View::new(dhead, rows, zd),
            View::new(&p[head.weight.range()], width, zd).t(),
            i > 0,
        );
    }
    chain_backward(
        t,
        p,
        g,
        &layout.encoder,
        layout.encoder_activation,
        input,
        rows,
        pre,
        post,
        grad,
        spare,
        input_grad,
    );
}

/// The Bernoulli likelihood's gradient into the logits, in pieces of whole rows.
fn bernoulli_backward(t: &Threads, sigmoid: &mut [f32], x: &[f32], coef: &[f32], d: usize) {
    let per = rows_per_piece(t, coef.len(), d);
    let pieces = sigmoid
        .chunks_mut(per * d)
        .zip(coef.chunks(per))
        .enumerate();
    t.each(pieces, |(i, (s, c))| {
        kernels::bernoulli_backward(s, x, c, d, i * per)
    });
}

/// One step's forward and backward pass: fills `g` (the layout's length) with the gradient
/// of the loss −(1/N) Σ_i bound_i over the rows of `x`, and returns their sums. N is
/// `batch`, the whole minibatch's size: `x` may be one block of it (see `FusedEngine::step`).
///
/// `x` is the n × D minibatch (or block); `eps` the S·n × Z standard normal draws, sample s
/// of example i in row s·n + i (the order the autodiff engine draws them in).
#[allow(clippy::too_many_arguments)]
pub fn step(
    layout: &Layout,
    threads: &Threads,
    p: &[f32],
    g: &mut [f32],
    x: &[f32],
    eps: &[f32],
    objective: Objective,
    beta: f32,
    batch: usize,
    w: &mut Workspace,
) -> Sums {
    let t = threads;
    let d = layout.data_dim;
    let zd = layout.latent_dim;
    let n = x.len() / d;
    let s_count = objective.samples();
    let rows = s_count * n;
    assert_eq!(eps.len(), rows * zd, "noise of the wrong size");
    assert_eq!(g.len(), layout.len);
    // The prior's gradients are added up below, from zero.
    for slot in layout.prior.slots() {
        g[slot.range()].fill(0.0);
    }
    let needs_ratio = !matches!(
        objective,
        Objective::Elbo {
            analytic_kl: true,
            ..
        }
    );
    forward::forward(layout, t, p, x, eps, needs_ratio, true, w);
    let sums = bound_terms(layout, p, objective, beta, batch, n, w);
    decoder_backward(layout, t, p, g, x, rows, w);
    latent_backward(layout, t, p, g, needs_ratio, w);
    posterior_backward(layout, p, g, eps, objective, beta, batch, n, w);

    // Back through the heads into the encoder body, and its convolutions.
    let has_conv = !layout.encoder_conv.is_empty();
    let enc_in: &[f32] = if has_conv { &w.enc_conv.output } else { x };
    encoder_backward(
        t,
        p,
        g,
        layout,
        enc_in,
        n,
        (&w.enc_pre, &w.enc_post),
        (&w.dmean, &w.dlogvar),
        &mut w.grad,
        &mut w.spare,
        has_conv,
    );
    if has_conv {
        let a = layout.encoder_activation;
        let ec = &layout.encoder_conv;
        conv::backward(t, g, ec, a, n, &mut w.grad, false, &mut w.enc_conv);
    }
    sums
}

/// The minibatch's per-example bounds, and the loss's derivative with respect to each
/// sample's log p(x|z) (`w.coef_px`) and log-ratio (`w.coef_ratio`): returns the sums of
/// bound, reconstruction and KL over the `n` rows.
fn bound_terms(
    layout: &Layout,
    p: &[f32],
    objective: Objective,
    beta: f32,
    batch: usize,
    n: usize,
    w: &mut Workspace,
) -> Sums {
    let zd = layout.latent_dim;
    let s_count = objective.samples();
    let rows = s_count * n;
    let log_px = &w.log_px[..];
    let log_ratio = &w.log_ratio[..];

    let coef_px = sized(&mut w.coef_px, rows);
    let coef_ratio = sized(&mut w.coef_ratio, rows);
    let inv_n = 1.0 / batch as f32;
    let mut sums = [0f64; 3];
    for i in 0..n {
        let at = |v: &[f32], s: usize| v[s * n + i];
        let recon = (0..s_count).map(|s| at(log_px, s) as f64).sum::<f64>() / s_count as f64;
        let (bound, kl) = match objective {
            Objective::Elbo { analytic_kl, .. } => {
                let kl = if analytic_kl {
                    let (m, lv) = (&w.mean[i * zd..][..zd], &w.logvar[i * zd..][..zd]);
                    forward::analytic_kl(layout, p, m, lv)
                } else {
                    (0..s_count).map(|s| at(log_ratio, s) as f64).sum::<f64>() / s_count as f64
                };
                for s in 0..s_count {
                    coef_px[s * n + i] = -inv_n / s_count as f32;
                    coef_ratio[s * n + i] = if analytic_kl {
                        0.0
                    } else {
                        beta * inv_n / s_count as f32
                    };
                }
                (recon - beta as f64 * kl, kl)
            }
            Objective::Iwae { k } => {
                let log_w = |s: usize| at(log_px, s) as f64 - beta as f64 * at(log_ratio, s) as f64;
                let max = (0..k).map(log_w).fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = (0..k).map(|s| (log_w(s) - max).exp()).sum();
                for s in 0..k {
                    let weight = ((log_w(s) - max).exp() / total) as f32;
                    coef_px[s * n + i] = -weight * inv_n;
                    coef_ratio[s * n + i] = beta * weight * inv_n;
                }
                let kl = (0..k).map(|s| at(log_ratio, s) as f64).sum::<f64>() / k as f64;
                (max + total.ln() - (k as f64).ln(), kl)
            }
        };
        sums[0] += bound;
        sums[1] += recon;
        sums[2] += kl;
    }

    sums
}

/// Back from the likelihood's coefficients through the decoder: its parameters' gradients
/// into `g`, and ∂loss/∂z (rows × Z) left in `w.grad`.
fn decoder_backward(
    layout: &Layout,
    t: &Threads,
    p: &[f32],
    g: &mut [f32],
    x: &[f32],
    rows: usize,
    w: &mut Workspace,
) {
    let d = layout.data_dim;
    let lim = layout.logvar_limit;
    // Back through the likelihood into the decoder's output.
    match layout.likelihood {
        LikelihoodKind::Bernoulli => bernoulli_backward(t, &mut w.out, x, &w.coef_px, d),
        LikelihoodKind::Gaussian if layout.logvar_head.is_some() => {
            kernels::gaussian_rows_backward(
                &mut w.out,
                x,
                &mut w.head_logvar,
                &w.head,
                &w.coef_px,
                lim,
            );
        }
        LikelihoodKind::Gaussian => {
            let dlogvar = match &layout.output_logvar {
                Some(slot) => &mut g[slot.range()],
                None => &mut w.scratch[..],
            };
            kernels::gaussian_backward(&mut w.out, x, &w.output_logvar, &w.coef_px, dlogvar);
            if let Some(slot) = &layout.output_logvar {
                // Clamped log-variances pass no gradient.
                for (gv, &v) in g[slot.range()].iter_mut().zip(&p[slot.range()]) {
                    if v < -lim || v > lim {
                        *gv = 0.0;
                    }
                }
            }
        }
    }
    std::mem::swap(&mut w.grad, &mut w.out);
    if !layout.decoder_conv.is_empty() {
        // Back through the transposed convolutions and the output layer's activation.
        let a = layout.decoder_activation;
        let dc = &layout.decoder_conv;
        conv::backward(t, g, dc, a, rows, &mut w.grad, true, &mut w.dec_conv);
        kernels::activation_backward(a, &w.out_pre, &w.out_post, &mut w.grad);
    }
    let hd: &[f32] = w.dec_post.last().map_or(&w.z, |v| &v[..]);
    dense_backward(
        t,
        p,
        g,
        &layout.out,
        hd,
        rows,
        &mut w.grad,
        &mut w.spare,
        true,
    );
    if let Some(head) = &layout.logvar_head {
        // The head reads the same hidden layer: its gradient adds to the mean's there.
        dense_param_grads(t, g, head, hd, rows, &w.head_logvar);
        t.matmul(
            &mut w.grad,
            View::new(&w.head_logvar, rows, d),
            View::new(&p[head.weight.range()], head.d_in, head.d_out).t(),
            true,
        );
    }
    chain_backward(
        t,
        p,
        g,
        &layout.decoder,
        layout.decoder_activation,
        &w.z,
        rows,
        &w.dec_pre,
        &w.dec_post,
        &mut w.grad,
        &mut w.spare,
        true,
    );
}

/// Adds the log-ratio's own dependence on z to ∂loss/∂z in `w.grad`: z for the standard
/// normal prior, −∇_z log p(z) (and the prior's parameters' gradients) for a learned one.
fn latent_backward(
    layout: &Layout,
    t: &Threads,
    p: &[f32],
    g: &mut [f32],
    needs_ratio: bool,
    w: &mut Workspace,
) {
    let zd = layout.latent_dim;
    let standard_prior = layout.prior == PriorPiece::StandardNormal;
    let dz = &mut w.grad;
    if needs_ratio && !standard_prior {
        // −∇_z log p(z) of the prior, and the gradients of its own parameters.
        for (r, dzr) in dz.chunks_exact_mut(zd).enumerate() {
            let c = w.coef_ratio[r];
            for (g, &ng) in dzr.iter_mut().zip(&w.prior.neg_grad_z[r * zd..][..zd]) {
                *g += c * ng;
            }
        }
        layout
            .prior
            .backward(t, p, g, &w.z, zd, &w.coef_ratio, &mut w.prior);
    } else if needs_ratio {
        for (r, dzr) in dz.chunks_exact_mut(zd).enumerate() {
            let c = w.coef_ratio[r];
            for (g, &zv) in dzr.iter_mut().zip(&w.z[r * zd..][..zd]) {
                *g += c * zv;
            }
        }
    }
}

/// From ∂loss/∂z to the posterior's μ and log σ² (`w.dmean`, `w.dlogvar`, n × Z), with
/// an analytic KL's own gradient and no gradient where log σ² was clamped.
#[allow(clippy::too_many_arguments)]
fn posterior_backward(
    layout: &Layout,
    p: &[f32],
    g: &mut [f32],
    eps: &[f32],
    objective: Objective,
    beta: f32,
    batch: usize,
    n: usize,
    w: &mut Workspace,
) {
    let zd = layout.latent_dim;
    let rows = objective.samples() * n;
    let lim = layout.logvar_limit;
    let inv_n = 1.0 / batch as f32;
    let standard_prior = layout.prior == PriorPiece::StandardNormal;
    let dz = &w.grad;
    // Into μ and log σ²: z = μ + e^(v/2) ε, log q = −½ Σ (v + ε² + ln 2π) at fixed ε.
    let dmean = sized(&mut w.dmean, n * zd);
    let dlogvar = sized(&mut w.dlogvar, n * zd);
    dmean.fill(0.0);
    dlogvar.fill(0.0);
    for r in 0..rows {
        let i = r % n;
        let c = w.coef_ratio[r];
        for j in 0..zd {
            let (a, b) = (i * zd + j, r * zd + j);
            dmean[a] += dz[b];
            // coef_ratio is 0 where the KL is analytic.
            dlogvar[a] += dz[b] * 0.5 * w.sigma[a] * eps[b] - 0.5 * c;
        }
    }
    if let Objective::Elbo {
        analytic_kl: true, ..
    } = objective
    {
        let c = beta * inv_n;
        if standard_prior {
            for a in 0..n * zd {
                dmean[a] += c * w.mean[a];
                dlogvar[a] += c * 0.5 * (super::math::exp(w.logvar[a]) - 1.0);
            }
        } else {
            for i in 0..n {
                let at = i * zd..(i + 1) * zd;
                layout.prior.normal_kl_backward(
                    p,
                    g,
                    &w.mean[at.clone()],
                    &w.logvar[at.clone()],
                    c,
                    &mut dmean[at.clone()],
                    &mut dlogvar[at],
                );
            }
        }
    }
    for (dv, &raw) in dlogvar.iter_mut().zip(&w.logvar_raw) {
        if raw < -lim || raw > lim {
            *dv = 0.0;
        }
    }
}
