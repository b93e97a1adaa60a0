//! Sharded sweeps, `runner collect`, the Slurm script (and its submission through a stand-in
//! `sbatch`) and the Kubernetes Indexed Job manifest. The real Slurm cluster is
//! `scripts/slurm-test.sh`, which CI runs.

use std::path::Path;

use serde_yaml::Value;

use crate::common::{read_parquet, runner, sweep_command, write};

const SIX_RUNS: &str = r#"
name = "grid6"
[data]
dataset = "digits"
[model]
latent_dim = 2
encoder = { hidden = [16] }
decoder = { hidden = [16] }
[train]
epochs = 2
batch_size = 64
[eval]
importance_samples = 20
images_every_epochs = 0
[runtime.slurm]
tasks = 3
max_parallel = 2
cpus_per_task = 2
partition = "gpu"
time = "01:00:00"
mem = "8G"
gpus = 1
extra = ["--account=lab"]
[runtime.k8s]
image = "registry.example/aevb:0.1"
completions = 3
parallelism = 2
cpu = "2"
memory = "6Gi"
gpus = 1
volume_claim = "lab-results"
mount_path = "/lab"
[sweep.grid]
"objective.beta" = [0.5, 1.0, 2.0]
"train.seed" = [0, 1]
"#;

fn sweep(
    spec: &Path,
    results: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut c = sweep_command(spec, results, extra);
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn ids_in(results: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(results.join("grid6/runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("record.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn three_shards_train_every_run_once_and_collect_tabulates_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "grid.toml", SIX_RUNS);
    let results = dir.path().join("results");
    let mut trained = Vec::new();
    for i in 0..3 {
        let before = if results.join("grid6/runs").is_dir() {
            ids_in(&results)
        } else {
            Vec::new()
        };
        // Shard 1 from a Slurm array task's environment, the others given explicitly.
        let out = if i == 1 {
            sweep(
                &spec,
                &results,
                &["--shard", "auto"],
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
            )
        } else {
            sweep(&spec, &results, &["--shard", &format!("{i}/3")], &[])
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("shard {i}/3: 2 of the sweep's 6 runs")),
            "{stderr}"
        );
        let after = ids_in(&results);
        let new: Vec<String> = after
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        assert_eq!(new.len(), 2, "shard {i} trained {new:?}");
        trained.extend(new);
    }
    trained.sort();
    trained.dedup();
    assert_eq!(trained.len(), 6, "every run in exactly one shard");
    let out = runner()
        .arg("collect")
        .arg(results.join("grid6"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "6 rows, 6 distinct runs: 6 ok, 0 diverged, 0 failed"
    );
    assert_eq!(
        read_parquet(&results.join("grid6/runs.parquet")).height(),
        6
    );
    // The full sweep afterwards finds nothing left to train.
    let out = sweep(&spec, &results, &[], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 already finished, skipped"));

    // A damaged record: collect tabulates the rest, names the run and exits 1; the next
    // sweep says it trains that run again.
    let damaged = &trained[2];
    let record = results.join("grid6/runs").join(damaged).join("record.json");
    std::fs::write(&record, "{\"run_id\": ").unwrap();
    let out = runner()
        .arg("collect")
        .arg(results.join("grid6"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("left out of the tables") && stderr.contains(damaged.as_str()),
        "{stderr}"
    );
    assert_eq!(
        read_parquet(&results.join("grid6/runs.parquet")).height(),
        5
    );
    let out = sweep(&spec, &results, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("run {damaged}")) && stderr.contains("trains again"),
        "{stderr}"
    );
}

#[test]
fn bad_shards_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "grid.toml", SIX_RUNS);
    let results = dir.path().join("results");
    for (args, env, expect) in [
        (vec!["--shard", "3/3"], vec![], "expected I/N"),
        (vec!["--shard", "x"], vec![], "expected I/N"),
        (vec!["--shard", "auto"], vec![], "--shard I/N"),
        (
            vec!["--shard", "auto"],
            vec![("JOB_COMPLETION_INDEX", "1")],
            "AEVB_SHARDS",
        ),
        (
            vec!["--shard", "auto"],
            vec![
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            "does not exist",
        ),
    ] {
        let out = sweep(&spec, &results, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!results.exists(), "{args:?}: nothing may be written");
    }
}

#[test]
fn the_slurm_script_asks_for_the_spec_resources_and_submits_through_sbatch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", SIX_RUNS);
    // A stand-in sbatch: records its arguments, answers like `sbatch --parsable`.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("sbatch.args");
    write(
        &bin,
        "sbatch",
        &format!(
            "#!/bin/sh\necho \"$@\" > {}\necho '4242;cluster'\n",
            log.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("sbatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = runner()
        .current_dir(dir.path())
        .env("PATH", path)
        .args(["slurm", "grid.toml", "--submit", "--set", "train.epochs=3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4242");
    let script_path = dir.path().join("results/grid6/slurm/grid6.sbatch");
    let script = std::fs::read_to_string(&script_path).unwrap();
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("grid6.sbatch")
    );
    let work = std::fs::canonicalize(dir.path()).unwrap();
    for line in [
        "#SBATCH --array=0-2%2".to_string(),
        "#SBATCH --cpus-per-task=2".into(),
        "#SBATCH --partition=gpu".into(),
        "#SBATCH --time=01:00:00".into(),
        "#SBATCH --mem=8G".into(),
        "#SBATCH --gres=gpu:1".into(),
        "#SBATCH --requeue".into(),
        "#SBATCH --account=lab".into(),
        format!("#SBATCH --chdir={}", work.display()),
        format!(
            "#SBATCH --output={}/results/grid6/slurm/%A_%a.out",
            work.display()
        ),
        format!(
            "set -- sweep {}/grid.toml --shard auto --workers 2 --set train.epochs=3",
            work.display()
        ),
    ] {
        assert!(script.contains(&line), "missing `{line}`:\n{script}");
    }
    // The script is valid shell.
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script_path)
        .status()
        .unwrap();
    assert!(syntax.success());
    // Data problems show before anything is submitted: exit 2.
    let bad = write(
        dir.path(),
        "bad.toml",
        &SIX_RUNS.replace(
            "dataset = \"digits\"",
            "dataset = \"mnist\"\npath = \"nowhere\"",
        ),
    );
    let out = runner()
        .current_dir(dir.path())
        .args(["slurm"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_kubernetes_manifest_is_an_indexed_job() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", SIX_RUNS);
    let out = runner()
        .current_dir(dir.path())
        .args(["k8s", "grid.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("results/grid6/k8s/job.yaml")).unwrap();
    let job: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], "aevb-grid6");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 2);
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example/aevb:0.1");
    assert_eq!(container["workingDir"], "/lab");
    let command: Vec<&str> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        command,
        [
            "runner",
            "sweep",
            "grid.toml",
            "--shard",
            "auto",
            "--workers",
            "2"
        ]
    );
    let env = container["env"].as_sequence().unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "AEVB_SHARDS" && e["value"] == "3")
    );
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(container["resources"]["requests"]["memory"], "6Gi");
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "lab-results"
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/lab");
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 60);
}

#[test]
fn a_kubernetes_results_folder_outside_the_volume_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", SIX_RUNS);
    let out = runner()
        .current_dir(dir.path())
        .args([
            "k8s",
            "grid.toml",
            "--set",
            "runtime.results_dir=/tmp/aevb-elsewhere",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("runtime.results_dir") && stderr.contains("outside the volume"),
        "{stderr}"
    );
    assert!(!Path::new("/tmp/aevb-elsewhere/grid6").exists());
    // A relative folder is inside the volume the pods work in.
    let out = runner()
        .current_dir(dir.path())
        .args([
            "k8s",
            "grid.toml",
            "--set",
            "runtime.results_dir=lab-results",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("lab-results/grid6/k8s/job.yaml").is_file());
}
