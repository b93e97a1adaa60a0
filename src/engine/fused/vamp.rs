//! The VampPrior on the fused engine. Its components are the encoder's posteriors at the K
//! pseudo-inputs, so every step uses the encoder twice: on the minibatch and on the
//! pseudo-inputs. The components are computed once per step, not once per block of the
//! minibatch ([`refresh`], after each optimiser step, so that evaluation always reads the
//! current prior), and held in the prior's `means`/`logvars` slots as a mixture prior's are;
//! the blocks add the loss's gradients into those slots like a mixture's; [`backward`] then
//! takes that gradient back through the encoder once, adding into the encoder's weights
//! (whose gradient from the minibatch is already there: both uses add up) and writing the
//! pseudo-inputs' gradient.

use super::forward::{chain_forward, dense_forward};
use super::layout::Layout;
use super::network::encoder_backward;
use super::prior::PriorPiece;
use super::products::Threads;

/// The encoder's activations at the pseudo-inputs, kept from [`refresh`] for [`backward`].
#[derive(Default)]
pub struct VampWork {
    inputs: Vec<f32>,
    pre: Vec<Vec<f32>>,
    post: Vec<Vec<f32>>,
    mean: Vec<f32>,
    logvar_raw: Vec<f32>,
    dmean: Vec<f32>,
    dlogvar: Vec<f32>,
    grad: Vec<f32>,
    spare: Vec<f32>,
    /// The encoder's parameter gradients from the pseudo-inputs alone (the layout's length).
    encoder_grads: Vec<f32>,
}

/// The pseudo-inputs as the encoder reads them: clamped to [0, 1] for data in that range.
fn inputs(prior: &PriorPiece, p: &[f32], out: &mut Vec<f32>) -> usize {
    let PriorPiece::Vamp {
        pseudo, k, clamp, ..
    } = prior
    else {
        unreachable!("only the VampPrior has pseudo-inputs")
    };
    out.clear();
    out.extend(
        p[pseudo.range()]
            .iter()
            .map(|&u| if *clamp { u.clamp(0.0, 1.0) } else { u }),
    );
    *k
}

/// Writes the components (the encoder's μ and clamped log σ² at the pseudo-inputs) into the
/// prior's `means` and `logvars` slots of `p`. Nothing for other priors.
pub fn refresh(layout: &Layout, t: &Threads, p: &mut [f32], w: &mut VampWork) {
    let PriorPiece::Vamp { means, logvars, .. } = &layout.prior else {
        return;
    };
    let k = inputs(&layout.prior, p, &mut w.inputs);
    let a = layout.encoder_activation;
    chain_forward(
        t,
        p,
        &layout.encoder,
        a,
        &w.inputs,
        k,
        &mut w.pre,
        &mut w.post,
    );
    let h: &[f32] = w.post.last().map_or(&w.inputs, |v| &v[..]);
    dense_forward(t, p, &layout.mean, h, k, &mut w.mean);
    dense_forward(t, p, &layout.logvar, h, k, &mut w.logvar_raw);
    let lim = layout.logvar_limit;
    p[means.range()].copy_from_slice(&w.mean);
    for (lv, &raw) in p[logvars.range()].iter_mut().zip(&w.logvar_raw) {
        *lv = raw.clamp(-lim, lim);
    }
}

/// Takes the gradient the step left in the components' slots of `g` back through the
/// encoder at the pseudo-inputs (as of the last [`refresh`]): adds into the encoder's
/// gradients, writes the pseudo-inputs', and zeroes the components' (they are not trained).
pub fn backward(layout: &Layout, t: &Threads, p: &[f32], g: &mut [f32], w: &mut VampWork) {
    let PriorPiece::Vamp {
        means,
        logvars,
        pseudo,
        k,
        clamp,
    } = &layout.prior
    else {
        return;
    };
    let (k, lim) = (*k, layout.logvar_limit);
    w.dmean.clear();
    w.dmean.extend_from_slice(&g[means.range()]);
    w.dlogvar.clear();
    w.dlogvar.extend_from_slice(&g[logvars.range()]);
    // Clamped log-variances pass no gradient.
    for (dv, &raw) in w.dlogvar.iter_mut().zip(&w.logvar_raw) {
        if raw < -lim || raw > lim {
            *dv = 0.0;
        }
    }
    g[means.range()].fill(0.0);
    g[logvars.range()].fill(0.0);

    let eg = &mut w.encoder_grads;
    eg.resize(layout.len, 0.0);
    encoder_backward(
        t,
        p,
        eg,
        layout,
        &w.inputs,
        k,
        (&w.pre, &w.post),
        (&w.dmean, &w.dlogvar),
        &mut w.grad,
        &mut w.spare,
        true,
    );
    // Both uses of the encoder add up.
    let dense = layout.encoder.iter().chain([&layout.mean, &layout.logvar]);
    for layer in dense {
        for slot in [&layer.weight, &layer.bias] {
            for (gi, &ei) in g[slot.range()].iter_mut().zip(&eg[slot.range()]) {
                *gi += ei;
            }
        }
    }
    // The clamp passes gradient where the pseudo-input is inside [0, 1].
    let du = &w.grad;
    for ((gi, &d), &u) in g[pseudo.range()].iter_mut().zip(du).zip(&p[pseudo.range()]) {
        *gi = if *clamp && !(0.0..=1.0).contains(&u) {
            0.0
        } else {
            d
        };
    }
}
