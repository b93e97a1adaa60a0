//! What every run of one sweep shares, handed to each attempt.

use crate::prepare::DataCache;
use crate::sinks::results::ResultsDir;
use crate::sinks::tensorboard::ExperimentRecord;
use crate::spec::Spec;

/// What every run of one sweep shares.
pub(crate) struct Shared<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) out: &'a ResultsDir,
    pub(crate) datasets: &'a DataCache,
    /// Swept keys shown as text in HParams (integer-valued).
    pub(crate) text_keys: &'a [String],
    /// The sweep's HParams experiment record, written into every run's log.
    pub(crate) experiment: &'a ExperimentRecord,
    /// The git commit of the folder holding the spec, where it is a repository.
    pub(crate) experiments_commit: Option<&'a str>,
    /// Retrain finished runs, and start unfinished ones afresh rather than from checkpoints.
    pub(crate) force: bool,
    /// Runs trained at once: the cores are split between them (`engine::threads_per_run`).
    pub(crate) concurrent: usize,
}
