//! A run paused at a successive-halving rung: what it shows the ranking, in a file of its
//! own in the run's folder.

use std::path::Path;

/// What a run paused at a rung shows the ranking (`rung-<epoch>.json` in its folder).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RungResult {
    /// Epochs trained.
    pub epoch: usize,
    pub test_elbo: f64,
    /// The validation set's ELBO, where the run has one (`data.validation`): what the
    /// ranking reads then, so that the test set chooses nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_elbo: Option<f64>,
    pub active_units: usize,
}

impl RungResult {
    /// The ELBO the ranking reads, and the set it is of.
    pub fn ranked_by(&self) -> (f64, &'static str) {
        match self.valid_elbo {
            Some(v) => (v, "validation"),
            None => (self.test_elbo, "test"),
        }
    }

    fn file(run_dir: &Path, epoch: usize) -> std::path::PathBuf {
        run_dir.join(format!("rung-{epoch}.json"))
    }

    /// Written atomically into the run's folder.
    pub fn write(&self, run_dir: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::sinks::results::write_atomic(&Self::file(run_dir, self.epoch), &bytes)
    }

    /// The run's result at `epoch`, if it paused there (none for a run that diverged or
    /// failed before it, or whose file cannot be read).
    pub fn read(run_dir: &Path, epoch: usize) -> Option<Self> {
        let bytes = std::fs::read(Self::file(run_dir, epoch)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
