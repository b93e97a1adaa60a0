//! The epoch loop of one attempt: its minibatches, each epoch's metrics and evaluation,
//! checkpoints, and where it ends (its epochs, a limit, early stopping, divergence, or a
//! stop asked for by a signal).

use std::time::{Duration, Instant};

use burn::tensor::Device;
use rand::seq::SliceRandom;

use super::outcome::TrainOutcome;
use super::schedule::lr_at;
use super::state::{Checkpoint, EpochMetrics, Observer, TrainState};
use super::stopping::early_stop;
use super::stopping::{Divergence, EpochLimit};
use super::streams::{Stream, init_rng, stream};
use crate::data::batch::Batch;
use crate::data::{Dataset, Matrix};
use crate::engine::{self, Engine, Files, Saved, StepSums};
use crate::eval;
use crate::objective::{self, Schedule};
use crate::spec::{ObjectiveKind, RunConfig};

/// An attempt's first time-based checkpoint comes this many seconds into its training.
pub const FIRST_CHECKPOINT_SECONDS: f64 = 1.0;

/// Time-based checkpoints come at most as often as costs 1/CHECKPOINT_SHARE (5%) of the
/// training time.
pub const CHECKPOINT_SHARE: f64 = 20.0;

pub(super) struct Trainer<'a> {
    config: &'a RunConfig,
    data: &'a Dataset,
    observer: &'a mut dyn Observer,
    engine: Box<dyn Engine>,
    state: TrainState,
    limit: Option<&'a EpochLimit>,
    /// The epoch this attempt trains to: the run's last, or its limit's.
    end: usize,
    started: Instant,
    /// Training seconds of the attempts before this one.
    seconds_before: f64,
    last_checkpoint: Instant,
    /// Seconds the last checkpoint took to write, once one has been.
    checkpoint_cost: Option<f64>,
    diverged: Option<(usize, String)>,
    interrupted: bool,
    /// `train.restore_best`: the engine's files at the best evaluation so far.
    best: Option<Files>,
    /// The examples of each step taken whose sums are not read yet (`read_sums`).
    unread: Vec<usize>,
}

impl<'a> Trainer<'a> {
    pub(super) fn new(
        config: &'a RunConfig,
        data: &'a Dataset,
        observer: &'a mut dyn Observer,
        engine: Box<dyn Engine>,
        state: TrainState,
        limit: Option<&'a EpochLimit>,
    ) -> Self {
        let t = &config.train;
        let started = Instant::now();
        Trainer {
            end: limit.map_or(t.epochs, |l| l.epoch().min(t.epochs)),
            seconds_before: state.train_seconds,
            config,
            data,
            observer,
            engine,
            state,
            limit,
            started,
            last_checkpoint: started,
            checkpoint_cost: None,
            diverged: None,
            interrupted: false,
            best: None,
            unread: Vec::new(),
        }
    }

    /// Continues with the best evaluation's files a checkpoint kept.
    pub(super) fn with_best(mut self, best: Option<Files>) -> Self {
        self.best = best;
        self
    }

    /// Trains to the end of this attempt; `device` and `threads` start the engine again
    /// from the best evaluation's files where early stopping restores them.
    pub(super) fn run(mut self, device: &Device, threads: usize) -> anyhow::Result<TrainOutcome> {
        if let Some(EpochLimit::Stop { epoch, reason }) = self.limit
            && self.state.epoch >= *epoch
            && self.state.stopped.is_none()
        {
            // Already there (a paused run that is not promoted): it ends here, as trained.
            self.state.stopped = Some((self.state.epoch, reason.clone()));
        }
        while self.state.epoch < self.end && self.state.stopped.is_none() {
            if self.epoch() {
                break;
            }
        }
        self.outcome(device, threads)
    }

    /// Trains, evaluates and checkpoints the epoch in progress; true when training ends
    /// with it.
    fn epoch(&mut self) -> bool {
        let config = self.config;
        let t = &config.train;
        let epoch = self.state.epoch;
        // A resumed epoch counts the seconds it had already run.
        let epoch_start = Instant::now()
            .checked_sub(Duration::from_secs_f64(self.state.epoch_seconds))
            .unwrap_or_else(Instant::now);
        let mut order: Vec<usize> = (0..self.data.train.rows).collect();
        if t.shuffle {
            order.shuffle(&mut stream(t.seed, Stream::Shuffle, epoch, 0));
        }
        let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        let lr = lr_at(t, epoch);
        if self.train_pass(&batches, lr, epoch_start) {
            self.interrupted = true;
            return true;
        }
        let mut metrics = self.metrics(batches.len(), lr, epoch_start.elapsed().as_secs_f64());
        let train_bound = if self.state.sums_finite() {
            metrics.train_elbo
        } else {
            f64::NAN
        };
        if let Some(why) = self.divergence().check("the training ELBO", train_bound) {
            self.diverged = Some((epoch + 1, why));
            metrics.seconds = epoch_start.elapsed().as_secs_f64();
            self.state.epochs.push(metrics);
            return true;
        }
        let last = epoch + 1 == t.epochs;
        let at_limit = epoch + 1 == self.end;
        if last || at_limit || (epoch + 1).is_multiple_of(config.eval.every_epochs) {
            self.evaluate(&mut metrics);
        }
        if let Some(EpochLimit::Stop { reason, .. }) = self.limit
            && at_limit
            && !last
            && self.diverged.is_none()
            && self.state.stopped.is_none()
        {
            self.state.stopped = Some((epoch + 1, reason.clone()));
        }
        metrics.seconds = epoch_start.elapsed().as_secs_f64();
        self.observer
            .on_epoch(&metrics, self.engine.as_ref(), self.data);
        self.state.epochs.push(metrics);
        self.state.start_next_epoch();
        if self.diverged.is_some() {
            return true;
        }
        if self.state.stopped.is_some() || self.state.epoch == self.end {
            // Trained (or at its pause): checkpointed before the final evaluation, which a
            // stop or a kill may then interrupt without losing the training.
            self.checkpoint();
            return true;
        }
        let due = t.checkpoint_every_epochs > 0
            && self.state.epoch.is_multiple_of(t.checkpoint_every_epochs);
        let stop = crate::interrupt::requested();
        if due || stop {
            self.checkpoint();
        }
        self.interrupted = stop;
        stop
    }

    /// The epoch's minibatches from `state.step` on; true when a stop was asked for (the run
    /// is then checkpointed mid-epoch). A step that is not finite ends the pass: the epoch's
    /// sums carry it to the divergence check. The steps' sums are read where the engine keeps
    /// them only at checkpoints and at the pass's end (after every step where they are host
    /// values already), so that a device's queue never waits on the host.
    fn train_pass(&mut self, batches: &[&[usize]], lr: f64, epoch_start: Instant) -> bool {
        let (config, data) = (self.config, self.data);
        let t = &config.train;
        let epoch = self.state.epoch;
        let read_each_step = self.engine.sums_on_host();
        loop {
            let index = self.state.step + self.unread.len();
            if index >= batches.len() {
                break;
            }
            let batch = Batch::of(data, batches[index]);
            let mut rng = stream(t.seed, Stream::Step, epoch, index);
            let schedule = self.schedule(batches.len(), index);
            self.engine
                .step(&batch, &config.objective, &schedule, lr, &mut rng);
            self.unread.push(batch.len());
            let seen = self.state.examples_seen + self.unread.iter().sum::<usize>() as u64;
            self.observer.on_batch(seen);
            crate::test_signal::after_step(epoch + 1, index + 1);
            if read_each_step && !self.read_sums() {
                return false;
            }
            let stop = crate::interrupt::requested();
            let timed = self
                .checkpoint_interval()
                .is_some_and(|s| self.last_checkpoint.elapsed().as_secs_f64() >= s);
            if (stop || timed) && index + 1 < batches.len() {
                if !self.read_sums() {
                    return false;
                }
                self.state.epoch_seconds = epoch_start.elapsed().as_secs_f64();
                self.checkpoint();
                if stop {
                    return true;
                }
            }
        }
        self.read_sums();
        false
    }

    /// Adds the sums of the steps taken since the last read to the epoch's; false when one
    /// is not finite. The steps after that one are not counted: the record is the one the
    /// run would have had reading every step (the pass stops at the first such step).
    fn read_sums(&mut self) -> bool {
        let rows = std::mem::take(&mut self.unread);
        let sums = self.engine.take_sums();
        debug_assert_eq!(rows.len(), sums.len(), "one sum per step");
        for (sums, rows) in sums.iter().zip(rows) {
            self.state.add(sums, rows);
            if !sums.finite() {
                return false;
            }
        }
        true
    }

    /// The objective's schedule (β, capacity, data size) at a step of the epoch in progress.
    fn schedule(&self, steps_per_epoch: usize, step: usize) -> Schedule {
        // Steps over the whole run: every epoch has the same number of minibatches.
        let steps_before = (self.state.epoch * steps_per_epoch) as u64;
        objective::schedule_at(
            &self.config.objective,
            self.state.epoch,
            steps_before + step as u64,
            self.data.train.rows,
        )
    }

    /// The finished training pass's metrics: means over the epoch's examples.
    fn metrics(&self, steps: usize, lr: f64, train_pass_seconds: f64) -> EpochMetrics {
        let kind = self.config.objective.kind;
        let state = &self.state;
        let rows = self.data.train.rows as f64;
        EpochMetrics {
            train_pass_seconds,
            epoch: state.epoch + 1,
            examples_seen: state.examples_seen,
            beta: self.schedule(steps, 0).beta,
            lr,
            train_objective: state.sum_bound / rows,
            train_elbo: (state.sum_recon - state.sum_kl) / rows,
            train_recon: state.sum_recon / rows,
            train_kl: state.sum_kl / rows,
            train_tc: matches!(kind, ObjectiveKind::BetaTcvae | ObjectiveKind::FactorVae)
                .then(|| state.sum_tc / rows),
            train_discriminator_loss: (kind == ObjectiveKind::FactorVae)
                .then(|| state.sum_discriminator / rows),
            capacity: (kind == ObjectiveKind::Annealed)
                .then(|| self.schedule(steps, steps - 1).capacity),
            ..Default::default()
        }
    }

    /// The test ELBO (and the validation set's, where there is one) into `metrics`, then the
    /// divergence rule on the test ELBO and early stopping on the validation ELBO (the
    /// test ELBO without a validation set).
    fn evaluate(&mut self, metrics: &mut EpochMetrics) {
        let (config, data) = (self.config, self.data);
        let engine = self.engine.as_ref();
        let elbo = |m: &Matrix| eval::with_engine(engine, |e| eval::elbo(e, m, config));
        let test = elbo(&data.test);
        metrics.test_elbo = Some(test.elbo.mean);
        metrics.test_recon = Some(test.recon.mean);
        metrics.test_kl = Some(test.kl.mean);
        metrics.test_elbo_se = test.elbo.se();
        metrics.test_kl_se = test.kl.se();
        let (watched, value) = match &data.validation {
            Some(validation) => {
                let valid = elbo(validation);
                metrics.valid_elbo = Some(valid.elbo.mean);
                metrics.valid_elbo_se = valid.elbo.se();
                ("validation", valid.elbo.mean)
            }
            None => ("test", test.elbo.mean),
        };
        let epoch = self.state.epoch + 1;
        if let Some(why) = self.divergence().check("the test ELBO", test.elbo.mean) {
            self.diverged = Some((epoch, why));
        } else if config.train.early_stopping_patience > 0 {
            self.state.stopped =
                early_stop(&mut self.state, value, watched, &config.train).map(|why| (epoch, why));
            self.state.stopped_early = self.state.stopped.is_some();
            if config.train.restore_best && self.state.best_epoch == Some(epoch) {
                self.keep_best();
            }
        }
    }

    /// Keeps the engine's files as the best evaluation's (a copy of the model and its
    /// optimiser state: what starting the engine again needs).
    fn keep_best(&mut self) {
        // Files that cannot be made would fail the next checkpoint as well, which says so;
        // without them the run keeps its last model.
        self.best = self.engine.checkpoint_files().ok().map(|files| {
            files
                .into_iter()
                .map(|(name, bytes)| (name.to_string(), bytes))
                .collect()
        });
    }

    fn divergence(&self) -> Divergence {
        Divergence {
            initial: self.state.divergence_initial,
            factor: self.config.train.divergence_factor,
        }
    }

    fn train_seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    /// Seconds between time-based checkpoints (none: `train.checkpoint_every_seconds` = 0):
    /// the first after [`FIRST_CHECKPOINT_SECONDS`] of the attempt, so that an attempt
    /// killed soon after keeps its work; then [`CHECKPOINT_SHARE`] times what the last one
    /// took, so that writing them costs at most 1/CHECKPOINT_SHARE of the time; never more
    /// than `train.checkpoint_every_seconds`.
    fn checkpoint_interval(&self) -> Option<f64> {
        let most = self.config.train.checkpoint_every_seconds;
        let adaptive = self.checkpoint_cost.map_or(FIRST_CHECKPOINT_SECONDS, |c| {
            (CHECKPOINT_SHARE * c).max(FIRST_CHECKPOINT_SECONDS)
        });
        (most > 0.0).then(|| adaptive.min(most))
    }

    /// Hands the observer the whole state: what a later attempt continues from.
    fn checkpoint(&mut self) {
        self.state.train_seconds = self.train_seconds();
        let started = Instant::now();
        self.observer.on_checkpoint(Checkpoint {
            state: &self.state,
            engine: self.engine.as_ref(),
            best: self.best.as_ref(),
        });
        self.last_checkpoint = Instant::now();
        self.checkpoint_cost = Some(started.elapsed().as_secs_f64());
    }

    fn outcome(self, device: &Device, threads: usize) -> anyhow::Result<TrainOutcome> {
        let (config, data) = (self.config, self.data);
        let state = &self.state;
        // At its pause, whether it trained there now or was there already (a search resumed
        // after a kill): the rung's active units, from the model as it stands.
        let paused = match self.limit {
            Some(EpochLimit::Pause(e))
                if self.diverged.is_none()
                    && state.stopped.is_none()
                    && !self.interrupted
                    && state.epoch >= *e
                    && state.epoch < config.train.epochs =>
            {
                let (means, _) = eval::posterior_params(&self.engine.model(), &data.test);
                Some(eval::count_active(
                    &means,
                    config.model.latent_dim,
                    config.eval.active_unit_threshold,
                ))
            }
            _ => None,
        };
        // Early stopping ended it: its model is the best evaluation's, the engine started
        // again from the files kept then.
        let restored = match (&self.best, state.best_epoch) {
            (Some(best), Some(epoch))
                if config.train.restore_best && state.stopped_early && !self.interrupted =>
            {
                let saved = Saved::from_files(best)?;
                let rng = &mut init_rng(config);
                let engine = engine::start(config, data, device, threads, rng, Some(saved))?;
                Some((epoch, engine.model()))
            }
            _ => None,
        };
        let (restored_epoch, restored_model) = restored.unzip();
        let (diverged_at, diverged_because) = self.diverged.clone().unzip();
        let (stopped_at, stopped_because) = state.stopped.clone().unzip();
        Ok(TrainOutcome {
            paused_active_units: paused,
            engine: self.engine.name(),
            model: restored_model.unwrap_or_else(|| self.engine.model()),
            restored_epoch,
            divergence: self.divergence(),
            train_seconds: self.train_seconds(),
            epochs: self.state.epochs,
            diverged_at,
            diverged_because,
            stopped_at,
            stopped_because,
            interrupted: self.interrupted,
            examples_seen: self.state.examples_seen,
            resumes: self.state.resumes,
        })
    }
}

impl TrainState {
    /// Adds one minibatch's sums (over its `rows` examples) to the epoch in progress.
    fn add(&mut self, sums: &StepSums, rows: usize) {
        if self.examples_seen == 0 {
            // Computed before the first step: the bound of the untrained model.
            self.divergence_initial = (sums.recon - sums.kl) / rows as f64;
        }
        self.sum_bound += sums.bound;
        self.sum_recon += sums.recon;
        self.sum_kl += sums.kl;
        self.sum_tc += sums.tc.unwrap_or(0.0);
        self.sum_discriminator += sums.discriminator.unwrap_or(0.0);
        self.examples_seen += rows as u64;
        self.step += 1;
    }

    fn sums_finite(&self) -> bool {
        [self.sum_bound, self.sum_recon, self.sum_kl]
            .iter()
            .all(|v| v.is_finite())
    }
}
