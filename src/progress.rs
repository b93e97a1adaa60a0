//! What a sweep shows while it works. On a terminal: an overall bar and one bar per active
//! run that moves with every minibatch and through the log p(x) estimate, with ETAs. Off a
//! terminal (logs, Slurm): a line per finished run, and per run a progress line at most
//! every `AEVB_PROGRESS_SECONDS` (default 30) seconds, so a long run is never silent.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sinks::results::{RunRecord, RunStatus};
use crate::spec::RunConfig;
use crate::train::EpochMetrics;

/// Environment variable: seconds between progress lines off a terminal (0: every epoch).
pub const PROGRESS_SECONDS_ENV: &str = "AEVB_PROGRESS_SECONDS";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The sweep's overall bar and the bars of its runs.
pub struct Progress {
    multi: MultiProgress,
    pub overall: ProgressBar,
    terminal: bool,
    interval: Duration,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(style(
            "{prefix:>12} [{bar:30}] {pos}/{len} runs, {elapsed} so far, ETA {eta}",
        ));
        overall.set_prefix("sweep");
        let seconds = std::env::var(PROGRESS_SECONDS_ENV)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(30.0);
        Self {
            multi,
            overall,
            terminal,
            interval: Duration::from_secs_f64(seconds),
        }
    }

    /// A run starts: its bar covers the whole run, training and the final estimate.
    pub fn run(&self, label: &str, work: RunWork) -> RunProgress {
        let total = (work.epochs * work.examples_per_epoch).max(1) as u64;
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(style("{prefix:>12} [{bar:30}] {percent:>3}% {msg}"));
        bar.set_prefix(label.to_string());
        bar.set_message(format!("epoch 1/{}", work.epochs));
        let now = Instant::now();
        RunProgress {
            bar,
            terminal: self.terminal,
            interval: self.interval,
            label: label.to_string(),
            work,
            eval_seconds_per_row: Cell::new(None),
            epochs_before: Cell::new(None),
            phase_start: Cell::new(now),
            last_line: Cell::new(now),
        }
    }

    /// One line per finished run, with the reason when it failed or diverged.
    pub fn finished(&self, r: &RunRecord) {
        self.overall.inc(1);
        let mut line = format!(
            "{:<9} {} ({}): test ELBO {} nats, log p(x) {} nats, {:.1} s",
            r.status.as_str(),
            r.label,
            r.run_id,
            fmt_opt(r.test_elbo),
            fmt_opt(r.test_log_px),
            r.wall_seconds
        );
        if let (Some(e), RunStatus::Failed | RunStatus::Diverged) = (&r.error, r.status) {
            let short: String = e.chars().take(300).collect();
            line = format!("{line}\n          {short}");
        }
        self.print(line);
    }

    fn print(&self, line: String) {
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// What one run will do: the sizes its whole-run ETA is made of.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunWork {
    pub epochs: usize,
    pub examples_per_epoch: usize,
    /// Rows of the test ELBO evaluated after an epoch (its test examples).
    pub test_rows: usize,
    /// Rows of the final log p(x) estimate: examples × K.
    pub final_rows: u64,
}

impl RunWork {
    pub fn of(config: &RunConfig, train_rows: usize, test_rows: usize) -> Self {
        let examples = config
            .eval
            .log_px_examples
            .unwrap_or(test_rows)
            .min(test_rows);
        Self {
            epochs: config.train.epochs,
            examples_per_epoch: train_rows,
            test_rows,
            final_rows: examples as u64 * config.eval.importance_samples as u64,
        }
    }
}

/// One run's progress: training (by examples seen), then the log p(x) estimate, with one
/// ETA for all of it: the training left at the rate so far, plus the estimate's rows at
/// the rate the per-epoch test evaluations ran (the same forward passes, one sample each).
pub struct RunProgress {
    bar: ProgressBar,
    terminal: bool,
    interval: Duration,
    label: String,
    work: RunWork,
    /// Seconds per evaluated row, measured on the epochs' test evaluations.
    eval_seconds_per_row: Cell<Option<f64>>,
    /// Epochs an earlier attempt had done (a resumed run): the rate so far is this
    /// attempt's, so the ETA counts only the epochs done since it started.
    epochs_before: Cell<Option<usize>>,
    phase_start: Cell<Instant>,
    last_line: Cell<Instant>,
}

impl RunProgress {
    pub fn batch(&self, examples_seen: u64) {
        self.bar.set_position(examples_seen);
    }

    pub fn epoch(&self, m: &EpochMetrics) {
        self.bar.set_position(m.examples_seen);
        if m.test_elbo.is_some() && self.work.test_rows > 0 {
            let seconds = (m.seconds - m.train_pass_seconds).max(0.0);
            self.eval_seconds_per_row
                .set(Some(seconds / self.work.test_rows as f64));
        }
        let elbo = match m.test_elbo {
            Some(e) => format!("test ELBO {e:.2}"),
            None => format!("train ELBO {:.2}", m.train_elbo),
        };
        let epochs = self.work.epochs;
        let before = match self.epochs_before.get() {
            Some(b) => b,
            None => {
                let b = m.epoch.saturating_sub(1);
                self.epochs_before.set(Some(b));
                b
            }
        };
        let done = fraction_done(m.epoch, before, epochs);
        let training_left = if done >= 1.0 {
            Some(0.0)
        } else {
            left_seconds(self.phase_start.get().elapsed(), done)
        };
        let final_seconds = self.final_seconds();
        let left = training_left
            .map(|t| t + final_seconds.unwrap_or(0.0))
            .filter(|&l| l > 0.0);
        let what = if final_seconds.is_some() {
            "with log p(x)"
        } else {
            "training"
        };
        // The bar names the epoch in progress; the numbers are those of the one just done.
        let status = if m.epoch < epochs {
            format!("epoch {}/{epochs} (epoch {}: {elbo})", m.epoch + 1, m.epoch)
        } else {
            format!("epoch {}/{epochs}: {elbo}", m.epoch)
        };
        let eta = left.map(|l| format!(", ETA {} {what}", duration_text(l)));
        self.bar
            .set_message(format!("{status}{}", eta.clone().unwrap_or_default()));
        if self.line_due() {
            eprintln!(
                "  {}: epoch {}/{epochs}, {elbo} nats, {:.1} s/epoch{}",
                self.label,
                m.epoch,
                m.seconds,
                eta.unwrap_or_default()
            );
        }
    }

    /// The final estimate's predicted seconds, once an epoch's test evaluation was timed.
    fn final_seconds(&self) -> Option<f64> {
        self.eval_seconds_per_row
            .get()
            .map(|s| s * self.work.final_rows as f64)
    }

    /// The final log p(x) estimate starts: `examples` test examples, K samples each.
    pub fn evaluation_start(&self, examples: usize, k: usize) {
        self.bar.set_length(examples.max(1) as u64);
        self.bar.reset();
        self.bar
            .set_message(format!("log p(x), K = {k}, {examples} examples"));
        self.phase_start.set(Instant::now());
        if !self.terminal {
            eprintln!(
                "  {}: estimating log p(x) with K = {k} on {examples} test examples",
                self.label
            );
            self.last_line.set(Instant::now());
        }
    }

    pub fn evaluation(&self, done: usize, examples: usize) {
        self.bar.set_position(done as u64);
        let left = left_seconds(
            self.phase_start.get().elapsed(),
            done as f64 / examples.max(1) as f64,
        );
        let eta = left
            .map(|l| format!(", ETA {}", duration_text(l)))
            .unwrap_or_default();
        self.bar
            .set_message(format!("log p(x) {done}/{examples} examples{eta}"));
        if self.line_due() {
            eprintln!("  {}: log p(x) {done}/{examples} examples{eta}", self.label);
        }
    }

    /// A line about this run (resumed from a checkpoint, a checkpoint passed over).
    pub fn note(&self, line: &str) {
        let line = format!("  {}: {line}", self.label);
        if self.terminal {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Off a terminal, whether the interval since the last line has passed (and restart it).
    fn line_due(&self) -> bool {
        if self.terminal || self.last_line.get().elapsed() < self.interval {
            return false;
        }
        self.last_line.set(Instant::now());
        true
    }
}

/// Seconds left of a phase from the time it took so far and the fraction of it done.
/// The share of this attempt's epochs done after `epoch` (1-based), when an earlier attempt
/// had done `before` of all `epochs`.
fn fraction_done(epoch: usize, before: usize, epochs: usize) -> f64 {
    epoch.saturating_sub(before) as f64 / epochs.saturating_sub(before).max(1) as f64
}

fn left_seconds(elapsed: Duration, fraction: f64) -> Option<f64> {
    (fraction > 0.0 && fraction < 1.0).then(|| elapsed.as_secs_f64() * (1.0 - fraction) / fraction)
}

/// "30 s", "10 min", "1.5 h".
fn duration_text(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}

pub fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_extrapolates_the_rate_so_far() {
        assert_eq!(left_seconds(Duration::from_secs(10), 0.25), Some(30.0));
        assert_eq!(left_seconds(Duration::from_secs(5), 0.0), None);
        assert_eq!(left_seconds(Duration::from_secs(5), 1.0), None);
        // A run resumed after 266 of 3,280 epochs has done 1 of 3,014 after epoch 267, not
        // 267 of 3,280 (which made a 2.2-hour remainder read as one hour).
        assert_eq!(fraction_done(267, 266, 3280), 1.0 / 3014.0);
        assert_eq!(fraction_done(1, 0, 4), 0.25);
        assert_eq!(duration_text(30.0), "30 s");
        assert_eq!(duration_text(600.0), "10 min");
        assert_eq!(duration_text(5400.0), "1.5 h");
    }

    #[test]
    fn the_run_eta_includes_the_final_estimate_and_names_the_epoch_in_progress() {
        let progress = Progress::new(1);
        let work = RunWork {
            epochs: 4,
            examples_per_epoch: 100,
            test_rows: 10,
            final_rows: 10 * 1000,
        };
        let bar = progress.run("r", work);
        let metrics = EpochMetrics {
            epoch: 1,
            examples_seen: 100,
            test_elbo: Some(-1.0),
            seconds: 2.0,
            train_pass_seconds: 1.0,
            ..Default::default()
        };
        bar.epoch(&metrics);
        // 1 s of evaluation for 10 rows: the 10,000 final rows take 1,000 s.
        assert_eq!(bar.final_seconds(), Some(1000.0));
        let message = bar.bar.message();
        assert!(
            message.starts_with("epoch 2/4 (epoch 1: test ELBO -1.00)"),
            "{message}"
        );
        assert!(message.contains("with log p(x)"), "{message}");
    }
}
