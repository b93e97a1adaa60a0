//! One training epoch of the canonical VAE (784-400-20, ReLU, Bernoulli, Adam, batch 128)
//! on MNIST-sized random binary data (60,000 × 784), per CPU backend.
//!
//! `cargo bench --bench epoch`; samples/s = 60,000 / the reported time.
//! `AEVB_BENCH_BACKENDS=fused,ndarray,flex,cuda` picks the backends (cuda needs `--features
//! cuda`); the fused engine runs on one thread here. Against PyTorch: benches/side_by_side.py.

use std::time::{Duration, Instant};

use aevb::data::{Dataset, Matrix};
use aevb::spec::{BackendKind, RunConfig};
use aevb::train::{self, Silent};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_binary(rows: usize, cols: usize, rng: &mut StdRng) -> Matrix {
    let values = (0..rows * cols)
        .map(|_| if rng.random::<f32>() < 0.13 { 1.0 } else { 0.0 })
        .collect();
    Matrix::new(rows, cols, values)
}

fn canonical_config() -> RunConfig {
    let mut c = RunConfig::default();
    c.model.latent_dim = 20;
    c.model.encoder.hidden = vec![400];
    c.model.decoder.hidden = vec![400];
    c.train.epochs = 1;
    c.train.batch_size = 128;
    c
}

fn epoch(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let data = Dataset {
        train: random_binary(60_000, 784, &mut rng),
        // The loop evaluates the test ELBO after the epoch; keep that part small.
        test: random_binary(1_000, 784, &mut rng),
        image_shape: Some(aevb::data::ImageShape::grey(28, 28)),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: None,
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    };
    let backends = std::env::var("AEVB_BENCH_BACKENDS").unwrap_or_else(|_| "ndarray,flex".into());
    let mut group = c.benchmark_group("epoch_784_400_20");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(60));
    for name in backends.split(',') {
        let kind = match name.trim() {
            "flex" => BackendKind::Flex,
            "fused" => BackendKind::Fused,
            "cuda" => BackendKind::Cuda,
            _ => BackendKind::Ndarray,
        };
        let device = match aevb::backend::device(kind, 0) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipping {name}: {e:#}");
                continue;
            }
        };
        let mut config = canonical_config();
        config.runtime.backend = kind;
        group.bench_function(name.trim(), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let out = train::train(&config, &data, &device, 1, &mut Silent, None)
                        .expect("trains");
                    assert!(out.diverged_at.is_none());
                }
                let elapsed = start.elapsed();
                eprintln!(
                    "{name}: {:.0} samples/s",
                    60_000.0 * iters as f64 / elapsed.as_secs_f64()
                );
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, epoch);
criterion_main!(benches);
