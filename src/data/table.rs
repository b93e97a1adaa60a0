//! Users' own data: a Parquet or CSV file of numeric columns, read with polars.

use std::path::Path;

use polars::prelude::*;

use super::{DataError, Dataset, Matrix, split};
use crate::spec::DataConfig;

fn check_files(config: &DataConfig) -> Result<(), DataError> {
    let path = config.path.as_deref().ok_or_else(|| {
        DataError::new(
            "data.path",
            "the table dataset needs data.path: a .parquet or .csv file",
        )
    })?;
    let files = [
        ("data.path", Some(path)),
        ("data.test_path", config.test_path.as_deref()),
    ];
    for (key, p) in files {
        let Some(p) = p else { continue };
        if !Path::new(p).is_file() {
            return Err(DataError::new(
                key,
                format!("table file {p} does not exist"),
            ));
        }
        if !matches!(extension(p).as_str(), "parquet" | "csv") {
            return Err(DataError::new(
                key,
                format!("table file {p}: expected a .parquet or .csv file"),
            ));
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

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    check_files(config)?;
    let path = config.path.as_deref().unwrap_or_default();
    let all = read_matrix(path, config.columns.as_deref(), "data.path")?;
    let (train, test) = match config.test_path.as_deref() {
        Some(test_path) => {
            let test = read_matrix(test_path, config.columns.as_deref(), "data.test_path")?;
            if test.cols != all.cols {
                return Err(DataError::new(
                    "data.test_path",
                    format!(
                        "{test_path}: {} numeric columns, but {path} has {}",
                        test.cols, all.cols
                    ),
                ));
            }
            (all, test)
        }
        None => {
            if all.rows < 2 {
                return Err(DataError::new(
                    "data.path",
                    format!(
                        "{path}: {} rows; expected at least 2 (one to train on, one to test on)",
                        all.rows
                    ),
                ));
            }
            split(&all, config.test_fraction, config.split_seed)
        }
    };
    Ok(Dataset {
        train,
        test,
        image_shape: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: None,
    })
}

/// Reads the numeric columns (or the named ones) of a table into f32 rows. Errors carry
/// `key` (the spec key naming this file) or `data.columns`, and name the file.
pub fn read_matrix(
    path: &str,
    columns: Option<&[String]>,
    key: &'static str,
) -> Result<Matrix, DataError> {
    let fail = |message: String| DataError::new(key, format!("{path}: {message}"));
    let df = match extension(path).as_str() {
        "parquet" => std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| ParquetReader::new(f).finish().map_err(|e| e.to_string()))
            .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?,
        _ => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.into()))
            .and_then(|r| r.finish())
            .map_err(|e| fail(format!("not a readable CSV file: {e}")))?,
    };
    if df.height() == 0 {
        return Err(fail("no rows (an empty file, or a header only)".into()));
    }
    let selected: Vec<&Column> = match columns {
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                let column = df.column(n).map_err(|_| {
                    let have: Vec<String> = df
                        .get_column_names()
                        .iter()
                        .map(|c| c.to_string())
                        .collect();
                    DataError::new(
                        "data.columns",
                        format!(
                            "{path}: no column named `{n}` (columns: {})",
                            have.join(", ")
                        ),
                    )
                })?;
                if !column.dtype().is_primitive_numeric() {
                    return Err(DataError::new(
                        "data.columns",
                        format!("{path}: column `{n}` holds {}, not numbers", column.dtype()),
                    ));
                }
                out.push(column);
            }
            out
        }
        None => {
            let (numeric, other): (Vec<&Column>, Vec<&Column>) = df
                .columns()
                .iter()
                .partition(|c| c.dtype().is_primitive_numeric());
            if !other.is_empty() && !numeric.is_empty() {
                // Not an error (a label column is normal), but never silent: a column of
                // numbers with one stray word in it lands here too.
                let names: Vec<String> = other
                    .iter()
                    .map(|c| format!("`{}` ({})", c.name(), c.dtype()))
                    .collect();
                eprintln!(
                    "warning: {path}: skipping columns that are not numeric: {} (choose columns with data.columns)",
                    names.join(", ")
                );
            }
            numeric
        }
    };
    if selected.is_empty() {
        return Err(fail("no numeric columns".into()));
    }
    let rows = df.height();
    let cols = selected.len();
    let mut values = vec![0f32; rows * cols];
    for (j, column) in selected.iter().enumerate() {
        let name = column.name().to_string();
        let cast = column
            .cast(&DataType::Float32)
            .map_err(|e| fail(format!("column `{name}` is not numeric: {e}")))?;
        let floats = cast
            .f32()
            .map_err(|e| fail(format!("column `{name}` is not numeric: {e}")))?;
        for (i, v) in floats.iter().enumerate() {
            let v =
                v.ok_or_else(|| fail(format!("column `{name}` has a missing value in row {i}")))?;
            if !v.is_finite() {
                return Err(fail(format!(
                    "column `{name}` has a non-finite value ({v}) in row {i}"
                )));
            }
            values[i * cols + j] = v;
        }
    }
    Ok(Matrix::new(rows, cols, values))
}
