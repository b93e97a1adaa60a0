//! The results folder of one experiment:
//!
//! ```text
//! results/<name>/runs.parquet       one row per run
//! results/<name>/epochs.parquet     one row per run and epoch
//! results/<name>/runs/<id>/         record.json, epochs.json (and the same rows as
//!                                   epoch_rows.parquet), config.toml, model.safetensors
//!                                   (checkpoints/ while the run trains: see `checkpoint`)
//! results/<name>/tb/<label>/        TensorBoard events
//! ```
//!
//! A run's record is written only when it has finished, and every file is written to a
//! temporary name and renamed into place, so a killed sweep leaves no half-written file and
//! the next invocation redoes only the runs without a record.
//!
//! A finished run writes only its own folder: the tables are rebuilt from the folders
//! (`tables`) at the end of a sweep, by `runner collect`, and while a long sweep runs at
//! most every [`TABLE_REFRESH`], so the work per finished run does not grow with the folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::atomic::{write_atomic, write_atomic_with};
use super::epoch_rows::{EPOCH_ROWS_FILE, epoch_rows_frame};
use super::parquet::write_parquet_atomic_with;
pub use super::record::{RunRecord, RunStatus};
use crate::train::EpochMetrics;

/// How stale the tables may get while runs finish: a process that finishes a run rebuilds
/// them when they are older than this (and no other process is rebuilding them). Rebuilding
/// reads every run folder, so doing it after every run made a sweep quadratic in the runs.
pub const TABLE_REFRESH: Duration = Duration::from_secs(300);

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

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runs_parquet(&self) -> PathBuf {
        self.root.join(super::table_pair::RUNS)
    }

    pub fn epochs_parquet(&self) -> PathBuf {
        self.root.join(super::table_pair::EPOCHS)
    }

    /// The finished run's record, if there is one (an unreadable one counts as none: the
    /// run is trained again).
    pub fn record(&self, run_id: &str) -> Option<RunRecord> {
        read_record(&self.run_dir(run_id)).ok().flatten()
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
        // Uncompressed: a rebuild reads thousands of these, and starting a decompressor for
        // every column of every file costs more than the bytes saved.
        write_parquet_atomic_with(
            &dir.join(EPOCH_ROWS_FILE),
            &mut epoch_rows_frame(epochs)?,
            polars::prelude::ParquetCompression::Uncompressed,
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

    /// The exclusive right to train `run_id`, or `None` while another process holds it.
    pub fn claim(&self, run_id: &str) -> anyhow::Result<Option<super::claims::Lock>> {
        super::claims::try_claim(&self.run_dir(run_id).join(".claim"))
    }

    /// The folder lock, held while reading everything and rewriting a shared file.
    pub fn lock(&self) -> anyhow::Result<super::claims::Lock> {
        super::claims::lock(&self.lock_path())
    }

    /// The folder lock if no other process holds it now, else `None`.
    pub fn try_lock(&self) -> anyhow::Result<Option<super::claims::Lock>> {
        super::claims::try_claim(&self.lock_path())
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Both tables exist and were written less than `max_age` ago.
    pub(super) fn tables_fresh(&self, max_age: Duration) -> bool {
        let age = |p: PathBuf| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
        };
        matches!(
            (age(self.runs_parquet()), age(self.epochs_parquet())),
            (Some(a), Some(_)) if a < max_age
        )
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
