//! Scatter planes of one point per run, coloured by group: rate against distortion, and
//! reconstruction against a disentanglement score, so the trade-off a sweep buys shows at a
//! glance. Above [`MAX_POINTS`] runs (a study of thousands) every point would hide the next:
//! each group's mean is drawn with its 95% intervals on both axes, over an even thinning of
//! the runs drawn small and translucent, and the caption says so.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::points::{RunPoint, err, extent, group_label, padded};
use super::stats::Interval;

/// The most runs a plane draws one by one.
pub(super) const MAX_POINTS: usize = 1_000;

/// Every `step`-th point of each group (in run order), so that about `MAX_POINTS` are drawn
/// in all and every group keeps its share; `step` 1 draws all.
fn thinning_step(total: usize) -> usize {
    total.div_ceil(MAX_POINTS).max(1)
}

/// A group's mean with its 95% interval on each axis (None below two runs).
fn mean_cross(points: &[(f64, f64)]) -> Option<(Interval, Interval)> {
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    Some((Interval::over(&xs)?, Interval::over(&ys)?))
}

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
    let (x_range, y_range) = (padded(x_lo, x_hi), padded(y_lo, y_hi));
    let corner = emptiest_corner(&all, &x_range, &y_range);
    let step = thinning_step(all.len());
    let caption = if step > 1 {
        format!(
            "{}: {} runs, 1 in {step} drawn; crosses: group means, 95% CI",
            plane.caption,
            all.len()
        )
    } else {
        format!("{} (one point per run)", plane.caption)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(&caption, ("sans-serif", if step > 1 { 18 } else { 24 }))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(plane.x_desc)
        .y_desc(plane.y_desc)
        .draw()
        .map_err(err)?;
    for (i, (label, points)) in groups.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let (radius, style) = if step > 1 {
            (2, color.mix(0.25).filled())
        } else {
            (5, color.filled())
        };
        chart
            .draw_series(
                points
                    .iter()
                    .step_by(step)
                    .map(|&p| Circle::new(p, radius, style)),
            )
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        if step > 1
            && let Some((x, y)) = mean_cross(points)
        {
            let bold = color.stroke_width(3);
            chart
                .draw_series([
                    PathElement::new(vec![(x.lo, y.mean), (x.hi, y.mean)], bold),
                    PathElement::new(vec![(x.mean, y.lo), (x.mean, y.hi)], bold),
                ])
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x.mean, y.mean),
                    6,
                    color.filled(),
                )))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The corner of the plot with the fewest points in its outer 40% × 40% (the legend's
/// box), so that the legend hides as few runs as it can; upper right on a tie.
fn emptiest_corner(
    points: &[(f64, f64)],
    x: &std::ops::Range<f64>,
    y: &std::ops::Range<f64>,
) -> SeriesLabelPosition {
    let share = |v: f64, r: &std::ops::Range<f64>| (v - r.start) / (r.end - r.start).max(1e-12);
    let count = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|&&(px, py)| {
                let (sx, sy) = (share(px, x), share(py, y));
                (if right { sx > 0.6 } else { sx < 0.4 })
                    && (if upper { sy > 0.6 } else { sy < 0.4 })
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, count(true, true)),
        (SeriesLabelPosition::UpperLeft, count(false, true)),
        (SeriesLabelPosition::LowerRight, count(true, false)),
        (SeriesLabelPosition::LowerLeft, count(false, false)),
    ]
    .into_iter()
    .min_by_key(|(_, n)| *n)
    .map_or(SeriesLabelPosition::UpperRight, |(p, _)| p)
}

/// Rate (KL) against distortion (−E_q log p(x|z)), one point per ok run.
pub(super) fn rate_distortion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[RunPoint],
) -> anyhow::Result<()> {
    let xy = |p: &RunPoint| Some((p.kl?, -p.recon?));
    let plane = Plane {
        caption: "Rate–distortion plane".into(),
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
        caption: format!("Reconstruction against {score}"),
        x_desc: "reconstruction: E_q log p(x|z) (nats per example)",
        y_desc: score,
        xy: &xy,
        x_from_zero: false,
        y_from_zero: true,
    };
    draw(root, pts, &plane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_about_the_most_points_and_draws_all_below_it() {
        assert_eq!(thinning_step(10), 1);
        assert_eq!(thinning_step(MAX_POINTS), 1);
        assert_eq!(thinning_step(MAX_POINTS + 1), 2);
        for total in [1_001usize, 4_000, 12_800, 16_000, 100_000] {
            let drawn = total.div_ceil(thinning_step(total));
            assert!(
                drawn <= MAX_POINTS && drawn > MAX_POINTS / 2,
                "{total}: {drawn}"
            );
        }
    }

    #[test]
    fn a_group_cross_is_its_mean_with_t_intervals_on_both_axes() {
        let cross = mean_cross(&[(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]).unwrap();
        assert_eq!((cross.0.mean, cross.1.mean), (2.0, 20.0));
        // sd 1 and 10 over 3 runs: t(0.975, 2) = 4.303 × sd / √3.
        assert!((cross.0.half_width() - 4.302_652_7 / 3f64.sqrt()).abs() < 1e-5);
        assert!((cross.1.half_width() - 43.026_527 / 3f64.sqrt()).abs() < 1e-4);
        assert!(mean_cross(&[(1.0, 1.0)]).is_none());
    }
}
