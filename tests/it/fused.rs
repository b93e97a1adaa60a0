//! The fused engine against burn's autodiff: the same model, weights, minibatch and noise
//! must give the same bound and the same gradient (to f32 rounding), for every objective,
//! likelihood and activation the fused engine covers, and its optimisers must take the same
//! steps as burn-optim's. Also: its numbers do not depend on how its products are scheduled.

use crate::common::flex;
use aevb::data::Matrix;
use aevb::data::batch::Batch;
use aevb::engine::{self, Engine};
use aevb::model::Vae;
use aevb::model::prior::Prior;
use aevb::objective::Schedule;
use aevb::spec::{
    Activation, BackendKind, KlMode, LikelihoodKind, ObjectiveKind, OptimizerKind, RunConfig,
    VarianceKind,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 7;
const D: usize = 12;

fn batch(config: &RunConfig, seed: u64) -> Matrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..N * D)
        .map(|_| match config.model.likelihood {
            LikelihoodKind::Bernoulli => rng.random::<f32>(),
            LikelihoodKind::Gaussian => rng.random::<f32>() * 4.0 - 2.0,
        })
        .collect();
    Matrix::new(N, D, values)
}

/// Every parameter of a burn model, by its record path, as the fused layout names them.
fn parameters(vae: &Vae) -> Named {
    let values = |t: burn::tensor::Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let values1 = |t: burn::tensor::Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let mut out = Vec::new();
    let mut linear = |name: String, l: &burn::nn::Linear| {
        out.push((format!("{name}.weight"), values(l.weight.val())));
        out.push((
            format!("{name}.bias"),
            values1(l.bias.as_ref().unwrap().val()),
        ));
    };
    for (i, l) in vae.encoder.body.layers.iter().enumerate() {
        linear(format!("encoder.body.layers.{i}"), l);
    }
    linear("encoder.mean".into(), &vae.encoder.mean);
    linear("encoder.logvar".into(), &vae.encoder.logvar);
    for (i, l) in vae.decoder.body.layers.iter().enumerate() {
        linear(format!("decoder.body.layers.{i}"), l);
    }
    linear("decoder.out".into(), &vae.decoder.out);
    if let Some(head) = &vae.decoder.logvar_head {
        linear("decoder.logvar_head".into(), head);
    }
    if let Some(lv) = &vae.decoder.logvar {
        out.push(("decoder.logvar".into(), values1(lv.val())));
    }
    match &vae.prior {
        Prior::StandardNormal(_) => {}
        Prior::Normal(p) => {
            out.push(("prior.mean".into(), values1(p.mean.val())));
            out.push(("prior.logvar".into(), values1(p.logvar.val())));
        }
        Prior::Mixture(p) => {
            out.push(("prior.means".into(), values(p.means.val())));
            out.push(("prior.logvars".into(), values(p.logvars.val())));
            out.push(("prior.logits".into(), values1(p.logits.val())));
        }
        Prior::Vamp(p) => out.push(("prior.pseudo_inputs".into(), values(p.pseudo_inputs.val()))),
    }
    out
}

type Named = Vec<(String, Vec<f32>)>;

/// `steps` optimiser steps of `config` on `backend`, from the run's initial weights: the
/// parameters before and after, and each step's sums.
fn train_steps(
    config: &RunConfig,
    backend: BackendKind,
    threads: usize,
    steps: usize,
    lr: f64,
) -> (Named, Named, Vec<[f64; 3]>) {
    let mut config = config.clone();
    config.runtime.backend = backend;
    let mut init_rng = StdRng::seed_from_u64(11);
    let mut engine: Box<dyn Engine> =
        engine::start(&config, D, &flex(), threads, &mut init_rng, None).unwrap();
    assert_eq!(
        engine::uses_fused(&config),
        backend == BackendKind::Fused,
        "the engine asked for"
    );
    let before = parameters(&engine.model());
    let sums = (0..steps)
        .map(|s| {
            let x = batch(&config, 100 + s as u64);
            let mut rng = StdRng::seed_from_u64(7 + s as u64);
            engine
                .step_and_read(
                    &Batch::whole(&x),
                    &config.objective,
                    &aevb::objective::Schedule::beta(config.objective.beta),
                    lr,
                    &mut rng,
                )
                .as_array()
        })
        .collect();
    (before, parameters(&engine.model()), sums)
}

fn close(a: &[f32], b: &[f32], rel: f32) -> Result<(), String> {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    if worst <= rel * scale + 1e-6 {
        Ok(())
    } else {
        Err(format!("differ by up to {worst:e} at scale {scale:e}"))
    }
}

/// One SGD step at lr = 1 moves each parameter by minus its gradient: comparing the two
/// engines' moves compares their gradients.
fn assert_same_gradient(config: &RunConfig, what: &str) {
    let mut config = config.clone();
    config.train.optimizer = OptimizerKind::Sgd;
    config.train.weight_decay = 0.0;
    let (b0, b1, burn_sums) = train_steps(&config, BackendKind::Flex, 1, 1, 1.0);
    let (f0, f1, fused_sums) = train_steps(&config, BackendKind::Fused, 1, 1, 1.0);
    assert_eq!(b0, f0, "{what}: both engines start from the same weights");
    for ((name, before), ((_, after_b), (_, after_f))) in b0.iter().zip(b1.iter().zip(&f1)) {
        let grad_b: Vec<f32> = before.iter().zip(after_b).map(|(p, q)| p - q).collect();
        let grad_f: Vec<f32> = before.iter().zip(after_f).map(|(p, q)| p - q).collect();
        assert!(
            grad_b.iter().any(|g| g.abs() > 1e-4)
                || name == "decoder.logvar"
                || (name.starts_with("prior.") && !config.model.prior_learned),
            "{what}: {name} has no gradient to compare"
        );
        if let Err(e) = close(&grad_f, &grad_b, 2e-3) {
            panic!("{what}: gradient of {name}: {e}\nfused {grad_f:?}\nburn  {grad_b:?}");
        }
    }
    for (f, b) in fused_sums[0].iter().zip(&burn_sums[0]) {
        assert!(
            (f - b).abs() < 1e-4 * b.abs().max(1.0),
            "{what}: sums {:?} vs {:?}",
            fused_sums[0],
            burn_sums[0]
        );
    }
}

fn small(encoder: &[usize], decoder: &[usize], act: Activation) -> RunConfig {
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.hidden = encoder.to_vec();
    c.model.decoder.hidden = decoder.to_vec();
    c.model.encoder.activation = act;
    c.model.decoder.activation = act;
    c
}

#[test]
fn elbo_with_analytic_kl_has_autodiffs_gradient() {
    assert_same_gradient(&small(&[9], &[9], Activation::Relu), "relu, analytic KL");
    let mut c = small(&[9, 5], &[6], Activation::Tanh);
    c.objective.beta = 0.3;
    assert_same_gradient(&c, "tanh, two layers, β = 0.3");
}

#[test]
fn elbo_with_monte_carlo_kl_and_several_samples_has_autodiffs_gradient() {
    let mut c = small(&[8], &[7, 5], Activation::Sigmoid);
    c.objective.kl = KlMode::MonteCarlo;
    c.objective.mc_samples = 3;
    c.objective.beta = 2.0;
    assert_same_gradient(&c, "sigmoid, MC KL, L = 3, β = 2");
    let mut c = small(&[8], &[8], Activation::Softplus);
    c.objective.mc_samples = 4;
    assert_same_gradient(&c, "softplus, analytic KL, L = 4");
}

#[test]
fn iwae_has_autodiffs_gradient() {
    let mut c = small(&[10, 8], &[8, 10], Activation::Tanh);
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 5;
    assert_same_gradient(&c, "IWAE k = 5");
    c.objective.beta = 0.5;
    c.model.encoder.activation = Activation::Elu;
    assert_same_gradient(&c, "IWAE k = 5, β = 0.5, elu encoder");
}

#[test]
fn gelu_networks_have_autodiffs_gradient() {
    assert_same_gradient(&small(&[9, 7], &[8], Activation::Gelu), "gelu, analytic KL");
    let mut c = small(&[9], &[9], Activation::Gelu);
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    assert_same_gradient(&c, "gelu, IWAE k = 3");
}

#[test]
fn gaussian_likelihoods_and_linear_models_have_autodiffs_gradient() {
    let mut c = small(&[9], &[9], Activation::LeakyRelu);
    c.model.likelihood = LikelihoodKind::Gaussian;
    c.model.variance = VarianceKind::Learned;
    assert_same_gradient(&c, "Gaussian, learned variance");
    c.model.variance = VarianceKind::Fixed;
    c.model.fixed_variance = 0.5;
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    assert_same_gradient(&c, "Gaussian, fixed variance, IWAE");
    let mut c = small(&[], &[], Activation::Identity);
    c.objective.kl = KlMode::MonteCarlo;
    assert_same_gradient(&c, "linear encoder and decoder");
    let mut c = small(&[9], &[9], Activation::Softplus);
    c.model.likelihood = LikelihoodKind::Gaussian;
    c.model.variance = VarianceKind::Head;
    assert_same_gradient(&c, "Gaussian, variance head");
    // A tight clamp: the head's clamped outputs pass no gradient, in both engines.
    c.model.logvar_limit = 0.05;
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    assert_same_gradient(&c, "Gaussian, variance head clamped, IWAE");
}

#[test]
fn clamped_log_variances_pass_no_gradient_in_either_engine() {
    let mut c = small(&[9], &[9], Activation::Tanh);
    // Most encoder log-variances at initialisation exceed 0.05 in size: the clamp bites.
    c.model.logvar_limit = 0.05;
    assert_same_gradient(&c, "clamped log-variance");
}

#[test]
fn adam_adagrad_and_sgd_with_weight_decay_take_burn_optims_steps() {
    for optimizer in [
        OptimizerKind::Adam,
        OptimizerKind::Adagrad,
        OptimizerKind::Sgd,
    ] {
        let mut c = small(&[9], &[9], Activation::Relu);
        c.train.optimizer = optimizer;
        c.train.weight_decay = 0.01;
        c.train.adam_beta1 = 0.8;
        c.train.adam_epsilon = 1e-4;
        let (_, burn_after, _) = train_steps(&c, BackendKind::Flex, 1, 4, 0.01);
        let (_, fused_after, _) = train_steps(&c, BackendKind::Fused, 1, 4, 0.01);
        for ((name, b), (_, f)) in burn_after.iter().zip(&fused_after) {
            if let Err(e) = close(f, b, 1e-4) {
                panic!("{optimizer:?}: {name} after 4 steps: {e}");
            }
        }
    }
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    // Products big enough to be split between threads (see products::SPLIT_MIN_WORK).
    let mut c = RunConfig::default();
    c.model.encoder.hidden = vec![300];
    c.model.decoder.hidden = vec![300];
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 40;
    let run = |threads| {
        let mut config = c.clone();
        config.runtime.backend = BackendKind::Fused;
        let mut init_rng = StdRng::seed_from_u64(1);
        let mut engine =
            engine::start(&config, 300, &flex(), threads, &mut init_rng, None).unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let x = Matrix::new(
            64,
            300,
            (0..64 * 300).map(|_| rng.random::<f32>()).collect(),
        );
        let sums: Vec<[f64; 3]> = (0..3)
            .map(|_| {
                engine
                    .step_and_read(
                        &Batch::whole(&x),
                        &config.objective,
                        &Schedule::beta(1.0),
                        1e-3,
                        &mut rng,
                    )
                    .as_array()
            })
            .collect();
        (sums, parameters(&engine.model()))
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0, two.0, "the bounds");
    for ((name, a), (_, b)) in one.1.iter().zip(&two.1) {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs between 1 and 2 threads"
        );
    }
}

#[test]
fn every_model_the_autodiff_engine_trains_is_the_fused_engines_too() {
    // Every prior, likelihood and variance, activation, objective and optimiser: the
    // support contract accepts it and `cpu` trains it on the fused engine, through the
    // library (train::train), to the end of an epoch.
    use aevb::spec::PriorKind;
    let mut data_config = RunConfig::default();
    data_config.data.dataset = aevb::spec::DatasetKind::Digits;
    data_config.data.train_limit = Some(64);
    data_config.data.test_limit = Some(32);
    let data = aevb::data::load(&data_config.data).unwrap();
    let mut covered = 0;
    for prior in [
        PriorKind::StandardNormal,
        PriorKind::Normal,
        PriorKind::Mixture,
        PriorKind::Vamp,
    ] {
        for (likelihood, variance) in [
            (LikelihoodKind::Bernoulli, VarianceKind::Learned),
            (LikelihoodKind::Gaussian, VarianceKind::Fixed),
            (LikelihoodKind::Gaussian, VarianceKind::Learned),
            (LikelihoodKind::Gaussian, VarianceKind::Head),
        ] {
            for kl in [KlMode::Analytic, KlMode::MonteCarlo] {
                if prior == PriorKind::Vamp && kl == KlMode::Analytic {
                    continue; // no closed form: the spec refuses it (model.prior)
                }
                let mut c = small(&[9], &[9], Activation::Gelu);
                c.model.pseudo_inputs = 6;
                c.data = data_config.data.clone();
                c.model.prior = prior;
                c.model.likelihood = likelihood;
                c.model.variance = variance;
                c.objective.kl = kl;
                c.train.epochs = 1;
                assert_eq!(aevb::engine::fused_unsupported(&c), None);
                assert!(engine::uses_fused(&c));
                let out = aevb::train::train(&c, &data, &flex(), 1, &mut aevb::train::Silent, None)
                    .unwrap();
                assert_eq!(out.engine, "fused");
                assert!(out.epochs[0].test_elbo.unwrap().is_finite());
                covered += 1;
            }
        }
    }
    assert_eq!(covered, 28);
}

#[test]
fn learned_normal_and_mixture_priors_have_autodiffs_gradient() {
    use aevb::spec::PriorKind;
    let mut c = small(&[9], &[9], Activation::Tanh);
    c.model.prior = PriorKind::Normal;
    assert_same_gradient(&c, "learned normal prior, analytic KL");
    c.objective.kl = KlMode::MonteCarlo;
    c.objective.mc_samples = 2;
    assert_same_gradient(&c, "learned normal prior, MC KL, L = 2");
    c.model.prior_learned = false;
    assert_same_gradient(&c, "fixed normal prior, MC KL");
    let mut c = small(&[9], &[8], Activation::Relu);
    c.model.prior = PriorKind::Mixture;
    c.model.prior_components = 4;
    c.objective.kl = KlMode::MonteCarlo;
    assert_same_gradient(&c, "mixture of 4, MC KL");
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    c.objective.beta = 0.5;
    assert_same_gradient(&c, "mixture of 4, IWAE k = 3, β = 0.5");
    // An analytic KL against a mixture is estimated, by both engines.
    c.objective.kind = ObjectiveKind::Elbo;
    c.objective.kl = KlMode::Analytic;
    assert_same_gradient(&c, "mixture of 4, 'analytic' KL (estimated)");
}

#[test]
fn the_vampprior_has_autodiffs_gradient_in_its_pseudo_inputs_and_shared_encoder() {
    // The encoder is used twice a step (the minibatch, the pseudo-inputs): its gradient is
    // the sum of both uses in both engines, and the pseudo-inputs get theirs through it.
    use aevb::spec::PriorKind;
    let mut c = small(&[9, 7], &[8], Activation::Tanh);
    c.model.prior = PriorKind::Vamp;
    c.model.pseudo_inputs = 5;
    c.objective.kl = KlMode::MonteCarlo;
    assert_same_gradient(&c, "VampPrior of 5, MC KL, Bernoulli (clamped inputs)");
    c.objective.mc_samples = 2;
    c.objective.beta = 2.0;
    assert_same_gradient(&c, "VampPrior of 5, MC KL, L = 2, β = 2");
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    assert_same_gradient(&c, "VampPrior of 5, IWAE k = 3");
    let mut c = small(&[], &[6], Activation::Relu);
    c.model.prior = PriorKind::Vamp;
    c.model.pseudo_inputs = 3;
    c.model.likelihood = LikelihoodKind::Gaussian;
    c.objective.kl = KlMode::MonteCarlo;
    assert_same_gradient(
        &c,
        "VampPrior of 3, linear encoder, Gaussian (inputs unclamped)",
    );
}

#[test]
fn the_vampprior_trains_on_blocked_minibatches_with_the_same_bits_on_any_thread_count() {
    use aevb::spec::PriorKind;
    let mut c = small(&[16], &[16], Activation::Relu);
    c.model.prior = PriorKind::Vamp;
    c.model.pseudo_inputs = 7;
    c.objective.kl = KlMode::MonteCarlo;
    c.train.optimizer = OptimizerKind::Adam;
    let run = |threads| train_steps_of(&c, 3, 150, threads);
    let (one, two) = (run(1), run(2));
    assert_eq!(one.0, two.0, "the bounds");
    for ((name, a), (_, b)) in one.1.iter().zip(&two.1) {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs between 1 and 2 threads"
        );
    }
    // And the blocked steps take autodiff's steps.
    let burn = {
        let mut c = c.clone();
        c.runtime.backend = BackendKind::Flex;
        train_steps_of(&c, 3, 150, 1)
    };
    for ((name, f), (_, b)) in one.1.iter().zip(&burn.1) {
        close(f, b, 2e-3).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn run_ids_differ_between_engines() {
    let mut c = small(&[9], &[9], Activation::Tanh);
    c.runtime.backend = BackendKind::Cpu;
    let on_fused = aevb::sweep::run_id(&c);
    c.runtime.backend = BackendKind::Fused;
    assert_eq!(
        aevb::sweep::run_id(&c),
        on_fused,
        "cpu resolves to the fused engine here"
    );
    c.runtime.backend = BackendKind::Flex;
    assert_ne!(aevb::sweep::run_id(&c), on_fused);
}

/// Five epochs on digits from the same weights and noise: the two engines' test ELBOs agree
/// to within 0.05 nats (their f32 sums run in different orders, and training amplifies the
/// differences a little), for three different models.
#[test]
fn five_epochs_on_both_engines_land_on_the_same_test_elbo() {
    let mut models = Vec::new();
    let mut a = RunConfig::default();
    a.model.latent_dim = 4;
    a.model.encoder.hidden = vec![32];
    a.model.decoder.hidden = vec![32];
    models.push(("ELBO, ReLU, Bernoulli", a.clone()));
    let mut b = a.clone();
    b.model.encoder.activation = Activation::Tanh;
    b.model.decoder.activation = Activation::Tanh;
    b.objective.kind = ObjectiveKind::Iwae;
    b.objective.iwae_k = 5;
    models.push(("IWAE k = 5, tanh", b));
    let mut g = a.clone();
    g.model.likelihood = LikelihoodKind::Gaussian;
    g.model.variance = VarianceKind::Learned;
    g.objective.kl = KlMode::MonteCarlo;
    g.objective.mc_samples = 2;
    g.train.optimizer = OptimizerKind::Adagrad;
    models.push(("Gaussian, MC KL, L = 2, AdaGrad", g));
    for (what, mut c) in models {
        c.data.dataset = aevb::spec::DatasetKind::Digits;
        c.train.epochs = 5;
        c.train.batch_size = 64;
        c.train.lr = 3e-3;
        let data = aevb::data::load(&c.data).unwrap();
        let elbo = |backend| {
            let mut config = c.clone();
            config.runtime.backend = backend;
            let out =
                aevb::train::train(&config, &data, &flex(), 1, &mut aevb::train::Silent, None)
                    .unwrap();
            (out.engine, out.epochs.last().unwrap().test_elbo.unwrap())
        };
        let (fused_engine, fused) = elbo(BackendKind::Fused);
        let (burn_engine, burn) = elbo(BackendKind::Flex);
        assert_eq!((fused_engine, burn_engine), ("fused", "flex"));
        assert!(
            (fused - burn).abs() < 0.05,
            "{what}: fused {fused}, flex {burn}"
        );
    }
}

/// A minibatch of 150 examples is three blocks (64, 64, 22) computed apart and added in
/// order: the step matches burn's autodiff on the whole minibatch, and 1, 2 and 3 threads
/// give the same bits by construction (the blocks do not depend on the thread count).
#[test]
fn blocked_minibatches_match_autodiff_and_give_the_same_bits_on_any_thread_count() {
    let mut c = small(&[40], &[40], Activation::Tanh);
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    c.train.optimizer = OptimizerKind::Sgd;
    c.train.weight_decay = 0.0;
    let n = 150;
    let mut rng = StdRng::seed_from_u64(5);
    let x = Matrix::new(n, D, (0..n * D).map(|_| rng.random::<f32>()).collect());
    let run = |backend, threads| {
        let mut config = c.clone();
        config.runtime.backend = backend;
        let mut init_rng = StdRng::seed_from_u64(11);
        let mut engine = engine::start(&config, D, &flex(), threads, &mut init_rng, None).unwrap();
        let before = parameters(&engine.model());
        let sums = engine
            .step_and_read(
                &Batch::whole(&x),
                &config.objective,
                &Schedule::beta(1.0),
                1.0,
                &mut StdRng::seed_from_u64(9),
            )
            .as_array();
        (before, parameters(&engine.model()), sums)
    };
    let (b0, b1, burn_sums) = run(BackendKind::Flex, 1);
    let (f0, f1, fused_sums) = run(BackendKind::Fused, 1);
    assert_eq!(b0, f0);
    for i in 0..3 {
        let scale = burn_sums[i].abs().max(1.0);
        assert!(
            (burn_sums[i] - fused_sums[i]).abs() < 1e-4 * scale,
            "{burn_sums:?} vs {fused_sums:?}"
        );
    }
    for ((name, before), ((_, after_b), (_, after_f))) in b0.iter().zip(b1.iter().zip(&f1)) {
        let grad_b: Vec<f32> = before.iter().zip(after_b).map(|(p, q)| p - q).collect();
        let grad_f: Vec<f32> = before.iter().zip(after_f).map(|(p, q)| p - q).collect();
        if let Err(e) = close(&grad_f, &grad_b, 2e-3) {
            panic!("{name}: {e}");
        }
    }
    for threads in [2, 3] {
        let (_, other, sums) = run(BackendKind::Fused, threads);
        assert_eq!(sums, fused_sums, "{threads} threads: the sums");
        for ((name, a), (_, b)) in f1.iter().zip(&other) {
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name} differs between 1 and {threads} threads"
            );
        }
    }
}

/// `steps` steps of `config` (its backend) on minibatches of `n` random examples, on
/// `threads` threads: each step's sums and the parameters after.
fn train_steps_of(
    config: &RunConfig,
    steps: usize,
    n: usize,
    threads: usize,
) -> (Vec<[f64; 3]>, Named) {
    let mut init_rng = StdRng::seed_from_u64(11);
    let mut engine = engine::start(config, D, &flex(), threads, &mut init_rng, None).unwrap();
    let sums = (0..steps)
        .map(|s| {
            let mut rng = StdRng::seed_from_u64(40 + s as u64);
            let x = Matrix::new(n, D, (0..n * D).map(|_| rng.random::<f32>()).collect());
            engine
                .step_and_read(
                    &Batch::whole(&x),
                    &config.objective,
                    &Schedule::beta(config.objective.beta),
                    1e-2,
                    &mut rng,
                )
                .as_array()
        })
        .collect();
    (sums, parameters(&engine.model()))
}
