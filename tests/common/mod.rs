//! What the `runner` tests share: running the binary, writing specs, reading Parquet.
#![allow(dead_code)] // each test crate uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

pub fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runner"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `runner sweep SPEC --set runtime.results_dir=RESULTS EXTRA...`
pub fn run_sweep(spec: &Path, results: &Path, extra: &[&str]) -> Output {
    runner()
        .arg("sweep")
        .arg(spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .args(extra)
        .output()
        .unwrap()
}

/// `runner report DIR --format FORMAT`, asserting success; its stdout.
pub fn report(dir: &Path, format: &str) -> String {
    let out = runner()
        .args(["report", dir.to_str().unwrap(), "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}
