//! `dataset = "cifar10"`: CIFAR-10's binary version as published (`cifar-10-batches-bin/`:
//! `data_batch_1.bin` … `data_batch_5.bin` for training, `test_batch.bin` for testing; each
//! record 1 label byte then 3,072 pixel bytes, the red, green and blue 32×32 planes in turn),
//! read from the folder at `data.path`. Intensities are scaled to [0, 1]; a row keeps the
//! file's channel-major order, which is the 3×32×32 image shape the figures draw in colour.

use std::path::Path;

use super::{DataError, Dataset, ImageShape, Matrix};
use crate::spec::DataConfig;

pub const SIDE: usize = 32;
pub const CHANNELS: usize = 3;
pub const PIXELS: usize = CHANNELS * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";

/// One batch file: its images (rows of PIXELS values in [0, 1]) and labels.
fn read_batch(path: &Path) -> Result<(Vec<f32>, Vec<u32>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        DataError::new(
            "data.path",
            format!(
                "{}: {e} (expected CIFAR-10's binary version: data_batch_1.bin … data_batch_5.bin and test_batch.bin in one folder)",
                path.display()
            ),
        )
    })?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(DataError::new(
            "data.path",
            format!(
                "{}: {} bytes, not a whole number of {RECORD}-byte records (1 label byte + 3,072 pixel bytes each)",
                path.display(),
                bytes.len()
            ),
        ));
    }
    let mut images = Vec::with_capacity(bytes.len() / RECORD * PIXELS);
    let mut labels = Vec::with_capacity(bytes.len() / RECORD);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] > 9 {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{}: record {i} has label {}; expected a class 0–9",
                    path.display(),
                    record[0]
                ),
            ));
        }
        labels.push(record[0] as u32);
        images.extend(record[1..].iter().map(|&b| b as f32 / 255.0));
    }
    Ok((images, labels))
}

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let dir = Path::new(config.path.as_deref().ok_or_else(|| {
        DataError::new(
            "data.path",
            "dataset = \"cifar10\" reads CIFAR-10's binary batches: set data.path to the cifar-10-batches-bin folder",
        )
    })?);
    let mut train = Vec::new();
    for name in TRAIN_FILES {
        train.extend(read_batch(&dir.join(name))?.0);
    }
    let (test, test_labels) = read_batch(&dir.join(TEST_FILE))?;
    Ok(Dataset {
        train: Matrix::new(train.len() / PIXELS, PIXELS, train),
        test: Matrix::new(test.len() / PIXELS, PIXELS, test),
        image_shape: Some(ImageShape {
            channels: CHANNELS,
            height: SIDE,
            width: SIDE,
        }),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: Some(test_labels),
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
