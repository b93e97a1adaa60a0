//! MNIST and Fashion-MNIST in LeCun's IDX format, plain or gzip-compressed.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, Matrix};
use crate::spec::{DataConfig, DatasetKind};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;
pub(crate) const SIDE: usize = 28;
/// Where the data lives when neither the spec, `AEVB_DATA` nor `--set data.path` says.
pub const DEFAULT_DIR: &str = "data/mnist";

/// (file stem, sha256 of the published MNIST .gz file).
const FILES: [(&str, &str); 2] = [
    (
        "train-images-idx3-ubyte",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    (
        "t10k-images-idx3-ubyte",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
];

fn data_dir(config: &DataConfig) -> PathBuf {
    PathBuf::from(config.path.as_deref().unwrap_or(DEFAULT_DIR))
}

/// The file for `stem` in `dir`, gzip-compressed or not.
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

pub fn check_files(config: &DataConfig) -> Result<(), String> {
    let dir = data_dir(config);
    for (stem, sha) in FILES {
        if find(&dir, stem).is_none() {
            let checksum = if config.dataset == DatasetKind::Mnist {
                format!(" (MNIST's {stem}.gz has sha256 {sha})")
            } else {
                String::new()
            };
            return Err(format!(
                "missing {stem}.gz (or {stem}) in {}{checksum}; put the IDX files there, or point to them with AEVB_DATA=DIR or --set data.path=DIR",
                dir.display()
            ));
        }
    }
    Ok(())
}

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let dir = data_dir(config);
    if !dir.is_dir() {
        return Err(DataError::new(
            "data.path",
            format!(
                "{} is not a folder; expected the folder of the four IDX files (set it with AEVB_DATA=DIR or --set data.path=DIR)",
                dir.display()
            ),
        ));
    }
    check_files(config).map_err(|m| DataError::new("data.path", m))?;
    let read = |stem: &str| -> Result<Matrix, DataError> {
        let path = find(&dir, stem).ok_or_else(|| {
            DataError::new("data.path", format!("missing {stem} in {}", dir.display()))
        })?;
        read_images(&path).map_err(|e| DataError::new("data.path", format!("{e:#}")))
    };
    let train = read(FILES[0].0)?;
    let test = read(FILES[1].0)?;
    // Labels are optional (only the trained-model commands colour by them): a labels file
    // that is missing or does not match the images is left out.
    let test_labels = find(&dir, "t10k-labels-idx1-ubyte")
        .and_then(|p| read_labels(&p).ok())
        .filter(|l| l.len() == test.rows);
    Ok(Dataset {
        train,
        test,
        image_shape: Some(super::ImageShape::grey(SIDE, SIDE)),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels,
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}

/// Reads an IDX3 image file into rows of intensities in [0, 1].
pub fn read_images(path: &Path) -> anyhow::Result<Matrix> {
    let bytes = read_maybe_gzip(path)?;
    anyhow::ensure!(
        bytes.len() >= 16,
        "{}: {} bytes is too short for an IDX image header",
        path.display(),
        bytes.len()
    );
    let (magic, n, rows, cols) = (
        header_word(&bytes, 0),
        header_word(&bytes, 1),
        header_word(&bytes, 2),
        header_word(&bytes, 3),
    );
    anyhow::ensure!(
        magic == IMAGES_MAGIC,
        "{}: magic number {magic}, expected {IMAGES_MAGIC} (an IDX image file)",
        path.display()
    );
    let (n, rows, cols) = (n as usize, rows as usize, cols as usize);
    anyhow::ensure!(
        n > 0 && rows == SIDE && cols == SIDE,
        "{}: holds {n} images of {rows}x{cols}, expected images of {SIDE}x{SIDE}",
        path.display()
    );
    let pixels = &bytes[16..];
    anyhow::ensure!(
        Some(pixels.len()) == n.checked_mul(rows * cols),
        "{}: {} pixel bytes, expected {} (truncated or corrupt)",
        path.display(),
        pixels.len(),
        n * rows * cols
    );
    let values = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(Matrix::new(n, rows * cols, values))
}

/// The `i`-th big-endian u32 of an IDX header (the caller has checked the length).
fn header_word(bytes: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

/// Reads an IDX1 label file.
pub fn read_labels(path: &Path) -> anyhow::Result<Vec<u32>> {
    let bytes = read_maybe_gzip(path)?;
    anyhow::ensure!(
        bytes.len() >= 8 && header_word(&bytes, 0) == LABELS_MAGIC,
        "{}: not an IDX label file",
        path.display()
    );
    let n = header_word(&bytes, 1) as usize;
    anyhow::ensure!(bytes.len() == 8 + n, "{}: truncated", path.display());
    Ok(bytes[8..].iter().map(|&b| b as u32).collect())
}

fn read_maybe_gzip(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| anyhow::anyhow!("{}: not a valid gzip file: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
