//! `dataset = "image_folder"`: your own images. Every PNG and JPEG file under `data.path`
//! (searched recursively, in sorted path order) is decoded once, resized so that its shorter
//! side is `data.image_size` and centre-cropped to a square of that side (what CelebA's
//! 64×64 crops and most papers' preprocessing do), converted to `data.channels` (1: grey,
//! 3: RGB) and scaled to [0, 1], channel-planar like the other image datasets. Where every
//! file sits in a subfolder of `data.path`, the subfolder is its class: the test examples
//! get labels (the latent scatter and `encode` colour by them), classes numbered in sorted
//! order. The test split is a seeded draw (`data.test_fraction`, `data.split_seed`).
//!
//! A file that cannot be decoded is refused, naming it: a dataset that silently shrinks
//! would change a study's numbers without a word. The decoded pixels are cached (in
//! `$AEVB_CACHE_DIR`, else `$XDG_CACHE_HOME/aevb`, else `~/.cache/aevb`), keyed by every
//! file's path, size and modification time and the size and channels asked for; a cache
//! that cannot be written is skipped.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use sha2::{Digest, Sha256};

use super::{DataError, Dataset, ImageShape, Matrix, split_rows};
use crate::spec::DataConfig;

/// `data.image_size` when the spec gives none.
pub const DEFAULT_SIZE: usize = 64;
/// `data.channels` when the spec gives none.
pub const DEFAULT_CHANNELS: usize = 3;

/// The image shape the config asks for.
pub fn shape(config: &DataConfig) -> ImageShape {
    let side = config.image_size.unwrap_or(DEFAULT_SIZE);
    ImageShape {
        channels: config.channels.unwrap_or(DEFAULT_CHANNELS),
        height: side,
        width: side,
    }
}

fn error(message: String) -> DataError {
    DataError::new("data.path", message)
}

/// The image files under `root`, sorted, and each one's class (its top subfolder), where
/// every file has one.
fn find(root: &Path) -> Result<(Vec<PathBuf>, Option<Vec<String>>), DataError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_image(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    if !root.is_dir() {
        return Err(error(format!(
            "{}: not a folder; dataset = \"image_folder\" reads the PNG and JPEG files in the folder at data.path",
            root.display()
        )));
    }
    let mut files = Vec::new();
    walk(root, &mut files).map_err(|e| error(format!("{}: {e}", root.display())))?;
    files.sort();
    if files.len() < 2 {
        return Err(error(format!(
            "{}: {} PNG or JPEG files found (searched recursively); expected at least 2",
            root.display(),
            files.len()
        )));
    }
    let class_of = |f: &PathBuf| -> Option<String> {
        let rel = f.strip_prefix(root).ok()?;
        let mut parts = rel.components();
        let first = parts.next()?;
        parts
            .next()
            .map(|_| first.as_os_str().to_string_lossy().into_owned())
    };
    let classes: Option<Vec<String>> = files.iter().map(class_of).collect();
    Ok((files, classes))
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// One file as `shape`: resized to fill, centre-cropped, channel-planar values in [0, 1].
fn decode(path: &Path, shape: ImageShape, out: &mut Vec<f32>) -> Result<(), DataError> {
    let image = image::open(path).map_err(|e| {
        error(format!(
            "{}: cannot be read as an image ({e}); remove or replace it",
            path.display()
        ))
    })?;
    let (w, h) = (shape.width as u32, shape.height as u32);
    let square = image.resize_to_fill(w, h, FilterType::Triangle);
    let plane = shape.height * shape.width;
    if shape.channels == 1 {
        out.extend(square.to_luma8().as_raw().iter().map(|&b| b as f32 / 255.0));
    } else {
        let rgb = square.to_rgb8();
        let raw = rgb.as_raw();
        for c in 0..3 {
            out.extend((0..plane).map(|p| raw[p * 3 + c] as f32 / 255.0));
        }
    }
    Ok(())
}

/// The cache file for these files at this shape.
fn cache_path(files: &[PathBuf], shape: ImageShape) -> Option<PathBuf> {
    let dir = std::env::var_os("AEVB_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("aevb")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/aevb")))?;
    let mut hash = Sha256::new();
    hash.update(format!(
        "{}x{}x{}\n",
        shape.channels, shape.height, shape.width
    ));
    for f in files {
        let meta = std::fs::metadata(f).ok()?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hash.update(format!("{}\t{}\t{modified}\n", f.display(), meta.len()));
    }
    let key: String = hash
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(dir.join("image_folder").join(format!("{key}.f32")))
}

/// Every file's pixels, from the cache where it holds them, else decoded (and cached).
fn pixels(files: &[PathBuf], shape: ImageShape) -> Result<Vec<f32>, DataError> {
    let len = files.len() * shape.len();
    let cache = cache_path(files, shape);
    if let Some(bytes) = cache.as_ref().and_then(|p| std::fs::read(p).ok())
        && bytes.len() == len * 4
    {
        return Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    let mut values = Vec::with_capacity(len);
    for f in files {
        decode(f, shape, &mut values)?;
    }
    if let Some(path) = cache {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        // Written aside and renamed: a reader finds the whole file or none.
        let aside = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&aside, &bytes))
            .and_then(|_| std::fs::rename(&aside, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&aside);
        }
    }
    Ok(values)
}

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let root = PathBuf::from(config.path.as_deref().ok_or_else(|| {
        error(
            "dataset = \"image_folder\" reads your own images: set data.path to the folder that holds them"
                .into(),
        )
    })?);
    let (files, classes) = find(&root)?;
    let shape = shape(config);
    let all = Matrix::new(files.len(), shape.len(), pixels(&files, shape)?);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    let labels = classes.map(|classes| {
        let mut names = classes.clone();
        names.sort();
        names.dedup();
        let index = |c: &String| names.binary_search(c).unwrap_or(0) as u32;
        test.iter().map(|&i| index(&classes[i])).collect()
    });
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(shape),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: labels,
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}
