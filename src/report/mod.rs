//! `runner report`: aggregate a results folder over seeds, print the table, draw the plots.

pub mod coverage;
mod frame;
mod planes;
pub mod plots;
mod points;
pub mod significance;
pub mod stats;
pub mod studies;

use std::path::{Path, PathBuf};

use polars::prelude::*;

pub use frame::{DISENTANGLEMENT, METRICS, metrics_of};
pub(crate) use frame::{cell_text, floats, texts};
pub use plots::write_plots;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

/// The keys a results folder was swept over (less the seed, which is aggregated over).
pub fn default_group_keys(runs: &DataFrame) -> Vec<String> {
    let Ok(col) = runs.column("swept_keys") else {
        return Vec::new();
    };
    let Ok(strings) = col.str() else {
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::new();
    for s in strings.iter().flatten() {
        for k in s.split(',').filter(|k| !k.is_empty()) {
            if k != "train.seed" && !keys.iter().any(|x| x == k) {
                keys.push(k.to_string());
            }
        }
    }
    keys
}

/// Settings that may differ between runs of one group without changing their numbers.
const NEUTRAL_KEYS: [&str; 4] = [
    "train.seed",
    "runtime.workers",
    "runtime.results_dir",
    "runtime.device_index",
];

/// Record columns that say how a row's numbers were computed, besides its config: the
/// version, the engine, and the importance sampler's K and examples (`runner eval` can give
/// one run a K = 1000 estimate while the others keep K = 5000: never averaged together).
const ESTIMATE_KEYS: [&str; 4] = ["aevb_version", "backend", "log_px_k", "log_px_examples"];

/// Config keys (and the `ESTIMATE_KEYS`) that take more than one value within a group of
/// `by` but are not in `by`: aggregating over them would mix different experiments (runs of
/// `epochs = 2` and `epochs = 40` averaged as if seeds), so the report groups by them too.
/// A key that the swept keys determine (the engine each objective trains on) mixes nothing
/// and is left out.
pub fn varying_keys(runs: &DataFrame, by: &[String]) -> Vec<String> {
    let text = |name: &str| -> Option<Vec<String>> {
        let column = runs.column(name).ok()?.cast(&DataType::String).ok()?;
        let strings = column.str().ok()?;
        Some(
            strings
                .iter()
                .map(|v| v.unwrap_or("\u{0}null").to_string())
                .collect(),
        )
    };
    let groups: Vec<String> = {
        let columns: Vec<Vec<String>> = by.iter().filter_map(|k| text(k)).collect();
        (0..runs.height())
            .map(|i| {
                columns
                    .iter()
                    .map(|c| c[i].as_str())
                    .collect::<Vec<_>>()
                    .join("\u{1}")
            })
            .collect()
    };
    runs.get_column_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| n.contains('.') || ESTIMATE_KEYS.contains(&n.as_str()))
        .filter(|n| !NEUTRAL_KEYS.contains(&n.as_str()) && !by.contains(n))
        .filter(|n| {
            let Some(values) = text(n) else { return false };
            let mut seen: std::collections::HashMap<&str, &str> = Default::default();
            groups
                .iter()
                .zip(&values)
                .any(|(g, v)| *seen.entry(g.as_str()).or_insert(v.as_str()) != v.as_str())
        })
        .collect()
}

/// Bernoulli log-probabilities and Gaussian log-densities are on different scales (a density
/// can exceed 1), so a table that ranks both together ranks nothing.
pub fn scale_warning(runs: &DataFrame) -> Option<String> {
    let likelihoods = runs
        .column("model.likelihood")
        .ok()?
        .as_materialized_series()
        .n_unique()
        .ok()?;
    (likelihoods > 1).then(|| {
        "these runs use more than one likelihood (model.likelihood): Bernoulli log-probabilities and Gaussian log-densities are on different scales, so compare ELBOs and log p(x) within one likelihood, not across the ranking".to_string()
    })
}

pub fn read_runs(dir: &Path) -> anyhow::Result<DataFrame> {
    // A folder that is not a results folder is bad input (exit 2), as a bad spec is.
    let bad = |message: &str| crate::spec::SpecError::new(dir.display().to_string(), "-", message);
    if !dir.is_dir() {
        return Err(
            bad("not a folder; expected a results folder such as results/beta_grid").into(),
        );
    }
    let path = dir.join("runs.parquet");
    if !path.is_file() {
        return Err(bad("no runs.parquet here; run `runner sweep SPEC` first").into());
    }
    let runs = scan(&path)?
        .collect()
        .map_err(|e| anyhow::anyhow!("{}: not a readable Parquet file: {e}", path.display()))?;
    if runs.height() == 0 || !runs.schema().contains("status") {
        return Err(bad("runs.parquet holds no runs yet").into());
    }
    Ok(runs)
}

fn scan(path: &Path) -> anyhow::Result<LazyFrame> {
    let lazy = PlRefPath::try_from_path(path)
        .map_err(anyhow::Error::from)
        .and_then(|p| Ok(LazyFrame::scan_parquet(p, ScanArgsParquet::default())?));
    lazy.map_err(|e| anyhow::anyhow!("{}: not a readable Parquet file: {e:#}", path.display()))
}

/// Groups runs by `by` and aggregates over the rest (seeds): counts of ok, diverged and
/// failed runs,
/// mean and sample standard deviation of each metric over the ok runs, best group first
/// (highest mean of `metric`; failed groups last).
pub fn aggregate(runs_parquet: &Path, by: &[String], metric: &str) -> anyhow::Result<DataFrame> {
    let runs = scan(runs_parquet)?.collect()?;
    aggregate_runs(&runs, &runs_parquet.display().to_string(), by, metric)
}

/// [`aggregate`] of runs already read; `source` names them in messages.
pub fn aggregate_runs(
    runs: &DataFrame,
    source: &str,
    by: &[String],
    metric: &str,
) -> anyhow::Result<DataFrame> {
    let lf = runs.clone().lazy();
    let runs = runs.clone();
    let metrics = metrics_of(&runs);
    anyhow::ensure!(
        metrics.contains(&metric),
        "--metric {metric}: expected one of {} (in {source})",
        metrics.join(", "),
    );
    let schema = runs.schema().clone();
    for key in by {
        if !schema.contains(key) {
            let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
            let hint = crate::spec::closest(key, &names)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            anyhow::bail!("--by {key}: no such column in {source}{hint}");
        }
    }
    let (lf, keys): (LazyFrame, Vec<Expr>) = if by.is_empty() {
        (
            lf.with_column(lit("all").alias("group")),
            vec![col("group")],
        )
    } else {
        (lf, by.iter().map(|k| col(k.as_str())).collect())
    };
    let ok = col("status").eq(lit("ok"));
    let diverged = col("status").eq(lit("diverged"));
    let mut aggs = vec![
        ok.clone().cast(DataType::UInt32).sum().alias("ok"),
        diverged
            .clone()
            .cast(DataType::UInt32)
            .sum()
            .alias("diverged"),
        (ok.clone().or(diverged))
            .not()
            .cast(DataType::UInt32)
            .sum()
            .alias("failed"),
    ];
    for &m in &metrics {
        let values = col(m).cast(DataType::Float64).filter(ok.clone());
        aggs.push(values.clone().mean().alias(format!("{m}_mean")));
        aggs.push(values.std(1).alias(format!("{m}_std")));
    }
    let sorted = lf
        .group_by_stable(keys)
        .agg(aggs)
        .sort(
            [format!("{metric}_mean")],
            SortMultipleOptions::default()
                .with_order_descending(true)
                .with_nulls_last(true),
        )
        .collect()?;
    let mut out = sorted;
    significance::add_intervals(&mut out, &runs, by, metric, &metrics)?;
    Ok(out)
}

/// The aggregate as text in the chosen format.
pub fn render(table: &DataFrame, format: Format) -> anyhow::Result<String> {
    let mut df = table.clone();
    Ok(match format {
        Format::Csv => {
            let mut buf = Vec::new();
            CsvWriter::new(&mut buf).finish(&mut df)?;
            String::from_utf8(buf)?
        }
        Format::Json => json_rows(&df)? + "\n",
        Format::Table | Format::Markdown => text_table(&df, format == Format::Markdown),
    })
}

/// Any table as text: CSV and JSON as [`render`] writes them, tables with every column.
pub fn render_plain(table: &DataFrame, format: Format) -> anyhow::Result<String> {
    if matches!(format, Format::Csv | Format::Json) {
        return render(table, format);
    }
    let names: Vec<String> = table
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cell = |name: &str, i: usize| -> String {
        match table.column(name).and_then(|c| c.get(i)) {
            Ok(AnyValue::Float64(f)) => format!("{f:.3}"),
            _ => cell_text(table, name, i),
        }
    };
    let rows: Vec<Vec<String>> = (0..table.height())
        .map(|i| names.iter().map(|n| cell(n, i)).collect())
        .collect();
    Ok(grid(&names, &rows, format == Format::Markdown))
}

/// Rows under a header, columns padded; a Markdown table with `markdown`.
fn grid(header: &[String], rows: &[Vec<String>], markdown: bool) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|j| {
            rows.iter()
                .map(|r| r[j].chars().count())
                .chain([header[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        if markdown {
            format!("| {} |", padded.join(" | "))
        } else {
            padded.join("  ").trim_end().to_string()
        }
    };
    let mut out = vec![line(header)];
    if markdown {
        out.push(format!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        ));
    }
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n") + "\n"
}

/// The table as a JSON array of row objects (nulls for missing values).
fn json_rows(df: &DataFrame) -> anyhow::Result<String> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = (0..df.height())
        .map(|i| {
            names
                .iter()
                .map(|name| {
                    let v = match df.column(name).and_then(|c| c.get(i)) {
                        Ok(AnyValue::Boolean(b)) => serde_json::Value::Bool(b),
                        Ok(v @ (AnyValue::String(_) | AnyValue::StringOwned(_))) => {
                            serde_json::Value::String(v.str_value().to_string())
                        }
                        Ok(AnyValue::Null) | Err(_) => serde_json::Value::Null,
                        Ok(v) => v
                            .extract::<f64>()
                            .and_then(serde_json::Number::from_f64)
                            .map(serde_json::Value::Number)
                            .unwrap_or_else(|| serde_json::Value::String(v.to_string())),
                    };
                    (name.clone(), v)
                })
                .collect()
        })
        .collect();
    Ok(serde_json::to_string_pretty(&rows)?)
}

/// Group keys, counts and "mean ± sd [95% CI]" per metric; the top group is marked `best`
/// only where it is significantly better than the runner-up.
fn text_table(df: &DataFrame, markdown: bool) -> String {
    let key_cols: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .take_while(|n| n != "ok")
        .collect();
    let metrics: Vec<&str> = METRICS
        .into_iter()
        .chain(DISENTANGLEMENT)
        .filter(|m| df.column(&format!("{m}_mean")).is_ok())
        .collect();
    let mut header: Vec<String> = key_cols.clone();
    header.extend(["ok".into(), "diverged".into(), "failed".into()]);
    header.extend(metrics.iter().map(|m| m.to_string()));
    header.push(String::new());
    // Floats as Rust writes them (1 rather than polars' 1.0), like the run labels.
    let cell = |name: &str, i: usize| -> String {
        match df.column(name).and_then(|c| c.get(i)) {
            Ok(AnyValue::Float64(f)) => format!("{f}"),
            _ => cell_text(df, name, i),
        }
    };
    let num = |name: &str, i: usize| -> Option<f64> { df.column(name).ok()?.f64().ok()?.get(i) };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for i in 0..df.height() {
        let mut row: Vec<String> = key_cols.iter().map(|k| cell(k, i)).collect();
        row.push(cell("ok", i));
        row.push(cell("diverged", i));
        row.push(cell("failed", i));
        for m in &metrics {
            let ci = |end: &str| num(&format!("{m}_ci95_{end}"), i);
            row.push(
                match (num(&format!("{m}_mean"), i), num(&format!("{m}_std"), i)) {
                    (Some(mean), Some(std)) => match (ci("lo"), ci("hi")) {
                        (Some(lo), Some(hi)) => format!("{mean:.2} ± {std:.2} [{lo:.2}, {hi:.2}]"),
                        _ => format!("{mean:.2} ± {std:.2}"),
                    },
                    (Some(mean), None) => format!("{mean:.2}"),
                    _ => "-".into(),
                },
            );
        }
        let best = df
            .column("best")
            .ok()
            .and_then(|c| c.bool().ok()?.get(i))
            .unwrap_or(false);
        row.push(match (i, best) {
            (0, true) => "best".into(),
            (0, false) if df.height() > 1 && num(&format!("{}_mean", METRICS[0]), 0).is_some() => {
                "top, not significant".into()
            }
            _ => String::new(),
        });
        rows.push(row);
    }
    let mut text = grid(&header, &rows, markdown);
    text.push_str(
        "\nmetrics: mean ± sd over seeds [95% CI, Student t]; best: better than the runner-up with 95% confidence (paired over shared seeds)\n",
    );
    text
}

/// Where the report's files go: `<results>/<name>/report/`.
/// How many runs ended before their epochs, by kind of reason (the words before the
/// first `:` of `stop_reason`: `collapsed`, `halving`, `stopped early`), or None if none did.
pub fn stop_reasons(runs: &DataFrame) -> Option<String> {
    let column = runs
        .column("stop_reason")
        .ok()?
        .cast(&DataType::String)
        .ok()?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for reason in column.str().ok()?.iter().flatten() {
        let kind = reason
            .split(':')
            .next()
            .unwrap_or(reason)
            .trim()
            .to_string();
        *counts.entry(kind).or_default() += 1;
    }
    (!counts.is_empty()).then(|| {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "ended before their epochs: {} (of {} runs)",
            parts.join(", "),
            runs.height()
        )
    })
}

pub fn report_dir(results: &Path) -> PathBuf {
    results.join("report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_of_different_k_or_engines_are_grouped_apart_and_seeds_are_not() {
        let runs = df!(
            "objective.beta" => [1.0, 1.0, 1.0],
            "train.seed" => [0i64, 1, 2],
            "log_px_k" => [5000i64, 5000, 1000],
            "log_px_examples" => [100i64, 100, 100],
            "backend" => ["fused", "fused", "fused"],
        )
        .unwrap();
        let by = vec!["objective.beta".to_string()];
        assert_eq!(varying_keys(&runs, &by), vec!["log_px_k".to_string()]);
        let engines = df!(
            "objective.beta" => [1.0, 1.0],
            "backend" => ["fused", "flex"],
        )
        .unwrap();
        assert_eq!(varying_keys(&engines, &by), vec!["backend".to_string()]);
        // An engine each objective determines varies between groups, not within one.
        let objectives = df!(
            "objective.kind" => ["elbo", "elbo", "factor_vae", "factor_vae"],
            "train.seed" => [0i64, 1, 0, 1],
            "backend" => ["fused", "fused", "flex", "flex"],
        )
        .unwrap();
        let by = vec!["objective.kind".to_string()];
        assert!(varying_keys(&objectives, &by).is_empty());
    }

    #[test]
    fn stop_reasons_are_counted_by_kind() {
        let runs = df!(
            "stop_reason" => [
                Some("collapsed: 0 active latent units at rung 1"),
                Some("halving: rank 3 of 4"),
                Some("collapsed: 1 active latent units at rung 2"),
                None,
            ],
        )
        .unwrap();
        assert_eq!(
            stop_reasons(&runs).unwrap(),
            "ended before their epochs: 2 collapsed, 1 halving (of 4 runs)"
        );
        assert!(stop_reasons(&df!("stop_reason" => [None::<&str>]).unwrap()).is_none());
    }
}
