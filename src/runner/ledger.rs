//! A run's attempts: how many have begun and the seconds they lasted, in a small file beside
//! its checkpoints, so that the row's `resumes` and `wall_seconds` count every attempt, the
//! killed ones too (up to each one's last save). It goes when the checkpoints go: when the
//! run is recorded, or started again with `--force`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::sinks::results::write_atomic;

/// The ledger's file, in the run's folder.
pub const LEDGER_FILE: &str = "attempts.toml";

#[derive(Debug, Default, Deserialize, Serialize)]
struct Entry {
    /// Attempts begun, this one included.
    attempts: usize,
    /// Seconds of every attempt, up to its last save.
    seconds: f64,
}

/// This attempt's view of the ledger.
#[derive(Clone, Debug)]
pub(super) struct Ledger {
    path: PathBuf,
    before: usize,
    seconds_before: f64,
    started: Instant,
}

impl Ledger {
    /// Reads the ledger in `run_dir` (none with `fresh`) and counts this attempt in it. An
    /// unreadable ledger counts from none (it only ever undercounts).
    pub(super) fn begin(run_dir: &Path, fresh: bool) -> Self {
        let path = run_dir.join(LEDGER_FILE);
        let entry: Entry = std::fs::read_to_string(&path)
            .ok()
            .filter(|_| !fresh)
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default();
        let ledger = Self {
            path,
            before: entry.attempts,
            seconds_before: entry.seconds.max(0.0),
            started: Instant::now(),
        };
        ledger.touch();
        ledger
    }

    /// Attempts before this one.
    pub(super) fn resumes(&self) -> usize {
        self.before
    }

    /// Seconds of every attempt, this one until now.
    pub(super) fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    /// The run is recorded: its attempts are in its row, and the file goes.
    pub(super) fn close(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Brings the file up to date (this attempt's seconds until now). Best effort: a ledger
    /// that cannot be written costs a count, never the run.
    pub(super) fn touch(&self) {
        let entry = Entry {
            attempts: self.before + 1,
            seconds: self.seconds(),
        };
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = toml::to_string(&entry) {
            let _ = write_atomic(&self.path, text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_is_counted_with_its_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ledger::begin(dir.path(), false);
        assert_eq!(first.resumes(), 0);
        drop(first);
        let second = Ledger::begin(dir.path(), false);
        assert_eq!(second.resumes(), 1);
        let third = Ledger::begin(dir.path(), false);
        assert_eq!(third.resumes(), 2);
        assert!(third.seconds() >= second.seconds_before);
        // Started again from scratch, and closed: none left.
        assert_eq!(Ledger::begin(dir.path(), true).resumes(), 0);
        Ledger::begin(dir.path(), false).close();
        assert_eq!(Ledger::begin(dir.path(), false).resumes(), 0);
    }
}
