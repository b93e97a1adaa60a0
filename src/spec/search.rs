//! `[sweep.search]`: random search over distributions per key (the `search` room samples
//! it), crossed with the grid and zip groups like another axis.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Configurations drawn; each is crossed with the grid (seeds, say) and zip groups.
    pub trials: usize,
    /// The search's own seed: trial t's values depend on it, t and the keys alone.
    #[serde(default)]
    pub seed: u64,
    /// Dotted config key → the distribution its values are drawn from.
    pub keys: BTreeMap<String, Distribution>,
}

/// One key's distribution, written `{ uniform = [lo, hi] }` and so on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Uniform on [lo, hi).
    Uniform([f64; 2]),
    /// log-uniform on [lo, hi), 0 < lo < hi: learning rates, weights spanning decades.
    LogUniform([f64; 2]),
    /// A uniformly drawn integer in [lo, hi], both ends included.
    Integer([i64; 2]),
    /// One of the listed values, uniformly (any value the key takes: numbers, strings, lists).
    Choice(Vec<serde_json::Value>),
}

/// `[sweep.halving]`: successive halving over the sweep's runs (grid, zip or search).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HalvingConfig {
    /// Epochs of the first rung; each next rung trains `reduction` times as many, the last
    /// `train.epochs`.
    pub min_epochs: usize,
    /// η: each rung keeps the best 1/η of the runs it ranks (rounded up).
    #[serde(default = "default_reduction")]
    pub reduction: usize,
    /// What runs are ranked by at a rung (higher is better).
    #[serde(default)]
    pub metric: HalvingMetric,
    /// A run with fewer active latent units than this at a rung has collapsed: it is
    /// stopped there, whatever its rank.
    #[serde(default = "default_min_active_units")]
    pub min_active_units: usize,
}

fn default_reduction() -> usize {
    3
}

fn default_min_active_units() -> usize {
    1
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum HalvingMetric {
    /// The test ELBO at the rung's epoch (evaluated there whatever `eval.every_epochs`).
    #[default]
    TestElbo,
}
