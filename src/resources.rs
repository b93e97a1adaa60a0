//! What the machine can give a run: memory, checked before large allocations, because a
//! failed allocation aborts the whole process (every other run of the sweep with it) and
//! cannot be caught.

/// Bytes of memory available to new allocations now (Linux: `MemAvailable`), if known.
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `Err` with a message when `bytes` (an estimate, as f64 so that absurd sizes cannot
/// overflow) exceeds the memory available now.
pub fn ensure_fits(bytes: f64, what: &str) -> Result<(), String> {
    let limit = memory_limit_bytes();
    if bytes.is_finite() && bytes <= limit {
        Ok(())
    } else {
        Err(format!(
            "{what} needs about {} of memory, but {} is available; make it smaller",
            human_bytes(bytes),
            human_bytes(limit)
        ))
    }
}

/// The bytes a new allocation may take: what is available now, or without /proc/meminfo
/// what no machine has (1 TiB), so that only that is refused.
pub fn memory_limit_bytes() -> f64 {
    available_memory_bytes().map_or(f64::from(1u32 << 30) * 1024.0, |b| b as f64)
}

/// Bytes free to this user on the file system holding `path` (the nearest existing folder
/// above it), if known.
pub fn free_disk_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is a plain C struct of integers, for which all zeroes is a value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statvfs for the call to fill.
    let ok = unsafe { libc::statvfs(c.as_ptr(), &mut stat) } == 0;
    ok.then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Whether an error's text says the disk is full (ENOSPC).
pub fn is_disk_full(message: &str) -> bool {
    message.contains("(os error 28)")
}

pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    for unit in UNITS {
        if v < 1024.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    format!("{bytes:.3e} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_and_small_ones_fit() {
        assert!(ensure_fits(1e6, "a small model").is_ok());
        let err = ensure_fits(6.4e13, "a huge model").unwrap_err();
        assert!(err.contains("a huge model needs about 58.2 TiB"), "{err}");
        assert!(ensure_fits(f64::INFINITY, "x").is_err());
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
    }
}
