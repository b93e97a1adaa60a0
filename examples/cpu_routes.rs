//! The canonical VAE (PyTorch's example: 784-400-20 ReLU, Bernoulli, Adam, batch 128) on
//! MNIST, trained for a few epochs on one CPU route, printing each epoch's training-pass
//! seconds: the engine-strategy measurement of issue 19.
//!
//! ```sh
//! cargo run --release --example cpu_routes -- fused 2 DATA_DIR          # the fused engine, 2 threads
//! cargo run --release --example cpu_routes -- flex 1 DATA_DIR           # burn-flex (autodiff), as built
//! cargo run --release --features bench-flex-threads --example cpu_routes -- flex 2 DATA_DIR
//! scripts/prepare-cuda.sh && cargo run --release --features bench-cubecl-cpu --example cpu_routes -- cubecl-cpu 2 DATA_DIR
//! ```
//! Optional 4th argument: epochs (default 3); 5th: `iwae` for Burda's k = 50 workload on the
//! first 6,000 training images, or `conv64` / `conv32` for the Burgess et al. conv β-VAE
//! (experiments/sprites_burgess64.toml) on 2,000 generated 64×64 or 5,000 32×32 sprites, whose
//! times are printed per 1,000 training examples (as `pytorch_conv_vae.py` reports them).

use aevb::spec::{BackendKind, RunConfig};
use aevb::train::{Silent, train};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let route = args.get(1).map(String::as_str).unwrap_or("fused");
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(1);
    let data_dir = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "../shared/data/mnist".into());
    let epochs: usize = args.get(4).and_then(|t| t.parse().ok()).unwrap_or(3);
    let workload = args.get(5).map(String::as_str).unwrap_or("canonical");
    // Training examples of a conv workload's epoch.
    let conv_examples = |side: usize| if side == 64 { 2000 } else { 5000 };

    // The shipped specs of the workloads, as `runner` and benches/side_by_side.py run them.
    let (spec, mut sets) = match workload {
        "iwae" => (
            "experiments/repro/iwae_mnist_full.toml",
            vec![
                "data.train_limit=6000".to_string(),
                "objective.kind=\"iwae\"".into(),
                "objective.iwae_k=50".into(),
            ],
        ),
        "conv64" | "conv32" => {
            let side = if workload == "conv64" { 64 } else { 32 };
            let (enc, dec) = if side == 64 {
                ("[32, 32, 64, 64]", "[64, 64, 32, 32]")
            } else {
                ("[32, 64, 64]", "[64, 64, 32]")
            };
            let n = conv_examples(side);
            (
                "experiments/sprites_burgess64.toml",
                vec![
                    format!("data.sprites.resolution={side}"),
                    format!("data.sprites.count={}", n + 100),
                    format!("data.test_fraction={}", 100.0 / (n + 100) as f64),
                    format!("model.encoder.conv={enc}"),
                    format!("model.decoder.conv={dec}"),
                    "objective.beta=4.0".into(),
                ],
            )
        }
        _ => ("experiments/repro/pytorch_example.toml", Vec::new()),
    };
    let iwae = workload == "iwae";
    sets.extend([
        format!("data.path={data_dir}"),
        format!("train.epochs={epochs}"),
        "data.test_limit=100".into(),
        "train.seed=1".into(),
        "eval.importance_samples=1".into(),
    ]);
    let spec = aevb::spec::load(std::path::Path::new(spec), &sets)?;
    let mut c: RunConfig = spec.run_config();
    let data = aevb::data::load(&c.data)?;
    let (device, label) = match route {
        "fused" => {
            c.runtime.backend = BackendKind::Fused;
            (aevb::backend::device(BackendKind::Flex, 0)?, "fused")
        }
        "flex" => {
            c.runtime.backend = BackendKind::Flex;
            (aevb::backend::device(BackendKind::Flex, 0)?, "flex")
        }
        "ndarray" => {
            c.runtime.backend = BackendKind::Ndarray;
            (aevb::backend::device(BackendKind::Ndarray, 0)?, "ndarray")
        }
        #[cfg(feature = "bench-cubecl-cpu")]
        "cubecl-cpu" => {
            // burn's autodiff on CubeCL's CPU runtime (JIT through LLVM, with fusion).
            c.runtime.backend = BackendKind::Flex;
            (burn::tensor::Device::cpu(), "cubecl-cpu")
        }
        other => anyhow::bail!("unknown route {other} (fused, flex, ndarray, cubecl-cpu)"),
    };
    // Pools that size themselves from the environment (rayon's global pool) get `threads`.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    let out = train(&c, &data, &device, threads, &mut Silent, None)?;
    let per = match workload {
        "conv64" => conv_examples(64) as f64 / 1000.0,
        "conv32" => conv_examples(32) as f64 / 1000.0,
        _ => 1.0,
    };
    let seconds: Vec<String> = out
        .epochs
        .iter()
        .map(|e| format!("{:.3}", e.train_pass_seconds / per))
        .collect();
    let workload = if iwae { "iwae-k50" } else { workload };
    println!(
        "{workload} route={label} threads={threads} engine={} train_pass_seconds=[{}] test_elbo={:.4}",
        out.engine,
        seconds.join(", "),
        out.epochs
            .last()
            .and_then(|e| e.test_elbo)
            .unwrap_or(f64::NAN)
    );
    Ok(())
}
