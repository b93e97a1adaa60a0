//! Parquet frames of per-example blocks of values, saved atomically.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::sinks::parquet::write_parquet_atomic;

/// A table with an integer `index` column and, per block, `name_0 … name_{width-1}`
/// columns from a row-major [rows, width] block.
pub fn blocks_frame(
    index_name: &str,
    rows: usize,
    labels: Option<&[u32]>,
    blocks: &[(&str, &[f32], usize)],
) -> anyhow::Result<DataFrame> {
    let mut columns: Vec<Column> = vec![Column::new(
        index_name.into(),
        (0..rows as u32).collect::<Vec<u32>>(),
    )];
    if let Some(labels) = labels {
        columns.push(Column::new("label".into(), labels.to_vec()));
    }
    for &(name, values, width) in blocks {
        for j in 0..width {
            let col: Vec<f32> = (0..rows).map(|i| values[i * width + j]).collect();
            columns.push(Column::new(format!("{name}_{j}").into(), col));
        }
    }
    Ok(DataFrame::new(rows, columns)?)
}

pub fn save(path: &Path, mut frame: DataFrame) -> anyhow::Result<PathBuf> {
    write_parquet_atomic(path, &mut frame)?;
    Ok(path.to_path_buf())
}
