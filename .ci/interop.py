"""Open every Parquet file a results folder holds with pandas, pyarrow, polars and DuckDB,
and check the column types that results/README.md documents.

Usage: python .ci/interop.py RESULTS_DIR [RESULTS_DIR ...]
Exit 1 on the first file a reader cannot open or a documented type that does not match.
"""

import pathlib
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

# results/README.md: the types of runs.parquet's columns a reader relies on.
RUNS_TYPES = {
    "run_id": pa.types.is_large_string,
    "status": pa.types.is_large_string,
    "test_elbo": pa.types.is_float64,
    "test_log_px": pa.types.is_float64,
    "test_elbo_se": pa.types.is_float64,
    "test_log_px_se": pa.types.is_float64,
    "log_px_ess_mean": pa.types.is_float64,
    "log_px_k": pa.types.is_int64,
    "epochs_done": pa.types.is_int64,
    "threads": pa.types.is_int64,
    "runtime.threads": pa.types.is_int64,
    "finished_at": lambda t: pa.types.is_timestamp(t) and t.unit == "us" and t.tz == "UTC",
    "model.encoder.hidden": lambda t: pa.types.is_large_list(t) and pa.types.is_int64(t.value_type),
    "data.columns": lambda t: pa.types.is_large_list(t) and pa.types.is_large_string(t.value_type),
}
EPOCHS_TYPES = {
    "run_id": pa.types.is_large_string,
    "epoch": pa.types.is_int64,
    "train_elbo": pa.types.is_float64,
    "test_elbo": pa.types.is_float64,
}


def has_view(t: pa.DataType) -> bool:
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return has_view(t.value_type)
    if pa.types.is_struct(t):
        return any(has_view(t.field(i).type) for i in range(t.num_fields))
    return False


def check(path: pathlib.Path) -> list[str]:
    problems = []
    schema = pq.read_schema(path)
    for field in schema:
        if has_view(field.type):
            problems.append(f"column {field.name} has a view type: {field.type}")
    frame = pd.read_parquet(path)  # the call a first user's failed with
    table = pq.read_table(path)
    lazy = pl.read_parquet(path)
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    if not (len(frame) == table.num_rows == lazy.height == rows):
        problems.append(f"row counts differ: pandas {len(frame)}, pyarrow {table.num_rows}, polars {lazy.height}, duckdb {rows}")
    expected = {"runs.parquet": RUNS_TYPES, "epochs.parquet": EPOCHS_TYPES}.get(path.name, {})
    for name, ok in expected.items():
        if name not in schema.names:
            problems.append(f"documented column {name} is missing")
        elif not ok(schema.field(name).type):
            problems.append(f"column {name} is {schema.field(name).type}")
    if path.name == "runs.parquet":
        # pandas sees the timestamp as one, and the list column as Python lists.
        if not str(frame["finished_at"].dtype).startswith("datetime64"):
            problems.append(f"pandas reads finished_at as {frame['finished_at'].dtype}")
    if path.name == "per_example.parquet":
        problems += standard_errors_agree(path, frame)
    return problems


def standard_errors_agree(path: pathlib.Path, rows: pd.DataFrame) -> list:
    """The run's recorded SEs are pandas' std (ddof = 1) of the per-example rows over √n."""
    run_id = path.parent.name
    runs = pd.read_parquet(path.parent.parent.parent / "runs.parquet")
    run = runs[runs["run_id"] == run_id].iloc[0]
    problems = []
    for column, recorded in [("elbo", "test_elbo_se"), ("log_px", "test_log_px_se"), ("kl", "test_kl_se")]:
        values = rows[column].dropna()
        se = values.std() / len(values) ** 0.5
        if abs(se - run[recorded]) > 1e-9:
            problems.append(f"{recorded} {run[recorded]} but pandas gives {se} from the rows")
    if abs(rows["log_px"].dropna().mean() - run["test_log_px"]) > 1e-9:
        problems.append("test_log_px is not the mean of the rows")
    return problems


def main() -> int:
    files = sorted(p for d in sys.argv[1:] for p in pathlib.Path(d).rglob("*.parquet"))
    if not files:
        print("interop: no Parquet files found", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        problems = check(path)
        status = "ok" if not problems else "FAIL"
        print(f"{status:4} {path}")
        for p in problems:
            print(f"     {p}")
        failed += bool(problems)
    print(
        f"interop: {len(files)} files opened with pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"polars {pl.__version__}, duckdb {duckdb.__version__}; {failed} with problems"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
