//! Mutual Information Gap (Chen et al. 2018), as disentanglement_lib computes it: each
//! latent dimension's values over the evaluation set are cut into 20 equal-width histogram
//! bins; for each factor k, with I(z_j; v_k) the discrete mutual information in nats and
//! H(v_k) the factor's entropy, MIG = mean over factors of
//! (largest I(z_j; v_k) − second largest) / H(v_k). A factor that takes one value has no
//! entropy and is left out.

use super::discrete::{entropy, histogram_bins, mutual_information};
use super::{Codes, FactorClasses};

/// disentanglement_lib's `discretizer_fn` bins.
pub const BINS: usize = 20;

/// The gap per factor (None where the factor is constant) and their mean.
pub struct Mig {
    pub per_factor: Vec<Option<f64>>,
    pub score: f64,
}

pub fn mig(codes: &Codes<'_>, factors: &FactorClasses<'_>) -> Mig {
    assert_eq!(codes.rows, factors.rows, "one code per example");
    let binned: Vec<Vec<usize>> = (0..codes.dims)
        .map(|j| histogram_bins(&codes.column(j), BINS))
        .collect();
    let per_factor: Vec<Option<f64>> = (0..factors.count)
        .map(|k| {
            let v = factors.column(k);
            let h = entropy(&v);
            if h <= 0.0 {
                return None;
            }
            let mut mi: Vec<f64> = binned.iter().map(|z| mutual_information(z, &v)).collect();
            mi.sort_by(|a, b| b.total_cmp(a));
            let second = mi.get(1).copied().unwrap_or(0.0);
            Some((mi.first().copied().unwrap_or(0.0) - second) / h)
        })
        .collect();
    let gaps: Vec<f64> = per_factor.iter().flatten().copied().collect();
    let score = if gaps.is_empty() {
        f64::NAN
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    Mig { per_factor, score }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Every combination of two factors of 8 and 5 values, 20 times over, with a constant
    /// third factor.
    fn grid() -> (Vec<u32>, usize) {
        let mut classes = Vec::new();
        for _ in 0..20 {
            for a in 0..8u32 {
                for b in 0..5u32 {
                    classes.extend([a, b, 0]);
                }
            }
        }
        let rows = classes.len() / 3;
        (classes, rows)
    }

    fn score(values: &[f64], dims: usize, classes: &[u32], rows: usize) -> Mig {
        mig(
            &Codes { values, rows, dims },
            &FactorClasses {
                classes,
                rows,
                count: 3,
            },
        )
    }

    #[test]
    fn the_factors_themselves_score_one_and_the_constant_factor_is_left_out() {
        let (classes, rows) = grid();
        // z = (a, b), and a monotone transform of them: the same bins' information.
        let codes: Vec<f64> = classes
            .chunks(3)
            .flat_map(|c| [c[0] as f64, c[1] as f64])
            .collect();
        let m = score(&codes, 2, &classes, rows);
        assert!((m.score - 1.0).abs() < 1e-12, "{}", m.score);
        assert_eq!(m.per_factor[2], None);
        // (Monotone, and mild enough that no two values share one of the 20 bins: a steep
        // warp such as exp would crowd the small values into one bin and lose information.)
        let warped: Vec<f64> = codes.iter().map(|v| v + 0.05 * v * v - 3.0).collect();
        assert!((score(&warped, 2, &classes, rows).score - 1.0).abs() < 1e-12);
        // A constant extra latent changes nothing.
        let padded: Vec<f64> = codes.chunks(2).flat_map(|c| [c[0], 4.2, c[1]]).collect();
        assert!((score(&padded, 3, &classes, rows).score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_factor_copied_into_two_latents_has_no_gap() {
        let (classes, rows) = grid();
        let codes: Vec<f64> = classes
            .chunks(3)
            .flat_map(|c| [c[0] as f64, c[0] as f64 * 2.0 + 1.0, c[1] as f64])
            .collect();
        let m = score(&codes, 3, &classes, rows);
        assert!(
            m.per_factor[0].unwrap().abs() < 1e-12,
            "{:?}",
            m.per_factor[0]
        );
        assert!((m.per_factor[1].unwrap() - 1.0).abs() < 1e-12);
        assert!((m.score - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_random_rotation_of_the_factors_scores_low() {
        let (classes, rows) = grid();
        let mut rng = StdRng::seed_from_u64(3);
        let angle: f64 = std::f64::consts::FRAC_PI_4 + rng.random_range(-0.1..0.1);
        let (s, c) = angle.sin_cos();
        let codes: Vec<f64> = classes
            .chunks(3)
            .flat_map(|f| {
                let (a, b) = (f[0] as f64 / 7.0, f[1] as f64 / 4.0);
                [c * a - s * b, s * a + c * b]
            })
            .collect();
        let m = score(&codes, 2, &classes, rows);
        assert!(m.score < 0.3, "{}", m.score);
    }
}
