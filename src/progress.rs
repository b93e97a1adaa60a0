//! What a sweep shows while it works. On a terminal: an overall bar and one bar per active
//! run that moves with every minibatch and through the log p(x) estimate, with ETAs. Off a
//! terminal (logs, Slurm): a line per finished run, and per run a progress line at most
//! every `AEVB_PROGRESS_SECONDS` (default 30) seconds, so a long run is never silent.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sinks::results::{RunRecord, RunStatus};
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
        overall.set_style(style("{prefix:>12} [{bar:30}] {pos}/{len} runs, {elapsed}"));
        overall.set_prefix("sweep");
        if terminal {
            overall.enable_steady_tick(Duration::from_millis(500));
        }
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

    /// A run of `epochs` epochs over `examples_per_epoch` training examples starts.
    pub fn run(&self, label: &str, epochs: usize, examples_per_epoch: usize) -> RunProgress {
        let total = (epochs * examples_per_epoch).max(1) as u64;
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(style(
            "{prefix:>12} [{bar:30}] {percent:>3}% ETA {eta:<4} {msg}",
        ));
        bar.set_prefix(label.to_string());
        bar.set_message(format!("epoch 1/{epochs}"));
        let now = Instant::now();
        RunProgress {
            bar,
            terminal: self.terminal,
            interval: self.interval,
            label: label.to_string(),
            epochs,
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

/// One run's progress: training (by examples seen), then the log p(x) estimate.
pub struct RunProgress {
    bar: ProgressBar,
    terminal: bool,
    interval: Duration,
    label: String,
    epochs: usize,
    phase_start: Cell<Instant>,
    last_line: Cell<Instant>,
}

impl RunProgress {
    pub fn batch(&self, examples_seen: u64) {
        self.bar.set_position(examples_seen);
    }

    pub fn epoch(&self, m: &EpochMetrics) {
        self.bar.set_position(m.examples_seen);
        let elbo = match m.test_elbo {
            Some(e) => format!("test ELBO {e:.2}"),
            None => format!("train ELBO {:.2}", m.train_elbo),
        };
        self.bar
            .set_message(format!("epoch {}/{}, {elbo}", m.epoch, self.epochs));
        if self.line_due() {
            let left = eta(
                self.phase_start.get().elapsed(),
                m.epoch as f64 / self.epochs.max(1) as f64,
            );
            eprintln!(
                "  {}: epoch {}/{}, {elbo} nats, {:.1} s/epoch{left}",
                self.label, m.epoch, self.epochs, m.seconds
            );
        }
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
        if self.line_due() {
            let left = eta(
                self.phase_start.get().elapsed(),
                done as f64 / examples.max(1) as f64,
            );
            eprintln!(
                "  {}: log p(x) {done}/{examples} examples{left}",
                self.label
            );
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

/// ", about N left" from the time a phase took so far and the fraction of it done.
fn eta(elapsed: Duration, fraction: f64) -> String {
    if !(fraction > 0.0 && fraction < 1.0) {
        return String::new();
    }
    let left = elapsed.as_secs_f64() * (1.0 - fraction) / fraction;
    let text = if left >= 3600.0 {
        format!("{:.1} h", left / 3600.0)
    } else if left >= 60.0 {
        format!("{:.0} min", left / 60.0)
    } else {
        format!("{left:.0} s")
    };
    format!(", about {text} left")
}

pub fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_extrapolates_the_rate_so_far() {
        assert_eq!(eta(Duration::from_secs(10), 0.25), ", about 30 s left");
        assert_eq!(eta(Duration::from_secs(600), 0.5), ", about 10 min left");
        assert_eq!(eta(Duration::from_secs(3600), 0.5), ", about 1.0 h left");
        assert_eq!(eta(Duration::from_secs(5), 0.0), "");
        assert_eq!(eta(Duration::from_secs(5), 1.0), "");
    }
}
