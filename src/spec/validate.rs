//! Validation of a spec's own settings, and of one resolved run (which `sweep::expand` asks
//! of every run it expands into): values in range and combinations that make sense, each
//! refusal naming its key.

use super::conv::ConvLayer;
use super::document::{RunConfig, Spec};
use super::error::SpecError;
use super::runtime::BackendKind;
use super::sections::{
    Binarization, DatasetKind, KlMode, LikelihoodKind, ObjectiveKind, PriorKind,
    StaticBinarization, VarianceKind,
};

pub(super) fn validate_spec(spec: &Spec, file: &str) -> Result<(), SpecError> {
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 100
        && !spec.name.starts_with('.')
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err(SpecError::new(
            file,
            "name",
            format!(
                "expected a name of up to 100 letters, digits, '-', '_' or '.', not starting with '.' (it names the folder results/<name>), found {:?}",
                spec.name
            ),
        ));
    }
    // Every run the sweep expands into is checked by `sweep::expand`, the layer that
    // expands it.
    Ok(())
}

/// Checks one resolved run: values in range and combinations that make sense, section by
/// section (the first problem found is the one reported).
pub fn validate_run(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    model(c, file)?;
    objective(c, file)?;
    train(c, file)?;
    eval(c, file)?;
    runtime(c, file)?;
    data(c, file)?;
    // The data files themselves are checked where they are loaded, before anything is
    // written (runner::prepare).
    Ok(())
}

/// `[model]`: sizes, variances and limits.
fn model(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let m = &c.model;
    if m.latent_dim == 0 {
        return err("model.latent_dim", "expected a positive integer, found 0");
    }
    for (name, mlp) in [("encoder", &m.encoder), ("decoder", &m.decoder)] {
        if mlp.hidden.contains(&0) {
            return err(
                &format!("model.{name}.hidden"),
                "expected positive layer widths, found a 0",
            );
        }
        conv_layers(&mlp.conv, &format!("model.{name}.conv"), file)?;
    }
    if !m.decoder.conv.is_empty()
        && m.likelihood == LikelihoodKind::Gaussian
        && m.variance == VarianceKind::Head
    {
        return err(
            "model.variance",
            "a convolutional decoder gives Gaussian means only: expected variance = \"fixed\" or \"learned\" with model.decoder.conv, found \"head\"",
        );
    }
    if m.fixed_variance.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.fixed_variance", "expected a variance > 0");
    }
    if m.prior == PriorKind::Mixture && m.prior_components == 0 {
        return err("model.prior_components", "expected at least 1 component");
    }
    if m.init_std.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.init_std", "expected a standard deviation > 0");
    }
    if m.logvar_limit.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("model.logvar_limit", "expected a limit > 0");
    }
    Ok(())
}

/// Every convolution has at least one channel, a kernel and a stride; padding is at most
/// the kernel less one (more would only add rows of zeros).
fn conv_layers(layers: &[ConvLayer], key: &str, file: &str) -> Result<(), SpecError> {
    for (i, l) in layers.iter().enumerate() {
        let problem = if l.channels == 0 {
            Some("channels = 0; expected at least 1".to_string())
        } else if l.kernel == 0 {
            Some("kernel = 0; expected at least 1".to_string())
        } else if l.stride == 0 {
            Some("stride = 0; expected at least 1".to_string())
        } else if l.padding >= l.kernel {
            Some(format!(
                "padding = {} with kernel = {}; expected padding < kernel",
                l.padding, l.kernel
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(SpecError::new(file, key, format!("conv[{i}]: {problem}")));
        }
    }
    Ok(())
}

/// `[objective]`: β, sample counts, and a KL mode the prior allows.
fn objective(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let m = &c.model;
    let o = &c.objective;
    if o.beta.partial_cmp(&0.0).is_none() || o.beta < 0.0 {
        return err("objective.beta", "expected beta >= 0");
    }
    if o.mc_samples == 0 {
        return err("objective.mc_samples", "expected at least 1 sample");
    }
    if o.iwae_k == 0 {
        return err("objective.iwae_k", "expected at least 1 importance sample");
    }
    let non_negative = |v: f64| v.is_finite() && v >= 0.0;
    if !non_negative(o.dip_lambda_od) {
        return err("objective.dip_lambda_od", "expected a finite weight >= 0");
    }
    if o.dip_lambda_d.is_some_and(|v| !non_negative(v)) {
        return err("objective.dip_lambda_d", "expected a finite weight >= 0");
    }
    if !non_negative(o.capacity_max) {
        return err(
            "objective.capacity_max",
            "expected a finite capacity >= 0 (nats)",
        );
    }
    if !non_negative(o.capacity_gamma) {
        return err("objective.capacity_gamma", "expected a finite weight >= 0");
    }
    if !non_negative(o.factor_gamma) {
        return err("objective.factor_gamma", "expected a finite weight >= 0");
    }
    if !(o.discriminator_lr.is_finite() && o.discriminator_lr > 0.0) {
        return err(
            "objective.discriminator_lr",
            "expected a finite learning rate > 0",
        );
    }
    if o.discriminator_hidden.contains(&0) {
        return err(
            "objective.discriminator_hidden",
            "expected layer widths >= 1",
        );
    }
    if o.kind == ObjectiveKind::FactorVae && o.mc_samples != 1 {
        return err(
            "objective.mc_samples",
            "objective.kind = \"factor_vae\" shows the discriminator one sample per example: expected 1",
        );
    }
    if o.kind == ObjectiveKind::BetaTcvae {
        // The dimension-wise KL of the decomposition needs a prior that factorises, and
        // the minibatch-weighted estimator one sample per example.
        if matches!(m.prior, PriorKind::Mixture | PriorKind::Vamp) {
            return err(
                "model.prior",
                "objective.kind = \"beta_tcvae\" decomposes the KL against a factorised prior: expected \"standard_normal\" or \"normal\", not \"mixture\"",
            );
        }
        if o.mc_samples != 1 {
            return err(
                "objective.mc_samples",
                "objective.kind = \"beta_tcvae\" estimates the total correlation from one sample per example: expected 1",
            );
        }
    }
    if m.prior == PriorKind::Vamp && m.pseudo_inputs == 0 {
        return err("model.pseudo_inputs", "expected at least 1 pseudo-input");
    }
    if o.kind != ObjectiveKind::Iwae && o.kl == KlMode::Analytic && m.prior == PriorKind::Vamp {
        return err(
            "objective.kl",
            "analytic KL needs a Gaussian prior, but model.prior = \"vamp\" (a mixture of the encoder's posteriors) has no closed form; use kl = \"monte_carlo\"",
        );
    }
    if o.kind != ObjectiveKind::Iwae && o.kl == KlMode::Analytic && m.prior == PriorKind::Mixture {
        return err(
            "objective.kl",
            "analytic KL needs a Gaussian prior, but model.prior = \"mixture\" has no closed form; use kl = \"monte_carlo\"",
        );
    }
    Ok(())
}

/// `[train]`: optimiser settings, schedule, checkpoints and early stopping.
fn train(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let t = &c.train;
    if !(0.0..1.0).contains(&t.adam_beta1) {
        return err("train.adam_beta1", "expected a decay rate in [0, 1)");
    }
    if !(0.0..1.0).contains(&t.adam_beta2) {
        return err("train.adam_beta2", "expected a decay rate in [0, 1)");
    }
    if t.adam_epsilon.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("train.adam_epsilon", "expected epsilon > 0");
    }
    if t.divergence_factor.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
        return err("train.divergence_factor", "expected a factor > 1");
    }
    if t.keep_last == 0 {
        return err("train.keep_last", "expected at least 1 checkpoint to keep");
    }
    if !(t.checkpoint_every_seconds >= 0.0 && t.checkpoint_every_seconds.is_finite()) {
        return err(
            "train.checkpoint_every_seconds",
            "expected a non-negative number of seconds (0: off)",
        );
    }
    if !(t.early_stopping_min_delta >= 0.0 && t.early_stopping_min_delta.is_finite()) {
        return err(
            "train.early_stopping_min_delta",
            "expected a non-negative number of nats",
        );
    }
    if t.restore_best && t.early_stopping_patience == 0 {
        return err(
            "train.restore_best",
            "restoring the best model needs early stopping: set train.early_stopping_patience",
        );
    }
    if t.epochs == 0 {
        return err("train.epochs", "expected at least 1 epoch");
    }
    if t.batch_size == 0 {
        return err("train.batch_size", "expected a positive batch size");
    }
    if !(t.lr > 0.0 && t.lr.is_finite()) {
        return err("train.lr", "expected a learning rate > 0");
    }
    if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
        return err("train.weight_decay", "expected weight decay >= 0");
    }
    Ok(())
}

/// `[eval]`: the importance sampler and evaluation intervals.
fn eval(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let e = &c.eval;
    if e.importance_samples == 0 {
        return err("eval.importance_samples", "expected K >= 1");
    }
    if e.max_rows_per_chunk == 0 {
        return err("eval.max_rows_per_chunk", "expected a positive row budget");
    }
    if e.every_epochs == 0 {
        return err("eval.every_epochs", "expected a positive interval");
    }
    if !(e.checkpoint_every_seconds >= 0.0 && e.checkpoint_every_seconds.is_finite()) {
        return err(
            "eval.checkpoint_every_seconds",
            "expected a non-negative number of seconds (0: after every group of blocks)",
        );
    }
    if e.log_px_examples == Some(0) {
        return err(
            "eval.log_px_examples",
            "expected at least 1 example (leave it out to use the whole test set)",
        );
    }
    if e.active_unit_threshold.partial_cmp(&0.0).is_none() || e.active_unit_threshold < 0.0 {
        return err("eval.active_unit_threshold", "expected a variance >= 0");
    }
    Ok(())
}

/// `[runtime]`: workers, threads, and a backend this binary was built with.
fn runtime(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    if c.runtime.workers == Some(0) {
        return err("runtime.workers", "expected at least 1 worker");
    }
    if c.runtime.threads == Some(0) {
        return err(
            "runtime.threads",
            "expected at least 1 thread per run (leave it out to split the cores between runs)",
        );
    }
    if c.runtime.backend == BackendKind::Cuda && !cfg!(feature = "cuda") {
        return err(
            "runtime.backend",
            "\"cuda\" needs a runner built with `cargo build --release --features cuda`",
        );
    }
    Ok(())
}

/// `[data]`: split, limits, binarization, columns and the synthetic generator.
fn data(c: &RunConfig, file: &str) -> Result<(), SpecError> {
    let err = |key: &str, msg: &str| Err(SpecError::new(file, key, msg));
    let d = &c.data;
    if !(d.test_fraction > 0.0 && d.test_fraction < 1.0) {
        return err("data.test_fraction", "expected a fraction in (0, 1)");
    }
    if d.train_limit == Some(0) {
        return err(
            "data.train_limit",
            "expected at least 1 example (leave it out to use them all)",
        );
    }
    if d.test_limit == Some(0) {
        return err(
            "data.test_limit",
            "expected at least 1 example (leave it out to use them all)",
        );
    }
    if d.binarization == Binarization::Static
        && d.static_mode == StaticBinarization::Threshold
        && !(0.0..1.0).contains(&d.threshold)
    {
        return err(
            "data.threshold",
            "expected a threshold in [0, 1) (intensities are in [0, 1])",
        );
    }
    let folder = d.dataset == DatasetKind::ImageFolder;
    for (key, given) in [
        ("data.image_size", d.image_size.is_some()),
        ("data.channels", d.channels.is_some()),
    ] {
        if given && !folder {
            return err(
                key,
                "applies to dataset = \"image_folder\" only (other datasets have their own size)",
            );
        }
    }
    if d.factor_names.is_some() && d.dataset != DatasetKind::Npz {
        return err(
            "data.factor_names",
            "applies to dataset = \"npz\" only (dsprites and sprites name their own factors)",
        );
    }
    if d.image_size.is_some_and(|s| !(4..=1024).contains(&s)) {
        return err("data.image_size", "expected a side of 4 to 1024 pixels");
    }
    if d.channels.is_some_and(|c| c != 1 && c != 3) {
        return err("data.channels", "expected 1 (grey) or 3 (RGB)");
    }
    if d.columns.as_ref().is_some_and(|c| c.is_empty()) {
        return err(
            "data.columns",
            "expected at least one column name (leave it out to use every numeric column)",
        );
    }
    if ![32, 64].contains(&d.sprites.resolution) {
        return err(
            "data.sprites.resolution",
            "expected 32 or 64 pixels (dSprites is 64×64)",
        );
    }
    let syn = &d.synthetic;
    for (key, value) in [
        ("data.synthetic.train_size", syn.train_size),
        ("data.synthetic.test_size", syn.test_size),
        ("data.synthetic.data_dim", syn.data_dim),
        ("data.synthetic.latent_dim", syn.latent_dim),
    ] {
        if value == 0 {
            return err(key, "expected a positive integer, found 0");
        }
    }
    if !(1e-3..=1e3).contains(&syn.noise_std) {
        return err(
            "data.synthetic.noise_std",
            "expected a standard deviation in [0.001, 1000] (the exact log p(x) factorises W Wᵀ + σ² I)",
        );
    }
    if syn.data_dim > 4096 {
        return err(
            "data.synthetic.data_dim",
            "expected at most 4096 dimensions (the exact log p(x) needs a d × d Cholesky factor)",
        );
    }
    Ok(())
}
