//! Search beside the grid: `[sweep.search]`'s random search. Trial t draws one value per key,
//! in the keys' sorted order, from a generator seeded by (search seed, t), so a trial's
//! values do not change when trials are added, and a rerun of the spec finds the same runs
//! (same ids) and skips the finished ones. Floats are kept to 6 significant digits: readable
//! labels, and ids that do not hinge on the last bit of a logarithm.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::spec::{Distribution, SearchConfig};

/// Why a distribution cannot be drawn from (said under `sweep.search.keys."key"`).
pub fn check(distribution: &Distribution) -> Result<(), String> {
    match distribution {
        Distribution::Uniform([lo, hi]) if !(lo.is_finite() && hi.is_finite() && lo < hi) => Err(
            format!("expected finite bounds with lo < hi, found [{lo}, {hi}]"),
        ),
        Distribution::LogUniform([lo, hi]) if !(hi.is_finite() && *lo > 0.0 && lo < hi) => Err(
            format!("expected bounds with 0 < lo < hi (a logarithm is drawn), found [{lo}, {hi}]"),
        ),
        Distribution::Integer([lo, hi]) if lo > hi => {
            Err(format!("expected lo <= hi, found [{lo}, {hi}]"))
        }
        Distribution::Choice(values) if values.is_empty() => {
            Err("expected at least one value to choose from".into())
        }
        _ => Ok(()),
    }
}

/// The assignments of every trial, in trial order: (key, value) per key.
pub fn trials(search: &SearchConfig) -> Vec<Vec<(String, Value)>> {
    (0..search.trials)
        .map(|t| {
            let mut rng = trial_rng(search.seed, t);
            search
                .keys
                .iter()
                .map(|(key, d)| (key.clone(), draw(d, &mut rng)))
                .collect()
        })
        .collect()
}

fn trial_rng(seed: u64, trial: usize) -> StdRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(trial as u64).to_le_bytes());
    bytes[16..].copy_from_slice(b"aevb.search.tria");
    StdRng::from_seed(bytes)
}

/// `x` to 6 significant digits.
fn significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.5e}").parse().unwrap_or(x)
}

fn draw(distribution: &Distribution, rng: &mut StdRng) -> Value {
    let float = |x: f64| Value::from(significant(x));
    match distribution {
        Distribution::Uniform([lo, hi]) => float(lo + (hi - lo) * rng.random::<f64>()),
        Distribution::LogUniform([lo, hi]) => {
            let (a, b) = (lo.ln(), hi.ln());
            float((a + (b - a) * rng.random::<f64>()).exp())
        }
        Distribution::Integer([lo, hi]) => Value::from(rng.random_range(*lo..=*hi)),
        Distribution::Choice(values) => values[rng.random_range(0..values.len())].clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn search(trials: usize, seed: u64) -> SearchConfig {
        let mut keys = BTreeMap::new();
        keys.insert("train.lr".into(), Distribution::LogUniform([1e-4, 1e-2]));
        keys.insert("objective.beta".into(), Distribution::Uniform([0.5, 8.0]));
        keys.insert("model.latent_dim".into(), Distribution::Integer([2, 5]));
        keys.insert(
            "model.encoder.hidden".into(),
            Distribution::Choice(vec![serde_json::json!([64]), serde_json::json!([128, 64])]),
        );
        SearchConfig { trials, seed, keys }
    }

    fn column(trials: &[Vec<(String, Value)>], key: &str) -> Vec<Value> {
        trials
            .iter()
            .map(|t| t.iter().find(|(k, _)| k == key).unwrap().1.clone())
            .collect()
    }

    #[test]
    fn draws_stay_in_their_ranges_and_cover_them() {
        let all = trials(&search(2000, 7));
        let lr: Vec<f64> = column(&all, "train.lr")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(lr.iter().all(|&x| (1e-4..=1e-2).contains(&x)));
        // Log-uniform: a third of the draws in each decade [1e-4, 1e-3) and [1e-3, 1e-2)
        // would be wrong; half each is right.
        let low = lr.iter().filter(|&&x| x < 1e-3).count() as f64 / lr.len() as f64;
        assert!((low - 0.5).abs() < 0.04, "{low}");
        let beta: Vec<f64> = column(&all, "objective.beta")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(beta.iter().all(|&x| (0.5..8.0).contains(&x)));
        let mean = beta.iter().sum::<f64>() / beta.len() as f64;
        assert!((mean - 4.25).abs() < 0.15, "{mean}");
        let mut dims: Vec<i64> = column(&all, "model.latent_dim")
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        dims.sort_unstable();
        dims.dedup();
        assert_eq!(dims, vec![2, 3, 4, 5], "both ends included");
        let hidden = column(&all, "model.encoder.hidden");
        let wide = hidden
            .iter()
            .filter(|v| v.as_array().unwrap().len() == 2)
            .count();
        assert!((wide as f64 / 2000.0 - 0.5).abs() < 0.04);
    }

    #[test]
    fn trials_are_reproducible_and_adding_trials_keeps_the_earlier_ones() {
        let few = trials(&search(5, 3));
        let more = trials(&search(9, 3));
        assert_eq!(few[..], more[..5]);
        assert_ne!(trials(&search(5, 4)), few, "another seed, other trials");
        // Six significant digits.
        for v in column(&few, "train.lr") {
            let x = v.as_f64().unwrap();
            assert_eq!(format!("{x:.5e}").parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn impossible_distributions_are_named() {
        assert!(check(&Distribution::Uniform([2.0, 1.0])).is_err());
        assert!(check(&Distribution::Uniform([0.0, f64::INFINITY])).is_err());
        assert!(
            check(&Distribution::LogUniform([0.0, 1.0]))
                .unwrap_err()
                .contains("0 < lo")
        );
        assert!(check(&Distribution::Integer([3, 2])).is_err());
        assert!(check(&Distribution::Integer([3, 3])).is_ok());
        assert!(check(&Distribution::Choice(vec![])).is_err());
    }
}
