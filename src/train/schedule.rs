//! The learning rate over a run's epochs.

use crate::spec::{LrSchedule, TrainConfig};

/// Learning rate of a (0-based) epoch.
pub fn lr_at(t: &TrainConfig, epoch: usize) -> f64 {
    match t.lr_schedule {
        LrSchedule::Constant => t.lr,
        LrSchedule::Burda => {
            // Stage i lasts 3^i epochs at lr · 10^(−i/7), i = 0..=7.
            let mut end = 0;
            for i in 0..=7u32 {
                end += 3usize.pow(i);
                if epoch < end {
                    return t.lr * 10f64.powf(-(i as f64) / 7.0);
                }
            }
            t.lr * 10f64.powf(-1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burda_schedule_has_3280_epochs_in_eight_stages() {
        let t = TrainConfig {
            lr: 1e-3,
            lr_schedule: LrSchedule::Burda,
            ..TrainConfig::default()
        };
        assert_eq!(lr_at(&t, 0), 1e-3);
        assert!((lr_at(&t, 1) - 1e-3 * 10f64.powf(-1.0 / 7.0)).abs() < 1e-15);
        assert!((lr_at(&t, 3) - lr_at(&t, 1)).abs() < 1e-18);
        assert!(lr_at(&t, 4) < lr_at(&t, 3));
        // 1 + 3 + ... + 3^7 = 3280: the last stage runs at 1e-3 · 10^(−1).
        assert!((lr_at(&t, 3279) - 1e-3 * 10f64.powf(-1.0)).abs() < 1e-15);
        assert!(lr_at(&t, 3279) < lr_at(&t, 1092));
    }
}
