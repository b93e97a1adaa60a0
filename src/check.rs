//! `runner check`: regression gates on ELBO baselines.
//!
//! The baseline is a TOML file: absolute tolerances in nats per metric, the aevb version it
//! was made with, the engine that trained each run, and one table of metrics per run
//! (`experiment/label`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sinks::results::{RunRecord, RunStatus};
use crate::spec::SpecError;

/// Metrics compared against the baseline.
pub const CHECKED: [&str; 3] = ["test_elbo", "test_log_px", "test_kl"];

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub aevb_version: String,
    /// "experiment/label" -> the engine that trained it (`fused`, `flex`, `cuda`): runs of
    /// one check can train on different engines (a mixture prior trains on flex).
    #[serde(default)]
    pub engines: BTreeMap<String, String>,
    /// metric -> largest allowed |now − baseline| in nats.
    pub tolerance: BTreeMap<String, f64>,
    /// "experiment/label" -> metric -> value.
    pub runs: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Baseline {
    /// Reads and checks a baseline; problems are spec errors (exit 2) naming the key.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError::new(&file, "-", format!("cannot read the baseline: {e}")))?;
        let baseline: Baseline = toml::from_str(&text)
            .map_err(|e| SpecError::new(&file, "-", format!("not a valid baseline: {e}")))?;
        for metric in CHECKED {
            if !baseline.tolerance.contains_key(metric) {
                return Err(SpecError::new(
                    &file,
                    format!("tolerance.{metric}"),
                    "missing; expected an absolute tolerance in nats",
                ));
            }
        }
        for (metric, t) in &baseline.tolerance {
            if !(t.is_finite() && *t >= 0.0) {
                return Err(SpecError::new(
                    &file,
                    format!("tolerance.{metric}"),
                    format!("expected a finite tolerance >= 0 (absolute nats), found {t}"),
                ));
            }
        }
        for (run, metrics) in &baseline.runs {
            for (metric, v) in metrics {
                if !v.is_finite() {
                    return Err(SpecError::new(
                        &file,
                        format!("runs.\"{run}\".{metric}"),
                        format!("expected a finite value, found {v}"),
                    ));
                }
            }
        }
        Ok(baseline)
    }

    /// The baseline text: a header comment, then sorted tables (diff-friendly).
    pub fn to_text(&self) -> anyhow::Result<String> {
        Ok(format!(
            "# ELBO regression baseline for `runner check` (values in nats per example).\n\
             # Regenerate after an intentional change with:\n\
             #   runner check experiments/ci/*.toml --baseline experiments/ci_baseline.toml --bless\n\n{}",
            toml::to_string_pretty(self)?
        ))
    }
}

/// Runs that trained on another engine than their baseline's: (run, baseline, now).
pub fn engine_changes<'a>(
    baseline: &'a Baseline,
    records: &'a [RunRecord],
) -> Vec<(String, &'a str, &'a str)> {
    records
        .iter()
        .filter_map(|r| {
            let key = run_key(r);
            let before = baseline.engines.get(&key)?;
            (before != &r.backend).then_some((key, before.as_str(), r.backend.as_str()))
        })
        .collect()
}

pub fn run_key(record: &RunRecord) -> String {
    format!("{}/{}", record.experiment, record.label)
}

fn metric(record: &RunRecord, name: &str) -> Option<f64> {
    match name {
        "test_elbo" => record.test_elbo,
        "test_log_px" => record.test_log_px,
        "test_kl" => record.test_kl,
        _ => None,
    }
}

/// A baseline holding the current numbers, keeping `previous` tolerances where given.
pub fn bless(records: &[RunRecord], previous: Option<&Baseline>) -> Baseline {
    let tolerance = previous
        .map(|b| b.tolerance.clone())
        .unwrap_or_else(|| CHECKED.iter().map(|m| (m.to_string(), 0.3)).collect());
    let runs = records
        .iter()
        .filter(|r| r.status == RunStatus::Ok)
        .map(|r| {
            let values = CHECKED
                .iter()
                .filter_map(|m| metric(r, m).map(|v| (m.to_string(), round(v))))
                .collect();
            (run_key(r), values)
        })
        .collect();
    let engines = records
        .iter()
        .filter(|r| r.status == RunStatus::Ok)
        .map(|r| (run_key(r), r.backend.clone()))
        .collect();
    Baseline {
        aevb_version: crate::VERSION.to_string(),
        engines,
        tolerance,
        runs,
    }
}

/// Six decimals: far below any tolerance, and stable text in diffs.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// One line of the comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub run: String,
    pub metric: String,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    pub tolerance: f64,
}

impl Comparison {
    pub fn difference(&self) -> Option<f64> {
        Some(self.now? - self.baseline?)
    }
    pub fn passed(&self) -> bool {
        self.difference()
            .is_some_and(|d| d.is_finite() && d.abs() <= self.tolerance)
    }
}

/// Every baseline run and metric against the current records; a run missing on either
/// side fails.
pub fn compare(baseline: &Baseline, records: &[RunRecord]) -> Vec<Comparison> {
    let now: BTreeMap<String, &RunRecord> = records.iter().map(|r| (run_key(r), r)).collect();
    let mut out = Vec::new();
    let mut keys: Vec<&String> = baseline.runs.keys().collect();
    for k in now.keys() {
        if !baseline.runs.contains_key(k) {
            keys.push(k);
        }
    }
    for key in keys {
        for m in CHECKED {
            let record = now.get(key).filter(|r| r.status == RunStatus::Ok);
            out.push(Comparison {
                run: key.clone(),
                metric: m.to_string(),
                baseline: baseline.runs.get(key).and_then(|v| v.get(m)).copied(),
                now: record.and_then(|r| metric(r, m)),
                tolerance: baseline.tolerance.get(m).copied().unwrap_or(0.0),
            });
        }
    }
    out
}

pub fn render(comparisons: &[Comparison]) -> String {
    let f = |v: Option<f64>| {
        v.map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "missing".into())
    };
    let mut rows = vec![[
        "run".to_string(),
        "metric".into(),
        "baseline".into(),
        "now".into(),
        "difference".into(),
        "tolerance".into(),
        "result".into(),
    ]];
    for c in comparisons {
        rows.push([
            c.run.clone(),
            c.metric.clone(),
            f(c.baseline),
            f(c.now),
            c.difference()
                .map(|d| format!("{d:+.4}"))
                .unwrap_or_else(|| "-".into()),
            format!("{:.4}", c.tolerance),
            if c.passed() { "pass" } else { "FAIL" }.into(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|j| rows.iter().map(|r| r[j].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
