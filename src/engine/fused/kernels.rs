//! The elementwise and row-wise loops of one training step, each one pass over memory and
//! compiled per instruction set (see [`multiversion`]). Row sums use 16 running partial sums,
//! which the compiler keeps in vector registers; their order is fixed, so every instruction
//! set computes the same bits.

use super::math::{self, multiversion};
use crate::spec::Activation;

/// Σ xs, in 16 lanes then across them.
#[inline(always)]
fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..16 {
            acc[j] += c[j];
        }
    }
    let mut s = 0.0;
    for a in acc {
        s += a;
    }
    for r in rest {
        s += r;
    }
    s
}

multiversion! {
    /// Every row of `dst` (rows × bias.len()) set to `bias`.
    pub fn fill_rows(dst: &mut [f32], bias: &[f32]) {
        for row in dst.chunks_exact_mut(bias.len()) {
            row.copy_from_slice(bias);
        }
    }
}

multiversion! {
    /// `dst += Σ_rows src` for a rows × dst.len() matrix `src` (a bias gradient), or `dst =` it.
    pub fn column_sums(src: &[f32], dst: &mut [f32], accumulate: bool) {
        if !accumulate {
            dst.fill(0.0);
        }
        for row in src.chunks_exact(dst.len()) {
            for (d, s) in dst.iter_mut().zip(row) {
                *d += s;
            }
        }
    }
}

multiversion! {
    /// post = a(pre).
    pub fn activate(a: Activation, pre: &[f32], post: &mut [f32]) {
        let pairs = post.iter_mut().zip(pre);
        match a {
            Activation::Relu => pairs.for_each(|(y, &x)| *y = x.max(0.0)),
            Activation::Tanh => pairs.for_each(|(y, &x)| *y = math::tanh(x)),
            Activation::Sigmoid => pairs.for_each(|(y, &x)| *y = 1.0 / (1.0 + math::exp(-x))),
            Activation::Softplus => pairs.for_each(|(y, &x)| {
                *y = x.max(0.0) + math::log1p_unit(math::exp(-x.abs()))
            }),
            Activation::Elu => pairs.for_each(|(y, &x)| {
                *y = if x > 0.0 { x } else { math::exp(x) - 1.0 }
            }),
            Activation::LeakyRelu => pairs.for_each(|(y, &x)| *y = if x > 0.0 { x } else { 0.01 * x }),
            Activation::Identity => post.copy_from_slice(pre),
            Activation::Gelu => pairs.for_each(|(y, &x)| *y = math::gelu_and_slope(x).0),
        }
    }
}

multiversion! {
    /// grad ← grad · a'(pre), from the activation's input `pre` and output `post`.
    pub fn activation_backward(a: Activation, pre: &[f32], post: &[f32], grad: &mut [f32]) {
        let it = grad.iter_mut().zip(pre.iter().zip(post));
        match a {
            Activation::Relu => it.for_each(|(g, (&x, _))| *g = if x > 0.0 { *g } else { 0.0 }),
            Activation::Tanh => it.for_each(|(g, (_, &y))| *g *= 1.0 - y * y),
            Activation::Sigmoid => it.for_each(|(g, (_, &y))| *g *= y * (1.0 - y)),
            // softplus' = σ(x) = 1 − e^(−softplus(x)).
            Activation::Softplus => it.for_each(|(g, (_, &y))| *g *= 1.0 - math::exp(-y)),
            Activation::Elu => it.for_each(|(g, (&x, &y))| *g *= if x > 0.0 { 1.0 } else { y + 1.0 }),
            Activation::LeakyRelu => it.for_each(|(g, (&x, _))| *g *= if x > 0.0 { 1.0 } else { 0.01 }),
            Activation::Identity => {}
            Activation::Gelu => it.for_each(|(g, (&x, _))| *g *= math::gelu_and_slope(x).1),
        }
    }
}

multiversion! {
    /// Bernoulli log-likelihood with logits: for each row r of `logits` (rows × d), against
    /// data row r mod n of `x`, `log_px[r] = Σ x·l − softplus(l)`. The logits are replaced by
    /// σ(l), which is what the gradient needs. `scratch` holds one row; `first_row` is the
    /// index of `logits`' first row in the whole minibatch (pieces of it run on threads).
    pub fn bernoulli_log_px(
        logits: &mut [f32],
        x: &[f32],
        log_px: &mut [f32],
        scratch: &mut [f32],
        first_row: usize,
    ) {
        let d = scratch.len();
        let n = x.len() / d;
        for (r, (row, out)) in logits.chunks_exact_mut(d).zip(log_px.iter_mut()).enumerate() {
            let xr = &x[((first_row + r) % n) * d..][..d];
            for ((l, t), &xv) in row.iter_mut().zip(scratch.iter_mut()).zip(xr) {
                let (softplus, sigmoid) = math::softplus_sigmoid(*l);
                *t = xv * *l - softplus;
                *l = sigmoid;
            }
            *out = lane_sum(scratch);
        }
    }
}

multiversion! {
    /// [`bernoulli_log_px`] for evaluation: the same sums, bit for bit, with the logits left
    /// as they are (no σ(l) computed or written back: a forward pass has no backward).
    pub fn bernoulli_log_px_forward(
        logits: &[f32],
        x: &[f32],
        log_px: &mut [f32],
        scratch: &mut [f32],
        first_row: usize,
    ) {
        let d = scratch.len();
        let n = x.len() / d;
        for (r, (row, out)) in logits.chunks_exact(d).zip(log_px.iter_mut()).enumerate() {
            let xr = &x[((first_row + r) % n) * d..][..d];
            for ((&l, t), &xv) in row.iter().zip(scratch.iter_mut()).zip(xr) {
                *t = xv * l - math::softplus(l);
            }
            *out = lane_sum(scratch);
        }
    }
}

multiversion! {
    /// The logits' gradient: row r of σ(l) (from [`bernoulli_log_px`]) becomes
    /// `c[r] · (x − σ(l))`, where c[r] = ∂loss/∂log_px[r]; `first_row` as above.
    pub fn bernoulli_backward(sigmoid: &mut [f32], x: &[f32], coef: &[f32], d: usize, first_row: usize) {
        let n = x.len() / d;
        for (r, (row, &c)) in sigmoid.chunks_exact_mut(d).zip(coef).enumerate() {
            let xr = &x[((first_row + r) % n) * d..][..d];
            for (s, &xv) in row.iter_mut().zip(xr) {
                *s = c * (xv - *s);
            }
        }
    }
}

multiversion! {
    /// Gaussian log-likelihood: `log_px[r] = −½ Σ ((x − m)² e^(−v) + v + ln 2π)` for means
    /// `mean` (rows × d) and per-dimension log-variances `logvar` (d).
    pub fn gaussian_log_px(mean: &[f32], x: &[f32], logvar: &[f32], log_px: &mut [f32], scratch: &mut [f32]) {
        let d = logvar.len();
        let n = x.len() / d;
        let ln_2pi = crate::model::density::LN_2PI as f32;
        for (r, (row, out)) in mean.chunks_exact(d).zip(log_px.iter_mut()).enumerate() {
            let xr = &x[(r % n) * d..][..d];
            for (((t, &m), &xv), &v) in scratch.iter_mut().zip(row).zip(xr).zip(logvar) {
                let e = xv - m;
                *t = -0.5 * (e * e * math::exp(-v) + v + ln_2pi);
            }
            *out = lane_sum(scratch);
        }
    }
}

multiversion! {
    /// Gaussian log-likelihood with a log-variance per element (`logvar`, rows × d, from a
    /// variance head): `log_px[r] = −½ Σ ((x − m)² e^(−v) + v + ln 2π)`.
    pub fn gaussian_rows_log_px(mean: &[f32], x: &[f32], logvar: &[f32], log_px: &mut [f32], scratch: &mut [f32]) {
        let d = scratch.len();
        let n = x.len() / d;
        let ln_2pi = crate::model::density::LN_2PI as f32;
        let rows = mean.chunks_exact(d).zip(logvar.chunks_exact(d)).zip(log_px.iter_mut());
        for (r, ((row, lv), out)) in rows.enumerate() {
            let xr = &x[(r % n) * d..][..d];
            for (((t, &m), &xv), &v) in scratch.iter_mut().zip(row).zip(xr).zip(lv) {
                let e = xv - m;
                *t = -0.5 * (e * e * math::exp(-v) + v + ln_2pi);
            }
            *out = lane_sum(scratch);
        }
    }
}

multiversion! {
    /// The gradients of [`gaussian_rows_log_px`]: row r of `mean` becomes c[r]·(x − m)e^(−v)
    /// and of `logvar` c[r]·(−½)(1 − (x − m)² e^(−v)), 0 where the head's raw output `raw`
    /// lay outside [−lim, lim] (the clamp passes no gradient there).
    pub fn gaussian_rows_backward(mean: &mut [f32], x: &[f32], logvar: &mut [f32], raw: &[f32], coef: &[f32], lim: f32) {
        let d = raw.len() / coef.len().max(1);
        let n = x.len() / d;
        let rows = mean.chunks_exact_mut(d).zip(logvar.chunks_exact_mut(d)).zip(raw.chunks_exact(d));
        for (r, (((row, lv), rw), &c)) in rows.zip(coef).enumerate() {
            let xr = &x[(r % n) * d..][..d];
            for (((m, v), &xv), &u) in row.iter_mut().zip(lv.iter_mut()).zip(xr).zip(rw) {
                let inv = math::exp(-*v);
                let e = xv - *m;
                let dv = c * -0.5 * (1.0 - e * e * inv);
                *v = if u < -lim || u > lim { 0.0 } else { dv };
                *m = c * e * inv;
            }
        }
    }
}

multiversion! {
    /// The Gaussian's gradients: row r of `mean` becomes ∂loss/∂mean = c[r]·(x − m)e^(−v), and
    /// `dlogvar` (d) is set to Σ_r c[r]·(−½)(1 − (x − m)² e^(−v)), the learned log-variances'
    /// gradient (a fixed variance's caller passes scratch space).
    pub fn gaussian_backward(mean: &mut [f32], x: &[f32], logvar: &[f32], coef: &[f32], dlogvar: &mut [f32]) {
        let d = logvar.len();
        let n = x.len() / d;
        dlogvar.fill(0.0);
        for (r, (row, &c)) in mean.chunks_exact_mut(d).zip(coef).enumerate() {
            let xr = &x[(r % n) * d..][..d];
            for (((m, &xv), &v), g) in row.iter_mut().zip(xr).zip(logvar).zip(dlogvar.iter_mut()) {
                let inv = math::exp(-v);
                let e = xv - *m;
                *g += c * -0.5 * (1.0 - e * e * inv);
                *m = c * e * inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_adds_everything_once() {
        for len in [0usize, 1, 15, 16, 17, 784] {
            let xs: Vec<f32> = (0..len).map(|i| i as f32).collect();
            assert_eq!(lane_sum(&xs), (len * len.saturating_sub(1) / 2) as f32);
        }
    }

    #[test]
    fn activations_and_their_derivatives_match_f64_finite_differences() {
        let xs: Vec<f32> = (0..400)
            .map(|i| -6.0 + 12.0 * i as f32 / 399.0 + 1e-3)
            .collect();
        for a in [
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softplus,
            Activation::Elu,
            Activation::LeakyRelu,
            Activation::Identity,
            Activation::Gelu,
        ] {
            let f = |x: f64| match a {
                Activation::Relu => x.max(0.0),
                Activation::Tanh => x.tanh(),
                Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                Activation::Softplus => x.exp().ln_1p(),
                Activation::Elu => {
                    if x > 0.0 {
                        x
                    } else {
                        x.exp() - 1.0
                    }
                }
                Activation::LeakyRelu => {
                    if x > 0.0 {
                        x
                    } else {
                        0.01 * x
                    }
                }
                Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())),
                Activation::Identity => x,
            };
            let mut post = vec![0.0; xs.len()];
            activate(a, &xs, &mut post);
            let mut grad = vec![1.0; xs.len()];
            activation_backward(a, &xs, &post, &mut grad);
            for ((&x, &y), &g) in xs.iter().zip(&post).zip(&grad) {
                let x = x as f64;
                assert!((y as f64 - f(x)).abs() < 1e-6, "{a:?}({x})");
                let h = 1e-6;
                let fd = (f(x + h) - f(x - h)) / (2.0 * h);
                assert!((g as f64 - fd).abs() < 1e-5, "{a:?}'({x}) = {g}, want {fd}");
            }
        }
    }
}
