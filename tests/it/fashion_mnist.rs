//! Fashion-MNIST in its published layout (the four IDX files, gzip-compressed, as
//! zalandoresearch/fashion-mnist ships them), generated small: read back value for value with
//! its labels, trained on with a convolutional model, and malformed files refused naming the
//! file (issue 21).

use std::io::Write;
use std::path::Path;

use crate::common::{run_sweep, write};
use aevb::data::ImageShape;
use aevb::spec::{DataConfig, DatasetKind};

fn gzip(path: &Path, bytes: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// IDX3 images: magic 2051, n, rows, cols; pixel p of image i is (3i + p) mod 256.
fn images(n: u32, side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [2051, n, side, side] {
        out.extend(u32::to_be_bytes(v));
    }
    for i in 0..n as usize {
        out.extend((0..(side * side) as usize).map(|p| ((3 * i + p) % 256) as u8));
    }
    out
}

/// IDX1 labels: magic 2049, n; label i is (i · 7) mod 10.
fn labels(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [2049, n] {
        out.extend(u32::to_be_bytes(v));
    }
    out.extend((0..n as usize).map(|i| ((i * 7) % 10) as u8));
    out
}

fn fashion_dir(dir: &Path) {
    gzip(&dir.join("train-images-idx3-ubyte.gz"), &images(40, 28));
    gzip(&dir.join("train-labels-idx1-ubyte.gz"), &labels(40));
    gzip(&dir.join("t10k-images-idx3-ubyte.gz"), &images(12, 28));
    gzip(&dir.join("t10k-labels-idx1-ubyte.gz"), &labels(12));
}

#[test]
fn the_four_files_read_back_value_for_value_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    fashion_dir(dir.path());
    let config = DataConfig {
        dataset: DatasetKind::FashionMnist,
        path: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let data = aevb::data::load(&config).unwrap();
    assert_eq!((data.train.rows, data.train.cols), (40, 784));
    assert_eq!((data.test.rows, data.test.cols), (12, 784));
    assert_eq!(data.image_shape, Some(ImageShape::grey(28, 28)));
    assert_eq!(
        data.test_labels.as_deref(),
        Some(&[0, 7, 4, 1, 8, 5, 2, 9, 6, 3, 0, 7][..])
    );
    // Test image 5, pixel 30: (15 + 30) / 255.
    assert_eq!(data.test.values[5 * 784 + 30], 45.0 / 255.0);
    // Training image 39, pixel 1: (117 + 1) / 255.
    assert_eq!(data.train.values[39 * 784 + 1], 118.0 / 255.0);
}

const SPEC: &str = r#"
name = "fashion"
[data]
dataset = "fashion_mnist"
path = "idx"
[model]
latent_dim = 4
encoder = { conv = [4, 8], hidden = [16] }
decoder = { hidden = [16], conv = [8, 4] }
[train]
epochs = 1
batch_size = 20
[eval]
importance_samples = 5
"#;

#[test]
fn a_conv_sweep_trains_on_them_and_malformed_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    fashion_dir(&idx);
    let spec = write(dir.path(), "f.toml", SPEC);
    let out = run_sweep(&spec, &dir.path().join("results"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = crate::common::record(&dir.path().join("results"), "fashion");
    assert_eq!(rec["status"], "ok");
    assert_eq!(
        rec["backend"], "fused",
        "conv models train on the fused engine"
    );

    type Break = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "t10k-images-idx3-ubyte",
            Box::new(|d| std::fs::remove_file(d.join("t10k-images-idx3-ubyte.gz")).unwrap()),
            "missing",
        ),
        (
            "train-images-idx3-ubyte.gz",
            Box::new(|d| gzip(&d.join("train-images-idx3-ubyte.gz"), &images(3, 32))),
            "32x32",
        ),
        (
            "train-images-idx3-ubyte.gz",
            Box::new(|d| gzip(&d.join("train-images-idx3-ubyte.gz"), &labels(40))),
            "magic",
        ),
    ];
    for (file, break_it, expected) in cases {
        fashion_dir(&idx);
        break_it(&idx);
        let results = dir.path().join(format!("results-{expected}"));
        crate::common::assert_refused(&spec, &results, &[], file, expected);
    }
    // A conv decoder that cannot land on 28×28 is a spec error naming the key and shapes.
    fashion_dir(&idx);
    let results = dir.path().join("results-shape");
    let out = run_sweep(
        &spec,
        &results,
        &[
            "--set",
            "model.decoder.conv=[8, {channels = 4, kernel = 5}]",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("model.decoder.conv")
            && stderr.contains("1×28×28")
            && stderr.contains(" → "),
        "{stderr}"
    );
    assert!(!results.exists(), "nothing written for a shape error");
}
