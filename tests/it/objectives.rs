//! The β-VAE family beyond the ELBO (issue 22): DIP-VAE-I and -II's covariance penalty
//! against a brute-force f64 computation, their bound through `objective::evaluate`, and the
//! engine contract (the fused engine refuses them through the library, with the reason; a
//! `backend = "cpu"` run trains them on burn's autodiff).

use crate::common::flex;
use aevb::data::Matrix;
use aevb::data::batch::Batch;
use aevb::model::{Posterior, Vae};
use aevb::objective::Schedule;
use aevb::objective::{self, dip_penalty};
use aevb::spec::{BackendKind, KlMode, ObjectiveKind, RunConfig};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A [N] tensor's values, read back as f64.
fn host64(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
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
        &Schedule::beta(1.0),
        &mut StdRng::seed_from_u64(3),
    );
    let dip = objective::evaluate(
        &vae,
        x.clone(),
        &c.objective,
        &Schedule::beta(1.0),
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
    let sums = engine
        .step_and_read(
            &Batch::whole(&x),
            &c.objective,
            &Schedule::beta(1.0),
            1e-3,
            &mut rng,
        )
        .as_array();
    assert!(sums.iter().all(|s| s.is_finite()), "{sums:?}");
    // bound = recon − KL − penalty per example: below the ELBO.
    assert!(sums[0] < sums[1] - sums[2], "{sums:?}");
}

/// log N(z; m, e^lv) of one dimension, in f64.
fn log_normal(z: f64, m: f64, lv: f64) -> f64 {
    -0.5 * ((2.0 * std::f64::consts::PI).ln() + lv + (z - m).powi(2) / lv.exp())
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
}

/// β-TCVAE's minibatch-weighted decomposition, from the loops of Chen et al.'s definitions.
#[test]
fn the_total_correlation_decomposition_equals_its_f64_brute_force() {
    let mut rng = StdRng::seed_from_u64(8);
    let (m, d, n) = (7, 3, 60);
    let mu: Vec<f64> = (0..m * d).map(|_| rng.random_range(-1.5..1.5)).collect();
    let lv: Vec<f64> = (0..m * d).map(|_| rng.random_range(-2.0..0.5)).collect();
    let z: Vec<f64> = (0..m * d)
        .map(|i| mu[i] + (0.5 * lv[i]).exp() * rng.random_range(-2.0..2.0))
        .collect();
    let q = Posterior {
        mean: tensor(&mu, m, d),
        logvar: tensor(&lv, m, d),
    };
    let log_nm = ((n * m) as f64).ln();
    let (mut want_mi, mut want_tc, mut want_dw, mut want_kl) = (vec![], vec![], vec![], vec![]);
    for i in 0..m {
        let pair = |j: usize, k: usize| log_normal(z[i * d + k], mu[j * d + k], lv[j * d + k]);
        let own: f64 = (0..d).map(|k| pair(i, k)).sum();
        let joint = log_sum_exp(
            &(0..m)
                .map(|j| (0..d).map(|k| pair(j, k)).sum())
                .collect::<Vec<_>>(),
        ) - log_nm;
        let marginals: f64 = (0..d)
            .map(|k| log_sum_exp(&(0..m).map(|j| pair(j, k)).collect::<Vec<_>>()) - log_nm)
            .sum();
        let prior: f64 = (0..d).map(|k| log_normal(z[i * d + k], 0.0, 0.0)).sum();
        want_mi.push(own - joint);
        want_tc.push(joint - marginals);
        want_dw.push(marginals - prior);
        want_kl.push(own - prior);
    }
    let host = host64;
    // log q(z|x) and log p(z) at z as the objective computes them.
    let zt = tensor(&z, m, d);
    let eps: Vec<f64> = (0..m * d)
        .map(|i| (z[i] - mu[i]) / (0.5 * lv[i]).exp())
        .collect();
    let log_q = q.log_prob_at(tensor(&eps, m, d));
    let log_p = aevb::model::density::standard_normal(zt.clone());
    let parts = objective::total_correlation::decompose(&q, zt.clone(), log_q, log_p, n);
    let (mi, tc, dw) = (
        host(parts.mutual_information),
        host(parts.total_correlation),
        host(parts.dimension_kl),
    );
    let close = |a: f64, b: f64| (a - b).abs() < 2e-4 * b.abs().max(1.0);
    for i in 0..m {
        assert!(
            close(mi[i], want_mi[i]),
            "MI {i}: {} vs {}",
            mi[i],
            want_mi[i]
        );
        assert!(
            close(tc[i], want_tc[i]),
            "TC {i}: {} vs {}",
            tc[i],
            want_tc[i]
        );
        assert!(
            close(dw[i], want_dw[i]),
            "DWKL {i}: {} vs {}",
            dw[i],
            want_dw[i]
        );
        // The three add up to the KL's one-sample estimate at z.
        assert!(close(mi[i] + tc[i] + dw[i], want_kl[i]), "sum {i}");
    }
    let alone = host(objective::total_correlation::total_correlation(&q, zt, n));
    assert_eq!(alone, tc, "the objective's TC is the decomposition's");
    // With one example per dataset the estimator is exact: q(z) = q(z|x), TC of a diagonal
    // Gaussian at its own sample is 0, and so is MI.
    let single = Posterior {
        mean: tensor(&mu[..d], 1, d),
        logvar: tensor(&lv[..d], 1, d),
    };
    let tc1 = host(objective::total_correlation::total_correlation(
        &single,
        tensor(&z[..d], 1, d),
        1,
    ));
    assert!(tc1[0].abs() < 1e-5, "{tc1:?}");
}

#[test]
fn beta_tcvae_is_the_elbo_less_beta_minus_one_tc_and_the_vae_at_beta_one() {
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.hidden = vec![8];
    c.model.decoder.hidden = vec![8];
    c.objective.kind = ObjectiveKind::BetaTcvae;
    let vae = Vae::new(&c.model, 6, &mut StdRng::seed_from_u64(1), &flex());
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f64> = (0..10 * 6).map(|_| rng.random::<f64>()).collect();
    let x = tensor(&x, 10, 6);
    let host = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let schedule = |beta| Schedule {
        beta,
        capacity: 0.0,
        dataset_size: 1000,
    };
    let elbo = objective::evaluate(
        &vae,
        x.clone(),
        &RunConfig::default().objective,
        &schedule(1.0),
        &mut StdRng::seed_from_u64(3),
    );
    let vae_like = objective::evaluate(
        &vae,
        x.clone(),
        &c.objective,
        &schedule(1.0),
        &mut StdRng::seed_from_u64(3),
    );
    assert_eq!(
        host(elbo.bound.clone()),
        host(vae_like.bound),
        "β = 1 is the VAE"
    );
    let tc_terms = objective::evaluate(
        &vae,
        x,
        &c.objective,
        &schedule(4.0),
        &mut StdRng::seed_from_u64(3),
    );
    let tc = host(tc_terms.tc.expect("β-TCVAE reports its TC"));
    for ((e, b), t) in host(elbo.bound).iter().zip(host(tc_terms.bound)).zip(&tc) {
        assert!(
            (e - 3.0 * t - b).abs() < 1e-4 * e.abs().max(1.0),
            "{e} − 3·{t} vs {b}"
        );
    }
}

#[test]
fn annealed_capacity_ramps_linearly_and_the_objective_is_gamma_times_the_distance() {
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.hidden = vec![8];
    c.model.decoder.hidden = vec![8];
    c.objective.kind = ObjectiveKind::Annealed;
    c.objective.capacity_max = 10.0;
    c.objective.capacity_steps = 200;
    c.objective.capacity_gamma = 50.0;
    let at = |step| objective::capacity_at(&c.objective, step);
    assert_eq!(
        [at(0), at(50), at(100), at(200), at(10_000)],
        [0.0, 2.5, 5.0, 10.0, 10.0]
    );
    let mut no_ramp = c.objective.clone();
    no_ramp.capacity_steps = 0;
    assert_eq!(objective::capacity_at(&no_ramp, 0), 10.0);
    assert_eq!(
        objective::capacity_at(&RunConfig::default().objective, 500),
        0.0,
        "ELBO: none"
    );

    let vae = Vae::new(&c.model, 6, &mut StdRng::seed_from_u64(1), &flex());
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f64> = (0..10 * 6).map(|_| rng.random::<f64>()).collect();
    let x = tensor(&x, 10, 6);
    let host = host64;
    for capacity in [0.0, 3.0, 40.0] {
        let s = Schedule {
            beta: 1.0,
            capacity,
            dataset_size: 100,
        };
        let t = objective::evaluate(
            &vae,
            x.clone(),
            &c.objective,
            &s,
            &mut StdRng::seed_from_u64(3),
        );
        let (bound, recon, kl) = (host(t.bound), host(t.recon), host(t.kl));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let want = mean(&recon) - 50.0 * (mean(&kl) - capacity).abs();
        assert!(
            (mean(&bound) - want).abs() < 1e-3 * want.abs(),
            "C = {capacity}: {} vs {want}",
            mean(&bound)
        );
    }
}

#[test]
fn factor_vae_permutes_each_dimension_on_its_own_and_its_losses_are_their_formulas() {
    use aevb::objective::factor_vae::{discriminator_loss, permute_dims, total_correlation};
    let (n, d) = (40, 3);
    let values: Vec<f64> = (0..n * d).map(|i| i as f64).collect();
    let permuted = permute_dims(tensor(&values, n, d), &mut StdRng::seed_from_u64(6));
    let p = permuted.into_data().try_to_vec::<f32>().unwrap();
    let mut orders = Vec::new();
    for j in 0..d {
        let mut column: Vec<usize> = (0..n).map(|i| p[i * d + j] as usize).collect();
        // Every value of column j once, still in column j.
        let rows: Vec<usize> = column.iter().map(|v| v / d).collect();
        assert!(
            column.iter().all(|v| v % d == j),
            "column {j} mixed with another"
        );
        orders.push(rows);
        column.sort_unstable();
        assert_eq!(column, (0..n).map(|i| i * d + j).collect::<Vec<_>>());
    }
    assert!(
        orders[0] != orders[1] && orders[1] != orders[2],
        "one permutation per dimension"
    );

    let on_q = [2.0, -1.0, 0.5, 0.5, -3.0, 1.0];
    let on_perm = [0.0, 1.0, 4.0, -2.0];
    let tc = total_correlation(tensor(&on_q, 3, 2))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(tc, vec![3.0, 0.0, -4.0]);
    let log_softmax = |row: &[f64], k: usize| row[k] - (row[0].exp() + row[1].exp()).ln();
    let real: f64 = on_q.chunks(2).map(|r| log_softmax(r, 0)).sum::<f64>() / 3.0;
    let fake: f64 = on_perm.chunks(2).map(|r| log_softmax(r, 1)).sum::<f64>() / 2.0;
    let want = -0.5 * (real + fake);
    let got = discriminator_loss(tensor(&on_q, 3, 2), tensor(&on_perm, 2, 2))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()[0];
    assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn factor_vae_trains_its_discriminator_beside_the_vae_on_autodiff() {
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.hidden = vec![8];
    c.model.decoder.hidden = vec![8];
    c.objective.kind = ObjectiveKind::FactorVae;
    c.objective.discriminator_hidden = vec![16];
    c.objective.discriminator_lr = 1e-2;
    c.runtime.backend = BackendKind::Cpu;
    assert!(
        !aevb::engine::uses_fused(&c),
        "FactorVAE trains on autodiff"
    );
    let mut engine =
        aevb::engine::start(&c, 6, &flex(), 1, &mut StdRng::seed_from_u64(0), None).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let x = Matrix::new(32, 6, (0..192).map(|_| rng.random::<f32>()).collect());
    let schedule = Schedule {
        beta: 1.0,
        capacity: 0.0,
        dataset_size: 32,
    };
    let first = engine.step_and_read(&Batch::whole(&x), &c.objective, &schedule, 1e-3, &mut rng);
    let (tc, d) = (first.tc.unwrap(), first.discriminator.unwrap());
    // bound = recon − KL − γ·TĈ, summed over the minibatch.
    let want = first.recon - first.kl - c.objective.factor_gamma * tc;
    assert!(
        (first.bound - want).abs() < 1e-3 * want.abs(),
        "{} vs {want}",
        first.bound
    );
    // An untrained discriminator cannot tell the two apart: its loss is near ln 2 per example.
    assert!((d / 32.0 - std::f64::consts::LN_2).abs() < 0.2, "{d}");
    // Its checkpoint holds the discriminator and its optimiser beside the VAE's.
    let names: Vec<&str> = engine
        .checkpoint_files()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "model.bpk",
            "optimizer.bpk",
            "critic.bpk",
            "critic_optimizer.bpk"
        ]
    );
}
