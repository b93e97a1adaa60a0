//! Every estimate with its standard error, `runner eval --per-example`, and a final
//! evaluation that survives SIGTERM and kill -9 (issue 20).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{read_parquet, runner, sweep_command, write};
use aevb::test_signal::TEST_SIGNAL_ENV;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SPEC: &str = r#"
name = "estimates"
[data]
dataset = "digits"
[model]
latent_dim = 4
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 2
batch_size = 64
seed = 3
[eval]
importance_samples = 300
images_every_epochs = 0
checkpoint_every_seconds = 0
"#;

fn run_dir(results: &Path) -> PathBuf {
    crate::common::run_dir(results, "estimates")
}

fn record(results: &Path) -> serde_json::Map<String, serde_json::Value> {
    crate::common::record(results, "estimates")
}

fn sweep(spec: &Path, results: &Path, signal: Option<&str>) -> std::process::Output {
    let mut c: Command = sweep_command(spec, results, &["--workers", "1"]);
    if let Some(s) = signal {
        c.env(TEST_SIGNAL_ENV, s);
    }
    c.output().unwrap()
}

fn column(frame: &polars::prelude::DataFrame, name: &str) -> Vec<Option<f64>> {
    let values = frame.column(name).unwrap().f64().unwrap();
    (0..values.len()).map(|i| values.get(i)).collect()
}

/// sd (n − 1) / √n, computed here from the rows.
fn standard_error(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt()
}

#[test]
fn standard_errors_in_the_tables_are_those_of_the_per_example_values() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "s.toml", SPEC);
    let results = dir.path().join("results");
    let out = sweep(&spec, &results, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = read_parquet(&results.join("estimates").join("runs.parquet"));
    let out = runner()
        .args(["eval", run_dir(&results).to_str().unwrap(), "--per-example"])
        .args(["--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_parquet(&run_dir(&results).join("per_example.parquet"));
    let elbo: Vec<f64> = column(&rows, "elbo").into_iter().flatten().collect();
    let log_px: Vec<f64> = column(&rows, "log_px").into_iter().flatten().collect();
    let kl: Vec<f64> = column(&rows, "kl").into_iter().flatten().collect();
    assert_eq!(elbo.len(), rows.height());
    assert_eq!(log_px.len(), rows.height(), "every test example estimated");
    assert!(rows.column("label").is_ok(), "digits have labels");
    let one = |name: &str| column(&runs, name)[0].unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for (name, values) in [
        ("test_elbo", &elbo),
        ("test_log_px", &log_px),
        ("test_kl", &kl),
    ] {
        let se = one(&format!("{name}_se"));
        assert!(
            (se - standard_error(values)).abs() < 1e-9,
            "{name}_se {se} vs {}",
            standard_error(values)
        );
        assert!((one(name) - mean(values)).abs() < 1e-9, "{name}");
    }
    // The importance weights' diagnostics are those of the rows too.
    let ess: Vec<f64> = column(&rows, "ess").into_iter().flatten().collect();
    assert!((one("log_px_ess_mean") - mean(&ess)).abs() < 1e-9);
    let min = ess.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(one("log_px_ess_min"), min);
    assert!(min >= 1.0 && ess.iter().all(|&e| e <= 300.0));
    // And the epochs table carries the test ELBO's standard error where it was evaluated.
    let epochs = read_parquet(&results.join("estimates").join("epochs.parquet"));
    assert!(
        column(&epochs, "test_elbo_se")
            .iter()
            .all(|v| v.is_some_and(|v| v > 0.0))
    );
}

/// The final evaluation's saved progress: samples taken over every example (whole
/// examples, and blocks part-way), or 0 with none saved.
fn saved_samples(results: &Path) -> u64 {
    let Ok(folders) = std::fs::read_dir(run_dir(results).join("checkpoints")) else {
        return 0;
    };
    folders
        .flatten()
        .filter_map(|f| std::fs::read(f.path().join("evaluation.safetensors")).ok())
        .map(|bytes| {
            let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let whole = t.tensor("log_px").unwrap().shape()[0] as u64 * K;
            // Column 3 of each in-flight example's running sums is its count of samples.
            let counts: u64 = t
                .tensor("in_flight_weights")
                .unwrap()
                .data()
                .chunks_exact(8)
                .skip(3)
                .step_by(6)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as u64)
                .sum();
            whole + counts
        })
        .max()
        .unwrap_or(0)
}

/// The spec's K.
const K: u64 = 300;

const METRICS: [&str; 7] = [
    "test_elbo",
    "test_elbo_se",
    "test_log_px",
    "test_log_px_se",
    "log_px_ess_mean",
    "train_elbo",
    "active_units",
];

#[test]
fn sigterm_during_the_final_evaluation_checkpoints_it_and_the_rerun_matches() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "s.toml", SPEC);
    let reference = dir.path().join("reference");
    assert!(sweep(&spec, &reference, None).status.success());

    let results = dir.path().join("results");
    let out = sweep(&spec, &results, Some("evaluated=64,signal=TERM"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stopped, not finished: {stderr}");
    assert!(!run_dir(&results).join("record.json").exists());
    // Stopped within a round of the first 64 examples done: saved, with no more than the
    // blocks then in flight.
    let saved = saved_samples(&results);
    assert!(
        (64 * K..=192 * K).contains(&saved),
        "saved {saved}: {stderr}"
    );

    let out = sweep(&spec, &results, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("continuing from saved progress"),
        "{stderr}"
    );
    let (a, b) = (record(&reference), record(&results));
    for key in METRICS {
        assert_eq!(a[key], b[key], "{key}");
    }
}

#[test]
fn kill_9_at_random_points_of_the_evaluation_still_lets_the_sweep_finish() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "s.toml", SPEC);
    let reference = dir.path().join("reference");
    assert!(sweep(&spec, &reference, None).status.success());
    let total = record(&reference)["log_px_examples"].as_u64().unwrap() as usize;

    let results = dir.path().join("results");
    let mut rng = StdRng::seed_from_u64(20);
    let mut saved = 0;
    for attempt in 0.. {
        assert!(attempt < 20, "no end in sight");
        let at = rng.random_range(1..=total);
        let out = sweep(
            &spec,
            &results,
            Some(&format!("evaluated={at},signal=KILL")),
        );
        if out.status.success() {
            break;
        }
        // Every killed attempt made progress.
        let now = saved_samples(&results);
        assert!(
            now > saved,
            "attempt {attempt} (kill at {at}): {saved} -> {now}"
        );
        saved = now;
    }
    let (a, b) = (record(&reference), record(&results));
    for key in METRICS {
        assert_eq!(a[key], b[key], "{key}");
    }
}

/// The spec with blocks of many chunks: 300 samples in chunks of 640 / 64 = 10.
fn chunked_spec(dir: &Path) -> PathBuf {
    let text = SPEC.replace(
        "importance_samples = 300",
        "importance_samples = 300\nmax_rows_per_chunk = 640",
    );
    write(dir, "chunked.toml", &text)
}

/// What the final evaluation has saved: (ELBO terms, samples of the estimate, metrics).
fn saved_phases(results: &Path) -> (bool, u64, bool) {
    let folders = std::fs::read_dir(run_dir(results).join("checkpoints")).unwrap();
    let newest = folders.flatten().map(|f| f.path()).max().unwrap();
    let Ok(bytes) = std::fs::read(newest.join("evaluation.safetensors")) else {
        return (false, 0, false);
    };
    let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = t.names();
    let has = |n: &str| names.contains(&n);
    (has("elbo_terms"), saved_samples(results), has("metrics"))
}

#[test]
fn a_kill_at_each_phase_of_the_evaluation_keeps_the_phases_before_it_and_the_row_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let spec = chunked_spec(dir.path());
    let reference = dir.path().join("reference");
    assert!(sweep(&spec, &reference, None).status.success());
    let total = record(&reference)["log_px_examples"].as_u64().unwrap() * K;
    // (where, what must be saved by then: ELBO terms, samples at least, metrics)
    let points = [
        ("phase=evaluation", (false, 0, false)),
        ("phase=log_px", (true, 0, false)),
        ("chunks=5", (true, 1, false)),
        ("phase=metrics", (true, total, false)),
        ("phase=record", (true, total, true)),
    ];
    for (at, (elbo, samples, metrics)) in points {
        for signal in ["KILL", "TERM"] {
            let results = dir.path().join(format!("{at}-{signal}"));
            let out = sweep(&spec, &results, Some(&format!("{at},signal={signal}")));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{at} {signal}: {stderr}");
            // SIGTERM once the estimate is done lets the run finish: all of it is saved.
            let finished = run_dir(&results).join("record.json").exists();
            let may_finish = signal == "TERM" && ["phase=metrics", "phase=record"].contains(&at);
            assert!(!finished || may_finish, "{at} {signal}");
            let saved = match finished {
                true => (true, total, true),
                false => saved_phases(&results),
            };
            assert!(
                saved.0 >= elbo && saved.1 >= samples && saved.2 >= metrics,
                "{at} {signal}: saved {saved:?}"
            );
            let out = sweep(&spec, &results, None);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            crate::common::assert_same_results(&record(&reference), &record(&results));
        }
    }
}

#[test]
fn killed_inside_blocks_again_and_again_each_attempt_saves_more_and_the_row_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let spec = chunked_spec(dir.path());
    let reference = dir.path().join("reference");
    assert!(sweep(&spec, &reference, None).status.success());
    for signal in ["KILL", "TERM"] {
        let results = dir.path().join(signal);
        let mut saved = 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 100, "no end in sight");
            // Past the first round (a chunk per block, saved at once): inside a block.
            let at = format!("chunks=4,signal={signal}");
            let out = sweep(&spec, &results, Some(&at));
            // (SIGTERM in the last round lets the run finish, and the sweep then stops.)
            if out.status.success() || run_dir(&results).join("record.json").exists() {
                break;
            }
            let now = saved_phases(&results).1;
            assert!(now > saved, "attempt {attempts}: {saved} -> {now}");
            saved = now;
        }
        assert!(attempts > 10, "{attempts} attempts");
        let (a, b) = (record(&reference), record(&results));
        crate::common::assert_same_results(&a, &b);
        assert_eq!(b["resumes"].as_u64(), Some(attempts - 1));
    }
}
