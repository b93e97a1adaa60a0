//! Prints the tables of REPRODUCTIONS.md from the results of the reproduction sweeps.
//!
//! ```sh
//! bash benches/reproductions.sh          # runs the sweeps, then this
//! cargo run --release --example reproductions [RESULTS_DIR]
//! ```

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// (experiment, setup title, run label -> the paper's number and what it measures).
struct Setup {
    experiment: &'static str,
    title: &'static str,
    metric: &'static str,
    /// Papers report losses and NLLs (positive): negate our log-likelihoods to match.
    negate: bool,
    paper: &'static [(&'static str, f64)],
}

const SETUPS: [Setup; 3] = [
    Setup {
        experiment: "repro_pytorch_example",
        title: "PyTorch's VAE example: test loss (−ELBO, nats) after 10 epochs",
        metric: "test_elbo",
        negate: true,
        paper: &[("run", 105.6)],
    },
    Setup {
        experiment: "repro_aevb_mnist",
        title: "Kingma & Welling 2013, Figure 2: test lower bound (nats) against latent size",
        metric: "test_elbo",
        negate: false,
        // The figure's curves end between about −125 and −100 nats at 1e8 examples; it gives
        // no table, so there is no per-run number to subtract.
        paper: &[],
    },
    Setup {
        experiment: "repro_iwae_mnist",
        title: "Burda et al. 2015, Table 1 (one stochastic layer): test NLL (−log p(x), K = 5000)",
        metric: "test_log_px",
        negate: true,
        paper: &[
            ("iwae_k=1,kind=elbo,mc_samples=1", 86.76),
            ("iwae_k=1,kind=elbo,mc_samples=5", 86.47),
            ("iwae_k=1,kind=elbo,mc_samples=50", 86.35),
            ("iwae_k=5,kind=iwae,mc_samples=1", 85.54),
            ("iwae_k=50,kind=iwae,mc_samples=1", 84.78),
        ],
    },
];

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "results".into()));
    println!("machine: {}; commit {}\n", machine(), commit());
    for setup in &SETUPS {
        let path = root.join(setup.experiment).join("runs.parquet");
        println!("### {}\n", setup.title);
        if !path.is_file() {
            println!("(not run: no {})\n", path.display());
            continue;
        }
        table(&path, setup)?;
    }
    Ok(())
}

fn table(path: &Path, setup: &Setup) -> anyhow::Result<()> {
    let df = ParquetReader::new(std::fs::File::open(path)?).finish()?;
    let text = |name: &str, i: usize| -> String {
        match df.column(name).and_then(|c| c.get(i)) {
            Ok(v @ (AnyValue::String(_) | AnyValue::StringOwned(_))) => v.str_value().to_string(),
            Ok(v) => v.to_string(),
            Err(_) => "-".into(),
        }
    };
    let num = |name: &str, i: usize| -> Option<f64> {
        let c = df.column(name).ok()?.cast(&DataType::Float64).ok()?;
        c.f64().ok()?.get(i)
    };
    println!(
        "| run | paper | ours | gap | train ELBO | test ELBO | epochs | examples seen | wall time | status |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    // Natural order of labels: latent_dim=3 before latent_dim=10.
    let mut rows: Vec<usize> = (0..df.height()).collect();
    rows.sort_by_key(|&i| natural_key(&text("label", i)));
    for i in rows {
        let label = text("label", i);
        let sign = if setup.negate { -1.0 } else { 1.0 };
        let ours = num(setup.metric, i).map(|v| sign * v);
        let paper = setup
            .paper
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| *v);
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let gap = match (ours, paper) {
            (Some(o), Some(p)) => format!("{:+.2}", o - p),
            _ => "-".into(),
        };
        println!(
            "| {label} | {} | {} | {gap} | {} | {} | {} | {} | {:.0} s | {} |",
            fmt(paper),
            fmt(ours),
            fmt(num("train_elbo", i)),
            fmt(num("test_elbo", i)),
            text("epochs_done", i),
            text("examples_seen", i),
            num("wall_seconds", i).unwrap_or(0.0),
            text("status", i),
        );
    }
    println!();
    Ok(())
}

/// Digit runs compare as numbers: "latent_dim=3" < "latent_dim=10".
fn natural_key(label: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in label.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((std::mem::take(&mut text), digits.parse().unwrap_or(0)));
                digits.clear();
            }
            text.push(c);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
