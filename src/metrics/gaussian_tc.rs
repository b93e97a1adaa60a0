//! Gaussian total correlation of the aggregate posterior (disentanglement_lib's unsupervised
//! `gaussian_total_correlation`): with Σ the sample covariance (n − 1) of the latent means
//! over the evaluation set, TC = ½ (Σ_j ln Σ_jj − ln det Σ), the KL from the Gaussian with
//! covariance Σ to the product of its marginals; 0 when the dimensions are uncorrelated.
//! It is taken over the active units alone (the dimensions whose posterior mean varies by
//! more than `eval.active_unit_threshold`): a collapsed dimension carries no information,
//! and its near-zero variance would otherwise dominate ln det Σ, making the most collapsed
//! model look the most entangled. Below two active units there is no correlation to
//! measure: None.

use super::Codes;

/// The sample covariance matrix (n − 1) of the codes' dimensions listed in `dims`.
fn covariance(codes: &Codes<'_>, dims: &[usize]) -> Vec<f64> {
    let n = codes.rows as f64;
    let cols: Vec<Vec<f64>> = dims.iter().map(|&j| codes.column(j)).collect();
    let means: Vec<f64> = cols.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let k = dims.len();
    let mut cov = vec![0.0; k * k];
    for a in 0..k {
        for b in a..k {
            let s: f64 = cols[a]
                .iter()
                .zip(&cols[b])
                .map(|(x, y)| (x - means[a]) * (y - means[b]))
                .sum();
            cov[a * k + b] = s / (n - 1.0);
            cov[b * k + a] = cov[a * k + b];
        }
    }
    cov
}

/// ln det of a symmetric positive definite k × k matrix by Cholesky; None if it is not.
pub fn ln_det(m: &[f64], k: usize) -> Option<f64> {
    let mut l = vec![0.0; k * k];
    let mut ln_det = 0.0;
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| l[i * k + p] * l[j * k + p]).sum();
            if i == j {
                let d = m[i * k + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * k + i] = d.sqrt();
                ln_det += d.ln();
            } else {
                l[i * k + j] = (m[i * k + j] - s) / l[j * k + j];
            }
        }
    }
    Some(ln_det)
}

/// ½ (Σ ln Σ_jj − ln det Σ) for a k × k covariance.
pub fn total_correlation_of(cov: &[f64], k: usize) -> Option<f64> {
    let diag: f64 = (0..k).map(|j| cov[j * k + j].ln()).sum();
    Some(0.5 * (diag - ln_det(cov, k)?))
}

/// The Gaussian total correlation (nats) of the codes' dimensions `active`; None with fewer
/// than two of them, fewer than two rows, or a singular covariance.
pub fn gaussian_total_correlation(codes: &Codes<'_>, active: &[usize]) -> Option<f64> {
    if codes.rows < 2 || active.len() < 2 {
        return None;
    }
    total_correlation_of(&covariance(codes, active), active.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn two_correlated_dimensions_have_the_closed_form() {
        // Σ = [[1, ρ], [ρ, 1]]: TC = −½ ln(1 − ρ²).
        for rho in [0.0f64, 0.3, 0.9] {
            let tc = total_correlation_of(&[1.0, rho, rho, 1.0], 2).unwrap();
            assert!((tc + 0.5 * (1.0 - rho * rho).ln()).abs() < 1e-14, "{rho}");
        }
        // Scaling a dimension changes nothing.
        let tc = total_correlation_of(&[4.0, 0.6, 0.6, 1.0], 2).unwrap();
        assert!((tc + 0.5 * (1.0 - 0.09f64).ln()).abs() < 1e-14);
        // ln det against a 3 × 3 determinant by hand: [[2,1,0],[1,2,1],[0,1,2]] has det 4.
        let m = [2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0];
        assert!((ln_det(&m, 3).unwrap() - 4f64.ln()).abs() < 1e-14);
        assert_eq!(ln_det(&[1.0, 2.0, 2.0, 1.0], 2), None);
    }

    #[test]
    fn codes_independent_correlated_and_constant() {
        let mut rng = StdRng::seed_from_u64(5);
        let n = 20_000;
        let mut values = Vec::new();
        for _ in 0..n {
            let (a, b): (f64, f64) = (
                StandardNormal.sample(&mut rng),
                StandardNormal.sample(&mut rng),
            );
            // Independent, then correlated ρ = 0.8, then a constant dimension.
            values.extend([a, b, a, 0.8 * a + 0.6 * b, 7.0]);
        }
        let codes = |dims: &[usize]| -> Vec<f64> {
            values
                .chunks(5)
                .flat_map(|r| dims.iter().map(|&j| r[j]).collect::<Vec<_>>())
                .collect()
        };
        let independent = codes(&[0, 1]);
        let codes_of = |values, dims| Codes {
            values,
            rows: n,
            dims,
        };
        let tc = gaussian_total_correlation(&codes_of(&independent, 2), &[0, 1]).unwrap();
        assert!(tc.abs() < 1e-3, "{tc}");
        let correlated = codes(&[2, 3, 4]);
        // Dimension 2 of these is constant (inactive): left out, it changes nothing.
        let tc = gaussian_total_correlation(&codes_of(&correlated, 3), &[0, 1]).unwrap();
        let exact = -0.5 * (1.0 - 0.64f64).ln();
        assert!((tc - exact).abs() < 0.02, "{tc} vs {exact}");
        // One active unit, or none: nothing to measure.
        assert_eq!(
            gaussian_total_correlation(&codes_of(&correlated, 3), &[1]),
            None
        );
        assert_eq!(
            gaussian_total_correlation(&codes_of(&correlated, 3), &[]),
            None
        );
    }
}
