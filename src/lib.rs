//! aevb: declarative variational-autoencoder experiments (Kingma & Welling's AEVB) on burn.
//!
//! The library is the scientific core (specs, data, models, objectives, training,
//! evaluation) plus the result sinks; the `runner` binary drives it from spec files.

pub mod backend;
pub mod check;
pub mod checkpoint;
pub mod data;
pub mod engine;
pub mod eval;
pub mod fpu;
pub mod interrupt;
pub mod launch;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod resources;
pub mod runner;
pub mod search;
pub mod sinks;
pub mod spec;
pub mod sweep;
pub mod test_signal;
pub mod train;
pub mod trained;

/// Version recorded in every result row and baseline.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The message a panic carried ("" when it carried none).
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
