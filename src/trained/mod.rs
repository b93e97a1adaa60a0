//! Using what a run trained: open a finished run by its folder, id or label, then sample
//! from it, reconstruct and encode test data, draw latent traversals, interpolations and
//! (for two latents) the learned manifold, or re-estimate its test log p(x) with a larger K.

pub mod figures;
mod frames;
pub mod latent;
pub mod reevaluate;
pub mod tables;

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::data::{self, Dataset};
use crate::model::Vae;
use crate::sinks::model_file::{self, MODEL_FILE};
use crate::sinks::results::{self, RunRecord};
use crate::spec::RunConfig;

/// A RUN argument that names no finished run, or names several (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunNotFound(pub String);

/// A finished run with its model loaded and its data read.
pub struct TrainedRun {
    /// `results/<experiment>/runs/<id>`.
    pub dir: PathBuf,
    pub record: RunRecord,
    pub data: Dataset,
    pub model: Vae,
    pub device: Device,
}

impl TrainedRun {
    /// Opens `run` (a run folder, or a run id or label under `results`).
    pub fn open(run: &str, results: &Path) -> anyhow::Result<Self> {
        Self::open_in(run, results, None)
    }

    /// [`Self::open`], looking for ids and labels in experiment `experiment` alone where
    /// one is given.
    pub fn open_in(run: &str, results: &Path, experiment: Option<&str>) -> anyhow::Result<Self> {
        let dir = locate(run, results, experiment)?;
        let record = read_record(&dir)?;
        let config: &RunConfig = &record.config;
        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            return Err(RunNotFound(format!(
                "{}: no {MODEL_FILE} (the run {}; rerun its sweep with --force to train and keep a model)",
                dir.display(),
                match record.status {
                    crate::sinks::results::RunStatus::Failed => "failed",
                    _ => "finished before aevb kept trained models",
                }
            ))
            .into());
        }
        let data = data::load(&config.data).map_err(|e| {
            anyhow::anyhow!(
                "run {}: its data ({} = {}) cannot be read from here: {e}",
                record.run_id,
                e.key,
                data::source_name(&config.data)
            )
        })?;
        // A model trained on a GPU cluster is often looked at on a laptop: where the run's
        // backend cannot start here, the default CPU backend reads the same weights.
        let kind = crate::backend::resolve(config.runtime.backend);
        let device = match crate::backend::device(kind, config.runtime.device_index) {
            Ok(device) => device,
            Err(e) if kind != crate::backend::DEFAULT_CPU => {
                eprintln!(
                    "note: run {} was trained on {}, which cannot start here ({e:#}); using {}",
                    record.run_id,
                    crate::backend::name(kind),
                    crate::backend::name(crate::backend::DEFAULT_CPU)
                );
                crate::backend::device(crate::backend::DEFAULT_CPU, 0)?
            }
            Err(e) => return Err(e),
        };
        let model = model_file::load(config, (&data).into(), &model_path, &device)?;
        Ok(Self {
            dir,
            record,
            data,
            model,
            device,
        })
    }

    pub fn config(&self) -> &RunConfig {
        &self.record.config
    }

    /// Where a command writes: `out`, else the run's `figures/` folder (created).
    pub fn out_dir(&self, out: Option<&Path>) -> anyhow::Result<PathBuf> {
        let dir = out
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.join("figures"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// The shape of the data's images, or an error naming the command that needs them.
    pub fn image_shape(&self, command: &str) -> anyhow::Result<crate::data::ImageShape> {
        self.data.image_shape.ok_or_else(|| {
            RunNotFound(format!(
                "`runner {command}` draws images, and run {}'s data ({:?}) are not images",
                self.record.run_id,
                self.config().data.dataset
            ))
            .into()
        })
    }
}

fn read_record(dir: &Path) -> anyhow::Result<RunRecord> {
    results::read_record(dir)?.ok_or_else(|| anyhow::anyhow!("{}: no record.json", dir.display()))
}

/// The folder of the finished run `run`: a path to it, else the run id or label of exactly
/// one finished run in `results/*/runs/` (in `results/<experiment>/runs/` alone where an
/// experiment is given).
pub fn locate(run: &str, results: &Path, experiment: Option<&str>) -> Result<PathBuf, RunNotFound> {
    let as_path = Path::new(run);
    if as_path.join("record.json").is_file() {
        return Ok(as_path.to_path_buf());
    }
    if as_path.is_dir() {
        return Err(RunNotFound(format!(
            "{run}: no record.json; expected the folder of a finished run (results/<experiment>/runs/<id>)"
        )));
    }
    let mut found = Vec::new();
    let folders = std::fs::read_dir(results).into_iter().flatten().flatten();
    let wanted = folders.filter(|e| experiment.is_none_or(|name| e.file_name() == name));
    for folder in wanted {
        let runs = folder.path().join("runs");
        for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
            let dir = entry.path();
            let Ok(record) = read_record(&dir) else {
                continue;
            };
            if record.run_id == run || record.label == run {
                found.push(dir);
            }
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(RunNotFound(format!(
            "{run}: not a run folder, and no finished run in {} has that id or label (use --results DIR for another results folder)",
            results.display()
        ))),
        _ => Err(RunNotFound(format!(
            "{run}: {} finished runs match ({}); give the run id or its folder",
            found.len(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
