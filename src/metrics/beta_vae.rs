//! The β-VAE score (Higgins et al. 2017) with disentanglement_lib's parameters: a point is
//! made by choosing a factor k uniformly (among those that vary), drawing 64 pairs of
//! examples that share k's value ([`super::fixed_factor`]), and averaging |z₁ − z₂| over
//! the pairs per latent; a linear classifier (multinomial logistic regression, scikit-learn's
//! defaults: [`super::logistic`]) learns k from 10,000 such points and is scored on 5,000
//! more. The score is that held-out accuracy. A latent that copies another changes nothing
//! (the classifier reads either); one that does not vary is 0 in every point.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixed_factor::{FactorGroups, SEED};
use super::logistic::Logistic;
use super::{Codes, FactorClasses};

pub const BATCH: usize = 64;
pub const TRAIN_POINTS: usize = 10_000;
pub const EVAL_POINTS: usize = 5_000;

pub struct BetaVae {
    pub train_accuracy: f64,
    pub eval_accuracy: f64,
}

/// None when fewer than two factors vary (a classifier has nothing to choose between).
pub fn beta_vae(codes: &Codes<'_>, factors: &FactorClasses<'_>) -> Option<BetaVae> {
    beta_vae_with(codes, factors, TRAIN_POINTS, EVAL_POINTS)
}

/// [`beta_vae`] with other point counts (tests).
pub fn beta_vae_with(
    codes: &Codes<'_>,
    factors: &FactorClasses<'_>,
    train_points: usize,
    eval_points: usize,
) -> Option<BetaVae> {
    assert_eq!(codes.rows, factors.rows, "one code per example");
    let groups = FactorGroups::new(factors);
    let varying = groups.varying();
    if varying.len() < 2 || codes.dims == 0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut points = |n: usize| {
        let mut x = Vec::with_capacity(n * codes.dims);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let k = varying[rand::Rng::random_range(&mut rng, 0..varying.len())];
            let mut feature = vec![0.0; codes.dims];
            for _ in 0..BATCH {
                let a = groups.any_row(&mut rng);
                let b = groups.partner(k, a, &mut rng);
                let (za, zb) = (row(codes, a), row(codes, b));
                for (f, (u, v)) in feature.iter_mut().zip(za.iter().zip(zb)) {
                    *f += (u - v).abs() / BATCH as f64;
                }
            }
            x.extend(feature);
            y.push(k);
        }
        (x, y)
    };
    let (train_x, train_y) = points(train_points);
    let (eval_x, eval_y) = points(eval_points);
    let model = Logistic::fit(&train_x, codes.dims, &train_y);
    Some(BetaVae {
        train_accuracy: model.accuracy(&train_x, &train_y),
        eval_accuracy: model.accuracy(&eval_x, &eval_y),
    })
}

fn row<'a>(codes: &'a Codes<'_>, i: usize) -> &'a [f64] {
    &codes.values[i * codes.dims..(i + 1) * codes.dims]
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{Grid, rotate, rotate45};
    use super::*;

    fn score(grid: &Grid, f: impl Fn(&[f64]) -> Vec<f64>) -> f64 {
        let (values, dims) = grid.codes(f);
        beta_vae_with(&grid.codes_of(&values, dims), &grid.classes(), 2000, 1000)
            .unwrap()
            .eval_accuracy
    }

    #[test]
    fn the_factors_score_one_even_copied_and_a_45_degree_rotation_is_at_chance() {
        let grid = Grid::new(&[6, 5, 4], 8);
        assert_eq!(score(&grid, |v| v.to_vec()), 1.0);
        // Monotone, noise-free transforms and a constant latent change nothing.
        assert_eq!(
            score(&grid, |v| vec![
                v[0].powi(3),
                (0.3 * v[1]).exp(),
                2.0 - v[2],
                4.0
            ]),
            1.0
        );
        // Copying a factor into two latents is not penalised by this score (MIG's is).
        assert_eq!(score(&grid, |v| vec![v[0], v[0], v[1], v[2]]), 1.0);
        // A generic rotation is read as well as the factors: Kim & Mnih's (2018) criticism
        // of this score, which MIG and SAP answer.
        assert_eq!(score(&grid, rotate), 1.0);
        // Two like factors turned by 45°: fixing either leaves the same spread in both
        // latents, and the classifier is at chance (1/2).
        let pair = Grid::new(&[6, 6], 8);
        let turned = score(&pair, rotate45);
        assert!((turned - 0.5).abs() < 0.06, "{turned}");
        // A representation that ignores the data is at chance (1/3).
        let constant = score(&grid, |_| vec![1.0, 1.0]);
        assert!((constant - 1.0 / 3.0).abs() < 0.06, "{constant}");
    }

    #[test]
    fn fewer_than_two_varying_factors_have_no_score() {
        let grid = Grid::new(&[6, 1], 4);
        let (values, dims) = grid.codes(|v| v.to_vec());
        assert!(beta_vae(&grid.codes_of(&values, dims), &grid.classes()).is_none());
    }
}
