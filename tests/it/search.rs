//! `[sweep.search]`: random search trials crossed with a seed grid, trained, recorded with
//! their drawn values, and found again (same ids, skipped) by a rerun (issue 24).

use crate::common::{read_parquet, run_sweep, write};

const SPEC: &str = r#"
name = "search"
[data]
dataset = "digits"
[model]
latent_dim = 4
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 2
[eval]
importance_samples = 10
images_every_epochs = 0
[sweep.grid]
"train.seed" = [0, 1]
[sweep.search]
trials = 3
seed = 5
[sweep.search.keys]
"train.lr" = { log_uniform = [1e-4, 1e-2] }
"objective.beta" = { uniform = [0.5, 4.0] }
"model.latent_dim" = { integer = [2, 6] }
"model.decoder.hidden" = { choice = [[16], [48, 24]] }
"#;

#[test]
fn a_random_search_trains_each_trial_per_seed_records_its_draws_and_reruns_as_done() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "s.toml", SPEC);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let runs = read_parquet(&results.join("search").join("runs.parquet"));
    assert_eq!(runs.height(), 6, "3 trials × 2 seeds");
    let labels: Vec<String> = runs
        .column("label")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    for t in 0..3 {
        let of_trial: Vec<&String> = labels
            .iter()
            .filter(|l| l.starts_with(&format!("trial={t},")))
            .collect();
        assert_eq!(of_trial.len(), 2, "trial {t} once per seed: {labels:?}");
    }
    let f64s = |name: &str| -> Vec<f64> {
        let c = runs
            .column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::Float64)
            .unwrap();
        c.f64().unwrap().into_no_null_iter().collect()
    };
    assert!(f64s("train.lr").iter().all(|&x| (1e-4..1e-2).contains(&x)));
    assert!(
        f64s("objective.beta")
            .iter()
            .all(|&x| (0.5..4.0).contains(&x))
    );
    assert!(
        f64s("model.latent_dim")
            .iter()
            .all(|&x| (2.0..=6.0).contains(&x))
    );
    // The search keys are what the report groups by (the seed is aggregated over).
    let swept = runs
        .column("swept_keys")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    for key in [
        "train.lr",
        "objective.beta",
        "model.latent_dim",
        "model.decoder.hidden",
    ] {
        assert!(swept.contains(key), "{swept}");
    }
    let again = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("6 already finished"), "{stderr}");
}

const HALVING: &str = r#"
name = "halving"
[data]
dataset = "digits"
[model]
latent_dim = 4
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 4
batch_size = 16
[eval]
importance_samples = 10
images_every_epochs = 0
[sweep.grid]
"objective.beta" = [0.5, 1.0, 2.0, 200.0]
"train.lr" = [1e-3, 3e-3, 1e4]
"#;

fn records(results: &std::path::Path, name: &str) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = std::fs::read_dir(results.join(name).join("runs"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("record.json")).ok())
        .map(|b| serde_json::from_slice(&b).unwrap())
        .collect();
    out.sort_by_key(|r| r["run_id"].as_str().unwrap().to_string());
    out
}

/// Successive halving over a 4 × 3 grid: collapsed runs (β = 200) and diverged ones
/// (lr = 10⁴) are out at the first rung with their reason, the rest are ranked, and the
/// run that reaches the end has every number of the same run trained straight through.
#[test]
fn halving_stops_collapsed_and_diverged_runs_first_and_its_winner_equals_a_straight_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "h.toml",
        &format!("{HALVING}[sweep.halving]\nmin_epochs = 1\nreduction = 2\n"),
    );
    let results = dir.path().join("halving-results");
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "{stderr}");
    assert!(stderr.contains("rungs at [1, 2, 4] epochs"), "{stderr}");
    let halved = records(&results, "halving");
    assert_eq!(halved.len(), 12, "every run has a row");
    let mut epochs_trained = 0;
    for r in &halved {
        let label = r["label"].as_str().unwrap();
        let reason = r["stop_reason"].as_str().unwrap_or("");
        let epochs = r["epochs_done"].as_u64().unwrap();
        epochs_trained += epochs;
        if label.contains("lr=10000") {
            assert_eq!(r["status"], "diverged", "{label}: {r}");
            assert_eq!(epochs, 1, "{label}");
        } else if label.contains("beta=200") {
            assert!(
                reason.starts_with("collapsed: 0 active"),
                "{label}: {reason}"
            );
            assert_eq!(epochs, 1, "{label}: stopped at the first rung");
        } else {
            assert_eq!(r["status"], "ok", "{label}");
        }
    }
    // 12 runs: 12 at rung 1, at most 3 of the 6 ranked at rung 2, 2 at rung 3 (4 epochs).
    assert!(epochs_trained <= 12 + 3 + 2 * 2, "{epochs_trained} epochs");
    let winners: Vec<&serde_json::Value> = halved
        .iter()
        .filter(|r| r["epochs_done"].as_u64() == Some(4))
        .collect();
    assert!(!winners.is_empty() && winners.iter().all(|r| r["stop_reason"].is_null()));

    // The same grid trained straight through: the same run ids, and for the runs that
    // reached the end, the same numbers to the bit.
    let spec = write(dir.path(), "straight.toml", HALVING);
    let straight_results = dir.path().join("straight-results");
    let out = run_sweep(&spec, &straight_results, &[]);
    assert!(out.status.code().is_some());
    let straight = records(&straight_results, "halving");
    for w in winners {
        let s = straight
            .iter()
            .find(|s| s["run_id"] == w["run_id"])
            .expect("the same run id");
        for key in [
            "test_elbo",
            "test_log_px",
            "train_elbo",
            "test_kl",
            "active_units",
        ] {
            assert_eq!(w[key], s[key], "{key} of {}", w["label"]);
        }
        let run = |root: &std::path::Path| -> Vec<serde_json::Value> {
            let text = std::fs::read(
                root.join("halving/runs")
                    .join(w["run_id"].as_str().unwrap())
                    .join("epochs.json"),
            )
            .unwrap();
            let mut epochs: Vec<serde_json::Value> = serde_json::from_slice(&text).unwrap();
            for e in &mut epochs {
                let e = e.as_object_mut().unwrap();
                e.remove("seconds");
                e.remove("train_pass_seconds");
            }
            epochs
        };
        assert_eq!(
            run(&results),
            run(&straight_results),
            "per-epoch numbers of {}",
            w["label"]
        );
    }
}

/// The halving grid without the diverging learning rate: 8 runs, rungs at 1, 2 and 4.
fn halving_spec(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "h.toml",
        &format!(
            "{}[sweep.halving]\nmin_epochs = 1\nreduction = 2\n",
            HALVING.replace(", 1e4]", "]")
        ),
    )
}

/// (run id, status, epochs done, stop reason, test ELBO, resumes) of every row.
fn outcome(results: &std::path::Path) -> Vec<(String, String, u64, String, String, u64)> {
    records(results, "halving")
        .iter()
        .map(|r| {
            (
                r["run_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["epochs_done"].as_u64().unwrap(),
                r["stop_reason"].as_str().unwrap_or("").to_string(),
                r["test_elbo"].to_string(),
                r["resumes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Two processes (`--shard 0/2`, `--shard 1/2`) on one folder make the same promotions as
/// one process, and train each run once (every epoch once in its log, the same resumes).
#[test]
fn two_shards_run_one_halving_search_with_a_single_processs_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let spec = halving_spec(dir.path());
    let single = dir.path().join("single");
    let out = run_sweep(&spec, &single, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shared = dir.path().join("shared");
    let children: Vec<std::process::Child> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            crate::common::sweep_command(&spec, &shared, &["--shard", s])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (a, b) = (outcome(&single), outcome(&shared));
    assert_eq!(a.len(), 8);
    // The same rows, promotions and stops. `resumes` counts attempts, and a shard that
    // takes over a run the other has just paused adds one that trains nothing (every epoch
    // is still logged once, below).
    let decisions = |o: &[(String, String, u64, String, String, u64)]| -> Vec<_> {
        o.iter()
            .map(|r| (r.0.clone(), r.1.clone(), r.2, r.3.clone(), r.4.clone()))
            .collect()
    };
    assert_eq!(
        decisions(&a),
        decisions(&b),
        "the same rows, promotions and stops"
    );
    for r in records(&shared, "halving") {
        let epochs: Vec<serde_json::Value> = serde_json::from_slice(
            &std::fs::read(
                shared
                    .join("halving/runs")
                    .join(r["run_id"].as_str().unwrap())
                    .join("epochs.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let numbers: Vec<u64> = epochs
            .iter()
            .map(|e| e["epoch"].as_u64().unwrap())
            .collect();
        let want: Vec<u64> = (1..=r["epochs_done"].as_u64().unwrap()).collect();
        assert_eq!(numbers, want, "{}: every epoch once", r["label"]);
    }
}

/// Killed (SIGKILL) while the first rung's losers are being stopped, the search reruns to
/// the rows of an uninterrupted one.
#[test]
fn a_kill_during_a_promotion_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = halving_spec(dir.path());
    let straight = dir.path().join("straight");
    let out = run_sweep(&spec, &straight, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let killed = dir.path().join("killed");
    let out = crate::common::sweep_command(&spec, &killed, &[])
        .env("AEVB_TEST_SIGNAL", "runs=2,signal=KILL")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = records(&killed, "halving").len();
    assert!((2..8).contains(&partial), "{partial} rows when killed");
    let out = run_sweep(&spec, &killed, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same decisions and numbers; `resumes` also counts the killed attempts.
    let (a, b) = (outcome(&straight), outcome(&killed));
    let decisions = |o: &[(String, String, u64, String, String, u64)]| -> Vec<_> {
        o.iter()
            .map(|r| (r.0.clone(), r.1.clone(), r.2, r.3.clone(), r.4.clone()))
            .collect()
    };
    assert_eq!(decisions(&a), decisions(&b));
    assert!(a.iter().zip(&b).all(|(a, b)| b.5 >= a.5), "{a:?}\n{b:?}");
    assert!(a.iter().zip(&b).any(|(a, b)| b.5 > a.5), "{a:?}\n{b:?}");
}

/// With a validation set held out, halving ranks by its ELBO, not the test set's: every
/// run that went on at a rung has a validation ELBO there at least as good as every run
/// stopped there, and the stopped runs' reasons say which set ranked them. The validation
/// set is small (10 examples), so that its ranking differs from the test set's here: a
/// ranking by the test ELBO fails this test.
#[test]
fn halving_ranks_by_the_validation_elbo_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[sweep.halving]\nmin_epochs = 1\nreduction = 2\n",
        HALVING
            .replace(
                "\"objective.beta\" = [0.5, 1.0, 2.0, 200.0]",
                "\"objective.beta\" = [0.5, 1.0, 2.0]"
            )
            .replace(", 1e4]", "]")
            .replace(
                "dataset = \"digits\"",
                "dataset = \"digits\"
validation = 10"
            )
    );
    let spec = write(dir.path(), "h.toml", &text);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = records(&results, "halving");
    assert_eq!(rows.len(), 6);
    let rung = |r: &serde_json::Value, epoch: u64| -> Option<serde_json::Value> {
        let id = r["run_id"].as_str().unwrap();
        let file = results
            .join("halving/runs")
            .join(id)
            .join(format!("rung-{epoch}.json"));
        std::fs::read(file)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    };
    let mut rungs_checked = 0;
    for epoch in [1u64, 2] {
        let reached: Vec<(&serde_json::Value, f64)> = rows
            .iter()
            .filter_map(|r| rung(r, epoch).map(|g| (r, g["valid_elbo"].as_f64().unwrap())))
            .collect();
        // Collapsed runs are stopped whatever their ELBO: they are not ranked.
        let collapsed = |r: &serde_json::Value| {
            r["stop_reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("collapsed"))
        };
        let stopped_here = |r: &serde_json::Value| r["epochs_done"].as_u64() == Some(epoch);
        let ranked: Vec<&(&serde_json::Value, f64)> = reached
            .iter()
            .filter(|(r, _)| !(stopped_here(r) && collapsed(r)))
            .collect();
        let went_on: Vec<f64> = ranked
            .iter()
            .filter(|(r, _)| !stopped_here(r))
            .map(|p| p.1)
            .collect();
        let stopped: Vec<f64> = ranked
            .iter()
            .filter(|(r, _)| stopped_here(r))
            .map(|p| p.1)
            .collect();
        if went_on.is_empty() || stopped.is_empty() {
            continue;
        }
        rungs_checked += 1;
        let worst_kept = went_on.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            stopped.iter().all(|&v| v <= worst_kept),
            "rung {epoch}: {went_on:?} vs {stopped:?}"
        );
        for (r, v) in ranked.iter().filter(|(r, _)| stopped_here(r)) {
            let reason = r["stop_reason"].as_str().unwrap();
            assert!(
                reason.contains(&format!("by validation ELBO ({v:.4})")),
                "{reason}"
            );
        }
    }
    assert!(rungs_checked >= 1, "no rung both promoted and stopped runs");
}
