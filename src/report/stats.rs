//! Intervals for `report`: Student t confidence intervals over seeds, and paired
//! differences between configurations that share seeds.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let t = x + 7.5;
        let a = G[0] + (1..9).map(|i| G[i] / (x + i as f64)).sum::<f64>();
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom: the density integrated from 0
/// by Simpson's rule in the variable u = atan(x / √df), where it is smooth and bounded.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    // With x = √ν tan u: f(x) dx = c · cos(u)^(ν−1) du, c = Γ((ν+1)/2) / (√π Γ(ν/2)).
    let c = (ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0)).exp() / std::f64::consts::PI.sqrt();
    let end = (t.abs() / df.sqrt()).atan();
    let steps = 2000;
    let h = end / steps as f64;
    let f = |u: f64| u.cos().powf(df - 1.0);
    let mut sum = f(0.0) + f(end);
    for i in 1..steps {
        sum += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    let half = c * sum * h / 3.0;
    0.5 + half.copysign(t)
}

/// The two-sided 97.5% point of Student's t (the 95% interval's multiplier), by bisection.
pub fn t_975(df: usize) -> f64 {
    let df = df.max(1) as f64;
    let (mut lo, mut hi) = (0.0, 100.0);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < 0.975 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A mean with its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Interval {
    /// Student t over `values` (independent seeds); `None` with fewer than two.
    pub fn over(values: &[f64]) -> Option<Self> {
        let e = crate::eval::Estimate::of(values);
        let half = t_975(e.n.checked_sub(1)?) * e.se()?;
        Some(Self {
            mean: e.mean,
            lo: e.mean - half,
            hi: e.mean + half,
            n: e.n,
        })
    }

    pub fn excludes(&self, v: f64) -> bool {
        v < self.lo || v > self.hi
    }

    pub fn half_width(&self) -> f64 {
        0.5 * (self.hi - self.lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_published_table() {
        // Student t, two-sided 95% (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
        let table = [
            (1, 12.706),
            (2, 4.303),
            (3, 3.182),
            (4, 2.776),
            (5, 2.571),
            (9, 2.262),
            (19, 2.093),
            (29, 2.045),
            (100, 1.984),
        ];
        for (df, t) in table {
            assert!(
                (t_975(df) - t).abs() < 1e-3,
                "df {df}: {} vs {t}",
                t_975(df)
            );
        }
        // And the normal limit.
        assert!((t_975(100_000) - 1.959_964).abs() < 1e-4);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        for n in 1..15u32 {
            let f: f64 = (1..n).map(f64::from).product();
            assert!((ln_gamma(n as f64) - f.ln()).abs() < 1e-10, "{n}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn interval_of_three_values() {
        let i = Interval::over(&[1.0, 2.0, 3.0]).unwrap();
        // sd 1, se 1/√3, t(2) = 4.303.
        assert!((i.half_width() - 4.303 / 3f64.sqrt()).abs() < 1e-3);
        assert!(Interval::over(&[1.0]).is_none());
    }
}
