//! The integration tests, one binary (as ripgrep keeps them): each module tests one area of
//! the `runner` binary or the library end to end; `common` holds what they share. The
//! numerical checks against closed forms and references are `tests/numerics.rs`, a binary of
//! their own because they also run on a GPU (`scripts/gpu-check.sh numerics`).

mod common;

mod bad_inputs;
mod checkpoints;
mod cifar;
mod conv;
mod estimates;
mod failures;
mod fashion_mnist;
mod fused;
mod fused_conv;
mod image_folder;
mod launch;
mod layering;
mod objectives;
mod parquet_files;
mod runner_cli;
mod search;
mod sprites;
mod vamp;
