//! The VampPrior (issue 23): log p(z) against the mixture written out in f64 from the
//! encoder computed by hand, its gradient into the pseudo-inputs and the shared encoder
//! weights against finite differences of that f64 function, and sampling against the
//! mixture's moments.

use crate::common::flex;
use aevb::model::{Posterior, Prior, Vae};
use aevb::spec::{Activation, KlMode, ModelConfig, PriorKind, RunConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const D: usize = 5;
const Z: usize = 2;
const K: usize = 3;
const H: usize = 4;

fn config() -> ModelConfig {
    let mut m = RunConfig::default().model;
    m.latent_dim = Z;
    m.encoder.hidden = vec![H];
    m.encoder.activation = Activation::Tanh;
    m.decoder.hidden = vec![H];
    m.prior = PriorKind::Vamp;
    m.pseudo_inputs = K;
    m
}

fn host<const R: usize>(t: Tensor<R>) -> Vec<f64> {
    aevb::data::device::host(t)
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The encoder's weights, read back: (W1 [D, H], b1, Wm [H, Z], bm, Wl [H, Z], bl).
struct Weights {
    w1: Vec<f64>,
    b1: Vec<f64>,
    wm: Vec<f64>,
    bm: Vec<f64>,
    wl: Vec<f64>,
    bl: Vec<f64>,
    limit: f64,
}

impl Weights {
    fn of(vae: &Vae) -> Self {
        let e = &vae.encoder;
        let l = &e.body.layers[0];
        Weights {
            w1: host(l.weight.val()),
            b1: host(l.bias.as_ref().unwrap().val()),
            wm: host(e.mean.weight.val()),
            bm: host(e.mean.bias.as_ref().unwrap().val()),
            wl: host(e.logvar.weight.val()),
            bl: host(e.logvar.bias.as_ref().unwrap().val()),
            limit: e.logvar_limit,
        }
    }

    /// q(z|x)'s (mean, logvar) in f64.
    fn encode(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let h: Vec<f64> = (0..H)
            .map(|j| (self.b1[j] + (0..D).map(|i| x[i] * self.w1[i * H + j]).sum::<f64>()).tanh())
            .collect();
        let head = |w: &[f64], b: &[f64]| -> Vec<f64> {
            (0..Z)
                .map(|j| b[j] + (0..H).map(|i| h[i] * w[i * Z + j]).sum::<f64>())
                .collect()
        };
        let lv = head(&self.wl, &self.bl)
            .into_iter()
            .map(|v| v.clamp(-self.limit, self.limit))
            .collect();
        (head(&self.wm, &self.bm), lv)
    }
}

fn log_normal(z: &[f64], mean: &[f64], logvar: &[f64]) -> f64 {
    (0..z.len())
        .map(|j| {
            -0.5 * ((2.0 * std::f64::consts::PI).ln()
                + logvar[j]
                + (z[j] - mean[j]).powi(2) / logvar[j].exp())
        })
        .sum()
}

/// log (1/K) Σ_k q(z | clamp(u_k)) in f64.
fn vamp_f64(w: &Weights, u: &[f64], z: &[f64]) -> f64 {
    let terms: Vec<f64> = (0..K)
        .map(|k| {
            let input: Vec<f64> = u[k * D..(k + 1) * D]
                .iter()
                .map(|v| v.clamp(0.0, 1.0))
                .collect();
            let (m, lv) = w.encode(&input);
            log_normal(z, &m, &lv)
        })
        .collect();
    let top = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln() - (K as f64).ln()
}

fn tensor(values: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn pseudo_inputs(vae: &Vae) -> Vec<f64> {
    let Prior::Vamp(p) = &vae.prior else {
        panic!("a VampPrior")
    };
    host(p.pseudo_inputs.val())
}

#[test]
fn log_prior_is_the_mixture_of_the_encoders_posteriors_at_the_pseudo_inputs() {
    let device = flex();
    let vae = Vae::new(&config(), D, &mut StdRng::seed_from_u64(1), &device);
    let u = pseudo_inputs(&vae);
    // Initialised as the paper's code: N(0.05, 0.01²).
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    assert!(
        (mean - 0.05).abs() < 0.01 && u.iter().all(|v| (0.0..0.1).contains(v)),
        "{u:?}"
    );
    let w = Weights::of(&vae);
    let mut rng = StdRng::seed_from_u64(2);
    let z: Vec<f64> = (0..6 * Z).map(|_| rng.random_range(-2.0..2.0)).collect();
    let got = host(vae.log_prior(tensor(&z, 6, Z, &device)));
    for r in 0..6 {
        let want = vamp_f64(&w, &u, &z[r * Z..(r + 1) * Z]);
        assert!(
            (got[r] - want).abs() < 1e-4 * want.abs().max(1.0),
            "row {r}: {} vs {want}",
            got[r]
        );
    }
    assert!(
        vae.prior_kl(&vae.encoder.forward(tensor(&u[..D], 1, D, &device)))
            .is_none()
    );
}

/// −log q(z|x) − log p(z) at fixed z and x: the encoder is used twice, for x and for the
/// pseudo-inputs; its gradient adds both, and the pseudo-inputs get theirs.
#[test]
fn gradients_reach_the_pseudo_inputs_and_add_up_in_the_shared_encoder() {
    let device = flex().autodiff();
    let vae = Vae::new(&config(), D, &mut StdRng::seed_from_u64(3), &device);
    let mut rng = StdRng::seed_from_u64(4);
    let x: Vec<f64> = (0..D).map(|_| rng.random::<f64>()).collect();
    let z: Vec<f64> = (0..Z).map(|_| rng.random_range(-1.0..1.0)).collect();
    let q = vae.encoder.forward(tensor(&x, 1, D, &device));
    let log_q = aevb::model::density::normal_diag(tensor(&z, 1, Z, &device), q.mean, q.logvar);
    let loss = (log_q + vae.log_prior(tensor(&z, 1, Z, &device)))
        .sum()
        .neg();
    let grads = loss.backward();
    let Prior::Vamp(p) = &vae.prior else { panic!() };
    let g_u = host(p.pseudo_inputs.grad(&grads).expect("pseudo-input gradient"));
    let g_w1 = host(
        vae.encoder.body.layers[0]
            .weight
            .grad(&grads)
            .expect("encoder gradient"),
    );

    let w = Weights::of(&vae);
    let u = pseudo_inputs(&vae);
    let f = |w: &Weights, u: &[f64]| {
        let (m, lv) = w.encode(&x);
        -(log_normal(&z, &m, &lv) + vamp_f64(w, u, &z))
    };
    let h = 1e-6;
    let close = |g: f64, fd: f64, what: &str| {
        assert!(
            (g - fd).abs() < 2e-3 * fd.abs().max(1e-2),
            "{what}: {g} vs {fd}"
        );
    };
    let mut nonzero = 0;
    for i in 0..u.len() {
        let (mut up, mut down) = (u.clone(), u.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (f(&w, &up) - f(&w, &down)) / (2.0 * h);
        close(g_u[i], fd, &format!("pseudo-input {i}"));
        nonzero += usize::from(fd.abs() > 1e-4);
    }
    assert!(nonzero > u.len() / 2, "the pseudo-inputs matter: {nonzero}");
    for (i, &g) in g_w1.iter().enumerate() {
        let mut wu = Weights::of(&vae);
        let mut wd = Weights::of(&vae);
        wu.w1[i] += h;
        wd.w1[i] -= h;
        let fd = (f(&wu, &u) - f(&wd, &u)) / (2.0 * h);
        close(g, fd, &format!("W1[{i}]"));
    }
}

#[test]
fn prior_samples_have_the_mixtures_mean_and_covariance() {
    let device = flex();
    let mut vae = Vae::new(&config(), D, &mut StdRng::seed_from_u64(5), &device);
    // Spread the pseudo-inputs over [0, 1] so the components differ.
    if let Prior::Vamp(p) = &mut vae.prior {
        let mut rng = StdRng::seed_from_u64(6);
        let u: Vec<f32> = (0..K * D).map(|_| rng.random::<f32>()).collect();
        p.pseudo_inputs = burn::module::Param::from_data(TensorData::new(u, [K, D]), &device);
    }
    let Prior::Vamp(p) = &vae.prior else { panic!() };
    let Posterior { mean, logvar } = p.components(&vae.encoder);
    let (m, lv) = (host(mean), host(logvar));
    let n = 40_000;
    let s = host(vae.sample_prior(n, &mut StdRng::seed_from_u64(7), &device));
    for a in 0..Z {
        let want_mean: f64 = (0..K).map(|k| m[k * Z + a]).sum::<f64>() / K as f64;
        let got_mean = (0..n).map(|i| s[i * Z + a]).sum::<f64>() / n as f64;
        for b in 0..Z {
            // E[z_a z_b] = (1/K) Σ_k (μ_ka μ_kb + [a = b] σ²_ka).
            let second: f64 = (0..K)
                .map(|k| {
                    m[k * Z + a] * m[k * Z + b] + if a == b { lv[k * Z + a].exp() } else { 0.0 }
                })
                .sum::<f64>()
                / K as f64;
            let want_mean_b: f64 = (0..K).map(|k| m[k * Z + b]).sum::<f64>() / K as f64;
            let want = second - want_mean * want_mean_b;
            let got_mean_b = (0..n).map(|i| s[i * Z + b]).sum::<f64>() / n as f64;
            let got = (0..n)
                .map(|i| (s[i * Z + a] - got_mean) * (s[i * Z + b] - got_mean_b))
                .sum::<f64>()
                / (n - 1) as f64;
            assert!(
                (got - want).abs() < 0.05 * want.abs().max(0.1),
                "cov[{a}][{b}]: {got} vs {want}"
            );
        }
        let var: f64 = (0..n)
            .map(|i| (s[i * Z + a] - got_mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let se = (var / n as f64).sqrt();
        assert!(
            (got_mean - want_mean).abs() < 5.0 * se,
            "mean {a}: {got_mean} vs {want_mean} (se {se})"
        );
    }
}

#[test]
fn a_vamp_run_trains_on_the_fused_engine_unless_its_encoder_has_convolutions() {
    // (tests/fused.rs compares the fused engine's VampPrior gradients with autodiff's.)
    let mut c = RunConfig {
        model: config(),
        ..Default::default()
    };
    c.objective.kl = KlMode::MonteCarlo;
    assert_eq!(aevb::engine::fused_unsupported(&c).map(|u| u.key), None);
    assert!(aevb::engine::uses_fused(&c));
    c.model.encoder.conv = vec![aevb::spec::ConvLayer {
        channels: 4,
        kernel: 4,
        stride: 2,
        padding: 1,
    }];
    assert!(
        !aevb::engine::uses_fused(&c),
        "pseudo-inputs through convolutions"
    );
    let why = aevb::engine::fused_unsupported(&c).unwrap();
    assert_eq!(why.key, "model.prior");
}

/// A VampPrior run beside a standard-normal one: both train, the VampPrior's TensorBoard
/// log has its pseudo-inputs image, `runner pseudo-inputs` draws them and refuses the
/// other run (exit 2, naming it).
#[test]
fn pseudo_inputs_are_shown_in_tensorboard_and_by_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let spec = crate::common::write(
        dir.path(),
        "v.toml",
        "name = \"vamp\"\n[data]\ndataset = \"digits\"\n[model]\nlatent_dim = 3\nencoder = { hidden = [16] }\ndecoder = { hidden = [16] }\npseudo_inputs = 12\n[objective]\nkl = \"monte_carlo\"\n[train]\nepochs = 2\n[eval]\nimportance_samples = 20\nimages_every_epochs = 2\n[sweep.grid]\n\"model.prior\" = [\"standard_normal\", \"vamp\"]\n",
    );
    let results = dir.path().join("results");
    let out = crate::common::run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tb = results.join("vamp").join("tb");
    let tags: Vec<String> = std::fs::read_dir(&tb)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("prior=vamp"))
        .flat_map(|e| crate::common::tags(&crate::common::events_in(&e.path())))
        .map(|(t, _)| t)
        .collect();
    assert!(tags.iter().any(|t| t == "pseudo_inputs"), "{tags:?}");
    let draw = |label: &str| {
        crate::common::runner()
            .args(["pseudo-inputs", label, "--results"])
            .arg(&results)
            .output()
            .unwrap()
    };
    let out = draw("prior=vamp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pseudo_inputs.png"), "{said}");
    let out = draw("prior=standard_normal");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pseudo-inputs"));
}
