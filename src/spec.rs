//! Experiment specs: the typed schema, loading (TOML/YAML, env, `--set`) and validation.
//!
//! Precedence, lowest first: built-in defaults < the spec file < `AEVB_*` environment
//! variables < `--set section.key=value`. Every error names the file, the dotted key and
//! what was expected, and is raised before anything trains or is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::{Deserialize, Serialize};

mod file;
mod paths;
pub use paths::absolute_from;

/// A whole spec file: one experiment, possibly swept into many runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// A base spec this one changes (a path relative to this file): its settings come
    /// first and this file's override them. Bases may extend bases.
    pub extends: Option<String>,
    pub name: String,
    pub description: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub runtime: RuntimeConfig,
    pub sweep: SweepConfig,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            extends: None,
            name: "experiment".into(),
            description: String::new(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            objective: ObjectiveConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            runtime: RuntimeConfig::default(),
            sweep: SweepConfig::default(),
        }
    }
}

/// Everything one training run needs: a spec with its sweep resolved away.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub runtime: RuntimeConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Spec::default().run_config()
    }
}

impl Spec {
    /// The spec's base run (before any sweep values are applied).
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            data: self.data.clone(),
            model: self.model.clone(),
            objective: self.objective.clone(),
            train: self.train.clone(),
            eval: self.eval.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    Synthetic,
    Digits,
    Mnist,
    FashionMnist,
    Table,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Binarization {
    None,
    Static,
    Dynamic,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StaticBinarization {
    /// `x > threshold`.
    Threshold,
    /// One Bernoulli(x) sample, drawn once from `data.split_seed`.
    Sample,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Directory of IDX files (mnist, fashion_mnist) or a Parquet/CSV file (table).
    pub path: Option<String>,
    /// Table datasets: a second file that holds the test split.
    pub test_path: Option<String>,
    /// Fraction of examples held out for testing where a dataset has no test split of its own.
    pub test_fraction: f64,
    /// Seed of everything about the data that is not training: splits, static samples,
    /// the synthetic model. Kept apart from `train.seed` so all seeds share one test set.
    pub split_seed: u64,
    pub binarization: Binarization,
    pub static_mode: StaticBinarization,
    pub threshold: f64,
    /// Use only the first N training / test examples (quick checks, CI).
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Table datasets: the columns to use (default: every numeric column).
    pub columns: Option<Vec<String>>,
    pub synthetic: SyntheticConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Digits,
            path: None,
            test_path: None,
            test_fraction: 0.2,
            split_seed: 0,
            binarization: Binarization::None,
            static_mode: StaticBinarization::Threshold,
            threshold: 0.5,
            train_limit: None,
            test_limit: None,
            columns: None,
            synthetic: SyntheticConfig::default(),
        }
    }
}

/// x = W z + b + noise_std * e, z ~ N(0, I), e ~ N(0, I): log p(x) is known exactly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    pub train_size: usize,
    pub test_size: usize,
    pub data_dim: usize,
    pub latent_dim: usize,
    pub noise_std: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            train_size: 2000,
            test_size: 500,
            data_dim: 16,
            latent_dim: 2,
            noise_std: 0.5,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Tanh,
    Relu,
    Softplus,
    Sigmoid,
    Elu,
    Gelu,
    LeakyRelu,
    Identity,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Hidden layer widths; empty means the heads read the input directly (a linear model).
    pub hidden: Vec<usize>,
    pub activation: Activation,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![400],
            activation: Activation::Relu,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LikelihoodKind {
    Bernoulli,
    Gaussian,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VarianceKind {
    /// One learned log-variance per output dimension.
    Learned,
    /// A second output head of the decoder network.
    Head,
    /// `model.fixed_variance`, not learned.
    Fixed,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PriorKind {
    StandardNormal,
    Normal,
    Mixture,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// PyTorch's `nn.Linear` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias.
    Pytorch,
    /// N(0, init_std^2) weights and zero biases (Kingma & Welling use 0.01).
    Normal,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub latent_dim: usize,
    pub encoder: MlpConfig,
    pub decoder: MlpConfig,
    pub likelihood: LikelihoodKind,
    pub variance: VarianceKind,
    pub fixed_variance: f64,
    pub prior: PriorKind,
    /// `normal` prior: learn its mean and scale (else they stay at N(0, I)'s values).
    pub prior_learned: bool,
    /// `mixture` prior: number of diagonal Gaussian components.
    pub prior_components: usize,
    pub init: InitKind,
    pub init_std: f64,
    /// Encoder (and learned decoder) log-variances are clamped to [-limit, limit] so that an
    /// exploding head saturates instead of turning into inf/NaN.
    pub logvar_limit: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            latent_dim: 20,
            encoder: MlpConfig::default(),
            decoder: MlpConfig::default(),
            likelihood: LikelihoodKind::Bernoulli,
            variance: VarianceKind::Learned,
            fixed_variance: 1.0,
            prior: PriorKind::StandardNormal,
            prior_learned: true,
            prior_components: 10,
            init: InitKind::Pytorch,
            init_std: 0.01,
            logvar_limit: 30.0,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    Elbo,
    Iwae,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KlMode {
    Analytic,
    MonteCarlo,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    pub kind: ObjectiveKind,
    pub beta: f64,
    /// L, Monte Carlo samples of z per data point for the ELBO.
    pub mc_samples: usize,
    pub kl: KlMode,
    /// k, importance samples per data point for the IWAE bound.
    pub iwae_k: usize,
    /// β ramps linearly from 0 to `beta` over this many epochs (0: no warm-up).
    pub kl_warmup_epochs: usize,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            kind: ObjectiveKind::Elbo,
            beta: 1.0,
            mc_samples: 1,
            kl: KlMode::Analytic,
            iwae_k: 5,
            kl_warmup_epochs: 0,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    Adagrad,
    Sgd,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    /// Burda et al. (2015): 3^i epochs at lr * 10^(-i/7), i = 0..7 (3280 epochs in all).
    Burda,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    /// L2 penalty on every weight (a N(0, 1/(N·wd)) prior, as in the AEVB paper).
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub seed: u64,
    pub shuffle: bool,
    /// A run diverges when a metric is not finite, or when a bound moves more than this
    /// many times max(|ELBO at initialisation|, 1) nats away from its initial value.
    pub divergence_factor: f64,
    /// Write the run's full training state every this many epochs (0: only when the
    /// process is interrupted by SIGINT or SIGTERM). An interrupted or killed run resumes
    /// from its last checkpoint. Does not change the numbers, so not part of the run id.
    pub checkpoint_every_epochs: usize,
    /// Also write it whenever this many seconds of training have passed since the last one
    /// (at the next minibatch; 0: off), so a scheduler's kill loses at most this much work
    /// whatever the epoch length. Not part of the run id.
    pub checkpoint_every_seconds: f64,
    /// Checkpoints kept per run while it trains (removed once it has finished, unless failed).
    pub keep_last: usize,
    /// Early stopping (0: off): stop when the test ELBO has not improved by more than
    /// `early_stopping_min_delta` nats for this many evaluations in a row.
    pub early_stopping_patience: usize,
    pub early_stopping_min_delta: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            seed: 0,
            shuffle: true,
            divergence_factor: 100.0,
            checkpoint_every_epochs: 0,
            checkpoint_every_seconds: 600.0,
            keep_last: 1,
            early_stopping_patience: 0,
            early_stopping_min_delta: 0.0,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// K, importance samples for the final test log p(x) estimate.
    pub importance_samples: usize,
    /// Estimate log p(x) on the first N test examples only (None: all of them).
    pub log_px_examples: Option<usize>,
    /// Upper bound on the rows (examples × samples) evaluated at once: bounds memory.
    pub max_rows_per_chunk: usize,
    /// Evaluate the test ELBO every this many epochs (the last epoch always is).
    pub every_epochs: usize,
    /// Write TensorBoard images every this many epochs (0: only at the end).
    pub images_every_epochs: usize,
    /// Active units: posterior-mean variance across the test set above this.
    pub active_unit_threshold: f64,
    /// Save the final log p(x) estimate's progress whenever this many seconds of it have
    /// passed since the last save (0: after every group of blocks), and on SIGINT/SIGTERM:
    /// a rerun continues it to the same numbers. Not part of the run id.
    pub checkpoint_every_seconds: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            importance_samples: 5000,
            log_px_examples: None,
            max_rows_per_chunk: 65_536,
            every_epochs: 1,
            images_every_epochs: 5,
            active_unit_threshold: 0.01,
            checkpoint_every_seconds: 10.0,
        }
    }
}

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

/// `[sweep]`: `grid` is a Cartesian product over dotted keys; each `zip` group pairs its
/// lists element by element and is then crossed with the grid and the other groups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
    pub zip: Vec<BTreeMap<String, Vec<serde_json::Value>>>,
}

/// A spec problem, reported before anything runs (exit code 2). A problem with the file
/// as a whole (syntax, an empty or binary file) has no key: `key` is "-" and not shown.
#[derive(Debug)]
pub struct SpecError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key.as_str() {
            "-" | "" => write!(f, "{}: {}", self.file, self.message),
            key => write!(f, "{}: key `{key}`: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

impl SpecError {
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Environment variable that moves the MNIST-style data directory (`data.path`).
pub const DATA_DIR_ENV: &str = "AEVB_DATA";

/// Loads a spec file with env and `--set` overrides, and validates every run it sweeps into.
pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
    let file = path.display().to_string();
    if !path.is_file() {
        return Err(SpecError::new(&file, "-", "spec file not found"));
    }
    let mut figment = Figment::from(Serialized::defaults(Spec::default()));
    // The bases first, the file itself last: each file's settings override its base's.
    for (layer, text) in extends_chain(path, &file)? {
        let name = layer.display().to_string();
        check_file_text(&layer, &text, &name)?;
        let provider = |yaml| file::SpecFile {
            path: layer.clone(),
            text,
            yaml,
        };
        figment = match layer.extension().and_then(|e| e.to_str()) {
            Some("toml") => figment.merge(provider(false)),
            Some("yaml" | "yml") => figment.merge(provider(true)),
            _ => {
                return Err(SpecError::new(
                    &name,
                    "-",
                    "expected a .toml, .yaml or .yml spec file",
                ));
            }
        };
    }
    // AEVB_TRAIN__EPOCHS=3 sets train.epochs; AEVB_DATA is the data directory (below).
    figment = figment.merge(
        Env::prefixed("AEVB_")
            .ignore(&[
                "DATA",
                "TEST_BACKEND",
                "BENCH_BACKENDS",
                "PROGRESS_SECONDS",
                "SIMD",
                "TEST_SIGNAL",
            ])
            .split("__"),
    );
    let mut path_set = false;
    for item in overrides {
        let (key, value) = parse_override(item).map_err(|m| SpecError::new(&file, item, m))?;
        path_set |= key == "data.path";
        figment = figment.merge(Serialized::default(&key, value));
    }
    let mut spec: Spec = figment
        .extract()
        .map_err(|e| figment_error(&file, e, path))?;
    check_finite(&spec, &figment, &file, path)?;
    paths::resolve_data_paths(&mut spec, &figment);
    // AEVB_DATA moves the IDX directory (above the file, below --set). It is applied only to
    // the datasets that read one, so that it never changes the run ids of other specs.
    if let (Ok(dir), false) = (std::env::var(DATA_DIR_ENV), path_set)
        && matches!(
            spec.data.dataset,
            DatasetKind::Mnist | DatasetKind::FashionMnist
        )
    {
        spec.data.path = Some(absolute_from(Path::new(""), &dir));
    }
    validate_spec(&spec, &file)?;
    Ok(spec)
}

/// The files a spec is built from, base first, each with its text (read once): `path`, the
/// file its `extends` names (relative to `path`'s folder), that file's base, and so on.
fn extends_chain(path: &Path, file: &str) -> Result<Vec<(PathBuf, String)>, SpecError> {
    let mut chain: Vec<(PathBuf, String)> = Vec::new();
    let mut current = path.to_path_buf();
    loop {
        let name = current.display().to_string();
        let text = file::read_text(&current, &name)?;
        let base = read_extends(&current, &text, &name)?;
        chain.push((current.clone(), text));
        let Some(base) = base else {
            break;
        };
        let base_path = current.parent().unwrap_or(Path::new("")).join(&base);
        if !base_path.is_file() {
            return Err(SpecError::new(
                name,
                "extends",
                format!("base spec {} not found", base_path.display()),
            ));
        }
        let same = |(p, _): &(PathBuf, String)| {
            std::fs::canonicalize(p).ok() == std::fs::canonicalize(&base_path).ok()
        };
        if chain.iter().any(same) || chain.len() > 16 {
            return Err(SpecError::new(
                file,
                "extends",
                format!(
                    "the bases form a cycle: {} -> {}",
                    chain
                        .iter()
                        .map(|(p, _)| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" -> "),
                    base_path.display()
                ),
            ));
        }
        current = base_path;
    }
    chain.reverse();
    Ok(chain)
}

/// The `extends` value of a spec file, if it has one (syntax errors are left to figment).
fn read_extends(path: &Path, text: &str, file: &str) -> Result<Option<String>, SpecError> {
    let value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|mut t| t.remove("extends"))
            .map(|v| v.as_str().map(str::to_string).ok_or(())),
        Some("yaml" | "yml") => serde_yaml::from_str::<serde_yaml::Value>(text)
            .ok()
            .and_then(|v| v.get("extends").cloned())
            .map(|v| v.as_str().map(str::to_string).ok_or(())),
        _ => None,
    };
    match value {
        None => Ok(None),
        Some(Ok(base)) => Ok(Some(base)),
        Some(Err(())) => Err(SpecError::new(
            file,
            "extends",
            "expected the path of a base spec file, as a string",
        )),
    }
}

/// `key=value`, the value read as a TOML value when it parses as one, else as a string.
fn parse_override(item: &str) -> Result<(String, toml::Value), String> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| "expected --set section.key=value".to_string())?;
    let key = key.trim().to_string();
    let well_formed = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !well_formed {
        return Err(format!(
            "`{key}` is not a dotted key; expected --set section.key=value"
        ));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key, value))
}

/// What figment cannot tell us about the file itself: that it says nothing at all (an empty
/// spec would train a default experiment), or that a YAML mapping repeats a key (figment's
/// YAML provider silently keeps the last value). Syntax errors are left to figment, which
/// reports them with line numbers.
fn check_file_text(path: &Path, text: &str, file: &str) -> Result<(), SpecError> {
    let empty = SpecError::new(
        file,
        "-",
        "the spec file is empty; expected at least `name` and the settings that differ from the defaults",
    );
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => match toml::from_str::<toml::Table>(text) {
            Ok(table) if table.is_empty() => Err(empty),
            _ => Ok(()),
        },
        Some("yaml" | "yml") => match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Null) => Err(empty),
            Ok(serde_yaml::Value::Mapping(m)) if m.is_empty() => Err(empty),
            Err(e) if e.to_string().contains("duplicate entry") => {
                let message = e.to_string();
                // serde_yaml: `duplicate entry with key "latent_dim" at line 4 column 3`.
                let key = message
                    .split('"')
                    .nth(1)
                    .map(str::to_string)
                    .unwrap_or_else(|| "-".into());
                Err(SpecError::new(
                    file,
                    key,
                    format!("{message}; each key may appear once per section"),
                ))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// NaN and infinities pass serde as valid floats; no setting takes one. The error names the
/// dotted key and where the value came from (file, environment or --set).
fn check_finite(spec: &Spec, figment: &Figment, file: &str, path: &Path) -> Result<(), SpecError> {
    fn walk(value: &toml::Value, key: &str, bad: &mut Vec<(String, f64)>) {
        match value {
            toml::Value::Float(f) if !f.is_finite() => bad.push((key.to_string(), *f)),
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}.{k}")
                    };
                    walk(v, &key, bad);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|v| walk(v, key, bad)),
            _ => {}
        }
    }
    let Ok(value) = toml::Value::try_from(spec.run_config()) else {
        return Ok(());
    };
    let mut bad = Vec::new();
    walk(&value, "", &mut bad);
    match bad.first() {
        Some((key, v)) => Err(SpecError::new(
            source_name(figment.find_metadata(key), file, path),
            key.clone(),
            format!("expected a finite number, found {v}"),
        )),
        None => Ok(()),
    }
}

/// Where a value came from: the spec file, another file, the environment, or --set.
fn source_name(metadata: Option<&figment::Metadata>, file: &str, path: &Path) -> String {
    match metadata {
        Some(m) => match &m.source {
            Some(figment::Source::File(p)) if p.ends_with(path) || path.ends_with(p) => {
                file.to_string()
            }
            Some(figment::Source::File(p)) => p.display().to_string(),
            Some(figment::Source::Code(_)) => format!("{file} (with --set)"),
            _ => format!("{file} (with {})", m.name),
        },
        None => file.to_string(),
    }
}

fn figment_error(file: &str, error: figment::Error, path: &Path) -> SpecError {
    use figment::error::Kind;
    let Some(error) = error.into_iter().next() else {
        return SpecError::new(file, "-", "invalid spec");
    };
    // Name where the bad value came from: the spec file, the environment, or --set.
    let source = source_name(error.metadata.as_ref(), file, path);
    // figment prefixes paths with the profile name ("default").
    let mut key_path: Vec<String> = error.path.clone();
    if key_path.first().map(|s| s.as_str()) == Some("default") {
        key_path.remove(0);
    }
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            if key_path.last() != Some(field) {
                key_path.push(field.clone());
            }
            let hint = closest(field, expected)
                .map(|c| format!("; did you mean `{}`?", replace_last(&key_path, c)))
                .unwrap_or_default();
            SpecError::new(
                source,
                key_path.join("."),
                format!(
                    "unknown key{hint} (valid keys here: {})",
                    expected.join(", ")
                ),
            )
        }
        Kind::InvalidType(actual, expected) => SpecError::new(
            source,
            key_path.join("."),
            format!("expected {expected}, found {actual}"),
        ),
        Kind::UnknownVariant(variant, expected) => SpecError::new(
            source,
            key_path.join("."),
            format!(
                "unknown value `{variant}`, expected one of: {}",
                expected.join(", ")
            ),
        ),
        // Syntax errors have no key; say which format failed to parse.
        other if key_path.is_empty() => {
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => "YAML",
                _ => "TOML",
            };
            SpecError::new(source, "-", format!("not valid {format}: {other}"))
        }
        other => SpecError::new(source, key_path.join("."), other.to_string()),
    }
}

fn replace_last(path: &[String], last: &str) -> String {
    let mut p = path.to_vec();
    if let Some(l) = p.last_mut() {
        *l = last.to_string();
    }
    p.join(".")
}

/// The candidate nearest to `word` by edit distance, if it is plausibly a typo of it.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let near = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min()
        .map(|(_, c)| c);
    // A shortened key (`latent` for `latent_dim`) is far in edit distance but plain to see.
    near.or_else(|| {
        let mut prefixed = candidates
            .iter()
            .filter(|c| word.len() >= 3 && (c.starts_with(word) || word.starts_with(**c)));
        match (prefixed.next(), prefixed.next()) {
            (Some(c), None) => Some(*c),
            _ => None,
        }
    })
}

fn validate_spec(spec: &Spec, file: &str) -> Result<(), SpecError> {
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 100
        && !spec.name.starts_with('.')
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err(SpecError::new(
            file,
            "name",
            format!(
                "expected a name of up to 100 letters, digits, '-', '_' or '.', not starting with '.' (it names the folder results/<name>), found {:?}",
                spec.name
            ),
        ));
    }
    let runs = crate::sweep::expand(spec, file)?;
    for run in &runs {
        validate_run(&run.config, file)?;
    }
    Ok(())
}

/// Checks one resolved run: values in range and combinations that make sense.
pub fn validate_run(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let m = &c.model;
    if m.latent_dim == 0 {
        return err("model.latent_dim", "expected a positive integer, found 0");
    }
    for (name, mlp) in [("encoder", &m.encoder), ("decoder", &m.decoder)] {
        if mlp.hidden.contains(&0) {
            return err(
                &format!("model.{name}.hidden"),
                "expected positive layer widths, found a 0",
            );
        }
    }
    if m.fixed_variance.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.fixed_variance", "expected a variance > 0");
    }
    if m.prior == PriorKind::Mixture && m.prior_components == 0 {
        return err("model.prior_components", "expected at least 1 component");
    }
    if m.init_std.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.init_std", "expected a standard deviation > 0");
    }
    if m.logvar_limit.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.logvar_limit", "expected a limit > 0");
    }
    let o = &c.objective;
    if o.beta.partial_cmp(&0.0).is_none() || o.beta < 0.0 {
        return err("objective.beta", "expected beta >= 0");
    }
    if o.mc_samples == 0 {
        return err("objective.mc_samples", "expected at least 1 sample");
    }
    if o.iwae_k == 0 {
        return err("objective.iwae_k", "expected at least 1 importance sample");
    }
    if o.kind == ObjectiveKind::Elbo && o.kl == KlMode::Analytic && m.prior == PriorKind::Mixture {
        return err(
            "objective.kl",
            "analytic KL needs a Gaussian prior, but model.prior = \"mixture\" has no closed form; use kl = \"monte_carlo\"",
        );
    }
    let t = &c.train;
    if !(0.0..1.0).contains(&t.adam_beta1) {
        return err("train.adam_beta1", "expected a decay rate in [0, 1)");
    }
    if !(0.0..1.0).contains(&t.adam_beta2) {
        return err("train.adam_beta2", "expected a decay rate in [0, 1)");
    }
    if t.adam_epsilon.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("train.adam_epsilon", "expected epsilon > 0");
    }
    if t.divergence_factor.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
        return err("train.divergence_factor", "expected a factor > 1");
    }
    if t.keep_last == 0 {
        return err("train.keep_last", "expected at least 1 checkpoint to keep");
    }
    if !(t.checkpoint_every_seconds >= 0.0 && t.checkpoint_every_seconds.is_finite()) {
        return err(
            "train.checkpoint_every_seconds",
            "expected a non-negative number of seconds (0: off)",
        );
    }
    if !(t.early_stopping_min_delta >= 0.0 && t.early_stopping_min_delta.is_finite()) {
        return err(
            "train.early_stopping_min_delta",
            "expected a non-negative number of nats",
        );
    }
    if t.epochs == 0 {
        return err("train.epochs", "expected at least 1 epoch");
    }
    if t.batch_size == 0 {
        return err("train.batch_size", "expected a positive batch size");
    }
    if !(t.lr > 0.0 && t.lr.is_finite()) {
        return err("train.lr", "expected a learning rate > 0");
    }
    if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
        return err("train.weight_decay", "expected weight decay >= 0");
    }
    let e = &c.eval;
    if e.importance_samples == 0 {
        return err("eval.importance_samples", "expected K >= 1");
    }
    if e.max_rows_per_chunk == 0 {
        return err("eval.max_rows_per_chunk", "expected a positive row budget");
    }
    if e.every_epochs == 0 {
        return err("eval.every_epochs", "expected a positive interval");
    }
    if !(e.checkpoint_every_seconds >= 0.0 && e.checkpoint_every_seconds.is_finite()) {
        return err(
            "eval.checkpoint_every_seconds",
            "expected a non-negative number of seconds (0: after every group of blocks)",
        );
    }
    if e.log_px_examples == Some(0) {
        return err(
            "eval.log_px_examples",
            "expected at least 1 example (leave it out to use the whole test set)",
        );
    }
    if e.active_unit_threshold.partial_cmp(&0.0).is_none() || e.active_unit_threshold < 0.0 {
        return err("eval.active_unit_threshold", "expected a variance >= 0");
    }
    if c.runtime.workers == Some(0) {
        return err("runtime.workers", "expected at least 1 worker");
    }
    if c.runtime.threads == Some(0) {
        return err(
            "runtime.threads",
            "expected at least 1 thread per run (leave it out to split the cores between runs)",
        );
    }
    if c.runtime.backend == BackendKind::Cuda && !cfg!(feature = "cuda") {
        return err(
            "runtime.backend",
            "\"cuda\" needs a runner built with `cargo build --release --features cuda`",
        );
    }
    let d = &c.data;
    if !(d.test_fraction > 0.0 && d.test_fraction < 1.0) {
        return err("data.test_fraction", "expected a fraction in (0, 1)");
    }
    if d.train_limit == Some(0) {
        return err(
            "data.train_limit",
            "expected at least 1 example (leave it out to use them all)",
        );
    }
    if d.test_limit == Some(0) {
        return err(
            "data.test_limit",
            "expected at least 1 example (leave it out to use them all)",
        );
    }
    if d.binarization == Binarization::Static
        && d.static_mode == StaticBinarization::Threshold
        && !(0.0..1.0).contains(&d.threshold)
    {
        return err(
            "data.threshold",
            "expected a threshold in [0, 1) (intensities are in [0, 1])",
        );
    }
    if d.columns.as_ref().is_some_and(|c| c.is_empty()) {
        return err(
            "data.columns",
            "expected at least one column name (leave it out to use every numeric column)",
        );
    }
    let syn = &d.synthetic;
    for (key, value) in [
        ("data.synthetic.train_size", syn.train_size),
        ("data.synthetic.test_size", syn.test_size),
        ("data.synthetic.data_dim", syn.data_dim),
        ("data.synthetic.latent_dim", syn.latent_dim),
    ] {
        if value == 0 {
            return err(key, "expected a positive integer, found 0");
        }
    }
    if !(1e-3..=1e3).contains(&syn.noise_std) {
        return err(
            "data.synthetic.noise_std",
            "expected a standard deviation in [0.001, 1000] (the exact log p(x) factorises W Wᵀ + σ² I)",
        );
    }
    if syn.data_dim > 4096 {
        return err(
            "data.synthetic.data_dim",
            "expected at most 4096 dimensions (the exact log p(x) needs a d × d Cholesky factor)",
        );
    }
    // The data files themselves are checked where they are loaded, before anything is
    // written (runner::prepare).
    Ok(())
}

/// Spec files named on the command line, expanded when a directory is given.
pub fn spec_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("toml" | "yaml" | "yml")
                    )
                })
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    out
}
