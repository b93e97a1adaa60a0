//! The generated dSprites data end to end: a sweep trains on them, `runner encode` writes
//! the generative factors beside the latents, and a bad resolution is refused (issue 21).

use std::path::Path;

use crate::common::{read_parquet, run_dir, run_sweep, runner, write};

const SPEC: &str = r#"
name = "sprites"
[data]
dataset = "sprites"
sprites = { resolution = 32, count = 600 }
[model]
latent_dim = 4
encoder = { hidden = [64] }
decoder = { hidden = [64] }
[train]
epochs = 1
batch_size = 64
[eval]
importance_samples = 10
images_every_epochs = 0
"#;

/// Trains the spec's one run, then `runner encode`s it: its `encoded.parquet`.
fn train_and_encode(spec: &Path, results: &Path) -> polars::prelude::DataFrame {
    let out = run_sweep(spec, results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = runner()
        .args(["encode", "run", "--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_parquet(&run_dir(results, "sprites").join("figures/encoded.parquet"))
}

#[test]
fn encode_writes_the_sprites_factors_beside_the_latents() {
    let dir = tempfile::tempdir().unwrap();
    // A low active-unit threshold: more than one unit counts (the TC needs two).
    let spec = write(
        dir.path(),
        "s.toml",
        &SPEC.replace("[eval]\n", "[eval]\nactive_unit_threshold = 1e-5\n"),
    );
    let results = dir.path().join("results");
    let table = train_and_encode(&spec, &results);
    // The default test_fraction, 0.2, of 600 examples.
    assert_eq!(table.height(), 120);
    let ints = |name: &str| -> Vec<u32> {
        let c = table.column(name).unwrap().u32().unwrap();
        (0..c.len()).map(|i| c.get(i).unwrap()).collect()
    };
    let floats = |name: &str| -> Vec<f32> {
        let c = table.column(name).unwrap().f32().unwrap();
        (0..c.len()).map(|i| c.get(i).unwrap()).collect()
    };
    // The label is the shape; every factor's classes and values are in dSprites' ranges.
    assert_eq!(ints("label"), ints("factor_shape"));
    for (name, size) in [
        ("shape", 3),
        ("scale", 6),
        ("orientation", 40),
        ("pos_x", 32),
        ("pos_y", 32),
    ] {
        assert!(
            ints(&format!("factor_{name}")).iter().all(|&c| c < size),
            "{name}"
        );
    }
    let scale = floats("factor_scale_value");
    assert!(scale.iter().all(|v| (0.5..=1.0).contains(v)));
    let classes = ints("factor_scale");
    for (c, v) in classes.iter().zip(&scale) {
        assert!((v - (0.5 + 0.1 * *c as f32)).abs() < 1e-6);
    }
    // 120 random sprites cover all three shapes.
    let mut shapes = ints("factor_shape");
    shapes.sort();
    shapes.dedup();
    assert_eq!(shapes, vec![0, 1, 2]);

    // MIG recomputed from this file with the README's formula equals the row's dis_mig.
    let latents: Vec<Vec<f64>> = (0..4)
        .map(|j| {
            floats(&format!("mu_{j}"))
                .into_iter()
                .map(f64::from)
                .collect()
        })
        .collect();
    let factors: Vec<Vec<u32>> = ["shape", "scale", "orientation", "pos_x", "pos_y"]
        .iter()
        .map(|n| ints(&format!("factor_{n}")))
        .collect();
    let runs_table = read_parquet(&results.join("sprites/runs.parquet"));
    let recorded = runs_table
        .column("dis_mig")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let recomputed = readme_mig(&latents, &factors);
    assert!(
        (recorded - recomputed).abs() < 1e-6,
        "{recorded} vs {recomputed}"
    );

    // The Gaussian total correlation from the same means: the sample covariance of the
    // active units (population variance above the spec's threshold), ln det by
    // Gaussian elimination (not the Cholesky the code uses).
    let varying: Vec<&Vec<f64>> = latents
        .iter()
        .filter(|z| {
            let m = z.iter().sum::<f64>() / z.len() as f64;
            z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / z.len() as f64 > 1e-5
        })
        .collect();
    let active = runs_table
        .column("active_units")
        .unwrap()
        .cast(&polars::prelude::DataType::Float64)
        .unwrap();
    assert_eq!(active.f64().unwrap().get(0), Some(varying.len() as f64));
    assert!(varying.len() >= 2, "{} active units", varying.len());
    let n = varying[0].len() as f64;
    let k = varying.len();
    let mean: Vec<f64> = varying.iter().map(|z| z.iter().sum::<f64>() / n).collect();
    let mut cov = vec![vec![0.0; k]; k];
    for a in 0..k {
        for b in 0..k {
            cov[a][b] = (0..varying[0].len())
                .map(|i| (varying[a][i] - mean[a]) * (varying[b][i] - mean[b]))
                .sum::<f64>()
                / (n - 1.0);
        }
    }
    let diag: f64 = (0..k).map(|j| cov[j][j].ln()).sum();
    let mut m = cov.clone();
    let mut ln_det = 0.0;
    for c in 0..k {
        ln_det += m[c][c].ln();
        let pivot = m[c].clone();
        for row in m.iter_mut().skip(c + 1) {
            let f = row[c] / pivot[c];
            for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                *x -= f * p;
            }
        }
    }
    let tc = runs_table
        .column("dis_gaussian_tc")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let expected = 0.5 * (diag - ln_det);
    assert!((tc - expected).abs() < 1e-6, "{tc} vs {expected}");

    // SAP from the same file with the README's formula: R² of each (latent, factor) pair,
    // top minus second per factor, averaged.
    let column = |name: &str| {
        runs_table
            .column(name)
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
    };
    let sap = column("dis_sap");
    let expected = readme_sap(&latents, &factors);
    assert!((sap - expected).abs() < 1e-6, "{sap} vs {expected}");
    let dci: Vec<f64> = ["disentanglement", "completeness", "informativeness"]
        .iter()
        .map(|m| column(&format!("dis_dci_{m}")))
        .collect();
    assert!(dci.iter().all(|v| (0.0..=1.0).contains(v)), "{dci:?}");

    // `runner eval --metrics` recomputes every dis_* on the saved model: the same numbers.
    let out = runner()
        .args([
            "eval",
            "run",
            "--metrics",
            "--results",
            results.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    for name in [
        "dis_beta_vae",
        "dis_factor_vae",
        "dis_mig",
        "dis_sap",
        "dis_dci_completeness",
        "dis_gaussian_tc",
    ] {
        let line = printed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {printed}"));
        let value: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let recorded = column(name);
        assert!(
            (value - recorded).abs() <= 1e-4 * recorded.abs().max(1.0),
            "{name}: {value} vs {recorded}"
        );
    }
}

/// The README's SAP: S_jk = cov(z_j, v_k)² / (var z_j var v_k) (0 where var z_j < 1e-12),
/// mean over varying factors of the top score minus the second.
fn readme_sap(latents: &[Vec<f64>], factors: &[Vec<u32>]) -> f64 {
    let n = factors[0].len() as f64;
    let cov = |a: &[f64], b: &[f64]| {
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / (n - 1.0)
    };
    let mut gaps = Vec::new();
    for f in factors {
        let v: Vec<f64> = f.iter().map(|&c| c as f64).collect();
        let var_v = cov(&v, &v);
        if var_v <= 0.0 {
            continue;
        }
        let mut s: Vec<f64> = latents
            .iter()
            .map(|z| {
                let var_z = cov(z, z);
                if var_z > 1e-12 {
                    cov(z, &v).powi(2) / (var_z * var_v)
                } else {
                    0.0
                }
            })
            .collect();
        s.sort_by(|a, b| b.total_cmp(a));
        gaps.push(s[0] - s[1]);
    }
    gaps.iter().sum::<f64>() / gaps.len() as f64
}

/// The README's MIG, written out independently of `aevb::metrics`: 20 equal-width bins per
/// latent (numpy's histogram edges, `np.digitize` on all but the last), discrete mutual
/// information in nats, (top − second) / H(factor), averaged over non-constant factors.
fn readme_mig(latents: &[Vec<f64>], factors: &[Vec<u32>]) -> f64 {
    use std::collections::BTreeMap;
    let n = factors[0].len() as f64;
    let bins: Vec<Vec<u32>> = latents
        .iter()
        .map(|z| {
            let lo = z.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let step = (hi - lo) / 20.0;
            z.iter()
                .map(|&v| (1..20).filter(|&k| lo + k as f64 * step <= v).count() as u32)
                .collect()
        })
        .collect();
    let mi = |a: &[u32], b: &[u32]| -> f64 {
        let mut joint: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        let (mut pa, mut pb): (BTreeMap<u32, f64>, BTreeMap<u32, f64>) = Default::default();
        for (&x, &y) in a.iter().zip(b) {
            *joint.entry((x, y)).or_default() += 1.0;
            *pa.entry(x).or_default() += 1.0;
            *pb.entry(y).or_default() += 1.0;
        }
        joint
            .iter()
            .map(|(&(x, y), &c)| c / n * (c * n / (pa[&x] * pb[&y])).ln())
            .sum()
    };
    let gaps: Vec<f64> = factors
        .iter()
        .filter_map(|v| {
            let h = mi(v, v);
            if h <= 0.0 {
                return None;
            }
            let mut m: Vec<f64> = bins.iter().map(|z| mi(z, v)).collect();
            m.sort_by(|a, b| b.total_cmp(a));
            Some((m[0] - m[1]) / h)
        })
        .collect();
    gaps.iter().sum::<f64>() / gaps.len() as f64
}

#[test]
fn a_resolution_other_than_32_or_64_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "s.toml",
        &SPEC.replace("resolution = 32", "resolution = 48"),
    );
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("data.sprites.resolution") && stderr.contains("s.toml"),
        "{stderr}"
    );
    assert!(!results.exists());
}

/// A dSprites-layout .npz of `n` generated sprites (64×64), as DeepMind publishes the file:
/// `imgs` uint8 [n, 64, 64], `latents_classes` int64 and `latents_values` float64 [n, 6].
fn dsprites_file(path: &Path, n: usize) {
    use aevb::data::npz::{Array, write};
    use aevb::data::sprites::{ALL, Sprite};
    let mut imgs = Vec::new();
    let (mut classes, mut values) = (Vec::new(), Vec::new());
    let mut image = vec![0f32; 64 * 64];
    for i in 0..n {
        let s = Sprite::from_index(i * (ALL / n));
        s.render(64, &mut image);
        imgs.extend(image.iter().map(|&p| p as u8));
        classes.push(0.0);
        classes.extend(s.classes().map(|c| c as f64));
        values.push(1.0);
        values.extend(s.values().map(f64::from));
    }
    let imgs = Array::U8 {
        shape: vec![n, 64, 64],
        values: imgs,
    };
    let classes = Array::F64 {
        shape: vec![n, 6],
        values: classes,
    };
    let values = Array::F64 {
        shape: vec![n, 6],
        values,
    };
    write(
        path,
        &[
            ("imgs", &imgs),
            ("latents_classes", &classes),
            ("latents_values", &values),
        ],
    )
    .unwrap();
}

#[test]
fn dsprites_npz_in_the_published_layout_trains_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("dsprites.npz");
    dsprites_file(&npz, 300);
    let spec_text = SPEC
        .replace(
            "dataset = \"sprites\"",
            "dataset = \"dsprites\"\npath = \"dsprites.npz\"",
        )
        .replace(
            "sprites = { resolution = 32, count = 600 }",
            "sprites = { count = 0 }",
        );
    let spec = write(dir.path(), "d.toml", &spec_text);
    let results = dir.path().join("results");
    let table = train_and_encode(&spec, &results);
    assert_eq!(table.height(), 60);
    for name in ["color", "shape", "scale", "orientation", "pos_x", "pos_y"] {
        assert!(table.column(&format!("factor_{name}")).is_ok(), "{name}");
    }

    // Wrong layouts: each refused with exit 2, naming the file and what was expected.
    use aevb::data::npz::{Array, write as write_npz};
    let flat = Array::U8 {
        shape: vec![300, 4096],
        values: vec![0; 300 * 4096],
    };
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "garbage.npz",
            Box::new(|p| std::fs::write(p, b"not a zip").unwrap()),
            "not an .npz",
        ),
        (
            "flat.npz",
            Box::new(move |p| write_npz(p, &[("imgs", &flat)]).unwrap()),
            "[N, 64, 64]",
        ),
        (
            "nolatents.npz",
            Box::new(|p| {
                let imgs = Array::U8 {
                    shape: vec![2, 64, 64],
                    values: vec![0; 2 * 4096],
                };
                write_npz(p, &[("imgs", &imgs)]).unwrap()
            }),
            "latents_classes",
        ),
    ];
    for (name, make, expected) in cases {
        let bad = dir.path().join(name);
        make(&bad);
        let spec = write(
            dir.path(),
            "bad.toml",
            &spec_text.replace("dsprites.npz", name),
        );
        let results = dir.path().join(format!("results-{name}"));
        let out = run_sweep(&spec, &results, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(!results.exists(), "{name}: nothing written");
    }
}

#[test]
fn report_aggregates_the_disentanglement_scores_and_draws_them_against_beta() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "s.toml",
        &format!("{SPEC}[sweep.grid]\n\"objective.beta\" = [1.0, 4.0]\n\"train.seed\" = [0, 1]\n"),
    );
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let study = results.join("sprites");
    // Every dis_* column gets mean ± sd over the two seeds and its interval.
    let table = crate::common::report(&study, "csv");
    let header = table.lines().next().unwrap();
    for m in [
        "dis_beta_vae",
        "dis_factor_vae",
        "dis_mig",
        "dis_sap",
        "dis_dci_disentanglement",
        "dis_gaussian_tc",
    ] {
        for part in ["mean", "std", "ci95_lo", "ci95_hi"] {
            assert!(
                header.contains(&format!("{m}_{part}")),
                "{m}_{part} in {header}"
            );
        }
    }
    // The mean is the mean of the two seeds' rows.
    let runs = read_parquet(&study.join("runs.parquet"));
    let beta = runs.column("objective.beta").unwrap().f64().unwrap();
    let mig = runs.column("dis_mig").unwrap().f64().unwrap();
    let expected: f64 = (0..runs.height())
        .filter(|&i| beta.get(i) == Some(4.0))
        .map(|i| mig.get(i).unwrap())
        .sum::<f64>()
        / 2.0;
    let json: serde_json::Value =
        serde_json::from_str(&crate::common::report(&study, "json")).unwrap();
    let row = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["objective.beta"] == 4.0)
        .unwrap();
    let got = row["dis_mig_mean"].as_f64().unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    // Each score against β, and the reconstruction–disentanglement plane.
    let figures = study.join("report");
    for stem in [
        "dis_mig_vs_objective_beta",
        "recon_vs_dis_mig",
        "recon_vs_dis_sap",
    ] {
        assert!(figures.join(format!("{stem}.png")).is_file(), "{stem}.png");
    }
    // One traversal grid per β (of its lowest seed's run), latents most informative first.
    for beta in ["beta=1.0", "beta=4.0"] {
        let png = figures.join("traversals").join(beta).join("traversals.png");
        assert!(png.is_file(), "{}", png.display());
    }
    // Each score is a scalar in every run's TensorBoard log and a metric of the HParams
    // dashboard: its tag stands in the log twice (the scalar, and the experiment record's
    // metric list).
    let tb = study.join("tb");
    for entry in std::fs::read_dir(&tb).unwrap().flatten() {
        let mut bytes = Vec::new();
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            bytes.extend(std::fs::read(file.path()).unwrap());
        }
        for tag in [
            "test/dis_sap",
            "test/dis_dci_informativeness",
            "test/dis_factor_vae",
        ] {
            let count = bytes
                .windows(tag.len())
                .filter(|w| *w == tag.as_bytes())
                .count();
            assert!(
                count >= 2,
                "{tag} {count} times in {}",
                entry.path().display()
            );
        }
    }
    // A score can be the report's main metric.
    let out = runner()
        .args(["report", study.to_str().unwrap(), "--metric", "dis_mig"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Five factors (dSprites' without its constant colour), images stored [N, 32, 32, 1]:
/// `dataset = "npz"` trains on it and the row gets the supervised disentanglement scores;
/// `encode` names the factors as `data.factor_names` says.
#[test]
fn a_five_factor_npz_trains_as_npz_and_gets_every_disentanglement_score() {
    use aevb::data::npz::{Array, write as write_npz};
    use aevb::data::sprites::{ALL, Sprite};
    let dir = tempfile::tempdir().unwrap();
    let n = 600;
    let (mut imgs, mut classes, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut image = vec![0f32; 32 * 32];
    for i in 0..n {
        let s = Sprite::from_index((i * 7919) % ALL);
        s.render(32, &mut image);
        imgs.extend(image.iter().map(|&p| (p * 255.0) as u8));
        classes.extend(s.classes().map(|c| c as f64));
        values.extend(s.values().map(f64::from));
    }
    let npz = dir.path().join("five.npz");
    let arrays = [
        (
            "imgs",
            Array::U8 {
                shape: vec![n, 32, 32, 1],
                values: imgs,
            },
        ),
        (
            "latents_classes",
            Array::F64 {
                shape: vec![n, 5],
                values: classes,
            },
        ),
        (
            "latents_values",
            Array::F64 {
                shape: vec![n, 5],
                values,
            },
        ),
    ];
    let named: Vec<(&str, &Array)> = arrays.iter().map(|(n, a)| (*n, a)).collect();
    write_npz(&npz, &named).unwrap();
    let names = "[\"shape\", \"scale\", \"orientation\", \"x\", \"y\"]";
    let spec = write(
        dir.path(),
        "five.toml",
        &SPEC
            .replace("name = \"sprites\"", "name = \"five\"")
            .replace(
                "dataset = \"sprites\"\nsprites = { resolution = 32, count = 600 }",
                &format!("dataset = \"npz\"\npath = \"five.npz\"\nfactor_names = {names}"),
            ),
    );
    let results = dir.path().join("results");
    let out = run_sweep(&spec, &results, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = crate::common::record(&results, "five");
    for m in [
        "dis_mig",
        "dis_sap",
        "dis_beta_vae",
        "dis_factor_vae",
        "dis_dci_informativeness",
    ] {
        assert!(
            row[m].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{m}: {}",
            row[m]
        );
    }
    let run = crate::common::run_dir(&results, "five");
    let out = runner().arg("encode").arg(&run).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = read_parquet(&run.join("figures/encoded.parquet"));
    for name in ["shape", "scale", "orientation", "x", "y"] {
        assert!(table.column(&format!("factor_{name}")).is_ok(), "{name}");
    }
    // Names that do not match the factors are refused, naming the key.
    let out = run_sweep(
        &spec,
        &dir.path().join("r2"),
        &["--set", "data.factor_names=[\"a\"]"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("data.factor_names"));
}
