//! `runner check`: regression gates whose tolerances come from measured noise.
//!
//! `--bless --seeds N` trains every CI spec with N seeds (the spec's own and the next N − 1)
//! and stores, per run and metric, the value of each seed, their mean and their standard
//! deviation (the seed sd). A check trains each spec with its own seed (deterministic: the
//! same numbers as that seed's blessed run on the same engine, bit for bit on one machine)
//! and fails a metric whose value moved more than `z_limit` seed standard deviations from
//! that seed's blessed value; it prints the z-score. The within-run standard error over the
//! test examples is printed beside it but not added: every run is scored on the same test
//! examples, so their spread cancels in the comparison, and the Monte Carlo noise is
//! already in the seed sd. Where the data's exact log p(x) is known, the estimate must also
//! lie below it within 3 standard errors (importance sampling underestimates log p(x) in
//! expectation), and its gap to it is gated like any metric.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sinks::results::{RunRecord, RunStatus};
use crate::spec::SpecError;

/// Metrics compared against the baseline (`exact_gap` only where an exact value exists).
pub const CHECKED: [&str; 4] = ["test_elbo", "test_log_px", "test_kl", "exact_gap"];

/// The default gate: this many seed standard deviations.
pub const DEFAULT_Z_LIMIT: f64 = 2.0;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub aevb_version: String,
    /// A metric fails when |now − blessed value of its seed| > z_limit × seed sd.
    pub z_limit: f64,
    /// "experiment/label" -> the engine that trained it (`fused`, `flex`, `cuda`).
    #[serde(default)]
    pub engines: BTreeMap<String, String>,
    /// "experiment/label" -> its seeds and metrics.
    pub runs: BTreeMap<String, RunBaseline>,
}

/// One run of a CI spec, blessed over several seeds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunBaseline {
    pub seeds: Vec<u64>,
    /// metric -> its values over `seeds`.
    pub metrics: BTreeMap<String, MetricBaseline>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricBaseline {
    /// One value per seed, in the order of `seeds`.
    pub values: Vec<f64>,
    pub mean: f64,
    /// Sample standard deviation over the seeds.
    pub seed_sd: f64,
    /// Mean within-run standard error over the test examples (shown, not gated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
}

impl Baseline {
    /// Reads and checks a baseline; problems are spec errors (exit 2) naming the key.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError::new(&file, "-", format!("cannot read the baseline: {e}")))?;
        let baseline: Baseline = toml::from_str(&text).map_err(|e| {
            SpecError::new(
                &file,
                "-",
                format!("not a valid baseline (bless one with --bless --seeds N): {e}"),
            )
        })?;
        if !(baseline.z_limit.is_finite() && baseline.z_limit > 0.0) {
            return Err(SpecError::new(
                &file,
                "z_limit",
                format!(
                    "expected a positive number of seed standard deviations, found {}",
                    baseline.z_limit
                ),
            ));
        }
        for (run, r) in &baseline.runs {
            for (metric, m) in &r.metrics {
                let finite = m.values.iter().all(|v| v.is_finite())
                    && m.mean.is_finite()
                    && m.seed_sd.is_finite();
                if !finite || m.values.len() != r.seeds.len() {
                    return Err(SpecError::new(
                        &file,
                        format!("runs.\"{run}\".metrics.{metric}"),
                        "expected finite values, one per seed, with their mean and seed_sd",
                    ));
                }
            }
        }
        Ok(baseline)
    }

    /// The baseline text: a header comment, then sorted tables (diff-friendly).
    pub fn to_text(&self) -> anyhow::Result<String> {
        Ok(format!(
            "# Regression baseline for `runner check` (values in nats per example), blessed over\n\
             # several seeds: a metric fails when it moves more than z_limit seed standard\n\
             # deviations from its seed's blessed value. Regenerate after an intentional change:\n\
             #   runner check experiments/ci/*.toml --baseline experiments/ci_baseline.toml --bless --seeds 5\n\n{}",
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

/// A metric's value and within-run standard error in a record.
fn metric(record: &RunRecord, name: &str) -> Option<(f64, Option<f64>)> {
    match name {
        "test_elbo" => Some((record.test_elbo?, record.test_elbo_se)),
        "test_log_px" => Some((record.test_log_px?, record.test_log_px_se)),
        "test_kl" => Some((record.test_kl?, record.test_kl_se)),
        "exact_gap" => Some((
            record.exact_test_log_px? - record.test_log_px?,
            record.test_log_px_se,
        )),
        _ => None,
    }
}

/// A baseline of the ok records, grouped by run (one record per seed), keeping `z_limit`
/// from `previous` where given.
pub fn bless(records: &[RunRecord], previous: Option<&Baseline>) -> Baseline {
    let mut grouped: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == RunStatus::Ok) {
        grouped.entry(run_key(r)).or_default().push(r);
    }
    let runs = grouped
        .into_iter()
        .map(|(key, mut rs)| {
            rs.sort_by_key(|r| r.config.train.seed);
            let metrics = CHECKED
                .iter()
                .filter_map(|m| {
                    let pairs: Vec<(f64, Option<f64>)> =
                        rs.iter().map(|r| metric(r, m)).collect::<Option<_>>()?;
                    let values: Vec<f64> = pairs.iter().map(|(v, _)| round(*v)).collect();
                    let ses: Vec<f64> = pairs.iter().filter_map(|(_, se)| *se).collect();
                    let e = crate::eval::Estimate::of(&values);
                    let seed_sd = round(e.se * (e.n as f64).sqrt());
                    let se = (!ses.is_empty())
                        .then(|| round(ses.iter().sum::<f64>() / ses.len() as f64));
                    let entry = MetricBaseline {
                        mean: round(e.mean),
                        seed_sd: if seed_sd.is_finite() { seed_sd } else { 0.0 },
                        values,
                        se,
                    };
                    Some((m.to_string(), entry))
                })
                .collect();
            let seeds = rs.iter().map(|r| r.config.train.seed).collect();
            (key, RunBaseline { seeds, metrics })
        })
        .collect();
    let engines = records
        .iter()
        .filter(|r| r.status == RunStatus::Ok)
        .map(|r| (run_key(r), r.backend.clone()))
        .collect();
    Baseline {
        aevb_version: crate::VERSION.to_string(),
        z_limit: previous.map_or(DEFAULT_Z_LIMIT, |b| b.z_limit),
        engines,
        runs,
    }
}

/// Six decimals: far below any seed sd, and stable text in diffs.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// One line of the comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub run: String,
    pub metric: String,
    pub seed: Option<u64>,
    /// The blessed value of this seed (else the blessed mean).
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    /// The seed standard deviation the difference is measured in.
    pub seed_sd: f64,
    /// The new run's within-run standard error (shown).
    pub se: Option<f64>,
    pub z_limit: f64,
    /// Fails regardless of z (an estimate above the exact value it bounds).
    pub violation: Option<String>,
}

/// A seed sd of zero (a metric that does not vary with the seed) still gives a finite z.
const SD_FLOOR: f64 = 1e-6;

impl Comparison {
    pub fn difference(&self) -> Option<f64> {
        Some(self.now? - self.baseline?)
    }

    /// (now − baseline) / seed sd.
    pub fn z(&self) -> Option<f64> {
        Some(self.difference()? / self.seed_sd.max(SD_FLOOR))
    }

    pub fn passed(&self) -> bool {
        self.violation.is_none()
            && self
                .z()
                .is_some_and(|z| z.is_finite() && z.abs() <= self.z_limit)
    }
}

/// Every baseline run of the experiments checked (those `records` are of: a check of some
/// of the baseline's specs compares only theirs) and metric against the current records,
/// each compared with the blessed value of its own seed; a run missing on either side
/// fails, saying which side.
pub fn compare(baseline: &Baseline, records: &[RunRecord]) -> Vec<Comparison> {
    let mut out = Vec::new();
    let checked: Vec<&str> = records.iter().map(|r| r.experiment.as_str()).collect();
    let mut keys: Vec<String> = baseline
        .runs
        .keys()
        .filter(|k| checked.contains(&k.split('/').next().unwrap_or_default()))
        .cloned()
        .collect();
    for r in records {
        if !keys.contains(&run_key(r)) {
            keys.push(run_key(r));
        }
    }
    for key in keys {
        let blessed = baseline.runs.get(&key);
        // Each run of this key (one per seed checked); `None` stands for a missing run.
        let mut now: Vec<Option<&RunRecord>> = records
            .iter()
            .filter(|r| run_key(r) == key)
            .map(Some)
            .collect();
        if now.is_empty() {
            now.push(None);
        }
        for record in now {
            let ok = record.filter(|r| r.status == RunStatus::Ok);
            for m in CHECKED {
                let entry = blessed.and_then(|b| b.metrics.get(m));
                let current = ok.and_then(|r| metric(r, m));
                if entry.is_none() && current.is_none() && m == "exact_gap" {
                    continue;
                }
                let seed = record.map(|r| r.config.train.seed);
                let reference = entry.map(|e| {
                    blessed
                        .and_then(|b| b.seeds.iter().position(|s| Some(*s) == seed))
                        .map_or(e.mean, |i| e.values[i])
                });
                out.push(Comparison {
                    run: key.clone(),
                    metric: m.to_string(),
                    seed,
                    baseline: reference,
                    now: current.map(|(v, _)| v),
                    seed_sd: entry.map_or(0.0, |e| e.seed_sd),
                    se: current.and_then(|(_, se)| se),
                    z_limit: baseline.z_limit,
                    violation: ok.and_then(exact_violation).filter(|_| m == "exact_gap"),
                });
            }
        }
    }
    out
}

/// An importance-sampled log p(x) more than 3 standard errors above the exact value.
fn exact_violation(r: &RunRecord) -> Option<String> {
    let (estimate, exact, se) = (r.test_log_px?, r.exact_test_log_px?, r.test_log_px_se?);
    (estimate > exact + 3.0 * se).then(|| {
        format!("log p(x) estimate {estimate:.4} lies above the exact {exact:.4} by more than 3 SE ({se:.4})")
    })
}

pub fn render(comparisons: &[Comparison]) -> String {
    let f = |v: Option<f64>| {
        v.map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "missing".into())
    };
    let mut rows = vec![
        [
            "run",
            "metric",
            "seed",
            "baseline",
            "now",
            "difference",
            "seed sd",
            "z",
            "SE",
            "result",
        ]
        .map(String::from),
    ];
    for c in comparisons {
        rows.push([
            c.run.clone(),
            c.metric.clone(),
            c.seed.map_or("-".into(), |s| s.to_string()),
            f(c.baseline),
            f(c.now),
            c.difference()
                .map(|d| format!("{d:+.4}"))
                .unwrap_or_else(|| "-".into()),
            format!("{:.4}", c.seed_sd),
            c.z().map_or("-".into(), |z| format!("{z:+.2}")),
            c.se.map_or("-".into(), |s| format!("{s:.4}")),
            match (&c.violation, c.passed()) {
                (Some(v), _) => format!("FAIL: {v}"),
                (None, true) => "pass".into(),
                (None, false) if c.baseline.is_none() => {
                    "FAIL: not in the baseline (--bless adds it)".into()
                }
                (None, false) if c.now.is_none() => "FAIL: not run, or no value".into(),
                (None, false) => format!("FAIL (|z| > {})", c.z_limit),
            },
        ]);
    }
    let widths: Vec<usize> = (0..10)
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
