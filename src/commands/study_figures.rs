//! `runner report`'s per-group latent traversals: for each configuration of a study on
//! image data, the traversal grid of its first finished run (lowest seed), so the groups'
//! latents can be compared side by side. Here, above both the report and the trained-model
//! commands, because it joins them.

use std::path::{Path, PathBuf};

use aevb::trained::{TrainedRun, figures};
use polars::prelude::{DataFrame, DataType};

/// Prior quantiles per row, and rows (latents, most informative first), as `runner traverse`.
const STEPS: usize = 9;
const MAX_DIMS: usize = 10;

/// One grid per group of `by` keys under `out/traversals/<group>/traversals.png`; none for
/// data that are not images. A run that cannot be opened (its data moved, no model kept)
/// is passed over with a note.
pub fn traversal_grids(runs: &DataFrame, by: &[String], dir: &Path, out: &Path) -> Vec<PathBuf> {
    let Ok(groups) = first_run_per_group(runs, by) else {
        return Vec::new();
    };
    let mut written = Vec::new();
    for (label, run_id) in groups {
        let run = match TrainedRun::open(&dir.join("runs").join(&run_id).to_string_lossy(), dir) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("note: no traversal for {label}: {e:#}");
                continue;
            }
        };
        if run.data.image_shape.is_none() {
            return written;
        }
        let folder = out.join("traversals").join(&label);
        match figures::traverse(&run, STEPS, MAX_DIMS, 0, Some(&folder)) {
            Ok(files) => written.extend(files),
            Err(e) => eprintln!("note: no traversal for {label}: {e:#}"),
        }
    }
    written
}

/// (group label, run id) of each group's finished run with the lowest seed, in the table's
/// order; the label is `key=value` pairs joined by `,` (file-safe).
fn first_run_per_group(runs: &DataFrame, by: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let text = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        let column = runs.column(name)?.cast(&DataType::String)?;
        Ok(column
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let ids = text("run_id")?;
    let status = text("status")?;
    let seeds = text("train.seed").unwrap_or_else(|_| vec![None; ids.len()]);
    let keys: Vec<Vec<Option<String>>> = by.iter().map(|k| text(k)).collect::<Result<_, _>>()?;
    let mut chosen: Vec<(String, String, i64)> = Vec::new();
    for i in 0..ids.len() {
        if status[i].as_deref() != Some("ok") {
            continue;
        }
        let Some(id) = ids[i].clone() else { continue };
        let label = by
            .iter()
            .zip(&keys)
            .map(|(k, v)| {
                let key = k.rsplit('.').next().unwrap_or(k);
                format!("{key}={}", v[i].as_deref().unwrap_or("null"))
            })
            .collect::<Vec<_>>()
            .join(",")
            .replace(['/', ' '], "_");
        let seed = seeds[i]
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MAX);
        match chosen.iter_mut().find(|(l, _, _)| *l == label) {
            Some(entry) if seed < entry.2 => *entry = (label, id, seed),
            Some(_) => {}
            None => chosen.push((label, id, seed)),
        }
    }
    Ok(chosen.into_iter().map(|(l, id, _)| (l, id)).collect())
}
