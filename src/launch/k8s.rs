//! `runner k8s`: a Kubernetes Indexed Job manifest, one shard of the sweep per completion
//! index, every pod working in one volume that holds the experiments and the results.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::shard::SHARDS_ENV;
use crate::spec::{Spec, SpecError};
use crate::sweep::PlannedRun;

/// Completions a launch uses (see [`super::shards`]).
pub fn completions(spec: &Spec, runs: &[PlannedRun]) -> usize {
    super::shards(spec.runtime.k8s.completions, runs)
}

/// A DNS-1123 name: lowercase letters, digits and '-', at most 63 characters.
fn object_name(experiment: &str) -> String {
    let mut name: String = format!("aevb-{experiment}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// The Job manifest as YAML. `spec_path` is the spec as the pods see it, relative to the
/// volume (their working directory) or absolute; `sets` are passed on to every pod.
pub fn manifest(
    spec: &Spec,
    spec_path: &str,
    sets: &[String],
    runs: &[PlannedRun],
) -> anyhow::Result<String> {
    let c = &spec.runtime.k8s;
    check_results_in_volume(spec, spec_path)?;
    let completions = completions(spec, runs);
    let workers = c
        .cpu
        .parse::<f64>()
        .map(|n| n.floor().max(1.0) as usize)
        .unwrap_or(1);
    let mut command = vec![
        "runner".to_string(),
        "sweep".into(),
        spec_path.to_string(),
        "--shard".into(),
        "auto".into(),
        "--workers".into(),
        workers.to_string(),
    ];
    for s in sets {
        command.extend(["--set".to_string(), s.clone()]);
    }
    let mut limits = json!({ "cpu": c.cpu, "memory": c.memory });
    if c.gpus > 0 {
        limits["nvidia.com/gpu"] = json!(c.gpus);
    }
    let name = object_name(&spec.name);
    let labels = json!({ "app": "aevb", "aevb/experiment": object_name(&spec.name) });
    let mut metadata = json!({ "name": name, "labels": labels });
    if let Some(ns) = &c.namespace {
        metadata["namespace"] = json!(ns);
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": c.parallelism.unwrap_or(completions).clamp(1, completions),
            // Retries per index: a pod that fails or is evicted starts again and continues
            // its runs from their checkpoints.
            "backoffLimitPerIndex": 3,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    // SIGTERM first: the runner checkpoints its runs before the SIGKILL.
                    "terminationGracePeriodSeconds": 120,
                    "containers": [{
                        "name": "runner",
                        "image": c.image,
                        "workingDir": c.mount_path,
                        "command": command,
                        "env": [
                            // The Job gives each pod JOB_COMPLETION_INDEX, not the count.
                            { "name": SHARDS_ENV, "value": completions.to_string() },
                            { "name": "AEVB_PROGRESS_SECONDS", "value": "60" },
                        ],
                        "resources": { "requests": { "cpu": c.cpu, "memory": c.memory }, "limits": limits },
                        "volumeMounts": [{ "name": "work", "mountPath": c.mount_path }],
                    }],
                    "volumes": [{
                        "name": "work",
                        "persistentVolumeClaim": { "claimName": c.volume_claim },
                    }],
                },
            },
        },
    });
    let yaml = serde_yaml::to_string(&job)?;
    Ok(format!(
        "# Written by `runner k8s` (aevb {}): experiment {}, {} runs over {completions} indexed pods.\n# Apply with: kubectl apply -f <this file>. The pods work in the volume {:?} mounted at\n# {}, which must hold the spec ({spec_path}) and receives results/.\n{yaml}",
        crate::VERSION,
        spec.name,
        runs.len(),
        c.volume_claim,
        c.mount_path,
    ))
}

/// The pods' results folder is `runtime.results_dir` seen from their working directory,
/// the volume: one outside it (`--set runtime.results_dir=/tmp/x`) would be written inside
/// a pod's own filesystem and lost when the pod ends, so it is refused.
fn check_results_in_volume(spec: &Spec, spec_path: &str) -> Result<(), SpecError> {
    let mount = Path::new(&spec.runtime.k8s.mount_path);
    let results = crate::spec::absolute_from(mount, &spec.runtime.results_dir);
    if Path::new(&results).starts_with(mount) {
        return Ok(());
    }
    Err(SpecError::new(
        spec_path,
        "runtime.results_dir",
        format!(
            "the pods would write results to {results}, outside the volume {:?} mounted at {}, and lose them when they end; use a path inside the volume (relative, as the default \"results\" is, or under {})",
            spec.runtime.k8s.volume_claim,
            mount.display(),
            mount.display()
        ),
    ))
}

/// Writes the manifest to `<results>/<name>/k8s/job.yaml`.
pub fn write(spec: &Spec, text: &str, workdir: &Path) -> anyhow::Result<PathBuf> {
    let dir = super::launch_dir(spec, workdir, "k8s");
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("job.yaml");
    crate::sinks::results::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}
