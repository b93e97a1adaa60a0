//! Constructed representations with known answers, shared by the metrics' unit tests.

use super::{Codes, FactorClasses};

/// Every combination of factors of the given sizes, `times` over.
pub struct Grid {
    pub classes: Vec<u32>,
    pub rows: usize,
    pub count: usize,
}

impl Grid {
    pub fn new(sizes: &[usize], times: usize) -> Self {
        let combos: usize = sizes.iter().product();
        let mut classes = Vec::new();
        for _ in 0..times {
            for mut i in 0..combos {
                for &s in sizes {
                    classes.push((i % s) as u32);
                    i /= s;
                }
            }
        }
        Grid {
            rows: combos * times,
            count: sizes.len(),
            classes,
        }
    }

    pub fn classes(&self) -> FactorClasses<'_> {
        FactorClasses {
            classes: &self.classes,
            rows: self.rows,
            count: self.count,
        }
    }

    /// A representation: `f` of each row's factor classes (as numbers); and its width.
    pub fn codes(&self, f: impl Fn(&[f64]) -> Vec<f64>) -> (Vec<f64>, usize) {
        let mut dims = 0;
        let mut values = Vec::new();
        for row in self.classes.chunks(self.count) {
            let v: Vec<f64> = row.iter().map(|&c| c as f64).collect();
            let z = f(&v);
            dims = z.len();
            values.extend(z);
        }
        (values, dims)
    }

    pub fn codes_of<'a>(&self, values: &'a [f64], dims: usize) -> Codes<'a> {
        Codes {
            values,
            rows: self.rows,
            dims,
        }
    }
}

/// The first two factors (of equal sizes) turned by 45°: each latent holds half of each,
/// and nothing tells the two factors apart (the adversarial rotation for the
/// classifier-based scores).
pub fn rotate45(v: &[f64]) -> Vec<f64> {
    vec![v[0] + v[1], v[0] - v[1]]
}

/// The first three factors, scaled to comparable ranges, under a fixed rotation (the
/// Euler angles 0.7, 0.5, 0.9 rad): every latent mixes every factor.
pub fn rotate(v: &[f64]) -> Vec<f64> {
    let (a, b, c) = (0.7f64, 0.5f64, 0.9f64);
    let rz = |x: [f64; 3], t: f64| {
        [
            t.cos() * x[0] - t.sin() * x[1],
            t.sin() * x[0] + t.cos() * x[1],
            x[2],
        ]
    };
    let ry = |x: [f64; 3], t: f64| {
        [
            t.cos() * x[0] + t.sin() * x[2],
            x[1],
            -t.sin() * x[0] + t.cos() * x[2],
        ]
    };
    let x = [v[0] / 6.0, v[1] / 5.0, v[2] / 4.0];
    rz(ry(rz(x, a), b), c).to_vec()
}
