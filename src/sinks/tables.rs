//! `runs.parquet` and `epochs.parquet`, rebuilt from the run folders in two passes whose
//! memory is one batch of runs, whatever the number of runs:
//!
//! 1. every `record.json` is read once to learn the columns and their types (`columns`),
//!    keeping only that;
//! 2. the runs are read again [`BATCH`] at a time and each batch is appended to both files
//!    (their epoch rows from the run's `epoch_rows.parquet`, written when it finished, or
//!    from `epochs.json` in folders written before those existed).
//!
//! Both files are written into a generation folder and made current together at the end
//! (`table_pair`), so a reader (or a kill -9 at any moment of a rebuild) sees the old pair
//! or the new one, never a mix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use polars::prelude::*;
use serde_json::Value;

use super::atomic::remove_abandoned_temporaries;
use super::columns::{Columns, Row, Seen};
use super::epoch_rows::{EPOCH_ROWS_FILE, epoch_columns, epoch_rows_frame};
use super::parquet::ParquetBatches;
use super::record::{RunRecord, template_record};
use super::results::{ResultsDir, read_record, rfc3339_utc_seconds};
use super::table_pair::{self, PairWriter};
use crate::train::EpochMetrics;

/// Runs read, turned into rows and written at a time (100 epochs each: 25,600 epoch rows).
pub const BATCH: usize = 256;

/// The tables of a results folder, rebuilt.
impl ResultsDir {
    /// Rebuilds runs.parquet and epochs.parquet from the finished runs' folders, under the
    /// folder lock (waiting for it), so that a concurrent process never replaces them with
    /// an older view. Returns the runs in them and those it had to leave out.
    pub fn write_tables(&self) -> anyhow::Result<Rebuilt> {
        let _lock = self.lock()?;
        rebuild(self)
    }

    /// Rebuilds the tables if they are missing or older than `max_age` and no other
    /// process holds the folder lock (that one is rebuilding them, or soon will); returns
    /// whether it did. What a process calls after each finished run.
    pub fn refresh_tables(&self, max_age: Duration) -> anyhow::Result<bool> {
        if self.tables_fresh(max_age) {
            return Ok(false);
        }
        let Some(_lock) = self.try_lock()? else {
            return Ok(false);
        };
        // Another process may have rebuilt them while this one looked.
        if self.tables_fresh(max_age) {
            return Ok(false);
        }
        rebuild(self)?;
        Ok(true)
    }
}

/// A run's row of runs.parquet: its record's fields, then its config flattened (dotted).
fn run_row(record: &RunRecord) -> Row {
    let mut row: Row = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map.into_iter().filter(|(k, _)| k != "config").collect(),
        _ => BTreeMap::new(),
    };
    row.extend(crate::sweep::flatten(&record.config));
    row
}

/// The swept keys of a run, and its seed, which every epoch row carries (so per-seed curves
/// need no join).
fn epoch_keys(record: &RunRecord) -> Vec<&str> {
    let mut keys: Vec<&str> = record
        .swept_keys
        .split(',')
        .filter(|k| !k.is_empty())
        .collect();
    if !keys.contains(&"train.seed") {
        keys.push("train.seed");
    }
    keys
}

/// The two tables' columns, learned from every record (pass 1).
#[derive(Default)]
struct Shape {
    /// run_id, label, status, then swept keys in the order runs name them.
    front: Vec<String>,
    config_keys: BTreeSet<String>,
    /// run_id, label, then every run's swept keys and seed.
    epoch_keys: Vec<String>,
    seen: HashMap<String, Seen>,
}

impl Shape {
    fn new() -> Self {
        let front: Vec<String> = ["run_id", "label", "status"].map(String::from).to_vec();
        let epoch_keys = ["run_id", "label"].map(String::from).to_vec();
        let config_keys = crate::sweep::flatten(&template_record().config)
            .into_keys()
            .collect();
        Self {
            front,
            config_keys,
            epoch_keys,
            seen: HashMap::new(),
        }
    }

    fn add(&mut self, record: &RunRecord) {
        let row = run_row(record);
        for (k, v) in &row {
            self.seen.entry(k.clone()).or_default().add(v);
            if k.contains('.') {
                self.config_keys.insert(k.clone());
            }
        }
        for k in record.swept_keys.split(',').filter(|k| !k.is_empty()) {
            if !self.front.iter().any(|f| f == k) {
                self.front.push(k.to_string());
            }
        }
        for k in epoch_keys(record) {
            if !self.epoch_keys.iter().any(|f| f == k) {
                self.epoch_keys.push(k.to_string());
            }
        }
    }

    /// runs.parquet's columns: identity and swept keys first, then metrics in record
    /// order, then every config key (dotted); all taken from the template too, so that a
    /// folder with no finished run still gets a table with every column.
    fn runs_columns(&self) -> anyhow::Result<Columns> {
        let template = template_record();
        let mut order = self.front.clone();
        if let Value::Object(record) = serde_json::to_value(&template)? {
            order.extend(
                record
                    .keys()
                    .filter(|k| *k != "config" && !self.front.contains(k))
                    .cloned(),
            );
        }
        order.extend(
            self.config_keys
                .iter()
                .filter(|k| !self.front.contains(k))
                .cloned(),
        );
        Ok(Columns::typed(order, &self.seen, &run_row(&template)))
    }

    /// The run-level columns every epoch row starts with.
    fn epoch_key_columns(&self) -> Columns {
        Columns::typed(
            self.epoch_keys.clone(),
            &self.seen,
            &run_row(&template_record()),
        )
    }
}

/// runs.parquet's rows for `records` (whose [`run_row`]s are `rows`), `finished_at` as a
/// UTC timestamp (so pandas, polars and DuckDB can filter and sort by it).
fn runs_batch(records: &[RunRecord], rows: &[Row], columns: &Columns) -> anyhow::Result<DataFrame> {
    let mut frame = columns.frame(rows)?;
    let finished: Int64Chunked = records
        .iter()
        .map(|r| rfc3339_utc_seconds(&r.finished_at).map(|s| s * 1_000_000))
        .collect();
    let finished = finished
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_series()
        .with_name("finished_at".into());
    frame.replace("finished_at", finished.into())?;
    Ok(frame)
}

/// What a rebuild wrote: the runs in the tables, and each run it had to leave out (its
/// record, or its epochs, could not be read), as "id: why".
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub runs: usize,
    pub left_out: Vec<String>,
}

/// A run's epoch rows: its `epoch_rows.parquet` when that has the expected columns, else
/// built from `epochs.json`; `None` (with a warning naming the files, and the run in
/// `left_out`) when neither reads.
fn run_epochs(dir: &Path, expected: &Schema, left_out: &mut Vec<String>) -> Option<DataFrame> {
    let fragment = dir.join(EPOCH_ROWS_FILE);
    if let Ok(file) = std::fs::File::open(&fragment)
        && let Ok(frame) = ParquetReader::new(file)
            .read_parallel(ParallelStrategy::None)
            .finish()
        && frame.schema().as_ref() == expected
    {
        return Some(frame);
    }
    let path = dir.join("epochs.json");
    let parsed = std::fs::read_to_string(&path)
        .map_err(anyhow::Error::from)
        .and_then(|text| Ok(serde_json::from_str::<Vec<EpochMetrics>>(&text)?))
        .and_then(|epochs| epoch_rows_frame(&epochs));
    match parsed {
        Ok(frame) => Some(frame),
        Err(e) => {
            eprintln!(
                "warning: {}: its epochs are left out of epochs.parquet: {e:#}",
                path.display()
            );
            let id = dir.file_name().unwrap_or_default().to_string_lossy();
            left_out.push(format!("{id}: its epochs ({}): {e:#}", path.display()));
            None
        }
    }
}

/// epochs.parquet's rows for a batch of runs (their [`run_row`]s): each run's key columns
/// (taken from its row: run_id, label, swept keys, seed) repeated beside its epoch rows.
fn epochs_batch(
    out: &ResultsDir,
    rows: &[Row],
    keys: &Columns,
    metrics: &Columns,
    expected: &Schema,
    left_out: &mut Vec<String>,
) -> anyhow::Result<DataFrame> {
    let mut key_rows = Vec::with_capacity(rows.len());
    let mut repeat: Vec<IdxSize> = Vec::new();
    let mut parts: Option<DataFrame> = None;
    for run in rows {
        let id = run
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(epochs) = run_epochs(&out.run_dir(id), expected, left_out) else {
            continue;
        };
        let row: Row = keys
            .names
            .iter()
            .map(|k| (k.clone(), run.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        repeat.extend(std::iter::repeat_n(
            key_rows.len() as IdxSize,
            epochs.height(),
        ));
        key_rows.push(row);
        match &mut parts {
            Some(all) => {
                all.vstack_mut(&epochs)?;
            }
            None => parts = Some(epochs),
        }
    }
    let epochs = match parts {
        Some(frame) => frame,
        None => metrics.frame(&[])?,
    };
    let index = IdxCa::from_vec("".into(), repeat);
    let mut frame = keys.frame(&key_rows)?.take(&index)?;
    frame.hstack_mut(epochs.columns())?;
    Ok(frame)
}

/// The ids of the run folders, sorted (finished or not: pass 1 reads their records).
fn run_ids(out: &ResultsDir) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out.root.join("runs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Rebuilds both tables from the run folders; the caller holds the folder lock (so no other
/// process writes them meanwhile). A run whose record or epochs cannot be read is left out
/// with a warning that names the file, and named in what it returns (never silently).
pub(super) fn rebuild(out: &ResultsDir) -> anyhow::Result<Rebuilt> {
    rebuild_in_batches(out, BATCH)
}

fn rebuild_in_batches(out: &ResultsDir, batch: usize) -> anyhow::Result<Rebuilt> {
    let mut left_out = Vec::new();
    crate::test_signal::table_rebuild_started();
    // Temporaries of the single-file writers before generations, then unfinished ones.
    remove_abandoned_temporaries(&out.runs_parquet());
    remove_abandoned_temporaries(&out.epochs_parquet());
    table_pair::remove_abandoned(out.root());
    let mut shape = Shape::new();
    let mut finished = Vec::new();
    for id in run_ids(out) {
        match read_record(&out.run_dir(&id)) {
            Ok(Some(record)) => {
                shape.add(&record);
                finished.push(id);
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("warning: run {id} left out of the tables: {e:#}");
                left_out.push(format!("{id}: {e:#}"));
            }
        }
    }
    let runs_columns = shape.runs_columns()?;
    let keys = shape.epoch_key_columns();
    let metrics = epoch_columns();
    let expected = metrics.frame(&[])?.schema().as_ref().clone();

    let pair = PairWriter::create(out.root())?;
    let mut runs = ParquetBatches::new(pair.runs());
    let mut epochs = ParquetBatches::new(pair.epochs());
    let mut written = 0;
    let mut batches = finished.chunks(batch).peekable();
    if batches.peek().is_none() {
        runs.write(&mut runs_batch(&[], &[], &runs_columns)?)?;
        epochs.write(&mut epochs_batch(
            out,
            &[],
            &keys,
            &metrics,
            &expected,
            &mut left_out,
        )?)?;
    }
    for ids in batches {
        // Read again: records are small, and holding them all is what memory must not do.
        let records: Vec<RunRecord> = ids
            .iter()
            .filter_map(|id| read_record(&out.run_dir(id)).ok().flatten())
            .collect();
        let rows: Vec<Row> = records.iter().map(run_row).collect();
        runs.write(&mut runs_batch(&records, &rows, &runs_columns)?)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", out.runs_parquet().display()))?;
        epochs
            .write(&mut epochs_batch(
                out,
                &rows,
                &keys,
                &metrics,
                &expected,
                &mut left_out,
            )?)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", out.epochs_parquet().display()))?;
        written += records.len();
        crate::test_signal::during_table_rebuild();
    }
    runs.finish()?;
    epochs.finish()?;
    crate::test_signal::tables_written();
    pair.commit()?;
    Ok(Rebuilt {
        runs: written,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::results::RunStatus;

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    fn epochs(n: usize, base: f64) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|epoch| EpochMetrics {
                epoch,
                examples_seen: 100 * epoch as u64,
                train_elbo: base - epoch as f64,
                test_elbo: (epoch % 2 == 0).then_some(base),
                ..Default::default()
            })
            .collect()
    }

    /// Five runs whose columns only show their types in later runs: the first has no
    /// log p(x), no error and no `data.columns`; a later one has all three.
    fn folder(root: &Path) -> ResultsDir {
        let out = ResultsDir::new(root, "e");
        for i in 0..5u64 {
            let mut record = RunRecord {
                run_id: format!("run{i}"),
                label: format!("seed={i}"),
                experiment: "e".into(),
                swept_keys: "train.seed".into(),
                status: if i == 3 {
                    RunStatus::Failed
                } else {
                    RunStatus::Ok
                },
                finished_at: "2026-11-30T04:39:34Z".into(),
                ..Default::default()
            };
            record.config.train.seed = i;
            if i >= 2 {
                record.test_log_px = Some(-90.0 - i as f64);
                record.config.data.columns = Some(vec!["a".into(), format!("c{i}")]);
            }
            if i == 3 {
                record.error = Some("boom".into());
            }
            out.save_run(&record, &epochs(i as usize + 1, -100.0), "")
                .unwrap();
        }
        out
    }

    #[test]
    fn tables_built_in_batches_equal_one_batch_and_keep_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let out = folder(dir.path());
        assert_eq!(rebuild_in_batches(&out, 2).unwrap().runs, 5);
        let (runs2, epochs2) = (read(&out.runs_parquet()), read(&out.epochs_parquet()));
        assert_eq!(rebuild_in_batches(&out, 1000).unwrap().runs, 5);
        let (runs, epochs) = (read(&out.runs_parquet()), read(&out.epochs_parquet()));
        assert!(runs.equals_missing(&runs2));
        assert!(epochs.equals_missing(&epochs2));

        assert_eq!(runs.height(), 5);
        let log_px: Vec<Option<f64>> = runs
            .column("test_log_px")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(log_px, [None, None, Some(-92.0), Some(-93.0), Some(-94.0)]);
        let columns = runs.column("data.columns").unwrap();
        assert_eq!(columns.dtype(), &DataType::List(Box::new(DataType::String)));
        assert!(columns.get(0).unwrap().is_null());
        let error = runs.column("error").unwrap().str().unwrap().get(3);
        assert_eq!(error, Some("boom"));
        let names: Vec<&str> = runs.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(&names[..4], ["run_id", "label", "status", "train.seed"]);

        // 1 + 2 + 3 + 4 + 5 epoch rows, each with its run's seed.
        assert_eq!(epochs.height(), 15);
        let seeds = epochs.column("train.seed").unwrap().i64().unwrap();
        let epoch = epochs.column("epoch").unwrap().i64().unwrap();
        let ids = epochs.column("run_id").unwrap().str().unwrap();
        let mut row = 0;
        for run in 0..5i64 {
            for e in 1..=run + 1 {
                assert_eq!(ids.get(row), Some(format!("run{run}").as_str()));
                assert_eq!(seeds.get(row), Some(run));
                assert_eq!(epoch.get(row), Some(e));
                row += 1;
            }
        }
    }

    #[test]
    fn epochs_come_from_epochs_json_where_a_run_has_no_epoch_rows_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = folder(dir.path());
        rebuild_in_batches(&out, 2).unwrap();
        let with_fragments = read(&out.epochs_parquet());
        for i in 0..5 {
            std::fs::remove_file(out.run_dir(&format!("run{i}")).join(EPOCH_ROWS_FILE)).unwrap();
        }
        // A folder written before the fragments existed, and one whose fragment is damaged.
        std::fs::write(out.run_dir("run4").join(EPOCH_ROWS_FILE), b"not parquet").unwrap();
        rebuild_in_batches(&out, 2).unwrap();
        assert!(read(&out.epochs_parquet()).equals_missing(&with_fragments));
    }

    #[test]
    fn an_empty_folder_gets_tables_with_every_column_and_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let out = ResultsDir::new(dir.path(), "e");
        std::fs::create_dir_all(out.root.join("runs")).unwrap();
        assert_eq!(rebuild(&out).unwrap().runs, 0);
        let runs = read(&out.runs_parquet());
        assert_eq!(runs.height(), 0);
        assert_eq!(
            runs.column("test_log_px").unwrap().dtype(),
            &DataType::Float64
        );
        assert!(runs.column("finished_at").unwrap().dtype().is_temporal());
        let epochs = read(&out.epochs_parquet());
        assert_eq!(
            epochs.column("test_elbo").unwrap().dtype(),
            &DataType::Float64
        );
    }
}
