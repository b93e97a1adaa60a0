//! `runs.parquet` and `epochs.parquet` replaced together, in one atomic step.
//!
//! Two files cannot be renamed into place at once, and a kill between two renames would pair
//! a new runs.parquet with an old epochs.parquet. So each rebuild writes both into a
//! generation folder of its own, and one symlink says which generation is current:
//!
//! ```text
//! runs.parquet   -> .tables/current/runs.parquet      (fixed once made)
//! epochs.parquet -> .tables/current/epochs.parquet
//! .tables/current -> g-<time>-<pid>                    (replaced by a rename: atomic)
//! .tables/g-<time>-<pid>/runs.parquet, epochs.parquet
//! ```
//!
//! Readers (pandas, polars, DuckDB) open the two names as files and follow the links; at
//! every moment they resolve to one generation's pair. A reader holding a file open keeps
//! reading it after the switch (the old generation is unlinked, not overwritten).

use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const DIR: &str = ".tables";
const CURRENT: &str = "current";
pub const RUNS: &str = "runs.parquet";
pub const EPOCHS: &str = "epochs.parquet";

/// The pair being written into a generation folder; `commit` makes it the current one.
/// Dropped without a commit (an error on the way), it removes its folder.
pub struct PairWriter {
    root: PathBuf,
    generation: PathBuf,
    runs: File,
    epochs: File,
    committed: bool,
}

impl PairWriter {
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let generation = root
            .join(DIR)
            .join(format!("g-{stamp}-{}", std::process::id()));
        std::fs::create_dir_all(&generation)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", generation.display()))?;
        let open = |name: &str| {
            File::create(generation.join(name))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", root.join(name).display()))
        };
        Ok(Self {
            runs: open(RUNS)?,
            epochs: open(EPOCHS)?,
            root: root.to_path_buf(),
            generation,
            committed: false,
        })
    }

    pub fn runs(&self) -> &File {
        &self.runs
    }

    pub fn epochs(&self) -> &File {
        &self.epochs
    }

    /// Makes both files durable and current together; removes older generations.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let result = (|| -> std::io::Result<()> {
            self.runs.sync_all()?;
            self.epochs.sync_all()?;
            sync_dir(&self.generation);
            adopt_plain_files(&self.root)?;
            let name = self.generation.file_name().expect("a generation folder");
            point(&self.root.join(DIR).join(CURRENT), Path::new(name))?;
            for file in [RUNS, EPOCHS] {
                if std::fs::symlink_metadata(self.root.join(file)).is_err() {
                    point(
                        &self.root.join(file),
                        &Path::new(DIR).join(CURRENT).join(file),
                    )?;
                }
            }
            sync_dir(&self.root);
            Ok(())
        })();
        self.committed = result.is_ok();
        result
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.root.join(RUNS).display()))?;
        remove_abandoned(&self.root);
        Ok(())
    }
}

impl Drop for PairWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.generation);
        }
    }
}

/// Makes `link` a symlink to `target`, replacing what is there in one rename.
fn point(link: &Path, target: &Path) -> std::io::Result<()> {
    let name = link.file_name().expect("a link name").to_string_lossy();
    let tmp = link.with_file_name(format!(".{name}.{}.link", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)?;
    sync_dir(link.parent().expect("a folder"));
    Ok(())
}

fn sync_dir(dir: &Path) {
    // Makes renames durable; not every file system supports it.
    let _ = File::open(dir).and_then(|d| d.sync_all());
}

/// Tables written before generations existed are plain files. They become a generation of
/// their own (hard links: no copy) and then links to it, one at a time; the pair readers
/// see is the old one throughout.
fn adopt_plain_files(root: &Path) -> std::io::Result<()> {
    let plain = |name: &str| {
        std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.file_type().is_file())
    };
    if !plain(RUNS) && !plain(EPOCHS) {
        return Ok(());
    }
    let old = root
        .join(DIR)
        .join(format!("adopted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    std::fs::create_dir_all(&old)?;
    for name in [RUNS, EPOCHS] {
        if plain(name) {
            std::fs::hard_link(root.join(name), old.join(name))?;
        }
    }
    sync_dir(&old);
    point(
        &root.join(DIR).join(CURRENT),
        Path::new(old.file_name().expect("a folder")),
    )?;
    for name in [RUNS, EPOCHS] {
        if plain(name) {
            point(&root.join(name), &Path::new(DIR).join(CURRENT).join(name))?;
        }
    }
    Ok(())
}

/// Removes every generation but the current one: what earlier rebuilds left and what a
/// writer killed mid-write left. Only safe while no other process is writing (the caller
/// holds the results folder's lock).
pub fn remove_abandoned(root: &Path) {
    let dir = root.join(DIR);
    let current = std::fs::read_link(dir.join(CURRENT)).ok();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let keep = name == CURRENT || current.as_deref() == Some(Path::new(&name));
        if !keep {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_pair(root: &Path, runs: &str, epochs: &str) {
        let pair = PairWriter::create(root).unwrap();
        pair.runs().write_all(runs.as_bytes()).unwrap();
        pair.epochs().write_all(epochs.as_bytes()).unwrap();
        pair.commit().unwrap();
    }

    fn read(root: &Path) -> (String, String) {
        (
            std::fs::read_to_string(root.join(RUNS)).unwrap(),
            std::fs::read_to_string(root.join(EPOCHS)).unwrap(),
        )
    }

    #[test]
    fn a_pair_replaces_the_last_one_and_leaves_one_generation() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "r1", "e1");
        assert_eq!(read(dir.path()), ("r1".into(), "e1".into()));
        write_pair(dir.path(), "r2", "e2");
        assert_eq!(read(dir.path()), ("r2".into(), "e2".into()));
        let generations = std::fs::read_dir(dir.path().join(DIR)).unwrap().count();
        assert_eq!(generations, 2, "current and the one it names");
    }

    #[test]
    fn an_uncommitted_pair_changes_nothing_and_plain_files_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RUNS), "old runs").unwrap();
        std::fs::write(dir.path().join(EPOCHS), "old epochs").unwrap();
        {
            let pair = PairWriter::create(dir.path()).unwrap();
            pair.runs().write_all(b"new").unwrap();
        }
        assert_eq!(read(dir.path()), ("old runs".into(), "old epochs".into()));
        write_pair(dir.path(), "r", "e");
        assert_eq!(read(dir.path()), ("r".into(), "e".into()));
        assert!(
            std::fs::symlink_metadata(dir.path().join(RUNS))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
