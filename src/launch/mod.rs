//! Sweeps that outgrow one machine: the runs split into shards (`runner sweep --shard`), a
//! Slurm array job (`runner slurm`) or a Kubernetes Indexed Job (`runner k8s`) with one
//! shard per task, all writing to one results folder (claims and the folder lock keep them
//! apart; `runner collect` rebuilds its tables at any time).

pub mod k8s;
pub mod shard;
pub mod slurm;

use std::path::{Path, PathBuf};

use crate::sinks::results::ResultsDir;
use crate::spec::Spec;
use crate::sweep::PlannedRun;

/// Shards (array tasks, completions) a launch uses: `configured`, else one per run (at most
/// 100); never more than there are runs.
pub fn shards(configured: Option<usize>, runs: &[PlannedRun]) -> usize {
    configured
        .unwrap_or(runs.len().min(100))
        .clamp(1, runs.len().max(1))
}

/// The folder `name` (`slurm`, `k8s`) of the experiment's results folder, as seen from
/// `workdir`: where a launch writes its files.
pub fn launch_dir(spec: &Spec, workdir: &Path, name: &str) -> PathBuf {
    ResultsDir::new(&workdir.join(&spec.runtime.results_dir), &spec.name)
        .root
        .join(name)
}

/// The words of a shell command, quoted for a POSIX shell.
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one POSIX shell word: bare when it is safe, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_words_whole() {
        assert_eq!(shell_quote("experiments/a.toml"), "experiments/a.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote(r#"sweep.grid={"train.seed"=[0, 1]}"#),
            r#"'sweep.grid={"train.seed"=[0, 1]}'"#
        );
    }
}
