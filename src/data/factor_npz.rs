//! Images with known generative factors in an `.npz` file, of any shape and any number of
//! factors: `imgs` [N, H, W] or [N, H, W, C] (C = 1 or 3; uint8, binary 0/1 or 0–255, or
//! float64 in [0, 1]), `latents_classes` [N, F] (each factor's class, an integer) and
//! `latents_values` [N, F] (its value), the layout dSprites publishes and Shapes3D, MPI3D,
//! Cars3D and SmallNORB are commonly converted to. `dataset = "npz"` reads one (factor names
//! from `data.factor_names`, else `factor_0` …); `dataset = "dsprites"` is this reader with
//! dSprites' six names and its own checks.

use std::path::Path;

use super::npz::{self, Array};
use super::{DataError, Dataset, Factors, ImageShape, Matrix, split_rows};
use crate::spec::DataConfig;

/// An `.npz` of images and their factors, read but not yet converted (dSprites' 737,280
/// images would be 3 GB as f32: only the rows used are).
pub struct FactorImages {
    pub rows: usize,
    pub shape: ImageShape,
    /// The file's pixels: [N, H, W] or [N, H, W, C].
    pixels: Array,
    /// Pixel values are bytes 0–255 (scaled to [0, 1]), not 0/1 or floats.
    scale_bytes: bool,
    pub factors: usize,
    /// [N, F] each.
    pub classes: Vec<f64>,
    pub values: Vec<f64>,
}

fn error(message: String) -> DataError {
    DataError::new("data.path", message)
}

/// Reads `path`; `factors` is the count the caller needs, where it needs one, and `layout`
/// says what `imgs` should be when it is not.
pub fn read(path: &Path, factors: Option<usize>, layout: &str) -> Result<FactorImages, DataError> {
    let name = path.display();
    let read = |array: &str| npz::read(path, array).map_err(error);
    let pixels = read("imgs")?;
    let shape = match *pixels.shape() {
        [_, h, w] if h > 0 && w > 0 => ImageShape::grey(h, w),
        [_, h, w, c] if h > 0 && w > 0 && (c == 1 || c == 3) => ImageShape {
            channels: c,
            height: h,
            width: w,
        },
        ref other => {
            return Err(error(format!(
                "{name}: array `imgs` has shape {other:?}; expected {layout}"
            )));
        }
    };
    let rows = pixels.shape()[0];
    let scale_bytes = match &pixels {
        Array::U8 { values, .. } => values.iter().any(|&p| p > 1),
        Array::F64 { values, .. } => {
            if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(error(format!(
                    "{name}: `imgs` holds the value {v}; expected float images in [0, 1] (or uint8)"
                )));
            }
            false
        }
    };
    let table = |array: &str| -> Result<(usize, Vec<f64>), DataError> {
        match read(array)? {
            Array::F64 { shape, values }
                if shape.len() == 2 && shape[0] == rows && shape[1] > 0 =>
            {
                Ok((shape[1], values))
            }
            other => Err(error(format!(
                "{name}: array `{array}` has shape {:?}; expected [{rows}, F], one row of F factors per image",
                other.shape()
            ))),
        }
    };
    let (f, classes) = table("latents_classes")?;
    let (f_values, values) = table("latents_values")?;
    if f != f_values {
        return Err(error(format!(
            "{name}: `latents_classes` has {f} factors and `latents_values` {f_values}; expected the same"
        )));
    }
    if let Some(need) = factors.filter(|&n| n != f) {
        return Err(error(format!(
            "{name}: {f} factors per image; expected {need}"
        )));
    }
    if let Some(c) = classes.iter().find(|c| c.fract() != 0.0 || **c < 0.0) {
        return Err(error(format!(
            "{name}: `latents_classes` holds {c}; expected whole class numbers from 0"
        )));
    }
    Ok(FactorImages {
        rows,
        shape,
        pixels,
        scale_bytes,
        factors: f,
        classes,
        values,
    })
}

impl FactorImages {
    /// Rows `chosen` as channel-planar values in [0, 1].
    pub fn matrix(&self, chosen: &[usize]) -> Matrix {
        let len = self.shape.len();
        let mut out = Vec::with_capacity(chosen.len() * len);
        let scale = if self.scale_bytes { 1.0 / 255.0 } else { 1.0 };
        // The element type is settled once, not per pixel.
        match &self.pixels {
            Array::U8 { values, .. } => self.planar(values, chosen, |b| b as f32 * scale, &mut out),
            Array::F64 { values, .. } => self.planar(values, chosen, |v| v as f32, &mut out),
        }
        Matrix::new(chosen.len(), len, out)
    }

    /// Rows `chosen` of the file's `values`, each image turned from [H, W, C] (channel k of
    /// pixel p at p·C + k) into channel planes, each value through `to`.
    fn planar<T: Copy>(
        &self,
        values: &[T],
        chosen: &[usize],
        to: impl Fn(T) -> f32,
        out: &mut Vec<f32>,
    ) {
        let (c, plane, len) = (
            self.shape.channels,
            self.shape.height * self.shape.width,
            self.shape.len(),
        );
        for &r in chosen {
            let image = &values[r * len..(r + 1) * len];
            for k in 0..c {
                out.extend((0..plane).map(|p| to(image[p * c + k])));
            }
        }
    }

    /// Whether the pixels are 0/1 (binary images, as dSprites').
    pub fn binary(&self) -> bool {
        matches!(self.pixels, Array::U8 { .. }) && !self.scale_bytes
    }

    /// The factors of rows `chosen`, with `names`; each factor's class count from the whole
    /// file.
    pub fn factors_of(&self, chosen: &[usize], names: Vec<String>) -> Factors {
        let f = self.factors;
        let sizes = (0..f)
            .map(|j| {
                (0..self.rows)
                    .map(|r| self.classes[r * f + j] as usize + 1)
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        let pick = |v: &[f64]| -> Vec<f64> {
            chosen
                .iter()
                .flat_map(|&r| v[r * f..(r + 1) * f].iter().copied())
                .collect()
        };
        Factors {
            names,
            sizes,
            classes: pick(&self.classes).into_iter().map(|c| c as u32).collect(),
            values: pick(&self.values).into_iter().map(|v| v as f32).collect(),
        }
    }
}

/// What `dataset = "npz"` reads as `imgs`.
const NPZ_LAYOUT: &str = "[N, H, W] or [N, H, W, C] with C = 1 or 3 (uint8 or float64)";

/// `dataset = "npz"`: every image of the file, a seeded test split, the test examples'
/// factors (named by `data.factor_names`, else `factor_0` …).
pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let path = config.path.as_deref().ok_or_else(|| {
        error(
            "dataset = \"npz\" reads images and their factors from an .npz file (`imgs`, `latents_classes`, `latents_values`): set data.path to it"
                .into(),
        )
    })?;
    let file = read(Path::new(path), None, NPZ_LAYOUT)?;
    let names = match &config.factor_names {
        Some(names) if names.len() == file.factors => names.clone(),
        Some(names) => {
            return Err(DataError::new(
                "data.factor_names",
                format!(
                    "{} names for the {} factors of {path}; expected one per factor",
                    names.len(),
                    file.factors
                ),
            ));
        }
        None => (0..file.factors).map(|j| format!("factor_{j}")).collect(),
    };
    let bytes = file.rows as f64 * file.shape.len() as f64 * 4.0;
    crate::resources::ensure_fits(bytes, "the images")
        .map_err(|m| DataError::new("data.path", format!("{path}: {m}")))?;
    let every: Vec<usize> = (0..file.rows).collect();
    let all = file.matrix(&every);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(file.shape),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: None,
        test_factors: Some(file.factors_of(&test, names)),
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
