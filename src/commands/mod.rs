//! What each `runner` command does, beyond parsing its arguments (`main.rs`).

pub mod cluster;
pub mod results;
pub mod study_figures;
pub mod trained;
pub mod training;
