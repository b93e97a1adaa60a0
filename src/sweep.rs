//! Turns a spec's `[sweep]` into concrete runs, each with a stable id and a readable label.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::spec::{RunConfig, Spec, SpecError, closest};

/// One run of a sweep, fully resolved.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Hash of the resolved config (less settings that cannot change results).
    pub id: String,
    /// The swept values, `beta=0.5,seed=1`; "run" when nothing is swept.
    pub label: String,
    /// Swept key -> value, in the order they appear in the label.
    pub swept: Vec<(String, Value)>,
    pub config: RunConfig,
    /// Where this invocation's training of the run ends short of its epochs (successive
    /// halving); None: to the end.
    pub limit: Option<crate::train::EpochLimit>,
}

impl PlannedRun {
    /// The swept keys, comma-separated, as a run's record holds them (`RunRecord::swept_keys`).
    pub fn swept_keys(&self) -> String {
        let keys: Vec<&str> = self.swept.iter().map(|(k, _)| k.as_str()).collect();
        keys.join(",")
    }
}

/// Expands the grid and zip groups, in a deterministic order, and checks every run.
pub fn expand(spec: &Spec, file: &str) -> Result<Vec<PlannedRun>, SpecError> {
    let base = serde_json::to_value(spec.run_config())
        .map_err(|e| SpecError::new(file, "-", format!("cannot represent the spec: {e}")))?;
    let mut leaves = leaf_keys(&base, "");
    leaves.extend(omitted_at_default());

    // Each axis is a list of assignments; the sweep is their Cartesian product.
    let mut axes = grid_axes(spec, &leaves, file)?;
    for (i, group) in spec.sweep.zip.iter().enumerate() {
        axes.push(zip_axis(spec, i, group, &leaves, file)?);
    }

    // Random search is one more axis, the last (fastest-varying): its trials.
    let trials = match &spec.sweep.search {
        Some(search) => {
            axes.push(search_axis(spec, search, &leaves, file)?);
            search.trials
        }
        None => 0,
    };

    let swept_keys: Vec<String> = axes
        .iter()
        .flat_map(|a| a[0].iter().map(|(k, _)| k.clone()))
        .collect();
    let mut runs = Vec::new();
    for (index, combination) in cartesian(&axes).into_iter().enumerate() {
        let mut value = base.clone();
        let assignments: Vec<(String, Value)> = combination.into_iter().flatten().collect();
        for (key, v) in &assignments {
            set_path(&mut value, key, v.clone());
        }
        let config: RunConfig = serde_json::from_value(value)
            .map_err(|e| bad_value(&base, &assignments, spec, file, &e))?;
        let label = match trials {
            0 => label(&assignments, &swept_keys),
            n => format!("trial={},{}", index % n, label(&assignments, &swept_keys)),
        };
        runs.push(PlannedRun {
            id: run_id(&config),
            label,
            swept: assignments,
            config,
            limit: None,
        });
    }
    check_distinct(&runs, file)?;
    if let Some(halving) = &spec.sweep.halving {
        check_halving(halving, &runs, file)?;
    }
    for run in &runs {
        crate::spec::validate_run(&run.config, file)?;
    }
    Ok(runs)
}

/// An axis of the sweep: its values, each a list of assignments (one key, or a zip group's).
type Axis = Vec<Vec<(String, Value)>>;

/// One axis per `[sweep.grid]` key: its values, one assignment each.
fn grid_axes(spec: &Spec, leaves: &[String], file: &str) -> Result<Vec<Axis>, SpecError> {
    let mut axes = Vec::new();
    for (key, values) in &spec.sweep.grid {
        check_key(key, leaves, file, &format!("sweep.grid.\"{key}\""))?;
        if values.is_empty() {
            return Err(SpecError::new(
                file,
                format!("sweep.grid.\"{key}\""),
                "expected a non-empty list of values",
            ));
        }
        axes.push(
            values
                .iter()
                .map(|v| vec![(key.clone(), v.clone())])
                .collect(),
        );
    }
    Ok(axes)
}

/// The `i`-th `[[sweep.zip]]` group as one axis: its lists, equally long, paired by
/// position.
fn zip_axis(
    spec: &Spec,
    i: usize,
    group: &BTreeMap<String, Vec<Value>>,
    leaves: &[String],
    file: &str,
) -> Result<Axis, SpecError> {
    let where_ = format!("sweep.zip[{i}]");
    let mut len = None;
    for (key, values) in group {
        check_key(key, leaves, file, &format!("{where_}.\"{key}\""))?;
        if spec.sweep.grid.contains_key(key) {
            return Err(SpecError::new(
                file,
                format!("{where_}.\"{key}\""),
                "this key is also swept in sweep.grid; sweep it in one place",
            ));
        }
        if let Some(first) = spec.sweep.zip[..i].iter().position(|g| g.contains_key(key)) {
            return Err(SpecError::new(
                file,
                format!("{where_}.\"{key}\""),
                format!(
                    "this key is also in sweep.zip[{first}]; a key belongs to one zip group (put the lists it pairs with into that group)"
                ),
            ));
        }
        match len {
            None => len = Some(values.len()),
            Some(n) if n != values.len() => {
                return Err(SpecError::new(
                    file,
                    &where_,
                    format!(
                        "zip lists must have equal lengths, but `{key}` has {} values and an earlier key has {n}",
                        values.len()
                    ),
                ));
            }
            _ => {}
        }
    }
    let n = len.unwrap_or(0);
    if n == 0 {
        return Err(SpecError::new(
            file,
            &where_,
            "expected non-empty lists of values",
        ));
    }
    Ok((0..n)
        .map(|j| {
            group
                .iter()
                .map(|(k, vs)| (k.clone(), vs[j].clone()))
                .collect()
        })
        .collect())
}

/// `[sweep.halving]` needs rungs below one epoch count that every run shares.
fn check_halving(
    halving: &crate::spec::HalvingConfig,
    runs: &[PlannedRun],
    file: &str,
) -> Result<(), SpecError> {
    if halving.reduction < 2 {
        return Err(SpecError::new(
            file,
            "sweep.halving.reduction",
            format!(
                "expected η >= 2 (each rung keeps the best 1/η), found {}",
                halving.reduction
            ),
        ));
    }
    let epochs = runs.first().map_or(0, |r| r.config.train.epochs);
    if runs.iter().any(|r| r.config.train.epochs != epochs) {
        return Err(SpecError::new(
            file,
            "sweep.halving",
            "the runs train for different train.epochs; successive halving sets the epochs of each rung itself: sweep train.epochs apart",
        ));
    }
    if halving.min_epochs == 0 || halving.min_epochs >= epochs {
        return Err(SpecError::new(
            file,
            "sweep.halving.min_epochs",
            format!(
                "expected the first rung's epochs between 1 and train.epochs − 1 ({}), found {}",
                epochs.saturating_sub(1),
                halving.min_epochs
            ),
        ));
    }
    Ok(())
}

/// `[sweep.search]` as an axis of the sweep: each trial's draws, checked first.
fn search_axis(
    spec: &Spec,
    search: &crate::spec::SearchConfig,
    leaves: &[String],
    file: &str,
) -> Result<Axis, SpecError> {
    if search.trials == 0 {
        return Err(SpecError::new(
            file,
            "sweep.search.trials",
            "expected at least 1 trial",
        ));
    }
    if search.keys.is_empty() {
        return Err(SpecError::new(
            file,
            "sweep.search.keys",
            "expected at least one key with a distribution, e.g. \"train.lr\" = { log_uniform = [1e-4, 1e-2] }",
        ));
    }
    for (key, distribution) in &search.keys {
        let where_ = format!("sweep.search.keys.\"{key}\"");
        check_key(key, leaves, file, &where_)?;
        if spec.sweep.grid.contains_key(key) || spec.sweep.zip.iter().any(|g| g.contains_key(key)) {
            return Err(SpecError::new(
                file,
                where_,
                "this key is also swept in sweep.grid or sweep.zip; sweep it in one place",
            ));
        }
        crate::search::check(distribution).map_err(|m| SpecError::new(file, &where_, m))?;
    }
    Ok(crate::search::trials(search))
}

/// The swept value that makes a run's config invalid, named by its key in the sweep.
fn bad_value(
    base: &Value,
    assignments: &[(String, Value)],
    spec: &Spec,
    file: &str,
    error: &serde_json::Error,
) -> SpecError {
    for (key, v) in assignments {
        let mut value = base.clone();
        set_path(&mut value, key, v.clone());
        if let Err(e) = serde_json::from_value::<RunConfig>(value) {
            let searched = spec
                .sweep
                .search
                .as_ref()
                .is_some_and(|s| s.keys.contains_key(key));
            let where_ = if spec.sweep.grid.contains_key(key) {
                format!("sweep.grid.\"{key}\"")
            } else if searched {
                format!("sweep.search.keys.\"{key}\"")
            } else {
                let i = spec
                    .sweep
                    .zip
                    .iter()
                    .position(|g| g.contains_key(key))
                    .unwrap_or(0);
                format!("sweep.zip[{i}].\"{key}\"")
            };
            let message = if v.is_null() {
                // NaN and infinities reach us as null (JSON has neither).
                "expected a finite value, found NaN, an infinity or null".to_string()
            } else {
                format!("invalid value {}: {e}", format_value(v))
            };
            return SpecError::new(file, where_, message);
        }
    }
    SpecError::new(file, "sweep", format!("invalid value: {error}"))
}

/// Two runs with one id would train the same config into the same files at once.
fn check_distinct(runs: &[PlannedRun], file: &str) -> Result<(), SpecError> {
    let mut seen: BTreeMap<&str, &PlannedRun> = BTreeMap::new();
    for run in runs {
        if let Some(first) = seen.insert(&run.id, run) {
            let differing: Vec<&str> = run
                .swept
                .iter()
                .zip(&first.swept)
                .filter(|(a, b)| a.1 != b.1)
                .map(|(a, _)| a.0.as_str())
                .collect();
            let message = if differing.is_empty() {
                format!(
                    "the sweep lists the combination `{}` twice; remove the repeated value",
                    run.label
                )
            } else {
                format!(
                    "runs `{}` and `{}` differ only in {}, which do not change a run (run id {}); sweep keys that change the model, data or training",
                    first.label,
                    run.label,
                    differing.join(", "),
                    run.id
                )
            };
            let key = differing
                .first()
                .copied()
                .or_else(|| run.swept.first().map(|(k, _)| k.as_str()))
                .unwrap_or("sweep");
            return Err(SpecError::new(file, format!("sweep: {key}"), message));
        }
    }
    Ok(())
}

fn cartesian<T: Clone>(axes: &[Vec<T>]) -> Vec<Vec<T>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.iter().map(move |item| {
                    let mut next = prefix.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect()
    })
}

/// Stable across invocations: a hash of the config with settings that do not change the
/// numbers (how many runs share the machine, where results go, how often checkpoints are
/// written) blanked out.
pub fn run_id(config: &RunConfig) -> String {
    let mut c = config.clone();
    c.runtime.workers = None;
    // The thread count is recorded in the run's row instead: an automatic choice depends on
    // the machine, and one run's id must not change with it.
    c.runtime.threads = None;
    c.runtime.results_dir = String::new();
    // What trains it, not how the spec asked: `cpu` that resolves to the fused engine and
    // an explicit `fused` are one run.
    c.runtime.backend = crate::engine::kind_for(config);
    c.train.checkpoint_every_epochs = 0;
    c.train.checkpoint_every_seconds = 0.0;
    c.eval.checkpoint_every_seconds = 0.0;
    c.train.keep_last = 1;
    // However a data path is written (relative, `./`, a trailing slash), it names the same
    // data: the id hashes its canonical form.
    c.data.path = c.data.path.as_deref().map(canonical_path);
    c.data.test_path = c.data.test_path.as_deref().map(canonical_path);
    // The engine that trains it (with its numerics version) is part of what a run is:
    // `backend = "cpu"` on the fused engine and on flex are two runs with two ids.
    let canonical = format!(
        "{}|engine={}",
        serde_json::to_string(&c).unwrap_or_default(),
        crate::engine::identity(config)
    );
    let digest = Sha256::digest(canonical.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The absolute path with links resolved where it exists, else the absolute path with its
/// components re-joined (no `.` parts, no repeated or trailing slashes).
pub fn canonical_path(path: &str) -> String {
    use std::path::{Component, Path, PathBuf};
    let p = Path::new(path);
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| {
            let absolute = std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf());
            absolute
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect::<PathBuf>()
        })
        .display()
        .to_string()
}

fn label(assignments: &[(String, Value)], swept_keys: &[String]) -> String {
    if assignments.is_empty() {
        return "run".into();
    }
    let short = |key: &str| {
        let last = key.rsplit('.').next().unwrap_or(key);
        let clashes = swept_keys
            .iter()
            .filter(|k| k.rsplit('.').next() == Some(last))
            .count();
        if clashes > 1 {
            key.to_string()
        } else {
            last.to_string()
        }
    };
    assignments
        .iter()
        .map(|(k, v)| format!("{}={}", short(k), format_value(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A value as a person writes it: strings bare, lists compact.
pub fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(format_value).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

fn check_key(key: &str, leaves: &[String], file: &str, where_: &str) -> Result<(), SpecError> {
    if leaves.iter().any(|l| l == key) {
        return Ok(());
    }
    let candidates: Vec<&str> = leaves.iter().map(|s| s.as_str()).collect();
    let hint = closest(key, &candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    Err(SpecError::new(
        file,
        where_,
        format!("`{key}` is not a config key{hint}"),
    ))
}

/// Every dotted key of a config (objects are descended, everything else is a leaf).
/// Keys a run's config leaves out while they hold their defaults (so that adding them did
/// not change older runs' ids: conv lists, the DIP-VAE weights), sweepable all the same.
fn omitted_at_default() -> Vec<String> {
    let mut c = crate::spec::RunConfig::default();
    c.model.encoder.conv = vec![crate::spec::ConvLayer::standard(1)];
    c.model.decoder.conv = vec![crate::spec::ConvLayer::standard(1)];
    c.objective.dip_lambda_od = 0.0;
    c.objective.dip_lambda_d = Some(0.0);
    c.objective.capacity_max = 0.0;
    c.model.pseudo_inputs = 0;
    c.data.validation = 1;
    c.train.restore_best = true;
    c.objective.capacity_steps = 0;
    c.objective.capacity_gamma = 0.0;
    c.objective.factor_gamma = 0.0;
    c.objective.discriminator_hidden = vec![1];
    c.objective.discriminator_lr = 0.0;
    serde_json::to_value(c)
        .map(|v| leaf_keys(&v, ""))
        .unwrap_or_default()
}

pub fn leaf_keys(value: &Value, prefix: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let below = leaf_keys(v, &key);
                if below.is_empty() { vec![key] } else { below }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Sets a dotted key (checked against the config's leaves beforehand).
fn set_path(value: &mut Value, key: &str, new: Value) {
    let mut node = value;
    for part in key.split('.') {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        node = map.entry(part.to_string()).or_insert(Value::Null);
    }
    *node = new;
}

/// The config flattened to dotted keys (lists stay lists): one Parquet column each.
pub fn flatten(config: &RunConfig) -> BTreeMap<String, Value> {
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut out = BTreeMap::new();
    flatten_into(&value, "", &mut out);
    out
}

fn flatten_into(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(v, &key, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
