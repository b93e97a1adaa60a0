//! `[runtime]`: where and how runs compute (backend, devices, threads, workers, results
//! folder) and how a cluster runs them (`[runtime.slurm]`, `[runtime.k8s]`).

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The fastest CPU route on our measurements (README "Performance"): the fused engine
    /// where it covers the model, flex otherwise.
    Cpu,
    /// aevb's fused CPU engine (hand-written gradients, gemm, vectorised elementwise).
    Fused,
    Ndarray,
    Flex,
    Cuda,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub backend: BackendKind,
    pub device_index: usize,
    /// Runs trained at once (None: one per core on CPU, one on CUDA).
    pub workers: Option<usize>,
    /// Threads per run on the fused engine (None: the cores split evenly between the
    /// runs trained at once). Numbers are reproducible for a given thread count.
    pub threads: Option<usize>,
    pub results_dir: String,
    /// `runner slurm`: the array job's resources. How a sweep is launched, not what a run
    /// computes: left out of each run's resolved config (and so of its id and row).
    #[serde(skip_serializing)]
    pub slurm: SlurmConfig,
    /// `runner k8s`: the Indexed Job's image and resources (like `slurm`, not in the runs).
    #[serde(skip_serializing)]
    pub k8s: K8sConfig,
}

/// `[runtime.slurm]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// Array tasks (shards) the sweep is split over (None: one per run, at most 100).
    pub tasks: Option<usize>,
    /// At most this many tasks at once (`--array=0-N%max_parallel`).
    pub max_parallel: Option<usize>,
    pub partition: Option<String>,
    /// Wall-time limit per task, as sbatch reads it ("04:00:00", "2-00:00:00").
    pub time: Option<String>,
    /// CPUs per task; the task trains this many runs at once.
    pub cpus_per_task: usize,
    /// Memory per task, as sbatch reads it ("8G").
    pub mem: Option<String>,
    /// GPUs per task (`--gres=gpu:N`).
    pub gpus: usize,
    /// Requeue a task stopped by a time limit or preemption; it continues from checkpoints.
    pub requeue: bool,
    /// Extra `#SBATCH` lines, e.g. ["--account=lab", "--qos=long"].
    pub extra: Vec<String>,
    /// The runner binary on the cluster (None: this binary's path).
    pub runner: Option<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            tasks: None,
            max_parallel: None,
            partition: None,
            time: None,
            cpus_per_task: 1,
            mem: None,
            gpus: 0,
            requeue: true,
            extra: Vec::new(),
            runner: None,
        }
    }
}

/// `[runtime.k8s]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// A container image with `runner` on its PATH.
    pub image: String,
    /// Indexed completions (shards) (None: one per run, at most 100).
    pub completions: Option<usize>,
    /// Pods at once (None: all of them).
    pub parallelism: Option<usize>,
    pub cpu: String,
    pub memory: String,
    pub gpus: usize,
    /// The PersistentVolumeClaim holding the experiments and the results folder, mounted
    /// at `mount_path`, the pods' working directory.
    pub volume_claim: String,
    pub mount_path: String,
    pub namespace: Option<String>,
}

impl Default for K8sConfig {
    fn default() -> Self {
        Self {
            image: "aevb:latest".into(),
            completions: None,
            parallelism: None,
            cpu: "1".into(),
            memory: "4Gi".into(),
            gpus: 0,
            volume_claim: "aevb-results".into(),
            mount_path: "/work".into(),
            namespace: None,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Cpu,
            device_index: 0,
            workers: None,
            threads: None,
            results_dir: "results".into(),
            slurm: SlurmConfig::default(),
            k8s: K8sConfig::default(),
        }
    }
}
