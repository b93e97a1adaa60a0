//! `[sweep.search]`: random search trials crossed with a seed grid, trained, recorded with
//! their drawn values, and found again (same ids, skipped) by a rerun (issue 24).

mod common;

use common::{read_parquet, run_sweep, write};

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
