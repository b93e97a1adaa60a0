//! Shards: which runs of a sweep one process trains. Runs are ordered by id and dealt out
//! round-robin, so the assignment is stable (the same plan gives the same shards on every
//! node), balanced (shard sizes differ by at most one), and every run is in exactly one.

use std::str::FromStr;

use crate::sweep::PlannedRun;

/// Shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// `--shard I/N` or `--shard auto` (from the scheduler's environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(ShardArg::Auto);
        }
        let parse = || -> Option<Shard> {
            let (i, n) = s.split_once('/')?;
            let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
            (count > 0 && index < count).then_some(Shard { index, count })
        };
        parse()
            .map(ShardArg::Fixed)
            .ok_or_else(|| format!("expected I/N with 0 <= I < N (e.g. 0/4), or auto; got `{s}`"))
    }
}

/// Environment variable for the number of shards where the scheduler does not say it
/// (a Kubernetes Indexed Job gives the index, `JOB_COMPLETION_INDEX`, but not the count).
pub const SHARDS_ENV: &str = "AEVB_SHARDS";

impl ShardArg {
    /// The shard itself; `auto` reads it from `env` (a Slurm array task or an Indexed Job).
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        match self {
            ShardArg::Fixed(shard) => Ok(shard),
            ShardArg::Auto => from_env(env),
        }
    }
}

/// The shard of this Slurm array task (`SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT`,
/// or with `_MIN`, `_MAX` and `_STEP`) or Kubernetes Indexed Job pod
/// (`JOB_COMPLETION_INDEX` with `AEVB_SHARDS`).
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let number = |key: &str| -> Result<Option<usize>, String> {
        match env(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}={v} is not a whole number")),
        }
    };
    let checked = |index: usize, count: usize, what: &str| {
        if count > 0 && index < count {
            Ok(Shard { index, count })
        } else {
            Err(format!("{what}: shard {index} of {count} does not exist"))
        }
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match (
            number("SLURM_ARRAY_TASK_COUNT")?,
            number("SLURM_ARRAY_TASK_MAX")?,
        ) {
            (Some(count), _) => count,
            (None, Some(max)) => (max.saturating_sub(min)) / step + 1,
            (None, None) => {
                return Err("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX".into());
            }
        };
        let index = id.checked_sub(min).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")
        })? / step;
        return checked(index, count, "the Slurm array");
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = number(SHARDS_ENV)?.ok_or_else(|| {
            format!("JOB_COMPLETION_INDEX is set but {SHARDS_ENV} (the job's completions) is not; `runner k8s` sets it")
        })?;
        return checked(index, count, "the Indexed Job");
    }
    Err(format!(
        "--shard auto: not in a Slurm array task (no SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job (no JOB_COMPLETION_INDEX); give --shard I/N, or set {SHARDS_ENV} with JOB_COMPLETION_INDEX"
    ))
}

/// The runs of `shard`, in plan order.
pub fn select(runs: &[PlannedRun], shard: Shard) -> Vec<PlannedRun> {
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    runs.iter()
        .filter(|r| {
            let position = ids.binary_search(&r.id.as_str()).unwrap_or(0);
            position % shard.count == shard.index
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shard_arguments_parse_or_say_what_is_expected() {
        assert_eq!(
            "2/5".parse::<ShardArg>(),
            Ok(ShardArg::Fixed(Shard { index: 2, count: 5 }))
        );
        assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
        for bad in ["5/5", "1/0", "a/2", "3", "-1/2", ""] {
            let e = bad.parse::<ShardArg>().unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn slurm_and_kubernetes_environments_give_the_shard() {
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(from_env(&slurm), Ok(Shard { index: 2, count: 3 }));
        // --array=10-14:2 → ids 10, 12, 14: task 12 is shard 1 of 3.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "14"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(from_env(&stepped), Ok(Shard { index: 1, count: 3 }));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("AEVB_SHARDS", "4")]);
        assert_eq!(from_env(&k8s), Ok(Shard { index: 0, count: 4 }));
        assert!(
            from_env(&env(&[("JOB_COMPLETION_INDEX", "0")]))
                .unwrap_err()
                .contains("AEVB_SHARDS")
        );
        assert!(from_env(&env(&[])).unwrap_err().contains("--shard I/N"));
        let out_of_range = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(from_env(&out_of_range).is_err());
    }
}

#[cfg(test)]
mod select_tests {
    use super::*;
    use crate::spec::RunConfig;

    fn planned(id: &str) -> PlannedRun {
        PlannedRun {
            id: id.to_string(),
            label: id.to_string(),
            swept: Vec::new(),
            config: RunConfig::default(),
            limit: None,
        }
    }

    #[test]
    fn shards_partition_the_runs_evenly_whatever_their_order() {
        let ids = ["e1", "a7", "c3", "b2", "f0", "d9", "a1"];
        let runs: Vec<PlannedRun> = ids.iter().map(|i| planned(i)).collect();
        let mut reversed = runs.clone();
        reversed.reverse();
        for count in 1..=9 {
            let mut seen: Vec<String> = Vec::new();
            for index in 0..count {
                let shard = Shard { index, count };
                let mine: Vec<String> = select(&runs, shard).into_iter().map(|r| r.id).collect();
                // The same shard whatever order the plan lists the runs in.
                let mut again: Vec<String> =
                    select(&reversed, shard).into_iter().map(|r| r.id).collect();
                again.reverse();
                assert_eq!(mine, again);
                // Sizes differ by at most one: ⌊7/count⌋ or ⌈7/count⌉.
                assert!(mine.len() == 7 / count || mine.len() == 7_usize.div_ceil(count));
                seen.extend(mine);
            }
            seen.sort();
            let mut all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            all.sort();
            assert_eq!(seen, all, "{count} shards: every run exactly once");
        }
    }
}
