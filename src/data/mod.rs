//! Datasets: train and test splits of f32 rows, held on the host in a fixed order.
//!
//! Everything random about the data (splits, static binarization, the synthetic model)
//! comes from `data.split_seed`, so every training seed of a sweep sees the same test set.

pub mod batch;
mod cifar;
pub mod device;
mod digits;
mod dsprites;
mod factor_npz;
mod idx;
pub mod image;
mod image_folder;
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
#[derive(Clone, Debug, Default, PartialEq)]
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

#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub train: Matrix,
    pub test: Matrix,
    /// Training examples held out for model selection (`data.validation`), binarized once
    /// as the test set is.
    pub validation: Option<Matrix>,
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
    /// The training rows on the devices that burn's routes train on, uploaded once each.
    pub train_on_device: device::DeviceCopies,
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
        DatasetKind::ImageFolder => image_folder::load(config)?,
        DatasetKind::Npz => factor_npz::load(config)?,
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
    hold_out_validation(&mut dataset, config, &source)?;
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
        let column = |c: usize| match &dataset.columns {
            Some(names) if c < names.len() => format!("column `{}`", names[c]),
            _ => format!("column {c}"),
        };
        if let Some(i) = m.values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{source}: {split} example {} has a non-finite value ({}) in {}",
                    i / m.cols,
                    m.values[i],
                    column(i % m.cols)
                ),
            ));
        }
        // A likelihood squares values (a Gaussian's (x − μ)²): past √f32::MAX that is
        // infinite, and the run would "diverge" on its data rather than its training.
        if let Some(i) = m.values.iter().position(|v| v.abs() > MAX_ABS_VALUE) {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{source}: {split} example {} has the value {:e} in {}, whose square overflows 32-bit floats (|x| must be at most {MAX_ABS_VALUE:e}); rescale the data",
                    i / m.cols,
                    m.values[i],
                    column(i % m.cols)
                ),
            ));
        }
    }
    apply_binarization(&mut dataset, config);
    Ok(dataset)
}

/// The largest magnitude a value may have: its square still fits an f32.
pub const MAX_ABS_VALUE: f32 = 1.8e19;

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
        DatasetKind::ImageFolder => image(image_folder::shape(config)),
        DatasetKind::Table | DatasetKind::Npz => None,
    }
}

/// How to name a dataset in messages: its file or folder, else its kind.
pub fn source_name(config: &DataConfig) -> String {
    match (config.dataset, config.path.as_deref()) {
        (
            DatasetKind::Table
            | DatasetKind::Dsprites
            | DatasetKind::Cifar10
            | DatasetKind::ImageFolder
            | DatasetKind::Npz,
            Some(p),
        ) => p.to_string(),
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

/// Columns that take one value over every training example.
pub fn constant_columns(m: &Matrix) -> Vec<usize> {
    if m.rows == 0 {
        return Vec::new();
    }
    let first = &m.values[..m.cols];
    let mut constant = vec![true; m.cols];
    for row in m.values.chunks_exact(m.cols).skip(1) {
        for ((c, v), f) in constant.iter_mut().zip(row).zip(first) {
            *c &= v == f;
        }
    }
    (0..m.cols).filter(|&c| constant[c]).collect()
}

/// The names of columns `cols` of `dataset`: a table's own, else their indices.
pub fn column_names(dataset: &Dataset, cols: &[usize]) -> Vec<String> {
    cols.iter()
        .map(|&c| match &dataset.columns {
            Some(names) if c < names.len() => names[c].clone(),
            _ => c.to_string(),
        })
        .collect()
}

/// Moves `data.validation` training examples, drawn by a shuffle seeded with
/// `data.split_seed`, into the validation set; the rest stay in their order.
fn hold_out_validation(
    dataset: &mut Dataset,
    config: &DataConfig,
    source: &str,
) -> Result<(), DataError> {
    let n = config.validation;
    if n == 0 {
        return Ok(());
    }
    let rows = dataset.train.rows;
    if n >= rows {
        return Err(DataError::new(
            "data.validation",
            format!(
                "{source}: {n} validation examples asked of a training split of {rows}; expected fewer, so that some remain to train on"
            ),
        ));
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        config.split_seed ^ VALIDATION_SALT,
    ));
    let mut held: Vec<usize> = order[..n].to_vec();
    let mut kept: Vec<usize> = order[n..].to_vec();
    held.sort_unstable();
    kept.sort_unstable();
    dataset.validation = Some(dataset.train.gather(&held));
    dataset.train = dataset.train.gather(&kept);
    Ok(())
}

/// Keeps the validation draw apart from the other uses of `data.split_seed`.
const VALIDATION_SALT: u64 = 0x7A11_DA7E;

fn apply_binarization(dataset: &mut Dataset, config: &DataConfig) {
    let mut rng = StdRng::seed_from_u64(config.split_seed ^ 0xB1A2_12E0);
    match config.binarization {
        Binarization::None => {}
        Binarization::Static => {
            let validation = dataset.validation.as_mut();
            for m in [&mut dataset.train, &mut dataset.test]
                .into_iter()
                .chain(validation)
            {
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
            if let Some(validation) = &mut dataset.validation {
                bernoulli_sample(&mut validation.values, &mut rng);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(validation: usize, binarization: Binarization, split_seed: u64) -> Dataset {
        load(&DataConfig {
            dataset: DatasetKind::Digits,
            validation,
            binarization,
            split_seed,
            ..DataConfig::default()
        })
        .unwrap()
    }

    fn rows(m: &Matrix) -> Vec<Vec<u32>> {
        m.values
            .chunks(m.cols)
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect()
    }

    #[test]
    fn validation_examples_come_from_the_training_split_and_leave_the_test_set_alone() {
        let all = digits(0, Binarization::None, 3);
        let held = digits(100, Binarization::None, 3);
        let validation = held.validation.as_ref().unwrap();
        assert_eq!(validation.rows, 100);
        assert_eq!(held.train.rows + 100, all.train.rows);
        assert_eq!(rows(&held.test), rows(&all.test));
        // Together they are the training split (as a multiset: digits has repeated rows)...
        let mut together = rows(&held.train);
        together.extend(rows(validation));
        together.sort();
        let mut original = rows(&all.train);
        original.sort();
        assert_eq!(together, original);
        // ... and the rows left to train on keep their order: a subsequence of the original.
        let original = rows(&all.train);
        let mut at = 0;
        for row in rows(&held.train) {
            at += original[at..].iter().position(|r| *r == row).unwrap() + 1;
        }
        // The draw is the split seed's: the same again, another with another seed.
        let again = digits(100, Binarization::None, 3);
        assert_eq!(rows(again.validation.as_ref().unwrap()), rows(validation));
        let other = digits(100, Binarization::None, 4);
        assert_ne!(rows(other.validation.as_ref().unwrap()), rows(validation));
    }

    #[test]
    fn a_dynamically_binarized_validation_set_is_binarized_once_and_the_test_set_is_unchanged() {
        let without = digits(0, Binarization::Dynamic, 5);
        let with = digits(200, Binarization::Dynamic, 5);
        let validation = with.validation.as_ref().unwrap();
        assert!(validation.values.iter().all(|&v| v == 0.0 || v == 1.0));
        // Binarized, not thresholded: some pixels of intensity below 0.5 came out as 1.
        let gray = digits(200, Binarization::None, 5);
        let gray = gray.validation.as_ref().unwrap();
        assert!(
            gray.values
                .iter()
                .zip(&validation.values)
                .any(|(&g, &b)| g < 0.5 && g > 0.0 && b == 1.0)
        );
        assert_eq!(rows(&with.test), rows(&without.test));
        let again = digits(200, Binarization::Dynamic, 5);
        assert_eq!(rows(again.validation.as_ref().unwrap()), rows(validation));
        // Training examples stay grayscale: they are binarized afresh each time they are seen.
        assert!(with.train.values.iter().any(|&v| v > 0.0 && v < 1.0));
    }

    #[test]
    fn a_validation_set_as_large_as_the_training_split_is_refused() {
        let train_rows = digits(0, Binarization::None, 0).train.rows;
        let err = load(&DataConfig {
            dataset: DatasetKind::Digits,
            validation: train_rows,
            ..DataConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.key, "data.validation");
        assert!(err.message.contains("expected fewer"), "{}", err.message);
    }
}
