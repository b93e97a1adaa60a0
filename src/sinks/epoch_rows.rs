//! A run's epoch rows: one row per epoch with every `EpochMetrics` field, written beside the
//! run's record as `epoch_rows.parquet` and appended to `epochs.parquet` by a rebuild.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::DataFrame;
use serde_json::Value;

use super::columns::{Columns, Row};
use crate::train::EpochMetrics;

/// A run's epoch rows, written beside its record when it finishes, so that a rebuild reads
/// columns rather than parsing JSON.
pub const EPOCH_ROWS_FILE: &str = "epoch_rows.parquet";

/// An epoch's fields as JSON, with every optional one filled (for the column types).
fn epoch_template() -> Row {
    let template = EpochMetrics {
        train_tc: Some(0.0),
        capacity: Some(0.0),
        train_discriminator_loss: Some(0.0),
        test_elbo: Some(0.0),
        test_recon: Some(0.0),
        test_kl: Some(0.0),
        test_elbo_se: Some(0.0),
        test_kl_se: Some(0.0),
        valid_elbo: Some(0.0),
        valid_elbo_se: Some(0.0),
        ..Default::default()
    };
    match serde_json::to_value(template) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// The columns of a run's epoch rows (the same for every run).
pub(super) fn epoch_columns() -> Columns {
    let template = epoch_template();
    let names = template.keys().cloned().collect();
    Columns::typed(names, &HashMap::new(), &template)
}

/// A run's epochs as a frame with [`epoch_columns`]: what `epoch_rows.parquet` holds.
pub fn epoch_rows_frame(epochs: &[EpochMetrics]) -> anyhow::Result<DataFrame> {
    let rows: Vec<Row> = epochs
        .iter()
        .map(|e| match serde_json::to_value(e) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        })
        .collect();
    epoch_columns().frame(&rows)
}
