//! The trained model, saved at the end of every run as `model.safetensors` beside its
//! resolved spec (`config.toml`), so that it can be sampled from, re-evaluated, or opened
//! in PyTorch (`safetensors.torch.load_file`). Tensor names are the module paths
//! (`encoder.hidden.0.weight`, …); burn stores a linear layer's weight as [in, out], the
//! transpose of PyTorch's `nn.Linear.weight`.

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::model::Vae;
use crate::spec::RunConfig;

pub const MODEL_FILE: &str = "model.safetensors";

/// Writes `model` to `path` atomically, with the run id and aevb version as metadata.
pub fn save(model: &Vae, path: &Path, run_id: &str) -> anyhow::Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata("aevb_version", crate::VERSION)
        .metadata("run_id", run_id)
        .metadata(
            "layout",
            "linear weights are [in, out] (PyTorch: [out, in])",
        );
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot encode the model of run {run_id}: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot encode the model of run {run_id}: {e}"))?;
    super::results::write_atomic(path, &bytes)
}

/// Builds the model `config` describes for `data_dim`-dimensional data and loads the weights
/// saved at `path`; every parameter must be in the file, with its shape.
pub fn load(
    config: &RunConfig,
    input: crate::model::Input,
    path: &Path,
    device: &Device,
) -> anyhow::Result<Vae> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut model = Vae::try_new(&config.model, input, &mut StdRng::seed_from_u64(0), device)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let applied = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        anyhow::bail!(
            "{}: does not hold this run's model ({} parameters missing, {} errors)",
            path.display(),
            applied.missing.len(),
            applied.errors.len()
        );
    }
    Ok(model)
}
