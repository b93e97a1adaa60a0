//! Whether every group of a report has the seeds the study ran: a group short of seeds is
//! averaged over fewer runs than its neighbours, which a reader must be told.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;

use super::texts;

/// One line per group (by `by`) that lacks seeds other groups have, naming them; the study's
/// seeds are those of all its groups together (a grid gives every group every seed).
pub fn missing_seeds(runs: &DataFrame, by: &[String]) -> Vec<String> {
    let Ok(seeds) = runs
        .column("train.seed")
        .and_then(|c| c.cast(&DataType::Int64))
    else {
        return Vec::new();
    };
    let Ok(seeds) = seeds.i64() else {
        return Vec::new();
    };
    let keys: Vec<Vec<String>> = by.iter().map(|k| texts(runs, k)).collect();
    let mut groups: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for (i, seed) in seeds.iter().enumerate() {
        let label = by
            .iter()
            .zip(&keys)
            .map(|(k, v)| format!("{k}={}", v[i]))
            .collect::<Vec<_>>()
            .join(", ");
        let set = groups.entry(label).or_default();
        set.extend(seed);
    }
    let all: BTreeSet<i64> = groups.values().flatten().copied().collect();
    let list =
        |s: &mut dyn Iterator<Item = &i64>| s.map(i64::to_string).collect::<Vec<_>>().join(", ");
    groups
        .iter()
        .filter(|(_, have)| have.len() < all.len())
        .map(|(label, have)| {
            let label = if label.is_empty() { "all runs" } else { label };
            format!(
                "{label}: {} of {} seeds (missing seed {})",
                have.len(),
                all.len(),
                list(&mut all.difference(have))
            )
        })
        .collect()
}

/// Runs on disk that the tables do not hold: finished ones (the tables are older than the
/// runs) and those whose record cannot be read, as "id: why".
#[derive(Debug, Default)]
pub struct NotInTables {
    pub finished: usize,
    pub unreadable: Vec<String>,
}

pub fn records_not_in_tables(dir: &Path, runs: &DataFrame) -> NotInTables {
    let in_table: BTreeSet<String> = texts(runs, "run_id").into_iter().collect();
    let mut found = NotInTables::default();
    let Ok(entries) = std::fs::read_dir(dir.join("runs")) else {
        return found;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if in_table.contains(&id) {
            continue;
        }
        match crate::sinks::results::read_record(&entry.path()) {
            Ok(Some(_)) => found.finished += 1,
            Ok(None) => {}
            Err(e) => found.unreadable.push(format!("{id}: {e:#}")),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_short_of_a_seed_is_named_with_the_seed() {
        let runs = df![
            "objective.beta" => [0.5, 0.5, 1.0, 1.0, 1.0],
            "train.seed" => [0i64, 1, 0, 1, 2],
        ]
        .unwrap();
        let lines = missing_seeds(&runs, &["objective.beta".to_string()]);
        assert_eq!(
            lines,
            vec!["objective.beta=0.5: 2 of 3 seeds (missing seed 2)".to_string()]
        );
        let full = df!["objective.beta" => [1.0, 1.0], "train.seed" => [0i64, 1]].unwrap();
        assert!(missing_seeds(&full, &["objective.beta".to_string()]).is_empty());
    }
}
