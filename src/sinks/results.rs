//! The results folder of one experiment:
//!
//! ```text
//! results/<name>/runs.parquet       one row per run (rebuilt after every run)
//! results/<name>/epochs.parquet     one row per run and epoch
//! results/<name>/runs/<id>/         record.json, epochs.json, config.toml, model.safetensors
//!                                   (checkpoints/ while the run trains: see `checkpoint`)
//! results/<name>/tb/<label>/        TensorBoard events
//! ```
//!
//! A run's record is written only when it has finished, and every file is written to a
//! temporary name and renamed into place, so a killed sweep leaves no half-written file and
//! the next invocation redoes only the runs without a record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::Value;

use super::parquet::write_parquet_atomic;
use super::record::template_record;
pub use super::record::{RunRecord, RunStatus};
use crate::train::EpochMetrics;

pub struct ResultsDir {
    pub root: PathBuf,
}

impl ResultsDir {
    pub fn new(results_root: &Path, experiment: &str) -> Self {
        Self {
            root: results_root.join(experiment),
        }
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    pub fn tensorboard_dir(&self) -> PathBuf {
        self.root.join("tb")
    }

    /// Folder for a run's TensorBoard logs: its label, which TensorBoard shows as the run's
    /// name. A label that is not safe as one folder name (a '/', a control character, too
    /// long) is made safe and the run id appended, so that two labels never share a folder.
    pub fn board_dir(&self, label: &str, run_id: &str) -> PathBuf {
        let safe: String = label
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let name = if safe == label && label.len() <= 200 && label != "." && label != ".." {
            safe
        } else {
            let short: String = safe.chars().take(120).collect();
            format!("{short}-{run_id}")
        };
        self.tensorboard_dir().join(name)
    }

    pub fn runs_parquet(&self) -> PathBuf {
        self.root.join("runs.parquet")
    }

    pub fn epochs_parquet(&self) -> PathBuf {
        self.root.join("epochs.parquet")
    }

    /// The finished run's record, if there is one (an unreadable one counts as none: the
    /// run is trained again).
    pub fn record(&self, run_id: &str) -> Option<RunRecord> {
        self.read_run(run_id).ok().flatten().map(|(r, _)| r)
    }

    /// A finished run's record and epochs: `Ok(None)` when it has not finished, an error
    /// naming the file when a file is there but cannot be read.
    pub fn read_run(&self, run_id: &str) -> anyhow::Result<Option<(RunRecord, Vec<EpochMetrics>)>> {
        let dir = self.run_dir(run_id);
        let Some(record) = read_record(&dir)? else {
            return Ok(None);
        };
        let epochs_path = dir.join("epochs.json");
        let text = std::fs::read_to_string(&epochs_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", epochs_path.display()))?;
        let epochs = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", epochs_path.display()))?;
        Ok(Some((record, epochs)))
    }

    pub fn save_run(
        &self,
        record: &RunRecord,
        epochs: &[EpochMetrics],
        spec_toml: &str,
    ) -> anyhow::Result<()> {
        let dir = self.run_dir(&record.run_id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        write_atomic(&dir.join("config.toml"), spec_toml.as_bytes())?;
        write_atomic(
            &dir.join("epochs.json"),
            &serde_json::to_vec_pretty(epochs)?,
        )?;
        // Written last: its presence is what marks the run finished.
        self.save_record(record)
    }

    /// Writes a run's `record.json` (what marks it finished), atomically.
    pub fn save_record(&self, record: &RunRecord) -> anyhow::Result<()> {
        write_atomic(
            &self.run_dir(&record.run_id).join("record.json"),
            &serde_json::to_vec_pretty(record)?,
        )
    }

    /// Every finished run's record and epochs, in run-id order; a run folder whose files
    /// cannot be read is left out with a warning that names the file (never silently).
    pub fn load_all(&self) -> Vec<(RunRecord, Vec<EpochMetrics>)> {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| match self.read_run(&id) {
                Ok(run) => run,
                Err(e) => {
                    eprintln!("warning: run {id} left out of the tables: {e:#}");
                    None
                }
            })
            .collect()
    }

    /// The exclusive right to train `run_id`, or `None` while another process holds it.
    pub fn claim(&self, run_id: &str) -> anyhow::Result<Option<super::claims::Lock>> {
        super::claims::try_claim(&self.run_dir(run_id).join(".claim"))
    }

    /// The folder lock, held while reading everything and rewriting a shared file.
    pub fn lock(&self) -> anyhow::Result<super::claims::Lock> {
        super::claims::lock(&self.root.join(".lock"))
    }

    /// Rebuilds runs.parquet and epochs.parquet from the finished runs' records, under the
    /// folder lock, so that a concurrent process never replaces them with an older view.
    pub fn write_tables(&self) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let all = self.load_all();
        let records: Vec<&RunRecord> = all.iter().map(|(r, _)| r).collect();
        let mut runs = runs_frame(&records)?;
        write_parquet_atomic(&self.runs_parquet(), &mut runs)?;
        let mut epochs = epochs_frame(&all)?;
        write_parquet_atomic(&self.epochs_parquet(), &mut epochs)?;
        Ok(())
    }
}

/// The record in the run folder `dir`: `Ok(None)` when the run has not finished (no
/// `record.json`), an error naming the file when it is there but cannot be read.
pub fn read_record(dir: &Path) -> anyhow::Result<Option<RunRecord>> {
    let path = dir.join("record.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    let record =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Some(record))
}

/// Writes `path` so that it is either the old file or the whole new one, even after a
/// kill -9 or a power cut: a temporary file beside it (unique per process and call, so
/// concurrent writers never share one), fsync, rename over the target, fsync the folder.
/// Errors name the path; a failed write removes its temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |file| {
        use std::io::Write;
        file.write_all(bytes)?;
        Ok(())
    })
}

pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename itself durable; not every filesystem supports it.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| anyhow::anyhow!("cannot write {}: {e:#}", path.display()))
}

/// Columns of runs.parquet: identity and metrics first, then every config key (dotted).
pub fn runs_frame(records: &[&RunRecord]) -> anyhow::Result<DataFrame> {
    let rows: Vec<BTreeMap<String, Value>> = records.iter().map(|r| run_row(r)).collect();
    // Metric columns in record order, config columns (dotted) after them; taken from the
    // template so that a folder with no finished run still gets a table with every column.
    let template = template_record();
    let mut order: Vec<String> = Vec::new();
    if let Value::Object(record) = serde_json::to_value(&template)? {
        order.extend(record.keys().filter(|k| *k != "config").cloned());
    }
    let mut config_keys: BTreeSet<String> = crate::sweep::flatten(&template.config)
        .into_keys()
        .collect();
    for row in &rows {
        config_keys.extend(row.keys().filter(|k| k.contains('.')).cloned());
    }
    order.extend(config_keys);
    // What people look at first: which run, how it ended, and what was swept.
    let mut front: Vec<String> = ["run_id", "label", "status"].map(String::from).to_vec();
    for r in records {
        for k in r.swept_keys.split(',').filter(|k| !k.is_empty()) {
            if !front.iter().any(|f| f == k) {
                front.push(k.to_string());
            }
        }
    }
    order.retain(|k| !front.contains(k));
    front.extend(order);
    let mut frame = frame_from_rows(&rows, &front, &run_row(&template))?;
    // A timestamp, not text, so pandas, polars and DuckDB can filter and sort by it.
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

/// UTC time as RFC 3339, without a date-time dependency.
pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch of a UTC timestamp as the runner writes it
/// (`utc_now_rfc3339`: `2026-11-30T04:39:34Z`); `None` for anything else.
pub fn rfc3339_utc_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of the runner's formatter.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn run_row(record: &RunRecord) -> BTreeMap<String, Value> {
    let mut row: BTreeMap<String, Value> = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map.into_iter().filter(|(k, _)| k != "config").collect(),
        _ => BTreeMap::new(),
    };
    row.extend(crate::sweep::flatten(&record.config));
    row
}

fn epochs_frame(all: &[(RunRecord, Vec<EpochMetrics>)]) -> anyhow::Result<DataFrame> {
    // Each row carries its run's swept values and seed, so per-seed curves need no join.
    let mut order = vec!["run_id".to_string(), "label".to_string()];
    let mut rows = Vec::new();
    for (record, epochs) in all {
        let flat = crate::sweep::flatten(&record.config);
        let mut keys: Vec<&str> = record
            .swept_keys
            .split(',')
            .filter(|k| !k.is_empty())
            .collect();
        keys.push("train.seed");
        for k in &keys {
            if !order.iter().any(|o| o == k) {
                order.push(k.to_string());
            }
        }
        for e in epochs {
            let mut row = BTreeMap::new();
            row.insert("run_id".to_string(), Value::String(record.run_id.clone()));
            row.insert("label".to_string(), Value::String(record.label.clone()));
            for k in &keys {
                row.insert(k.to_string(), flat.get(*k).cloned().unwrap_or(Value::Null));
            }
            if let Value::Object(map) = serde_json::to_value(e)? {
                row.extend(map);
            }
            rows.push(row);
        }
    }
    let template = EpochMetrics {
        train_tc: Some(0.0),
        capacity: Some(0.0),
        train_discriminator_loss: Some(0.0),
        test_elbo: Some(0.0),
        test_recon: Some(0.0),
        test_kl: Some(0.0),
        test_elbo_se: Some(0.0),
        test_kl_se: Some(0.0),
        ..Default::default()
    };
    let mut template_row = BTreeMap::new();
    if let Value::Object(map) = serde_json::to_value(template)? {
        order.extend(map.keys().cloned());
        template_row.extend(map);
    }
    frame_from_rows(&rows, &order, &template_row)
}

/// A list column (hidden widths, table columns): List(Int64) when every element is an
/// integer, else List(String).
fn list_column(name: &str, values: &[&Value], present: &[&Value]) -> Column {
    let ints = present
        .iter()
        .filter_map(|v| v.as_array())
        .flatten()
        .all(|x| x.is_i64() || x.is_u64());
    if values.iter().all(|v| v.is_null()) {
        let inner = if ints {
            DataType::Int64
        } else {
            DataType::String
        };
        return ListChunked::full_null_with_dtype(name.into(), values.len(), &inner)
            .into_series()
            .into();
    }
    let lists: ListChunked = values
        .iter()
        .map(|v| {
            v.as_array().map(|items| {
                if ints {
                    Series::new(
                        "".into(),
                        items.iter().map(|x| x.as_i64()).collect::<Vec<_>>(),
                    )
                } else {
                    let text: Vec<String> = items
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect();
                    Series::new("".into(), text)
                }
            })
        })
        .collect();
    lists.into_series().with_name(name.into()).into()
}

/// A typed frame: a column is a list, Int64, Float64, Boolean or String by the JSON values
/// it holds (ints mixed with floats are Float64), with nulls where a row has no value; a
/// column with no values at all takes its type from `template`.
fn frame_from_rows(
    rows: &[BTreeMap<String, Value>],
    order: &[String],
    template: &BTreeMap<String, Value>,
) -> anyhow::Result<DataFrame> {
    let mut columns = Vec::with_capacity(order.len());
    for name in order {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(name).unwrap_or(&Value::Null))
            .collect();
        let mut present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
        if present.is_empty() {
            present.extend(template.get(name).filter(|v| !v.is_null()));
        }
        let all = |f: fn(&Value) -> bool| !present.is_empty() && present.iter().all(|v| f(v));
        let column: Column = if all(Value::is_array) {
            list_column(name, &values, &present)
        } else if all(Value::is_boolean) {
            Column::new(
                name.into(),
                values.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
            )
        } else if all(|v| v.is_i64() || v.is_u64()) {
            Column::new(
                name.into(),
                values.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
            )
        } else if all(Value::is_number) {
            Column::new(
                name.into(),
                values.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
            )
        } else {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    })
                    .collect::<Vec<_>>(),
            )
        };
        columns.push(column);
    }
    Ok(DataFrame::new(rows.len(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_parse_to_unix_seconds() {
        assert_eq!(rfc3339_utc_seconds("1970-01-01T00:00:00Z"), Some(0));
        // 2000-03-01 is day 11017 (after a leap February in a century leap year).
        assert_eq!(
            rfc3339_utc_seconds("2000-03-01T00:00:00Z"),
            Some(11_017 * 86_400)
        );
        assert_eq!(
            rfc3339_utc_seconds("2026-11-30T04:39:34Z"),
            Some(20_787 * 86_400 + 4 * 3600 + 39 * 60 + 34)
        );
        assert_eq!(rfc3339_utc_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(rfc3339_utc_seconds("yesterday"), None);
        // What the runner writes reads back.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let back = rfc3339_utc_seconds(&utc_now_rfc3339()).unwrap();
        assert!((back - now).abs() <= 1, "{back} vs {now}");
    }
}
