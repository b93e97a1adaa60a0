//! Where results go: Parquet tables and per-run records, TensorBoard logs, trained models.

pub mod atomic;
pub mod claims;
mod columns;
mod epoch_rows;
pub mod font;
pub mod grid;
pub mod model_file;
pub mod parquet;
pub mod record;
pub mod results;
mod table_pair;
pub mod tables;
pub mod tensorboard;
