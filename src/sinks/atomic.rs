//! Files that are either the old version or the whole new one, even after a kill -9 or a
//! power cut: written to a temporary name beside the target (unique per process and call, so
//! concurrent writers never share one), fsynced, renamed over the target, folder fsynced.

use std::fs::File;
use std::path::{Path, PathBuf};

/// A file being written under a temporary name; `commit` puts it in place. Dropped without
/// a commit (an error on the way), it removes its temporary file.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    committed: bool,
}

/// Temporary files start with this and end with `.tmp`: `.{name}.{pid}.{n}.tmp`.
fn temporary_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl AtomicFile {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(temporary_name(&name));
        let file = File::create(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file,
            committed: false,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Makes the contents durable and puts them in place of the target.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let result = (|| -> std::io::Result<()> {
            self.file.sync_all()?;
            std::fs::rename(&self.tmp, &self.path)?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // Makes the rename itself durable; not every filesystem supports it.
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(())
        })();
        self.committed = result.is_ok();
        result.map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.path.display()))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically. Errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |file| {
        use std::io::Write;
        file.write_all(bytes)?;
        Ok(())
    })
}

/// Writes `path` atomically with what `fill` writes into the open temporary file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out = AtomicFile::create(path)?;
    fill(&mut out.file).map_err(|e| anyhow::anyhow!("cannot write {}: {e:#}", path.display()))?;
    out.commit()
}

/// Removes the temporary files that writers of `target` killed mid-write left beside it
/// (a kill -9 runs no destructor). Only safe while no other process can be writing it:
/// the caller holds the lock that serialises its writers.
pub fn remove_abandoned_temporaries(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_file_leaves_the_old_contents_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        write_atomic(&path, b"old").unwrap();
        {
            use std::io::Write;
            let out = AtomicFile::create(&path).unwrap();
            out.file().write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let out = AtomicFile::create(&path).unwrap();
        {
            use std::io::Write;
            out.file().write_all(b"new").unwrap();
        }
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn abandoned_temporaries_of_one_target_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("runs.parquet");
        for name in [
            ".runs.parquet.123.0.tmp",
            ".epochs.parquet.123.0.tmp",
            "runs.parquet",
            ".runs.parquet.keep",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_abandoned_temporaries(&target);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".epochs.parquet.123.0.tmp",
                ".runs.parquet.keep",
                "runs.parquet"
            ]
        );
    }
}
