//! Experiment specs: the typed schema, loading (TOML/YAML, env, `--set`) and validation.
//!
//! Precedence, lowest first: built-in defaults < the spec file < `AEVB_*` environment
//! variables < `--set section.key=value`. Every error names the file, the dotted key and
//! what was expected, and is raised before anything trains or is written.

mod conv;
mod document;
mod error;
mod file;
mod load;
mod paths;
mod runtime;
mod search;
mod sections;
mod validate;

pub use document::{RunConfig, Spec, SweepConfig, spec_files};
pub use error::{SpecError, closest};
pub use load::{DATA_DIR_ENV, load};
pub use paths::absolute_from;
pub use runtime::{BackendKind, K8sConfig, RuntimeConfig, SlurmConfig};
pub use search::{Distribution, HalvingConfig, HalvingMetric, SearchConfig};
pub use sections::*;
pub use validate::validate_run;
