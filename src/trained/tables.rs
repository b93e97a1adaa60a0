//! Parquet tables of what a trained model makes of data: posterior parameters per test
//! example (`encode`), and the values behind the sample and reconstruction figures.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::TrainedRun;
use super::latent::{by_kl, kl_per_dimension};
use crate::eval::posterior_params;
use crate::sinks::parquet::write_parquet_atomic;

/// A table with an integer `index` column and, per block, `name_0 … name_{width-1}`
/// columns from a row-major [rows, width] block.
pub fn blocks_frame(
    index_name: &str,
    rows: usize,
    labels: Option<&[u32]>,
    blocks: &[(&str, &[f32], usize)],
) -> anyhow::Result<DataFrame> {
    let mut columns: Vec<Column> = vec![Column::new(
        index_name.into(),
        (0..rows as u32).collect::<Vec<u32>>(),
    )];
    if let Some(labels) = labels {
        columns.push(Column::new("label".into(), labels.to_vec()));
    }
    for &(name, values, width) in blocks {
        for j in 0..width {
            let col: Vec<f32> = (0..rows).map(|i| values[i * width + j]).collect();
            columns.push(Column::new(format!("{name}_{j}").into(), col));
        }
    }
    Ok(DataFrame::new(rows, columns)?)
}

pub fn save(path: &Path, mut frame: DataFrame) -> anyhow::Result<PathBuf> {
    write_parquet_atomic(path, &mut frame)?;
    Ok(path.to_path_buf())
}

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

/// The two latent dimensions with the most KL (the only two for a 2-D latent space).
pub fn top_two(means: &[f32], logvars: &[f32], latent: usize) -> (usize, usize) {
    let order = by_kl(&kl_per_dimension(means, logvars, latent));
    (order[0], *order.get(1).unwrap_or(&order[0]))
}
