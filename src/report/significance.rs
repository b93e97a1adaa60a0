//! What `report` says is significant: each group's 95% interval over seeds, whether the
//! best group beats the runner-up, and paired differences between adjacent values of a
//! swept key (runs of one seed share their initial weights' stream and minibatch order, so
//! the per-seed difference removes most of the seed noise).

use std::collections::BTreeMap;

use polars::prelude::*;

use super::stats::Interval;
use super::{floats, texts};

/// Group key values (as text) -> seed -> the group's ok runs' values of `metric`.
type BySeed = BTreeMap<Vec<String>, BTreeMap<i64, f64>>;

/// The ok runs' `metric` per group of `by` and per seed.
fn by_seed(runs: &DataFrame, by: &[String], metric: &str) -> BySeed {
    let mut out = BySeed::new();
    let status = texts(runs, "status");
    let (values, seeds) = (floats(runs, metric), floats(runs, "train.seed"));
    let keys: Vec<Vec<String>> = by.iter().map(|k| key_texts(runs, k)).collect();
    for i in 0..runs.height() {
        if status[i] != "ok" {
            continue;
        }
        let (Some(v), Some(seed)) = (values[i], seeds[i]) else {
            continue;
        };
        let key = keys.iter().map(|column| column[i].clone()).collect();
        out.entry(key).or_default().insert(seed as i64, v);
    }
    out
}

/// A key column's values as the summary table writes them (floats as Rust prints them: 1,
/// not 1.0; "-" where null): how groups of runs and rows of the table are matched.
fn key_texts(df: &DataFrame, name: &str) -> Vec<String> {
    match df.column(name).map(|c| c.f64()) {
        Ok(Ok(values)) => values
            .iter()
            .map(|f| f.map_or_else(|| "-".into(), |f| format!("{f}")))
            .collect(),
        _ => texts(df, name),
    }
}

fn values(group: Option<&BTreeMap<i64, f64>>) -> Vec<f64> {
    group
        .map(|g| g.values().copied().collect())
        .unwrap_or_default()
}

/// The 95% interval of `b − a` over the seeds both have (at least two), else `None`.
fn paired(a: &BTreeMap<i64, f64>, b: &BTreeMap<i64, f64>) -> Option<Interval> {
    let d: Vec<f64> = b
        .iter()
        .filter_map(|(s, vb)| Some(vb - a.get(s)?))
        .collect();
    Interval::over(&d)
}

/// Adds `{metric}_ci95_lo`/`_hi` columns for each of `metrics` and replaces `best` (the first
/// row, highest mean of `metric`) by whether it is significantly better than the runner-up:
/// the paired difference's interval excludes 0 where they share two or more seeds, else
/// the best group's interval excludes the runner-up's mean.
pub fn add_intervals(
    table: &mut DataFrame,
    runs: &DataFrame,
    by: &[String],
    metric: &str,
    metrics: &[&str],
) -> anyhow::Result<()> {
    let columns: Vec<Vec<String>> = by.iter().map(|k| key_texts(table, k)).collect();
    let keys: Vec<Vec<String>> = (0..table.height())
        .map(|i| columns.iter().map(|c| c[i].clone()).collect())
        .collect();
    for &m in metrics {
        let groups = by_seed(runs, by, m);
        let intervals: Vec<Option<Interval>> = keys
            .iter()
            .map(|k| Interval::over(&values(groups.get(k))))
            .collect();
        let lo: Vec<Option<f64>> = intervals.iter().map(|i| i.map(|i| i.lo)).collect();
        let hi: Vec<Option<f64>> = intervals.iter().map(|i| i.map(|i| i.hi)).collect();
        table.with_column(Column::new(format!("{m}_ci95_lo").into(), lo))?;
        table.with_column(Column::new(format!("{m}_ci95_hi").into(), hi))?;
    }
    let groups = by_seed(runs, by, metric);
    let significant = match (keys.first(), keys.get(1)) {
        (Some(best), Some(second)) => match (groups.get(best), groups.get(second)) {
            (Some(b), Some(s)) => match paired(s, b) {
                Some(d) => d.lo > 0.0,
                None => Interval::over(&values(Some(b)))
                    .zip(Interval::over(&values(Some(s))))
                    .is_some_and(|(bi, si)| bi.excludes(si.mean) && bi.mean > si.mean),
            },
            _ => false,
        },
        _ => false,
    };
    let n = table.height();
    let best: Vec<bool> = (0..n).map(|i| i == 0 && significant).collect();
    table.with_column(Column::new("best".into(), best))?;
    Ok(())
}

/// Paired differences of `metric` between adjacent values of the first numeric key of `by`
/// (β = 1 → 2, 2 → 4, …), the other keys held fixed: per seed both share, `next − this`,
/// with its mean and 95% interval. `None` without a numeric key.
pub fn paired_differences(
    runs: &DataFrame,
    by: &[String],
    metric: &str,
) -> anyhow::Result<Option<DataFrame>> {
    let groups = by_seed(runs, by, metric);
    let Some(axis) = (0..by.len())
        .find(|&j| !groups.is_empty() && groups.keys().all(|k| k[j].parse::<f64>().is_ok()))
    else {
        return Ok(None);
    };
    // The other keys -> the axis's values in numeric order.
    let mut lines: BTreeMap<Vec<String>, Vec<(f64, &Vec<String>)>> = BTreeMap::new();
    for key in groups.keys() {
        let mut rest = key.clone();
        let x = rest.remove(axis).parse::<f64>().unwrap_or(f64::NAN);
        lines.entry(rest).or_default().push((x, key));
    }
    let rest_names: Vec<&String> = by
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != axis)
        .map(|(_, k)| k)
        .collect();
    let mut rest_cols: Vec<Vec<String>> = vec![Vec::new(); rest_names.len()];
    let (mut from, mut to, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut mean, mut lo, mut hi, mut sig) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (rest, mut line) in lines {
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in line.windows(2) {
            let (a, b) = (&groups[w[0].1], &groups[w[1].1]);
            let d = paired(a, b);
            for (c, v) in rest_cols.iter_mut().zip(&rest) {
                c.push(v.clone());
            }
            from.push(w[0].1[axis].clone());
            to.push(w[1].1[axis].clone());
            pairs.push(b.keys().filter(|s| a.contains_key(s)).count() as u32);
            mean.push(d.map(|d| d.mean));
            lo.push(d.map(|d| d.lo));
            hi.push(d.map(|d| d.hi));
            sig.push(d.map(|d| d.excludes(0.0)));
        }
    }
    let rows = from.len();
    let mut columns: Vec<Column> = rest_names
        .iter()
        .zip(rest_cols)
        .map(|(n, c)| Column::new(n.as_str().into(), c))
        .collect();
    let axis_name = &by[axis];
    columns.extend([
        Column::new(format!("{axis_name} from").into(), from),
        Column::new(format!("{axis_name} to").into(), to),
        Column::new("seeds".into(), pairs),
        Column::new(format!("{metric} difference").into(), mean),
        Column::new("ci95_lo".into(), lo),
        Column::new("ci95_hi".into(), hi),
        Column::new("significant".into(), sig),
    ]);
    Ok(Some(DataFrame::new(rows, columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two β values over three seeds with the given test ELBOs.
    fn runs(a: [f64; 3], b: [f64; 3]) -> DataFrame {
        df!(
            "objective.beta" => [1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
            "train.seed" => [0i64, 1, 2, 0, 1, 2],
            "status" => ["ok"; 6],
            "test_elbo" => [a[0], a[1], a[2], b[0], b[1], b[2]],
        )
        .unwrap()
    }

    fn table(best_first: [f64; 2]) -> DataFrame {
        df!("objective.beta" => best_first, "test_elbo_mean" => [0.0, 0.0]).unwrap()
    }

    #[test]
    fn the_top_group_is_best_only_when_its_paired_interval_excludes_zero() {
        let by = vec!["objective.beta".to_string()];
        // β = 1 wins by 1 nat on every seed, though the seeds differ by several nats.
        let consistent = runs([-20.0, -24.0, -28.0], [-21.0, -25.1, -28.9]);
        let mut t = table([1.0, 2.0]);
        add_intervals(
            &mut t,
            &consistent,
            &by,
            "test_elbo",
            &super::super::METRICS,
        )
        .unwrap();
        assert_eq!(t.column("best").unwrap().bool().unwrap().get(0), Some(true));
        // Unpaired, the intervals overlap widely: only pairing sees it.
        let lo = t
            .column("test_elbo_ci95_lo")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap();
        assert!(lo < -25.0, "{lo}");
        // A win on two seeds and a loss on the third: not significant.
        let mixed = runs([-20.0, -24.0, -28.0], [-21.0, -25.0, -27.0]);
        let mut t = table([1.0, 2.0]);
        add_intervals(&mut t, &mixed, &by, "test_elbo", &super::super::METRICS).unwrap();
        assert_eq!(
            t.column("best").unwrap().bool().unwrap().get(0),
            Some(false)
        );
    }

    #[test]
    fn paired_differences_are_per_seed_means_with_t_intervals() {
        let by = vec!["objective.beta".to_string()];
        let r = runs([-20.0, -24.0, -28.0], [-21.0, -25.5, -28.5]);
        let p = paired_differences(&r, &by, "test_elbo").unwrap().unwrap();
        assert_eq!(p.height(), 1);
        // Differences −1, −1.5, −0.5: mean −1, sd 0.5, half-width 4.303 · 0.5 / √3.
        let get = |c: &str| p.column(c).unwrap().f64().unwrap().get(0).unwrap();
        assert!((get("test_elbo difference") + 1.0).abs() < 1e-12);
        let half = 4.303 * 0.5 / 3f64.sqrt();
        assert!((get("ci95_hi") - (-1.0 + half)).abs() < 1e-3);
        assert_eq!(
            p.column("significant").unwrap().bool().unwrap().get(0),
            Some(false)
        );
    }
}
