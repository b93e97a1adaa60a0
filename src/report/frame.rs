//! Reading a runs table: which metrics it has, and its columns as numbers or text.

use polars::prelude::*;

/// Metrics aggregated for every group, in table order.
pub const METRICS: [&str; 5] = [
    "test_elbo",
    "test_log_px",
    "test_kl",
    "test_recon",
    "active_units",
];

/// Disentanglement scores, aggregated (after [`METRICS`]) where some run has them.
pub const DISENTANGLEMENT: [&str; crate::metrics::NAMES.len()] = crate::metrics::NAMES;

/// The metrics a results table has: [`METRICS`], then the disentanglement scores some run
/// recorded (factor data; the Gaussian TC on every run).
pub fn metrics_of(runs: &DataFrame) -> Vec<&'static str> {
    let recorded = |name: &str| runs.column(name).is_ok_and(|c| c.len() > c.null_count());
    METRICS
        .into_iter()
        .chain(DISENTANGLEMENT.into_iter().filter(|m| recorded(m)))
        .collect()
}

/// A column as f64 (integers cast), `None` where null or not finite; all `None` where the
/// column is missing. One cast per column: a cast per cell made the report quadratic.
pub(crate) fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let cast = df
        .column(name)
        .ok()
        .and_then(|c| c.cast(&DataType::Float64).ok());
    match cast.as_ref().and_then(|c| c.f64().ok()) {
        Some(values) => values.iter().map(|v| v.filter(|v| v.is_finite())).collect(),
        None => vec![None; df.height()],
    }
}

/// A column's cells as [`cell_text`] writes them ("" for every row where it is missing).
pub(crate) fn texts(df: &DataFrame, name: &str) -> Vec<String> {
    let Ok(column) = df.column(name) else {
        return vec![String::new(); df.height()];
    };
    let column = column.as_materialized_series().rechunk();
    column.iter().map(|v| any_text(&v)).collect()
}

fn any_text(v: &AnyValue) -> String {
    match v {
        AnyValue::String(_) | AnyValue::StringOwned(_) => v.str_value().to_string(),
        AnyValue::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A cell as text: strings unquoted, "-" for null, "" for a column that is not there.
pub(crate) fn cell_text(df: &DataFrame, name: &str, i: usize) -> String {
    df.column(name)
        .ok()
        .and_then(|c| c.get(i).ok())
        .map(|v| any_text(&v))
        .unwrap_or_default()
}
