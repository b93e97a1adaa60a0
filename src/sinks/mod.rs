//! Where results go: Parquet tables and per-run records, and TensorBoard logs.

pub mod claims;
pub mod results;
pub mod tensorboard;
