//! Everything checked before a sweep writes anything: the data each run reads (loaded once
//! here and shared by the runs), what the model asks of that data, the results folder, and
//! the devices (started here, once).
//! Problems are spec errors (exit 2) naming the spec file, the key and the data file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::data::{self, DataError, Dataset};
use burn::tensor::Device;

use crate::spec::{
    BackendKind, Binarization, DataConfig, LikelihoodKind, RuntimeConfig, SpecError, VarianceKind,
};
use crate::sweep::PlannedRun;

/// Datasets shared by the runs of a sweep that read the same data.
#[derive(Default)]
pub struct DataCache(Mutex<HashMap<String, Arc<Dataset>>>);

impl DataCache {
    pub fn get(&self, config: &DataConfig) -> Result<Arc<Dataset>, DataError> {
        let key = serde_json::to_string(config).unwrap_or_default();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = map.get(&key) {
            return Ok(d.clone());
        }
        // A reader that panics on a strange file is still that file's error, not a crash.
        let loaded = std::panic::catch_unwind(|| data::load(config)).unwrap_or_else(|panic| {
            Err(DataError::new(
                "data.path",
                format!(
                    "{}: could not be read: {}",
                    data::source_name(config),
                    crate::panic_text(&*panic)
                ),
            ))
        });
        let d = Arc::new(loaded?);
        map.insert(key, d.clone());
        Ok(d)
    }
}

/// What a sweep needs, made ready before anything is written: every run's data, loaded
/// and checked, and every device the runs ask for, started.
pub struct Prepared {
    pub datasets: DataCache,
    pub devices: Devices,
}

/// Everything checked before a sweep writes: every run's data, the results folder of the
/// experiment, and the backends.
pub fn preflight(
    runs: &[PlannedRun],
    experiment_dir: &Path,
    file: &str,
) -> Result<Prepared, SpecError> {
    let datasets = load_data(runs, file)?;
    check_results_dir(experiment_dir, file)?;
    let devices = check_backends(runs, file)?;
    Ok(Prepared { datasets, devices })
}

/// Loads every run's data and checks it against the run's model.
pub fn load_data(runs: &[PlannedRun], file: &str) -> Result<DataCache, SpecError> {
    let cache = DataCache::default();
    for run in runs {
        let data = cache
            .get(&run.config.data)
            .map_err(|e| SpecError::new(file, e.key, e.message))?;
        check_against_model(run, &data, file)?;
    }
    Ok(cache)
}

/// More parameters than any machine could hold (2⁴⁸ f32 values are 1 PiB, before
/// gradients and optimiser state): a spec error, whatever the machine.
pub const MAX_PARAMETERS: f64 = (1u64 << 48) as f64;

/// What the model asks of the data: a size some machine can hold, and, for a Bernoulli
/// likelihood (and any binarization), values that read as probabilities.
fn check_against_model(run: &PlannedRun, data: &Dataset, file: &str) -> Result<(), SpecError> {
    let c = &run.config;
    crate::model::conv::plan(&c.model, data.image_shape)
        .map_err(|e| SpecError::new(file, e.key, format!("run {}: {}", run.label, e.message)))?;
    let params = crate::model::parameter_count(&c.model, data);
    // NaN (an absurd size that overflowed) is refused too.
    if params.is_nan() || params > MAX_PARAMETERS {
        return Err(SpecError::new(
            file,
            "model",
            format!(
                "run {}: {params:.3e} parameters on {}-dimensional data; no machine holds more than 2^48 ({MAX_PARAMETERS:.3e}): make latent_dim or the hidden layers smaller",
                run.label,
                data.dim()
            ),
        ));
    }
    check_memory(run, data, file)?;
    check_constant_columns(run, data, file)?;
    let needs_unit_range = c.model.likelihood == LikelihoodKind::Bernoulli
        || c.data.binarization != Binarization::None;
    if !needs_unit_range {
        return Ok(());
    }
    let (lo, hi) = data::value_range(data);
    if lo >= 0.0 && hi <= 1.0 {
        return Ok(());
    }
    let (key, why) = if c.data.binarization != Binarization::None {
        (
            "data.binarization",
            "binarization reads values as probabilities",
        )
    } else {
        (
            "model.likelihood",
            "the Bernoulli likelihood needs data in [0, 1] (rescale the data, or use likelihood = \"gaussian\")",
        )
    };
    Err(SpecError::new(
        file,
        key,
        format!(
            "{}: values range over [{lo}, {hi}], but {why}",
            data::source_name(&c.data)
        ),
    ))
}

/// A table column that never varies, under a Gaussian likelihood whose variance is
/// learned: the variance of its fit shrinks without end and the ELBO with it rises without
/// bound (to the `model.logvar_limit` clamp), so such a run is refused. (Image datasets'
/// constant pixels, MNIST's borders, and a fixed variance get a note in the run's row.)
fn check_constant_columns(run: &PlannedRun, data: &Dataset, file: &str) -> Result<(), SpecError> {
    let m = &run.config.model;
    if m.likelihood != LikelihoodKind::Gaussian
        || m.variance == VarianceKind::Fixed
        || data.columns.is_none()
    {
        return Ok(());
    }
    let constant = data::constant_columns(&data.train);
    if constant.is_empty() {
        return Ok(());
    }
    Err(SpecError::new(
        file,
        "model.variance",
        format!(
            "run {}: {}: column(s) {} take one value in every training example, and a Gaussian likelihood with a learned variance fits them ever more tightly, so the ELBO rises without bound; leave them out (data.columns) or use variance = \"fixed\"",
            run.label,
            data::source_name(&run.config.data),
            data::column_names(data, &constant).join(", ")
        ),
    ))
}

/// A run the memory estimate says this machine cannot hold is refused before anything is
/// written, naming the setting that weighs most. (Memory that others take between now and
/// the run is checked again as it starts: a failed allocation would abort the sweep.)
fn check_memory(run: &PlannedRun, data: &Dataset, file: &str) -> Result<(), SpecError> {
    let estimate =
        crate::model::memory_estimate(&run.config, data, data.train.rows, data.test.rows);
    crate::resources::ensure_fits(estimate.bytes(), &format!("run {}", run.label)).map_err(|m| {
        let limit = crate::resources::memory_limit_bytes();
        SpecError::new(
            file,
            estimate.key_over(limit),
            format!(
                "{m} (parameters with optimiser state {}, a training minibatch's activations {}, an evaluation chunk's {})",
                crate::resources::human_bytes(estimate.parameters),
                crate::resources::human_bytes(estimate.training),
                crate::resources::human_bytes(estimate.evaluation)
            ),
        )
    })
}

/// The devices the runs of a sweep train on, each started once, by (backend, index).
#[derive(Default)]
pub struct Devices(Vec<((BackendKind, usize), Device)>);

impl Devices {
    fn key(runtime: &RuntimeConfig) -> (BackendKind, usize) {
        (
            crate::backend::resolve(runtime.backend),
            runtime.device_index,
        )
    }

    /// The device a run's `runtime` asks for, if it was started.
    pub fn get(&self, runtime: &RuntimeConfig) -> Option<&Device> {
        let key = Self::key(runtime);
        self.0.iter().find(|(k, _)| *k == key).map(|(_, d)| d)
    }
}

/// Every backend (and device) the runs ask for starts: probed with a tiny computation, so
/// that a CUDA run on a machine without a GPU is refused before anything is written.
pub fn check_backends(runs: &[PlannedRun], file: &str) -> Result<Devices, SpecError> {
    let mut devices = Devices::default();
    for run in runs {
        if run.config.runtime.backend == BackendKind::Fused
            && let Some(why) = crate::engine::fused_unsupported(&run.config)
        {
            return Err(SpecError::new(
                file,
                "runtime.backend",
                format!(
                    "run {}: the fused engine cannot train {why}; use backend = \"cpu\" (which falls back to flex for such models) or \"flex\"",
                    run.label
                ),
            ));
        }
        if devices.get(&run.config.runtime).is_some() {
            continue;
        }
        let key = Devices::key(&run.config.runtime);
        let device = crate::backend::device(key.0, key.1)
            .map_err(|e| SpecError::new(file, "runtime.backend", format!("{e:#}")))?;
        devices.0.push((key, device));
    }
    Ok(devices)
}

/// The results folder can be created and written: checked by creating and removing a file
/// in it (or in the nearest folder above it that exists), so nothing is left behind.
pub fn check_results_dir(experiment_dir: &Path, file: &str) -> Result<(), SpecError> {
    let err = |m: String| SpecError::new(file, "runtime.results_dir", m);
    let mut existing: PathBuf = experiment_dir.to_path_buf();
    // A link that cannot be followed (a loop, a dangling target) is "there" but unusable:
    // walking past it to its parent would pass this check and fail at the first write.
    while std::fs::symlink_metadata(&existing).is_err() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p.to_path_buf(),
            _ => {
                existing = PathBuf::from(".");
                break;
            }
        }
    }
    if let Err(e) = std::fs::metadata(&existing) {
        return Err(err(format!(
            "{} is a link that cannot be followed ({e}); results go to {}",
            existing.display(),
            experiment_dir.display()
        )));
    }
    if !existing.is_dir() {
        return Err(err(format!(
            "{} is a file, not a folder; results go to {}",
            existing.display(),
            experiment_dir.display()
        )));
    }
    let probe = existing.join(format!(".aevb-write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(err(format!(
            "cannot write in {} (results go to {}): {e}",
            existing.display(),
            experiment_dir.display()
        ))),
    }
}
