//! One run's attempt: continue it from its checkpoint or start it, train, evaluate, save
//! its model, logs and record; never panics and never stops the sweep.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Instant;

use super::Shared;
use crate::checkpoint::{BoardPosition, Checkpoints, Loaded};
use crate::data::{self, Dataset};
use crate::eval;
use crate::model::Vae;
use crate::progress::RunProgress;
use crate::sinks::model_file;
use crate::sinks::results::{RunRecord, RunStatus};
use crate::sinks::tensorboard::{ExperimentRecord, RunBoard};
use crate::spec::{Binarization, RunConfig};
use crate::sweep::PlannedRun;
use crate::train::{self, Checkpoint, EpochMetrics, Observer, eval_rng};
use crate::{VERSION, backend};

/// How one run's attempt ended.
pub(super) struct Executed {
    pub(super) record: RunRecord,
    /// Its files could not be written ("path: reason").
    pub(super) write_error: Option<String>,
    /// Stopped by SIGINT/SIGTERM and checkpointed; no record was written.
    pub(super) interrupted: bool,
}

/// Trains and evaluates one run and saves its record; never panics, never stops the sweep.
/// An unfinished run continues from its newest checkpoint.
pub(super) fn execute(
    shared: &Shared,
    run: &PlannedRun,
    device: &burn::tensor::Device,
    bar: &RunProgress,
) -> Executed {
    let Shared {
        spec,
        out,
        datasets,
        text_keys,
        experiment,
        experiments_commit,
        force,
        concurrent,
    } = *shared;
    let threads = crate::engine::threads_per_run(&run.config, concurrent);
    let started = Instant::now();
    let run_dir = out.run_dir(&run.id);
    let checkpoints = Checkpoints::new(&run_dir, &run.id);
    let loaded = if force {
        checkpoints.clear();
        None
    } else {
        checkpoints.remove_unfinished();
        checkpoints.latest(&run.config, &mut |note| bar.note(&note))
    };
    let seconds_before = loaded
        .as_ref()
        .map(|l| l.resume.state.train_seconds)
        .unwrap_or(0.0);
    let board_dir = out.board_dir(&run.label, &run.id);
    let mut board = open_board(&board_dir, run, text_keys, experiment, loaded.as_ref());
    if let Some(l) = &loaded {
        let s = &l.resume.state;
        bar.note(&format!(
            "continuing from checkpoint {} (epoch {}, minibatch {})",
            l.path.display(),
            s.epoch + 1,
            s.step
        ));
    }
    let mut checkpoint_log = CheckpointLog::default();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let data = datasets.get(&run.config.data)?;
        // A failed allocation aborts the process, so a model that cannot fit is refused
        // here, as this run's failure, before any of it is built.
        let bytes = crate::model::memory_estimate_bytes(
            &run.config,
            data.dim(),
            data.train.rows,
            data.test.rows,
        );
        crate::resources::ensure_fits(bytes, "this model")
            .map_err(|m| anyhow::anyhow!("refused before training: {m}"))?;
        let mut observer = RunObserver {
            board: &mut board,
            bar,
            images_every: run.config.eval.images_every_epochs,
            epochs: run.config.train.epochs,
            seed: run.config.train.seed,
            checkpoints: &checkpoints,
            keep_last: run.config.train.keep_last,
            log: &mut checkpoint_log,
        };
        let resume = loaded.map(|l| l.resume);
        let trained = train::train(&run.config, &data, device, threads, &mut observer, resume)?;
        anyhow::Ok((trained, data))
    }));
    let mut record = RunRecord {
        run_id: run.id.clone(),
        label: run.label.clone(),
        experiment: spec.name.clone(),
        swept_keys: run
            .swept
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(","),
        status: RunStatus::Failed,
        config: run.config.clone(),
        log_px_k: run.config.eval.importance_samples,
        backend: backend::name(crate::engine::kind_for(&run.config)).to_string(),
        threads,
        aevb_version: VERSION.to_string(),
        experiments_commit: experiments_commit.map(str::to_string),
        checkpoints_written: checkpoint_log.written,
        checkpoint_seconds: checkpoint_log.seconds,
        ..Default::default()
    };
    let mut epochs: Vec<EpochMetrics> = Vec::new();
    let mut model = None;
    match outcome {
        Ok(Ok((trained, _))) if trained.interrupted => {
            board.flush();
            let write_error = checkpoint_log
                .error
                .or_else(|| board.error().map(str::to_string));
            return Executed {
                record,
                write_error,
                interrupted: true,
            };
        }
        Ok(Ok((trained, data))) => {
            epochs = trained.epochs.clone();
            // What actually trained the run (the spec may have said `cpu`).
            record.backend = trained.engine.to_string();
            record.epochs_done = trained.epochs.len();
            record.examples_seen = trained.examples_seen;
            record.resumes = trained.resumes;
            record.samples_per_second =
                trained.examples_seen as f64 / trained.train_seconds.max(1e-9);
            record.exact_test_log_px = data.exact_test_log_px;
            record.modelled_columns = data.columns.clone();
            record.data_notes = (!data.notes.is_empty()).then(|| data.notes.join("; "));
            record.stopped_epoch = trained.stopped_at;
            record.stop_reason = trained.stopped_because.clone();
            if let Some(epoch) = trained.diverged_at {
                record.status = RunStatus::Diverged;
                record.diverged_epoch = Some(epoch);
                record.error = Some(format!(
                    "diverged in epoch {epoch}: {}",
                    trained
                        .diverged_because
                        .as_deref()
                        .unwrap_or("non-finite loss")
                ));
                // The diverged epoch is the last one; the row keeps what came before it.
                last_metrics(&epochs[..epochs.len().saturating_sub(1)], &mut record);
            } else {
                match std::panic::catch_unwind(AssertUnwindSafe(|| {
                    final_evaluation(&trained.model, &data, &run.config, &mut record, bar)
                })) {
                    Ok(()) => {
                        let divergence = [
                            ("the final test ELBO", record.test_elbo),
                            ("the test log p(x) estimate", record.test_log_px),
                        ]
                        .iter()
                        .find_map(|(what, v)| {
                            trained.divergence.check(what, v.unwrap_or(f64::NAN))
                        });
                        match divergence {
                            None => record.status = RunStatus::Ok,
                            Some(why) => {
                                record.status = RunStatus::Diverged;
                                record.diverged_epoch = Some(record.epochs_done);
                                record.error =
                                    Some(format!("diverged in the final evaluation: {why}"));
                            }
                        }
                        if let Some(lp) = record.test_log_px {
                            board.scalar("test/log_px", lp, trained.examples_seen);
                        }
                        if let Some(au) = record.active_units {
                            board.scalar("test/active_units", au as f64, trained.examples_seen);
                        }
                    }
                    Err(panic) => record.error = Some(panic_message(panic)),
                }
            }
            model = Some(trained.model);
        }
        Ok(Err(e)) => record.error = Some(format!("{e:#}")),
        Err(panic) => record.error = Some(panic_message(panic)),
    }
    record.wall_seconds = seconds_before + started.elapsed().as_secs_f64();
    record.finished_at = crate::sinks::results::utc_now_rfc3339();
    board.session_end(record.status == RunStatus::Ok);
    board.flush();
    let mut write_error = checkpoint_log
        .error
        .or_else(|| board.error().map(str::to_string));
    drop(board);
    // A spec of its own: `runner run` on this file trains the run again.
    let toml = format!(
        "# Run {} ({}) of experiment {}, resolved: every setting, sweep applied.\nname = {}\n\n{}",
        run.id,
        run.label,
        spec.name,
        toml::Value::String(spec.name.clone()),
        toml::to_string_pretty(&run.config).unwrap_or_default()
    );
    // The resolved spec also sits beside the run's TensorBoard logs.
    if let Err(e) =
        crate::sinks::results::write_atomic(&board_dir.join("config.toml"), toml.as_bytes())
    {
        write_error.get_or_insert(format!("{e:#}"));
    }
    // The trained model, before the record that marks the run finished.
    if let (None, Some(model)) = (&write_error, &model) {
        let saved = std::fs::create_dir_all(&run_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", run_dir.display()))
            .and_then(|_| model_file::save(model, &run_dir.join(model_file::MODEL_FILE), &run.id));
        if let Err(e) = saved {
            write_error = Some(format!("{e:#}"));
        }
    }
    // The record goes last, and only when the logs are whole: a run whose files could not
    // all be written is not finished, and the next invocation trains it again.
    if write_error.is_none()
        && let Err(e) = out.save_run(&record, &epochs, &toml)
    {
        write_error = Some(format!("{e:#}"));
    }
    if let Some(e) = &write_error {
        record.status = RunStatus::Failed;
        record.error = Some(format!("could not save the run: {e}"));
    } else if record.status != RunStatus::Failed {
        // Finished and recorded: its checkpoints are no longer needed. A failed run keeps
        // them: the next invocation retries it from where it got to.
        checkpoints.clear();
    }
    Executed {
        record,
        write_error,
        interrupted: false,
    }
}

/// The run's TensorBoard log: continued from a checkpoint's position (what was logged after
/// it cut off), else started afresh (a resumed run whose log is gone gets its finished
/// epochs logged again, so its curves have no gap).
fn open_board(
    dir: &Path,
    run: &PlannedRun,
    text_keys: &[String],
    experiment: &ExperimentRecord,
    loaded: Option<&Loaded>,
) -> RunBoard {
    if let Some(board) = loaded
        .and_then(|l| l.board.as_ref())
        .and_then(|p| RunBoard::resume(dir, &p.file, p.bytes))
    {
        return board;
    }
    // A rerun replaces the logs of an earlier, unfinished attempt.
    let _ = std::fs::remove_dir_all(dir);
    let mut board = RunBoard::create(dir);
    board.session_start(&run.swept, &run.label, text_keys);
    board.experiment(experiment);
    if let Some(l) = loaded {
        for m in &l.resume.state.epochs {
            board.epoch(m);
        }
    }
    board
}

/// Checkpoints a run wrote in this attempt, and the first that failed.
#[derive(Default)]
struct CheckpointLog {
    written: usize,
    seconds: f64,
    error: Option<String>,
}

/// A diverged run's row keeps the training metrics of its last epoch before the divergence,
/// and the test metrics of its last evaluation before it.
fn last_metrics(epochs: &[EpochMetrics], record: &mut RunRecord) {
    let finite = |v: f64| v.is_finite().then_some(v);
    if let Some(e) = epochs.iter().rev().find(|e| e.train_elbo.is_finite()) {
        record.train_elbo = finite(e.train_elbo);
        record.train_recon = finite(e.train_recon);
        record.train_kl = finite(e.train_kl);
    }
    if let Some(e) = epochs
        .iter()
        .rev()
        .find(|e| e.test_elbo.is_some_and(f64::is_finite))
    {
        record.test_elbo = e.test_elbo;
        record.test_recon = e.test_recon.filter(|v| v.is_finite());
        record.test_kl = e.test_kl.filter(|v| v.is_finite());
    }
}

/// Final numbers at β = 1 on the trained model.
fn final_evaluation(
    model: &Vae,
    data: &Dataset,
    config: &RunConfig,
    record: &mut RunRecord,
    progress: &RunProgress,
) {
    let seed = config.train.seed;
    // Dynamically binarized training data are scored on one fixed binarization.
    let mut train_data = data.train.clone();
    if config.data.binarization == Binarization::Dynamic {
        data::bernoulli_sample(&mut train_data.values, &mut eval_rng(seed));
    }
    let train = eval::elbo(model, &train_data, config, &mut eval_rng(seed));
    let test = eval::elbo(model, &data.test, config, &mut eval_rng(seed));
    record.train_elbo = Some(train.elbo);
    record.train_recon = Some(train.recon);
    record.train_kl = Some(train.kl);
    record.test_elbo = Some(test.elbo);
    record.test_recon = Some(test.recon);
    record.test_kl = Some(test.kl);
    let subset = match config.eval.log_px_examples {
        Some(n) => data.test.head(n),
        None => data.test.clone(),
    };
    progress.evaluation_start(subset.rows, config.eval.importance_samples);
    let (log_px, examples) = eval::mean_log_px(
        model,
        &subset,
        config.eval.importance_samples,
        config.eval.max_rows_per_chunk,
        &mut eval_rng(seed),
        &mut |done| progress.evaluation(done, subset.rows),
    );
    record.log_px_examples = examples;
    record.test_log_px = Some(log_px);
    record.active_units = Some(eval::active_units(
        model,
        &data.test,
        config.eval.active_unit_threshold,
    ));
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match crate::panic_text(&*panic) {
        m if m.is_empty() => "panicked".into(),
        m => format!("panicked: {m}"),
    }
}

struct RunObserver<'a> {
    board: &'a mut RunBoard,
    bar: &'a RunProgress,
    images_every: usize,
    epochs: usize,
    seed: u64,
    checkpoints: &'a Checkpoints,
    keep_last: usize,
    log: &'a mut CheckpointLog,
}

impl Observer for RunObserver<'_> {
    fn on_batch(&mut self, examples_seen: u64) {
        self.bar.batch(examples_seen);
    }

    fn on_epoch(&mut self, m: &EpochMetrics, model: &Vae, data: &Dataset) {
        self.board.epoch(m);
        let last = m.epoch == self.epochs;
        if last || (self.images_every > 0 && m.epoch.is_multiple_of(self.images_every)) {
            self.board
                .images(model, data, m.examples_seen, &mut eval_rng(self.seed));
        }
        self.bar.epoch(m);
    }

    fn on_checkpoint(&mut self, checkpoint: Checkpoint<'_>) {
        // The log is flushed first, so its recorded length covers everything before.
        let board = self
            .board
            .position()
            .map(|(file, bytes)| BoardPosition { file, bytes });
        match self.checkpoints.save(&checkpoint, board, self.keep_last) {
            Ok(seconds) => {
                self.log.written += 1;
                self.log.seconds += seconds;
            }
            Err(e) => {
                self.bar.note(&format!("{e:#}"));
                self.log.error.get_or_insert(format!("{e:#}"));
            }
        }
    }
}
