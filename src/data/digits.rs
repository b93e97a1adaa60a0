//! The UCI 8×8 handwritten digits (1797 images, intensities 0..16) that `smartcore` ships.

use super::{DataError, Dataset, Matrix, split_rows};
use crate::spec::DataConfig;

pub(crate) const SIDE: usize = 8;
const MAX_INTENSITY: f32 = 16.0;

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let raw = smartcore::dataset::digits::load_dataset();
    if raw.num_features != SIDE * SIDE || raw.data.len() != raw.num_samples * SIDE * SIDE {
        return Err(DataError::new(
            "data.dataset",
            format!(
                "smartcore's digits have {} features, expected 64",
                raw.num_features
            ),
        ));
    }
    let values: Vec<f32> = raw
        .data
        .iter()
        .map(|v| (v / MAX_INTENSITY).clamp(0.0, 1.0))
        .collect();
    let all = Matrix::new(raw.num_samples, raw.num_features, values);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(super::ImageShape::grey(SIDE, SIDE)),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: Some(test.iter().map(|&i| raw.target[i] as u32).collect()),
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
