//! Checkpoints: a run's full training state, so that a killed, preempted or interrupted run
//! continues where it stopped and ends with exactly the numbers of an uninterrupted one.
//!
//! ```text
//! runs/<id>/checkpoints/<epoch>-<step>/state.toml     TrainState, run id, version, log position
//!                                     /model.bpk      autodiff engine: parameters with their ids (burnpack)
//!                                     /optimizer.bpk  autodiff engine: optimiser state, keyed by those ids
//!                                     /fused.safetensors  fused engine: parameters and optimiser state
//! ```
//!
//! A checkpoint is written into a hidden temporary folder (every file fsynced) that is then
//! renamed into place, so a kill -9 leaves either the whole checkpoint or none of it; one
//! saved again at the same position is swapped with the old in one step (`replace_dir`).
//! `state.toml` holds the SHA-256 of every other file, checked before anything is loaded:
//! a damaged checkpoint is passed over like an unreadable one. The newest `keep_last` are
//! kept while the run trains; they are removed once it has finished (a failed run keeps them
//! for its retry).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sinks::results::write_atomic;
use crate::spec::RunConfig;
use crate::train::{Checkpoint, Resume, TrainState};

/// The contents of `state.toml`. TOML rather than JSON: serde_json's float parser is not
/// correctly rounded (it can be one ulp off), and a resumed run must carry its earlier
/// epochs' metrics bit for bit; the `toml` crate parses with the standard library's.
#[derive(Serialize, Deserialize)]
struct StateFile {
    run_id: String,
    aevb_version: String,
    /// The engine that wrote it and its numerics version (`engine::identity`): a checkpoint
    /// continues only a run of that same engine.
    #[serde(default)]
    engine: String,
    /// The TensorBoard event file and its length when the checkpoint was taken.
    board: Option<BoardPosition>,
    train: TrainState,
    /// SHA-256 (hex) of every other file of the checkpoint, by its path inside it. Empty in
    /// checkpoints written before they were kept: those load unchecked.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// Where a run's TensorBoard log stood: a resumed run cuts the file back to this length, so
/// that what was logged after the checkpoint is not there twice.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BoardPosition {
    /// The event file's name in the run's TensorBoard folder.
    pub file: String,
    pub bytes: u64,
}

/// A checkpoint read back: what training continues from, and where its log stood.
pub struct Loaded {
    pub resume: Resume,
    pub board: Option<BoardPosition>,
    /// The checkpoint's folder, for messages.
    pub path: PathBuf,
}

/// The subfolder of a checkpoint that keeps the engine's files at the best evaluation
/// (`train.restore_best`).
const BEST: &str = "best";

/// The checkpoint's own record of itself: position, identity and the files' SHA-256.
const STATE_FILE: &str = "state.toml";

/// The files directly in `dir` (not its folders, not `state.toml`), by name, sorted: read
/// once, then checked against the manifest and parsed from memory.
fn read_files(dir: &Path) -> anyhow::Result<crate::engine::Files> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if !path.is_file() || name == STATE_FILE {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every file the manifest lists (`best/NAME` among `best`'s files) against its
/// SHA-256; `dir` names them in messages.
fn verify(
    dir: &Path,
    manifest: &BTreeMap<String, String>,
    files: &crate::engine::Files,
    best: Option<&crate::engine::Files>,
) -> anyhow::Result<()> {
    for (name, want) in manifest {
        let (set, file) = match name.strip_prefix(&format!("{BEST}/")) {
            Some(file) => (best, file),
            None => (Some(files), name.as_str()),
        };
        let path = dir.join(name);
        let bytes = set
            .and_then(|set| set.iter().find(|(n, _)| n == file))
            .map(|(_, bytes)| bytes)
            .ok_or_else(|| anyhow::anyhow!("{}: missing", path.display()))?;
        if sha256(bytes) != *want {
            anyhow::bail!(
                "{} is damaged: its SHA-256 is not the one written with it",
                path.display()
            );
        }
    }
    Ok(())
}

/// Moves the finished folder `new` to `target`. Where `target` exists (the same position
/// saved again: a resumed run stopped before its next step), the two are exchanged in one
/// atomic step and the old one, now at `new`, is removed: a kill at any moment leaves a
/// whole checkpoint at `target`.
fn replace_dir(new: &Path, target: &Path) -> anyhow::Result<()> {
    if !target.exists() {
        std::fs::rename(new, target)?;
        return Ok(());
    }
    exchange(new, target)?;
    let _ = std::fs::remove_dir_all(new);
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> anyhow::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(anyhow::Error::from);
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call; renameat2 only
    // reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        // A file system without the exchange (NFS, some FUSE mounts).
        if matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return exchange_in_steps(a, b);
        }
        return Err(error.into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> anyhow::Result<()> {
    exchange_in_steps(a, b)
}

/// Without an atomic exchange: the old folder aside under a hidden name (which `list`
/// skips), then the new one in; only a kill between the first two renames loses the
/// position (the older checkpoints remain).
fn exchange_in_steps(a: &Path, b: &Path) -> anyhow::Result<()> {
    let aside = a.with_extension("old");
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)?;
    Ok(())
}

/// A checkpoint's folder name: zero-padded, so that names sort by epoch, then minibatch.
fn folder_name(epoch: usize, step: usize) -> String {
    format!("{epoch:06}-{step:06}")
}

/// The checkpoints of one run.
pub struct Checkpoints {
    dir: PathBuf,
    run_id: String,
}

impl Checkpoints {
    pub fn new(run_dir: &Path, run_id: &str) -> Self {
        Self {
            dir: run_dir.join("checkpoints"),
            run_id: run_id.to_string(),
        }
    }

    /// Writes `checkpoint` and keeps the newest `keep_last`; returns the seconds it took.
    pub fn save(
        &self,
        checkpoint: &Checkpoint<'_>,
        board: Option<BoardPosition>,
        keep_last: usize,
    ) -> anyhow::Result<f64> {
        let started = Instant::now();
        let state = checkpoint.state;
        let name = folder_name(state.epoch, state.step);
        let target = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> anyhow::Result<()> {
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)?;
            let mut files = BTreeMap::new();
            for (name, bytes) in checkpoint.engine.checkpoint_files()? {
                write_atomic(&tmp.join(name), &bytes)?;
                files.insert(name.to_string(), sha256(&bytes));
            }
            if let Some(best) = checkpoint.best {
                std::fs::create_dir_all(tmp.join(BEST))?;
                for (name, bytes) in best {
                    write_atomic(&tmp.join(BEST).join(name), bytes)?;
                    files.insert(format!("{BEST}/{name}"), sha256(bytes));
                }
            }
            let file = StateFile {
                run_id: self.run_id.clone(),
                aevb_version: crate::VERSION.to_string(),
                engine: format!(
                    "{}/{}",
                    checkpoint.engine.name(),
                    crate::engine::NUMERICS_VERSION
                ),
                board,
                train: state.clone(),
                files,
            };
            write_atomic(&tmp.join(STATE_FILE), toml::to_string(&file)?.as_bytes())?;
            replace_dir(&tmp, &target)?;
            let _ = std::fs::File::open(&self.dir).and_then(|d| d.sync_all());
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_dir_all(&tmp);
            anyhow::bail!("cannot write checkpoint {}: {e:#}", target.display());
        }
        for old in self.list().iter().rev().skip(keep_last) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Complete checkpoints, oldest first (their names sort by epoch, then step).
    pub fn list(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            })
            .collect();
        found.sort();
        found
    }

    /// The newest complete checkpoint's folder.
    pub fn newest(&self) -> Option<PathBuf> {
        self.list().pop()
    }

    /// How far the newest checkpoint got, from its folder's name: (epochs done, minibatches
    /// of the next epoch done).
    pub fn newest_position(&self) -> Option<(usize, usize)> {
        let newest = self.list().pop()?;
        let (epoch, step) = newest.file_name()?.to_str()?.split_once('-')?;
        Some((epoch.parse().ok()?, step.parse().ok()?))
    }

    /// The newest checkpoint that reads back whole and belongs to this run and version.
    /// `note` receives why a checkpoint was passed over (unreadable, another version).
    /// The newest checkpoint that can continue a run of `config`; each one passed over
    /// (unreadable, or written by another engine or numerics) is said in a `note`, so a
    /// run is never stuck on a checkpoint it cannot use: with none left it starts afresh.
    pub fn latest(&self, config: &RunConfig, note: &mut dyn FnMut(String)) -> Option<Loaded> {
        for path in self.list().into_iter().rev() {
            let usable = self.load(&path).and_then(|(loaded, engine)| {
                crate::engine::accepts(config, &loaded.resume.engine, &engine)
                    .map_err(anyhow::Error::msg)?;
                Ok(loaded)
            });
            match usable {
                Ok(loaded) => return Some(loaded),
                Err(e) => note(format!("checkpoint {} not used: {e:#}", path.display())),
            }
        }
        None
    }

    /// A checkpoint and the engine identity that wrote it.
    fn load(&self, path: &Path) -> anyhow::Result<(Loaded, String)> {
        let read = |name: &str| {
            std::fs::read(path.join(name))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.join(name).display()))
        };
        let text = String::from_utf8(read(STATE_FILE)?)?;
        let state: StateFile = toml::from_str(&text)?;
        if state.run_id != self.run_id {
            anyhow::bail!("it belongs to run {}", state.run_id);
        }
        if state.aevb_version != crate::VERSION {
            anyhow::bail!(
                "written by aevb {} (this is {}), whose numbers may differ",
                state.aevb_version,
                crate::VERSION
            );
        }
        let files = read_files(path)?;
        let best_dir = path.join(BEST);
        let best = best_dir
            .is_dir()
            .then(|| read_files(&best_dir))
            .transpose()?;
        verify(path, &state.files, &files, best.as_ref())?;
        let engine = crate::engine::Saved::from_files(&files)?;
        let loaded = Loaded {
            resume: Resume {
                state: state.train,
                engine,
                best,
            },
            board: state.board,
            path: path.to_path_buf(),
        };
        Ok((loaded, state.engine))
    }

    /// Removes every checkpoint, and what a killed writer left half-done.
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Removes temporary folders left by a writer that was killed (the caller holds the
    /// run's claim, so no other process is writing one).
    pub fn remove_unfinished(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}
