//! `runner slurm`, `runner k8s` and `runner collect`: sweeps over a cluster.

use std::path::Path;
use std::process::ExitCode;

use aevb::launch::{k8s, slurm};
use aevb::prepare;
use aevb::trained::RunNotFound;

use crate::{SpecArgs, load};

pub fn slurm_command(args: &SpecArgs, submit: bool) -> anyhow::Result<ExitCode> {
    let (spec, runs) = load(args)?;
    let file = args.spec.display().to_string();
    // Problems with the data show here, not in every array task.
    prepare::load_data(&runs, &file)?;
    let workdir = std::env::current_dir()?;
    let spec_path = std::fs::canonicalize(&args.spec)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.spec.display()))?;
    let runner = match &spec.runtime.slurm.runner {
        Some(r) => r.clone(),
        None => std::env::current_exe()?.display().to_string(),
    };
    let launch = slurm::Launch {
        spec: &spec,
        spec_path: &spec_path,
        sets: &args.set,
        runs: &runs,
        runner: &runner,
        workdir: &workdir,
    };
    let script = slurm::write(&launch)?;
    eprintln!(
        "wrote {}: {} runs over {} array tasks, logs beside it",
        script.display(),
        runs.len(),
        slurm::tasks(&spec, &runs)
    );
    if submit {
        let id = slurm::submit(&script)?;
        println!("{id}");
        eprintln!(
            "submitted job {id}; `squeue -j {id}` shows it, `runner collect {}` tabulates what has finished",
            Path::new(&spec.runtime.results_dir)
                .join(&spec.name)
                .display()
        );
    } else {
        eprintln!("submit with: sbatch {}", script.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn k8s_command(args: &SpecArgs) -> anyhow::Result<ExitCode> {
    let (spec, runs) = load(args)?;
    let file = args.spec.display().to_string();
    prepare::load_data(&runs, &file)?;
    let text = k8s::manifest(&spec, &file, &args.set, &runs)?;
    let path = k8s::write(&spec, &text, &std::env::current_dir()?)?;
    eprintln!(
        "wrote {}: {} runs over {} indexed pods; apply with: kubectl apply -f {}",
        path.display(),
        runs.len(),
        k8s::completions(&spec, &runs),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn collect_command(dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.join("runs").is_dir() {
        return Err(RunNotFound(format!(
            "{}: not an experiment's results folder (no runs/ in it)",
            dir.display()
        ))
        .into());
    }
    let out = aevb::sinks::results::ResultsDir {
        root: dir.to_path_buf(),
    };
    let rebuilt = out.write_tables()?;
    // What the table says, read back from the file just written.
    use polars::prelude::SerReader;
    let path = out.runs_parquet();
    let table = polars::prelude::ParquetReader::new(std::fs::File::open(&path)?).finish()?;
    let text = |name: &str| -> anyhow::Result<Vec<String>> {
        let c = table.column(name)?.str()?.clone();
        Ok(c.iter().map(|v| v.unwrap_or("").to_string()).collect())
    };
    let (ids, statuses) = (text("run_id")?, text("status")?);
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    let count = |s: &str| statuses.iter().filter(|v| *v == s).count();
    println!(
        "{} rows, {} distinct runs: {} ok, {} diverged, {} failed",
        ids.len(),
        distinct.len(),
        count("ok"),
        count("diverged"),
        count("failed")
    );
    eprintln!(
        "wrote {} and {}",
        out.runs_parquet().display(),
        out.epochs_parquet().display()
    );
    if !rebuilt.left_out.is_empty() {
        super::print_left_out(dir, &rebuilt.left_out);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
