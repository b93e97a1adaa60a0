//! Runs that go wrong, and machines that do: a diverged run keeps its row, a model too large
//! for memory is refused while the rest of its sweep trains, a full or read-only disk is a
//! clear error with every finished run intact, and no two runs share a folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::*;

use crate::common::{read_parquet, run_sweep as sweep, runner};

fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

const TINY: &str = r#"
name = "tiny"
[data]
dataset = "digits"
train_limit = 300
test_limit = 100
[model]
latent_dim = 3
encoder = { hidden = [16] }
decoder = { hidden = [16] }
[train]
epochs = 2
batch_size = 100
[eval]
importance_samples = 10
images_every_epochs = 0
"#;

fn write_spec(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{TINY}\n{extra}")).unwrap();
    path
}

#[test]
fn diverged_runs_keep_their_rows_and_report_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    // NaN (lr = 1e20) and a finite blow-up (lr = 1e6), beside a healthy run.
    let spec = write_spec(
        dir.path(),
        "div.toml",
        "[[sweep.zip]]\n\"train.optimizer\" = [\"sgd\", \"sgd\", \"adam\"]\n\"train.lr\" = [1e20, 1e6, 1e-3]\n",
    );
    let results = dir.path().join("results");
    let out = sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 ok, 2 diverged"), "{stderr}");

    let runs = read_parquet(&results.join("tiny/runs.parquet"));
    assert_eq!(runs.height(), 3, "{runs}");
    let labels = strings(&runs, "label");
    let status = strings(&runs, "status");
    let errors = strings(&runs, "error");
    for i in 0..3 {
        let label = labels[i].clone().unwrap();
        let expected = if label.contains("adam") {
            "ok"
        } else {
            "diverged"
        };
        assert_eq!(status[i].as_deref(), Some(expected), "{label}");
        if expected == "diverged" {
            let error = errors[i].clone().unwrap_or_default();
            assert!(error.contains("diverged in epoch 1"), "{label}: {error}");
        }
    }
    let diverged_epoch = runs.column("diverged_epoch").unwrap().i64().unwrap();
    assert_eq!(
        diverged_epoch.iter().flatten().collect::<Vec<_>>(),
        vec![1, 1]
    );
    // Their epochs are in epochs.parquet too: the diverged epoch of each, two of the ok run.
    let epochs = read_parquet(&results.join("tiny/epochs.parquet"));
    assert_eq!(epochs.height(), 1 + 1 + 2, "{epochs}");

    // A rerun counts them as finished (diverging is deterministic) and trains nothing.
    let again = sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("3 already finished"), "{stderr}");

    let stdout = crate::common::report(&results.join("tiny"), "json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let total = |key: &str| -> f64 { rows.iter().map(|r| r[key].as_f64().unwrap_or(0.0)).sum() };
    assert_eq!(
        (total("ok"), total("diverged"), total("failed")),
        (1.0, 2.0, 0.0),
        "{stdout}"
    );
    // Only the ok run's numbers are averaged.
    let with_metric = rows
        .iter()
        .filter(|r| r["test_elbo_mean"].is_number())
        .count();
    assert_eq!(with_metric, 1, "{stdout}");
}

/// A model some machine could hold (fewer than 2⁴⁸ parameters) but the memory estimate says
/// this one cannot: refused at planning, naming the key that weighs most, nothing written.
#[test]
fn a_model_too_large_for_this_machines_memory_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "huge.toml",
        "[sweep.grid]\n\"model.latent_dim\" = [1000000000, 3]\n",
    );
    let results = dir.path().join("results");
    crate::common::assert_refused(&spec, &results, &[], "huge.toml", "key `model`");
    let out = sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("of memory, but"), "{stderr}");
    // A training minibatch too large is named as such.
    let batch = write_spec(dir.path(), "batch.toml", "");
    let huge_batch = [
        "--set",
        "objective.kind=iwae",
        "--set",
        "objective.iwae_k=100000000",
    ];
    crate::common::assert_refused(
        &batch,
        &results,
        &huge_batch,
        "batch.toml",
        "key `train.batch_size`",
    );
}

#[test]
fn a_batch_larger_than_the_dataset_still_trains() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "batch.toml", "");
    let results = dir.path().join("results");
    let out = sweep(&spec, &results, &["--set", "train.batch_size=100000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn labels_that_differ_only_in_slashes_get_separate_tensorboard_folders() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("a_b");
    std::fs::create_dir_all(a.join("b")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for d in [a.join("b"), b.clone()] {
        std::fs::write(d.join("x.csv"), "u,v\n0.1,0.2\n0.3,0.4\n0.5,0.6\n").unwrap();
    }
    // Swept string values "a/b/x.csv" and "a_b/x.csv" give labels "path=…/a/b/x.csv" and
    // "path=…/a_b/x.csv", which make the same folder name once '/' becomes '_'.
    let spec = dir.path().join("paths.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"paths\"\n[data]\ndataset = \"table\"\n[model]\nlikelihood = \"gaussian\"\nlatent_dim = 1\n[train]\nepochs = 1\n[eval]\nimportance_samples = 5\n[sweep.grid]\n\"data.path\" = [\"{}\", \"{}\"]\n",
            a.join("b/x.csv").display(),
            b.join("x.csv").display()
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boards: Vec<PathBuf> = std::fs::read_dir(results.join("paths/tb"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(boards.len(), 2, "{boards:?}");
    for board in boards {
        let events = std::fs::read_dir(&board)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("events.out"))
            .count();
        assert_eq!(events, 1, "{}", board.display());
    }
}

#[test]
fn records_deleted_during_a_sweep_are_an_error_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "del.toml",
        "[sweep.grid]\n\"train.seed\" = [0, 1]\n",
    );
    let results = dir.path().join("results");
    let runs_dir = results.join("tiny/runs");
    // The sweep stops itself (SIGSTOP) once its first run is recorded, before the second
    // starts; the records are deleted then, and the sweep continued.
    let child = runner()
        .arg("sweep")
        .arg(&spec)
        .args(["--workers", "1", "--set", "train.epochs=30", "--set"])
        .arg(format!("runtime.results_dir={}", results.display()))
        .env("AEVB_TEST_SIGNAL", "runs=1,signal=STOP")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: waiting on our own child; WUNTRACED returns when it stops.
    let waited = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFSTOPPED(status),
        "the sweep ended instead of stopping: {status}"
    );
    let finished = std::fs::read_dir(&runs_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("record.json").exists())
        .count();
    assert_eq!(finished, 1);
    std::fs::remove_dir_all(&runs_dir).unwrap();
    // SAFETY: continuing our own stopped child.
    unsafe {
        libc::kill(pid, libc::SIGCONT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 runs have no record"), "{stderr}");
    // The next sweep retrains what vanished and ends with every row present.
    let out = sweep(&spec, &results, &["--set", "train.epochs=30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_parquet(&results.join("tiny/runs.parquet")).height(), 2);
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .output()
            .ok()?
            .status
            .success();
        ok.then(|| Mount(path.to_path_buf()))
    }

    fn remount(&self, options: &str) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fills the filesystem at `dir` until it has no room for a block: stops on ENOSPC only
/// (a CI run once found room for three whole runs after the loop had stopped on another
/// error), then checks with statvfs that less than one block is free.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    let mut other_errors = 0;
    loop {
        match f.write_all(&block).and_then(|_| f.sync_data()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => {
                other_errors += 1;
                assert!(other_errors < 100, "filling {}: {e}", dir.display());
            }
        }
    }
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is a plain C struct of integers, for which all zeroes is a value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a struct for statvfs to fill in.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
    let free = stat.f_bavail as u64 * stat.f_frsize as u64;
    assert!(
        free < 8192,
        "{free} bytes still free after filling {}",
        dir.display()
    );
}

#[test]
fn a_full_disk_stops_the_sweep_with_a_clear_error_and_finished_runs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = is_root()
        .then(|| Mount::tmpfs(&dir.path().join("disk"), "size=8m"))
        .flatten()
    else {
        eprintln!("SKIPPED: a full disk needs root to mount a small tmpfs");
        return;
    };
    let results = disk.0.join("results");
    let spec = write_spec(dir.path(), "full.toml", "");
    let first = sweep(&spec, &results, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let runs_parquet = results.join("tiny/runs.parquet");
    let before = std::fs::read(&runs_parquet).unwrap();
    let record: Vec<PathBuf> = std::fs::read_dir(results.join("tiny/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("record.json"))
        .collect();
    let record_bytes = std::fs::read(&record[0]).unwrap();

    let spec = write_spec(
        dir.path(),
        "full.toml",
        "[sweep.grid]\n\"train.seed\" = [0, 1, 2]\n",
    );
    // Full before the sweep starts, then with 16 KiB left (it fills up during the runs).
    for free in [0u64, 16 * 1024] {
        fill(&disk.0);
        let filler = std::fs::OpenOptions::new()
            .write(true)
            .open(disk.0.join("filler"))
            .unwrap();
        let len = filler.metadata().unwrap().len();
        filler.set_len(len.saturating_sub(free)).unwrap();
        // Wider layers than the first sweep's: a run's model and checkpoint (~1 MB) cannot
        // fit in what is left whatever an earlier attempt's leftovers free up (with the
        // 16-neuron model, one CI run once found room for two whole runs).
        let wide = [
            "--workers",
            "1",
            "--set",
            "model.encoder.hidden=[512]",
            "--set",
            "model.decoder.hidden=[512]",
        ];
        let out = sweep(&spec, &results, &wide);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{free}: {stderr}");
        assert!(
            stderr.contains("No space left on device")
                && stderr.contains(&*results.display().to_string()),
            "{free}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{free}: {stderr}");
        // One message: the folder, the space free and needed, the commands that finish.
        assert!(
            stderr.contains(&format!(
                "the disk holding {} is full",
                results.join("tiny").display()
            )) && stderr.contains("writes about")
                && stderr.contains("runner collect"),
            "{free}: {stderr}"
        );
        // A run that failed for lack of space leaves no checkpoints behind.
        for entry in std::fs::read_dir(results.join("tiny/runs"))
            .unwrap()
            .flatten()
        {
            assert!(
                !entry.path().join("checkpoints").exists(),
                "{free}: {}",
                entry.path().display()
            );
        }
        // What finished before is untouched and readable.
        assert_eq!(std::fs::read(&record[0]).unwrap(), record_bytes, "{free}");
        let runs = read_parquet(&runs_parquet);
        assert!(runs.height() >= 1, "{free}");
        if free == 0 {
            assert_eq!(std::fs::read(&runs_parquet).unwrap(), before);
        }
        // Every record on disk is whole.
        for entry in std::fs::read_dir(results.join("tiny/runs"))
            .unwrap()
            .flatten()
        {
            let path = entry.path().join("record.json");
            if path.exists() {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                    "{}",
                    path.display()
                );
            }
        }
        std::fs::remove_file(disk.0.join("filler")).unwrap();
    }

    // With space again, the sweep finishes the rest.
    let out = sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(read_parquet(&runs_parquet).height(), 3);
}

#[test]
fn a_read_only_results_folder_is_refused_before_training_with_finished_runs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = is_root()
        .then(|| Mount::tmpfs(&dir.path().join("ro"), "size=8m"))
        .flatten()
    else {
        eprintln!("SKIPPED: a read-only folder needs root to mount a tmpfs (root ignores modes)");
        return;
    };
    let results = disk.0.join("results");
    let spec = write_spec(dir.path(), "ro.toml", "");
    assert!(sweep(&spec, &results, &[]).status.success());
    let runs_parquet = results.join("tiny/runs.parquet");
    let before = std::fs::read(&runs_parquet).unwrap();
    assert!(disk.remount("ro"), "remount read-only");

    let spec = write_spec(
        dir.path(),
        "ro.toml",
        "[sweep.grid]\n\"train.seed\" = [0, 1]\n",
    );
    let out = sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Read-only file system")
            && stderr.contains("runtime.results_dir")
            && stderr.contains(&*results.display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(&runs_parquet).unwrap(), before);

    // A results folder that does not exist yet, under a read-only one.
    let out = sweep(&spec, &disk.0.join("new/results"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}
