//! Users' own data: a Parquet or CSV file of numeric columns, read with polars.

use std::path::Path;

use polars::prelude::*;

use super::{Dataset, Matrix, split};
use crate::spec::DataConfig;

pub fn check_files(config: &DataConfig) -> Result<(), String> {
    let path = config
        .path
        .as_deref()
        .ok_or("the table dataset needs data.path: a .parquet or .csv file")?;
    for p in std::iter::once(path).chain(config.test_path.as_deref()) {
        if !Path::new(p).is_file() {
            return Err(format!("table file {p} does not exist"));
        }
        if !matches!(extension(p).as_str(), "parquet" | "csv") {
            return Err(format!("table file {p}: expected a .parquet or .csv file"));
        }
    }
    Ok(())
}

fn extension(path: &str) -> String {
    Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn load(config: &DataConfig) -> anyhow::Result<Dataset> {
    check_files(config).map_err(anyhow::Error::msg)?;
    let path = config.path.as_deref().expect("checked");
    let all = read_matrix(path, config.columns.as_deref())?;
    let (train, test) = match config.test_path.as_deref() {
        Some(test_path) => {
            let test = read_matrix(test_path, config.columns.as_deref())?;
            anyhow::ensure!(
                test.cols == all.cols,
                "{test_path}: {} numeric columns, but {path} has {}",
                test.cols,
                all.cols
            );
            (all, test)
        }
        None => split(&all, config.test_fraction, config.split_seed),
    };
    Ok(Dataset {
        train,
        test,
        image_shape: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
    })
}

/// Reads the numeric columns (or the named ones) of a table into f32 rows.
pub fn read_matrix(path: &str, columns: Option<&[String]>) -> anyhow::Result<Matrix> {
    let df = match extension(path).as_str() {
        "parquet" => ParquetReader::new(std::fs::File::open(path)?).finish()?,
        _ => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.into()))?
            .finish()?,
    };
    let selected: Vec<&Column> = match columns {
        Some(names) => names
            .iter()
            .map(|n| {
                df.column(n)
                    .map_err(|_| anyhow::anyhow!("{path}: no column named `{n}` (data.columns)"))
            })
            .collect::<anyhow::Result<_>>()?,
        None => df
            .columns()
            .iter()
            .filter(|c| c.dtype().is_primitive_numeric())
            .collect(),
    };
    anyhow::ensure!(!selected.is_empty(), "{path}: no numeric columns");
    let rows = df.height();
    let cols = selected.len();
    let mut values = vec![0f32; rows * cols];
    for (j, column) in selected.iter().enumerate() {
        let cast = column.cast(&DataType::Float32).map_err(|e| {
            anyhow::anyhow!("{path}: column `{}` is not numeric: {e}", column.name())
        })?;
        for (i, v) in cast.f32()?.iter().enumerate() {
            values[i * cols + j] = v.ok_or_else(|| {
                anyhow::anyhow!(
                    "{path}: column `{}` has a missing value in row {i}",
                    column.name()
                )
            })?;
        }
    }
    Ok(Matrix::new(rows, cols, values))
}
