//! Pictures of a trained model: samples, reconstructions, latent traversals,
//! interpolations, the learned 2-D manifold and the latent scatter of the test set.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::TrainedRun;
use super::frames::{blocks_frame, save};
use super::latent::{by_kl, kl_per_dimension, mixture_quantile, top_two};
use crate::data::ImageShape;
use crate::data::device::host;
use crate::data::device::to_tensor;
use crate::eval::posterior_params;
use crate::sinks::grid::Grid;

/// Decoder means E[x | z] of row-major latent codes [rows, latent].
fn decode(run: &TrainedRun, z: Vec<f32>, rows: usize) -> Vec<f32> {
    let latent = run.config().model.latent_dim;
    let z = Tensor::from_data(TensorData::new(z, [rows, latent]), &run.device);
    host(run.model.decoder.mean(z))
}

/// Images `values` (row-major, `h·w` each) laid out `cols` to a row.
fn grid_of(values: &[f32], count: usize, cols: usize, shape: ImageShape) -> Grid {
    let rows = count.div_ceil(cols.max(1));
    let mut grid = Grid::new(rows.max(1), cols.max(1), shape);
    let len = shape.len();
    for i in 0..count {
        grid.put(i / cols, i % cols, &values[i * len..(i + 1) * len]);
    }
    grid
}

/// `runner sample`: `n` draws z ~ p(z) decoded to E[x | z]: `samples.png` (image data) and
/// `samples.parquet` (z_j and x_i per sample).
pub fn sample(
    run: &TrainedRun,
    n: usize,
    seed: u64,
    out: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let dir = run.out_dir(out)?;
    let latent = run.config().model.latent_dim;
    let z = run
        .model
        .sample_prior(n, &mut StdRng::seed_from_u64(seed), &run.device);
    let z_host = host(z.clone());
    let x = host(run.model.decoder.mean(z));
    let mut written = Vec::new();
    if let Some(shape) = run.data.image_shape {
        let cols = (n as f64).sqrt().ceil() as usize;
        let path = dir.join("samples.png");
        grid_of(&x, n, cols, shape).save_png(&path)?;
        written.push(path);
    }
    let frame = blocks_frame(
        "sample",
        n,
        None,
        &[("z", &z_host, latent), ("x", &x, run.data.dim())],
    )?;
    written.push(save(&dir.join("samples.parquet"), frame)?);
    Ok(written)
}

/// `runner reconstruct`: the first `n` test examples above their reconstructions
/// E[x | z = mean of q(z|x)], eight to a row: `reconstructions.png` and a Parquet.
pub fn reconstruct(run: &TrainedRun, n: usize, out: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let dir = run.out_dir(out)?;
    let inputs = run.data.test.head(n);
    let n = inputs.rows;
    let recon = host(run.model.reconstruct(to_tensor(&inputs, &run.device)));
    let mut written = Vec::new();
    if let Some(shape) = run.data.image_shape {
        const COLS: usize = 8;
        let pairs = n.div_ceil(COLS);
        let len = shape.len();
        let mut grid = Grid::new(2 * pairs, COLS.min(n), shape);
        for i in 0..n {
            let (r, c) = (2 * (i / COLS), i % COLS);
            grid.put(r, c, inputs.row(i));
            grid.put(r + 1, c, &recon[i * len..(i + 1) * len]);
        }
        let path = dir.join("reconstructions.png");
        grid.save_png(&path)?;
        written.push(path);
    }
    let d = run.data.dim();
    let frame = blocks_frame(
        "example",
        n,
        run.data.test_labels.as_ref().map(|l| &l[..n.min(l.len())]),
        &[("input", &inputs.values, d), ("reconstruction", &recon, d)],
    )?;
    written.push(save(&dir.join("reconstructions.parquet"), frame)?);
    Ok(written)
}

/// `runner traverse`: one row per latent dimension, ordered by KL (most used first; at most
/// `max_dims`), sweeping that dimension over `steps` prior quantiles from 2.5% to 97.5%
/// while the others stay at the posterior mean of test example `example`.
pub fn traverse(
    run: &TrainedRun,
    steps: usize,
    max_dims: usize,
    example: usize,
    out: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let shape = run.image_shape("traverse")?;
    let dir = run.out_dir(out)?;
    let latent = run.config().model.latent_dim;
    let (means, logvars) = posterior_params(&run.model, &run.data.test);
    let kl = kl_per_dimension(&means, &logvars, latent);
    let order = by_kl(&kl);
    let dims: Vec<usize> = order.into_iter().take(max_dims.max(1)).collect();
    let example = example.min(run.data.test.rows - 1);
    let base = &means[example * latent..(example + 1) * latent];
    let mut z = Vec::with_capacity(dims.len() * steps * latent);
    for &j in &dims {
        let marginal = run.model.prior_marginal(j);
        for s in 0..steps {
            let p = 0.025 + 0.95 * s as f64 / (steps.max(2) - 1) as f64;
            let mut code = base.to_vec();
            code[j] = mixture_quantile(&marginal, p) as f32;
            z.extend(code);
        }
    }
    let x = decode(run, z, dims.len() * steps);
    let path = dir.join("traversals.png");
    // Each row says which dimension it moves and how much information that dimension
    // carries (its mean KL over the test set), most informative first.
    let labels: Vec<String> = dims
        .iter()
        .map(|&j| format!("z{j}  KL {:.2}", kl[j]))
        .collect();
    let png = grid_of(&x, dims.len() * steps, steps, shape).labelled_png(&labels)?;
    crate::sinks::results::write_atomic(&path, &png)?;
    Ok(vec![path])
}

/// `runner pseudo-inputs`: the VampPrior's learned pseudo-inputs as the encoder reads them
/// (at most `max` of them, 10 a row), shown as images of the data.
pub fn pseudo_inputs(
    run: &TrainedRun,
    max: usize,
    out: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let crate::model::Prior::Vamp(prior) = &run.model.prior else {
        return Err(super::RunNotFound(format!(
            "run {} has no pseudo-inputs: its prior is {:?}, not \"vamp\"",
            run.record.run_id,
            run.config().model.prior
        ))
        .into());
    };
    let shape = run.image_shape("pseudo-inputs")?;
    let dir = run.out_dir(out)?;
    let u = prior.inputs_host();
    let count = (u.len() / shape.len()).min(max.max(1));
    let path = dir.join("pseudo_inputs.png");
    let png = grid_of(&u, count, 10.min(count), shape).png()?.2;
    crate::sinks::results::write_atomic(&path, &png)?;
    Ok(vec![path])
}

/// `runner interpolate`: for `pairs` pairs of test examples (0 and 1, 2 and 3, …), the first
/// input, `steps` decodings along the straight line between their posterior means, and the
/// second input.
pub fn interpolate(
    run: &TrainedRun,
    pairs: usize,
    steps: usize,
    out: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let shape = run.image_shape("interpolate")?;
    let len = shape.len();
    let dir = run.out_dir(out)?;
    let latent = run.config().model.latent_dim;
    let pairs = pairs.min(run.data.test.rows / 2).max(1);
    let ends = run.data.test.head(2 * pairs);
    let (means, _) = posterior_params(&run.model, &ends);
    let mut z = Vec::new();
    for p in 0..pairs {
        let a = &means[2 * p * latent..(2 * p + 1) * latent];
        let b = &means[(2 * p + 1) * latent..(2 * p + 2) * latent];
        for s in 0..steps {
            let t = s as f32 / (steps.max(2) - 1) as f32;
            z.extend(a.iter().zip(b).map(|(a, b)| a + t * (b - a)));
        }
    }
    let x = decode(run, z, pairs * steps);
    let cols = steps + 2;
    let mut grid = Grid::new(pairs, cols, shape);
    for p in 0..pairs {
        grid.put(p, 0, ends.row(2 * p));
        for s in 0..steps {
            let i = p * steps + s;
            grid.put(p, s + 1, &x[i * len..(i + 1) * len]);
        }
        grid.put(p, cols - 1, ends.row(2 * p + 1));
    }
    let path = dir.join("interpolations.png");
    grid.save_png(&path)?;
    Ok(vec![path])
}

/// `runner manifold` (2-D latent spaces): decoder means on a `size` × `size` grid of the
/// prior's marginal quantiles (the AEVB paper's Figure 4; z0 grows to the right, z1
/// upwards), `manifold.png`, and the test set's latent scatter, `latent_scatter.png`.
pub fn manifold(run: &TrainedRun, size: usize, out: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let shape = run.image_shape("manifold")?;
    let latent = run.config().model.latent_dim;
    if latent != 2 {
        return Err(super::RunNotFound(format!(
            "`runner manifold` needs a 2-D latent space; run {} has model.latent_dim = {latent} (`runner traverse` shows any latent space)",
            run.record.run_id
        ))
        .into());
    }
    let dir = run.out_dir(out)?;
    let quantiles = |j: usize| -> Vec<f64> {
        let marginal = run.model.prior_marginal(j);
        (0..size)
            .map(|i| mixture_quantile(&marginal, (i as f64 + 0.5) / size as f64))
            .collect()
    };
    let (q1, q2) = (quantiles(0), quantiles(1));
    let mut z = Vec::with_capacity(size * size * 2);
    for row in 0..size {
        for &z1 in &q1 {
            z.extend([z1 as f32, q2[size - 1 - row] as f32]);
        }
    }
    let x = decode(run, z, size * size);
    let path = dir.join("manifold.png");
    grid_of(&x, size * size, size, shape).save_png(&path)?;
    let (means, logvars) = posterior_params(&run.model, &run.data.test);
    let scatter = latent_scatter(run, &means, &logvars, &dir)?;
    Ok(vec![path, scatter])
}

/// `latent_scatter.png`: posterior means of the test set on both dimensions of a 2-D latent
/// space, else on the two with the most KL; coloured by label where the data have labels.
pub fn latent_scatter(
    run: &TrainedRun,
    means: &[f32],
    logvars: &[f32],
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let latent = run.config().model.latent_dim;
    // Two latents in their own order (as the manifold draws them), else the two most used.
    let (a, b) = if latent == 2 {
        (0, 1)
    } else {
        top_two(means, logvars, latent)
    };
    let points: Vec<(f64, f64)> = means
        .chunks(latent)
        .map(|m| (m[a] as f64, m[b] as f64))
        .collect();
    let title = format!(
        "Test set in latent space: posterior means ({}, {} test examples)",
        run.record.label,
        points.len()
    );
    let png = crate::report::plots::latent_scatter_png(
        &points,
        run.data.test_labels.as_deref(),
        (
            &format!("z{a} (posterior mean)"),
            &format!("z{b} (posterior mean)"),
        ),
        &title,
    )?;
    let path = dir.join("latent_scatter.png");
    crate::sinks::results::write_atomic(&path, &png)?;
    Ok(path)
}
