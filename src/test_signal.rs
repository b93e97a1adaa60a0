//! A signal the process sends itself at an exact point, for tests that must stop a run
//! there (kill -9 after a given minibatch, SIGTERM mid-epoch, SIGSTOP once N runs have
//! finished) instead of sleeping and hoping to land there.
//!
//! `AEVB_TEST_SIGNAL="epoch=E,step=M,signal=KILL"`: after minibatch M (1-based) of epoch E
//! (1-based) of a run; `"runs=N,signal=STOP"`: once N runs of the sweep have their record;
//! `"evaluated=N,signal=KILL"`: once the final log p(x) estimate of a run has N examples done
//! (and its progress saved, where saving is due); `"rebuild=N,signal=KILL"`: during the
//! process's N-th rebuild of the tables, once their first batch of runs is written (both
//! files half-written in their generation folder); `"tables=N,signal=KILL"`: in the N-th
//! rebuild, once both files are whole and before they are made current; `"chunks=N"`: once
//! the process has taken N chunks of samples of a log p(x) estimate (inside a block);
//! `"phase=P"`: as the final evaluation's phase P begins (`evaluation`: training is done;
//! `log_px`: the ELBO terms are saved; `metrics`: the estimate is saved; `record`: all is
//! evaluated and saved, the record not yet written).
//! Signals: TERM, KILL, STOP, INT. It fires at most once per process. Unset (always, outside
//! tests), it costs one load per minibatch.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub const TEST_SIGNAL_ENV: &str = "AEVB_TEST_SIGNAL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Step { epoch: usize, step: usize },
    RunsFinished(usize),
    Evaluated(usize),
    Rebuild(usize),
    TablesWritten(usize),
    Chunks(usize),
    Phase(Phase),
}

/// The phases of a run's final evaluation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Evaluation,
    LogPx,
    Metrics,
    Record,
}

impl Phase {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "evaluation" => Self::Evaluation,
            "log_px" => Self::LogPx,
            "metrics" => Self::Metrics,
            "record" => Self::Record,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Planned {
    point: Point,
    signal: libc::c_int,
}

fn parse(text: &str) -> Option<Planned> {
    let mut fields = std::collections::BTreeMap::new();
    for part in text.split(',') {
        let (k, v) = part.split_once('=')?;
        fields.insert(k.trim(), v.trim());
    }
    let number = |k: &str| fields.get(k).and_then(|v| v.parse::<usize>().ok());
    let keys = fields.len() - usize::from(fields.contains_key("signal"));
    let point = match keys {
        2 => Point::Step {
            epoch: number("epoch")?,
            step: number("step")?,
        },
        1 => {
            let (key, value) = fields.iter().find(|(k, _)| **k != "signal")?;
            match *key {
                "runs" => Point::RunsFinished(number(key)?),
                "evaluated" => Point::Evaluated(number(key)?),
                "rebuild" => Point::Rebuild(number(key)?),
                "tables" => Point::TablesWritten(number(key)?),
                "chunks" => Point::Chunks(number(key)?),
                "phase" => Point::Phase(Phase::parse(value)?),
                _ => return None,
            }
        }
        _ => return None,
    };
    let signal = match *fields.get("signal")? {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "STOP" => libc::SIGSTOP,
        "INT" => libc::SIGINT,
        _ => return None,
    };
    Some(Planned { point, signal })
}

fn planned() -> Option<Planned> {
    static PLANNED: OnceLock<Option<Planned>> = OnceLock::new();
    *PLANNED.get_or_init(|| {
        let text = std::env::var(TEST_SIGNAL_ENV).ok()?;
        let planned = parse(&text);
        if planned.is_none() {
            eprintln!("warning: {TEST_SIGNAL_ENV}={text} is not understood; ignored");
        }
        planned
    })
}

fn fire_at(point: Point) {
    fire_when(|planned| planned == point);
}

fn fire_when(reached: impl Fn(Point) -> bool) {
    static FIRED: AtomicBool = AtomicBool::new(false);
    let Some(p) = planned() else { return };
    if reached(p.point) && !FIRED.swap(true, Ordering::SeqCst) {
        // To this thread: a handled signal (TERM, INT) then runs before `raise` returns,
        // so the loop sees it at this very minibatch; KILL and STOP act on the process.
        // SAFETY: raising a signal in our own thread.
        unsafe {
            libc::raise(p.signal);
        }
    }
}

/// Minibatch `step` (1-based) of epoch `epoch` (1-based) has just been taken.
pub fn after_step(epoch: usize, step: usize) {
    if planned().is_some() {
        fire_at(Point::Step { epoch, step });
    }
}

/// `n` runs of the sweep have their record.
pub fn after_runs_finished(n: usize) {
    if planned().is_some() {
        fire_at(Point::RunsFinished(n));
    }
}

/// The final evaluation has `done` examples of its log p(x) estimate (fires at the first
/// point at or past the planned count: progress moves in groups of blocks).
pub fn after_evaluated(done: usize) {
    if planned().is_some() {
        fire_when(|planned| matches!(planned, Point::Evaluated(n) if done >= n));
    }
}

static CHUNKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A log p(x) estimate has taken one more chunk of samples (on any of its threads).
pub fn after_estimate_chunk() {
    if planned().is_some() {
        let n = CHUNKS.fetch_add(1, Ordering::SeqCst) + 1;
        fire_at(Point::Chunks(n));
    }
}

/// A phase of the final evaluation begins.
pub fn at_phase(phase: Phase) {
    if planned().is_some() {
        fire_at(Point::Phase(phase));
    }
}

static REBUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A rebuild of the tables has begun.
pub fn table_rebuild_started() {
    REBUILDS.fetch_add(1, Ordering::SeqCst);
}

/// The rebuild in progress has written both tables whole, and not yet made them current.
pub fn tables_written() {
    if planned().is_some() {
        let n = REBUILDS.load(Ordering::SeqCst);
        fire_at(Point::TablesWritten(n));
    }
}

/// The rebuild in progress has written a batch of runs into both tables.
pub fn during_table_rebuild() {
    if planned().is_some() {
        let n = REBUILDS.load(Ordering::SeqCst);
        fire_at(Point::Rebuild(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_signals_parse_and_nonsense_does_not() {
        assert_eq!(
            parse("epoch=2,step=10,signal=TERM"),
            Some(Planned {
                point: Point::Step { epoch: 2, step: 10 },
                signal: libc::SIGTERM
            })
        );
        assert_eq!(
            parse("runs=2, signal=KILL"),
            Some(Planned {
                point: Point::RunsFinished(2),
                signal: libc::SIGKILL
            })
        );
        assert_eq!(
            parse("evaluated=64,signal=KILL").map(|p| p.point),
            Some(Point::Evaluated(64))
        );
        assert_eq!(
            parse("rebuild=3,signal=KILL").map(|p| p.point),
            Some(Point::Rebuild(3))
        );
        assert_eq!(
            parse("tables=2,signal=KILL").map(|p| p.point),
            Some(Point::TablesWritten(2))
        );
        assert_eq!(
            parse("chunks=3,signal=TERM").map(|p| p.point),
            Some(Point::Chunks(3))
        );
        assert_eq!(
            parse("phase=metrics,signal=KILL").map(|p| p.point),
            Some(Point::Phase(Phase::Metrics))
        );
        assert_eq!(parse("phase=lunch,signal=KILL"), None);
        assert_eq!(parse("epoch=2,signal=TERM"), None);
        assert_eq!(parse("epoch=2,runs=1,signal=TERM"), None);
        assert_eq!(parse("runs=1,signal=HUP"), None);
        assert_eq!(parse("runs=1,epoch=2,step=1,signal=KILL"), None);
    }
}
