//! p(z) in the fused engine: the standard normal (no parameters, handled inline by the
//! network for speed), a diagonal normal (learned or fixed mean and log-variance), a
//! mixture of diagonal normals with learned weights, and the VampPrior (an equally weighted
//! mixture of the encoder's posteriors at learned pseudo-inputs: `vamp`), as `model::prior`
//! defines them. Each
//! gives log p(z), its gradient in z, and the gradients of its own parameters, which it adds
//! into the gradient buffer (the prior is a piece whose gradients accumulate).

use super::flat::Slot;
use super::flat::sized;
use super::products::{Threads, View};
use crate::model::density::LN_2PI;

#[derive(Clone, Debug, PartialEq)]
pub enum PriorPiece {
    StandardNormal,
    /// N(mean, e^logvar) per dimension; `learned = false` keeps N(0, I)'s values.
    Normal {
        mean: Slot,
        logvar: Slot,
        learned: bool,
    },
    /// Σ_k softmax(logits)_k N(means_k, e^logvars_k): [k, z], [k, z], [k].
    Mixture {
        means: Slot,
        logvars: Slot,
        logits: Slot,
        k: usize,
    },
    /// (1/K) Σ_k N(means_k, e^logvars_k) with the encoder's posteriors at the pseudo-inputs
    /// (clamped to [0, 1] where `clamp`) as components: `means` and `logvars` ([k, z]) are
    /// not trained themselves but computed from `pseudo` ([k, data_dim]) and the encoder
    /// after every step (`vamp::refresh`); their gradients go back through the encoder
    /// (`vamp::backward`).
    Vamp {
        means: Slot,
        logvars: Slot,
        pseudo: Slot,
        k: usize,
        clamp: bool,
    },
}

/// A mixture prior's components: means and log-variances ([k, z]), log-weights, k.
type Components<'a> = (&'a [f32], &'a [f32], Vec<f32>, usize);

/// Per-row results of [`PriorPiece::log_prob`] that the backward pass needs.
#[derive(Default)]
pub struct PriorWork {
    /// −∇_z log p(z), rows × z.
    pub neg_grad_z: Vec<f32>,
    /// Mixture: each row's component responsibilities, rows × k.
    pub resp: Vec<f32>,
    /// Mixture: e^(−v) and −2·m·e^(−v) per component ([k, z]), z² per row, and scratch.
    inv: Vec<f32>,
    minv2: Vec<f32>,
    zsq: Vec<f32>,
    scratch: Vec<f32>,
    /// Mixture, per component: the log-density's constant terms ([k]); backward's sums
    /// of the weighted responsibilities ([k]), and of them times z and z² ([k, z]).
    constant: Vec<f32>,
    s0: Vec<f32>,
    s1: Vec<f32>,
    s2: Vec<f32>,
}

impl PriorPiece {
    /// The prior's parameter slots, to zero before the gradients are added.
    pub fn slots(&self) -> Vec<&Slot> {
        match self {
            PriorPiece::StandardNormal => Vec::new(),
            PriorPiece::Normal { mean, logvar, .. } => vec![mean, logvar],
            PriorPiece::Mixture {
                means,
                logvars,
                logits,
                ..
            } => vec![means, logvars, logits],
            PriorPiece::Vamp {
                means,
                logvars,
                pseudo,
                ..
            } => vec![means, logvars, pseudo],
        }
    }

    /// A mixture's component means and log-variances, its log-weights and its size.
    fn mixture<'a>(&self, p: &'a [f32]) -> Option<Components<'a>> {
        match self {
            PriorPiece::Mixture {
                means,
                logvars,
                logits,
                k,
            } => Some((
                &p[means.range()],
                &p[logvars.range()],
                log_softmax(&p[logits.range()]),
                *k,
            )),
            PriorPiece::Vamp {
                means, logvars, k, ..
            } => Some((
                &p[means.range()],
                &p[logvars.range()],
                vec![-(*k as f32).ln(); *k],
                *k,
            )),
            _ => None,
        }
    }

    /// log p(z) for every row of `z` (rows × zd) into `out`, keeping what `backward` needs.
    /// A mixture's terms are products on the run's threads: its K × rows × Z Gaussian
    /// terms one by one (with an exponential each) made the VampPrior's 500 components
    /// slower than burn's tensors.
    pub fn log_prob(
        &self,
        t: &Threads,
        p: &[f32],
        z: &[f32],
        zd: usize,
        out: &mut [f32],
        w: &mut PriorWork,
    ) {
        let rows = out.len();
        w.neg_grad_z.resize(rows * zd, 0.0);
        let ln_2pi = LN_2PI as f32;
        match self {
            PriorPiece::StandardNormal => {
                for (r, o) in out.iter_mut().enumerate() {
                    let zr = &z[r * zd..][..zd];
                    *o = -0.5 * zr.iter().map(|v| v * v + ln_2pi).sum::<f32>();
                    w.neg_grad_z[r * zd..][..zd].copy_from_slice(zr);
                }
            }
            PriorPiece::Normal { mean, logvar, .. } => {
                let (m, v) = (&p[mean.range()], &p[logvar.range()]);
                for (r, o) in out.iter_mut().enumerate() {
                    let zr = &z[r * zd..][..zd];
                    let ng = &mut w.neg_grad_z[r * zd..][..zd];
                    let mut acc = 0.0f32;
                    for j in 0..zd {
                        let inv = super::math::exp(-v[j]);
                        let e = zr[j] - m[j];
                        acc += e * e * inv + v[j] + ln_2pi;
                        ng[j] = e * inv;
                    }
                    *o = -0.5 * acc;
                }
            }
            PriorPiece::Mixture { .. } | PriorPiece::Vamp { .. } => {
                let (m, v, log_weights, k) = self.mixture(p).expect("a mixture");
                mixture_log_prob(t, m, v, &log_weights, k, z, zd, out, w);
            }
        }
    }

    /// Adds Σ_r coef[r]·(−∂ log p(z_r)/∂θ) into the prior's slots of `g` (the loss's
    /// gradient, where the loss has −log p(z_r) with weight coef[r]).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        t: &Threads,
        p: &[f32],
        g: &mut [f32],
        z: &[f32],
        zd: usize,
        coef: &[f32],
        w: &mut PriorWork,
    ) {
        match self {
            PriorPiece::StandardNormal => {}
            PriorPiece::Normal {
                mean,
                logvar,
                learned,
            } => {
                if !learned {
                    return;
                }
                for (r, &c) in coef.iter().enumerate() {
                    let ng = &w.neg_grad_z[r * zd..][..zd];
                    for j in 0..zd {
                        // ng = (z − m)e^(−v): −∂ log p/∂m = −ng, −∂ log p/∂v = ½(1 − (z − m)·ng).
                        let e = z[r * zd + j] - p[mean.offset + j];
                        g[mean.offset + j] -= c * ng[j];
                        g[logvar.offset + j] += c * 0.5 * (1.0 - e * ng[j]);
                    }
                }
            }
            PriorPiece::Mixture { .. } | PriorPiece::Vamp { .. } => {
                let (m, _, log_weights, k) = self.mixture(p).expect("a mixture");
                let (means, logvars, logits) = match self {
                    PriorPiece::Mixture {
                        means,
                        logvars,
                        logits,
                        ..
                    } => (means, logvars, Some(logits)),
                    PriorPiece::Vamp { means, logvars, .. } => (means, logvars, None),
                    _ => unreachable!("a mixture"),
                };
                let rows = coef.len();
                // w_rc = coef_r·γ_rc; S0 = Σ_r w_rc, S1 = wᵀz, S2 = wᵀz² (k × z).
                let weighted = sized(&mut w.scratch, rows * k);
                for (r, &c) in coef.iter().enumerate() {
                    for (o, &g) in weighted[r * k..][..k].iter_mut().zip(&w.resp[r * k..][..k]) {
                        *o = c * g;
                    }
                }
                let s0 = sized(&mut w.s0, k);
                super::kernels::column_sums(weighted, s0, false);
                let (s1, s2) = (sized(&mut w.s1, k * zd), sized(&mut w.s2, k * zd));
                let wt = View::new(weighted, rows, k).t();
                t.matmul(s1, wt, View::new(z, rows, zd), false);
                t.matmul(s2, wt, View::new(&w.zsq, rows, zd), false);
                if let Some(logits) = logits {
                    let total: f32 = coef.iter().sum();
                    for c in 0..k {
                        let weight = super::math::exp(log_weights[c]);
                        g[logits.offset + c] -= s0[c] - weight * total;
                    }
                }
                for (c, &s0c) in s0.iter().enumerate() {
                    for j in 0..zd {
                        let at = c * zd + j;
                        let (mc, inv) = (m[at], w.inv[at]);
                        // −Σ_r w (z − m) e^(−v), and ½ Σ_r w (1 − (z − m)² e^(−v)).
                        g[means.offset + at] -= inv * (s1[at] - mc * s0c);
                        let square = s2[at] - 2.0 * mc * s1[at] + mc * mc * s0c;
                        g[logvars.offset + at] += 0.5 * (s0c - inv * square);
                    }
                }
            }
        }
    }

    /// Normal prior: the analytic KL(N(μ, e^lv) ‖ N(m, e^v)) of one example.
    pub fn normal_kl(&self, p: &[f32], mu: &[f32], lv: &[f32]) -> f64 {
        let (m, v) = self.normal_params(p);
        (0..mu.len())
            .map(|j| {
                let ratio = super::math::exp(lv[j] - v[j]);
                let e = mu[j] - m[j];
                0.5 * (ratio + e * e * super::math::exp(-v[j]) - lv[j] + v[j] - 1.0) as f64
            })
            .sum()
    }

    /// The gradients of `coef`·[`normal_kl`](Self::normal_kl): added into the example's
    /// `dmean` and `dlogvar`, and (a learned prior) into the prior's slots of `g`.
    #[allow(clippy::too_many_arguments)]
    pub fn normal_kl_backward(
        &self,
        p: &[f32],
        g: &mut [f32],
        mu: &[f32],
        lv: &[f32],
        coef: f32,
        dmean: &mut [f32],
        dlogvar: &mut [f32],
    ) {
        let PriorPiece::Normal {
            mean,
            logvar,
            learned,
        } = self
        else {
            return;
        };
        let (m, v) = (&p[mean.range()], &p[logvar.range()]);
        for j in 0..mu.len() {
            let inv = super::math::exp(-v[j]);
            let ratio = super::math::exp(lv[j] - v[j]);
            let e = mu[j] - m[j];
            dmean[j] += coef * e * inv;
            dlogvar[j] += coef * 0.5 * (ratio - 1.0);
            if *learned {
                g[mean.offset + j] -= coef * e * inv;
                g[logvar.offset + j] += coef * 0.5 * (1.0 - ratio - e * e * inv);
            }
        }
    }

    fn normal_params<'a>(&self, p: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        match self {
            PriorPiece::Normal { mean, logvar, .. } => (&p[mean.range()], &p[logvar.range()]),
            _ => unreachable!("only the normal prior has a closed-form KL with parameters"),
        }
    }
}

/// log Σ_c w_c N(z_r; m_c, e^(v_c)) for every row, as products: the quadratic form is
/// Σ_j z² e^(−v) − 2 z m e^(−v) + m² e^(−v), the first two terms rows × k products. Leaves
/// the responsibilities, −∇_z log p(z) = z∘(γ·e^(−v)) − γ·(m e^(−v)), and e^(−v) in `w`.
#[allow(clippy::too_many_arguments)]
fn mixture_log_prob(
    t: &Threads,
    m: &[f32],
    v: &[f32],
    log_weights: &[f32],
    k: usize,
    z: &[f32],
    zd: usize,
    out: &mut [f32],
    w: &mut PriorWork,
) {
    let rows = out.len();
    let ln_2pi = LN_2PI as f32;
    let inv = sized(&mut w.inv, k * zd);
    let minv2 = sized(&mut w.minv2, k * zd);
    // Per component: −½ Σ_j (m² e^(−v) + v + ln 2π) + log w.
    let constant = sized(&mut w.constant, k);
    for c in 0..k {
        let mut acc = 0f32;
        for j in 0..zd {
            let at = c * zd + j;
            inv[at] = super::math::exp(-v[at]);
            minv2[at] = -2.0 * m[at] * inv[at];
            acc += m[at] * m[at] * inv[at] + v[at] + ln_2pi;
        }
        constant[c] = -0.5 * acc + log_weights[c];
    }
    let zsq = sized(&mut w.zsq, rows * zd);
    for (q, &x) in zsq.iter_mut().zip(z) {
        *q = x * x;
    }
    // resp ← Σ_j z² e^(−v) − 2 z m e^(−v), then the log-terms, then γ.
    let resp = sized(&mut w.resp, rows * k);
    t.matmul(
        resp,
        View::new(&w.zsq, rows, zd),
        View::new(&w.inv, k, zd).t(),
        false,
    );
    t.matmul(
        resp,
        View::new(z, rows, zd),
        View::new(&w.minv2, k, zd).t(),
        true,
    );
    for (r, o) in out.iter_mut().enumerate() {
        let row = &mut resp[r * k..][..k];
        for (x, &c) in row.iter_mut().zip(&w.constant) {
            *x = -0.5 * *x + c;
        }
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = row.iter().map(|x| super::math::exp(x - max)).sum();
        *o = max + total.ln();
        for x in row.iter_mut() {
            *x = super::math::exp(*x - max) / total;
        }
    }
    // −∇_z log p(z) = z∘(γ·e^(−v)) + ½ γ·(−2 m e^(−v)).
    let ng = sized(&mut w.neg_grad_z, rows * zd);
    t.matmul(
        ng,
        View::new(&w.resp, rows, k),
        View::new(&w.minv2, k, zd),
        false,
    );
    let a = sized(&mut w.scratch, rows * zd);
    t.matmul(
        a,
        View::new(&w.resp, rows, k),
        View::new(&w.inv, k, zd),
        false,
    );
    for ((g, &a), &x) in ng.iter_mut().zip(a.iter()).zip(z) {
        *g = x * a + 0.5 * *g;
    }
}

fn log_softmax(l: &[f32]) -> Vec<f32> {
    let max = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = l.iter().map(|x| super::math::exp(x - max)).sum();
    let log_total = total.ln() + max;
    l.iter().map(|x| x - log_total).collect()
}
