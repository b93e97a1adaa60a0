//! Parquet tables of what a trained model makes of data: posterior parameters per test
//! example (`encode`), and the values behind the sample and reconstruction figures.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::TrainedRun;
use super::frames::{blocks_frame, save};
use crate::eval::posterior_params;

/// `runner encode`: `encoded.parquet` (per test example: label where the data have them,
/// the generative factors where they are known — `factor_<name>` classes and
/// `factor_<name>_value` values —, posterior means `mu_j` and log-variances `logvar_j`) and
/// `latent_scatter.png` (the means on the two dimensions with the most KL, coloured by label).
pub fn encode(run: &TrainedRun, out: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let dir = run.out_dir(out)?;
    let test = &run.data.test;
    let latent = run.config().model.latent_dim;
    let (means, logvars) = posterior_params(&run.model, test);
    let labels = run.data.test_labels.as_deref();
    let mut frame = blocks_frame(
        "example",
        test.rows,
        labels,
        &[("mu", &means, latent), ("logvar", &logvars, latent)],
    )?;
    if let Some(f) = &run.data.test_factors {
        let k = f.names.len();
        for (j, name) in f.names.iter().enumerate() {
            let classes: Vec<u32> = (0..test.rows).map(|i| f.classes[i * k + j]).collect();
            let values: Vec<f32> = (0..test.rows).map(|i| f.values[i * k + j]).collect();
            frame.with_column(Column::new(format!("factor_{name}").into(), classes))?;
            frame.with_column(Column::new(format!("factor_{name}_value").into(), values))?;
        }
    }
    let table = save(&dir.join("encoded.parquet"), frame)?;
    let scatter = super::figures::latent_scatter(run, &means, &logvars, &dir)?;
    Ok(vec![table, scatter])
}
