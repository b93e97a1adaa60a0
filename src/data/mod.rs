//! Datasets: train and test splits of f32 rows, held on the host in a fixed order.
//!
//! Everything random about the data (splits, static binarization, the synthetic model)
//! comes from `data.split_seed`, so every training seed of a sweep sees the same test set.

mod cifar;
mod digits;
mod dsprites;
mod idx;
pub mod image;
pub mod npz;
pub mod sprites;
pub mod synthetic;
mod table;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use image::ImageShape;

use crate::spec::{Binarization, DataConfig, DatasetKind, StaticBinarization};

/// Row-major examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl Matrix {
    /// Callers build `values` from `rows` and `cols`; a mismatch is a bug, not bad input.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Self {
        assert_eq!(
            values.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        Self { rows, cols, values }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> Matrix {
        let mut values = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Matrix::new(indices.len(), self.cols, values)
    }

    /// The first `n` rows (all of them if there are fewer).
    pub fn head(&self, n: usize) -> Matrix {
        let n = n.min(self.rows);
        Matrix::new(n, self.cols, self.values[..n * self.cols].to_vec())
    }
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub train: Matrix,
    pub test: Matrix,
    /// Channels × height × width where the rows are images (channel-planar): what conv
    /// layers read and image grids draw.
    pub image_shape: Option<ImageShape>,
    /// Train examples are re-binarized with a fresh Bernoulli sample each time they are seen.
    pub dynamic_binarization: bool,
    /// Mean exact test log p(x) in nats, where the data's true model is known (synthetic).
    pub exact_test_log_px: Option<f64>,
    /// The test examples' class labels, where the dataset has them (digits, MNIST).
    pub test_labels: Option<Vec<u32>>,
    /// The test examples' generative factors, where the data were generated from known ones
    /// (sprites).
    pub test_factors: Option<Factors>,
    /// The table columns that were modelled, in order (tables only).
    pub columns: Option<Vec<String>>,
    /// What the loader noticed and the run's row keeps (skipped columns, ...).
    pub notes: Vec<String>,
}

/// Known generative factors of a set of examples: per example, each factor's class (an
/// index into its values) and value, row-major [examples × factors].
#[derive(Clone, Debug, PartialEq)]
pub struct Factors {
    pub names: Vec<String>,
    /// How many values each factor takes.
    pub sizes: Vec<usize>,
    pub classes: Vec<u32>,
    pub values: Vec<f32>,
}

impl Factors {
    /// The first `n` examples' factors.
    pub fn truncate(&mut self, n: usize) {
        let k = self.names.len();
        self.classes.truncate(n * k);
        self.values.truncate(n * k);
    }
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.train.cols
    }
}

/// Data that cannot be used, with the spec key that points at it (`data.path`,
/// `data.test_path`, `data.columns`, ...); the message names the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DataError {
    pub key: &'static str,
    pub message: String,
}

impl DataError {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// Loads, limits and binarizes a dataset, and checks what every model needs of it: at least
/// one training and one test example, and finite values.
pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let mut dataset = match config.dataset {
        DatasetKind::Synthetic => synthetic::load(config)?,
        DatasetKind::Digits => digits::load(config)?,
        DatasetKind::Mnist | DatasetKind::FashionMnist => idx::load(config)?,
        DatasetKind::Table => table::load(config)?,
        DatasetKind::Sprites => sprites::load(config)?,
        DatasetKind::Dsprites => dsprites::load(config)?,
        DatasetKind::Cifar10 => cifar::load(config)?,
    };
    if let Some(n) = config.train_limit {
        dataset.train = dataset.train.head(n);
    }
    if let Some(n) = config.test_limit {
        dataset.test = dataset.test.head(n);
        if let Some(labels) = &mut dataset.test_labels {
            labels.truncate(n);
        }
        if let Some(factors) = &mut dataset.test_factors {
            factors.truncate(n);
        }
    }
    let source = source_name(config);
    for (split, m) in [("training", &dataset.train), ("test", &dataset.test)] {
        if m.rows == 0 || m.cols == 0 {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{source}: the {split} split has {} examples of {} values; expected at least one example with at least one value",
                    m.rows, m.cols
                ),
            ));
        }
        if let Some(i) = m.values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{source}: {split} example {} has a non-finite value ({}) in column {}",
                    i / m.cols,
                    m.values[i],
                    i % m.cols
                ),
            ));
        }
    }
    apply_binarization(&mut dataset, config);
    Ok(dataset)
}

/// The shape of a dataset's rows as its config declares it, without reading it: values per
/// row and the image shape where they are images; `None` for a table (its columns are only
/// known once read). dSprites' file is 64×64 in its published layout.
pub fn declared_shape(config: &DataConfig) -> Option<(usize, Option<ImageShape>)> {
    let image = |shape: ImageShape| Some((shape.len(), Some(shape)));
    match config.dataset {
        DatasetKind::Synthetic => Some((config.synthetic.data_dim, None)),
        DatasetKind::Digits => image(ImageShape::grey(digits::SIDE, digits::SIDE)),
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            image(ImageShape::grey(idx::SIDE, idx::SIDE))
        }
        DatasetKind::Sprites => image(ImageShape::grey(
            config.sprites.resolution,
            config.sprites.resolution,
        )),
        DatasetKind::Dsprites => image(ImageShape::grey(64, 64)),
        DatasetKind::Cifar10 => image(ImageShape {
            channels: cifar::CHANNELS,
            height: cifar::SIDE,
            width: cifar::SIDE,
        }),
        DatasetKind::Table => None,
    }
}

/// How to name a dataset in messages: its file or folder, else its kind.
pub fn source_name(config: &DataConfig) -> String {
    match (config.dataset, config.path.as_deref()) {
        (DatasetKind::Table | DatasetKind::Dsprites | DatasetKind::Cifar10, Some(p)) => {
            p.to_string()
        }
        (DatasetKind::Mnist | DatasetKind::FashionMnist, p) => {
            p.unwrap_or(idx::DEFAULT_DIR).to_string()
        }
        (kind, _) => format!("the {kind:?} dataset").to_lowercase(),
    }
}

/// The smallest and largest value of the (unbinarized) data.
pub fn value_range(dataset: &Dataset) -> (f32, f32) {
    dataset
        .train
        .values
        .iter()
        .chain(&dataset.test.values)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn apply_binarization(dataset: &mut Dataset, config: &DataConfig) {
    let mut rng = StdRng::seed_from_u64(config.split_seed ^ 0xB1A2_12E0);
    match config.binarization {
        Binarization::None => {}
        Binarization::Static => {
            for m in [&mut dataset.train, &mut dataset.test] {
                match config.static_mode {
                    StaticBinarization::Threshold => {
                        threshold(&mut m.values, config.threshold as f32)
                    }
                    StaticBinarization::Sample => bernoulli_sample(&mut m.values, &mut rng),
                }
            }
        }
        Binarization::Dynamic => {
            // Training data are resampled every time they are seen; the test set is
            // binarized once, so that every evaluation scores the same data.
            bernoulli_sample(&mut dataset.test.values, &mut rng);
            dataset.dynamic_binarization = true;
        }
    }
}

fn threshold(values: &mut [f32], t: f32) {
    for v in values {
        *v = if *v > t { 1.0 } else { 0.0 };
    }
}

/// Replaces each intensity p in [0, 1] with one Bernoulli(p) draw.
pub fn bernoulli_sample(values: &mut [f32], rng: &mut impl Rng) {
    for v in values {
        *v = if rng.random::<f32>() < *v { 1.0 } else { 0.0 };
    }
}

/// Splits rows into (train, test) by a seeded shuffle; `test_fraction` of them go to test.
pub fn split(all: &Matrix, test_fraction: f64, seed: u64) -> (Matrix, Matrix) {
    let (train, test) = split_rows(all.rows, test_fraction, seed);
    (all.gather(&train), all.gather(&test))
}

/// The row indices of [`split`]: (train, test).
pub fn split_rows(rows: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_test = ((rows as f64) * test_fraction).round() as usize;
    let n_test = n_test.clamp(1, rows.saturating_sub(1).max(1));
    let (test, train) = order.split_at(n_test);
    (train.to_vec(), test.to_vec())
}
