//! A linear-Gaussian latent model, x = W z + b + σ e with z, e ~ N(0, I), whose marginal
//! x ~ N(b, W Wᵀ + σ² I) gives the exact log-likelihood to check estimates against.
//! All linear algebra here is f64, independent of the tensor backends it checks.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::{Dataset, Matrix};
use crate::spec::DataConfig;

/// The true model; `w` is row-major data_dim × latent_dim.
#[derive(Clone, Debug)]
pub struct LinearGaussian {
    pub data_dim: usize,
    pub latent_dim: usize,
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    pub noise_std: f64,
}

impl LinearGaussian {
    /// Draws W (entries N(0, 1)) and b (N(0, 1)) from `seed`.
    pub fn random(data_dim: usize, latent_dim: usize, noise_std: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
        let w = (0..data_dim * latent_dim).map(|_| normal()).collect();
        let b = (0..data_dim).map(|_| normal()).collect();
        Self {
            data_dim,
            latent_dim,
            w,
            b,
            noise_std,
        }
    }

    pub fn sample(&self, n: usize, rng: &mut StdRng) -> Matrix {
        let (d, k) = (self.data_dim, self.latent_dim);
        let mut values = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..k).map(|_| StandardNormal.sample(rng)).collect();
            for i in 0..d {
                let e: f64 = StandardNormal.sample(rng);
                let wz: f64 = (0..k).map(|j| self.w[i * k + j] * z[j]).sum();
                values.push((wz + self.b[i] + self.noise_std * e) as f32);
            }
        }
        Matrix::new(n, d, values)
    }

    /// Marginal covariance W Wᵀ + σ² I (row-major d × d).
    pub fn covariance(&self) -> Vec<f64> {
        let (d, k) = (self.data_dim, self.latent_dim);
        let mut c = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] = (0..k).map(|l| self.w[i * k + l] * self.w[j * k + l]).sum();
            }
            c[i * d + i] += self.noise_std * self.noise_std;
        }
        c
    }

    /// Exact log p(x) of each row, in nats.
    pub fn log_px(&self, x: &Matrix) -> Vec<f64> {
        let d = self.data_dim;
        let l = cholesky(&self.covariance(), d);
        let log_det: f64 = (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum();
        (0..x.rows)
            .map(|r| {
                let diff: Vec<f64> = (0..d).map(|i| x.row(r)[i] as f64 - self.b[i]).collect();
                let y = forward_substitute(&l, d, &diff);
                let maha: f64 = y.iter().map(|v| v * v).sum();
                -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + maha)
            })
            .collect()
    }

    /// The exact posterior p(z|x) = N(A (x - b), S): returns (A row-major k × d, S k × k).
    pub fn posterior(&self) -> (Vec<f64>, Vec<f64>) {
        let (d, k) = (self.data_dim, self.latent_dim);
        let s2 = self.noise_std * self.noise_std;
        // Precision P = I + Wᵀ W / σ²; S = P⁻¹; A = S Wᵀ / σ².
        let mut p = vec![0.0; k * k];
        for a in 0..k {
            for b in 0..k {
                p[a * k + b] = (0..d)
                    .map(|i| self.w[i * k + a] * self.w[i * k + b])
                    .sum::<f64>()
                    / s2;
            }
            p[a * k + a] += 1.0;
        }
        let s = invert_spd(&p, k);
        let mut a_mat = vec![0.0; k * d];
        for r in 0..k {
            for i in 0..d {
                a_mat[r * d + i] = (0..k)
                    .map(|c| s[r * k + c] * self.w[i * k + c])
                    .sum::<f64>()
                    / s2;
            }
        }
        (a_mat, s)
    }
}

/// Lower-triangular L with L Lᵀ = a, for a symmetric positive-definite n × n matrix (a
/// matrix that is not gives NaN entries, and so a NaN log-likelihood, rather than a panic).
pub fn cholesky(a: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let v = a[i * n + i] - s;
                l[i * n + j] = if v > 0.0 { v.sqrt() } else { f64::NAN };
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    l
}

/// Solves L y = b for lower-triangular L.
fn forward_substitute(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    y
}

fn invert_spd(a: &[f64], n: usize) -> Vec<f64> {
    let l = cholesky(a, n);
    let mut inv = vec![0.0; n * n];
    for col in 0..n {
        let e: Vec<f64> = (0..n).map(|i| if i == col { 1.0 } else { 0.0 }).collect();
        let y = forward_substitute(&l, n, &e);
        // Back substitution with Lᵀ.
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
            x[i] = (y[i] - s) / l[i * n + i];
        }
        for i in 0..n {
            inv[i * n + col] = x[i];
        }
    }
    inv
}

pub fn load(config: &DataConfig) -> Result<Dataset, super::DataError> {
    let s = &config.synthetic;
    // The examples (f32) and the exact log p(x)'s d × d covariance and factor (f64).
    let (d, z) = (s.data_dim as f64, s.latent_dim as f64);
    let bytes = 4.0 * d * (s.train_size as f64 + s.test_size as f64) + 8.0 * (3.0 * d * d + d * z);
    crate::resources::ensure_fits(bytes, "the synthetic dataset")
        .map_err(|m| super::DataError::new("data.synthetic", m))?;
    let model = LinearGaussian::random(s.data_dim, s.latent_dim, s.noise_std, config.split_seed);
    let mut rng = StdRng::seed_from_u64(config.split_seed.wrapping_add(1));
    let train = model.sample(s.train_size, &mut rng);
    let test = model.sample(s.test_size, &mut rng);
    let test_used = match config.test_limit {
        Some(n) => test.head(n),
        None => test.clone(),
    };
    let exact = model.log_px(&test_used);
    Ok(Dataset {
        train,
        test,
        image_shape: None,
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: Some(exact.iter().sum::<f64>() / exact.len().max(1) as f64),
        test_labels: None,
        test_factors: None,
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs_the_matrix() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((v - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        let inv = invert_spd(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn one_dimensional_log_px_is_the_normal_density() {
        // d = 1, k = 1: x ~ N(b, w² + σ²).
        let m = LinearGaussian {
            data_dim: 1,
            latent_dim: 1,
            w: vec![2.0],
            b: vec![0.5],
            noise_std: 1.5,
        };
        let x = Matrix::new(1, 1, vec![1.25]);
        let var: f64 = 4.0 + 2.25;
        let expected = -0.5 * ((2.0 * std::f64::consts::PI * var).ln() + 0.75f64.powi(2) / var);
        assert!((m.log_px(&x)[0] - expected).abs() < 1e-6);
    }
}
