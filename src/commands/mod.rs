//! What each `runner` command does, beyond parsing its arguments (`main.rs`).

pub mod cluster;
pub mod results;
pub mod study_figures;
pub mod trained;
pub mod training;

/// Says which runs a rebuild of the tables in `dir` left out ("id: why" each), and how to
/// repair them: what `sweep` and `collect` print before they exit 1.
pub fn print_left_out(dir: &std::path::Path, left_out: &[String]) {
    eprintln!(
        "error: {} runs are left out of the tables in {} (their files cannot be read):",
        left_out.len(),
        dir.display()
    );
    for run in left_out {
        eprintln!("  {run}");
    }
    eprintln!(
        "error: repair or remove those run folders, then `runner collect {}` (a removed run trains again on the next sweep)",
        dir.display()
    );
}
