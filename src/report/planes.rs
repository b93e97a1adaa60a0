//! Scatter planes of one point per run, coloured by group: rate against distortion, and
//! reconstruction against a disentanglement score, so the trade-off a sweep buys shows at a
//! glance.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{RunPoint, err, extent, group_label, padded};

/// How one plane reads a run and labels its axes.
struct Plane<'a> {
    caption: String,
    x_desc: &'a str,
    y_desc: &'a str,
    /// (x, y) of an ok run, where it has both.
    xy: &'a dyn Fn(&RunPoint) -> Option<(f64, f64)>,
    /// Whether the axis starts at 0 at the latest (a rate, a score).
    x_from_zero: bool,
    y_from_zero: bool,
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
    plane: &Plane<'_>,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for p in pts.iter().filter(|p| p.ok) {
        if let Some(xy) = (plane.xy)(p) {
            groups
                .entry(group_label(&p.keys, None))
                .or_default()
                .push(xy);
        }
    }
    let all: Vec<(f64, f64)> = groups.values().flatten().copied().collect();
    if all.is_empty() {
        return Ok(());
    }
    let (mut x_lo, x_hi) = extent(all.iter().map(|p| p.0));
    let (mut y_lo, y_hi) = extent(all.iter().map(|p| p.1));
    if plane.x_from_zero {
        x_lo = x_lo.min(0.0);
    }
    if plane.y_from_zero {
        y_lo = y_lo.min(0.0);
    }
    let mut chart = ChartBuilder::on(root)
        .caption(&plane.caption, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(plane.x_desc)
        .y_desc(plane.y_desc)
        .draw()
        .map_err(err)?;
    for (i, (label, points)) in groups.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Rate (KL) against distortion (−E_q log p(x|z)), one point per ok run.
pub(super) fn rate_distortion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
) -> anyhow::Result<()> {
    let xy = |p: &RunPoint| Some((p.kl?, -p.recon?));
    let plane = Plane {
        caption: "Rate–distortion plane (one point per run)".into(),
        x_desc: "rate: KL(q(z|x) || p(z)) (nats per example)",
        y_desc: "distortion: −E_q log p(x|z) (nats per example)",
        xy: &xy,
        x_from_zero: true,
        y_from_zero: false,
    };
    draw(root, pts, &plane)
}

/// A disentanglement score against E_q[log p(x|z)], one point per ok run.
pub(super) fn recon_vs_score<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
    score: &str,
) -> anyhow::Result<()> {
    let xy = |p: &RunPoint| Some((p.recon?, p.metric?));
    let plane = Plane {
        caption: format!("Reconstruction against {score} (one point per run)"),
        x_desc: "reconstruction: E_q log p(x|z) (nats per example)",
        y_desc: score,
        xy: &xy,
        x_from_zero: false,
        y_from_zero: true,
    };
    draw(root, pts, &plane)
}
