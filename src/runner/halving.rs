//! Successive halving (Jamieson & Talwalkar 2016; the synchronous form of Li et al.'s ASHA)
//! over a sweep's runs, with VAE-aware stopping. Rung k trains every run still in to
//! min_epochs·η^k epochs (the last rung to `train.epochs`) and pauses it there
//! (checkpointed, its test and validation ELBO and active units in `rung-<epoch>.json`); a run with fewer
//! active units than `min_active_units` has collapsed and is stopped there whatever its
//! ELBO, a diverged one is recorded as diverged, and of the rest the best 1/η (rounded up;
//! ties to the smaller run id) go on, continuing from their checkpoints, so a run that
//! reaches the end has the numbers of the same run trained straight through. The others
//! end at the rung: their final evaluation runs there and their row says why
//! (`stop_reason`). Rungs are synchronous so that a promotion depends on the rung's results
//! alone, never on the order runs finished in: a rerun (or a resumed search) makes the same
//! decisions from the same files. So do N processes on one folder (`--shard I/N`): each
//! trains its shard of every wave, then waits for the wave's other runs (taking over any
//! that no process holds, as after a kill), and ranks the whole rung as a single process
//! would; no server, no messages, only the results folder and its per-run claims.

use std::path::Path;

use crate::launch::shard::{self, Shard};
use crate::prepare::Prepared;
use crate::sinks::results::ResultsDir;
use crate::spec::{HalvingConfig, Spec};
use crate::sweep::PlannedRun;
use crate::train::EpochLimit;

use super::rung::RungResult;
use super::{SweepSummary, run_sweep};

/// The epochs of each rung: min, min·η, … below `epochs`, then `epochs`.
pub fn rung_epochs(halving: &HalvingConfig, epochs: usize) -> Vec<usize> {
    let mut rungs = Vec::new();
    let mut r = halving.min_epochs.max(1);
    while r < epochs {
        rungs.push(r);
        r = r.saturating_mul(halving.reduction.max(2));
    }
    rungs.push(epochs);
    rungs
}

/// The most epochs successive halving trains `runs` runs for (none collapsing or
/// diverging), against `runs·epochs` for the sweep trained through.
pub fn epoch_budget(halving: &HalvingConfig, runs: usize, epochs: usize) -> usize {
    let mut total = 0;
    let mut alive = runs;
    let mut before = 0;
    for r in rung_epochs(halving, epochs) {
        total += alive * (r - before);
        before = r;
        alive = alive.div_ceil(halving.reduction.max(2));
    }
    total
}

/// What every wave needs: where, how, and which shard this process is.
pub struct Halving<'a> {
    pub spec: &'a Spec,
    pub halving: &'a HalvingConfig,
    pub results_root: &'a Path,
    pub workers: usize,
    pub force: bool,
    pub prepared: &'a Prepared,
    pub experiments_commit: Option<&'a str>,
    pub shard: Option<Shard>,
}

impl Halving<'_> {
    /// Trains this process's part of `wave`, then (sharded) waits until every run of it is
    /// done: paused at `rung` (its rung file) or recorded; runs no process holds are taken
    /// over.
    fn train_wave(
        &self,
        wave: &[PlannedRun],
        rung: Option<usize>,
        first: bool,
    ) -> anyhow::Result<SweepSummary> {
        let out = ResultsDir::new(self.results_root, &self.spec.name);
        let mine = match self.shard {
            Some(s) => shard::select(wave, s),
            None => wave.to_vec(),
        };
        let sweep = |runs: &[PlannedRun], force: bool| {
            run_sweep(
                self.spec,
                runs,
                self.results_root,
                self.workers,
                force,
                self.prepared,
                self.experiments_commit,
            )
        };
        let mut summary = sweep(&mine, self.force && first)?;
        if self.shard.is_none() {
            return Ok(summary);
        }
        let done = |run: &PlannedRun| {
            out.record(&run.id).is_some()
                || rung.is_some_and(|r| RungResult::read(&out.run_dir(&run.id), r).is_some())
        };
        loop {
            if summary.write_error.is_some() || crate::interrupt::requested() {
                return Ok(summary);
            }
            let missing: Vec<PlannedRun> = wave.iter().filter(|r| !done(r)).cloned().collect();
            if missing.is_empty() {
                return Ok(summary);
            }
            // Runs another process holds are left to it (its claims); the rest are ours now.
            let more = sweep(&missing, false)?;
            let waiting = !more.elsewhere.is_empty();
            absorb(&mut summary, more);
            if !waiting {
                return Ok(summary);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

/// Runs the search; its summary counts every run of it by the status of its row at the end
/// (a wave sees finished runs again, and a shard sees the others' runs, so the waves' own
/// counts would count runs more than once), with those finished before it as skipped.
pub fn run_halving(h: &Halving<'_>, runs: &[PlannedRun]) -> anyhow::Result<SweepSummary> {
    let (spec, halving) = (h.spec, h.halving);
    let out = ResultsDir::new(h.results_root, &spec.name);
    let finished_before = runs
        .iter()
        .filter(|r| !h.force && out.record(&r.id).is_some())
        .count();
    let epochs = runs.first().map_or(0, |r| r.config.train.epochs);
    let rungs = rung_epochs(halving, epochs);
    let mut alive: Vec<PlannedRun> = runs.to_vec();
    let mut total = SweepSummary::default();
    for (k, &r) in rungs.iter().enumerate() {
        let last = k + 1 == rungs.len();
        let wave: Vec<PlannedRun> = alive
            .iter()
            .map(|run| PlannedRun {
                limit: (!last).then_some(EpochLimit::Pause(r)),
                ..run.clone()
            })
            .collect();
        eprintln!(
            "{}: rung {} of {}: {} runs to {r} epochs",
            spec.name,
            k + 1,
            rungs.len(),
            wave.len()
        );
        let summary = h.train_wave(&wave, (!last).then_some(r), k == 0)?;
        let stop = summary.write_error.is_some() || !summary.interrupted.is_empty();
        absorb(&mut total, summary);
        if stop || last {
            break;
        }
        let (kept, stops) = rank_rung(&out, &alive, r, k, halving);
        if !stops.is_empty() {
            let summary = h.train_wave(&stops, None, false)?;
            let stop = summary.write_error.is_some() || !summary.interrupted.is_empty();
            absorb(&mut total, summary);
            if stop {
                break;
            }
        }
        alive = kept;
        if alive.is_empty() {
            break;
        }
    }
    total.skipped = finished_before;
    for record in runs.iter().filter_map(|r| out.record(&r.id)) {
        total.count(record.status);
    }
    Ok(total)
}

/// Ranks the runs that reached rung `k` (at `r` epochs) by validation ELBO (test ELBO
/// where they have no validation set): the best
/// 1/reduction go on; the rest, and the collapsed ones, get a stop there with the reason.
fn rank_rung(
    out: &ResultsDir,
    alive: &[PlannedRun],
    r: usize,
    k: usize,
    halving: &HalvingConfig,
) -> (Vec<PlannedRun>, Vec<PlannedRun>) {
    // Rank what reached the rung; collapsed and diverged runs do not compete.
    let mut ranked: Vec<(&PlannedRun, RungResult)> = Vec::new();
    let mut collapsed: Vec<(&PlannedRun, RungResult)> = Vec::new();
    for run in alive {
        let Some(rung) = RungResult::read(&out.run_dir(&run.id), r) else {
            // No rung file: the run diverged or failed before the rung (its row says so).
            continue;
        };
        if rung.active_units < halving.min_active_units {
            collapsed.push((run, rung));
        } else {
            ranked.push((run, rung));
        }
    }
    ranked.sort_by(|a, b| {
        (b.1.ranked_by().0)
            .total_cmp(&a.1.ranked_by().0)
            .then_with(|| a.0.id.cmp(&b.0.id))
    });
    let keep = ranked.len().div_ceil(halving.reduction.max(2));
    let n = ranked.len();
    let mut stops: Vec<PlannedRun> = Vec::new();
    for (i, (run, rung)) in ranked.iter().enumerate().skip(keep) {
        let (elbo, set) = rung.ranked_by();
        stops.push(PlannedRun {
            limit: Some(EpochLimit::Stop {
                epoch: r,
                reason: format!(
                    "halving: rank {} of {n} by {set} ELBO ({elbo:.4}) at rung {} ({r} epochs); the best {keep} went on",
                    i + 1,
                    k + 1
                ),
            }),
            ..(*run).clone()
        });
    }
    for (run, rung) in &collapsed {
        stops.push(PlannedRun {
            limit: Some(EpochLimit::Stop {
                epoch: r,
                reason: format!(
                    "collapsed: {} active latent units at rung {} ({r} epochs), fewer than {}",
                    rung.active_units,
                    k + 1,
                    halving.min_active_units
                ),
            }),
            ..(*run).clone()
        });
    }
    let kept = ranked[..keep]
        .iter()
        .map(|(run, _)| (*run).clone())
        .collect();
    (kept, stops)
}

/// Adds what one wave says beyond its counts (which [`run_halving`] takes from the rows).
fn absorb(total: &mut SweepSummary, wave: SweepSummary) {
    total.missing.extend(wave.missing);
    total.elsewhere.extend(wave.elsewhere);
    total.interrupted.extend(wave.interrupted);
    if total.write_error.is_none() {
        total.write_error = wave.write_error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halving(min: usize, eta: usize) -> HalvingConfig {
        HalvingConfig {
            min_epochs: min,
            reduction: eta,
            metric: Default::default(),
            min_active_units: 1,
        }
    }

    #[test]
    fn rungs_grow_by_eta_and_end_at_the_epochs() {
        assert_eq!(rung_epochs(&halving(1, 3), 9), vec![1, 3, 9]);
        assert_eq!(rung_epochs(&halving(2, 3), 20), vec![2, 6, 18, 20]);
        assert_eq!(rung_epochs(&halving(5, 2), 5), vec![5]);
        // 27 runs of 9 epochs: 27·1 + 9·2 + 3·6 = 63 epochs, against 243 straight through.
        assert_eq!(epoch_budget(&halving(1, 3), 27, 9), 63);
        assert_eq!(epoch_budget(&halving(5, 2), 4, 5), 20);
    }
}
