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
    let available = available_memory_bytes().map(|b| b as f64);
    // Without /proc/meminfo, refuse only what no machine has (1 TiB).
    let limit = available.unwrap_or(f64::from(1u32 << 30) * 1024.0);
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
