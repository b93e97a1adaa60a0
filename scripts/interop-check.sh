#!/usr/bin/env bash
# Opens every Parquet file the main job and the trained-model commands write with pandas,
# pyarrow, polars and DuckDB from PyPI (in a venv made here), and checks the documented
# column types (.ci/interop.py). Usage: scripts/interop-check.sh [RUNNER]
set -euo pipefail
cd "$(dirname "$0")/.."
runner="${1:-target/release/runner}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "skipped: python3 is not installed, so pandas/pyarrow/polars/DuckDB cannot be tried"
    exit 0
fi
work="${TMPDIR:-/tmp}/aevb-interop"
rm -rf "$work/results"
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
    "pandas>=3" "pyarrow>=20" polars duckdb
"$runner" sweep experiments/beta_grid.toml --set "runtime.results_dir=$work/results" 2>/dev/null
"$runner" sample beta=1.0,seed=0 --results "$work/results" -n 16 2>&1 | tail -n 3
"$runner" reconstruct beta=1.0,seed=0 --results "$work/results" -n 8 2>&1 | tail -n 2
"$runner" encode beta=1.0,seed=0 --results "$work/results" 2>&1 | tail -n 2
"$runner" eval beta=1.0,seed=0 --results "$work/results" --per-example 2>&1 | tail -n 4
"$work/venv/bin/python" .ci/interop.py "$work/results"
