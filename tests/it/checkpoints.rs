//! Checkpoints and exact resume (kill -9 and SIGTERM), trained models read back, early
//! stopping, and the trained-model commands.

use std::collections::BTreeSet;
use std::path::Path;

use aevb::trained::TrainedRun;
use serde_json::Value;

use crate::common::{
    events_in, read_parquet, record, run_dir, run_sweep, runner, sweep_command, tags, write,
};

/// Ten epochs of 90 minibatches (1438 digits, 16 at a time), stopped where a test says
/// with `AEVB_TEST_SIGNAL` (the run signals itself after a given minibatch).
const LONG_DIGITS: &str = r#"
name = "resume"
[data]
dataset = "digits"
[model]
latent_dim = 3
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 10
batch_size = 16
seed = 5
checkpoint_every_epochs = 1
keep_last = 2
[eval]
importance_samples = 50
images_every_epochs = 4
"#;

const EPOCHS: i64 = 10;

/// Names of the complete checkpoints of the experiment's run (none while it has no folder).
fn checkpoints(results: &Path, name: &str) -> Vec<String> {
    let Ok(runs) = std::fs::read_dir(results.join(name).join("runs")) else {
        return Vec::new();
    };
    runs.flatten()
        .flat_map(|r| {
            std::fs::read_dir(r.path().join("checkpoints"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Runs the sweep until it sends itself `signal` after minibatch `step` of epoch `epoch`
/// (`AEVB_TEST_SIGNAL`); its exit status and stderr.
fn sweep_until(
    spec: &Path,
    results: &Path,
    epoch: usize,
    step: usize,
    signal: &str,
) -> (std::process::ExitStatus, String) {
    let out = sweep_command(spec, results, &[])
        .env(
            "AEVB_TEST_SIGNAL",
            format!("epoch={epoch},step={step},signal={signal}"),
        )
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const METRICS: [&str; 12] = [
    "status",
    "train_elbo",
    "train_recon",
    "train_kl",
    "test_elbo",
    "test_recon",
    "test_kl",
    "test_log_px",
    "active_units",
    "epochs_done",
    "examples_seen",
    "run_id",
];

/// Every epoch's metrics but its wall time, as JSON text.
fn epochs_without_time(results: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(run_dir(results, name).join("epochs.json")).unwrap();
    let Value::Array(epochs) = serde_json::from_str(&text).unwrap() else {
        panic!("epochs.json is not a list")
    };
    epochs
        .into_iter()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("seconds");
            e.as_object_mut().unwrap().remove("train_pass_seconds");
            e.to_string()
        })
        .collect()
}

/// (tag, step) pairs of the run's TensorBoard log but the HParams records.
fn logged(results: &Path, name: &str) -> Vec<(String, i64)> {
    let tb = results.join(name).join("tb").join("run");
    let mut t: Vec<(String, i64)> = tags(&events_in(&tb))
        .into_iter()
        .filter(|(tag, _)| !tag.starts_with("_hparams_"))
        .collect();
    t.sort();
    t
}

fn assert_same_as_uninterrupted(reference: &Path, resumed: &Path, name: &str) {
    let (a, b) = (record(reference, name), record(resumed, name));
    for key in METRICS {
        assert_eq!(a[key], b[key], "{key} differs after the resume");
    }
    assert!(b["resumes"].as_u64().unwrap() >= 1, "{b:?}");
    assert_eq!(
        epochs_without_time(reference, name),
        epochs_without_time(resumed, name),
        "per-epoch metrics differ after the resume"
    );
    // Parquet: every epoch once.
    let epochs = read_parquet(&resumed.join(name).join("epochs.parquet"));
    let numbers: Vec<i64> = epochs
        .column("epoch")
        .unwrap()
        .cast(&polars::prelude::DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let expected: Vec<i64> = (1..=EPOCHS).collect();
    assert_eq!(
        numbers, expected,
        "epochs.parquet must hold each epoch once"
    );
    // TensorBoard: the same (tag, step) pairs as the uninterrupted run, none twice.
    let (la, lb) = (logged(reference, name), logged(resumed, name));
    let unique: BTreeSet<&(String, i64)> = lb.iter().collect();
    assert_eq!(
        unique.len(),
        lb.len(),
        "a TensorBoard step was logged twice"
    );
    assert_eq!(la, lb, "the resumed run's TensorBoard log differs");
    assert!(
        checkpoints(resumed, name).is_empty(),
        "a finished run keeps no checkpoints"
    );
}

#[test]
fn a_run_killed_after_a_checkpoint_resumes_bit_for_bit() {
    // backend "cpu": the fused engine trains this model.
    killed_run_resumes_bit_for_bit(LONG_DIGITS);
}

#[test]
fn a_run_killed_after_a_checkpoint_resumes_bit_for_bit_on_the_autodiff_engine() {
    killed_run_resumes_bit_for_bit(&format!("{LONG_DIGITS}[runtime]\nbackend = \"flex\"\n"));
}

#[test]
fn beta_tcvae_annealed_and_factor_vae_resume_bit_for_bit_and_log_their_terms() {
    let objectives = [
        ("kind = \"beta_tcvae\"\nbeta = 4.0", "train/tc"),
        (
            "kind = \"annealed\"\ncapacity_max = 5.0\ncapacity_steps = 300\ncapacity_gamma = 20.0",
            "train/capacity",
        ),
        (
            "kind = \"factor_vae\"\nfactor_gamma = 5.0\ndiscriminator_hidden = [16, 16]",
            "train/discriminator_loss",
        ),
    ];
    for (objective, tag) in objectives {
        let tags =
            killed_run_resumes_bit_for_bit(&format!("{LONG_DIGITS}[objective]\n{objective}\n"));
        let steps = tags.iter().filter(|(t, _)| t == tag).count();
        assert_eq!(steps as i64, EPOCHS, "{tag} once per epoch: {tags:?}");
    }
}

/// The VampPrior on the fused engine: its components are recomputed from the checkpoint's
/// weights and pseudo-inputs, and the resumed run is the uninterrupted one, bit for bit.
#[test]
fn a_vampprior_run_resumes_bit_for_bit() {
    let spec = with_vamp(LONG_DIGITS);
    killed_run_resumes_bit_for_bit(&spec);
}

/// `spec_text` with a VampPrior of 10 pseudo-inputs (and the Monte Carlo KL it needs).
fn with_vamp(spec_text: &str) -> String {
    spec_text.replace(
        "decoder = { hidden = [32] }",
        "decoder = { hidden = [32] }\nprior = \"vamp\"\npseudo_inputs = 10",
    ) + "[objective]\nkl = \"monte_carlo\"\n"
}

/// Kills a run after a checkpoint, resumes it, checks it against an uninterrupted one, and
/// gives the resumed run's TensorBoard (tag, step) pairs.
fn killed_run_resumes_bit_for_bit(spec_text: &str) -> Vec<(String, i64)> {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "resume.toml", spec_text);
    let reference = dir.path().join("reference");
    let out = run_sweep(&spec, &reference, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resumed = dir.path().join("resumed");
    // SIGKILL (no handler runs) after minibatch 5 of epoch 4: the checkpoints of epochs 2
    // and 3 are on disk.
    let (status, stderr) = sweep_until(&spec, &resumed, 4, 5, "KILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    let mut saved = checkpoints(&resumed, "resume");
    saved.sort();
    assert_eq!(saved.len(), 2, "{saved:?}");
    assert!(saved[1].starts_with("000003"), "{saved:?}");
    assert!(
        !run_dir(&resumed, "resume").join("record.json").exists(),
        "killed mid-run, the run must not be recorded as finished"
    );
    let plan = runner()
        .arg("plan")
        .arg(&spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", resumed.display()))
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("to continue from its checkpoint"), "{plan}");
    let out = run_sweep(&spec, &resumed, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("continuing from checkpoint"), "{stderr}");
    assert_same_as_uninterrupted(&reference, &resumed, "resume");
    logged(&resumed, "resume")
}

#[test]
fn sigterm_checkpoints_mid_epoch_and_the_rerun_continues_exactly() {
    sigterm_mid_epoch(LONG_DIGITS);
}

/// burn's route reads its steps' sums from the device only at checkpoints and epoch ends:
/// the mid-epoch checkpoint must hold the sums of every step before it.
#[test]
fn sigterm_mid_epoch_on_the_autodiff_engine_continues_exactly() {
    sigterm_mid_epoch(&format!("{LONG_DIGITS}[runtime]\nbackend = \"flex\"\n"));
}

fn sigterm_mid_epoch(spec_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    // No periodic checkpoints: the only one is written on SIGTERM, mid-epoch.
    let text = spec_text.replace("checkpoint_every_epochs = 1", "checkpoint_every_epochs = 0");
    let spec = write(dir.path(), "resume.toml", &text);
    let reference = dir.path().join("reference");
    let out = run_sweep(&spec, &reference, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resumed = dir.path().join("resumed");
    // SIGTERM after minibatch 17 of epoch 3: the run checkpoints there and the sweep exits.
    let (status, stderr) = sweep_until(&spec, &resumed, 3, 17, "TERM");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("1 runs checkpointed"), "{stderr}");
    let saved = checkpoints(&resumed, "resume");
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].ends_with("-000017"),
        "mid-epoch, at minibatch 17: {saved:?}"
    );
    let out = run_sweep(&spec, &resumed, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_uninterrupted(&reference, &resumed, "resume");
}

#[test]
fn an_unreadable_checkpoint_is_passed_over_for_the_one_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "resume.toml", LONG_DIGITS);
    let results = dir.path().join("results");
    let (status, stderr) = sweep_until(&spec, &results, 5, 1, "KILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    let mut saved = checkpoints(&results, "resume");
    saved.sort();
    // keep_last = 2: the checkpoints of epochs 3 and 4.
    assert_eq!(saved.len(), 2, "{saved:?}");
    let (older, newest) = (&saved[saved.len() - 2], &saved[saved.len() - 1]);
    let newest = run_dir(&results, "resume").join("checkpoints").join(newest);
    // Whichever engine wrote it: every file but the training state becomes unreadable.
    for file in std::fs::read_dir(&newest).unwrap().flatten() {
        if file.file_name() != "state.toml" {
            std::fs::write(file.path(), b"not a checkpoint").unwrap();
        }
    }
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not used"), "{stderr}");
    assert!(
        stderr.contains(&format!("checkpoints/{older}")),
        "continues from the older checkpoint: {stderr}"
    );
    assert_eq!(record(&results, "resume")["status"], "ok");
}

/// A checkpoint whose checksums match but whose weights are not finite (damaged before it
/// was written): the run diverges in the first epoch after it, so the checkpoint is
/// discarded and the run trains again from the one before, ending as an uninterrupted run
/// would, with a note in its row; never a final "diverged".
#[test]
fn a_checkpoint_that_diverges_at_once_is_discarded_for_the_one_before_it() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "resume.toml", LONG_DIGITS);
    let reference = dir.path().join("reference");
    assert!(run_sweep(&spec, &reference, &[]).status.success());
    let results = dir.path().join("results");
    let (status, stderr) = sweep_until(&spec, &results, 5, 1, "KILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    let mut saved = checkpoints(&results, "resume");
    saved.sort();
    let (older, newest) = (&saved[0], &saved[1]);
    let newest_dir = run_dir(&results, "resume").join("checkpoints").join(newest);
    let state_path = newest_dir.join("state.toml");
    let mut state = std::fs::read_to_string(&state_path).unwrap();
    for file in std::fs::read_dir(&newest_dir).unwrap().flatten() {
        let name = file.file_name().to_string_lossy().into_owned();
        if name == "state.toml" || !file.path().is_file() {
            continue;
        }
        // Every float of the tensor data near the file's end becomes NaN, and the manifest
        // is made to agree.
        let mut bytes = std::fs::read(file.path()).unwrap();
        let old = hex(&sha2::Sha256::digest(&bytes));
        let n = bytes.len();
        bytes[n - 64..n - 32].fill(0xff);
        std::fs::write(file.path(), &bytes).unwrap();
        let new = hex(&sha2::Sha256::digest(&bytes));
        assert!(state.contains(&old), "{name} in the manifest");
        state = state.replace(&old, &new);
    }
    std::fs::write(&state_path, state).unwrap();
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let row = record(&results, "resume");
    assert_eq!(row["status"], "ok", "{stderr}");
    let notes = row["resume_notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains(newest.as_str()) && notes.contains("discarded"),
        "{notes}"
    );
    assert!(stderr.contains(&format!("checkpoints/{older}")), "{stderr}");
    assert_same_as_uninterrupted(&reference, &results, "resume");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes flipped inside a checkpoint's weights leave a file that still parses: only its
/// SHA-256 in state.toml tells. The run passes it over for the one before it, says which in
/// its row, and ends with the uninterrupted run's numbers (not as "diverged").
#[test]
fn a_checkpoint_with_flipped_bytes_is_passed_over_and_the_run_ends_as_uninterrupted() {
    for spec_text in [
        LONG_DIGITS.to_string(),
        format!("{LONG_DIGITS}[runtime]\nbackend = \"flex\"\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let spec = write(dir.path(), "resume.toml", &spec_text);
        let reference = dir.path().join("reference");
        assert!(run_sweep(&spec, &reference, &[]).status.success());
        let results = dir.path().join("results");
        let (status, stderr) = sweep_until(&spec, &results, 5, 1, "KILL");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
        let mut saved = checkpoints(&results, "resume");
        saved.sort();
        let (older, newest) = (&saved[0], &saved[1]);
        let newest_dir = run_dir(&results, "resume").join("checkpoints").join(newest);
        // The largest file is the weights (and optimiser state): flip bytes near its end,
        // inside the tensor data, where no format check looks.
        let weights = std::fs::read_dir(&newest_dir)
            .unwrap()
            .flatten()
            .filter(|f| f.file_name() != "state.toml" && f.path().is_file())
            .max_by_key(|f| f.metadata().unwrap().len())
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&weights).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n - 64..n - 32] {
            *b ^= 0x5a;
        }
        std::fs::write(&weights, &bytes).unwrap();
        let out = run_sweep(&spec, &results, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("is damaged"), "{stderr}");
        assert!(
            stderr.contains(&format!("checkpoints/{older}")),
            "continues from the older checkpoint: {stderr}"
        );
        let row = record(&results, "resume");
        let notes = row["resume_notes"].as_str().unwrap_or_default();
        assert!(
            notes.contains(newest.as_str()) && notes.contains("damaged"),
            "{notes}"
        );
        assert_same_as_uninterrupted(&reference, &results, "resume");
    }
}

const SMALL_2D: &str = r#"
name = "small2d"
[data]
dataset = "digits"
[model]
latent_dim = 2
encoder = { hidden = [32] }
decoder = { hidden = [32] }
[train]
epochs = 3
batch_size = 32
seed = 2
[eval]
importance_samples = 40
images_every_epochs = 0
"#;

#[test]
fn a_saved_model_reproduces_the_recorded_test_elbo_and_log_px() {
    saved_model_reproduces(SMALL_2D);
}

#[test]
fn a_saved_vampprior_model_reproduces_the_recorded_test_elbo_and_log_px() {
    saved_model_reproduces(&with_vamp(SMALL_2D));
}

fn saved_model_reproduces(spec_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "small.toml", spec_text);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = run_dir(&results, "small2d");
    let run = TrainedRun::open(run_dir.to_str().unwrap(), &results).unwrap();
    // `runner eval`'s path with the run's own K, on one thread and on two: the recorded
    // numbers, bit for bit (nothing re-recorded: the same K on the same examples).
    for threads in [1, 2] {
        let mut again = TrainedRun::open(run_dir.to_str().unwrap(), &results).unwrap();
        let request = aevb::trained::reevaluate::Request {
            threads: Some(threads),
            ..Default::default()
        };
        let r =
            aevb::trained::reevaluate::reevaluate(&mut again, &request, &mut |_, _| {}).unwrap();
        assert_eq!(
            Some(r.test_elbo.mean),
            run.record.test_elbo,
            "{threads} threads"
        );
        assert_eq!(Some(r.log_px.log_px.mean), run.record.test_log_px);
        assert_eq!(r.log_px.log_px.se(), run.record.test_log_px_se);
        assert_eq!(r.k, run.record.log_px_k);
    }
    // Opened by run id and by label too.
    let id = run.record.run_id.clone();
    assert_eq!(TrainedRun::open(&id, &results).unwrap().dir, run_dir);
    assert_eq!(TrainedRun::open("run", &results).unwrap().dir, run_dir);
    assert!(TrainedRun::open("nope", &results).is_err());
}

#[test]
fn runner_eval_with_a_larger_k_updates_the_row_and_tightens_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "small.toml", SMALL_2D);
    let results = dir.path().join("results");
    assert!(run_sweep(&spec, &results, &[]).status.success());
    let before = record(&results, "small2d");
    let id = before["run_id"].as_str().unwrap().to_string();
    let out = runner()
        .args(["eval", &id, "--importance-samples", "2000", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = record(&results, "small2d");
    assert_eq!(after["log_px_k"], 2000);
    // The K = 40 estimate is a lower bound in expectation; K = 2000 is tighter, and both
    // lie above the ELBO (K = 1).
    let (lo, hi) = (
        before["test_log_px"].as_f64().unwrap(),
        after["test_log_px"].as_f64().unwrap(),
    );
    assert!(hi > lo, "K = 2000 gave {hi}, K = 40 gave {lo}");
    assert!(hi > after["test_elbo"].as_f64().unwrap());
    let recorded = format!("{:.4}", before["test_elbo"].as_f64().unwrap());
    assert!(
        stdout.contains(&format!("test ELBO      {recorded}")),
        "{stdout}"
    );
    // The experiment's table shows the new estimate.
    let runs = read_parquet(&results.join("small2d/runs.parquet"));
    let k = runs.column("log_px_k").unwrap().get(0).unwrap().to_string();
    assert_eq!(k, "2000");

    // A quick check with fewer samples afterwards prints its number but keeps K = 2000's.
    let eval = |extra: &[&str]| {
        runner()
            .args(["eval", &id, "--importance-samples", "100", "--results"])
            .arg(&results)
            .args(extra)
            .output()
            .unwrap()
    };
    let quick = eval(&[]);
    let stderr = String::from_utf8_lossy(&quick.stderr);
    assert!(quick.status.success(), "{stderr}");
    assert!(
        stderr.contains("keeps its estimate with K = 2000"),
        "{stderr}"
    );
    let kept = record(&results, "small2d");
    assert_eq!(kept["log_px_k"], 2000);
    assert_eq!(kept["test_log_px"], after["test_log_px"]);
    // --replace records it deliberately.
    assert!(eval(&["--replace"]).status.success());
    assert_eq!(record(&results, "small2d")["log_px_k"], 100);
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn trained_model_commands_write_their_figures_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "small.toml", SMALL_2D);
    let results = dir.path().join("results");
    assert!(run_sweep(&spec, &results, &[]).status.success());
    let run = run_dir(&results, "small2d");
    let figures = run.join("figures");
    let command = |args: &[&str]| {
        let out = runner().args(args).arg(&run).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    command(&["sample", "-n", "10"]);
    let samples = read_parquet(&figures.join("samples.parquet"));
    assert_eq!(samples.height(), 10);
    assert_eq!(samples.width(), 1 + 2 + 64, "sample, z_0..1, x_0..63");
    // 8×8 digits upscaled ×4 with a border: 4 columns of (8 + 1) pixels + 1, ×4.
    assert_eq!(png_size(&figures.join("samples.png")), (148, 112));

    command(&["reconstruct", "-n", "5"]);
    let recon = read_parquet(&figures.join("reconstructions.parquet"));
    assert_eq!(recon.height(), 5);
    assert!(recon.column("label").is_ok() && recon.column("reconstruction_63").is_ok());

    command(&["encode"]);
    let encoded = read_parquet(&figures.join("encoded.parquet"));
    assert_eq!(encoded.height(), 359, "every test example");
    for c in ["example", "label", "mu_0", "mu_1", "logvar_0", "logvar_1"] {
        assert!(encoded.column(c).is_ok(), "{c}");
    }
    assert!(figures.join("latent_scatter.png").is_file());

    command(&["traverse", "--steps", "5"]);
    // Two latent dimensions, five steps each (184 × 76 pixels of images), with a margin
    // for the row labels ("z1  KL 2.31") on the left.
    let (width, height) = png_size(&figures.join("traversals.png"));
    assert_eq!(height, 76);
    assert!(width > 184 + 40, "{width}: room for the row labels");
    command(&["interpolate", "--pairs", "3", "--steps", "4"]);
    assert_eq!(png_size(&figures.join("interpolations.png")), (220, 112));
    command(&["manifold", "--size", "6"]);
    assert_eq!(png_size(&figures.join("manifold.png")), (220, 220));

    // A run trained on a backend this machine lacks (CUDA, in a build without it) is read
    // on the CPU, with a note.
    let record_path = run.join("record.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    record["config"]["runtime"]["backend"] = "cuda".into();
    std::fs::write(&record_path, record.to_string()).unwrap();
    let out = runner()
        .args(["sample", "-n", "4"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if cfg!(not(feature = "cuda")) {
        assert!(
            stderr.contains("trained on cuda") && stderr.contains("using flex"),
            "{stderr}"
        );
    }

    // Manifold needs two latents: a clear refusal, exit 2.
    let wide = write(
        dir.path(),
        "wide.toml",
        &SMALL_2D
            .replace("latent_dim = 2", "latent_dim = 3")
            .replace("small2d", "wide"),
    );
    assert!(run_sweep(&wide, &results, &[]).status.success());
    let out = runner()
        .arg("manifold")
        .arg(run_dir(&results, "wide"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model.latent_dim = 3"));
    let out = runner()
        .args(["sample", "no-such-run", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn early_stopping_ends_a_run_that_stopped_improving() {
    let dir = tempfile::tempdir().unwrap();
    // lr so small that the test ELBO moves by far less than min_delta = 1 nat: the first
    // evaluation is the best, the next two do not improve on it, and the run stops.
    let text = SMALL_2D.replace(
        "epochs = 3",
        "epochs = 50\nlr = 1e-9\nearly_stopping_patience = 2\nearly_stopping_min_delta = 1.0",
    );
    let spec = write(dir.path(), "small.toml", &text);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = record(&results, "small2d");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["stopped_epoch"], 3);
    assert_eq!(r["epochs_done"], 3);
    assert!(
        r["stop_reason"].as_str().unwrap().contains("stopped early"),
        "{r:?}"
    );
}

/// SMALL_2D with 300 digits held out for validation and early stopping (patience 3, by
/// more than 0.3 nats) within 80 epochs; `train_extra` adds `[train]` keys.
fn validated_small(train_extra: &str) -> String {
    SMALL_2D
        .replace(
            "epochs = 3",
            &format!("epochs = 80\nearly_stopping_patience = 3\nearly_stopping_min_delta = 0.3{train_extra}"),
        )
        .replace("dataset = \"digits\"", "dataset = \"digits\"\nvalidation = 300")
}

/// A column with no nulls, as f64s.
fn f64_column(frame: &polars::prelude::DataFrame, name: &str) -> Vec<f64> {
    let c = frame.column(name).unwrap().f64().unwrap();
    (0..c.len()).map(|i| c.get(i).expect(name)).collect()
}

#[test]
fn early_stopping_watches_the_validation_set_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = validated_small("");
    let spec = write(dir.path(), "small.toml", &text);
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let epochs = read_parquet(&results.join("small2d").join("epochs.parquet"));
    let column = |name: &str| f64_column(&epochs, name);
    let (valid, test) = (column("valid_elbo"), column("test_elbo"));
    assert!(column("valid_elbo_se").iter().all(|se| *se > 0.0));
    // Two sets, two numbers: the validation ELBO is not the test ELBO again.
    assert!(valid.iter().zip(&test).all(|(v, t)| v != t));
    // The stopping rule replayed on the validation column: where it stops, and its best.
    let (mut best, mut without, mut stop) = (f64::NEG_INFINITY, 0, None);
    for (i, &v) in valid.iter().enumerate() {
        if v > best + 0.3 || best == f64::NEG_INFINITY {
            (best, without) = (v, 0);
        } else {
            without += 1;
        }
        if without >= 3 {
            stop = Some(i + 1);
            break;
        }
    }
    let stop = stop.expect("the replay stops within 80 epochs");
    let r = record(&results, "small2d");
    assert_eq!(r["stopped_epoch"], stop);
    assert_eq!(valid.len(), stop);
    let reason = r["stop_reason"].as_str().unwrap();
    assert!(
        reason.contains("the validation ELBO") && reason.contains(&format!("{best:.4}")),
        "{reason}"
    );
    let logged = logged(&results, "small2d");
    assert!(logged.iter().any(|(tag, _)| tag == "validation/elbo"));
}

/// Early stopping on a validation set with `restore_best`: the row is the best epoch's
/// model (its test ELBO is the one logged at that epoch), not the last epoch's, which is
/// what the same run without `restore_best` reports.
#[test]
fn restore_best_reports_the_model_of_the_best_validation_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let base = validated_small("");
    let results = dir.path().join("results");
    let last = write(dir.path(), "last.toml", &base.replace("small2d", "last"));
    let best = write(
        dir.path(),
        "best.toml",
        &base
            .replace("small2d", "best")
            .replace("epochs = 80", "epochs = 80\nrestore_best = true"),
    );
    for spec in [&last, &best] {
        let out = run_sweep(spec, &results, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let epochs = read_parquet(&results.join("best").join("epochs.parquet"));
    let column = |name: &str| f64_column(&epochs, name);
    let (valid, test) = (column("valid_elbo"), column("test_elbo"));
    // The best evaluation by the stopping rule: the last epoch that improved by > 0.3.
    let mut best_epoch = 1;
    for (i, &v) in valid.iter().enumerate() {
        if v > valid[best_epoch - 1] + 0.3 {
            best_epoch = i + 1;
        }
    }
    let (r_best, r_last) = (record(&results, "best"), record(&results, "last"));
    let stopped = r_best["stopped_epoch"].as_u64().unwrap() as usize;
    assert!(best_epoch < stopped);
    assert_eq!(r_best["restored_epoch"], best_epoch);
    assert_eq!(r_best["stopped_epoch"], r_last["stopped_epoch"]);
    assert!(r_last["restored_epoch"].is_null());
    let row = |r: &serde_json::Map<String, serde_json::Value>| r["test_elbo"].as_f64().unwrap();
    assert!(
        (row(&r_best) - test[best_epoch - 1]).abs() < 1e-9,
        "{} vs {test:?}",
        row(&r_best)
    );
    assert!(
        (row(&r_last) - test[stopped - 1]).abs() < 1e-9,
        "{} vs {test:?}",
        row(&r_last)
    );
    // The saved model is the restored one: it re-evaluates to the row.
    let mut run = TrainedRun::open(run_dir(&results, "best").to_str().unwrap(), &results).unwrap();
    let request = aevb::trained::reevaluate::Request::default();
    let again = aevb::trained::reevaluate::reevaluate(&mut run, &request, &mut |_, _| {}).unwrap();
    assert_eq!(again.test_elbo.mean, row(&r_best));
}

/// A `restore_best` run killed after its best epoch resumes with that epoch's model from
/// its checkpoint: the same row as the run trained straight through.
#[test]
fn a_restore_best_run_killed_after_its_best_epoch_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let text = validated_small("\nrestore_best = true\ncheckpoint_every_epochs = 1");
    let spec = write(dir.path(), "best.toml", &text);
    let reference = dir.path().join("reference");
    assert!(run_sweep(&spec, &reference, &[]).status.success());
    let straight = record(&reference, "small2d");
    let stopped = straight["stopped_epoch"].as_u64().unwrap() as usize;
    let best = straight["restored_epoch"].as_u64().unwrap() as usize;
    assert!(best + 1 < stopped, "best {best}, stopped {stopped}");
    // Killed in its last epoch: the newest checkpoint is after its best.
    let results = dir.path().join("results");
    let (status, stderr) = sweep_until(&spec, &results, stopped, 1, "KILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = record(&results, "small2d");
    assert_eq!(resumed["resumes"], 1);
    assert_eq!(resumed["restored_epoch"], best);
    for key in METRICS {
        assert_eq!(straight[key], resumed[key], "{key}");
    }
}

#[test]
fn a_checkpoint_of_another_engine_or_numerics_is_passed_over_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "resume.toml", LONG_DIGITS);
    let reference = dir.path().join("reference");
    assert!(run_sweep(&spec, &reference, &[]).status.success());
    let results = dir.path().join("results");
    let (status, stderr) = sweep_until(&spec, &results, 3, 2, "KILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    // Make every checkpoint claim another engine's numerics, as one from an older aevb
    // (or the other engine) would.
    let folder = run_dir(&results, "resume").join("checkpoints");
    for checkpoint in std::fs::read_dir(&folder).unwrap().flatten() {
        let state = checkpoint.path().join("state.toml");
        let text = std::fs::read_to_string(&state).unwrap();
        assert!(text.contains("engine = \"fused/"), "{text}");
        let text = text.replace("engine = \"fused/", "engine = \"flex/");
        std::fs::write(&state, text).unwrap();
    }
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not used: written by flex/") && stderr.contains("trains on fused/"),
        "{stderr}"
    );
    // Trained afresh, to the uninterrupted run's numbers.
    let (a, b) = (record(&reference, "resume"), record(&results, "resume"));
    for key in METRICS {
        assert_eq!(a[key], b[key], "{key}");
    }
    // Its second attempt, though it started afresh: `resumes` counts every attempt.
    assert_eq!(b["resumes"], 1);
}
