//! Bad input of every kind is refused before anything is written: exit code 2, a message
//! that names the file and the key (or the data file), no panic, no results folder.
//! Specs in TOML and YAML, `--set` overrides, environment variables and data files.

use crate::common::runner;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One bad input: the spec file (name and text), extra command-line arguments, environment
/// variables, and what the error message must contain besides the spec file's name.
struct Case {
    file: &'static str,
    text: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    expect: Vec<String>,
}

fn case(file: &'static str, text: &str, expect: &[&str]) -> Case {
    Case {
        file,
        text: text.to_string(),
        args: Vec::new(),
        env: Vec::new(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

fn with_set(mut c: Case, set: &str) -> Case {
    c.args.extend(["--set".to_string(), set.to_string()]);
    c
}

fn with_env(mut c: Case, key: &'static str, value: &str) -> Case {
    c.env.push((key, value.to_string()));
    c
}

const OK: &str = "name = \"t\"\n";

/// Specs with a bad value: TOML, then the same class in YAML where the syntax differs.
fn spec_cases() -> Vec<Case> {
    let mut cases = vec![
        // The file itself.
        case("empty.toml", "", &["empty"]),
        case("comments.toml", "# nothing but a comment\n\n", &["empty"]),
        case("empty.yaml", "", &["empty"]),
        case("empty_map.yaml", "{}\n", &["empty"]),
        case("syntax.toml", "name = \"t\"\n[model\n", &["TOML"]),
        case(
            "syntax.yaml",
            "name: t\nmodel: [1, 2\n",
            &["not valid YAML", "line"],
        ),
        case("dup.toml", "name = \"t\"\nname = \"u\"\n", &["name"]),
        case(
            "dup.yaml",
            "name: t\nmodel:\n  latent_dim: 3\n  latent_dim: 4\n",
            &["latent_dim", "duplicate"],
        ),
        case("top_list.yaml", "- 1\n- 2\n", &["expected"]),
        case(
            "section_scalar.toml",
            "name = \"t\"\nmodel = 3\n",
            &["model", "expected"],
        ),
        case("ext.json", "{\"name\": \"t\"}", &[".toml"]),
        case(
            "too_big_for_any_machine.toml",
            "name = \"t\"\n[model]\nlatent_dim = 1000000000000000\n",
            &["model", "2^48", "parameters"],
        ),
        case(
            "binary.toml",
            "PK\u{3}\u{4}\u{0}\u{0}name",
            &["not a text file"],
        ),
        case(
            "deep.yaml",
            &format!(
                "name: t\nmodel: {}1{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            &["nested", "levels deep"],
        ),
        case(
            "zip_twice.toml",
            "name = \"t\"\n[[sweep.zip]]\n\"objective.beta\" = [1.0, 2.0]\n\"train.epochs\" = [1, 2]\n[[sweep.zip]]\n\"objective.beta\" = [3.0, 4.0]\n\"train.lr\" = [0.1, 0.01]\n",
            &["sweep.zip[1].\"objective.beta\"", "sweep.zip[0]"],
        ),
        // Names that would write outside the results folder, or are not one folder.
        case("dotdot.toml", "name = \"..\"\n", &["name"]),
        case("dot.toml", "name = \".\"\n", &["name"]),
        case("hidden.toml", "name = \".hidden\"\n", &["name"]),
        case("slash.toml", "name = \"a/b\"\n", &["name"]),
        case("empty_name.toml", "name = \"\"\n", &["name"]),
        case(
            "long_name.toml",
            &format!("name = \"{}\"\n", "a".repeat(101)),
            &["name"],
        ),
        case("name_type.yaml", "name: [1]\n", &["name"]),
        // Unknown keys, with the closest key suggested.
        case(
            "unknown_top.toml",
            "name = \"t\"\nnmae = 3\n",
            &["nmae", "`name`"],
        ),
        case(
            "unknown_data.toml",
            "name = \"t\"\n[data]\ndatset = \"digits\"\n",
            &["data.datset", "data.dataset"],
        ),
        case(
            "unknown_model.toml",
            "name = \"t\"\n[model]\nlattent_dim = 3\n",
            &["model.lattent_dim", "model.latent_dim"],
        ),
        case(
            "unknown_enc.toml",
            "name = \"t\"\n[model.encoder]\nhiden = [3]\n",
            &["hiden"],
        ),
        case(
            "unknown_obj.toml",
            "name = \"t\"\n[objective]\nbeat = 1\n",
            &["objective.beat", "objective.beta"],
        ),
        case(
            "unknown_train.yaml",
            "name: t\ntrain:\n  epohcs: 3\n",
            &["train.epohcs", "train.epochs"],
        ),
        case(
            "unknown_eval.yaml",
            "name: t\neval:\n  importance: 3\n",
            &["eval.importance"],
        ),
        case(
            "unknown_runtime.toml",
            "name = \"t\"\n[runtime]\nworker = 3\n",
            &["runtime.worker", "runtime.workers"],
        ),
        case(
            "unknown_synth.toml",
            "name = \"t\"\n[data.synthetic]\ndim = 3\n",
            &["dim"],
        ),
        case(
            "unknown_sweep.toml",
            "name = \"t\"\n[sweep]\ngird = {}\n",
            &["sweep.gird"],
        ),
        // Wrong types.
        case(
            "type_latent.toml",
            "name = \"t\"\n[model]\nlatent_dim = \"ten\"\n",
            &["model.latent_dim", "expected"],
        ),
        case(
            "type_epochs_float.toml",
            "name = \"t\"\n[train]\nepochs = 1.5\n",
            &["train.epochs"],
        ),
        case(
            "type_epochs_neg.toml",
            "name = \"t\"\n[train]\nepochs = -1\n",
            &["train.epochs"],
        ),
        case(
            "type_lr.yaml",
            "name: t\ntrain:\n  lr: fast\n",
            &["train.lr"],
        ),
        case(
            "type_shuffle.toml",
            "name = \"t\"\n[train]\nshuffle = \"yes\"\n",
            &["train.shuffle"],
        ),
        case(
            "type_hidden.toml",
            "name = \"t\"\n[model.encoder]\nhidden = 400\n",
            &["model.encoder.hidden"],
        ),
        case(
            "type_hidden_neg.yaml",
            "name: t\nmodel:\n  decoder:\n    hidden: [-3]\n",
            &["model.decoder.hidden"],
        ),
        case(
            "type_seed.toml",
            "name = \"t\"\n[train]\nseed = -1\n",
            &["train.seed"],
        ),
        case(
            "type_columns.toml",
            "name = \"t\"\n[data]\ncolumns = \"a\"\n",
            &["data.columns"],
        ),
        // Unknown values of a choice.
        case(
            "enum_dataset.toml",
            "name = \"t\"\n[data]\ndataset = \"cifar\"\n",
            &["data.dataset", "digits"],
        ),
        case(
            "enum_binarization.toml",
            "name = \"t\"\n[data]\nbinarization = \"yes\"\n",
            &["data.binarization", "dynamic"],
        ),
        case(
            "enum_static.toml",
            "name = \"t\"\n[data]\nstatic_mode = \"round\"\n",
            &["data.static_mode", "threshold"],
        ),
        case(
            "enum_activation.toml",
            "name = \"t\"\n[model.encoder]\nactivation = \"swish\"\n",
            &["activation", "relu"],
        ),
        case(
            "enum_likelihood.yaml",
            "name: t\nmodel:\n  likelihood: poisson\n",
            &["model.likelihood", "bernoulli"],
        ),
        case(
            "enum_variance.toml",
            "name = \"t\"\n[model]\nvariance = \"big\"\n",
            &["model.variance", "learned"],
        ),
        case(
            "enum_prior.toml",
            "name = \"t\"\n[model]\nprior = \"laplace\"\n",
            &["model.prior", "mixture"],
        ),
        case(
            "enum_init.toml",
            "name = \"t\"\n[model]\ninit = \"xavier\"\n",
            &["model.init", "pytorch"],
        ),
        case(
            "enum_kind.toml",
            "name = \"t\"\n[objective]\nkind = \"vae\"\n",
            &["objective.kind", "iwae"],
        ),
        case(
            "enum_kl.toml",
            "name = \"t\"\n[objective]\nkl = \"exact\"\n",
            &["objective.kl", "monte_carlo"],
        ),
        case(
            "enum_optimizer.yaml",
            "name: t\ntrain:\n  optimizer: lbfgs\n",
            &["train.optimizer", "adam"],
        ),
        case(
            "enum_schedule.toml",
            "name = \"t\"\n[train]\nlr_schedule = \"cosine\"\n",
            &["train.lr_schedule", "burda"],
        ),
        case(
            "enum_backend.toml",
            "name = \"t\"\n[runtime]\nbackend = \"tpu\"\n",
            &["runtime.backend", "flex"],
        ),
        // NaN and infinities, named by their key wherever they come from.
        case(
            "nan_lr.toml",
            "name = \"t\"\n[train]\nlr = nan\n",
            &["train.lr", "finite"],
        ),
        case(
            "inf_lr.toml",
            "name = \"t\"\n[train]\nlr = inf\n",
            &["train.lr", "finite"],
        ),
        case(
            "nan_beta.yaml",
            "name: t\nobjective:\n  beta: .nan\n",
            &["objective.beta", "finite"],
        ),
        case(
            "inf_beta.yaml",
            "name: t\nobjective:\n  beta: .inf\n",
            &["objective.beta", "finite"],
        ),
        case(
            "ninf_wd.toml",
            "name = \"t\"\n[train]\nweight_decay = -inf\n",
            &["train.weight_decay"],
        ),
        case(
            "nan_threshold.toml",
            "name = \"t\"\n[data]\nthreshold = nan\n",
            &["data.threshold", "finite"],
        ),
        case(
            "nan_fraction.toml",
            "name = \"t\"\n[data]\ntest_fraction = nan\n",
            &["data.test_fraction", "finite"],
        ),
        case(
            "nan_init.toml",
            "name = \"t\"\n[model]\ninit_std = nan\n",
            &["model.init_std", "finite"],
        ),
        case(
            "nan_noise.yaml",
            "name: t\ndata:\n  synthetic:\n    noise_std: .nan\n",
            &["data.synthetic.noise_std"],
        ),
        case(
            "nan_active.toml",
            "name = \"t\"\n[eval]\nactive_unit_threshold = nan\n",
            &["eval.active_unit_threshold"],
        ),
        // Values of the right type that make no sense.
        case(
            "train_limit.toml",
            "name = \"t\"\n[data]\ntrain_limit = 0\n",
            &["data.train_limit"],
        ),
        case(
            "test_limit.toml",
            "name = \"t\"\n[data]\ntest_limit = 0\n",
            &["data.test_limit"],
        ),
        case(
            "log_px_examples.toml",
            "name = \"t\"\n[eval]\nlog_px_examples = 0\n",
            &["eval.log_px_examples"],
        ),
        case(
            "beta1.toml",
            "name = \"t\"\n[train]\nadam_beta1 = 1.5\n",
            &["train.adam_beta1", "[0, 1)"],
        ),
        case(
            "beta1_neg.yaml",
            "name: t\ntrain:\n  adam_beta1: -0.1\n",
            &["train.adam_beta1"],
        ),
        case(
            "beta2_one.toml",
            "name = \"t\"\n[train]\nadam_beta2 = 1.0\n",
            &["train.adam_beta2"],
        ),
        case(
            "eps_neg.toml",
            "name = \"t\"\n[train]\nadam_epsilon = -1\n",
            &["train.adam_epsilon"],
        ),
        case(
            "eps_zero.toml",
            "name = \"t\"\n[train]\nadam_epsilon = 0.0\n",
            &["train.adam_epsilon"],
        ),
        case(
            "noise_neg.toml",
            "name = \"t\"\n[data.synthetic]\nnoise_std = -0.5\n",
            &["data.synthetic.noise_std"],
        ),
        case(
            "noise_zero.yaml",
            "name: t\ndata:\n  synthetic:\n    noise_std: 0\n",
            &["data.synthetic.noise_std"],
        ),
        case(
            "noise_tiny.toml",
            "name = \"t\"\n[data.synthetic]\nnoise_std = 1e-300\n",
            &["data.synthetic.noise_std"],
        ),
        case(
            "data_dim.toml",
            "name = \"t\"\n[data]\ndataset = \"synthetic\"\nsynthetic = { data_dim = 0 }\n",
            &["data.synthetic.data_dim"],
        ),
        case(
            "data_dim_big.toml",
            "name = \"t\"\n[data.synthetic]\ndata_dim = 100000\n",
            &["data.synthetic.data_dim", "4096"],
        ),
        case(
            "synth_latent.toml",
            "name = \"t\"\n[data.synthetic]\nlatent_dim = 0\n",
            &["data.synthetic.latent_dim"],
        ),
        case(
            "synth_train.yaml",
            "name: t\ndata:\n  synthetic:\n    train_size: 0\n",
            &["data.synthetic.train_size"],
        ),
        case(
            "synth_test.toml",
            "name = \"t\"\n[data.synthetic]\ntest_size = 0\n",
            &["data.synthetic.test_size"],
        ),
        case(
            "fraction_zero.toml",
            "name = \"t\"\n[data]\ntest_fraction = 0.0\n",
            &["data.test_fraction"],
        ),
        case(
            "fraction_one.toml",
            "name = \"t\"\n[data]\ntest_fraction = 1.0\n",
            &["data.test_fraction"],
        ),
        case(
            "threshold.toml",
            "name = \"t\"\n[data]\nbinarization = \"static\"\nthreshold = 1.5\n",
            &["data.threshold"],
        ),
        case(
            "columns_empty.toml",
            "name = \"t\"\n[data]\ncolumns = []\n",
            &["data.columns"],
        ),
        case(
            "latent_zero.toml",
            "name = \"t\"\n[model]\nlatent_dim = 0\n",
            &["model.latent_dim", "positive"],
        ),
        case(
            "hidden_zero.toml",
            "name = \"t\"\n[model.encoder]\nhidden = [32, 0]\n",
            &["model.encoder.hidden"],
        ),
        case(
            "fixed_var.toml",
            "name = \"t\"\n[model]\nfixed_variance = 0.0\n",
            &["model.fixed_variance"],
        ),
        case(
            "fixed_var_neg.yaml",
            "name: t\nmodel:\n  fixed_variance: -1\n",
            &["model.fixed_variance"],
        ),
        case(
            "init_std.toml",
            "name = \"t\"\n[model]\ninit_std = 0.0\n",
            &["model.init_std"],
        ),
        case(
            "logvar_limit.toml",
            "name = \"t\"\n[model]\nlogvar_limit = -1.0\n",
            &["model.logvar_limit"],
        ),
        case(
            "components.toml",
            "name = \"t\"\n[model]\nprior = \"mixture\"\nprior_components = 0\n[objective]\nkl = \"monte_carlo\"\n",
            &["model.prior_components"],
        ),
        case(
            "mixture_analytic.toml",
            "name = \"t\"\n[model]\nprior = \"mixture\"\n",
            &["objective.kl", "mixture"],
        ),
        case(
            "beta_neg.toml",
            "name = \"t\"\n[objective]\nbeta = -1.0\n",
            &["objective.beta"],
        ),
        case(
            "mc_zero.toml",
            "name = \"t\"\n[objective]\nmc_samples = 0\n",
            &["objective.mc_samples"],
        ),
        case(
            "tcvae_mixture.toml",
            "name = \"t\"\n[model]\nprior = \"mixture\"\n[objective]\nkind = \"beta_tcvae\"\nkl = \"monte_carlo\"\n",
            &["model.prior", "factorised"],
        ),
        case(
            "tcvae_samples.toml",
            "name = \"t\"\n[objective]\nkind = \"beta_tcvae\"\nmc_samples = 4\n",
            &["objective.mc_samples", "one sample"],
        ),
        case(
            "vamp_analytic.toml",
            "name = \"t\"\n[model]\nprior = \"vamp\"\n",
            &["objective.kl", "vamp"],
        ),
        case(
            "vamp_no_inputs.toml",
            "name = \"t\"\n[model]\nprior = \"vamp\"\npseudo_inputs = 0\n[objective]\nkl = \"monte_carlo\"\n",
            &["model.pseudo_inputs"],
        ),
        case(
            "search_unknown_key.toml",
            "name = \"t\"\n[sweep.search]\ntrials = 2\n[sweep.search.keys]\n\"train.lrr\" = { uniform = [0.1, 0.2] }\n",
            &["sweep.search.keys.\"train.lrr\"", "train.lr"],
        ),
        case(
            "search_distribution.toml",
            "name = \"t\"\n[sweep.search]\ntrials = 2\n[sweep.search.keys]\n\"train.lr\" = { normal = [0.1, 0.2] }\n",
            &["sweep.search", "log_uniform"],
        ),
        case(
            "search_log_zero.toml",
            "name = \"t\"\n[sweep.search]\ntrials = 2\n[sweep.search.keys]\n\"train.lr\" = { log_uniform = [0.0, 0.2] }\n",
            &["sweep.search.keys.\"train.lr\"", "0 < lo"],
        ),
        case(
            "search_no_trials.yaml",
            "name: t\nsweep:\n  search:\n    trials: 0\n    keys:\n      train.lr: { uniform: [0.1, 0.2] }\n",
            &["sweep.search.trials"],
        ),
        case(
            "search_and_grid.toml",
            "name = \"t\"\n[sweep.grid]\n\"train.lr\" = [0.1]\n[sweep.search]\ntrials = 2\n[sweep.search.keys]\n\"train.lr\" = { uniform = [0.1, 0.2] }\n",
            &["sweep.search.keys.\"train.lr\"", "one place"],
        ),
        case(
            "search_bad_value.toml",
            "name = \"t\"\n[sweep.search]\ntrials = 2\n[sweep.search.keys]\n\"model.latent_dim\" = { choice = [\"ten\"] }\n",
            &["sweep.search.keys.\"model.latent_dim\""],
        ),
        case(
            "factor_samples.toml",
            "name = \"t\"\n[objective]\nkind = \"factor_vae\"\nmc_samples = 2\n",
            &["objective.mc_samples", "discriminator"],
        ),
        case(
            "discriminator_lr.toml",
            "name = \"t\"\n[objective]\nkind = \"factor_vae\"\ndiscriminator_lr = 0.0\n",
            &["objective.discriminator_lr"],
        ),
        case(
            "discriminator_width.toml",
            "name = \"t\"\n[objective]\ndiscriminator_hidden = [64, 0]\n",
            &["objective.discriminator_hidden"],
        ),
        case(
            "capacity_negative.toml",
            "name = \"t\"\n[objective]\nkind = \"annealed\"\ncapacity_max = -2.0\n",
            &["objective.capacity_max"],
        ),
        case(
            "capacity_gamma_nan.yaml",
            "name: t\nobjective:\n  kind: annealed\n  capacity_gamma: .nan\n",
            &["objective.capacity_gamma"],
        ),
        case(
            "k_zero.yaml",
            "name: t\nobjective:\n  iwae_k: 0\n",
            &["objective.iwae_k"],
        ),
        case(
            "epochs_zero.toml",
            "name = \"t\"\n[train]\nepochs = 0\n",
            &["train.epochs"],
        ),
        case(
            "batch_zero.toml",
            "name = \"t\"\n[train]\nbatch_size = 0\n",
            &["train.batch_size"],
        ),
        case(
            "lr_neg.toml",
            "name = \"t\"\n[train]\nlr = -0.1\n",
            &["train.lr", "> 0"],
        ),
        case("lr_zero.yaml", "name: t\ntrain:\n  lr: 0\n", &["train.lr"]),
        // Convolutions: each layer's values, the table's keys, what the decoder can give,
        // and conv layers on data that are not images.
        case(
            "conv_zero.toml",
            "name = \"t\"\n[model.encoder]\nconv = [32, 0]\n",
            &["model.encoder.conv", "conv[1]", "channels"],
        ),
        case(
            "conv_padding.toml",
            "name = \"t\"\n[model.decoder]\nconv = [{ channels = 8, kernel = 3, padding = 3 }]\n",
            &["model.decoder.conv", "padding"],
        ),
        case(
            "conv_key.toml",
            "name = \"t\"\n[model.encoder]\nconv = [{ channels = 8, kernal = 3 }]\n",
            &["kernal", "model.encoder"],
        ),
        case(
            "conv_type.yaml",
            "name: t\nmodel:\n  encoder:\n    conv: [\"wide\"]\n",
            &["model.encoder", "channel count"],
        ),
        case(
            "conv_head.toml",
            "name = \"t\"\n[model]\nlikelihood = \"gaussian\"\nvariance = \"head\"\n[model.decoder]\nconv = [8]\n",
            &["model.variance", "head"],
        ),
        case(
            "conv_flat.toml",
            "name = \"t\"\n[data]\ndataset = \"synthetic\"\n[model.encoder]\nconv = [8]\n",
            &["model.encoder.conv", "not images"],
        ),
        case(
            "wd_neg.toml",
            "name = \"t\"\n[train]\nweight_decay = -0.1\n",
            &["train.weight_decay"],
        ),
        case(
            "divergence.toml",
            "name = \"t\"\n[train]\ndivergence_factor = 0.5\n",
            &["train.divergence_factor"],
        ),
        case(
            "keep_none.toml",
            "name = \"t\"\n[train]\nkeep_last = 0\n",
            &["train.keep_last", "at least 1"],
        ),
        case(
            "checkpoint_every_neg.toml",
            "name = \"t\"\n[train]\ncheckpoint_every_epochs = -1\n",
            &["train.checkpoint_every_epochs"],
        ),
        case(
            "slurm_key.toml",
            "name = \"t\"\n[runtime.slurm]\ncpus = 2\n",
            &["runtime.slurm.cpus", "cpus_per_task"],
        ),
        case(
            "k8s_type.toml",
            "name = \"t\"\n[runtime.k8s]\ngpus = \"two\"\n",
            &["runtime.k8s.gpus"],
        ),
        case(
            "min_delta_neg.toml",
            "name = \"t\"\n[train]\nearly_stopping_min_delta = -0.5\n",
            &["train.early_stopping_min_delta", "non-negative"],
        ),
        case(
            "restore_best_alone.toml",
            "name = \"t\"\n[train]\nrestore_best = true\n",
            &["train.restore_best", "early_stopping_patience"],
        ),
        case(
            "k_eval_zero.toml",
            "name = \"t\"\n[eval]\nimportance_samples = 0\n",
            &["eval.importance_samples"],
        ),
        case(
            "chunk_zero.toml",
            "name = \"t\"\n[eval]\nmax_rows_per_chunk = 0\n",
            &["eval.max_rows_per_chunk"],
        ),
        case(
            "every_zero.toml",
            "name = \"t\"\n[eval]\nevery_epochs = 0\n",
            &["eval.every_epochs"],
        ),
        case(
            "active_neg.toml",
            "name = \"t\"\n[eval]\nactive_unit_threshold = -1.0\n",
            &["eval.active_unit_threshold"],
        ),
        case(
            "workers_zero.toml",
            "name = \"t\"\n[runtime]\nworkers = 0\n",
            &["runtime.workers"],
        ),
        case(
            "threads_zero.toml",
            "name = \"t\"\n[runtime]\nthreads = 0\n",
            &["runtime.threads", "at least 1 thread"],
        ),
        // Sweeps.
        case(
            "sweep_key.toml",
            "name = \"t\"\n[sweep.grid]\n\"objective.betta\" = [1, 2]\n",
            &["objective.betta", "objective.beta"],
        ),
        case(
            "sweep_section.toml",
            "name = \"t\"\n[sweep.grid]\n\"model\" = [1, 2]\n",
            &["model"],
        ),
        case(
            "sweep_empty.toml",
            "name = \"t\"\n[sweep.grid]\n\"train.seed\" = []\n",
            &["train.seed", "non-empty"],
        ),
        case(
            "sweep_not_list.toml",
            "name = \"t\"\n[sweep.grid]\n\"train.seed\" = 3\n",
            &["sweep.grid"],
        ),
        case(
            "sweep_zip_len.toml",
            "name = \"t\"\n[[sweep.zip]]\n\"objective.beta\" = [1, 2]\n\"train.seed\" = [1, 2, 3]\n",
            &["sweep.zip[0]", "equal lengths"],
        ),
        case(
            "sweep_zip_grid.toml",
            "name = \"t\"\n[sweep.grid]\n\"train.seed\" = [1]\n[[sweep.zip]]\n\"train.seed\" = [1, 2]\n",
            &["train.seed", "one place"],
        ),
        case(
            "sweep_value.toml",
            "name = \"t\"\n[sweep.grid]\n\"model.latent_dim\" = [2, 0]\n",
            &["model.latent_dim", "positive"],
        ),
        case(
            "sweep_type.toml",
            "name = \"t\"\n[sweep.grid]\n\"model.latent_dim\" = [2, \"x\"]\n",
            &["model.latent_dim"],
        ),
        case(
            "sweep_enum.yaml",
            "name: t\nsweep:\n  grid:\n    model.likelihood: [bernoulli, poisson]\n",
            &["model.likelihood"],
        ),
        case(
            "sweep_nan.yaml",
            "name: t\nsweep:\n  grid:\n    objective.beta: [1.0, .nan]\n",
            &["objective.beta", "finite"],
        ),
        case(
            "sweep_results_dir.toml",
            "name = \"t\"\n[sweep.grid]\n\"runtime.results_dir\" = [\"a\", \"b\"]\n",
            &["runtime.results_dir", "do not change"],
        ),
        case(
            "sweep_workers.toml",
            "name = \"t\"\n[sweep.grid]\n\"runtime.workers\" = [1, 2]\n",
            &["runtime.workers"],
        ),
        case(
            "sweep_repeat.toml",
            "name = \"t\"\n[sweep.grid]\n\"train.seed\" = [1, 1]\n",
            &["train.seed", "twice"],
        ),
        case(
            "sweep_zip_repeat.yaml",
            "name: t\nsweep:\n  zip:\n    - train.seed: [1, 1]\n      objective.beta: [2, 2]\n",
            &["twice"],
        ),
    ];
    if !cfg!(feature = "cuda") {
        cases.push(case(
            "cuda.toml",
            "name = \"t\"\n[runtime]\nbackend = \"cuda\"\n",
            &["runtime.backend", "--features cuda"],
        ));
    }
    // The same classes through --set and the environment.
    cases.extend([
        with_set(
            case("set_nan.toml", OK, &["objective.beta", "finite", "--set"]),
            "objective.beta=nan",
        ),
        with_set(
            case("set_inf.toml", OK, &["train.lr", "finite"]),
            "train.lr=inf",
        ),
        with_set(
            case(
                "set_unknown.toml",
                OK,
                &["model.latnet_dim", "model.latent_dim"],
            ),
            "model.latnet_dim=3",
        ),
        with_set(
            case("set_type.toml", OK, &["train.epochs"]),
            "train.epochs=many",
        ),
        with_set(
            case("set_range.toml", OK, &["train.adam_beta1"]),
            "train.adam_beta1=2",
        ),
        with_set(
            case("set_noeq.toml", OK, &["section.key=value"]),
            "objective.beta",
        ),
        with_set(case("set_nokey.toml", OK, &["section.key=value"]), "=5"),
        with_set(
            case("set_badkey.toml", OK, &["section.key=value"]),
            "a..b=1",
        ),
        with_set(case("set_name.toml", OK, &["name"]), "name=.."),
        with_set(
            case("set_limit.toml", OK, &["data.train_limit"]),
            "data.train_limit=0",
        ),
        // Environment values are strings; "nan" is refused as one.
        with_env(
            case(
                "env_nan.toml",
                OK,
                &["train.lr", "environment", "expected a number"],
            ),
            "AEVB_TRAIN__LR",
            "nan",
        ),
        with_env(
            case("env_type.toml", OK, &["train.epochs"]),
            "AEVB_TRAIN__EPOCHS",
            "abc",
        ),
        with_env(
            case(
                "env_unknown.toml",
                OK,
                &["model.latent", "model.latent_dim"],
            ),
            "AEVB_MODEL__LATENT",
            "3",
        ),
        with_env(
            case("env_range.toml", OK, &["train.adam_epsilon"]),
            "AEVB_TRAIN__ADAM_EPSILON",
            "-1",
        ),
    ]);
    cases
}

/// Writes a gzip file of `bytes`.
fn gzip(path: &Path, bytes: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// An IDX3 image file: magic, n, rows, cols, pixels.
fn idx_images(magic: u32, n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [magic, n, rows, cols] {
        out.extend(v.to_be_bytes());
    }
    out.extend(std::iter::repeat_n(7u8, pixels));
    out
}

/// An MNIST folder whose training file is `train` (bytes, gzip-compressed when `gz`).
fn mnist_dir(root: &Path, name: &str, train: &[u8], gz: bool) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let good = idx_images(2051, 2, 28, 28, 2 * 784);
    gzip(&dir.join("t10k-images-idx3-ubyte.gz"), &good);
    if gz {
        gzip(&dir.join("train-images-idx3-ubyte.gz"), train);
    } else {
        std::fs::write(dir.join("train-images-idx3-ubyte"), train).unwrap();
    }
    dir
}

/// Data files that cannot be trained on, each named in the error with its key.
fn data_cases(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mnist = |name: &'static str, dir: &Path, expect: &[&str]| {
        let text = format!(
            "name = \"t\"\n[data]\ndataset = \"mnist\"\npath = \"{}\"\n",
            dir.display()
        );
        let mut expect: Vec<&str> = expect.to_vec();
        expect.push("data.path");
        case(name, &text, &expect)
    };
    let good = idx_images(2051, 2, 28, 28, 2 * 784);
    // A gzip stream cut in half.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&good).unwrap();
    let full = enc.finish().unwrap();
    let truncated_dir = mnist_dir(root, "truncated", &good, true);
    std::fs::write(
        truncated_dir.join("train-images-idx3-ubyte.gz"),
        &full[..full.len() / 2],
    )
    .unwrap();
    cases.push(mnist(
        "mnist_truncated_gz.toml",
        &truncated_dir,
        &["train-images-idx3-ubyte.gz", "gzip"],
    ));
    let magic = mnist_dir(root, "magic", &idx_images(2049, 2, 28, 28, 2 * 784), true);
    cases.push(mnist(
        "mnist_magic.toml",
        &magic,
        &["train-images-idx3-ubyte.gz", "magic"],
    ));
    let shape = mnist_dir(root, "shape", &idx_images(2051, 2, 32, 32, 2 * 1024), false);
    cases.push(mnist(
        "mnist_shape.toml",
        &shape,
        &["train-images-idx3-ubyte", "28x28"],
    ));
    let short = mnist_dir(root, "short", &good[..10], false);
    cases.push(mnist(
        "mnist_short.toml",
        &short,
        &["train-images-idx3-ubyte", "too short"],
    ));
    let pixels = mnist_dir(root, "pixels", &idx_images(2051, 3, 28, 28, 2 * 784), true);
    cases.push(mnist(
        "mnist_pixels.toml",
        &pixels,
        &["train-images-idx3-ubyte.gz", "truncated"],
    ));
    let empty = mnist_dir(root, "empty_gz", &[], true);
    cases.push(mnist(
        "mnist_empty.toml",
        &empty,
        &["train-images-idx3-ubyte.gz"],
    ));
    let missing = root.join("missing_test");
    std::fs::create_dir_all(&missing).unwrap();
    gzip(&missing.join("train-images-idx3-ubyte.gz"), &good);
    cases.push(mnist(
        "mnist_missing.toml",
        &missing,
        &["t10k-images-idx3-ubyte", "sha256"],
    ));
    let file = root.join("not_a_dir");
    std::fs::write(&file, "x").unwrap();
    cases.push(mnist(
        "mnist_file.toml",
        &file,
        &["not_a_dir", "not a folder"],
    ));
    cases.push(mnist(
        "mnist_nowhere.toml",
        &root.join("nowhere"),
        &["nowhere"],
    ));

    // Tables.
    let table = |name: &'static str, file: &str, contents: &[u8], extra: &str, expect: &[&str]| {
        let path = root.join(file);
        std::fs::write(&path, contents).unwrap();
        let text = format!(
            "name = \"t\"\n[data]\ndataset = \"table\"\npath = \"{}\"\n{extra}[model]\nlikelihood = \"gaussian\"\n",
            path.display()
        );
        let mut expect: Vec<&str> = expect.to_vec();
        expect.push(file);
        case(name, &text, &expect)
    };
    let rows = "a,b\n0.1,0.2\n0.3,0.4\n0.5,0.6\n";
    cases.extend([
        table(
            "csv_nan.toml",
            "nan.csv",
            b"a,b\n0.1,0.2\nNaN,0.4\n0.5,0.6\n",
            "",
            &["data.path", "non-finite", "`a`"],
        ),
        table(
            "csv_inf.toml",
            "inf.csv",
            b"a,b\n0.1,inf\n0.3,0.4\n0.5,0.6\n",
            "",
            &["data.path", "non-finite", "`b`"],
        ),
        table(
            "csv_huge.toml",
            "huge.csv",
            b"a,b\n0.1,1e40\n0.3,0.4\n0.5,0.6\n",
            "",
            &["data.path", "non-finite"],
        ),
        // Finite, but its square is not: a data error, not a "diverged" run.
        table(
            "csv_square_overflow.toml",
            "square.csv",
            b"a,b\n0.1,0.2\n0.3,1e30\n0.5,0.6\n",
            "",
            &["data.path", "`b`", "square overflows"],
        ),
        // A column that never varies, under a learned variance (the default).
        table(
            "csv_constant.toml",
            "constant.csv",
            b"a,b\n0.1,7\n0.3,7\n0.5,7\n",
            "",
            &["model.variance", "b", "one value", "fixed"],
        ),
        table("csv_empty.toml", "empty.csv", b"", "", &["data.path"]),
        table(
            "csv_header.toml",
            "header.csv",
            b"a,b\n",
            "",
            &["data.path", "no rows"],
        ),
        table(
            "csv_one_row.toml",
            "one.csv",
            b"a,b\n0.1,0.2\n",
            "",
            &["data.path", "at least 2"],
        ),
        table(
            "csv_missing_value.toml",
            "gap.csv",
            b"a,b\n0.1,0.2\n,0.4\n0.5,0.6\n",
            "",
            &["data.path", "missing value"],
        ),
        table(
            "csv_text_only.toml",
            "text.csv",
            b"a,b\nx,y\nz,w\n",
            "",
            &["data.path", "no numeric columns"],
        ),
        table(
            "csv_text_column.toml",
            "mixed.csv",
            b"a,b\n0.1,x\n0.3,y\n0.5,z\n",
            "columns = [\"a\", \"b\"]\n",
            &["data.columns", "`b`"],
        ),
        table(
            "csv_no_column.toml",
            "cols.csv",
            rows.as_bytes(),
            "columns = [\"a\", \"c\"]\n",
            &["data.columns", "`c`"],
        ),
        table(
            "parquet_corrupt.toml",
            "corrupt.parquet",
            b"PAR1 this is not parquet",
            "",
            &["data.path", "Parquet"],
        ),
        table(
            "csv_id_column.toml",
            "ids.csv",
            b"id,a,b\n7,0.1,0.2\n3,0.3,0.4\n9,0.5,0.6\n",
            "",
            &["data.columns", "`id`", "identifier", "\"a\", \"b\""],
        ),
        table(
            "csv_counting_column.toml",
            "counting.csv",
            b"n,a\n0,0.1\n1,0.2\n2,0.3\n3,0.4\n",
            "",
            &["data.columns", "`n`", "counting up"],
        ),
        table(
            "csv_duplicate_header.toml",
            "dup.csv",
            b"a,a,b\n0.1,0.2,0.3\n0.3,0.4,0.5\n0.5,0.6,0.7\n",
            "",
            &["data.path", "`a`", "more than once"],
        ),
        table(
            "csv_column_twice.toml",
            "twice.csv",
            rows.as_bytes(),
            "columns = [\"a\", \"a\"]\n",
            &["data.columns", "`a`", "twice"],
        ),
        table(
            "table_ext.toml",
            "data.txt",
            rows.as_bytes(),
            "",
            &["data.path", ".csv"],
        ),
    ]);
    let train = root.join("train_ok.csv");
    std::fs::write(&train, rows).unwrap();
    let test_cols = root.join("test_cols.csv");
    std::fs::write(&test_cols, "a\n0.1\n0.2\n").unwrap();
    let test_nan = root.join("test_nan.csv");
    std::fs::write(&test_nan, "a,b\n0.5,0.1\nNaN,0.2\n").unwrap();
    for (name, test, expect) in [
        (
            "test_path_cols.toml",
            test_cols.display().to_string(),
            vec!["data.test_path", "test_cols.csv"],
        ),
        (
            "test_path_nan.toml",
            test_nan.display().to_string(),
            vec!["data.test_path", "test_nan.csv", "non-finite"],
        ),
        (
            "test_path_missing.toml",
            root.join("nope.csv").display().to_string(),
            vec!["data.test_path", "nope.csv"],
        ),
    ] {
        let text = format!(
            "name = \"t\"\n[data]\ndataset = \"table\"\npath = \"{}\"\ntest_path = \"{test}\"\n[model]\nlikelihood = \"gaussian\"\n",
            train.display()
        );
        cases.push(case(name, &text, &expect));
    }
    cases.push(case(
        "table_no_path.toml",
        "name = \"t\"\n[data]\ndataset = \"table\"\n",
        &["data.path", "needs data.path"],
    ));
    // Data outside [0, 1] under a Bernoulli likelihood, or binarized.
    let wide = root.join("wide.csv");
    std::fs::write(&wide, "a,b\n0.1,2.5\n0.3,-1\n0.5,0.6\n").unwrap();
    cases.push(case(
        "bernoulli_range.toml",
        &format!(
            "name = \"t\"\n[data]\ndataset = \"table\"\npath = \"{}\"\n",
            wide.display()
        ),
        &["model.likelihood", "wide.csv", "[0, 1]"],
    ));
    cases.push(case(
        "binarize_range.toml",
        &format!(
            "name = \"t\"\n[data]\ndataset = \"table\"\npath = \"{}\"\nbinarization = \"dynamic\"\n[model]\nlikelihood = \"gaussian\"\n",
            wide.display()
        ),
        &["data.binarization", "wide.csv"],
    ));
    // The IWAE bound has no KL term: a `kl` it would ignore is refused.
    cases.push(case(
        "iwae_kl.toml",
        "name = \"t\"\n[model]\nprior = \"mixture\"\n[objective]\nkind = \"iwae\"\nkl = \"analytic\"\n",
        &["objective.kl", "iwae", "ignored"],
    ));
    cases.push(with_set(
        case(
            "iwae_kl_set.toml",
            "name = \"t\"\n[objective]\nkind = \"iwae\"\n",
            &["objective.kl", "ignored"],
        ),
        "objective.kl=monte_carlo",
    ));
    // Types in plain words, not Rust's; a YAML tab named as such.
    cases.push(case(
        "epochs_text.toml",
        "name = \"t\"\n[train]\nepochs = \"two\"\n",
        &["train.epochs", "a whole number", "\"two\""],
    ));
    cases.push(case(
        "epochs_negative.yaml",
        "name: t\ntrain:\n  epochs: -3\n",
        &["train.epochs", "a whole number, 0 or more", "-3"],
    ));
    cases.push(case(
        "tab.yaml",
        "name: t\nmodel:\n\tlatent_dim: 3\n",
        &["line 3", "tab", "spaces"],
    ));
    cases.push(case(
        "synthetic_bernoulli.toml",
        "name = \"t\"\n[data]\ndataset = \"synthetic\"\n",
        &["model.likelihood", "synthetic"],
    ));
    // More validation examples than the training split has: nothing would be left to train.
    cases.push(case(
        "validation_all.toml",
        "name = \"t\"\n[data]\ndataset = \"digits\"\nvalidation = 100000\n",
        &[
            "data.validation",
            "100000 validation examples",
            "expected fewer",
        ],
    ));
    cases
}

#[test]
fn every_bad_input_is_refused_with_exit_2_naming_file_and_key_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut cases = spec_cases();
    cases.extend(data_cases(&data));
    assert!(cases.len() >= 100, "{} cases", cases.len());
    eprintln!("{} bad inputs", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let spec = dir.path().join(c.file);
        std::fs::write(&spec, &c.text).unwrap();
        let results = dir.path().join(format!("results-{i}"));
        let mut cmd = runner();
        cmd.arg("sweep").arg(&spec).args(&c.args);
        // Outside the spec, so a case cannot move it; an env case adds its own variable.
        cmd.env("AEVB_RUNTIME__RESULTS_DIR", &results);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit code {:?}", out.status.code()));
        }
        if !stderr.contains(c.file) {
            problems.push("the spec file is not named".into());
        }
        for e in &c.expect {
            if !stderr.contains(e.as_str()) {
                problems.push(format!("`{e}` is not named"));
            }
        }
        if stderr.contains("key `-`") {
            problems.push("a placeholder key `-` instead of none".into());
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("a panic".into());
        }
        if results.exists() || dir.path().join("results").exists() {
            problems.push("something was written".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    {}",
                c.file,
                problems.join(", "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn plan_reports_bad_data_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nan.csv");
    std::fs::write(&csv, "a,b\n0.1,0.2\nNaN,0.4\n0.5,0.6\n").unwrap();
    let spec = dir.path().join("plan.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"t\"\n[data]\ndataset = \"table\"\npath = \"{}\"\n[model]\nlikelihood = \"gaussian\"\n",
            csv.display()
        ),
    )
    .unwrap();
    let out = runner().arg("plan").arg(&spec).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nan.csv") && stderr.contains("data.path"),
        "{stderr}"
    );
}

#[test]
fn a_bad_baseline_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.toml");
    std::fs::write(&spec, "name = \"tiny\"\n[train]\nepochs = 1\n").unwrap();
    let run = "[runs.\"tiny/run\"]\nseeds = [0, 1]\n[runs.\"tiny/run\".metrics.test_elbo]\n";
    for (name, body, key) in [
        (
            "negative.toml",
            "z_limit = -2.0\n[runs]\n".to_string(),
            "z_limit",
        ),
        ("nan.toml", "z_limit = nan\n[runs]\n".to_string(), "z_limit"),
        (
            "short.toml",
            format!("z_limit = 2.0\n{run}values = [-1.0]\nmean = -1.0\nseed_sd = 0.1\n"),
            "runs.\"tiny/run\".metrics.test_elbo",
        ),
    ] {
        let baseline = dir.path().join(name);
        std::fs::write(&baseline, format!("aevb_version = \"0\"\n{body}")).unwrap();
        let results = dir.path().join("results");
        let out = runner()
            .arg("check")
            .arg(&spec)
            .arg("--baseline")
            .arg(&baseline)
            .arg("--results")
            .arg(&results)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(key),
            "{name}: {stderr}"
        );
        assert!(!results.exists(), "{name}: nothing may be written");
    }
}

#[test]
fn report_names_a_corrupt_parquet_file_and_a_path_that_is_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runs.parquet"), b"PAR1 garbage PAR1").unwrap();
    let out = runner().arg("report").arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("runs.parquet") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let file = dir.path().join("runs.parquet");
    let out = runner().arg("report").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("runs.parquet") && stderr.contains("not a folder"),
        "{stderr}"
    );
}

/// A minimal spec swept into `results`: it must be refused (exit 2) naming `name` and
/// `runtime.results_dir`.
fn assert_results_dir_refused(dir: &Path, results: &Path, name: &str) {
    let spec = dir.join("s.toml");
    std::fs::write(&spec, "name = \"t\"\n").unwrap();
    let out = runner()
        .arg("sweep")
        .arg(&spec)
        .arg("--set")
        .arg(format!("runtime.results_dir={}", results.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(name) && stderr.contains("runtime.results_dir"),
        "{stderr}"
    );
}

#[test]
fn a_results_path_that_is_a_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("occupied");
    std::fs::write(&file, "x").unwrap();
    assert_results_dir_refused(dir.path(), &file, "occupied");
}

#[test]
fn a_results_path_that_is_a_symlink_loop_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("loop_a"), dir.path().join("loop_b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    assert_results_dir_refused(dir.path(), &a, "loop_a");
}

#[test]
fn a_yaml_spec_with_a_byte_order_mark_is_read_like_one_without() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bom.yaml");
    std::fs::write(&spec, "\u{feff}name: bom\nmodel:\n  latent_dim: 3\n").unwrap();
    let out = runner().arg("plan").arg(&spec).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bom"), "{stdout}");
}

#[test]
fn a_directory_given_as_the_spec_is_refused_as_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("experiments");
    std::fs::create_dir(&folder).unwrap();
    let results = dir.path().join("results");
    crate::common::assert_refused(&folder, &results, &[], "experiments", "is a directory");
}

/// A constant column under a Gaussian likelihood with a fixed variance trains; the row's
/// `data_notes` says the column adds a constant that says nothing about the model.
#[test]
fn a_constant_column_under_a_fixed_variance_trains_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("constant.csv");
    let mut text = String::from("a,b,c\n");
    for i in 0..40 {
        text.push_str(&format!("{},7,{}\n", i as f64 / 40.0, (i % 7) as f64 / 7.0));
    }
    std::fs::write(&csv, text).unwrap();
    let spec = crate::common::write(
        dir.path(),
        "fixed.toml",
        &format!(
            "name = \"fixed\"\n[data]\ndataset = \"table\"\npath = \"{}\"\n[model]\nlatent_dim = 1\nlikelihood = \"gaussian\"\nvariance = \"fixed\"\nencoder = {{ hidden = [8] }}\ndecoder = {{ hidden = [8] }}\n[train]\nepochs = 1\n[eval]\nimportance_samples = 10\n",
            csv.display()
        ),
    );
    let results = dir.path().join("results");
    let out = crate::common::run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = crate::common::record(&results, "fixed");
    let notes = row["data_notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains("1 column(s) constant") && notes.contains("(b)"),
        "{notes}"
    );
}
