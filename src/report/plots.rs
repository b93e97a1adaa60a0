//! Report plots, each as PNG and SVG: the primary metric against each swept key with error
//! bars over seeds, the rate–distortion plane, and training curves per group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use polars::prelude::*;

use super::frame::{floats, texts};
use super::points::{RunPoint, err, extent, group_label, padded, points, pretty_value};

const SIZE: (u32, u32) = (900, 600);

fn register_font() {
    crate::sinks::font::register();
}

/// (x position, mean, standard deviation) of one point with an error bar.
/// (x, mean, half-width of its 95% interval).
type MeanCi = (f64, f64, f64);

/// The mean of a group's runs and the half-width of its 95% interval: Student t over the
/// seeds where there are two or more, else the one run's ±1.96 SE over test examples
/// (0 without one).
fn interval(values: &[(f64, Option<f64>)]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().map(|(m, _)| *m).collect();
    match super::stats::Interval::over(&v) {
        Some(i) => (i.mean, i.half_width()),
        None => (v[0], values[0].1.map_or(0.0, |se| 1.96 * se)),
    }
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Writes every plot into `dir`; returns the files written.
pub fn write_plots(
    runs: &DataFrame,
    epochs: Option<&DataFrame>,
    by: &[String],
    metric: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let pts = points(runs, by, metric);
    let mut written = Vec::new();
    for key in by {
        let stem = format!("{metric}_vs_{}", key.replace('.', "_"));
        written.extend(both(dir, &stem, &Figure::MetricVsKey(key), &pts, metric)?);
    }
    written.extend(both(
        dir,
        "rate_distortion",
        &Figure::RateDistortion,
        &pts,
        metric,
    )?);
    // Each disentanglement score some run has: against every swept key, and the
    // reconstruction–disentanglement plane (one point per run).
    let recorded = super::frame::metrics_of(runs);
    for dis in super::frame::DISENTANGLEMENT {
        if !recorded.contains(&dis) {
            continue;
        }
        let pts = points(runs, by, dis);
        // The report's own metric has its plots against the keys already (above).
        for key in by.iter().filter(|_| dis != metric) {
            let stem = format!("{dis}_vs_{}", key.replace('.', "_"));
            written.extend(both(dir, &stem, &Figure::MetricVsKey(key), &pts, dis)?);
        }
        let stem = format!("recon_vs_{dis}");
        written.extend(both(dir, &stem, &Figure::ReconVsScore, &pts, dis)?);
    }
    if let Some(epochs) = epochs {
        written.extend(both(
            dir,
            "training_curves",
            &Figure::Curves(epochs),
            &pts,
            metric,
        )?);
    }
    Ok(written)
}

enum Figure<'a> {
    MetricVsKey(&'a str),
    RateDistortion,
    /// A disentanglement score against reconstruction, one point per run.
    ReconVsScore,
    Curves(&'a DataFrame),
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
    pts: &[RunPoint],
    metric: &str,
) -> anyhow::Result<()> {
    match figure {
        Figure::MetricVsKey(key) => metric_vs_key(root, pts, key, metric),
        Figure::RateDistortion => super::planes::rate_distortion(root, pts),
        Figure::ReconVsScore => super::planes::recon_vs_score(root, pts, metric),
        Figure::Curves(epochs) => curves(root, pts, epochs),
    }
}

/// Draws one figure to `<stem>.png` and `<stem>.svg`, each drawn in memory and then written
/// atomically (a kill leaves the old figure or the new one, never half of one).
fn both(
    dir: &Path,
    stem: &str,
    figure: &Figure,
    pts: &[RunPoint],
    metric: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, figure, pts, metric)?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
    }
    let mut encoded = Vec::new();
    image::png::PngEncoder::new(&mut encoded)
        .encode(&rgb, SIZE.0, SIZE.1, image::ColorType::Rgb8)
        .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
    crate::sinks::results::write_atomic(&png, &encoded)?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&root, figure, pts, metric)?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{}: {e}", svg.display()))?;
    }
    crate::sinks::results::write_atomic(&svg, text.as_bytes())?;
    Ok(vec![png, svg])
}

/// A metric's axis label with its unit: nats per example for the bounds and their terms,
/// nats for the Gaussian total correlation, none for scores and counts.
fn metric_axis(metric: &str) -> String {
    match metric {
        "dis_gaussian_tc" => format!("{metric} (nats)"),
        m if m.starts_with("dis_") || m == "active_units" => m.to_string(),
        m => format!("{m} (nats per example)"),
    }
}

/// The swept key's values on a plot's x axis: numbers at their value (log₂ where they span
/// a factor of 8 or more), anything else at its rank.
struct KeyAxis<'a> {
    /// The distinct values, sorted as text.
    values: Vec<&'a String>,
    numeric: bool,
    log2: bool,
}

impl<'a> KeyAxis<'a> {
    fn new(pts: &'a [RunPoint], key: &str) -> Self {
        let mut values: Vec<&String> = pts.iter().map(|p| &p.keys[key]).collect();
        values.sort();
        values.dedup();
        let numeric: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
        let log2 = numeric.as_ref().is_some_and(|n| {
            let (lo, hi) = extent(n.iter().copied());
            lo > 0.0 && hi / lo >= 8.0
        });
        KeyAxis {
            values,
            numeric: numeric.is_some(),
            log2,
        }
    }

    fn position(&self, v: &String) -> f64 {
        match v.parse::<f64>() {
            Ok(x) if self.numeric => {
                if self.log2 {
                    x.log2()
                } else {
                    x
                }
            }
            _ => self.values.iter().position(|u| *u == v).unwrap_or(0) as f64,
        }
    }
}

/// One line per group of the other keys: the metric's mean and 95% half-width over seeds
/// at each value of `key` (at its `position`), in x order.
fn series_by_key(
    pts: &[RunPoint],
    key: &str,
    position: &dyn Fn(&String) -> f64,
) -> Vec<(String, Vec<MeanCi>)> {
    // series label -> x -> (value, within-run SE) over seeds
    type Values = Vec<(f64, Option<f64>)>;
    let mut series: BTreeMap<String, BTreeMap<String, Values>> = BTreeMap::new();
    for p in pts.iter().filter(|p| p.ok) {
        if let Some(m) = p.metric {
            series
                .entry(group_label(&p.keys, Some(key)))
                .or_default()
                .entry(p.keys[key].clone())
                .or_default()
                .push((m, p.se));
        }
    }
    series
        .into_iter()
        .map(|(label, by_x)| {
            let mut line: Vec<MeanCi> = by_x
                .iter()
                .map(|(x, vs)| {
                    let (m, half) = interval(vs);
                    (position(x), m, half)
                })
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            (label, line)
        })
        .collect()
}

/// Mean ± std of `metric` over seeds against one swept key; one series per value of the
/// other swept keys. Numeric keys spanning a wide range are on a log2 axis.
fn metric_vs_key<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
    key: &str,
    metric: &str,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let axis = KeyAxis::new(pts, key);
    let (values, log2) = (&axis.values, axis.log2);
    let position = |v: &String| axis.position(v);
    let stats = series_by_key(pts, key, &position);
    let all: Vec<&MeanCi> = stats.iter().flat_map(|(_, l)| l).collect();
    if all.is_empty() {
        return Ok(());
    }
    let (x_lo, x_hi) = extent(all.iter().map(|p| p.0));
    let (y_lo, y_hi) = extent(all.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
    // Ticks exactly at the swept values (plotters would pick round positions of its own,
    // which on a log axis over {1, 5, 50} are 2^0 and 2^5).
    let key_points: Vec<f64> = values.iter().map(|v| position(v)).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{metric} vs {key} (mean, 95% CI)"),
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(if log2 {
            format!("{key} (log scale)")
        } else {
            key.to_string()
        })
        .y_desc(metric_axis(metric))
        .x_labels(0)
        .disable_x_mesh()
        .draw()
        .map_err(err)?;
    // Each tick is a swept value, written as in the spec (20000, not 20000.0).
    let y_axis = padded(y_lo, y_hi).start;
    let tick_font = ("sans-serif", 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (x, v) in key_points.iter().zip(values) {
        let (px, py) = chart.backend_coord(&(*x, y_axis));
        root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))
            .map_err(err)?;
        root.draw(&Text::new(pretty_value(v), (px, py + 8), tick_font.clone()))
            .map_err(err)?;
    }
    for (i, (label, line)) in stats.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                line.iter().map(|&(x, m, s)| {
                    ErrorBar::new_vertical(x, m - s, m, m + s, color.filled(), 10)
                }),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    let note = ("sans-serif", 13).into_font().color(&BLACK.mix(0.7));
    root.draw(&Text::new(
        "bars: 95% CI, Student t over seeds; a single seed: ±1.96 SE over test examples",
        (90, 42),
        note,
    ))
    .map_err(err)?;
    Ok(())
}

/// Test ELBO against training examples seen, averaged over the seeds of each group.
fn curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
    epochs: &DataFrame,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let group_of: BTreeMap<&str, String> = pts
        .iter()
        .filter(|p| p.ok)
        .map(|p| (p.run_id.as_str(), group_label(&p.keys, None)))
        .collect();
    // group -> examples seen -> test ELBO of each run
    let mut lines: BTreeMap<String, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    let ids = texts(epochs, "run_id");
    let (seen, elbo) = (floats(epochs, "examples_seen"), floats(epochs, "test_elbo"));
    for i in 0..epochs.height() {
        let (Some(group), Some(seen), Some(elbo)) =
            (group_of.get(ids[i].as_str()), seen[i], elbo[i])
        else {
            continue;
        };
        lines
            .entry(group.clone())
            .or_default()
            .entry(seen as i64)
            .or_default()
            .push(elbo);
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = lines
        .into_iter()
        .map(|(g, by_x)| {
            let pts = by_x
                .into_iter()
                .map(|(x, v)| (x as f64, mean_std(&v).0))
                .collect();
            (g, pts)
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let (_, x_hi) = extent(all.iter().map(|p| p.0));
    let (y_lo, y_hi) = extent(all.iter().map(|p| p.1));
    // A legend of dozens of configurations (a search) would cover the curves: above
    // MAX_LEGEND the caption says how many there are instead.
    const MAX_LEGEND: usize = 12;
    let caption = if series.len() > MAX_LEGEND {
        format!(
            "Test ELBO during training (mean over seeds; {} configurations)",
            series.len()
        )
    } else {
        "Test ELBO during training (mean over seeds)".to_string()
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_hi * 1.02, padded(y_lo, y_hi))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("training examples seen")
        .y_desc("test ELBO (nats per example)")
        .draw()
        .map_err(err)?;
    for (i, (label, line)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let drawn = chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
            .map_err(err)?;
        if series.len() <= MAX_LEGEND {
            drawn
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        // Each curve's last point marked, so that a run stopped after its first evaluation
        // (successive halving's first rung) shows, and where every curve ends does too.
        if let Some(&end) = line.last() {
            chart
                .draw_series(std::iter::once(Circle::new(end, 3, color.filled())))
                .map_err(err)?;
        }
    }
    if series.len() > MAX_LEGEND {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The test set's posterior means on two latent axes, one colour per class label (grey
/// without labels): a PNG, drawn in memory so that it can be written atomically.
pub fn latent_scatter_png(
    points: &[(f64, f64)],
    labels: Option<&[u32]>,
    axes: (&str, &str),
    title: &str,
) -> anyhow::Result<Vec<u8>> {
    register_font();
    let (w, h) = (800u32, 760u32);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x_lo, x_hi) = extent(points.iter().map(|p| p.0));
        let (y_lo, y_hi) = extent(points.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .draw()
            .map_err(err)?;
        let mut classes: Vec<u32> = labels.map(|l| l.to_vec()).unwrap_or_default();
        classes.sort_unstable();
        classes.dedup();
        if classes.is_empty() {
            let grey = RGBColor(90, 90, 90).mix(0.5);
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, grey.filled())))
                .map_err(err)?;
        } else {
            let labels = labels.unwrap_or_default();
            for (i, class) in classes.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba().mix(0.6);
                let mine = points
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| *l == class)
                    .map(|(&p, _)| Circle::new(p, 2, color.filled()));
                let legend = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(mine)
                    .map_err(err)?
                    .label(class.to_string())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, legend.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let mut png = Vec::new();
    image::png::PngEncoder::new(&mut png)
        .encode(&rgb, w, h, image::ColorType::Rgb8)
        .map_err(err)?;
    Ok(png)
}
