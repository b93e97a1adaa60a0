//! DCI: disentanglement, completeness and informativeness (Eastwood & Williams 2018).
//!
//! The regressor that gives the importances is ridge regression (λ = 10⁻³ per example, in
//! closed form) of each standardised factor's class index on the standardised latents,
//! fitted on the first half of the evaluation set; R_jk = |w_jk|, the absolute coefficient of
//! latent j for factor k (Eastwood & Williams use a lasso or random forests;
//! disentanglement_lib gradient-boosted trees: the numbers are comparable in kind, not
//! digit for digit). With P_jk = R_jk / Σ_k R_jk and P̃_jk = R_jk / Σ_j R_jk:
//!
//! - disentanglement = Σ_j ρ_j (1 − H_K(P_j·)), ρ_j = Σ_k R_jk / Σ R, entropy in base K
//!   (the number of factors that vary): 1 when each latent matters for one factor;
//! - completeness = Σ_k ρ̃_k (1 − H_D(P̃_·k)), ρ̃_k = Σ_j R_jk / Σ R, base D (latents):
//!   1 when each factor is captured by one latent;
//! - informativeness = the mean over factors of the regression's R² on the second half,
//!   floored at 0.
//!
//! Latents that do not vary get zero importance; factors that do not vary are left out.

use super::{Codes, FactorClasses};

/// Ridge penalty per training example, on standardised variables.
pub const RIDGE: f64 = 1e-3;

pub struct Dci {
    /// R: [latents × factors that vary].
    pub importance: Vec<Vec<f64>>,
    pub disentanglement: f64,
    pub completeness: f64,
    pub informativeness: f64,
}

/// Column `v` standardised with the mean and sd of its first `n` values (sd 0: all zeros).
fn standardise(v: &[f64], n: usize) -> (Vec<f64>, bool) {
    let m = v[..n].iter().sum::<f64>() / n as f64;
    let var = v[..n].iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
    if var <= 1e-24 {
        return (vec![0.0; v.len()], false);
    }
    let sd = var.sqrt();
    (v.iter().map(|x| (x - m) / sd).collect(), true)
}

/// Solves the symmetric positive definite system a·x = b (k × k) by Cholesky.
fn solve_spd(a: &[f64], b: &[f64], k: usize) -> Vec<f64> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| l[i * k + p] * l[j * k + p]).sum();
            l[i * k + j] = if i == j {
                (a[i * k + i] - s).max(1e-300).sqrt()
            } else {
                (a[i * k + j] - s) / l[j * k + j]
            };
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        let s: f64 = (0..i).map(|p| l[i * k + p] * y[p]).sum();
        y[i] = (b[i] - s) / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|p| l[p * k + i] * x[p]).sum();
        x[i] = (y[i] - s) / l[i * k + i];
    }
    x
}

/// 1 − the entropy of the normalised weights `w` in base `base` (1 for all-zero weights).
fn one_minus_entropy(w: &[f64], base: usize) -> f64 {
    let total: f64 = w.iter().sum();
    if total <= 0.0 || base < 2 {
        return 1.0;
    }
    let h: f64 = w
        .iter()
        .map(|&x| x / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    1.0 - h / (base as f64).ln()
}

/// DCI of the codes against the factors; None with fewer than 4 examples or no factor that
/// varies over the training half.
pub fn dci(codes: &Codes<'_>, factors: &FactorClasses<'_>) -> Option<Dci> {
    assert_eq!(codes.rows, factors.rows, "one code per example");
    let (rows, d) = (codes.rows, codes.dims);
    if rows < 4 {
        return None;
    }
    let n = rows / 2;
    let latents: Vec<Vec<f64>> = (0..d).map(|j| standardise(&codes.column(j), n).0).collect();
    let targets: Vec<Vec<f64>> = (0..factors.count)
        .map(|k| {
            let v: Vec<f64> = factors.column(k).into_iter().map(|c| c as f64).collect();
            standardise(&v, n)
        })
        .filter(|(_, varies)| *varies)
        .map(|(v, _)| v)
        .collect();
    if targets.is_empty() {
        return None;
    }
    // XᵀX + λ n I over the training half, shared by every factor.
    let mut gram = vec![0.0; d * d];
    for a in 0..d {
        for b in a..d {
            let s: f64 = (0..n).map(|i| latents[a][i] * latents[b][i]).sum();
            gram[a * d + b] = s;
            gram[b * d + a] = s;
        }
        gram[a * d + a] += RIDGE * n as f64;
    }
    let mut importance = vec![vec![0.0; targets.len()]; d];
    let mut r2 = Vec::new();
    for (k, y) in targets.iter().enumerate() {
        let xty: Vec<f64> = (0..d)
            .map(|a| (0..n).map(|i| latents[a][i] * y[i]).sum())
            .collect();
        let w = solve_spd(&gram, &xty, d);
        for (row, wj) in importance.iter_mut().zip(&w) {
            row[k] = wj.abs();
        }
        let test = n..rows;
        let mean = y[test.clone()].iter().sum::<f64>() / test.len() as f64;
        let (mut sse, mut sst) = (0.0, 0.0);
        for i in test {
            let pred: f64 = (0..d).map(|a| w[a] * latents[a][i]).sum();
            sse += (y[i] - pred).powi(2);
            sst += (y[i] - mean).powi(2);
        }
        r2.push(if sst > 0.0 {
            (1.0 - sse / sst).max(0.0)
        } else {
            0.0
        });
    }
    let total: f64 = importance.iter().flatten().sum();
    let kf = targets.len();
    let (mut dis, mut comp) = (0.0, 0.0);
    if total > 0.0 {
        for row in &importance {
            dis += row.iter().sum::<f64>() / total * one_minus_entropy(row, kf);
        }
        for k in 0..kf {
            let column: Vec<f64> = importance.iter().map(|row| row[k]).collect();
            comp += column.iter().sum::<f64>() / total * one_minus_entropy(&column, d);
        }
    }
    Some(Dci {
        importance,
        disentanglement: dis,
        completeness: comp,
        informativeness: r2.iter().sum::<f64>() / r2.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two factors of 8 and 5 values, every combination 4 times, interleaved so that both
    /// halves hold every combination; a constant third factor.
    fn grid() -> (Vec<u32>, usize) {
        let mut classes = Vec::new();
        for _ in 0..4 {
            for a in 0..8u32 {
                for b in 0..5u32 {
                    classes.extend([a, b, 0]);
                }
            }
        }
        let rows = classes.len() / 3;
        (classes, rows)
    }

    fn score(f: impl Fn(f64, f64) -> Vec<f64>) -> Dci {
        let (classes, rows) = grid();
        let values: Vec<f64> = classes
            .chunks(3)
            .flat_map(|c| f(c[0] as f64, c[1] as f64))
            .collect();
        let dims = values.len() / rows;
        dci(
            &Codes {
                values: &values,
                rows,
                dims,
            },
            &FactorClasses {
                classes: &classes,
                rows,
                count: 3,
            },
        )
        .expect("factors vary")
    }

    #[test]
    fn the_factors_themselves_score_at_the_top_and_a_constant_latent_adds_nothing() {
        for d in [
            score(|a, b| vec![a, b]),
            score(|a, b| vec![2.0 * b - 1.0, 4.2, -a]),
        ] {
            assert!(d.disentanglement > 0.999, "{}", d.disentanglement);
            assert!(d.completeness > 0.999, "{}", d.completeness);
            assert!(d.informativeness > 0.999, "{}", d.informativeness);
        }
        let d = score(|a, b| vec![a, 4.2, b]);
        assert_eq!(d.importance[1], vec![0.0, 0.0]);
    }

    #[test]
    fn a_rotation_is_not_disentangled_and_a_copy_is_not_complete() {
        // 45° between the standardised factors: every latent matters equally for both.
        let (ka, kb) = (1.0 / 63f64.sqrt(), 1.0 / 24f64.sqrt());
        let d = score(|a, b| vec![ka * a + kb * b, ka * a - kb * b]);
        assert!(d.disentanglement < 0.01, "{}", d.disentanglement);
        assert!(d.completeness < 0.01, "{}", d.completeness);
        assert!(
            d.informativeness > 0.999,
            "still informative: {}",
            d.informativeness
        );
        // Factor a copied into two latents: each latent still serves one factor, but a's
        // importance is split between two of the three latents.
        let d = score(|a, b| vec![a, a, b]);
        assert!(d.disentanglement > 0.999, "{}", d.disentanglement);
        let split = 1.0 - 2f64.ln() / 3f64.ln();
        assert!(
            d.completeness < 1.0 - 0.3 * (1.0 - split),
            "{}",
            d.completeness
        );
    }
}
