//! One run's attempt: continue it from its checkpoint or start it, train, evaluate, save
//! its model, logs and record; never panics and never stops the sweep.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use super::eval_progress::ProgressFile;
use super::evaluation::{self, Evaluated};
use super::ledger::Ledger;
use super::rung::RungResult;
use super::shared::Shared;
use crate::checkpoint::{BoardPosition, Checkpoints, Loaded};
use crate::data::Dataset;
use crate::engine::Engine;
use crate::model::Vae;
use crate::progress::RunProgress;
use crate::sinks::model_file;
use crate::sinks::results::{RunRecord, RunStatus};
use crate::sinks::tensorboard::{ExperimentRecord, RunBoard};
use crate::spec::RunConfig;
use crate::sweep::PlannedRun;
use crate::train::{self, Checkpoint, EpochMetrics, Observer, TrainOutcome, eval_rng};
use crate::{VERSION, backend};

/// How one run's attempt ended.
pub(super) struct Executed {
    pub(super) record: RunRecord,
    /// Its files could not be written ("path: reason").
    pub(super) write_error: Option<String>,
    /// Stopped by SIGINT/SIGTERM and checkpointed; no record was written.
    pub(super) interrupted: bool,
    /// Paused at its [`crate::train::EpochLimit::Pause`]: checkpointed, its rung file
    /// written, no record.
    pub(super) paused: bool,
}

/// Trains and evaluates one run and saves its record; never panics, never stops the sweep.
/// An unfinished run continues from its newest checkpoint (a trained one, from its final
/// evaluation's saved progress). Phases: [`resume_point`], [`train_phase`],
/// [`evaluate_phase`], [`save_phase`].
pub(super) fn execute(
    shared: &Shared,
    run: &PlannedRun,
    device: &burn::tensor::Device,
    bar: &RunProgress,
) -> Executed {
    let threads = crate::engine::threads_per_run(&run.config, shared.concurrent);
    let checkpoints = Checkpoints::new(&shared.out.run_dir(&run.id), &run.id);
    let (mut loaded, mut notes) = resume_point(&checkpoints, &run.config, shared.force, bar);
    let ledger = Ledger::begin(&shared.out.run_dir(&run.id), shared.force);
    let board_dir = shared.out.board_dir(&run.label, &run.id);
    let mut log = CheckpointLog::default();
    let (outcome, mut board) = loop {
        let mut board = open_board(
            &board_dir,
            run,
            shared.text_keys,
            shared.experiment,
            loaded.as_ref(),
        );
        let from = loaded
            .as_ref()
            .map(|l| (l.path.clone(), l.resume.state.epoch));
        let outcome = train_phase(
            shared,
            run,
            device,
            threads,
            bar,
            &mut board,
            &checkpoints,
            &mut log,
            &ledger,
            loaded,
        );
        let Some(note) = damaged_checkpoint(&outcome, from) else {
            break (outcome, board);
        };
        // The checkpoint is gone: the next one back (or a fresh start) trains again.
        bar.note(&note);
        notes.push(note);
        board.flush();
        drop(board);
        let (older, passed_over) = resume_point(&checkpoints, &run.config, false, bar);
        loaded = older;
        notes.extend(passed_over);
    };
    let mut record = new_record(shared, run, threads);
    record.resume_notes = (!notes.is_empty()).then(|| notes.join("; "));
    let mut epochs: Vec<EpochMetrics> = Vec::new();
    let mut model = None;
    match outcome {
        Ok(Ok((trained, _))) if trained.interrupted => {
            return interrupted(record, &mut board, &log);
        }
        Ok(Ok((trained, _))) if trained.paused_active_units.is_some() => {
            let written = rung_result(&trained).write(&shared.out.run_dir(&run.id));
            let mut executed = interrupted(record, &mut board, &log);
            executed.interrupted = false;
            executed.paused = true;
            if let Err(e) = written {
                executed.write_error.get_or_insert(format!("{e:#}"));
            }
            return executed;
        }
        Ok(Ok((trained, data))) => {
            epochs = trained.epochs.clone();
            record_training(&trained, &data, &mut record);
            if trained.diverged_at.is_none() {
                let evaluated = evaluate_phase(
                    &trained,
                    &data,
                    run,
                    threads,
                    &checkpoints,
                    &ledger,
                    &mut record,
                    &mut board,
                    bar,
                );
                if evaluated == Some(Evaluated::Interrupted) {
                    return interrupted(record, &mut board, &log);
                }
            }
            model = Some(trained.model);
        }
        Ok(Err(e)) => record.error = Some(format!("{e:#}")),
        Err(panic) => record.error = Some(panic_message(panic)),
    }
    record.resumes = ledger.resumes();
    record.wall_seconds = ledger.seconds();
    let write_error = close_board(&mut record, board, log);
    let executed = save_phase(
        shared,
        run,
        &board_dir,
        &checkpoints,
        record,
        &epochs,
        model.as_ref(),
        write_error,
    );
    if executed.write_error.is_none() && executed.record.status != RunStatus::Failed {
        ledger.close();
    }
    if executed
        .write_error
        .as_deref()
        .is_some_and(crate::resources::is_disk_full)
    {
        // Its checkpoints would only hold the space others need; the rerun trains it anew.
        checkpoints.clear();
        ledger.close();
    }
    executed
}

/// A run continued from a checkpoint that diverged in its very first epoch after it: the
/// checkpoint is taken to be damaged in a way its checksums cannot see (it was written so),
/// and is removed; says so. A run that diverges later, or from a fresh start, diverged.
fn damaged_checkpoint(
    outcome: &std::thread::Result<anyhow::Result<(TrainOutcome, std::sync::Arc<Dataset>)>>,
    from: Option<(std::path::PathBuf, usize)>,
) -> Option<String> {
    let (path, epochs_done) = from?;
    let Ok(Ok((trained, _))) = outcome else {
        return None;
    };
    if trained.diverged_at != Some(epochs_done + 1) {
        return None;
    }
    std::fs::remove_dir_all(&path).ok()?;
    Some(format!(
        "checkpoint {} discarded: training diverged in the first epoch after it ({}); trained again from the one before",
        path.display(),
        trained
            .diverged_because
            .as_deref()
            .unwrap_or("non-finite loss")
    ))
}

/// Where a run paused at its rung stands: what successive halving ranks it by.
fn rung_result(trained: &TrainOutcome) -> RungResult {
    let last = trained.epochs.last();
    RungResult {
        epoch: trained.epochs.len(),
        test_elbo: last.and_then(|e| e.test_elbo).unwrap_or(f64::NAN),
        valid_elbo: last.and_then(|e| e.valid_elbo),
        active_units: trained.paused_active_units.unwrap_or(0),
    }
}

/// Completes the record's bookkeeping (checkpoints, finish time) and ends the run's
/// TensorBoard session; returns the first write error of the checkpoints or the log.
fn close_board(record: &mut RunRecord, mut board: RunBoard, log: CheckpointLog) -> Option<String> {
    record.checkpoints_written = log.written;
    record.checkpoint_seconds = log.seconds;
    record.finished_at = crate::sinks::results::utc_now_rfc3339();
    board.session_end(record.status == RunStatus::Ok);
    board.flush();
    log.error.or_else(|| board.error().map(str::to_string))
}

/// The checkpoint the run continues from: none with `force` (its checkpoints are removed),
/// else the newest usable one; and why each newer one was passed over (said in a note, and
/// kept for the run's row).
fn resume_point(
    checkpoints: &Checkpoints,
    config: &RunConfig,
    force: bool,
    bar: &RunProgress,
) -> (Option<Loaded>, Vec<String>) {
    if force {
        checkpoints.clear();
        return (None, Vec::new());
    }
    checkpoints.remove_unfinished();
    let mut passed_over = Vec::new();
    let loaded = checkpoints.latest(config, &mut |note| {
        bar.note(&note);
        passed_over.push(note);
    });
    if let Some(l) = &loaded {
        let s = &l.resume.state;
        bar.note(&format!(
            "continuing from checkpoint {} (epoch {}, minibatch {})",
            l.path.display(),
            s.epoch + 1,
            s.step
        ));
    }
    (loaded, passed_over)
}

/// Loads the run's data and trains it (from `loaded` where there is a checkpoint); a panic
/// is caught and becomes this run's failure.
#[allow(clippy::too_many_arguments)]
fn train_phase(
    shared: &Shared,
    run: &PlannedRun,
    device: &burn::tensor::Device,
    threads: usize,
    bar: &RunProgress,
    board: &mut RunBoard,
    checkpoints: &Checkpoints,
    log: &mut CheckpointLog,
    ledger: &Ledger,
    loaded: Option<Loaded>,
) -> std::thread::Result<anyhow::Result<(TrainOutcome, std::sync::Arc<Dataset>)>> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let data = shared.datasets.get(&run.config.data)?;
        // A failed allocation aborts the process, so a model that cannot fit is refused
        // here, as this run's failure, before any of it is built.
        let bytes = crate::model::memory_estimate_bytes(
            &run.config,
            &*data,
            data.train.rows,
            data.test.rows,
        );
        crate::resources::ensure_fits(bytes, "this model")
            .map_err(|m| anyhow::anyhow!("refused before training: {m}"))?;
        let mut observer = RunObserver {
            board,
            bar,
            images_every: run.config.eval.images_every_epochs,
            epochs: run.config.train.epochs,
            seed: run.config.train.seed,
            checkpoints,
            keep_last: run.config.train.keep_last,
            log,
            ledger,
        };
        let resume = loaded.map(|l| l.resume);
        let trained = train::train_until(
            &run.config,
            &data,
            device,
            threads,
            &mut observer,
            resume,
            run.limit.as_ref(),
        )?;
        anyhow::Ok((trained, data))
    }))
}

/// The row of a run that has not got anywhere yet (status failed until shown otherwise).
fn new_record(shared: &Shared, run: &PlannedRun, threads: usize) -> RunRecord {
    RunRecord {
        run_id: run.id.clone(),
        label: run.label.clone(),
        experiment: shared.spec.name.clone(),
        swept_keys: run.swept_keys(),
        status: RunStatus::Failed,
        config: run.config.clone(),
        log_px_k: run.config.eval.importance_samples,
        backend: backend::name(crate::engine::kind_for(&run.config)).to_string(),
        threads,
        aevb_version: VERSION.to_string(),
        experiments_commit: shared.experiments_commit.map(str::to_string),
        ..Default::default()
    }
}

/// A run stopped by SIGINT/SIGTERM: checkpointed, no record written.
fn interrupted(record: RunRecord, board: &mut RunBoard, log: &CheckpointLog) -> Executed {
    board.flush();
    let write_error = log
        .error
        .clone()
        .or_else(|| board.error().map(str::to_string));
    Executed {
        record,
        write_error,
        interrupted: true,
        paused: false,
    }
}

/// What training tells the row: the engine, examples, resumes, speed, the data's notes,
/// early stopping and divergence.
fn record_training(trained: &TrainOutcome, data: &Dataset, record: &mut RunRecord) {
    // What actually trained the run (the spec may have said `cpu`).
    record.backend = trained.engine.to_string();
    record.epochs_done = trained.epochs.len();
    record.examples_seen = trained.examples_seen;
    record.samples_per_second = trained.examples_seen as f64 / trained.train_seconds.max(1e-9);
    record.exact_test_log_px = data.exact_test_log_px;
    record.modelled_columns = data.columns.clone();
    let mut notes = data.notes.clone();
    notes.extend(constant_column_note(&record.config, data));
    record.data_notes = (!notes.is_empty()).then(|| notes.join("; "));
    record.stopped_epoch = trained.stopped_at;
    record.stop_reason = trained.stopped_because.clone();
    record.restored_epoch = trained.restored_epoch;
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
        let epochs = &trained.epochs;
        last_metrics(&epochs[..epochs.len().saturating_sub(1)], record);
    }
}

/// Under a Gaussian likelihood, the training data's constant columns: each is fitted
/// exactly, adding a constant to the ELBO and log p(x) (with a learned variance, up to
/// about `model.logvar_limit` / 2 nats each) that says nothing about the model.
fn constant_column_note(config: &RunConfig, data: &Dataset) -> Option<String> {
    if config.model.likelihood != crate::spec::LikelihoodKind::Gaussian {
        return None;
    }
    let constant = crate::data::constant_columns(&data.train);
    let names = crate::data::column_names(data, &constant);
    let shown = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 8 { ", ..." } else { "" };
    (!constant.is_empty()).then(|| {
        format!(
            "{} column(s) constant in the training data under a Gaussian likelihood ({shown}{more}): fitted exactly, they add a constant to the ELBO and log p(x) that says nothing about the model",
            constant.len()
        )
    })
}

/// The final evaluation of a trained run, its verdict (ok, or diverged in the evaluation)
/// and its TensorBoard scalars; `None` when it panicked (the row says why).
#[allow(clippy::too_many_arguments)]
fn evaluate_phase(
    trained: &TrainOutcome,
    data: &Dataset,
    run: &PlannedRun,
    threads: usize,
    checkpoints: &Checkpoints,
    ledger: &Ledger,
    record: &mut RunRecord,
    board: &mut RunBoard,
    bar: &RunProgress,
) -> Option<Evaluated> {
    let examples = evaluation::log_px_subset(data, &run.config).rows;
    let saved = ProgressFile::new(
        checkpoints.newest(),
        &run.id,
        trained.examples_seen,
        &run.config,
        examples,
        ledger.clone(),
    );
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        evaluation::final_evaluation(
            &trained.model,
            data,
            &run.config,
            threads,
            &saved,
            record,
            bar,
        )
    }));
    let evaluated = match result {
        Ok(Ok(evaluated)) => evaluated,
        Ok(Err(e)) => {
            record.error = Some(format!("{e:#}"));
            return None;
        }
        Err(panic) => {
            record.error = Some(panic_message(panic));
            return None;
        }
    };
    if evaluated == Evaluated::Interrupted {
        return Some(evaluated);
    }
    let divergence = [
        ("the final test ELBO", record.test_elbo),
        ("the test log p(x) estimate", record.test_log_px),
    ]
    .iter()
    .find_map(|(what, v)| trained.divergence.check(what, v.unwrap_or(f64::NAN)));
    match divergence {
        None => record.status = RunStatus::Ok,
        Some(why) => {
            record.status = RunStatus::Diverged;
            record.diverged_epoch = Some(record.epochs_done);
            record.error = Some(format!("diverged in the final evaluation: {why}"));
        }
    }
    let at = trained.examples_seen;
    let bounds = [
        ("test/log_px", record.test_log_px),
        ("test/log_px_se", record.test_log_px_se),
        ("test/log_px_ess_mean", record.log_px_ess_mean),
        ("test/active_units", record.active_units.map(|a| a as f64)),
    ]
    .map(|(tag, v)| (tag.to_string(), v));
    let scores = record
        .disentanglement()
        .map(|(name, v)| (format!("test/{name}"), v));
    for (tag, value) in bounds.into_iter().chain(scores) {
        if let Some(v) = value {
            board.scalar(&tag, v, at);
        }
    }
    Some(evaluated)
}

/// Writes the run's resolved spec, model and record (the record last: it marks the run
/// finished), and removes its checkpoints once it is recorded.
#[allow(clippy::too_many_arguments)]
fn save_phase(
    shared: &Shared,
    run: &PlannedRun,
    board_dir: &Path,
    checkpoints: &Checkpoints,
    mut record: RunRecord,
    epochs: &[EpochMetrics],
    model: Option<&Vae>,
    mut write_error: Option<String>,
) -> Executed {
    let run_dir = shared.out.run_dir(&run.id);
    // A spec of its own: `runner run` on this file trains the run again.
    let toml = format!(
        "# Run {} ({}) of experiment {}, resolved: every setting, sweep applied.\nname = {}\n\n{}",
        run.id,
        run.label,
        shared.spec.name,
        toml::Value::String(shared.spec.name.clone()),
        toml::to_string_pretty(&run.config).unwrap_or_default()
    );
    // The resolved spec also sits beside the run's TensorBoard logs.
    if let Err(e) =
        crate::sinks::results::write_atomic(&board_dir.join("config.toml"), toml.as_bytes())
    {
        write_error.get_or_insert(format!("{e:#}"));
    }
    // The trained model, before the record that marks the run finished.
    if let (None, Some(model)) = (&write_error, model) {
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
        && let Err(e) = shared.out.save_run(&record, epochs, &toml)
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
        paused: false,
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
    ledger: &'a Ledger,
}

impl Observer for RunObserver<'_> {
    fn on_batch(&mut self, examples_seen: u64) {
        self.bar.batch(examples_seen);
    }

    fn on_epoch(&mut self, m: &EpochMetrics, engine: &dyn Engine, data: &Dataset) {
        self.board.epoch(m);
        let last = m.epoch == self.epochs;
        if last || (self.images_every > 0 && m.epoch.is_multiple_of(self.images_every)) {
            self.board.images(
                &engine.model(),
                data,
                m.examples_seen,
                &mut eval_rng(self.seed),
            );
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
                self.ledger.touch();
            }
            Err(e) => {
                self.bar.note(&format!("{e:#}"));
                self.log.error.get_or_insert(format!("{e:#}"));
            }
        }
    }
}
