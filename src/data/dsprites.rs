//! `dataset = "dsprites"`: DeepMind's dSprites file as published
//! (`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`: `imgs` uint8 [N, 64, 64],
//! `latents_classes` int64 [N, 6], `latents_values` float64 [N, 6]), read from `data.path`;
//! `data.sprites.count` images of it (0: all) drawn with `data.split_seed`. Its six factors
//! (color, shape, scale, orientation, pos_x, pos_y) travel with the data.

use super::npz::{self, Array};
use super::{DataError, Dataset, Factors, Matrix, split_rows};
use crate::spec::DataConfig;

pub const FACTOR_NAMES: [&str; 6] = ["color", "shape", "scale", "orientation", "pos_x", "pos_y"];

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let path = config.path.as_deref().ok_or_else(|| {
        DataError::new(
            "data.path",
            "dataset = \"dsprites\" reads dSprites' .npz file: set data.path to dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz (or use dataset = \"sprites\", generated)",
        )
    })?;
    let file = std::path::Path::new(path);
    let read = |name: &str| npz::read(file, name).map_err(|m| DataError::new("data.path", m));
    let (side, images) = match read("imgs")? {
        Array::U8 { shape, values } if shape.len() == 3 && shape[1] == shape[2] && shape[1] > 0 => {
            (shape[1], values)
        }
        other => {
            return Err(DataError::new(
                "data.path",
                format!(
                    "{path}: array `imgs` has shape {:?} (or is not uint8); expected uint8 [N, 64, 64] as dSprites publishes it",
                    other.shape()
                ),
            ));
        }
    };
    let rows = images.len() / (side * side);
    let factors = |name: &str| -> Result<Vec<f64>, DataError> {
        match read(name)? {
            Array::F64 { shape, values } if shape == [rows, FACTOR_NAMES.len()] => Ok(values),
            other => Err(DataError::new(
                "data.path",
                format!(
                    "{path}: array `{name}` has shape {:?}; expected [{rows}, 6] (one row per image: color, shape, scale, orientation, x, y)",
                    other.shape()
                ),
            )),
        }
    };
    let classes = factors("latents_classes")?;
    let values = factors("latents_values")?;
    let chosen = super::sprites::subset(rows, config.sprites.count, config.split_seed);
    let bytes = chosen.len() as f64 * (side * side) as f64 * 4.0;
    crate::resources::ensure_fits(bytes, "the dSprites images")
        .map_err(|m| DataError::new("data.sprites.count", m))?;
    let pixels: Vec<f32> = chosen
        .iter()
        .flat_map(|&i| {
            images[i * side * side..(i + 1) * side * side]
                .iter()
                .map(|&p| p as f32)
        })
        .collect();
    if let Some(p) = pixels.iter().find(|&&p| p > 1.0) {
        return Err(DataError::new(
            "data.path",
            format!("{path}: `imgs` holds the value {p}; expected binary images (0 or 1)"),
        ));
    }
    let all = Matrix::new(chosen.len(), side * side, pixels);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    let k = FACTOR_NAMES.len();
    let row = |v: &[f64], r: usize| v[chosen[r] * k..(chosen[r] + 1) * k].to_vec();
    let sizes = (0..k)
        .map(|j| {
            (0..rows)
                .map(|r| classes[r * k + j] as usize + 1)
                .max()
                .unwrap_or(1)
        })
        .collect();
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(super::ImageShape::grey(side, side)),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: Some(test.iter().map(|&r| row(&classes, r)[1] as u32).collect()),
        test_factors: Some(Factors {
            names: FACTOR_NAMES.iter().map(|n| n.to_string()).collect(),
            sizes,
            classes: test
                .iter()
                .flat_map(|&r| row(&classes, r).into_iter().map(|c| c as u32))
                .collect(),
            values: test
                .iter()
                .flat_map(|&r| row(&values, r).into_iter().map(|v| v as f32))
                .collect(),
        }),
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
