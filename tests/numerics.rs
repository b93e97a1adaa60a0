//! Numerical checks of the model zoo against independent values: closed forms computed in
//! f64 on the host, Monte Carlo estimates with their standard errors, finite differences.
//!
//! Set AEVB_TEST_BACKEND=flex (or cuda, in a `--features cuda` build) to run them on
//! another backend; the default is the CPU default. The training tests then train *and*
//! evaluate on that backend, and assert which engine took the steps.

use aevb::data::device::host;
use aevb::data::synthetic::LinearGaussian;
use aevb::eval;
use aevb::model::density::{
    bernoulli_logits, kl_normal_normal, kl_standard_normal, normal_diag, standard_normal,
};
use aevb::model::{Posterior, Vae};
use aevb::objective;
use aevb::spec::{BackendKind, KlMode, LikelihoodKind, ModelConfig, RunConfig, VarianceKind};
use aevb::train::{self, Silent, eval_rng};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// The backend these tests compute on: `AEVB_TEST_BACKEND`, else the CPU default.
fn test_backend() -> BackendKind {
    match std::env::var("AEVB_TEST_BACKEND").as_deref() {
        Ok("flex") => BackendKind::Flex,
        Ok("cuda") => BackendKind::Cuda,
        Ok("ndarray") => BackendKind::Ndarray,
        Ok("cpu") | Err(_) => BackendKind::Cpu,
        Ok(other) => panic!("AEVB_TEST_BACKEND={other}: expected flex, cuda, ndarray or cpu"),
    }
}

/// The engine that must train the digits models on the test backend (the CPU default
/// trains them on the fused engine).
fn expected_engine() -> &'static str {
    match test_backend() {
        BackendKind::Cpu | BackendKind::Fused => "fused",
        other => aevb::backend::name(other),
    }
}

fn device() -> Device {
    aevb::backend::device(test_backend(), 0).expect("test backend is usable")
}

fn tensor2(values: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn to_f64(t: Tensor<1>) -> Vec<f64> {
    host(t).into_iter().map(|v| v as f64).collect()
}

/// log σ(l) computed in f64 without overflow: −log(1 + e^{−l}).
fn log_sigmoid_f64(l: f64) -> f64 {
    if l >= 0.0 {
        -(-l).exp().ln_1p()
    } else {
        l - l.exp().ln_1p()
    }
}

#[test]
fn bernoulli_log_likelihood_matches_f64_closed_form_even_for_extreme_logits() {
    let device = device();
    let logits = [-80.0, -20.0, -3.5, -0.1, 0.0, 0.7, 4.0, 25.0, 90.0];
    let targets = [0.0, 1.0, 0.3, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0];
    let d = logits.len();
    let got = to_f64(bernoulli_logits(
        tensor2(&logits, 1, d, &device),
        tensor2(&targets, 1, d, &device),
    ))[0];
    let expected: f64 = logits
        .iter()
        .zip(&targets)
        .map(|(&l, &x)| x * log_sigmoid_f64(l) + (1.0 - x) * log_sigmoid_f64(-l))
        .sum();
    assert!(got.is_finite());
    assert!(
        (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
        "got {got}, expected {expected}"
    );
}

#[test]
fn gaussian_log_likelihood_matches_f64_closed_form_with_its_constant() {
    let device = device();
    let x = [0.3, -1.2, 2.5, 0.0];
    let mean = [0.1, -1.0, 1.5, 0.2];
    let logvar = [-2.0, 0.0, 1.3, -0.5];
    let got = to_f64(normal_diag(
        tensor2(&x, 1, 4, &device),
        tensor2(&mean, 1, 4, &device),
        tensor2(&logvar, 1, 4, &device),
    ))[0];
    let expected: f64 = (0..4)
        .map(|i| {
            let var = f64::exp(logvar[i]);
            -0.5 * (2.0 * std::f64::consts::PI * var).ln() - (x[i] - mean[i]).powi(2) / (2.0 * var)
        })
        .sum();
    assert!(
        (got - expected).abs() < 1e-5,
        "got {got}, expected {expected}"
    );
    let std_normal = to_f64(standard_normal(tensor2(&x, 1, 4, &device)))[0];
    let expected: f64 = x
        .iter()
        .map(|v| -0.5 * (2.0 * std::f64::consts::PI).ln() - v * v / 2.0)
        .sum();
    assert!((std_normal - expected).abs() < 1e-5);
}

/// Mean and standard error of log q(z) − log p(z) over `n` samples z ~ q, in f64.
fn monte_carlo_kl(
    m: &[f64],
    lv: &[f64],
    prior_m: &[f64],
    prior_lv: &[f64],
    n: usize,
    rng: &mut StdRng,
) -> (f64, f64) {
    let log_normal = |z: f64, m: f64, lv: f64| {
        -0.5 * ((2.0 * std::f64::consts::PI).ln() + lv + (z - m).powi(2) / lv.exp())
    };
    let samples: Vec<f64> = (0..n)
        .map(|_| {
            (0..m.len())
                .map(|j| {
                    let e: f64 = StandardNormal.sample(rng);
                    let z = m[j] + (0.5 * lv[j]).exp() * e;
                    log_normal(z, m[j], lv[j]) - log_normal(z, prior_m[j], prior_lv[j])
                })
                .sum()
        })
        .collect();
    let mean = samples.iter().sum::<f64>() / n as f64;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

#[test]
fn analytic_kl_equals_monte_carlo_estimate_within_its_standard_error() {
    let device = device();
    let mut rng = StdRng::seed_from_u64(7);
    let m = [0.5, -1.0, 2.0];
    let lv = [-1.0, 0.4, -0.2];
    let prior_m = [0.3, 0.0, -0.5];
    let prior_lv = [0.5, -0.3, 0.0];

    let analytic_std = to_f64(kl_standard_normal(
        tensor2(&m, 1, 3, &device),
        tensor2(&lv, 1, 3, &device),
    ))[0];
    let (mc, se) = monte_carlo_kl(&m, &lv, &[0.0; 3], &[0.0; 3], 200_000, &mut rng);
    assert!(
        (analytic_std - mc).abs() < 4.0 * se,
        "analytic {analytic_std}, MC {mc} ± {se}"
    );

    let analytic = to_f64(kl_normal_normal(
        tensor2(&m, 1, 3, &device),
        tensor2(&lv, 1, 3, &device),
        tensor2(&prior_m, 1, 3, &device),
        tensor2(&prior_lv, 1, 3, &device),
    ))[0];
    let (mc, se) = monte_carlo_kl(&m, &lv, &prior_m, &prior_lv, 200_000, &mut rng);
    assert!(
        (analytic - mc).abs() < 4.0 * se,
        "analytic {analytic}, MC {mc} ± {se}"
    );
    // And the estimate is not trivially loose: the KL is clearly non-zero.
    assert!(analytic > 10.0 * se);
}

#[test]
fn reparameterised_gradient_matches_finite_differences() {
    // f(μ, lv) = mean_s log N(x; z_s, I) with z_s = μ + exp(lv/2) ε_s and fixed ε_s.
    let device = device().autodiff();
    let (s, d) = (64, 3);
    let mut rng = StdRng::seed_from_u64(3);
    let eps: Vec<f64> = (0..s * d)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mu = [0.2, -0.7, 1.1];
    let lv = [-0.5, 0.3, 0.0];
    let x = [1.0, 0.5, -0.2];

    let f64_objective = |mu: &[f64], lv: &[f64]| -> f64 {
        let mut total = 0.0;
        for k in 0..s {
            for j in 0..d {
                let z = mu[j] + (0.5 * lv[j]).exp() * eps[k * d + j];
                total += -0.5 * ((2.0 * std::f64::consts::PI).ln() + (x[j] - z).powi(2));
            }
        }
        total / s as f64
    };

    let mu_t = tensor2(&mu, 1, d, &device).require_grad();
    let lv_t = tensor2(&lv, 1, d, &device).require_grad();
    let q = Posterior {
        mean: mu_t.clone(),
        logvar: lv_t.clone(),
    };
    let z = q.reparameterize(tensor2(&eps, s, d, &device));
    let x_rep = tensor2(&x, 1, d, &device).repeat_dim(0, s);
    let value = normal_diag(x_rep, z, Tensor::zeros([s, d], &device)).mean();
    let grads = value.backward();
    let g_mu = host(mu_t.grad(&grads).expect("gradient for mu"));
    let g_lv = host(lv_t.grad(&grads).expect("gradient for logvar"));

    let h = 1e-5;
    for j in 0..d {
        let (mut up, mut down) = (mu, mu);
        up[j] += h;
        down[j] -= h;
        let fd = (f64_objective(&up, &lv) - f64_objective(&down, &lv)) / (2.0 * h);
        assert!(
            (g_mu[j] as f64 - fd).abs() < 1e-3 * fd.abs().max(1.0),
            "dμ{j}: {} vs {fd}",
            g_mu[j]
        );
        let (mut up, mut down) = (lv, lv);
        up[j] += h;
        down[j] -= h;
        let fd = (f64_objective(&mu, &up) - f64_objective(&mu, &down)) / (2.0 * h);
        assert!(
            (g_lv[j] as f64 - fd).abs() < 1e-3 * fd.abs().max(1.0),
            "dlv{j}: {} vs {fd}",
            g_lv[j]
        );
    }
}

/// A VAE whose decoder is the true linear-Gaussian model and whose encoder has the exact
/// posterior's mean and `inflate` times its marginal variances: diagonal and wider than the
/// posterior, so the ELBO has a gap for the IWAE bounds to close, while the importance
/// weights keep a finite variance.
fn linear_gaussian_vae(truth: &LinearGaussian, inflate: f64, device: &Device) -> Vae {
    let config = linear_gaussian_config(truth);
    linear_gaussian_vae_of(&config, truth, inflate, device)
}

/// The linear-Gaussian model as a spec describes it: no hidden layers, a Gaussian decoder
/// with the true noise variance.
fn linear_gaussian_config(truth: &LinearGaussian) -> ModelConfig {
    ModelConfig {
        latent_dim: truth.latent_dim,
        encoder: aevb::spec::MlpConfig {
            hidden: vec![],
            ..Default::default()
        },
        decoder: aevb::spec::MlpConfig {
            hidden: vec![],
            ..Default::default()
        },
        likelihood: LikelihoodKind::Gaussian,
        variance: VarianceKind::Fixed,
        fixed_variance: truth.noise_std * truth.noise_std,
        ..Default::default()
    }
}

fn linear_gaussian_vae_of(
    config: &ModelConfig,
    truth: &LinearGaussian,
    inflate: f64,
    device: &Device,
) -> Vae {
    let (d, k) = (truth.data_dim, truth.latent_dim);
    let mut vae = Vae::new(config, d, &mut StdRng::seed_from_u64(0), device);
    let (a, s) = truth.posterior();
    let param2 = |v: Vec<f64>, r: usize, c: usize| {
        Param::from_data(
            TensorData::new(v.into_iter().map(|x| x as f32).collect(), [r, c]),
            device,
        )
    };
    let param1 = |v: Vec<f64>| {
        let n = v.len();
        Param::from_data(
            TensorData::new(v.into_iter().map(|x| x as f32).collect(), [n]),
            device,
        )
    };
    // Decoder: x = z Wᵀ + b, so its [k, d] weight is Wᵀ.
    let wt: Vec<f64> = (0..k * d)
        .map(|idx| truth.w[(idx % d) * k + idx / d])
        .collect();
    vae.decoder.out.weight = param2(wt, k, d);
    vae.decoder.out.bias = Some(param1(truth.b.clone()));
    // Encoder mean: A (x − b) = x Aᵀ − A b.
    let at: Vec<f64> = (0..d * k).map(|idx| a[(idx % k) * d + idx / k]).collect();
    let ab: Vec<f64> = (0..k)
        .map(|r| -(0..d).map(|i| a[r * d + i] * truth.b[i]).sum::<f64>())
        .collect();
    vae.encoder.mean.weight = param2(at, d, k);
    vae.encoder.mean.bias = Some(param1(ab));
    vae.encoder.logvar.weight = param2(vec![0.0; d * k], d, k);
    vae.encoder.logvar.bias = Some(param1(
        (0..k).map(|j| (inflate * s[j * k + j]).ln()).collect(),
    ));
    vae
}

#[test]
fn importance_sampled_log_px_matches_the_linear_gaussian_closed_form() {
    let device = device();
    let truth = LinearGaussian {
        data_dim: 4,
        latent_dim: 2,
        w: vec![1.0, 0.6, 0.5, 1.2, -0.4, 0.9, 0.8, 0.3],
        b: vec![0.5, -0.3, 0.1, 1.0],
        noise_std: 0.8,
    };
    let data = truth.sample(500, &mut StdRng::seed_from_u64(11));
    let exact_examples = truth.log_px(&data);
    let exact: f64 = exact_examples.iter().sum::<f64>() / data.rows as f64;
    let vae = linear_gaussian_vae(&truth, 2.0, &device);
    let config = RunConfig {
        model: linear_gaussian_config(&truth),
        ..Default::default()
    };
    assert!(aevb::engine::uses_fused(&config));

    // The same estimate through burn's modules and through the fused engine's forward
    // pass (what a CPU run is evaluated with), from the same noise: each close to the
    // closed form, and to each other example by example (f32 arithmetic both).
    let burn = eval::log_px_examples(&eval::Model::Burn(&vae), &data, 5000, 65_536, 1);
    let fused = eval::with_model(&vae, &config, 2, |m| {
        eval::log_px_examples(m, &data, 5000, 65_536, 1)
    })
    .unwrap();
    for is in [&burn, &fused] {
        let s = is.summary();
        assert!(
            (s.log_px.mean - exact).abs() < 0.05,
            "IS K=5000: {}, exact {exact}",
            s.log_px.mean
        );
        // Its standard error is the spread of the exact values over examples, √n-scaled.
        let exact_se = eval::Estimate::of(&exact_examples).se;
        assert!(
            (s.log_px.se / exact_se - 1.0).abs() < 0.02,
            "{} vs {exact_se}",
            s.log_px.se
        );
        // A proposal 2× wider than the posterior: the weights are far from degenerate.
        assert!(s.ess_min >= 1.0 && s.ess_mean <= 5000.0 && s.ess_mean > 500.0);
    }
    // On the CPU both sides are plain f32 (5000-term log-mean-exp: rounding ~1e-5 here).
    // burn's CUDA autotuner may run f32 products on TF32 tensor cores, which round their
    // inputs to 11 significant bits (unit roundoff 2^-11 ≈ 4.9e-4): with means and data
    // of order 1–2 and σ² = 0.64 that moves a log-weight by up to ~5e-3 (seen: 1.3e-3).
    let tolerance = match test_backend() {
        BackendKind::Cuda => 1e-2,
        _ => 1e-3,
    };
    for (b, f) in burn.log_px.iter().zip(&fused.log_px) {
        assert!((b - f).abs() < tolerance, "burn {b} vs fused {f}");
    }

    let elbo = eval::with_model(&vae, &config, 1, |m| eval::elbo(m, &data, &config))
        .unwrap()
        .elbo
        .mean;
    assert!(
        elbo < exact - 0.01,
        "ELBO {elbo} must lie below log p(x) {exact}"
    );

    let bounds: Vec<f64> = [1, 10, 100]
        .iter()
        .map(|&k| eval::iwae_bound(&eval::Model::Burn(&vae), &data, k, 3))
        .collect();
    assert!(
        bounds[0] < bounds[1] && bounds[1] < bounds[2] && bounds[2] < exact + 0.01,
        "IWAE bounds must rise towards {exact}: {bounds:?}"
    );
}

#[test]
fn evaluation_gives_the_same_bits_on_any_thread_count_and_after_a_stop() {
    let truth = LinearGaussian::random(6, 2, 0.7, 5);
    let data = truth.sample(300, &mut StdRng::seed_from_u64(2));
    let vae = linear_gaussian_vae(&truth, 1.5, &device());
    let config = RunConfig {
        model: linear_gaussian_config(&truth),
        ..Default::default()
    };
    let run = |threads: usize| {
        eval::with_model(&vae, &config, threads, |m| {
            (
                eval::elbo_examples(m, &data, &config),
                eval::log_px_examples(m, &data, 50, 1000, 7),
            )
        })
        .unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    // Continued from the first two blocks' saved values: the same numbers.
    let job = eval::LogPxJob {
        k: 50,
        max_rows: 1000,
        seed: 7,
        stoppable: false,
    };
    let mut partial = eval::LogPxProgress::default();
    let b = eval::blocks::BLOCK_EXAMPLES;
    partial.examples.log_px = one.1.log_px[..2 * b].to_vec();
    partial.examples.ess = one.1.ess[..2 * b].to_vec();
    partial.examples.log_w_sd = one.1.log_w_sd[..2 * b].to_vec();
    eval::with_model(&vae, &config, 2, |m| {
        eval::log_px(m, &data, job, &mut partial, &mut |_| {})
    })
    .unwrap();
    assert_eq!(partial.examples, one.1);
    // Stopped inside blocks: after the first round (one chunk of 1000 / 64 = 15 samples
    // per block, of 50), the progress holds blocks part-way; continued from a copy of it,
    // on another thread count, the estimate has the same bits.
    for threads in [1, 3] {
        let mut rounds = Vec::new();
        let mut full = eval::LogPxProgress::default();
        eval::with_model(&vae, &config, threads, |m| {
            eval::log_px(m, &data, job, &mut full, &mut |p| rounds.push(p.clone()))
        })
        .unwrap();
        assert_eq!(full.examples, one.1);
        let first = &rounds[0];
        assert!(first.examples.is_empty());
        assert_eq!(first.in_flight.len(), threads);
        assert!(first.in_flight.iter().all(|f| f.samples == 15));
        assert_eq!(first.samples_done(50), (threads * b * 15) as u64);
        let mut continued = first.clone();
        eval::with_model(&vae, &config, 4 - threads, |m| {
            eval::log_px(m, &data, job, &mut continued, &mut |_| {})
        })
        .unwrap();
        assert_eq!(continued.examples, one.1, "{threads} threads");
        assert!(continued.in_flight.is_empty());
    }
}

#[test]
fn monte_carlo_and_analytic_kl_give_the_same_elbo_in_expectation() {
    let device = device();
    let truth = LinearGaussian::random(6, 2, 0.7, 5);
    let data = truth.sample(300, &mut StdRng::seed_from_u64(1));
    let vae = linear_gaussian_vae(&truth, 1.0, &device);
    let x = aevb::data::device::to_tensor(&data, &device);
    let analytic = objective::elbo(&vae, x.clone(), 20, KlMode::Analytic, 1.0, &mut eval_rng(0));
    let mc = objective::elbo(&vae, x, 20, KlMode::MonteCarlo, 1.0, &mut eval_rng(0));
    let a = to_f64(analytic.bound);
    let m = to_f64(mc.bound);
    let mean_a = a.iter().sum::<f64>() / a.len() as f64;
    let diffs: Vec<f64> = a.iter().zip(&m).map(|(x, y)| x - y).collect();
    let mean_d = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let sd =
        (diffs.iter().map(|v| (v - mean_d).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64).sqrt();
    assert!(
        mean_d.abs() < 4.0 * sd / (diffs.len() as f64).sqrt() + 1e-3,
        "mean diff {mean_d} (sd {sd}), ELBO {mean_a}"
    );
}

fn digits_config(epochs: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.data.dataset = aevb::spec::DatasetKind::Digits;
    c.model.latent_dim = 8;
    c.model.encoder.hidden = vec![64];
    c.model.decoder.hidden = vec![64];
    c.train.epochs = epochs;
    c.train.batch_size = 64;
    c.train.seed = 4;
    // Trained, not only evaluated, on the test backend.
    c.runtime.backend = test_backend();
    c
}

#[test]
fn training_on_digits_improves_the_test_elbo_clearly_within_a_few_epochs() {
    let device = device();
    let config = digits_config(5);
    let data = aevb::data::load(&config.data).unwrap();
    let untrained = Vae::new(
        &config.model,
        data.dim(),
        &mut StdRng::seed_from_u64(4),
        &device,
    );
    let before = eval::elbo(&eval::Model::Burn(&untrained), &data.test, &config)
        .elbo
        .mean;
    let outcome = train::train(&config, &data, &device, 1, &mut Silent, None).unwrap();
    assert_eq!(outcome.engine, expected_engine());
    assert_eq!(outcome.diverged_at, None);
    assert_eq!(outcome.epochs.len(), 5);
    let after = outcome.epochs.last().unwrap().test_elbo.unwrap();
    // 64 pixels: an untrained decoder scores about 64·log 2 ≈ 44 nats below zero or worse;
    // five epochs of Adam must win back well over ten nats of it.
    assert!(
        after > before + 10.0,
        "test ELBO before {before}, after {after}"
    );
}

#[test]
fn same_config_and_seed_give_bit_identical_metrics() {
    let device = device();
    let config = digits_config(2);
    let data = aevb::data::load(&config.data).unwrap();
    let a = train::train(&config, &data, &device, 1, &mut Silent, None).unwrap();
    assert_eq!(a.engine, expected_engine());
    let a = a.epochs;
    let b = train::train(&config, &data, &device, 1, &mut Silent, None)
        .unwrap()
        .epochs;
    let strip = |v: &[aevb::train::EpochMetrics]| -> Vec<(f64, f64, Option<f64>)> {
        v.iter()
            .map(|m| (m.train_elbo, m.train_kl, m.test_elbo))
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    let mut other = config.clone();
    other.train.seed = 5;
    let c = train::train(&other, &data, &device, 1, &mut Silent, None)
        .unwrap()
        .epochs;
    assert_ne!(
        strip(&a),
        strip(&c),
        "a different seed must change the numbers"
    );
}

#[test]
fn nan_is_detected_and_the_run_reports_the_epoch_it_diverged_in() {
    let device = device();
    let mut config = digits_config(3);
    // Plain SGD with a learning rate this large blows the weights up in the first epoch.
    config.train.lr = 1e30;
    config.train.optimizer = aevb::spec::OptimizerKind::Sgd;
    let data = aevb::data::load(&config.data).unwrap();
    let outcome = train::train(&config, &data, &device, 1, &mut Silent, None).unwrap();
    assert_eq!(outcome.engine, expected_engine());
    assert_eq!(outcome.diverged_at, Some(1));
    assert_eq!(outcome.epochs.len(), 1);
}

#[test]
fn active_units_count_columns_with_variance_above_threshold() {
    // Column 0 varies (variance 1), column 1 barely (variance 1e-4), column 2 is constant.
    let means = [1.0f32, 0.01, 3.0, -1.0, -0.01, 3.0];
    assert_eq!(eval::count_active(&means, 3, 0.01), 1);
    assert_eq!(eval::count_active(&means, 3, 1e-5), 2);
}

#[test]
fn mixture_prior_density_matches_f64_reference() {
    let device = device();
    let mut config = ModelConfig {
        latent_dim: 2,
        prior: aevb::spec::PriorKind::Mixture,
        prior_components: 3,
        ..Default::default()
    };
    config.encoder.hidden = vec![];
    let vae = Vae::new(&config, 4, &mut StdRng::seed_from_u64(9), &device);
    let aevb::model::Prior::Mixture(mix) = &vae.prior else {
        panic!("mixture prior expected")
    };
    let means = host(mix.means.val());
    let logvars = host(mix.logvars.val());
    let logits = host(mix.logits.val());
    let mut rng = StdRng::seed_from_u64(2);
    let z: Vec<f64> = (0..10).map(|_| rng.random_range(-3.0..3.0)).collect();
    let got = to_f64(vae.log_prior(tensor2(&z, 5, 2, &device)));
    let lse = |v: &[f64]| {
        let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    let log_norm = lse(&logits.iter().map(|&l| l as f64).collect::<Vec<_>>());
    for r in 0..5 {
        let comps: Vec<f64> = (0..3)
            .map(|c| {
                logits[c] as f64 - log_norm
                    + (0..2)
                        .map(|j| {
                            let (m, lv) = (means[c * 2 + j] as f64, logvars[c * 2 + j] as f64);
                            -0.5 * ((2.0 * std::f64::consts::PI).ln()
                                + lv
                                + (z[r * 2 + j] - m).powi(2) / lv.exp())
                        })
                        .sum::<f64>()
            })
            .collect();
        assert!(
            (got[r] - lse(&comps)).abs() < 1e-4,
            "row {r}: {} vs {}",
            got[r],
            lse(&comps)
        );
    }
}

#[test]
fn the_parameter_count_behind_the_memory_estimate_matches_what_burn_builds() {
    use aevb::spec::{MlpConfig, PriorKind};
    use burn::module::Module;
    let device = device();
    let canonical = ModelConfig {
        latent_dim: 20,
        encoder: MlpConfig {
            hidden: vec![400],
            ..MlpConfig::default()
        },
        decoder: MlpConfig {
            hidden: vec![400],
            ..MlpConfig::default()
        },
        ..ModelConfig::default()
    };
    // 784-400-(20, 20) encoder and 20-400-784 decoder, counted by hand.
    let by_hand = (784 * 400 + 400) + 2 * (400 * 20 + 20) + (20 * 400 + 400) + (400 * 784 + 784);
    assert_eq!(
        aevb::model::parameter_count(&canonical, 784),
        by_hand as f64
    );
    let variants = [
        canonical.clone(),
        ModelConfig {
            likelihood: LikelihoodKind::Gaussian,
            variance: VarianceKind::Head,
            ..canonical.clone()
        },
        ModelConfig {
            likelihood: LikelihoodKind::Gaussian,
            variance: VarianceKind::Learned,
            prior: PriorKind::Mixture,
            prior_components: 7,
            ..canonical.clone()
        },
        ModelConfig {
            prior: PriorKind::Normal,
            encoder: MlpConfig {
                hidden: vec![],
                ..MlpConfig::default()
            },
            decoder: MlpConfig {
                hidden: vec![30, 40],
                ..MlpConfig::default()
            },
            latent_dim: 3,
            ..canonical
        },
    ];
    for (i, config) in variants.iter().enumerate() {
        let vae = Vae::new(config, 50, &mut StdRng::seed_from_u64(0), &device);
        assert_eq!(
            aevb::model::parameter_count(config, 50),
            vae.num_params() as f64,
            "variant {i}"
        );
    }
}
