//! Means with their standard errors, and the running statistics of importance weights.

/// A mean over examples with its standard error: the sample standard deviation (n − 1 in
/// the denominator, pandas' and polars' default) divided by √n.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    /// NaN with fewer than two values.
    pub se: f64,
    pub n: usize,
}

impl Estimate {
    /// The mean and standard error of `values`, summed in order (the same bits every time).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                se: f64::NAN,
                n,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let se = if n < 2 {
            f64::NAN
        } else {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt()
        };
        Self { mean, se, n }
    }

    /// The standard error where there is one (two values or more).
    pub fn se(&self) -> Option<f64> {
        self.se.is_finite().then_some(self.se)
    }
}

/// One example's log-weights log w_k = log p(x, z_k) − log q(z_k|x), taken in sample order:
/// a running log-sum-exp in f64 for log p(x) ≈ log (1/K) Σ w_k, the effective sample size
/// (Σ w)² / Σ w² of the normalised weights, and the standard deviation of the log-weights
/// (Welford), the two diagnostics that say when K is too small.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogWeights {
    max: f64,
    /// Σ exp(lw − max) and Σ exp(2 (lw − max)).
    sum: f64,
    sum_sq: f64,
    count: usize,
    mean: f64,
    m2: f64,
}

impl Default for LogWeights {
    fn default() -> Self {
        Self {
            max: f64::NEG_INFINITY,
            sum: 0.0,
            sum_sq: 0.0,
            count: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }
}

impl LogWeights {
    pub fn push(&mut self, lw: f64) {
        if lw > self.max {
            let scale = (self.max - lw).exp();
            self.sum = self.sum * scale + 1.0;
            self.sum_sq = self.sum_sq * scale * scale + 1.0;
            self.max = lw;
        } else {
            let w = (lw - self.max).exp();
            self.sum += w;
            self.sum_sq += w * w;
        }
        self.count += 1;
        let delta = lw - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (lw - self.mean);
    }

    /// The running sums, to save: [max, Σ w, Σ w², count, mean, M2] (a count is exact in
    /// f64 up to 2⁵³).
    pub fn parts(&self) -> [f64; 6] {
        [
            self.max,
            self.sum,
            self.sum_sq,
            self.count as f64,
            self.mean,
            self.m2,
        ]
    }

    /// The sums [`Self::parts`] saved.
    pub fn from_parts(p: [f64; 6]) -> Self {
        Self {
            max: p[0],
            sum: p[1],
            sum_sq: p[2],
            count: p[3] as usize,
            mean: p[4],
            m2: p[5],
        }
    }

    /// log (1/K) Σ w_k.
    pub fn log_mean(&self) -> f64 {
        self.max + self.sum.ln() - (self.count as f64).ln()
    }

    /// (Σ w)² / Σ w²: between 1 (one weight dominates) and K (all equal).
    pub fn ess(&self) -> f64 {
        self.sum * self.sum / self.sum_sq
    }

    /// The standard deviation of the log-weights (n − 1), 0 for one weight.
    pub fn sd(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_matches_the_two_pass_formula() {
        let v = [1.0, 2.0, 4.0, 8.0];
        let e = Estimate::of(&v);
        assert_eq!(e.mean, 3.75);
        // sd² = ((2.75² + 1.75² + 0.25² + 4.25²) / 3) = 29.0 / 3 · … computed by hand below.
        let ss: f64 = 2.75f64.powi(2) + 1.75f64.powi(2) + 0.25f64.powi(2) + 4.25f64.powi(2);
        assert!((e.se - (ss / 3.0).sqrt() / 2.0).abs() < 1e-15);
        assert!(Estimate::of(&[1.0]).se.is_nan());
        assert!(Estimate::of(&[]).mean.is_nan());
    }

    #[test]
    fn log_weights_agree_with_direct_sums_in_any_order_of_magnitude() {
        let lws = [-300.0, -301.5, -299.2, -310.0, -298.9];
        let mut acc = LogWeights::default();
        for &lw in &lws {
            acc.push(lw);
        }
        // Direct, shifted by a constant that keeps exp in range.
        let w: Vec<f64> = lws.iter().map(|lw| (lw + 300.0f64).exp()).collect();
        let (s, s2): (f64, f64) = (w.iter().sum(), w.iter().map(|w| w * w).sum());
        assert!((acc.log_mean() - ((s / 5.0).ln() - 300.0)).abs() < 1e-12);
        assert!((acc.ess() - s * s / s2).abs() < 1e-12);
        let mean = lws.iter().sum::<f64>() / 5.0;
        let sd = (lws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!((acc.sd() - sd).abs() < 1e-12);
        // Equal weights: ESS = K.
        let mut flat = LogWeights::default();
        (0..7).for_each(|_| flat.push(-5.0));
        assert!((flat.ess() - 7.0).abs() < 1e-12);
        assert_eq!(flat.sd(), 0.0);
    }
}
