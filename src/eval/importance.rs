//! log p(x) by importance sampling, in slices that can stop anywhere and continue to the
//! same bits.
//!
//! Each block of examples takes its K samples in chunks of decoder rows, drawn in order
//! from the block's own noise stream. A block part-way through is [`InFlight`]: how many
//! samples it has taken, where its stream stands (ChaCha's word position) and its running
//! weights, which is everything the next chunk needs. Blocks advance in rounds of about
//! [`SLICE_SECONDS`] (the first round takes one chunk per block, so that the first save
//! comes at once); after each round the caller sees the progress, and may save it. However
//! the estimate is cut into rounds, and whichever attempts run them, the chunks, their
//! noise and the order of their sums are the same, so the numbers are too.

use std::time::{Duration, Instant};

use super::blocks::{self, BLOCK_EXAMPLES, Purpose};
use super::model::{Model, one_thread};
use super::scorer::{BurnScorer, FusedScorer, Scorer};
use super::stats::{Estimate, LogWeights};
use crate::data::Matrix;
use crate::engine::fused::products::Threads;

/// A round of the estimate lasts about this long, so a kill loses at most about this much.
pub const SLICE_SECONDS: f64 = 0.5;

/// An importance-sampling estimate of log p(x) per example, with its diagnostics. Holds
/// whole blocks of examples, from the first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportanceExamples {
    /// log (1/K) Σ_k p(x, z_k) / q(z_k|x).
    pub log_px: Vec<f64>,
    /// Effective sample size of the K normalised weights.
    pub ess: Vec<f64>,
    /// Standard deviation of the K log-weights.
    pub log_w_sd: Vec<f64>,
}

impl ImportanceExamples {
    pub fn len(&self) -> usize {
        self.log_px.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_px.is_empty()
    }

    fn push(&mut self, w: &LogWeights) {
        self.log_px.push(w.log_mean());
        self.ess.push(w.ess());
        self.log_w_sd.push(w.sd());
    }

    pub fn summary(&self) -> LogPxSummary {
        let n = self.ess.len().max(1) as f64;
        LogPxSummary {
            log_px: Estimate::of(&self.log_px),
            ess_mean: self.ess.iter().sum::<f64>() / n,
            ess_min: self.ess.iter().copied().fold(f64::INFINITY, f64::min),
            log_w_sd_mean: self.log_w_sd.iter().sum::<f64>() / n,
            single_weight_fraction: self.ess.iter().filter(|&&e| e < SINGLE_WEIGHT_ESS).count()
                as f64
                / n,
        }
    }
}

/// A block part-way through its K samples: exactly where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight {
    pub block: usize,
    /// Samples taken per example (a whole number of chunks, or K).
    pub samples: usize,
    /// Position of the block's noise stream, in 32-bit words.
    pub word_pos: u128,
    /// One running sum per example of the block.
    pub weights: Vec<LogWeights>,
}

impl InFlight {
    fn start(block: usize, rows: usize) -> Self {
        Self {
            block,
            samples: 0,
            word_pos: 0,
            weights: vec![LogWeights::default(); blocks::block_range(block, rows).len()],
        }
    }
}

/// How far an estimate has got: its finished examples, then the blocks begun after them
/// (in block order, each the next one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogPxProgress {
    pub examples: ImportanceExamples,
    pub in_flight: Vec<InFlight>,
}

impl LogPxProgress {
    /// Whether this can continue an estimate over `rows` examples with `k` samples: whole
    /// blocks done, then consecutive blocks begun, none past its K or the last block.
    pub fn fits(&self, rows: usize, k: usize) -> bool {
        let done = self.examples.len();
        let whole = done == rows || done.is_multiple_of(BLOCK_EXAMPLES);
        let first = done.div_ceil(BLOCK_EXAMPLES);
        let consecutive = self.in_flight.iter().enumerate().all(|(i, f)| {
            f.block == first + i
                && f.block < rows.div_ceil(BLOCK_EXAMPLES)
                && f.samples <= k
                && f.weights.len() == blocks::block_range(f.block, rows).len()
        });
        done <= rows && whole && consecutive
    }

    /// Examples with every sample taken, in whole blocks or not yet joined.
    pub fn examples_done(&self, k: usize) -> usize {
        let finished = self.in_flight.iter().filter(|f| f.samples >= k);
        self.examples.len() + finished.map(|f| f.weights.len()).sum::<usize>()
    }

    /// Samples taken over every example: the measure of progress a kill can lose.
    pub fn samples_done(&self, k: usize) -> u64 {
        let partial = self
            .in_flight
            .iter()
            .map(|f| (f.samples * f.weights.len()) as u64);
        self.examples.len() as u64 * k as u64 + partial.sum::<u64>()
    }
}

/// An example whose weights have an ESS below this rests on about one of its K samples.
pub const SINGLE_WEIGHT_ESS: f64 = 2.0;

/// The estimate over a set of examples, and how far its importance weights can be trusted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogPxSummary {
    pub log_px: Estimate,
    pub ess_mean: f64,
    pub ess_min: f64,
    pub log_w_sd_mean: f64,
    /// Fraction of examples with ESS < [`SINGLE_WEIGHT_ESS`].
    pub single_weight_fraction: f64,
}

impl LogPxSummary {
    /// A warning for the run's log when the estimate rests on too few effective samples:
    /// more than a tenth of the examples with about one weight carrying all the mass.
    pub fn warning(&self, k: usize) -> Option<String> {
        (self.single_weight_fraction > 0.1).then(|| {
            format!(
                "log p(x): {:.0}% of examples have an effective sample size below {SINGLE_WEIGHT_ESS} of K = {k} (mean {:.1}, min {:.2}); the estimate is dominated by single samples: raise eval.importance_samples",
                100.0 * self.single_weight_fraction,
                self.ess_mean,
                self.ess_min
            )
        })
    }
}

/// How an importance-sampling estimate runs.
#[derive(Clone, Copy, Debug)]
pub struct LogPxJob {
    /// Samples per example.
    pub k: usize,
    /// At most this many decoder rows at once (bounds memory).
    pub max_rows: usize,
    pub seed: u64,
    /// Stop part-way on SIGINT/SIGTERM (what has been done stays in the progress).
    pub stoppable: bool,
}

/// log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), for every row of `data`,
/// continuing `progress` (which must [`LogPxProgress::fits`] it). Samples are drawn in
/// chunks and combined with a running log-sum-exp in f64, so K = 5000 needs no more memory
/// than K = 50. `on_progress` sees the progress after each round (to show or save it).
/// Returns whether every example is done (false: stopped by a signal).
pub fn log_px(
    model: &Model<'_>,
    data: &Matrix,
    job: LogPxJob,
    progress: &mut LogPxProgress,
    on_progress: &mut dyn FnMut(&LogPxProgress),
) -> bool {
    assert!(
        progress.fits(data.rows, job.k.max(1)),
        "saved progress that does not fit this estimate"
    );
    match model {
        Model::Fused {
            layout,
            params,
            threads,
        } => match FusedScorer::new(layout, params) {
            Ok(s) => rounds(&s, threads, data, job, progress, on_progress),
            Err(e) => panic!("cannot start evaluation threads: {e:#}"),
        },
        Model::Burn(vae) => rounds(
            &BurnScorer::new(vae),
            &one_thread(),
            data,
            job,
            progress,
            on_progress,
        ),
    }
}

/// [`log_px`] from the start, run through (no stopping).
pub fn log_px_examples(
    model: &Model<'_>,
    data: &Matrix,
    k: usize,
    max_rows: usize,
    seed: u64,
) -> ImportanceExamples {
    let mut progress = LogPxProgress::default();
    let job = LogPxJob {
        k,
        max_rows,
        seed,
        stoppable: false,
    };
    log_px(model, data, job, &mut progress, &mut |_| {});
    progress.examples
}

/// The mean IWAE bound with k samples per example (k = 1 is a one-sample ELBO).
pub fn iwae_bound(model: &Model<'_>, data: &Matrix, k: usize, seed: u64) -> f64 {
    let all = log_px_examples(model, data, k, 65_536, seed);
    all.log_px.iter().sum::<f64>() / all.len().max(1) as f64
}

/// One block in flight per thread; each round advances them all, then finished blocks at
/// the front join the examples, in block order.
fn rounds<S: Scorer>(
    scorer: &S,
    threads: &Threads,
    data: &Matrix,
    job: LogPxJob,
    progress: &mut LogPxProgress,
    on_progress: &mut dyn FnMut(&LogPxProgress),
) -> bool {
    let k = job.k.max(1);
    let blocks = data.rows.div_ceil(BLOCK_EXAMPLES);
    let width = threads.count();
    let mut works: Vec<S::Work> = (0..width).map(|_| S::Work::default()).collect();
    let mut next = match progress.in_flight.last() {
        Some(f) => f.block + 1,
        None => progress.examples.len().div_ceil(BLOCK_EXAMPLES),
    };
    let chunk = Chunking {
        k,
        max_rows: scorer.chunk_rows(job.max_rows),
        seed: job.seed,
        stoppable: job.stoppable,
    };
    let mut first_round = true;
    loop {
        while progress.in_flight.len() < width && next < blocks {
            progress.in_flight.push(InFlight::start(next, data.rows));
            next += 1;
        }
        if progress.in_flight.is_empty() {
            return true;
        }
        if job.stoppable && crate::interrupt::requested() {
            return false;
        }
        let until = (!first_round).then(|| Instant::now() + Duration::from_secs_f64(SLICE_SECONDS));
        let slots = progress.in_flight.iter_mut().zip(works.iter_mut());
        threads.each(slots, |(f, work)| {
            chunk.advance(scorer, work, data, f, until)
        });
        while progress.in_flight.first().is_some_and(|f| f.samples >= k) {
            let f = progress.in_flight.remove(0);
            f.weights.iter().for_each(|w| progress.examples.push(w));
        }
        on_progress(progress);
        first_round = false;
    }
}

/// How a block takes its samples: K in chunks of at most `max_rows` decoder rows.
struct Chunking {
    k: usize,
    max_rows: usize,
    seed: u64,
    stoppable: bool,
}

impl Chunking {
    /// Takes chunks of `f`'s samples until they are all taken, `until` has passed (no time
    /// given: one chunk), or a stop is asked for.
    fn advance<S: Scorer>(
        &self,
        scorer: &S,
        work: &mut S::Work,
        data: &Matrix,
        f: &mut InFlight,
        until: Option<Instant>,
    ) {
        let (d, zd) = (data.cols, scorer.latent_dim());
        let r = blocks::block_range(f.block, data.rows);
        let n = r.len();
        let x = &data.values[r.start * d..r.end * d];
        // Fixed by the block alone, so that every attempt cuts the K samples alike.
        let per_chunk = (self.max_rows / n).clamp(1, self.k);
        let mut rng = blocks::stream(self.seed, Purpose::LogPx, f.block);
        rng.set_word_pos(f.word_pos);
        let (mut eps, mut log_w) = (Vec::new(), Vec::new());
        while f.samples < self.k {
            if self.stoppable && crate::interrupt::requested() {
                break;
            }
            let s = per_chunk.min(self.k - f.samples);
            blocks::draw(&mut rng, s * n * zd, &mut eps);
            scorer.log_weights(work, x, &eps, &mut log_w);
            // Row s·n + i: each example takes its samples in order.
            for (row, &lw) in log_w.iter().enumerate() {
                f.weights[row % n].push(lw);
            }
            f.samples += s;
            f.word_pos = rng.get_word_pos();
            crate::test_signal::after_estimate_chunk();
            if until.is_none_or(|t| Instant::now() >= t) {
                break;
            }
        }
    }
}
