//! Several `runner sweep` processes may share one results folder (two terminals, a Slurm
//! array on a shared filesystem). A run is trained by the process that holds its claim, an
//! exclusive `flock` on `runs/<id>/.claim`; the folder lock `.lock` serialises the
//! read-everything-then-rewrite steps (the Parquet tables, the HParams record), so that no
//! writer replaces a table with a view older than another writer's.
//!
//! `flock` locks belong to the open file: the kernel drops them when the holder exits,
//! however it exits (kill -9 included), so a dead holder never blocks anyone.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

/// A held lock; released when dropped (or when the process ends).
pub struct Lock {
    _file: File,
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

#[cfg(unix)]
fn flock(file: &File, blocking: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let op = libc::LOCK_EX | if blocking { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: flock on a file descriptor we own, open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn flock(_file: &File, _blocking: bool) -> std::io::Result<bool> {
    Ok(true)
}

/// The exclusive claim on a run, or `None` when another process holds it now.
pub fn try_claim(path: &Path) -> anyhow::Result<Option<Lock>> {
    let file = open(path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let held =
        flock(&file, false).map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
    Ok(held.then_some(Lock { _file: file }))
}

/// Waits for an exclusive lock.
pub fn lock(path: &Path) -> anyhow::Result<Lock> {
    let file = open(path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    flock(&file, true).map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_excludes_others_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/abc/.claim");
        let first = try_claim(&path).unwrap();
        assert!(first.is_some());
        // A second open file description is a second holder, as another process would be.
        assert!(try_claim(&path).unwrap().is_none());
        drop(first);
        assert!(try_claim(&path).unwrap().is_some());
    }
}
