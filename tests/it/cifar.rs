//! CIFAR-10's binary batches in their published layout, generated small: read back value
//! for value, trained on, and malformed files refused naming the file (issue 21).

use std::path::Path;

use crate::common::{run_sweep, write};
use aevb::spec::{DataConfig, DatasetKind};

/// Record r of a batch: label r mod 10, pixel p of channel c = (r + 7c + p) mod 256.
fn batch(path: &Path, records: usize, label_of: impl Fn(usize) -> u8) {
    let mut bytes = Vec::new();
    for r in 0..records {
        bytes.push(label_of(r));
        for c in 0..3 {
            bytes.extend((0..1024).map(|p| ((r + 7 * c + p) % 256) as u8));
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn cifar_dir(dir: &Path) {
    for i in 1..=5 {
        batch(&dir.join(format!("data_batch_{i}.bin")), 8, |r| {
            (r % 10) as u8
        });
    }
    batch(&dir.join("test_batch.bin"), 6, |r| ((r * 3) % 10) as u8);
}

#[test]
fn batches_read_back_value_for_value_in_channel_order() {
    let dir = tempfile::tempdir().unwrap();
    cifar_dir(dir.path());
    let config = DataConfig {
        dataset: DatasetKind::Cifar10,
        path: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let data = aevb::data::load(&config).unwrap();
    assert_eq!((data.train.rows, data.train.cols), (40, 3072));
    assert_eq!((data.test.rows, data.test.cols), (6, 3072));
    assert_eq!(data.test_labels.as_deref(), Some(&[0, 3, 6, 9, 2, 5][..]));
    // Test record 2, green plane (c = 1), pixel 5: (2 + 7 + 5) / 255.
    assert_eq!(data.test.values[2 * 3072 + 1024 + 5], 14.0 / 255.0);
    // Training records follow the files in order: record 8 is batch 2's record 0.
    assert_eq!(data.train.values[8 * 3072], 0.0);
    assert_eq!(data.train.values[9 * 3072 + 2048], 15.0 / 255.0);
}

const SPEC: &str = r#"
name = "cifar"
[data]
dataset = "cifar10"
path = "batches"
[model]
latent_dim = 4
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 1
batch_size = 20
[eval]
importance_samples = 5
"#;

#[test]
fn a_sweep_trains_on_them_and_malformed_batches_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let batches = dir.path().join("batches");
    std::fs::create_dir(&batches).unwrap();
    cifar_dir(&batches);
    let spec = write(dir.path(), "c.toml", SPEC);
    let out = run_sweep(&spec, &dir.path().join("results"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    type Break = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "test_batch.bin",
            Box::new(|d| std::fs::remove_file(d.join("test_batch.bin")).unwrap()),
            "test_batch.bin",
        ),
        (
            "data_batch_3.bin",
            Box::new(|d| std::fs::write(d.join("data_batch_3.bin"), vec![0u8; 3000]).unwrap()),
            "not a whole number of 3073-byte records",
        ),
        (
            "data_batch_1.bin",
            Box::new(|d| batch(&d.join("data_batch_1.bin"), 2, |_| 12)),
            "label 12",
        ),
    ];
    for (file, break_it, expected) in cases {
        cifar_dir(&batches);
        break_it(&batches);
        let results = dir.path().join(format!("results-{file}"));
        crate::common::assert_refused(&spec, &results, &[], file, expected);
    }
}
