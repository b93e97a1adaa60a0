//! The FactorVAE score (Kim & Mnih 2018) with disentanglement_lib's parameters: each
//! latent is divided by its standard deviation over the evaluation set (sample variance,
//! n − 1; disentanglement_lib estimates it from 10,000 draws, aevb from the whole set), and
//! latents with a standard deviation below 0.05 are left out as collapsed. A vote: choose a
//! factor k uniformly (among those that vary), draw 64 examples sharing one value of k
//! ([`super::fixed_factor`]); the kept latent with the least variance over them votes for
//! k. A majority-vote classifier (each latent → the factor it got most of 10,000 votes for,
//! ties to the first) is scored on 5,000 more votes: the score is that accuracy, 0 when no
//! latent is kept.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixed_factor::{FactorGroups, SEED};
use super::{Codes, FactorClasses};

pub const BATCH: usize = 64;
pub const TRAIN_VOTES: usize = 10_000;
pub const EVAL_VOTES: usize = 5_000;
/// disentanglement_lib's `_prune_dims` threshold, on the standard deviation.
pub const PRUNE_BELOW_STD: f64 = 0.05;

pub struct FactorVae {
    pub train_accuracy: f64,
    pub eval_accuracy: f64,
    pub active_dims: usize,
}

/// None when fewer than two factors vary.
pub fn factor_vae(codes: &Codes<'_>, factors: &FactorClasses<'_>) -> Option<FactorVae> {
    factor_vae_with(codes, factors, TRAIN_VOTES, EVAL_VOTES)
}

/// Sample variance (n − 1) of `values`.
fn variance(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)
}

/// [`factor_vae`] with other vote counts (tests).
pub fn factor_vae_with(
    codes: &Codes<'_>,
    factors: &FactorClasses<'_>,
    train_votes: usize,
    eval_votes: usize,
) -> Option<FactorVae> {
    assert_eq!(codes.rows, factors.rows, "one code per example");
    let groups = FactorGroups::new(factors);
    let varying = groups.varying();
    if varying.len() < 2 {
        return None;
    }
    let std: Vec<f64> = (0..codes.dims)
        .map(|j| variance(codes.column(j).into_iter()).sqrt())
        .collect();
    let active: Vec<usize> = (0..codes.dims)
        .filter(|&j| std[j] >= PRUNE_BELOW_STD)
        .collect();
    if active.is_empty() {
        return Some(FactorVae {
            train_accuracy: 0.0,
            eval_accuracy: 0.0,
            active_dims: 0,
        });
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    // votes[k][a]: how often kept latent a had the least variance with factor k fixed.
    let mut vote = |n: usize| {
        let mut votes = vec![vec![0usize; active.len()]; factors.count];
        for _ in 0..n {
            let k = varying[rand::Rng::random_range(&mut rng, 0..varying.len())];
            let rows = groups.batch_with_fixed(k, BATCH, &mut rng);
            let local = |j: usize| {
                variance(
                    rows.iter()
                        .map(|&r| codes.values[r * codes.dims + j] / std[j]),
                )
            };
            let least = (0..active.len())
                .map(|a| (a, local(active[a])))
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .map_or(0, |(a, _)| a);
            votes[k][least] += 1;
        }
        votes
    };
    let train = vote(train_votes);
    let eval = vote(eval_votes);
    let classifier: Vec<usize> = (0..active.len())
        .map(|a| {
            (0..factors.count)
                .rev()
                .max_by_key(|&k| train[k][a])
                .unwrap_or(0)
        })
        .collect();
    let accuracy = |votes: &[Vec<usize>]| {
        let total: usize = votes.iter().flatten().sum();
        let right: usize = classifier
            .iter()
            .enumerate()
            .map(|(a, &k)| votes[k][a])
            .sum();
        right as f64 / total.max(1) as f64
    };
    Some(FactorVae {
        train_accuracy: accuracy(&train),
        eval_accuracy: accuracy(&eval),
        active_dims: active.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{Grid, rotate, rotate45};
    use super::*;

    fn score(grid: &Grid, f: impl Fn(&[f64]) -> Vec<f64>) -> FactorVae {
        let (values, dims) = grid.codes(f);
        factor_vae_with(&grid.codes_of(&values, dims), &grid.classes(), 2000, 1000).unwrap()
    }

    #[test]
    fn the_factors_score_one_even_copied_and_a_45_degree_rotation_is_at_chance() {
        let grid = Grid::new(&[6, 5, 4], 8);
        let s = score(&grid, |v| v.to_vec());
        assert_eq!((s.eval_accuracy, s.active_dims), (1.0, 3));
        // Monotone transforms keep the score; a constant latent is pruned.
        let s = score(&grid, |v| {
            vec![v[0].powi(3), (0.3 * v[1]).exp(), 2.0 - v[2], 4.0]
        });
        assert_eq!((s.eval_accuracy, s.active_dims), (1.0, 3));
        // A factor copied into two latents: either one's votes map to it.
        assert_eq!(
            score(&grid, |v| vec![v[0], v[0], v[1], v[2]]).eval_accuracy,
            1.0
        );
        // A generic rotation still gives each factor a latent of least variance of its own:
        // a known blind spot of the majority vote (MIG and SAP penalise it).
        assert_eq!(score(&grid, rotate).eval_accuracy, 1.0);
        // Two like factors turned by 45°: both latents vary equally with either fixed, the
        // votes split, and the classifier is at chance (1/2).
        let pair = Grid::new(&[6, 6], 8);
        let turned = score(&pair, rotate45).eval_accuracy;
        assert!((turned - 0.5).abs() < 0.06, "{turned}");
    }

    #[test]
    fn collapsed_latents_score_zero_and_tiny_ones_are_pruned() {
        let grid = Grid::new(&[6, 5], 8);
        let s = score(&grid, |_| vec![0.0, 0.0]);
        assert_eq!((s.eval_accuracy, s.active_dims), (0.0, 0));
        // A latent that varies with std 0.01 would win every vote if it were kept.
        let s = score(&grid, |v| vec![v[0], v[1], 0.001 * v[0]]);
        assert_eq!((s.eval_accuracy, s.active_dims), (1.0, 2));
    }
}
