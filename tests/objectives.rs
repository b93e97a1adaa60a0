//! The β-VAE family beyond the ELBO (issue 22): DIP-VAE-I and -II's covariance penalty
//! against a brute-force f64 computation, their bound through `objective::evaluate`, and the
//! engine contract (the fused engine refuses them through the library, with the reason; a
//! `backend = "cpu"` run trains them on burn's autodiff).

use aevb::data::Matrix;
use aevb::model::{Posterior, Vae};
use aevb::objective::{self, dip_penalty};
use aevb::spec::{BackendKind, KlMode, ObjectiveKind, RunConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn flex() -> Device {
    aevb::backend::device(BackendKind::Flex, 0).unwrap()
}

fn tensor(values: &[f64], rows: usize, cols: usize) -> Tensor<2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), &flex())
}

/// λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², C from the loops of its definition in f64.
fn brute_force(mu: &[f64], lv: &[f64], n: usize, z: usize, second: bool, od: f64, d: f64) -> f64 {
    let mean: Vec<f64> = (0..z)
        .map(|j| (0..n).map(|i| mu[i * z + j]).sum::<f64>() / n as f64)
        .collect();
    let mut total = 0.0;
    for a in 0..z {
        for b in 0..z {
            let mut c = (0..n)
                .map(|i| (mu[i * z + a] - mean[a]) * (mu[i * z + b] - mean[b]))
                .sum::<f64>()
                / n as f64;
            if second && a == b {
                c += (0..n).map(|i| lv[i * z + a].exp()).sum::<f64>() / n as f64;
            }
            total += if a == b {
                d * (c - 1.0).powi(2)
            } else {
                od * c * c
            };
        }
    }
    total
}

#[test]
fn the_dip_penalties_equal_their_definition_computed_in_f64() {
    let mut rng = StdRng::seed_from_u64(4);
    let (n, z) = (9, 4);
    let mu: Vec<f64> = (0..n * z).map(|_| rng.random_range(-2.0..2.0)).collect();
    let lv: Vec<f64> = (0..n * z).map(|_| rng.random_range(-3.0..1.0)).collect();
    let q = Posterior {
        mean: tensor(&mu, n, z),
        logvar: tensor(&lv, n, z),
    };
    for (second, od, d) in [(false, 10.0, 100.0), (true, 5.0, 5.0), (true, 0.0, 1.0)] {
        let got = dip_penalty(&q, second, od, d)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0] as f64;
        let expected = brute_force(&mu, &lv, n, z, second, od, d);
        assert!(
            (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
            "DIP-VAE-{}: {got} vs {expected}",
            if second { "II" } else { "I" }
        );
    }
}

fn dip_config(kind: ObjectiveKind) -> RunConfig {
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.hidden = vec![8];
    c.model.decoder.hidden = vec![8];
    c.objective.kind = kind;
    c.objective.kl = KlMode::Analytic;
    c
}

#[test]
fn a_dip_bound_is_the_elbo_less_the_penalty_and_the_paper_sets_lambda_d() {
    let c = dip_config(ObjectiveKind::DipVaeI);
    assert_eq!(
        c.objective.dip_lambdas(),
        (10.0, 100.0),
        "DIP-VAE-I: λ_d = 10 λ_od"
    );
    let c2 = dip_config(ObjectiveKind::DipVaeIi);
    assert_eq!(
        c2.objective.dip_lambdas(),
        (10.0, 10.0),
        "DIP-VAE-II: λ_d = λ_od"
    );
    let vae = Vae::new(&c.model, 6, &mut StdRng::seed_from_u64(1), &flex());
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f64> = (0..5 * 6).map(|_| rng.random::<f64>()).collect();
    let x = tensor(&x, 5, 6);
    // The same noise for the ELBO and the DIP bound: the same seed.
    let elbo = objective::evaluate(
        &vae,
        x.clone(),
        &RunConfig::default().objective,
        1.0,
        &mut StdRng::seed_from_u64(3),
    );
    let dip = objective::evaluate(
        &vae,
        x.clone(),
        &c.objective,
        1.0,
        &mut StdRng::seed_from_u64(3),
    );
    let q = vae.encoder.forward(x);
    let penalty = dip_penalty(&q, false, 10.0, 100.0)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()[0];
    let host = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    for ((e, d), (re, rd)) in host(elbo.bound)
        .iter()
        .zip(host(dip.bound))
        .zip(host(elbo.recon).iter().zip(host(dip.recon)))
    {
        assert!(
            (e - penalty - d).abs() < 1e-4 * e.abs().max(1.0),
            "{e} − {penalty} vs {d}"
        );
        assert_eq!(*re, rd, "the reconstruction term is the ELBO's");
    }
}

#[test]
fn the_fused_engine_refuses_dip_vaes_through_the_library_and_cpu_runs_train_them_on_autodiff() {
    let mut c = dip_config(ObjectiveKind::DipVaeIi);
    c.runtime.backend = BackendKind::Fused;
    let err = aevb::engine::start(&c, 6, &flex(), 1, &mut StdRng::seed_from_u64(0), None)
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("objective.kind") && text.contains("autodiff"),
        "{text}"
    );
    let why = aevb::engine::fused_unsupported(&c).expect("a reason");
    assert_eq!(why.key, "objective.kind");
    // `cpu` falls to burn's autodiff, which takes a step that lowers the penalty's share.
    c.runtime.backend = BackendKind::Cpu;
    assert!(!aevb::engine::uses_fused(&c));
    let mut engine =
        aevb::engine::start(&c, 6, &flex(), 1, &mut StdRng::seed_from_u64(0), None).unwrap();
    assert_eq!(engine.name(), "flex");
    let mut rng = StdRng::seed_from_u64(5);
    let x = Matrix::new(16, 6, (0..96).map(|_| rng.random::<f32>()).collect());
    let sums = engine.step(&x, &c.objective, 1.0, 1e-3, &mut rng);
    assert!(sums.iter().all(|s| s.is_finite()), "{sums:?}");
    // bound = recon − KL − penalty per example: below the ELBO.
    assert!(sums[0] < sums[1] - sums[2], "{sums:?}");
}
