//! Several results folders reported as one study: their runs in one table, each row with a
//! `study` column naming the folder it came from (and grouped by it first).

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// The column that says which folder a row came from.
pub const STUDY: &str = "study";

/// The runs of folders `dirs` (`runs[i]` read from `dirs[i]`) in one frame: the union of
/// their columns (a column one folder lacks is null in its rows), `study` first. Folders
/// are named by their last component, or by their whole path where two share one.
pub fn combine(dirs: &[PathBuf], runs: &[DataFrame]) -> anyhow::Result<DataFrame> {
    let names = study_names(dirs);
    let mut frames = Vec::new();
    for (frame, name) in runs.iter().zip(&names) {
        let mut frame = frame.clone();
        frame.with_column(Column::new(
            STUDY.into(),
            vec![name.as_str(); frame.height()],
        ))?;
        frames.push(frame);
    }
    union(frames)
}

fn study_names(dirs: &[PathBuf]) -> Vec<String> {
    let last = |d: &Path| {
        d.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| d.display().to_string())
    };
    let short: Vec<String> = dirs.iter().map(|d| last(d)).collect();
    let unique = short
        .iter()
        .all(|n| short.iter().filter(|m| *m == n).count() == 1);
    match unique {
        true => short,
        false => dirs.iter().map(|d| d.display().to_string()).collect(),
    }
}

/// Rows of every frame under the union of their columns, in first-seen order with `study`
/// first. A column two frames type differently is refused, naming it.
fn union(frames: Vec<DataFrame>) -> anyhow::Result<DataFrame> {
    let mut columns: Vec<(PlSmallStr, DataType)> = vec![(STUDY.into(), DataType::String)];
    for frame in &frames {
        for (name, dtype) in frame.schema().iter() {
            match columns.iter().find(|(n, _)| n == name) {
                Some((_, seen)) if seen != dtype && !matches!(dtype, DataType::Null) => {
                    anyhow::bail!("column `{name}` is {seen} in one folder and {dtype} in another")
                }
                Some(_) => {}
                None => columns.push((name.clone(), dtype.clone())),
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for frame in frames {
        let height = frame.height();
        let filled: Vec<Column> = columns
            .iter()
            .map(|(name, dtype)| match frame.column(name) {
                Ok(c) if c.dtype() == dtype => c.clone(),
                Ok(c) => c
                    .cast(dtype)
                    .unwrap_or_else(|_| Column::full_null(name.clone(), height, dtype)),
                Err(_) => Column::full_null(name.clone(), height, dtype),
            })
            .collect();
        let frame = DataFrame::new(height, filled)?;
        out = Some(match out {
            None => frame,
            Some(mut all) => {
                all.vstack_mut(&frame)?;
                all
            }
        });
    }
    out.ok_or_else(|| anyhow::anyhow!("no results folders given"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_different_columns_make_one_table_with_nulls_where_a_column_is_missing() {
        let a = df!("run_id" => ["a1", "a2"], "test_elbo" => [-1.0, -2.0]).unwrap();
        let b = df!("run_id" => ["b1"], "dis_mig" => [0.5]).unwrap();
        let mut with_study = Vec::new();
        for (frame, name) in [(a, "beta"), (b, "sprites")] {
            let mut f = frame;
            f.with_column(Column::new(STUDY.into(), vec![name; f.height()]))
                .unwrap();
            with_study.push(f);
        }
        let all = union(with_study).unwrap();
        assert_eq!(all.height(), 3);
        let names: Vec<&str> = all.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["study", "run_id", "test_elbo", "dis_mig"]);
        let mig = all.column("dis_mig").unwrap().f64().unwrap().clone();
        assert_eq!(mig.get(0), None);
        assert_eq!(mig.get(2), Some(0.5));
        assert_eq!(
            study_names(&[PathBuf::from("r/x"), PathBuf::from("q/x")])[0],
            "r/x"
        );
        assert_eq!(
            study_names(&[PathBuf::from("r/x"), PathBuf::from("r/y")]),
            ["x", "y"]
        );
    }
}
