//! What the `runner` tests share: running the binary, writing specs, reading Parquet.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;
use protobuf::Message;
use tensorboard_proto::event::Event;

pub fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runner"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The command `runner sweep SPEC --set runtime.results_dir=RESULTS EXTRA...`.
pub fn sweep_command(spec: &Path, results: &Path, extra: &[&str]) -> Command {
    let mut c = runner();
    c.arg("sweep")
        .arg(spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .args(extra);
    c
}

/// Runs `runner sweep SPEC --set runtime.results_dir=RESULTS EXTRA...` to the end.
pub fn run_sweep(spec: &Path, results: &Path, extra: &[&str]) -> Output {
    sweep_command(spec, results, extra).output().unwrap()
}

/// `runner report DIR --format FORMAT`, asserting success; its stdout.
/// A sweep of `spec` into `results` that must be refused before anything is written: exit 2,
/// the message naming `file` and saying `expected`, and no results folder.
pub fn assert_refused(spec: &Path, results: &Path, extra: &[&str], file: &str, expected: &str) {
    let out = run_sweep(spec, results, extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
    assert!(
        stderr.contains(file) && stderr.contains(expected),
        "{file}: {stderr}"
    );
    assert!(!results.exists(), "{file}: nothing written");
}

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

/// Records of a TFRecord file: u64 length, u32 CRC, payload, u32 CRC.
pub fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    let mut events = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap()) as usize;
        let data = &bytes[i + 12..i + 12 + len];
        events.push(Event::parse_from_bytes(data).unwrap());
        i += 12 + len + 4;
    }
    events
}

pub fn events_in(dir: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("events.out.tfevents") {
            out.extend(read_events(&entry.path()));
        }
    }
    out
}

/// (tag, step) of every summary value.
pub fn tags(events: &[Event]) -> Vec<(String, i64)> {
    events
        .iter()
        .flat_map(|e| {
            e.get_summary()
                .get_value()
                .iter()
                .map(|v| (v.get_tag().to_string(), e.get_step()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The only run folder of the experiment `name`.
pub fn run_dir(results: &Path, name: &str) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join(name).join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// The record of the only run of the experiment `name`, as JSON.
pub fn record(results: &Path, name: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(run_dir(results, name).join("record.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        serde_json::Value::Object(m) => m,
        _ => panic!("record.json is not an object"),
    }
}

/// Columns that say how a run went (its attempts, their times), not what it found.
pub const BOOKKEEPING: [&str; 7] = [
    "resumes",
    "resume_notes",
    "checkpoints_written",
    "checkpoint_seconds",
    "wall_seconds",
    "samples_per_second",
    "finished_at",
];

/// Every result column of two records is the same, bit for bit (JSON numbers read back
/// exactly); only [`BOOKKEEPING`] and the folder they were written to may differ.
pub fn assert_same_results(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) {
    let without_folder = |r: &serde_json::Map<String, serde_json::Value>| {
        let mut r = r.clone();
        if let Some(runtime) = r.get_mut("config").and_then(|c| c.get_mut("runtime")) {
            runtime["results_dir"] = serde_json::Value::Null;
        }
        r
    };
    let (a, b) = (&without_folder(a), &without_folder(b));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let differ: Vec<&String> = keys
        .into_iter()
        .filter(|k| !BOOKKEEPING.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .collect();
    let show: Vec<_> = differ.iter().map(|k| (k, a.get(*k), b.get(*k))).collect();
    assert!(differ.is_empty(), "results differ: {show:?}");
}

/// burn's CPU backend, where the tests train and evaluate burn's modules.
pub fn flex() -> burn::tensor::Device {
    aevb::backend::device(aevb::spec::BackendKind::Flex, 0).expect("flex starts")
}
