//! Bookkeeping at scale: results folders of 1,000, 4,000 and 16,000 finished runs of the main
//! job (`experiments/beta_grid.toml`: 5 β × N/5 seeds, 100 epochs each), built by a fixture
//! generator (records and epochs written the way a finished run writes them; no training),
//! then timed:
//!
//! - one finished run's bookkeeping: what the runner does when a run ends (its folder, then
//!   the tables if due; they are fresh here, as they are between refreshes);
//! - a sweep of 15 new one-epoch runs into the folder, whole command (training, the final
//!   table rebuild, everything), against the same sweep into an empty folder;
//! - `runner collect`, `runner report` and `runner plan`, whole commands, with peak memory;
//!
//! and the growth factor between sizes. `cargo bench --bench scale [-- SIZES...]`, e.g.
//! `-- 1000 4000 16000` (the default); folders go to `$SCALE_BENCH_DIR` (default
//! target/scale-bench), about 100 KB a run, removed at the end unless `SCALE_BENCH_KEEP=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aevb::sinks::results::{ResultsDir, RunRecord, RunStatus, TABLE_REFRESH, utc_now_rfc3339};
use aevb::sweep::PlannedRun;
use aevb::train::EpochMetrics;
use rayon::prelude::*;

const RUNNER: &str = env!("CARGO_BIN_EXE_runner");
const EPOCHS: usize = 100;

/// The main job with `seeds` seeds per β, its results under `results`.
fn spec_text(seeds: usize, results: &Path, name: &str) -> String {
    let main = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/beta_grid.toml"
    ))
    .expect("experiments/beta_grid.toml");
    let seeds: Vec<String> = (0..seeds).map(|s| s.to_string()).collect();
    let main = main
        .replace("name = \"beta_grid\"", &format!("name = \"{name}\""))
        .replace(
            "\"train.seed\" = [0, 1, 2]",
            &format!("\"train.seed\" = [{}]", seeds.join(", ")),
        );
    format!(
        "{main}\n[runtime]\nresults_dir = \"{}\"\n",
        results.display()
    )
}

fn plan(spec: &Path) -> (aevb::spec::Spec, Vec<PlannedRun>) {
    let spec_value = aevb::spec::load(spec, &[]).expect("the bench's spec loads");
    let runs = aevb::sweep::expand(&spec_value, &spec.display().to_string()).unwrap();
    (spec_value, runs)
}

/// A finished run's record and epochs with plausible numbers (a deterministic function of
/// its index), as `runner::attempt` writes them.
fn fixture(run: &PlannedRun, experiment: &str, i: usize) -> (RunRecord, Vec<EpochMetrics>) {
    let wiggle = ((i * 7919) % 1000) as f64 / 1000.0 - 0.5;
    let beta = run.config.objective.beta;
    // Rate falls and distortion rises with β, each run a little off its group's value.
    let (kl_end, nll_end) = (
        10.0 / (0.5 + beta) + wiggle,
        28.0 + 8.0 * beta / (1.0 + beta) + wiggle,
    );
    let epochs: Vec<EpochMetrics> = (1..=EPOCHS)
        .map(|e| {
            let early = 1.0 + 2.0 / e as f64;
            let (kl, nll) = (kl_end, nll_end * early);
            EpochMetrics {
                epoch: e,
                examples_seen: 1437 * e as u64,
                beta,
                lr: 1e-3,
                train_objective: -(nll + beta * kl),
                train_elbo: -(nll + kl),
                train_recon: -nll,
                train_kl: kl,
                test_elbo: Some(-(nll + kl) - 1.0),
                test_recon: Some(-nll - 1.0),
                test_kl: Some(kl),
                test_elbo_se: Some(0.4),
                test_kl_se: Some(0.05),
                seconds: 0.05,
                train_pass_seconds: 0.04,
                ..Default::default()
            }
        })
        .collect();
    let last = epochs.last().expect("epochs");
    let record = RunRecord {
        run_id: run.id.clone(),
        label: run.label.clone(),
        experiment: experiment.to_string(),
        swept_keys: run.swept_keys(),
        status: RunStatus::Ok,
        config: run.config.clone(),
        train_elbo: Some(last.train_elbo),
        train_recon: Some(last.train_recon),
        train_kl: Some(last.train_kl),
        test_elbo: last.test_elbo,
        test_recon: last.test_recon,
        test_kl: last.test_kl,
        test_elbo_se: Some(0.4),
        test_kl_se: Some(0.05),
        test_log_px: last.test_elbo.map(|e| e + 2.0),
        test_log_px_se: Some(0.4),
        log_px_k: 5000,
        log_px_examples: 359,
        log_px_ess_mean: Some(40.0 + wiggle),
        log_px_ess_min: Some(1.5),
        log_w_sd_mean: Some(1.2),
        active_units: Some(5),
        dis_gaussian_tc: Some(0.5 + wiggle / 2.0),
        epochs_done: EPOCHS,
        examples_seen: 1437 * EPOCHS as u64,
        wall_seconds: 5.0,
        samples_per_second: 28_000.0,
        backend: "fused".into(),
        threads: 1,
        aevb_version: aevb::VERSION.into(),
        finished_at: utc_now_rfc3339(),
        ..Default::default()
    };
    (record, epochs)
}

/// Seconds and peak resident memory (MB) of a command, run to the end (it must succeed).
///
/// Measured through a fresh copy of this program (`--measure`): a child's peak memory as
/// Linux reports it (`ru_maxrss`) includes the memory of the process that spawned it (the
/// spawn shares its address space until exec), and this program holds a whole fixture.
fn timed(command: &mut Command) -> (f64, f64) {
    let own = std::env::current_exe().unwrap();
    let output = Command::new(own)
        .arg("--measure")
        .arg(command.get_program())
        .args(command.get_args())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the measuring copy starts");
    assert!(output.status.success(), "{command:?} failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

/// `--measure PROGRAM ARGS...`: runs it, prints "seconds peak_MB", exits as it did.
fn measure_child(args: &[String]) -> ! {
    let start = Instant::now();
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the command starts");
    // Read while it runs (a full pipe would stop it); shown if it fails.
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all zeroes is a value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: an rusage filled by wait4 for our own child.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(waited, pid);
    println!("{seconds} {}", usage.ru_maxrss as f64 / 1024.0);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        eprintln!("{}", reader.join().unwrap_or_default());
    }
    std::process::exit(if ok { 0 } else { 1 })
}

struct Sizes {
    runs: usize,
    build: f64,
    bookkeeping: f64,
    sweep: f64,
    collect: (f64, f64),
    report: (f64, f64),
    plan: (f64, f64),
}

fn measure(root: &Path, runs_wanted: usize) -> Sizes {
    let results = root.join(format!("n{runs_wanted}"));
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results).unwrap();
    let name = "scale";
    let spec = results.join("scale.toml");
    std::fs::write(&spec, spec_text(runs_wanted / 5, &results, name)).unwrap();
    let (spec_value, runs) = plan(&spec);
    let out = ResultsDir::new(&results, name);
    let config = std::fs::read_to_string(&spec).unwrap();

    let start = Instant::now();
    // polars' writer needs more stack than rayon's default threads have.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()
        .unwrap();
    pool.install(|| {
        runs.par_iter().enumerate().for_each(|(i, run)| {
            let (record, epochs) = fixture(run, &spec_value.name, i);
            out.save_run(&record, &epochs, &config).unwrap();
        })
    });
    out.write_tables().unwrap();
    let build = start.elapsed().as_secs_f64();

    // One more finished run's bookkeeping, as the runner does it: median of 5.
    let extra_spec = results.join("extra.toml");
    std::fs::write(&extra_spec, spec_text(runs_wanted / 5 + 1, &results, name)).unwrap();
    let (_, extra) = plan(&extra_spec);
    let mut times: Vec<f64> = extra
        .iter()
        .filter(|r| !out.run_dir(&r.id).exists())
        .take(5)
        .map(|run| {
            let (record, epochs) = fixture(run, name, 0);
            let start = Instant::now();
            out.save_run(&record, &epochs, &config).unwrap();
            out.refresh_tables(TABLE_REFRESH).unwrap();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let bookkeeping = times[times.len() / 2];

    // 15 new one-epoch runs (3 seeds past the fixture's), whole command.
    let new_spec = results.join("new.toml");
    let first = runs_wanted / 5 + 1;
    let text = spec_text(0, &results, name).replace(
        "\"train.seed\" = []",
        &format!("\"train.seed\" = [{}, {}, {}]", first, first + 1, first + 2),
    );
    std::fs::write(&new_spec, text).unwrap();
    let (sweep, _) = timed(Command::new(RUNNER).args([
        "sweep",
        new_spec.to_str().unwrap(),
        "--set",
        "train.epochs=1",
    ]));

    let collect = timed(Command::new(RUNNER).arg("collect").arg(&out.root));
    let report = timed(Command::new(RUNNER).arg("report").arg(&out.root));
    let plan = timed(Command::new(RUNNER).arg("plan").arg(&spec));
    if std::env::var("SCALE_BENCH_KEEP").as_deref() != Ok("1") {
        let _ = std::fs::remove_dir_all(&results);
    }
    Sizes {
        runs: runs.len(),
        build,
        bookkeeping,
        sweep,
        collect,
        report,
        plan,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure_child(&args[1..]);
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 4000, 16000]
    } else {
        sizes
    };
    let root = std::env::var("SCALE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/scale-bench"))
        });
    // The same 15-run sweep into an empty folder: what the bookkeeping adds to.
    let empty = root.join("empty");
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).unwrap();
    let spec = empty.join("new.toml");
    std::fs::write(&spec, spec_text(3, &empty, "scale")).unwrap();
    let (alone, _) = timed(Command::new(RUNNER).args([
        "sweep",
        spec.to_str().unwrap(),
        "--set",
        "train.epochs=1",
    ]));
    let _ = std::fs::remove_dir_all(&empty);
    println!("a sweep of 15 one-epoch runs into an empty folder: {alone:.2} s");

    let measured: Vec<Sizes> = sizes.iter().map(|&n| measure(&root, n)).collect();
    println!(
        "\n| runs | fixture build | one run's bookkeeping | sweep of 15 new runs | collect | report | plan |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let both = |(s, mb): (f64, f64)| format!("{s:.2} s, {mb:.0} MB");
    for m in &measured {
        println!(
            "| {} | {:.1} s | {:.3} s | {:.2} s | {} | {} | {} |",
            m.runs,
            m.build,
            m.bookkeeping,
            m.sweep,
            both(m.collect),
            both(m.report),
            both(m.plan)
        );
    }
    if let (Some(a), Some(b)) = (measured.first(), measured.last())
        && b.runs > a.runs
    {
        let f = |x: f64, y: f64| y / x;
        println!(
            "\ngrowth from {} to {} runs ({:.0}× the runs): bookkeeping {:.1}×, sweep of 15 {:.1}×, collect {:.1}×, report {:.1}×, plan {:.1}×",
            a.runs,
            b.runs,
            b.runs as f64 / a.runs as f64,
            f(a.bookkeeping, b.bookkeeping),
            f(a.sweep, b.sweep),
            f(a.collect.0, b.collect.0),
            f(a.report.0, b.report.0),
            f(a.plan.0, b.plan.0)
        );
    }
}
