//! One run's record (`record.json`, and its row of `runs.parquet`): what it was, how it
//! ended, its estimates with their standard errors, its metrics, and what reproduces it.

use serde::{Deserialize, Serialize};

use crate::spec::RunConfig;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Diverged,
    #[default]
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
        }
    }
}

/// Everything known about one finished run; one row of runs.parquet.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RunRecord {
    pub run_id: String,
    pub label: String,
    pub experiment: String,
    /// The swept keys, comma-separated: what `runner report` groups by.
    pub swept_keys: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub diverged_epoch: Option<usize>,
    pub config: RunConfig,
    pub train_elbo: Option<f64>,
    pub train_recon: Option<f64>,
    pub train_kl: Option<f64>,
    pub test_elbo: Option<f64>,
    pub test_recon: Option<f64>,
    pub test_kl: Option<f64>,
    /// Standard errors over the test examples (sample sd / √n) of the test ELBO and KL.
    #[serde(default)]
    pub test_elbo_se: Option<f64>,
    #[serde(default)]
    pub test_kl_se: Option<f64>,
    /// Importance-sampled mean test log p(x) with `log_px_k` samples per example.
    pub test_log_px: Option<f64>,
    /// Its standard error over the `log_px_examples` examples.
    #[serde(default)]
    pub test_log_px_se: Option<f64>,
    pub log_px_k: usize,
    pub log_px_examples: usize,
    /// The importance weights' effective sample size (mean and minimum over examples, out
    /// of K) and the mean standard deviation of the log-weights: when ESS is near 1 the
    /// estimate rests on single samples and K is too small.
    #[serde(default)]
    pub log_px_ess_mean: Option<f64>,
    #[serde(default)]
    pub log_px_ess_min: Option<f64>,
    #[serde(default)]
    pub log_w_sd_mean: Option<f64>,
    /// The exact mean test log p(x), where the data's true model is known.
    pub exact_test_log_px: Option<f64>,
    pub active_units: Option<usize>,
    /// β-VAE score (Higgins et al. 2017; disentanglement_lib's parameters, factors held fixed
    /// on the test set): held-out accuracy of the linear classifier; null without factors.
    #[serde(default)]
    pub dis_beta_vae: Option<f64>,
    /// FactorVAE score (Kim & Mnih 2018; likewise): held-out majority-vote accuracy.
    #[serde(default)]
    pub dis_factor_vae: Option<f64>,
    /// Mutual Information Gap (Chen et al. 2018; disentanglement_lib's protocol: 20 bins) of
    /// the posterior means of the test set against its known factors; null without factors.
    #[serde(default)]
    pub dis_mig: Option<f64>,
    /// Gaussian total correlation of the test set's posterior means (nats; unsupervised:
    /// every run has it): ½ (Σ ln Σ_jj − ln det Σ) over the dimensions that vary.
    #[serde(default)]
    pub dis_gaussian_tc: Option<f64>,
    /// SAP (Kumar et al. 2018; disentanglement_lib's continuous-factor score) of the test
    /// set's posterior means against its factors; null without factors.
    #[serde(default)]
    pub dis_sap: Option<f64>,
    /// DCI (Eastwood & Williams 2018) with ridge-regression importances: disentanglement,
    /// completeness and informativeness (held-out R²); null without factors.
    #[serde(default)]
    pub dis_dci_disentanglement: Option<f64>,
    #[serde(default)]
    pub dis_dci_completeness: Option<f64>,
    #[serde(default)]
    pub dis_dci_informativeness: Option<f64>,
    /// Table data: the columns that were modelled, in order (null for other datasets).
    #[serde(default)]
    pub modelled_columns: Option<Vec<String>>,
    /// What the data loader warned about (skipped columns, ...), kept with the row.
    #[serde(default)]
    pub data_notes: Option<String>,
    pub epochs_done: usize,
    /// Early stopping: the epoch after which the run stopped, and why.
    #[serde(default)]
    pub stopped_epoch: Option<usize>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// `train.restore_best`: the epoch (1-based) whose model the final evaluation, the
    /// saved model and this row are of, the best evaluation early stopping saw.
    #[serde(default)]
    pub restored_epoch: Option<usize>,
    pub examples_seen: u64,
    /// Times the run continued from a checkpoint (after a kill, Ctrl-C or preemption).
    #[serde(default)]
    pub resumes: usize,
    /// The checkpoints the attempt that finished the run passed over (damaged, unreadable,
    /// of another engine), each with why; null when none was.
    #[serde(default)]
    pub resume_notes: Option<String>,
    /// Checkpoints written and the seconds they took in all.
    #[serde(default)]
    pub checkpoints_written: usize,
    #[serde(default)]
    pub checkpoint_seconds: f64,
    #[serde(deserialize_with = "crate::train::f64_or_nan")]
    pub wall_seconds: f64,
    #[serde(deserialize_with = "crate::train::f64_or_nan")]
    pub samples_per_second: f64,
    pub backend: String,
    /// Host threads that computed the run (see `engine::threads_per_run`).
    #[serde(default)]
    pub threads: usize,
    pub aevb_version: String,
    /// Git commit of the folder holding the spec ("-dirty" with uncommitted changes there),
    /// null where it is not in a repository.
    pub experiments_commit: Option<String>,
    pub finished_at: String,
}

/// A record with every optional field filled, so that a column that is null in every row
/// (no run diverged, no data.path) still gets its proper type.
pub(super) fn template_record() -> RunRecord {
    let mut config = RunConfig::default();
    config.data.path = Some(String::new());
    config.data.test_path = Some(String::new());
    config.data.train_limit = Some(0);
    config.data.test_limit = Some(0);
    config.data.columns = Some(vec![String::new()]);
    config.eval.log_px_examples = Some(0);
    config.runtime.workers = Some(0);
    config.runtime.threads = Some(0);
    RunRecord {
        error: Some(String::new()),
        diverged_epoch: Some(0),
        train_elbo: Some(0.0),
        train_recon: Some(0.0),
        train_kl: Some(0.0),
        test_elbo: Some(0.0),
        test_recon: Some(0.0),
        test_kl: Some(0.0),
        test_log_px: Some(0.0),
        test_elbo_se: Some(0.0),
        test_kl_se: Some(0.0),
        test_log_px_se: Some(0.0),
        log_px_ess_mean: Some(0.0),
        log_px_ess_min: Some(0.0),
        log_w_sd_mean: Some(0.0),
        exact_test_log_px: Some(0.0),
        active_units: Some(0),
        dis_beta_vae: Some(0.0),
        dis_factor_vae: Some(0.0),
        dis_mig: Some(0.0),
        dis_gaussian_tc: Some(0.0),
        dis_sap: Some(0.0),
        dis_dci_disentanglement: Some(0.0),
        dis_dci_completeness: Some(0.0),
        dis_dci_informativeness: Some(0.0),
        modelled_columns: Some(vec![String::new()]),
        data_notes: Some(String::new()),
        stopped_epoch: Some(0),
        stop_reason: Some(String::new()),
        restored_epoch: Some(0),
        resume_notes: Some(String::new()),
        experiments_commit: Some(String::new()),
        config,
        ..Default::default()
    }
}

impl RunRecord {
    /// The `dis_*` columns from one evaluation set's metrics.
    pub fn set_disentanglement(&mut self, s: &crate::metrics::Scores) {
        self.dis_beta_vae = s.beta_vae;
        self.dis_factor_vae = s.factor_vae;
        self.dis_mig = s.mig;
        self.dis_sap = s.sap;
        self.dis_dci_disentanglement = s.dci_disentanglement;
        self.dis_dci_completeness = s.dci_completeness;
        self.dis_dci_informativeness = s.dci_informativeness;
        self.dis_gaussian_tc = s.gaussian_tc;
    }

    /// The `dis_*` columns as (name, value), in [`crate::metrics::NAMES`]' order.
    pub fn disentanglement(&self) -> [(&'static str, Option<f64>); crate::metrics::NAMES.len()] {
        crate::metrics::Scores {
            beta_vae: self.dis_beta_vae,
            factor_vae: self.dis_factor_vae,
            mig: self.dis_mig,
            sap: self.dis_sap,
            dci_disentanglement: self.dis_dci_disentanglement,
            dci_completeness: self.dis_dci_completeness,
            dci_informativeness: self.dis_dci_informativeness,
            gaussian_tc: self.dis_gaussian_tc,
        }
        .named()
    }
}
