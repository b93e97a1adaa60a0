#!/usr/bin/env bash
# Reruns the MNIST reproductions and prints the tables of REPRODUCTIONS.md.
# Needs the MNIST IDX files: AEVB_DATA=DIR (default ../shared/data/mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
export AEVB_DATA="${AEVB_DATA:-../shared/data/mnist}"
for spec in pytorch_example aevb_mnist iwae_mnist; do
  cargo run --release --quiet -- sweep "experiments/repro/$spec.toml" "$@"
done
cargo run --release --quiet --example reproductions
