//! Latent-space helpers for the figures: prior quantiles (the grid of the AEVB paper's
//! Figure 4) and the dimensions ordered by how much information they carry.

/// Φ, the standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Φ⁻¹ by bisection on Φ (accurate to ~1e-12 on (0, 1); figures need far less).
pub fn normal_quantile(p: f64) -> f64 {
    mixture_quantile(&[(1.0, 0.0, 1.0)], p)
}

/// The `p`-quantile of a one-dimensional mixture of normals (weight, mean, std) with
/// weights summing to one: the value whose CDF is `p`, found by bisection.
pub fn mixture_quantile(components: &[(f64, f64, f64)], p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let cdf = |x: f64| -> f64 {
        components
            .iter()
            .map(|&(w, m, s)| w * normal_cdf((x - m) / s.max(1e-30)))
            .sum()
    };
    let spread = components
        .iter()
        .map(|&(_, m, s)| m.abs() + 40.0 * s)
        .fold(1.0, f64::max);
    let (mut lo, mut hi) = (-spread, spread);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean over examples of each latent dimension's KL(q(z_j|x) || N(0, 1)), from row-major
/// posterior means and log-variances [N, Z]: which dimensions the model uses.
pub fn kl_per_dimension(means: &[f32], logvars: &[f32], latent: usize) -> Vec<f64> {
    let n = (means.len() / latent.max(1)).max(1) as f64;
    let mut kl = vec![0.0; latent];
    for (i, (&m, &lv)) in means.iter().zip(logvars).enumerate() {
        let (m, lv) = (m as f64, lv as f64);
        kl[i % latent] += 0.5 * (m * m + lv.exp() - 1.0 - lv);
    }
    kl.iter().map(|k| k / n).collect()
}

/// Dimension indices ordered by `kl`, largest first.
pub fn by_kl(kl: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..kl.len()).collect();
    order.sort_by(|&a, &b| kl[b].total_cmp(&kl[a]));
    order
}

/// The two latent dimensions with the most KL (the only two for a 2-D latent space).
pub fn top_two(means: &[f32], logvars: &[f32], latent: usize) -> (usize, usize) {
    let order = by_kl(&kl_per_dimension(means, logvars, latent));
    (order[0], *order.get(1).unwrap_or(&order[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_tabulated_values() {
        // Φ⁻¹(0.975) = 1.959963984540054, Φ⁻¹(0.5) = 0, Φ⁻¹(0.1) = −1.2815515655446004.
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-9);
        assert!(normal_quantile(0.5).abs() < 1e-9);
        assert!((normal_quantile(0.1) + 1.2815515655446004).abs() < 1e-9);
        assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-12);
    }

    #[test]
    fn mixture_quantile_inverts_the_mixture_cdf() {
        let mix = [(0.3, -2.0, 0.5), (0.7, 1.0, 2.0)];
        for p in [0.01, 0.2, 0.5, 0.9, 0.999] {
            let x = mixture_quantile(&mix, p);
            let cdf: f64 = mix
                .iter()
                .map(|&(w, m, s)| w * normal_cdf((x - m) / s))
                .sum();
            assert!((cdf - p).abs() < 1e-9, "p = {p}: CDF({x}) = {cdf}");
        }
        // A shifted, scaled normal: μ + σ Φ⁻¹(p).
        let x = mixture_quantile(&[(1.0, 3.0, 2.0)], 0.975);
        assert!((x - (3.0 + 2.0 * 1.959963984540054)).abs() < 1e-8);
    }

    #[test]
    fn kl_per_dimension_is_the_closed_form_and_orders_dimensions() {
        // Two examples, two dimensions: dim 0 is N(0, 1) (KL 0), dim 1 is N(±1, e^{-1}).
        let means = [0.0, 1.0, 0.0, -1.0];
        let logvars = [0.0, -1.0, 0.0, -1.0];
        let kl = kl_per_dimension(&means, &logvars, 2);
        assert!(kl[0].abs() < 1e-12);
        let expected = 0.5 * (1.0 + (-1f64).exp() - 1.0 + 1.0);
        assert!((kl[1] - expected).abs() < 1e-6);
        assert_eq!(by_kl(&kl), vec![1, 0]);
    }
}
