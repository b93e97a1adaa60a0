//! `dataset = "dsprites"`: DeepMind's dSprites file as published
//! (`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`: `imgs` uint8 [N, 64, 64],
//! `latents_classes` int64 [N, 6], `latents_values` float64 [N, 6]), read from `data.path`
//! by the factor-npz reader (`dataset = "npz"`) with dSprites' checks and names;
//! `data.sprites.count` images of it (0: all) drawn with `data.split_seed`. Its six factors
//! (color, shape, scale, orientation, pos_x, pos_y) travel with the data, and the shape is
//! the test examples' label.

use super::factor_npz;
use super::{DataError, Dataset, split_rows};
use crate::spec::DataConfig;

pub const FACTOR_NAMES: [&str; 6] = ["color", "shape", "scale", "orientation", "pos_x", "pos_y"];

/// What dSprites' `imgs` is.
const LAYOUT: &str = "uint8 [N, 64, 64] as dSprites publishes it";

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let path = config.path.as_deref().ok_or_else(|| {
        DataError::new(
            "data.path",
            "dataset = \"dsprites\" reads dSprites' .npz file: set data.path to dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz (or use dataset = \"sprites\", generated)",
        )
    })?;
    let file = factor_npz::read(std::path::Path::new(path), Some(FACTOR_NAMES.len()), LAYOUT)?;
    let s = file.shape;
    if s.channels != 1 || s.height != s.width {
        return Err(DataError::new(
            "data.path",
            format!(
                "{path}: `imgs` holds {}×{}×{} images; expected {LAYOUT}",
                s.channels, s.height, s.width
            ),
        ));
    }
    if !file.binary() {
        return Err(DataError::new(
            "data.path",
            format!("{path}: `imgs` holds values other than 0 and 1; expected binary images"),
        ));
    }
    let chosen = super::sprites::subset(file.rows, config.sprites.count, config.split_seed);
    let bytes = chosen.len() as f64 * s.len() as f64 * 4.0;
    crate::resources::ensure_fits(bytes, "the dSprites images")
        .map_err(|m| DataError::new("data.sprites.count", m))?;
    let all = file.matrix(&chosen);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    let test_rows: Vec<usize> = test.iter().map(|&r| chosen[r]).collect();
    let names = FACTOR_NAMES.iter().map(|n| n.to_string()).collect();
    let factors = file.factors_of(&test_rows, names);
    let shape_factor = 1;
    let labels = test_rows
        .iter()
        .map(|&r| file.classes[r * FACTOR_NAMES.len() + shape_factor] as u32)
        .collect();
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(s),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: Some(labels),
        test_factors: Some(factors),
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
