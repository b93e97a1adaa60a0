//! The `runner` binary end to end: bad specs, a small sweep with its Parquet and
//! TensorBoard output, and a sweep killed mid-run and resumed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

use crate::common::{events_in, read_parquet, run_sweep, runner, sweep_command, tags, write};

const SMALL_DIGITS: &str = r#"
name = "small"
[data]
dataset = "digits"
[model]
latent_dim = 4
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 3
batch_size = 128
[eval]
importance_samples = 50
images_every_epochs = 2
"#;

#[test]
fn bad_specs_name_the_file_and_key_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown.toml",
            "[model]\nlattent_dim = 3\n".into(),
            vec!["model.lattent_dim", "did you mean `model.latent_dim`"],
        ),
        (
            "type.toml",
            "[model]\nlatent_dim = \"ten\"\n".into(),
            vec!["model.latent_dim", "expected"],
        ),
        (
            "zero.toml",
            "[model]\nlatent_dim = 0\n".into(),
            vec!["model.latent_dim", "positive"],
        ),
        (
            "lr.toml",
            "[train]\nlr = -0.1\n".into(),
            vec!["train.lr", "> 0"],
        ),
        (
            "variant.toml",
            "[model]\nlikelihood = \"poisson\"\n".into(),
            vec!["model.likelihood", "bernoulli"],
        ),
        (
            "mixture.toml",
            "[model]\nprior = \"mixture\"\n[objective]\nkl = \"analytic\"\n".into(),
            vec!["objective.kl", "mixture"],
        ),
        (
            "sweep_key.toml",
            "[sweep.grid]\n\"objective.betta\" = [1, 2]\n".into(),
            vec!["objective.betta", "did you mean `objective.beta`"],
        ),
        (
            "sweep_zip.toml",
            "[[sweep.zip]]\n\"objective.beta\" = [1, 2]\n\"train.seed\" = [1, 2, 3]\n".into(),
            vec!["sweep.zip[0]", "equal lengths"],
        ),
        (
            "sweep_value.toml",
            "[sweep.grid]\n\"model.latent_dim\" = [2, 0]\n".into(),
            vec!["model.latent_dim", "positive"],
        ),
        (
            "missing.toml",
            format!(
                "[data]\ndataset = \"mnist\"\npath = \"{}\"\n",
                empty.display()
            ),
            vec!["data.path", "train-images-idx3-ubyte", "sha256"],
        ),
        (
            "unknown.yaml",
            "train:\n  epohcs: 3\n".into(),
            vec!["train.epohcs", "did you mean `train.epochs`"],
        ),
    ];
    if !cfg!(feature = "cuda") {
        cases.push((
            "cuda.toml",
            "[runtime]\nbackend = \"cuda\"\n".into(),
            vec!["runtime.backend", "--features cuda"],
        ));
    }
    for (name, text, expected) in cases {
        let spec = write(dir.path(), name, &text);
        let results = dir.path().join(format!("results-{name}"));
        let out = run_sweep(&spec, &results, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: message must name the file: {stderr}"
        );
        for e in expected {
            assert!(
                stderr.contains(e),
                "{name}: message must contain `{e}`: {stderr}"
            );
        }
        assert!(!results.exists(), "{name}: nothing may be written");
    }
}

#[test]
fn small_sweep_writes_parquet_and_tensorboard_and_a_rerun_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec_text = format!(
        "{SMALL_DIGITS}\n[sweep.grid]\n\"objective.beta\" = [0.5, 1]\n\"train.seed\" = [0, 1]\n"
    );
    let spec = write(dir.path(), "small.toml", &spec_text);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = results.join("small");

    let runs = read_parquet(&root.join("runs.parquet"));
    assert_eq!(runs.height(), 4);
    let status = runs.column("status").unwrap().str().unwrap();
    assert!(status.iter().all(|s| s == Some("ok")));
    assert_eq!(
        runs.column("objective.beta").unwrap().dtype(),
        &DataType::Float64
    );
    assert_eq!(
        runs.column("model.latent_dim").unwrap().dtype(),
        &DataType::Int64
    );
    // Lists stay lists: hidden widths as List(Int64), not the text "[32]".
    assert_eq!(
        runs.column("model.encoder.hidden").unwrap().dtype(),
        &DataType::List(Box::new(DataType::Int64))
    );
    let log_px = runs.column("test_log_px").unwrap().f64().unwrap();
    let elbo = runs.column("test_elbo").unwrap().f64().unwrap();
    for (lp, e) in log_px.iter().zip(elbo.iter()) {
        let (lp, e) = (lp.unwrap(), e.unwrap());
        // The importance-sampled estimate sits above the bound (up to estimator noise).
        assert!(
            lp.is_finite() && e.is_finite() && lp > e - 1.0,
            "log p(x) {lp}, ELBO {e}"
        );
    }
    let ids = runs.column("run_id").unwrap().n_unique().unwrap();
    assert_eq!(ids, 4);
    let names: Vec<String> = runs
        .get_column_names()
        .iter()
        .take(5)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names,
        ["run_id", "label", "status", "objective.beta", "train.seed"]
    );
    // Each run's resolved config.toml is a spec that plans exactly that run again.
    for id in runs
        .column("run_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
    {
        let config = root.join("runs").join(id).join("config.toml");
        let spec = aevb::spec::load(&config, &[]).unwrap();
        assert_eq!(spec.name, "small");
        let planned = aevb::sweep::expand(&spec, "config.toml").unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].id, id);
    }

    let epochs = read_parquet(&root.join("epochs.parquet"));
    assert_eq!(epochs.height(), 12);
    // Per-seed curves need no join: the swept values are on every epoch row.
    let seeds = epochs.column("train.seed").unwrap().i64().unwrap();
    assert_eq!(seeds.n_unique().unwrap(), 2);
    assert!(epochs.column("objective.beta").is_ok());
    let seen: Vec<i64> = epochs
        .column("examples_seen")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .take(3)
        .map(|v| v.unwrap())
        .collect();
    // digits: 1797 images, 20% held out -> 1438 training examples per epoch.
    assert_eq!(seen, vec![1438, 2876, 4314]);

    // No event file at the top of tb/ (TensorBoard would list it as an empty run "."):
    // every run carries the sweep's HParams experiment record.
    assert!(tags(&events_in(&root.join("tb"))).is_empty());
    // Test tags sort first among the scalar groups, so TensorBoard opens on them.
    let mut groups: Vec<String> = tags(&events_in(&root.join("tb/beta=1,seed=0")))
        .into_iter()
        .map(|(t, _)| t.split('/').next().unwrap_or_default().to_string())
        .filter(|g| !g.starts_with('_') && g != "reconstructions" && g != "samples")
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups, ["test", "train"]);
    for label in [
        "beta=0.5,seed=0",
        "beta=0.5,seed=1",
        "beta=1,seed=0",
        "beta=1,seed=1",
    ] {
        let events = tags(&events_in(&root.join("tb").join(label)));
        let steps = |tag: &str| -> Vec<i64> {
            events
                .iter()
                .filter(|(t, _)| t == tag)
                .map(|(_, s)| *s)
                .collect()
        };
        assert_eq!(steps("train/elbo"), vec![1438, 2876, 4314], "{label}");
        assert_eq!(steps("test/elbo").len(), 3, "{label}");
        assert_eq!(steps("train/beta").len(), 3, "{label}");
        assert_eq!(steps("test/log_px").len(), 1, "{label}");
        // Standard errors beside their values.
        assert_eq!(steps("test/elbo_se"), steps("test/elbo"), "{label}");
        assert_eq!(steps("test/log_px_se"), steps("test/log_px"), "{label}");
        assert_eq!(steps("test/active_units").len(), 1, "{label}");
        // Images at epoch 2 and at the last epoch.
        assert_eq!(steps("reconstructions"), vec![2876, 4314], "{label}");
        assert_eq!(steps("samples").len(), 2, "{label}");
        assert_eq!(steps("_hparams_/session_start_info").len(), 1, "{label}");
        assert_eq!(steps("_hparams_/experiment").len(), 1, "{label}");
        assert_eq!(steps("_hparams_/session_end_info").len(), 1, "{label}");
    }

    let before = std::fs::read(root.join("runs.parquet")).unwrap();
    let again = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("4 already finished"), "{stderr}");
    assert!(
        !stderr.contains("ok     "),
        "a rerun must train nothing: {stderr}"
    );
    let runs_again = read_parquet(&root.join("runs.parquet"));
    assert_eq!(runs_again.height(), 4);
    // Still no file at the top of tb/ after a second invocation.
    let top_files = std::fs::read_dir(root.join("tb"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .count();
    assert_eq!(top_files, 0);
    let _ = before;
}

#[test]
fn a_killed_sweep_resumes_with_finished_rows_intact_and_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let spec_text = SMALL_DIGITS.replace("epochs = 3", "epochs = 12")
        + "\n[runtime]\nworkers = 1\n[sweep.grid]\n\"train.seed\" = [0, 1, 2, 3, 4, 5]\n";
    let spec = write(dir.path(), "small.toml", &spec_text);
    let results = dir.path().join("results");
    let root = results.join("small");
    // The sweep kills itself (SIGKILL) the moment its second run is recorded.
    let status = sweep_command(&spec, &results, &[])
        .env("AEVB_TEST_SIGNAL", "runs=2,signal=KILL")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let finished_before = std::fs::read_dir(root.join("runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("record.json").exists())
        .count();
    assert_eq!(finished_before, 2);
    let records_before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(root.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("record.json"))
        .filter(|p| p.exists())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let rows_before = read_parquet(&root.join("runs.parquet")).height();
    assert!(rows_before >= 1, "the table readable after the kill");

    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = read_parquet(&root.join("runs.parquet"));
    assert_eq!(runs.height(), 6);
    assert_eq!(runs.column("run_id").unwrap().n_unique().unwrap(), 6);
    for (path, bytes) in records_before {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
    let epochs = read_parquet(&root.join("epochs.parquet"));
    assert_eq!(epochs.height(), 6 * 12);
}

#[test]
fn a_sweep_killed_while_rebuilding_the_tables_leaves_the_old_ones_and_the_next_is_complete() {
    // Killed with both new tables half-written, and with both whole but not yet current:
    // either way the pair readers see is the old one.
    for point in ["rebuild=1", "tables=1"] {
        killed_while_rebuilding(point);
    }
}

/// The generation folders under `.tables` that are not the current one.
fn stale_generations(root: &Path) -> Vec<String> {
    let tables = root.join(".tables");
    let current = std::fs::read_link(tables.join("current")).unwrap();
    std::fs::read_dir(&tables)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "current" && Path::new(n) != current)
        .collect()
}

fn killed_while_rebuilding(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spec_text = SMALL_DIGITS.replace("epochs = 3", "epochs = 2")
        + "\n[runtime]\nworkers = 2\n[sweep.grid]\n\"train.seed\" = [0, 1, 2]\n";
    let spec = write(dir.path(), "small.toml", &spec_text);
    let results = dir.path().join("results");
    let root = results.join("small");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before_runs = std::fs::read(root.join("runs.parquet")).unwrap();
    let before_epochs = std::fs::read(root.join("epochs.parquet")).unwrap();
    assert_eq!(read_parquet(&root.join("runs.parquet")).height(), 3);

    // Three more seeds; the process kills itself in its first rebuild (the one at its end:
    // the tables are fresh, so no finished run rebuilds them), with both new tables
    // half-written under their temporary names.
    let spec = write(
        dir.path(),
        "more.toml",
        &spec_text.replace("[0, 1, 2]", "[0, 1, 2, 3, 4, 5]"),
    );
    let status = sweep_command(&spec, &results, &[])
        .env("AEVB_TEST_SIGNAL", format!("{point},signal=KILL"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let unfinished = stale_generations(&root);
    assert_eq!(
        unfinished.len(),
        1,
        "the kill landed mid-rebuild ({point}): {unfinished:?}"
    );
    // The tables are the old ones, whole; the six runs are finished on disk.
    assert_eq!(
        std::fs::read(root.join("runs.parquet")).unwrap(),
        before_runs
    );
    assert_eq!(
        std::fs::read(root.join("epochs.parquet")).unwrap(),
        before_epochs
    );
    let records = std::fs::read_dir(root.join("runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("record.json").exists())
        .count();
    assert_eq!(records, 6);

    // The next invocation trains nothing and leaves complete tables with no duplicates
    // and no temporary files.
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("6 already finished"), "{stderr}");
    let runs = read_parquet(&root.join("runs.parquet"));
    assert_eq!(runs.height(), 6);
    assert_eq!(runs.column("run_id").unwrap().n_unique().unwrap(), 6);
    let epochs = read_parquet(&root.join("epochs.parquet"));
    assert_eq!(epochs.height(), 6 * 2);
    let pairs = epochs
        .select(["run_id", "epoch"])
        .unwrap()
        .unique_stable(None, UniqueKeepStrategy::First, None)
        .unwrap();
    assert_eq!(pairs.height(), 6 * 2);
    assert!(
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
    );
    assert_eq!(stale_generations(&root), Vec::<String>::new());
}

#[test]
fn report_aggregates_a_fixed_table_as_computed_by_hand_and_draws_the_plots() {
    let dir = tempfile::tempdir().unwrap();
    // β ∈ {1, 2} × 3 seeds; the third β = 2 run failed (no metrics).
    let mut df = df![
        "run_id" => ["a", "b", "c", "d", "e", "f"],
        "label" => ["beta=1,seed=0", "beta=1,seed=1", "beta=1,seed=2", "beta=2,seed=0", "beta=2,seed=1", "beta=2,seed=2"],
        "status" => ["ok", "ok", "ok", "ok", "ok", "failed"],
        "swept_keys" => ["objective.beta,train.seed"; 6],
        "objective.beta" => [1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
        "train.seed" => [0i64, 1, 2, 0, 1, 2],
        "test_elbo" => [Some(-10.0), Some(-12.0), Some(-14.0), Some(-20.0), Some(-22.0), None],
        "test_log_px" => [Some(-9.0), Some(-11.0), Some(-13.0), Some(-19.0), Some(-21.0), None],
        "test_kl" => [Some(3.0), Some(4.0), Some(5.0), Some(1.0), Some(2.0), None],
        "test_recon" => [Some(-7.0), Some(-8.0), Some(-9.0), Some(-19.0), Some(-20.0), None],
        "active_units" => [Some(4i64), Some(5), Some(6), Some(2), Some(2), None],
    ]
    .unwrap();
    let path = dir.path().join("runs.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let by = aevb::report::default_group_keys(&df);
    assert_eq!(by, vec!["objective.beta".to_string()]);
    let table = aevb::report::aggregate(&path, &by, "test_elbo").unwrap();
    let f = |name: &str, row: usize| table.column(name).unwrap().f64().unwrap().get(row);
    let u = |name: &str, row: usize| {
        let c = table.column(name).unwrap().cast(&DataType::Int64).unwrap();
        c.i64().unwrap().get(row)
    };
    // Best (highest mean test ELBO) first: β = 1.
    assert_eq!(f("objective.beta", 0), Some(1.0));
    assert_eq!((u("ok", 0), u("failed", 0)), (Some(3), Some(0)));
    assert_eq!((u("ok", 1), u("failed", 1)), (Some(2), Some(1)));
    // β = 1: mean(−10, −12, −14) = −12, sample std = 2.
    assert_eq!(f("test_elbo_mean", 0), Some(-12.0));
    assert!((f("test_elbo_std", 0).unwrap() - 2.0).abs() < 1e-12);
    // β = 2, the failed run left out: mean(−20, −22) = −21, std = √2.
    assert_eq!(f("test_elbo_mean", 1), Some(-21.0));
    assert!((f("test_elbo_std", 1).unwrap() - 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(f("active_units_mean", 0), Some(5.0));
    assert_eq!(f("test_kl_mean", 1), Some(1.5));
    // 95% interval over 3 seeds: −12 ± t(2) · 2 / √3 = −12 ± 4.303 · 1.155.
    assert!(
        (f("test_elbo_ci95_lo", 0).unwrap() - (-12.0 - 4.303 * 2.0 / 3f64.sqrt())).abs() < 1e-3
    );
    // Best, and significantly: 10 nats better on both shared seeds.
    let best = table.column("best").unwrap().bool().unwrap();
    assert_eq!((best.get(0), best.get(1)), (Some(true), Some(false)));

    // The command prints the same numbers and writes PNG and SVG plots.
    let stdout = crate::common::report(dir.path(), "markdown");
    assert!(
        stdout.contains("-12.00 ± 2.00") && stdout.contains("-21.00 ± 1.41"),
        "{stdout}"
    );
    for file in ["test_elbo_vs_objective_beta", "rate_distortion"] {
        for ext in ["png", "svg"] {
            let p = dir.path().join("report").join(format!("{file}.{ext}"));
            assert!(
                std::fs::metadata(&p)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{}",
                p.display()
            );
        }
    }
    assert!(dir.path().join("report/summary.md").exists());
    // The default table format is saved too.
    let out = runner()
        .args(["report", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let saved = std::fs::read_to_string(dir.path().join("report/summary.txt")).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&saved), "{stdout}");
    // Then the paired differences (β 1 → 2 on seeds 0 and 1: −10 both), saved beside it.
    let paired = std::fs::read_to_string(dir.path().join("report/paired.txt")).unwrap();
    assert!(
        stdout.ends_with(&paired) && paired.contains("-10.000"),
        "{paired}"
    );
}

fn check(specs: &[&Path], baseline: &Path, results: &Path, bless: bool) -> Output {
    check_seeds(specs, baseline, results, bless, 1)
}

fn check_seeds(
    specs: &[&Path],
    baseline: &Path,
    results: &Path,
    bless: bool,
    seeds: usize,
) -> Output {
    let mut cmd = runner();
    cmd.arg("check").args(specs).arg("--baseline").arg(baseline);
    cmd.arg("--results").arg(results);
    cmd.args(["--seeds", &seeds.to_string()]);
    if bless {
        cmd.arg("--bless");
    }
    cmd.output().unwrap()
}

#[test]
fn check_gates_in_seed_standard_deviations_and_catches_a_three_sd_regression() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "tiny.toml",
        &SMALL_DIGITS.replace("name = \"small\"", "name = \"tiny\""),
    );
    let baseline = dir.path().join("baseline.toml");
    let results = dir.path().join("results");
    let blessed = check_seeds(&[&spec], &baseline, &results, true, 3);
    assert!(
        blessed.status.success(),
        "{}",
        String::from_utf8_lossy(&blessed.stderr)
    );
    let text = std::fs::read_to_string(&baseline).unwrap();
    let b: aevb::check::Baseline = toml::from_str(&text).unwrap();
    let run = &b.runs["tiny/run"];
    assert_eq!(run.seeds.len(), 3, "{text}");
    assert_eq!(b.engines["tiny/run"], "fused");
    // The seed sd is the sample sd of the three values, computed here.
    for m in run.metrics.values() {
        let mean = m.values.iter().sum::<f64>() / 3.0;
        let sd = (m.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((m.seed_sd - sd).abs() < 2e-6 && m.seed_sd > 0.0, "{m:?}");
    }

    // Same code, same seed: passes, and prints z-scores.
    let pass = check(&[&spec], &baseline, &results, false);
    let table = String::from_utf8_lossy(&pass.stdout);
    assert!(
        pass.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&pass.stderr)
    );
    assert!(
        table.contains("test_elbo") && table.contains("+0.00") && !table.contains("FAIL"),
        "{table}"
    );

    // A regression of 3 seed sd injected into the baseline: fails, z = −3 shown.
    let mut worse = b.clone();
    let elbo = worse
        .runs
        .get_mut("tiny/run")
        .unwrap()
        .metrics
        .get_mut("test_elbo")
        .unwrap();
    let shift = 3.0 * elbo.seed_sd;
    elbo.values.iter_mut().for_each(|v| *v += shift);
    elbo.mean += shift;
    std::fs::write(&baseline, worse.to_text().unwrap()).unwrap();
    let fail = check(&[&spec], &baseline, &results, false);
    let table = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{table}");
    assert!(table.contains("FAIL") && table.contains("-3.00"), "{table}");
}

#[test]
fn check_passes_on_the_committed_ci_baseline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<PathBuf> = ["digits.toml", "synthetic_iwae.toml", "mixture.toml"]
        .iter()
        .map(|s| root.join("experiments/ci").join(s))
        .collect();
    let refs: Vec<&Path> = specs.iter().map(|p| p.as_path()).collect();
    let out = check(
        &refs,
        &root.join("experiments/ci_baseline.toml"),
        dir.path(),
        false,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_never_averages_runs_whose_configs_differ_in_an_unswept_key() {
    let dir = tempfile::tempdir().unwrap();
    // Swept: latent size × seed. Two invocations left runs of 2 and of 40 epochs behind.
    let mut df = df![
        "run_id" => ["a", "b", "c", "d"],
        "label" => ["latent_dim=2,seed=0", "latent_dim=2,seed=1", "latent_dim=2,seed=0", "latent_dim=2,seed=1"],
        "status" => ["ok"; 4],
        "swept_keys" => ["model.latent_dim,train.seed"; 4],
        "aevb_version" => ["0.1.0"; 4],
        "model.latent_dim" => [2i64, 2, 2, 2],
        "train.seed" => [0i64, 1, 0, 1],
        "train.epochs" => [2i64, 2, 40, 40],
        "runtime.workers" => [Some(1i64), Some(2), None, Some(2)],
        "test_elbo" => [-30.0, -32.0, -20.0, -21.0],
        "test_log_px" => [-29.0, -31.0, -19.0, -20.0],
        "test_kl" => [1.0, 1.0, 2.0, 2.0],
        "test_recon" => [-29.0, -31.0, -18.0, -19.0],
        "active_units" => [1i64, 1, 2, 2],
    ]
    .unwrap();
    let path = dir.path().join("runs.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let by = aevb::report::default_group_keys(&df);
    assert_eq!(by, vec!["model.latent_dim".to_string()]);
    // The seed and the worker count may differ within a group; the epoch count may not.
    assert_eq!(
        aevb::report::varying_keys(&df, &by),
        vec!["train.epochs".to_string()]
    );

    let out = runner()
        .args(["report", dir.path().to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("train.epochs"), "{stderr}");
    // Two groups of two seeds each: (−20 − 21)/2 and (−30 − 32)/2, never the mix (−25.75).
    let table = CsvReadOptions::default()
        .into_reader_with_file_handle(std::io::Cursor::new(stdout.as_bytes().to_vec()))
        .finish()
        .unwrap();
    assert_eq!(table.height(), 2, "{stdout}");
    let means: Vec<f64> = table
        .column("test_elbo_mean")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(means, vec![-20.5, -31.0], "{stdout}");
}

#[test]
fn run_ids_do_not_depend_on_how_a_data_path_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let absolute = data.display().to_string();
    // The same folder relative to the working directory, as `../../tmp/.../mnist`.
    let cwd = std::env::current_dir().unwrap();
    let ups = "../".repeat(cwd.components().count() - 1);
    let relative = format!("{ups}{}", absolute.trim_start_matches('/'));
    let id = |path: &str| {
        let mut config = aevb::spec::RunConfig::default();
        config.data.dataset = aevb::spec::DatasetKind::Mnist;
        config.data.path = Some(path.to_string());
        aevb::sweep::run_id(&config)
    };
    let reference = id(&absolute);
    for written in [
        format!("{absolute}/"),
        format!("{absolute}//"),
        absolute.replace("/mnist", "/./mnist"),
        relative.clone(),
        format!("{relative}/"),
    ] {
        assert_eq!(id(&written), reference, "{written}");
    }
    // A path that does not exist (yet) is normalised by its components.
    assert_eq!(id("data/none/"), id("./data//none"));
    // Another folder is another run.
    assert_ne!(id(&dir.path().display().to_string()), reference);
}

#[test]
fn a_rerun_says_when_finished_runs_came_from_another_aevb_version() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "v.toml",
        &SMALL_DIGITS.replace("epochs = 3", "epochs = 1"),
    );
    let results = dir.path().join("results");
    assert!(run_sweep(&spec, &results, &[]).status.success());
    let same = run_sweep(&spec, &results, &[]);
    assert!(!String::from_utf8_lossy(&same.stderr).contains("another aevb version"));
    for entry in std::fs::read_dir(results.join("small/runs"))
        .unwrap()
        .flatten()
    {
        let path = entry.path().join("record.json");
        let mut record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        record["aevb_version"] = "0.0.1".into();
        std::fs::write(&path, record.to_string()).unwrap();
    }
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another aevb version (0.0.1;") && stderr.contains("1 already finished"),
        "{stderr}"
    );
}

#[test]
fn a_spec_extends_a_base_and_errors_name_the_file_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "base.toml",
        "name = \"base\"\n[model]\nlatent_dim = 7\n[train]\nepochs = 5\nlr = 0.01\n",
    );
    write(
        d,
        "child.toml",
        "extends = \"base.toml\"\nname = \"child\"\n[train]\nepochs = 2\n",
    );
    std::fs::create_dir(d.join("sub")).unwrap();
    write(
        &d.join("sub"),
        "grandchild.yaml",
        "extends: ../child.toml\nname: grandchild\nobjective:\n  beta: 2.0\n",
    );
    let child = aevb::spec::load(&d.join("child.toml"), &[]).unwrap();
    assert_eq!(child.name, "child");
    assert_eq!(child.model.latent_dim, 7);
    assert_eq!((child.train.epochs, child.train.lr), (2, 0.01));
    let grandchild = aevb::spec::load(&d.join("sub/grandchild.yaml"), &[]).unwrap();
    assert_eq!(
        (
            grandchild.model.latent_dim,
            grandchild.train.epochs,
            grandchild.objective.beta
        ),
        (7, 2, 2.0)
    );
    // --set still wins over every file.
    let set = aevb::spec::load(&d.join("child.toml"), &["train.epochs=9".into()]).unwrap();
    assert_eq!(set.train.epochs, 9);

    let error = |file: &str| {
        let out = runner().arg("plan").arg(d.join(file)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    write(
        d,
        "bad_base.toml",
        "name = \"b\"\n[model]\nlatnet_dim = 3\n",
    );
    write(
        d,
        "uses_bad.toml",
        "extends = \"bad_base.toml\"\nname = \"u\"\n",
    );
    let e = error("uses_bad.toml");
    assert!(
        e.contains("bad_base.toml") && e.contains("model.latnet_dim"),
        "{e}"
    );
    write(
        d,
        "missing.toml",
        "extends = \"nowhere.toml\"\nname = \"m\"\n",
    );
    let e = error("missing.toml");
    assert!(e.contains("extends") && e.contains("nowhere.toml"), "{e}");
    write(d, "a.toml", "extends = \"b.toml\"\nname = \"a\"\n");
    write(d, "b.toml", "extends = \"a.toml\"\nname = \"b\"\n");
    let e = error("a.toml");
    assert!(e.contains("extends") && e.contains("cycle"), "{e}");
    write(d, "not_string.toml", "extends = 3\nname = \"n\"\n");
    assert!(error("not_string.toml").contains("extends"));
}

#[test]
fn off_a_terminal_a_long_run_reports_its_epochs_and_the_log_px_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "p.toml", SMALL_DIGITS);
    let results = dir.path().join("results");
    let out = runner()
        .arg("sweep")
        .arg(&spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .env("AEVB_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for line in [
        "  run: epoch 1/3, test ELBO",
        "  run: epoch 3/3, test ELBO",
        "  run: estimating log p(x) with K = 50 on 359 test examples",
        "  run: log p(x) 359/359 examples",
    ] {
        assert!(stderr.contains(line), "`{line}` missing:\n{stderr}");
    }
    // With lines every N seconds (30 by default), a run shorter than N prints only its
    // result line; N is set far beyond any run here, so this holds on a slow machine too.
    let quiet = sweep_command(&spec, &dir.path().join("quiet"), &[])
        .env("AEVB_PROGRESS_SECONDS", "1000000")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("epoch 1/3"));
}

#[test]
fn each_row_records_the_git_commit_of_the_experiments_folder() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !git(&["init", "-q"]) {
        eprintln!("SKIPPED: git is not available");
        return;
    }
    let text = SMALL_DIGITS.replace("epochs = 3", "epochs = 1");
    let spec = write(dir.path(), "g.toml", &text);
    assert!(git(&["add", "g.toml"]) && git(&["commit", "-qm", "spec"]));
    let head = Command::new("git")
        .arg("-C")
        .arg(dir.path())
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let commit_of = |results: &Path| {
        let out = run_sweep(&spec, results, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let runs = read_parquet(&results.join("small/runs.parquet"));
        runs.column("experiments_commit")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .map(str::to_string)
    };
    // Results outside the repository, so they do not make it dirty.
    let outside = tempfile::tempdir().unwrap();
    assert_eq!(commit_of(&outside.path().join("a")), Some(head.clone()));
    std::fs::write(&spec, text.replace("latent_dim = 4", "latent_dim = 5")).unwrap();
    assert_eq!(
        commit_of(&outside.path().join("b")),
        Some(format!("{head}-dirty"))
    );
    // A spec outside any repository records null.
    let plain = tempfile::tempdir().unwrap();
    let spec = write(plain.path(), "g.toml", &text);
    let out = run_sweep(&spec, &plain.path().join("r"), &[]);
    assert!(out.status.success());
    let runs = read_parquet(&plain.path().join("r/small/runs.parquet"));
    assert_eq!(runs.column("experiments_commit").unwrap().null_count(), 1);
}

#[test]
fn two_sweeps_at_once_on_one_folder_train_each_run_once_and_lose_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let spec_text = SMALL_DIGITS.replace("epochs = 3", "epochs = 6")
        + "\n[runtime]\nworkers = 1\n[sweep.grid]\n\"train.seed\" = [0, 1, 2, 3, 4, 5, 6, 7]\n";
    let spec = write(dir.path(), "small.toml", &spec_text);
    let results = dir.path().join("results");
    let start = || {
        runner()
            .arg("sweep")
            .arg(&spec)
            .arg("--set")
            .arg(format!("runtime.results_dir={}", results.display()))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut trained = Vec::new();
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        trained.extend(
            stderr
                .lines()
                .filter(|l| l.starts_with("ok "))
                .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string()),
        );
    }
    // Each of the 8 runs trained by exactly one of the two processes.
    trained.sort();
    let mut unique = trained.clone();
    unique.dedup();
    assert_eq!(trained.len(), 8, "{trained:?}");
    assert_eq!(unique.len(), 8, "{trained:?}");
    let root = results.join("small");
    let runs = read_parquet(&root.join("runs.parquet"));
    assert_eq!(runs.height(), 8);
    assert_eq!(runs.column("run_id").unwrap().n_unique().unwrap(), 8);
    assert_eq!(read_parquet(&root.join("epochs.parquet")).height(), 8 * 6);
    for entry in std::fs::read_dir(root.join("runs")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path().join("record.json")).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }
    // No file at the top of tb/: each run's log carries the HParams experiment record.
    let top_files = std::fs::read_dir(root.join("tb"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .count();
    assert_eq!(top_files, 0);
}

/// Two experiments reported as one study: one table with a `study` column, grouped by it
/// first; each row's numbers are its own folder's.
#[test]
fn report_of_two_folders_is_one_study_with_a_column_naming_each_rows_folder() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let a = write(
        dir.path(),
        "a.toml",
        &SMALL_DIGITS.replace(
            "name = \"small\"",
            "name = \"first\"\n[sweep.grid]\n\"train.seed\" = [0, 1]\n",
        ),
    );
    let b = write(
        dir.path(),
        "b.toml",
        &SMALL_DIGITS
            .replace("name = \"small\"", "name = \"second\"")
            .replace("latent_dim = 4", "latent_dim = 2"),
    );
    for spec in [&a, &b] {
        let out = run_sweep(spec, &results, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = runner()
        .arg("report")
        .arg(results.join("first"))
        .arg(results.join("second"))
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "study", "{csv}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let studies: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(studies.len(), 2, "{csv}");
    assert!(
        studies.contains(&"first") && studies.contains(&"second"),
        "{csv}"
    );
    // The first study's group averages its two seeds; its mean is its own folder's.
    let ok = header.iter().position(|h| *h == "ok").unwrap();
    let first = rows.iter().find(|r| r[0] == "first").unwrap();
    assert_eq!(first[ok], "2", "{csv}");
    let own = crate::common::report(&results.join("first"), "csv");
    let mean = header.iter().position(|h| *h == "test_elbo_mean").unwrap();
    let own_header: Vec<&str> = own.lines().next().unwrap().split(',').collect();
    let own_mean = own_header
        .iter()
        .position(|h| *h == "test_elbo_mean")
        .unwrap();
    let own_row: Vec<&str> = own.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[mean], own_row[own_mean], "{csv}\n{own}");
    assert!(results.join("report_first+second/summary.csv").is_file());
}

/// Bad input to `report` and `check` exits 2, as the README's exit codes say: a folder that
/// is missing or holds no tables, a baseline that is not there.
#[test]
fn report_of_a_missing_or_empty_folder_and_check_without_its_baseline_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (folder, expected) in [
        (dir.path().join("missing"), "not a folder"),
        (empty, "no runs.parquet"),
    ] {
        let out = runner().arg("report").arg(&folder).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let spec = write(dir.path(), "s.toml", SMALL_DIGITS);
    let out = runner()
        .arg("check")
        .arg(&spec)
        .arg("--baseline")
        .arg(dir.path().join("none.toml"))
        .arg("--results")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("baseline not found"), "{stderr}");
}

/// `check` of one of the baseline's specs compares that spec's runs only: the others are
/// not reported as failures.
#[test]
fn check_of_a_subset_of_the_baselines_specs_compares_only_those() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = runner()
        .arg("check")
        .arg(root.join("experiments/ci/digits.toml"))
        .arg("--baseline")
        .arg(root.join("experiments/ci_baseline.toml"))
        .arg("--results")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("ci_digits/run") && !stdout.contains("ci_mixture"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// The trained-model commands find a run through the spec it was trained from: its
/// experiment, in its `runtime.results_dir`, with no `--results`.
#[test]
fn trained_model_commands_find_runs_through_their_spec() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("elsewhere");
    let spec = write(
        dir.path(),
        "s.toml",
        &format!(
            "{SMALL_DIGITS}[runtime]\nresults_dir = \"{}\"\n",
            results.display()
        ),
    );
    let out = runner().arg("sweep").arg(&spec).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = runner()
        .current_dir(dir.path())
        .args(["sample", "run", "-n", "4", "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without it, the default `results` folder has no such run: exit 2, saying so.
    let out = runner()
        .current_dir(dir.path())
        .args(["sample", "run", "-n", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `runner run` of a spec whose sweep already trained its base config (the same run id)
/// points to that run instead of training it again.
#[test]
fn run_finds_the_base_config_its_sweep_already_trained() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let spec = write(
        dir.path(),
        "s.toml",
        &format!("{SMALL_DIGITS}[sweep.grid]\n\"train.seed\" = [0, 1]\n"),
    );
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = runner()
        .arg("run")
        .arg(&spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("already finished") && stderr.contains("seed=0"),
        "{stderr}"
    );
    assert!(!results.join("small-run").exists(), "nothing trained again");
}
