//! The spec as a document: its sections, the run they resolve to, and the sweep over them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::runtime::RuntimeConfig;
use super::search;
use super::sections::{DataConfig, EvalConfig, ModelConfig, ObjectiveConfig, TrainConfig};

/// A whole spec file: one experiment, possibly swept into many runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// A base spec this one changes (a path relative to this file): its settings come
    /// first and this file's override them. Bases may extend bases.
    pub extends: Option<String>,
    pub name: String,
    pub description: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub runtime: RuntimeConfig,
    pub sweep: SweepConfig,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            extends: None,
            name: "experiment".into(),
            description: String::new(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            objective: ObjectiveConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            runtime: RuntimeConfig::default(),
            sweep: SweepConfig::default(),
        }
    }
}

/// Everything one training run needs: a spec with its sweep resolved away.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub runtime: RuntimeConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Spec::default().run_config()
    }
}

impl Spec {
    /// The spec's base run (before any sweep values are applied).
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            data: self.data.clone(),
            model: self.model.clone(),
            objective: self.objective.clone(),
            train: self.train.clone(),
            eval: self.eval.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

/// `[sweep]`: `grid` is a Cartesian product over dotted keys; each `zip` group pairs its
/// lists element by element and is then crossed with the grid and the other groups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
    pub zip: Vec<BTreeMap<String, Vec<serde_json::Value>>>,
    /// Random search: drawn configurations, crossed with the grid and zip groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<search::SearchConfig>,
    /// Successive halving over the runs: rungs of epochs, the best 1/η promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halving: Option<search::HalvingConfig>,
}

/// Spec files named on the command line, expanded when a directory is given.
pub fn spec_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("toml" | "yaml" | "yml")
                    )
                })
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    out
}
