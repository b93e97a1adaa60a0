//! Kingma & Welling 2013, Figure 2 (MNIST) from our runs: the lower bound on the training and
//! test sets against training examples seen, on the paper's axis (10⁵…10⁸, log scale), one
//! colour per latent size. Reads the `epochs.parquet` of `experiments/repro/aevb_mnist.toml`
//! or `aevb_mnist_long.toml` results (one or more folders, curves joined by latent size).
//!
//! `cargo run --release --example aevb_figure2 -- OUT.png RESULTS_DIR...`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use polars::prelude::*;

/// (examples seen, train ELBO, test ELBO) per epoch, by latent size.
type Curves = BTreeMap<i64, Vec<(f64, f64, Option<f64>)>>;

fn read(dir: &Path, curves: &mut Curves) -> anyhow::Result<()> {
    let path = dir.join("epochs.parquet");
    let epochs = ParquetReader::new(std::fs::File::open(&path)?).finish()?;
    let column = |name: &str| -> anyhow::Result<Vec<Option<f64>>> {
        let c = epochs.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.iter().collect())
    };
    let latent = column("model.latent_dim")?;
    let (seen, train, test) = (
        column("examples_seen")?,
        column("train_elbo")?,
        column("test_elbo")?,
    );
    for i in 0..epochs.height() {
        if let (Some(z), Some(x), Some(train)) = (latent[i], seen[i], train[i]) {
            curves
                .entry(z as i64)
                .or_default()
                .push((x, train, test[i]));
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(
        args.len() >= 2,
        "usage: aevb_figure2 OUT.png RESULTS_DIR... (results/repro_aevb_mnist_long, ...)"
    );
    let mut curves = Curves::new();
    for dir in &args[1..] {
        read(dir, &mut curves)?;
    }
    for points in curves.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        // The same examples-seen point from two folders (a shorter run of the same model)
        // is one point: keep the longer run's.
        points.dedup_by(|a, b| a.0 == b.0);
    }
    // The paper's x-axis; y from the curves (to the next 10 nats), so that none is clipped.
    let values = curves
        .values()
        .flatten()
        .filter(|p| p.0 >= 1e5)
        .flat_map(|p| [Some(p.1), p.2])
        .flatten();
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    anyhow::ensure!(lo.is_finite(), "no epochs past 10^5 examples to draw");
    let (lo, hi) = ((lo / 10.0).floor() * 10.0, (hi / 10.0).ceil() * 10.0);
    aevb::sinks::font::register();
    let root = BitMapBackend::new(&args[0], (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "AEVB on MNIST (Kingma & Welling 2013, Figure 2 axes)",
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1e5..1e8).log_scale(), lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("# training samples evaluated")
        .y_desc("lower bound L (nats per example)")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .draw()?;
    for (i, (latent, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(format!("N_z = {latent}, train"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        let dashed = points.iter().filter_map(|p| Some((p.0, p.2?)));
        chart
            .draw_series(DashedLineSeries::new(dashed, 6, 4, color.stroke_width(2)))?
            .label(format!("N_z = {latent}, test"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    println!("wrote {}", args[0].display());
    Ok(())
}
