//! The Parquet files the runner writes open in every mainstream reader: no Arrow view
//! types in their embedded schema (pandas cannot convert `string_view` inside a list), and
//! the column types `results/README.md` documents. `.ci/interop.py` opens the same files
//! with pandas, pyarrow, polars and DuckDB.

use std::path::{Path, PathBuf};

use aevb::sinks::parquet::{embedded_arrow_schema, has_view_type};
use polars::prelude::*;

use crate::common::{read_parquet, runner, write};

/// A table with a text column (skipped, noted in the row) and two numeric columns, in a
/// folder of its own; the spec names it relative to itself.
fn table_experiment(dir: &Path) -> PathBuf {
    let data = dir.join("specs");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("a,b,kind\n");
    for i in 0..40 {
        let x = i as f64 / 40.0;
        csv.push_str(&format!("{x},{},{}\n", 1.0 - x * x, ["p", "q"][i % 2]));
    }
    write(&data, "points.csv", &csv);
    write(
        &data,
        "table.toml",
        r#"
name = "tbl"
[data]
dataset = "table"
path = "points.csv"
[model]
latent_dim = 2
likelihood = "gaussian"
encoder = { hidden = [8] }
decoder = { hidden = [8] }
[train]
epochs = 2
batch_size = 8
[eval]
importance_samples = 10
images_every_epochs = 0
[sweep.grid]
"train.seed" = [0, 1]
"#,
    )
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            parquet_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

#[test]
fn every_parquet_file_has_no_view_types_and_the_documented_column_types() {
    let dir = tempfile::tempdir().unwrap();
    let spec = table_experiment(dir.path());
    let results = dir.path().join("results");
    // Run from another folder: the spec's data path is relative to the spec, not to here.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = runner()
        .current_dir(&elsewhere)
        .arg("sweep")
        .arg(&spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped columns that are not numeric"),
        "{stderr}"
    );

    let experiment = results.join("tbl");
    let runs_dir = experiment.join("runs");
    let run = std::fs::read_dir(&runs_dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    for command in [
        &["sample", "-n", "4"][..],
        &["reconstruct", "-n", "3"],
        &["encode"],
    ] {
        let out = runner().args(command).arg(&run).output().unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut files = Vec::new();
    parquet_files(&experiment, &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "runs.parquet",
        "epochs.parquet",
        "samples.parquet",
        "encoded.parquet",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for file in &files {
        let schema = embedded_arrow_schema(file).unwrap();
        for field in schema.iter_values() {
            assert!(
                !has_view_type(&field.dtype),
                "{}: column `{}` is {:?}",
                file.display(),
                field.name,
                field.dtype
            );
        }
    }

    let runs = read_parquet(&experiment.join("runs.parquet"));
    let epochs = read_parquet(&experiment.join("epochs.parquet"));
    assert_every_column_documented(&runs, &epochs);
    let dtype = |name: &str| runs.column(name).unwrap().dtype().clone();
    assert_eq!(
        dtype("finished_at"),
        DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    assert_eq!(dtype("runtime.threads"), DataType::Int64);
    assert_eq!(dtype("threads"), DataType::Int64);
    assert_eq!(
        dtype("data.columns"),
        DataType::List(Box::new(DataType::String))
    );
    let modelled = runs
        .column("modelled_columns")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(0);
    let modelled: Vec<String> = modelled
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    assert_eq!(modelled, ["a", "b"]);
    let first_text = |name: &str| -> String {
        let column = runs.column(name).unwrap().str().unwrap().clone();
        column.get(0).unwrap().to_string()
    };
    let notes = first_text("data_notes");
    assert!(notes.contains("`kind`"), "{notes}");
    // The row's data path is absolute, so its saved config replans from anywhere.
    let path = first_text("data.path");
    assert!(
        Path::new(&path).is_absolute() && path.ends_with("specs/points.csv"),
        "{path}"
    );
    let out = runner()
        .current_dir("/")
        .arg("plan")
        .arg(run.join("config.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every column the two tables have is named in results/README.md, in its table's section
/// (the config's dotted keys, which the document covers as `data.*`, `model.*`, ..., and
/// the swept keys and seed that epoch rows repeat, aside).
fn assert_every_column_documented(runs: &DataFrame, epochs: &DataFrame) {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("results/README.md"))
            .unwrap();
    let section = |title: &str| -> String {
        let start = doc
            .find(title)
            .unwrap_or_else(|| panic!("no section {title}"));
        let rest = &doc[start + title.len()..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
    };
    let config = [
        "data.",
        "model.",
        "objective.",
        "train.",
        "eval.",
        "runtime.",
    ];
    let mut missing = Vec::new();
    for (frame, title) in [(runs, "## `runs.parquet`"), (epochs, "## `epochs.parquet`")] {
        let text = section(title);
        for name in frame.get_column_names() {
            let name = name.as_str();
            if config.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            if !text.contains(&format!("`{name}`")) {
                missing.push(format!("{title}: `{name}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented columns:\n{}",
        missing.join("\n")
    );
}
