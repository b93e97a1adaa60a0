//! Where relative data paths point.
//!
//! A path written in a spec file is relative to that file's folder, the rule `extends`
//! already follows (and Cargo's and Compose's files): a spec and its data move together, and
//! the spec means the same from any current folder. A path given on the command line
//! (`--set data.path=…`, `AEVB_DATA`, `AEVB_DATA__PATH`) is relative to the current folder,
//! as every shell path is. The resolved config holds the absolute path, so a run's saved
//! `config.toml` replans from anywhere.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use figment::{Figment, Source};

use super::document::Spec;

/// The spec keys that hold file or folder paths of data.
const PATH_KEYS: [&str; 2] = ["data.path", "data.test_path"];

/// Makes every data path in `spec` (the data section and sweep values for those keys)
/// absolute, from the folder of the file that set it or from the current folder.
pub fn resolve_data_paths(spec: &mut Spec, figment: &Figment) {
    let base = |key: &str| origin_dir(figment, key);
    if let Some(p) = &spec.data.path {
        spec.data.path = Some(absolute_from(&base("data.path"), p));
    }
    if let Some(p) = &spec.data.test_path {
        spec.data.test_path = Some(absolute_from(&base("data.test_path"), p));
    }
    let grid_base = base("sweep.grid");
    resolve_sweep_group(&mut spec.sweep.grid, &grid_base);
    let zip_base = base("sweep.zip");
    for group in &mut spec.sweep.zip {
        resolve_sweep_group(group, &zip_base);
    }
}

fn resolve_sweep_group(group: &mut BTreeMap<String, Vec<Value>>, base: &Path) {
    for key in PATH_KEYS {
        for value in group.get_mut(key).into_iter().flatten() {
            if let Some(p) = value.as_str() {
                *value = Value::String(absolute_from(base, p));
            }
        }
    }
}

/// The folder of the spec file that gave `key` its value; empty (the current folder) for
/// values from the command line or the environment.
fn origin_dir(figment: &Figment, key: &str) -> PathBuf {
    match figment.find_metadata(key).and_then(|m| m.source.as_ref()) {
        Some(Source::File(file)) => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => PathBuf::new(),
    }
}

/// `path` made absolute from `base` (itself relative to the current folder when it is),
/// with `.` and `..` parts folded away lexically.
pub fn absolute_from(base: &Path, path: &str) -> String {
    let joined = base.join(path);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_their_base_and_fold_dots() {
        assert_eq!(
            absolute_from(Path::new("/specs/repro"), "../data/x.csv"),
            "/specs/data/x.csv"
        );
        assert_eq!(absolute_from(Path::new("/specs"), "./a/./b"), "/specs/a/b");
        assert_eq!(absolute_from(Path::new("/specs"), "/abs/path"), "/abs/path");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_from(Path::new(""), "d"),
            cwd.join("d").display().to_string()
        );
    }
}
