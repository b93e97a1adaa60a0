//! The runs as the plots see them, and the small helpers every figure shares.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::frame::{floats, texts};

/// One run as the plots see it.
pub(super) struct RunPoint {
    pub(super) run_id: String,
    pub(super) keys: BTreeMap<String, String>,
    pub(super) ok: bool,
    pub(super) metric: Option<f64>,
    /// The metric's within-run standard error over test examples, where recorded.
    pub(super) se: Option<f64>,
    pub(super) kl: Option<f64>,
    pub(super) recon: Option<f64>,
}

pub(super) fn points(runs: &DataFrame, by: &[String], metric: &str) -> Vec<RunPoint> {
    let (ids, status) = (texts(runs, "run_id"), texts(runs, "status"));
    let keys: Vec<Vec<String>> = by.iter().map(|k| texts(runs, k)).collect();
    let values = floats(runs, metric);
    let se = floats(runs, &format!("{metric}_se"));
    let (kl, recon) = (floats(runs, "test_kl"), floats(runs, "test_recon"));
    (0..runs.height())
        .map(|i| RunPoint {
            run_id: ids[i].clone(),
            keys: by
                .iter()
                .zip(&keys)
                .map(|(k, column)| (k.clone(), column[i].clone()))
                .collect(),
            ok: status[i] == "ok",
            metric: values[i],
            se: se[i],
            kl: kl[i],
            recon: recon[i],
        })
        .collect()
}

pub(super) fn group_label(keys: &BTreeMap<String, String>, skip: Option<&str>) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            format!("{short}={}", pretty_value(v))
        })
        .collect();
    if parts.is_empty() {
        "all runs".into()
    } else {
        parts.join(",")
    }
}

pub(super) fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e}")
}

/// (min, max) of the values.
pub(super) fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)))
}

pub(super) fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let span = (hi - lo).abs().max(1e-6);
    (lo - 0.08 * span)..(hi + 0.08 * span)
}

/// A value as a person writes it: floats that are whole numbers without ".0".
pub(super) fn pretty_value(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => format!("{f}"),
        _ => v.to_string(),
    }
}
