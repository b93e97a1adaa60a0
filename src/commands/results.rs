//! `runner report` and `runner check`: results into tables, plots and CI gates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aevb::{check, prepare, report, runner, spec};

use crate::{SpecArgs, load};

pub fn report_command(
    dirs: &[PathBuf],
    metric: &str,
    by: Option<Vec<String>>,
    format: report::Format,
) -> anyhow::Result<ExitCode> {
    if let [dir] = dirs {
        return report_one(dir, metric, by, format);
    }
    report_studies(dirs, metric, by, format)
}

/// Several folders as one study: their runs in one table with a `study` column, grouped by
/// it first; the report goes beside the first folder, in `report_<a>+<b>+...`.
fn report_studies(
    dirs: &[PathBuf],
    metric: &str,
    by: Option<Vec<String>>,
    format: report::Format,
) -> anyhow::Result<ExitCode> {
    let folders: Vec<_> = dirs
        .iter()
        .map(|d| report::read_runs(d))
        .collect::<anyhow::Result<_>>()?;
    let runs = report::studies::combine(dirs, &folders)?;
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let parent = dirs[0].parent().unwrap_or(Path::new("."));
    let out = parent.join(format!("report_{}", names.join("+")));
    let mut keys = vec![report::studies::STUDY.to_string()];
    keys.extend(by.unwrap_or_else(|| report::default_group_keys(&runs)));
    let varying = report::varying_keys(&runs, &keys);
    if !varying.is_empty() {
        eprintln!(
            "note: within a folder the runs also differ in {}, which are not swept; grouping by them too",
            varying.join(", ")
        );
        keys.extend(varying);
    }
    for (dir, folder) in dirs.iter().zip(&folders) {
        warn_coverage(dir, folder, &keys[1..]);
    }
    let table = report::aggregate_runs(&runs, "the folders' runs.parquet", &keys, metric)?;
    write_summary(&runs, &table, &keys, metric, format, &out)?;
    for file in report::write_plots(&runs, None, &keys, metric, &out)? {
        eprintln!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Warnings for a folder whose runs the tables do not all show.
fn warn_coverage(dir: &Path, runs: &polars::prelude::DataFrame, by: &[String]) {
    let short = report::coverage::missing_seeds(runs, by);
    let missing = report::coverage::records_not_in_tables(dir, runs);
    for line in &short {
        eprintln!("warning: averaged over fewer seeds than the study has: {line}");
    }
    for run in &missing.unreadable {
        eprintln!(
            "warning: a run's record cannot be read, so it is in no table: {run}; repair or remove its folder, then run the sweep again"
        );
    }
    if missing.finished > 0 {
        eprintln!(
            "warning: {} finished runs in {} are not in its tables yet; `runner collect {}` brings them up to date",
            missing.finished,
            dir.display(),
            dir.display()
        );
    } else if !short.is_empty() && missing.unreadable.is_empty() {
        eprintln!(
            "note: a missing seed that trained is brought in by `runner collect {}`; one that did not, by running its sweep again",
            dir.display()
        );
    }
}

/// The summary table on stdout and in `out`, and the paired differences beside it.
fn write_summary(
    runs: &polars::prelude::DataFrame,
    table: &polars::prelude::DataFrame,
    by: &[String],
    metric: &str,
    format: report::Format,
    out: &Path,
) -> anyhow::Result<()> {
    let text = report::render(table, format)?;
    print!("{text}");
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let extension = match format {
        report::Format::Table => "txt",
        report::Format::Markdown => "md",
        report::Format::Csv => "csv",
        report::Format::Json => "json",
    };
    let path = out.join(format!("summary.{extension}"));
    aevb::sinks::results::write_atomic(&path, text.as_bytes())?;
    eprintln!("wrote {}", path.display());
    if let Some(line) = report::stop_reasons(runs) {
        eprintln!("{line}");
    }
    if let Some(paired) = report::significance::paired_differences(runs, by, metric)? {
        let text = report::render_plain(&paired, format)?;
        // CSV and JSON on stdout stay one document: the paired table goes to its file.
        if matches!(format, report::Format::Table | report::Format::Markdown) {
            println!(
                "\npaired differences of {metric} between adjacent values (per shared seed, 95% CI):"
            );
            print!("{text}");
        }
        let path = out.join(format!("paired.{extension}"));
        aevb::sinks::results::write_atomic(&path, text.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One results folder: its table, paired differences, plots and traversal grids.
fn report_one(
    dir: &Path,
    metric: &str,
    by: Option<Vec<String>>,
    format: report::Format,
) -> anyhow::Result<ExitCode> {
    let runs = report::read_runs(dir)?;
    // A grouping of one's own gets a folder of its own, beside the default report's.
    let out = match &by {
        Some(keys) => report::report_dir(dir).join(format!("by_{}", keys.join("+"))),
        None => report::report_dir(dir),
    };
    let mut by = by.unwrap_or_else(|| report::default_group_keys(&runs));
    let varying = report::varying_keys(&runs, &by);
    if !varying.is_empty() {
        eprintln!(
            "note: the runs in {} also differ in {}, which are not swept (runs of other invocations, or --set); grouping by them too so that only runs of one config are averaged",
            dir.display(),
            varying.join(", ")
        );
        by.extend(varying);
    }
    if let Some(warning) = report::scale_warning(&runs) {
        eprintln!("warning: {warning}");
    }
    warn_coverage(dir, &runs, &by);
    let table = report::aggregate(&dir.join("runs.parquet"), &by, metric)?;
    write_summary(&runs, &table, &by, metric, format, &out)?;
    let epochs_path = dir.join("epochs.parquet");
    let epochs = if epochs_path.is_file() {
        let read = std::fs::File::open(&epochs_path)
            .map_err(anyhow::Error::from)
            .and_then(|f| {
                // Only what the curves draw: the whole table of a 16,000-run study is
                // 1.6 million rows of some forty columns.
                let columns = ["run_id", "examples_seen", "test_elbo"].map(String::from);
                Ok(polars::prelude::ParquetReader::new(f)
                    .with_columns(Some(columns.to_vec()))
                    .finish()?)
            });
        Some(read.map_err(|e| {
            anyhow::anyhow!(
                "{}: not a readable Parquet file: {e:#}",
                epochs_path.display()
            )
        })?)
    } else {
        None
    };
    use polars::prelude::SerReader;
    for file in report::write_plots(&runs, epochs.as_ref(), &by, metric, &out)? {
        eprintln!("wrote {}", file.display());
    }
    for file in super::study_figures::traversal_grids(&runs, &by, dir, &out) {
        eprintln!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The baseline a check compares against, or the one a blessing replaces (none when there
/// is none yet, or, blessing, when it cannot be read).
fn previous_baseline(baseline_path: &Path, bless: bool) -> anyhow::Result<Option<check::Baseline>> {
    Ok(if baseline_path.is_file() && bless {
        // Blessing replaces it: one it cannot read (an older format) only loses its z_limit.
        check::Baseline::load(baseline_path)
            .map_err(|e| eprintln!("note: {e}; writing a new one"))
            .ok()
    } else if baseline_path.is_file() {
        Some(check::Baseline::load(baseline_path)?)
    } else if bless {
        None
    } else {
        return Err(spec::SpecError::new(
            baseline_path.display().to_string(),
            "-",
            "baseline not found (create it with --bless --seeds N)",
        )
        .into());
    })
}

/// Trains every spec with its own seed and the next `seeds` − 1 (all validated before any
/// trains) and returns their records.
fn train_checks(
    specs: &[PathBuf],
    seeds: usize,
    results: &Path,
) -> anyhow::Result<Vec<aevb::sinks::results::RunRecord>> {
    let mut loaded = Vec::new();
    for file in spec::spec_files(specs) {
        let (base, _) = load(&SpecArgs {
            spec: file.clone(),
            set: Vec::new(),
        })?;
        let first = base.run_config().train.seed;
        for seed in first..first + seeds as u64 {
            let (spec, runs) = load(&SpecArgs {
                spec: file.clone(),
                set: vec![format!("train.seed={seed}")],
            })?;
            let name = file.display().to_string();
            let prepared = prepare::preflight(&runs, &results.join(&spec.name), &name)?;
            let commit = runner::experiments_commit(&file);
            loaded.push((spec, runs, prepared, commit));
        }
    }
    let mut records = Vec::new();
    for (spec, runs, prepared, commit) in &loaded {
        // Always retrain: a check must measure the code as it is now.
        let workers = runner::workers(spec, None);
        let summary = runner::run_sweep(
            spec,
            runs,
            results,
            workers,
            true,
            prepared,
            commit.as_deref(),
        )?;
        if let Some(e) = summary.write_error {
            anyhow::bail!("{e}");
        }
        let dir = aevb::sinks::results::ResultsDir::new(results, &spec.name);
        records.extend(runs.iter().filter_map(|r| dir.record(&r.id)));
    }
    Ok(records)
}

pub fn check_command(
    specs: &[PathBuf],
    baseline_path: &Path,
    bless: bool,
    seeds: usize,
    results: &Path,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(seeds >= 1, "--seeds: expected at least 1 seed");
    let previous = previous_baseline(baseline_path, bless)?;
    if bless && seeds < 3 {
        eprintln!(
            "warning: blessing with {seeds} seed(s): the seed standard deviation needs several (--seeds 5)"
        );
    }
    let records = train_checks(specs, seeds, results)?;
    if bless {
        let blessed = check::bless(&records, previous.as_ref());
        aevb::sinks::results::write_atomic(baseline_path, blessed.to_text()?.as_bytes())?;
        eprintln!(
            "blessed {} runs over {seeds} seed(s) into {}",
            blessed.runs.len(),
            baseline_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(baseline) = previous else {
        anyhow::bail!("{}: baseline not found", baseline_path.display());
    };
    for (run, before, now) in check::engine_changes(&baseline, &records) {
        eprintln!("warning: {run}: the baseline was trained on {before}, this check on {now}");
    }
    let comparisons = check::compare(&baseline, &records);
    print!("{}", check::render(&comparisons));
    let failed = comparisons.iter().filter(|c| !c.passed()).count();
    if failed > 0 {
        eprintln!(
            "check: {failed} of {} comparisons FAILED (gate: |z| <= {} seed standard deviations)",
            comparisons.len(),
            baseline.z_limit
        );
        Ok(ExitCode::from(1))
    } else {
        eprintln!(
            "check: all {} comparisons passed (gate: |z| <= {} seed standard deviations)",
            comparisons.len(),
            baseline.z_limit
        );
        Ok(ExitCode::SUCCESS)
    }
}
