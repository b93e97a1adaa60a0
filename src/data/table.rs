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
    let Table {
        matrix: all,
        names,
        mut notes,
    } = read_matrix(path, config.columns.as_deref(), "data.path")?;
    let (train, test) = match config.test_path.as_deref() {
        Some(test_path) => {
            // The test file must give the same columns, so it is read with the training
            // file's choice, whatever data.columns says.
            let test = read_matrix(test_path, Some(&names), "data.test_path").map_err(|e| {
                if config.columns.is_some() {
                    e
                } else {
                    let message = format!("{} (the columns modelled from {path})", e.message);
                    DataError::new("data.test_path", message)
                }
            })?;
            notes.extend(test.notes);
            (all, test.matrix)
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
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: None,
        test_factors: None,
        columns: Some(names),
        notes,
        train_on_device: Default::default(),
    })
}

/// A table read for modelling: its values, the columns they came from, and what the
/// reader noticed (kept in the run's row, not only printed).
pub struct Table {
    pub matrix: Matrix,
    pub names: Vec<String>,
    pub notes: Vec<String>,
}

/// Reads the numeric columns (or the named ones) of a table into f32 rows. Errors carry
/// `key` (the spec key naming this file) or `data.columns`, and name the file.
pub fn read_matrix(
    path: &str,
    columns: Option<&[String]>,
    key: &'static str,
) -> Result<Table, DataError> {
    let fail = |message: String| DataError::new(key, format!("{path}: {message}"));
    let df = match extension(path).as_str() {
        "parquet" => std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| ParquetReader::new(f).finish().map_err(|e| e.to_string()))
            .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?,
        _ => {
            refuse_duplicate_header(path, key)?;
            CsvReadOptions::default()
                .with_has_header(true)
                .try_into_reader_with_file_path(Some(path.into()))
                .and_then(|r| r.finish())
                .map_err(|e| fail(format!("not a readable CSV file: {e}")))?
        }
    };
    if df.height() == 0 {
        return Err(fail("no rows (an empty file, or a header only)".into()));
    }
    let mut notes = Vec::new();
    let selected: Vec<&Column> = match columns {
        Some(names) => named_columns(&df, names, path)?,
        None => default_columns(&df, path, &mut notes)?,
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
    Ok(Table {
        matrix: Matrix::new(rows, cols, values),
        names: selected.iter().map(|c| c.name().to_string()).collect(),
        notes,
    })
}

/// The columns `data.columns` names, each of which must exist once and hold numbers.
fn named_columns<'a>(
    df: &'a DataFrame,
    names: &[String],
    path: &str,
) -> Result<Vec<&'a Column>, DataError> {
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(DataError::new(
                "data.columns",
                format!("{path}: column `{n}` is listed twice"),
            ));
        }
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
    Ok(out)
}

/// Without `data.columns`: every numeric column, except that a column that looks like an
/// identifier is refused (modelling a row id as data gives a meaningless bound, as a
/// first user found: −3·10⁶ nats, "ok"), and skipped non-numeric columns are noted.
fn default_columns<'a>(
    df: &'a DataFrame,
    path: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<&'a Column>, DataError> {
    let (numeric, other): (Vec<&Column>, Vec<&Column>) = df
        .columns()
        .iter()
        .partition(|c| c.dtype().is_primitive_numeric());
    if let Some((column, why)) = numeric
        .iter()
        .find_map(|c| identifier_reason(c).map(|why| (c, why)))
    {
        let rest: Vec<String> = numeric
            .iter()
            .filter(|c| c.name() != column.name())
            .map(|c| format!("{:?}", c.name().as_str()))
            .collect();
        return Err(DataError::new(
            "data.columns",
            format!(
                "{path}: column `{}` looks like an identifier ({why}), not data; name the columns to model, e.g. data.columns = [{}] (list `{}` there too to model it)",
                column.name(),
                rest.join(", "),
                column.name()
            ),
        ));
    }
    if !other.is_empty() && !numeric.is_empty() {
        // Not an error (a label column is normal), but never silent: a column of
        // numbers with one stray word in it lands here too. The row keeps the note.
        let names: Vec<String> = other
            .iter()
            .map(|c| format!("`{}` ({})", c.name(), c.dtype()))
            .collect();
        let note = format!(
            "{path}: skipped columns that are not numeric: {} (choose columns with data.columns)",
            names.join(", ")
        );
        eprintln!("warning: {note}");
        notes.push(note);
    }
    Ok(numeric)
}

/// Why an integer column looks like a row identifier rather than a measurement: its name
/// (`id`, `index`, `*_id`, pandas' `Unnamed: 0`, an empty header), or values that count
/// up by one row after row.
fn identifier_reason(column: &Column) -> Option<String> {
    if !column.dtype().is_integer() {
        return None;
    }
    let name = column.name().to_ascii_lowercase();
    let id_names = [
        "id", "index", "idx", "key", "row", "rowid", "row_id", "uid", "uuid",
    ];
    if name.trim().is_empty()
        || id_names.contains(&name.trim())
        || name.ends_with("_id")
        || name.ends_with(" id")
        || name.starts_with("unnamed")
    {
        return Some("by its name".into());
    }
    let values = column.cast(&DataType::Int64).ok()?;
    let values = values.i64().ok()?;
    let mut previous: Option<i64> = None;
    for v in values.iter() {
        let v = v?;
        if previous.is_some_and(|p| p.checked_add(1) != Some(v)) {
            return None;
        }
        previous = Some(v);
    }
    (values.len() >= 3).then(|| "integers counting up by one, row after row".to_string())
}

/// A CSV header that names a column twice is refused: polars would rename the second
/// copy (`a_duplicated_0`) and model both without a word.
fn refuse_duplicate_header(path: &str, key: &'static str) -> Result<(), DataError> {
    let header = CsvReadOptions::default()
        .with_has_header(false)
        .with_n_rows(Some(1))
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.into()))
        .and_then(|r| r.finish());
    // An unreadable file is reported by the full read that follows, with its reason.
    let Ok(header) = header else { return Ok(()) };
    let mut seen: Vec<String> = Vec::new();
    for column in header.columns() {
        let Ok(Some(name)) = column.str().map(|s| s.get(0).map(str::to_string)) else {
            continue;
        };
        if seen.contains(&name) {
            return Err(DataError::new(
                key,
                format!(
                    "{path}: the header names column `{name}` more than once; rename one of them"
                ),
            ));
        }
        seen.push(name);
    }
    Ok(())
}
