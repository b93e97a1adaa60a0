//! Loading a spec: the file (and what it `extends`), `AEVB_*` environment variables and
//! `--set` overrides merged by figment, then validated run by run.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Serialized};

use super::document::Spec;
use super::error::{SpecError, closest};
use super::file;
use super::paths::{self, absolute_from};
use super::sections::{DatasetKind, ObjectiveKind};
use super::validate::validate_spec;

/// Environment variable that moves the MNIST-style data directory (`data.path`).
pub const DATA_DIR_ENV: &str = "AEVB_DATA";

/// Loads a spec file with env and `--set` overrides, and validates every run it sweeps into.
pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
    let file = path.display().to_string();
    if path.is_dir() {
        return Err(SpecError::new(
            &file,
            "-",
            "is a directory; expected a spec file (.toml or .yaml)",
        ));
    }
    if !path.is_file() {
        return Err(SpecError::new(&file, "-", "spec file not found"));
    }
    let mut figment = Figment::from(Serialized::defaults(Spec::default()));
    // The bases first, the file itself last: each file's settings override its base's.
    for (layer, text) in extends_chain(path, &file)? {
        let name = layer.display().to_string();
        check_file_text(&layer, &text, &name)?;
        let provider = |yaml| file::SpecFile {
            path: layer.clone(),
            text,
            yaml,
        };
        figment = match layer.extension().and_then(|e| e.to_str()) {
            Some("toml") => figment.merge(provider(false)),
            Some("yaml" | "yml") => figment.merge(provider(true)),
            _ => {
                return Err(SpecError::new(
                    &name,
                    "-",
                    "expected a .toml, .yaml or .yml spec file",
                ));
            }
        };
    }
    // AEVB_TRAIN__EPOCHS=3 sets train.epochs; AEVB_DATA is the data directory (below).
    figment = figment.merge(
        Env::prefixed("AEVB_")
            .ignore(&[
                "DATA",
                "TEST_BACKEND",
                "BENCH_BACKENDS",
                "PROGRESS_SECONDS",
                "SIMD",
                "TEST_SIGNAL",
                "CACHE_DIR",
            ])
            .split("__"),
    );
    let mut path_set = false;
    for item in overrides {
        let (key, value) = parse_override(item).map_err(|m| SpecError::new(&file, item, m))?;
        path_set |= key == "data.path";
        figment = figment.merge(Serialized::default(&key, value));
    }
    let mut spec: Spec = figment
        .extract()
        .map_err(|e| figment_error(&file, e, path))?;
    check_finite(&spec, &figment, &file, path)?;
    check_ignored(&spec, &figment, &file)?;
    paths::resolve_data_paths(&mut spec, &figment);
    // AEVB_DATA moves the IDX directory (above the file, below --set). It is applied only to
    // the datasets that read one, so that it never changes the run ids of other specs.
    if let (Ok(dir), false) = (std::env::var(DATA_DIR_ENV), path_set)
        && matches!(
            spec.data.dataset,
            DatasetKind::Mnist | DatasetKind::FashionMnist
        )
    {
        spec.data.path = Some(absolute_from(Path::new(""), &dir));
    }
    validate_spec(&spec, &file)?;
    Ok(spec)
}

/// The files a spec is built from, base first, each with its text (read once): `path`, the
/// file its `extends` names (relative to `path`'s folder), that file's base, and so on.
fn extends_chain(path: &Path, file: &str) -> Result<Vec<(PathBuf, String)>, SpecError> {
    let mut chain: Vec<(PathBuf, String)> = Vec::new();
    let mut current = path.to_path_buf();
    loop {
        let name = current.display().to_string();
        let text = file::read_text(&current, &name)?;
        let base = read_extends(&current, &text, &name)?;
        chain.push((current.clone(), text));
        let Some(base) = base else {
            break;
        };
        let base_path = current.parent().unwrap_or(Path::new("")).join(&base);
        if !base_path.is_file() {
            return Err(SpecError::new(
                name,
                "extends",
                format!("base spec {} not found", base_path.display()),
            ));
        }
        let same = |(p, _): &(PathBuf, String)| {
            std::fs::canonicalize(p).ok() == std::fs::canonicalize(&base_path).ok()
        };
        if chain.iter().any(same) || chain.len() > 16 {
            return Err(SpecError::new(
                file,
                "extends",
                format!(
                    "the bases form a cycle: {} -> {}",
                    chain
                        .iter()
                        .map(|(p, _)| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" -> "),
                    base_path.display()
                ),
            ));
        }
        current = base_path;
    }
    chain.reverse();
    Ok(chain)
}

/// The `extends` value of a spec file, if it has one (syntax errors are left to figment).
fn read_extends(path: &Path, text: &str, file: &str) -> Result<Option<String>, SpecError> {
    let value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|mut t| t.remove("extends"))
            .map(|v| v.as_str().map(str::to_string).ok_or(())),
        Some("yaml" | "yml") => serde_yaml::from_str::<serde_yaml::Value>(text)
            .ok()
            .and_then(|v| v.get("extends").cloned())
            .map(|v| v.as_str().map(str::to_string).ok_or(())),
        _ => None,
    };
    match value {
        None => Ok(None),
        Some(Ok(base)) => Ok(Some(base)),
        Some(Err(())) => Err(SpecError::new(
            file,
            "extends",
            "expected the path of a base spec file, as a string",
        )),
    }
}

/// `key=value`, the value read as a TOML value when it parses as one, else as a string.
fn parse_override(item: &str) -> Result<(String, toml::Value), String> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| "expected --set section.key=value".to_string())?;
    let key = key.trim().to_string();
    let well_formed = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !well_formed {
        return Err(format!(
            "`{key}` is not a dotted key; expected --set section.key=value"
        ));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key, value))
}

/// What figment cannot tell us about the file itself: that it says nothing at all (an empty
/// spec would train a default experiment), or that a YAML mapping repeats a key (figment's
/// YAML provider silently keeps the last value). Syntax errors are left to figment, which
/// reports them with line numbers.
/// The first line (1-based) whose indentation holds a tab.
fn tab_indented_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.chars()
                .take_while(|c| c.is_whitespace())
                .any(|c| c == '\t')
        })
        .map(|i| i + 1)
}

fn check_file_text(path: &Path, text: &str, file: &str) -> Result<(), SpecError> {
    let empty = SpecError::new(
        file,
        "-",
        "the spec file is empty; expected at least `name` and the settings that differ from the defaults",
    );
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => match toml::from_str::<toml::Table>(text) {
            Ok(table) if table.is_empty() => Err(empty),
            _ => Ok(()),
        },
        Some("yaml" | "yml") => match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Null) => Err(empty),
            Ok(serde_yaml::Value::Mapping(m)) if m.is_empty() => Err(empty),
            Err(e) if tab_indented_line(text).is_some() => {
                let line = tab_indented_line(text).unwrap_or_default();
                Err(SpecError::new(
                    file,
                    "-",
                    format!(
                        "not valid YAML: line {line} is indented with a tab; YAML indents with spaces only ({e})"
                    ),
                ))
            }
            Err(e) if e.to_string().contains("duplicate entry") => {
                let message = e.to_string();
                // serde_yaml: `duplicate entry with key "latent_dim" at line 4 column 3`.
                let key = message
                    .split('"')
                    .nth(1)
                    .map(str::to_string)
                    .unwrap_or_else(|| "-".into());
                Err(SpecError::new(
                    file,
                    key,
                    format!("{message}; each key may appear once per section"),
                ))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// NaN and infinities pass serde as valid floats; no setting takes one. The error names the
/// dotted key and where the value came from (file, environment or --set).
/// A setting every run of the spec would ignore is refused, naming its key, rather than
/// silently dropped: `objective.kl` (analytic or Monte Carlo KL) under the IWAE objective,
/// whose bound has no KL term.
fn check_ignored(spec: &Spec, figment: &Figment, file: &str) -> Result<(), SpecError> {
    let defaults = std::any::type_name::<Spec>();
    let swept = |key: &str| {
        let sweep = &spec.sweep;
        sweep.grid.contains_key(key)
            || sweep.zip.iter().any(|group| group.contains_key(key))
            || sweep
                .search
                .as_ref()
                .is_some_and(|s| s.keys.contains_key(key))
    };
    let given = |key: &str| {
        figment
            .find_metadata(key)
            .is_some_and(|m| m.name != defaults)
            || swept(key)
    };
    let only_iwae = spec.objective.kind == ObjectiveKind::Iwae && !swept("objective.kind");
    if only_iwae && given("objective.kl") {
        return Err(SpecError::new(
            file,
            "objective.kl",
            "objective.kind = \"iwae\" has no KL term (its bound weighs samples of p(x, z) / q(z|x)), so `kl` would be ignored; remove it",
        ));
    }
    Ok(())
}

fn check_finite(spec: &Spec, figment: &Figment, file: &str, path: &Path) -> Result<(), SpecError> {
    fn walk(value: &toml::Value, key: &str, bad: &mut Vec<(String, f64)>) {
        match value {
            toml::Value::Float(f) if !f.is_finite() => bad.push((key.to_string(), *f)),
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}.{k}")
                    };
                    walk(v, &key, bad);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|v| walk(v, key, bad)),
            _ => {}
        }
    }
    let Ok(value) = toml::Value::try_from(spec.run_config()) else {
        return Ok(());
    };
    let mut bad = Vec::new();
    walk(&value, "", &mut bad);
    match bad.first() {
        Some((key, v)) => Err(SpecError::new(
            source_name(figment.find_metadata(key), file, path),
            key.clone(),
            format!("expected a finite number, found {v}"),
        )),
        None => Ok(()),
    }
}

/// Where a value came from: the spec file, another file, the environment, or --set.
fn source_name(metadata: Option<&figment::Metadata>, file: &str, path: &Path) -> String {
    match metadata {
        Some(m) => match &m.source {
            Some(figment::Source::File(p)) if p.ends_with(path) || path.ends_with(p) => {
                file.to_string()
            }
            Some(figment::Source::File(p)) => p.display().to_string(),
            Some(figment::Source::Code(_)) => format!("{file} (with --set)"),
            _ => format!("{file} (with {})", m.name),
        },
        None => file.to_string(),
    }
}

/// A Rust type name in serde's words as a person says it.
fn plain_type(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number, 0 or more".into(),
        "i64" | "i32" | "isize" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other
            .replace("usize", "whole number")
            .replace("f64", "number"),
    }
}

/// serde's description of a value found ("signed int -3", "string \"two\"") as the value
/// itself, its kind where that helps.
fn plain_value(actual: &str) -> String {
    for prefix in ["signed int ", "unsigned int ", "float "] {
        if let Some(v) = actual.strip_prefix(prefix) {
            return v.to_string();
        }
    }
    match actual.strip_prefix("string ") {
        Some(v) => format!("the text {v}"),
        None => actual.to_string(),
    }
}

fn figment_error(file: &str, error: figment::Error, path: &Path) -> SpecError {
    use figment::error::Kind;
    let Some(error) = error.into_iter().next() else {
        return SpecError::new(file, "-", "invalid spec");
    };
    // Name where the bad value came from: the spec file, the environment, or --set.
    let source = source_name(error.metadata.as_ref(), file, path);
    // figment prefixes paths with the profile name ("default").
    let mut key_path: Vec<String> = error.path.clone();
    if key_path.first().map(|s| s.as_str()) == Some("default") {
        key_path.remove(0);
    }
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            if key_path.last() != Some(field) {
                key_path.push(field.clone());
            }
            let hint = closest(field, expected)
                .map(|c| format!("; did you mean `{}`?", replace_last(&key_path, c)))
                .unwrap_or_default();
            SpecError::new(
                source,
                key_path.join("."),
                format!(
                    "unknown key{hint} (valid keys here: {})",
                    expected.join(", ")
                ),
            )
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            SpecError::new(
                source,
                key_path.join("."),
                format!(
                    "expected {}, found {}",
                    plain_type(expected),
                    plain_value(&actual.to_string())
                ),
            )
        }
        Kind::UnknownVariant(variant, expected) => SpecError::new(
            source,
            key_path.join("."),
            format!(
                "unknown value `{variant}`, expected one of: {}",
                expected.join(", ")
            ),
        ),
        // Syntax errors have no key; say which format failed to parse.
        other if key_path.is_empty() => {
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => "YAML",
                _ => "TOML",
            };
            SpecError::new(source, "-", format!("not valid {format}: {other}"))
        }
        other => SpecError::new(source, key_path.join("."), other.to_string()),
    }
}

fn replace_last(path: &[String], last: &str) -> String {
    let mut p = path.to_vec();
    if let Some(l) = p.last_mut() {
        *l = last.to_string();
    }
    p.join(".")
}
