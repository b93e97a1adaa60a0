//! SAP, the Separated Attribute Predictability score (Kumar et al. 2018), as
//! disentanglement_lib computes it for factors it treats as continuous: for latent j and
//! factor k, the score S_jk is the R² of a one-variable linear regression of the factor's
//! class index on the latent, cov(z_j, v_k)² / (var z_j · var v_k) (0 for a latent that does
//! not vary: var < 10⁻¹²); SAP = the mean over factors that vary of (largest S_jk − second
//! largest). Computed on the whole evaluation set (disentanglement_lib's continuous branch
//! fits on its training points only; there is nothing to fit beyond the moments).

use super::{Codes, FactorClasses};

/// The score matrix [latents × factors] (None for a constant factor) and SAP.
pub struct Sap {
    pub scores: Vec<Vec<Option<f64>>>,
    pub score: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Sample covariance (n − 1) of two equally long columns.
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    s / (a.len() as f64 - 1.0).max(1.0)
}

pub fn sap(codes: &Codes<'_>, factors: &FactorClasses<'_>) -> Sap {
    assert_eq!(codes.rows, factors.rows, "one code per example");
    let latents: Vec<Vec<f64>> = (0..codes.dims).map(|j| codes.column(j)).collect();
    let factor_values: Vec<Vec<f64>> = (0..factors.count)
        .map(|k| factors.column(k).into_iter().map(|c| c as f64).collect())
        .collect();
    let scores: Vec<Vec<Option<f64>>> = latents
        .iter()
        .map(|z| {
            let var_z = cov(z, z);
            factor_values
                .iter()
                .map(|v| {
                    let var_v = cov(v, v);
                    if var_v <= 0.0 {
                        None
                    } else if var_z > 1e-12 {
                        Some(cov(z, v).powi(2) / (var_z * var_v))
                    } else {
                        Some(0.0)
                    }
                })
                .collect()
        })
        .collect();
    let gaps: Vec<f64> = (0..factors.count)
        .filter_map(|k| {
            let mut column: Vec<f64> = scores.iter().map(|row| row[k]).collect::<Option<_>>()?;
            column.sort_by(|a, b| b.total_cmp(a));
            Some(column.first().copied().unwrap_or(0.0) - column.get(1).copied().unwrap_or(0.0))
        })
        .collect();
    let score = if gaps.is_empty() {
        f64::NAN
    } else {
        mean(&gaps)
    };
    Sap { scores, score }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of two factors of 8 and 5 values, with a constant third factor.
    fn grid() -> (Vec<u32>, usize) {
        let mut classes = Vec::new();
        for a in 0..8u32 {
            for b in 0..5u32 {
                classes.extend([a, b, 0]);
            }
        }
        let rows = classes.len() / 3;
        (classes, rows)
    }

    fn score(values: &[f64], dims: usize) -> Sap {
        let (classes, rows) = grid();
        sap(
            &Codes { values, rows, dims },
            &FactorClasses {
                classes: &classes,
                rows,
                count: 3,
            },
        )
    }

    fn codes(f: impl Fn(f64, f64) -> Vec<f64>) -> Vec<f64> {
        grid()
            .0
            .chunks(3)
            .flat_map(|c| f(c[0] as f64, c[1] as f64))
            .collect()
    }

    #[test]
    fn the_factors_themselves_score_one_and_a_constant_latent_adds_nothing() {
        // Independent factors: each latent explains its own factor fully and the other not
        // at all; affine maps of them too.
        let s = score(&codes(|a, b| vec![a, b]), 2);
        assert!((s.score - 1.0).abs() < 1e-12, "{}", s.score);
        assert!(s.scores[0][2].is_none(), "the constant factor is left out");
        let s = score(&codes(|a, b| vec![3.0 - 2.0 * a, 0.5 * b + 7.0, 4.2]), 3);
        assert!((s.score - 1.0).abs() < 1e-12, "{}", s.score);
        assert_eq!(s.scores[2][0], Some(0.0));
    }

    #[test]
    fn a_factor_copied_into_two_latents_and_a_rotation_score_low() {
        // The copy ties the two best latents of factor a: its gap is 0.
        let s = score(&codes(|a, b| vec![a, 2.0 * a + 1.0, b]), 3);
        assert!((s.score - 0.5).abs() < 1e-12, "{}", s.score);
        // 45° between the standardised factors: each latent explains half of each.
        let (sa, sb) = (8f64 * 8.0 - 1.0, 5f64 * 5.0 - 1.0); // 12·variance of each factor
        let (ka, kb) = (1.0 / sa.sqrt(), 1.0 / sb.sqrt());
        let s = score(&codes(|a, b| vec![ka * a + kb * b, ka * a - kb * b]), 2);
        assert!(s.score < 1e-9, "{}", s.score);
    }
}
