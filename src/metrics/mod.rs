//! Disentanglement metrics on a representation (latent means of the evaluation set) against
//! the data's known generative factors, one file per metric, following disentanglement_lib's
//! protocol (Locatello et al. 2019) where it defines one.

pub mod discrete;
pub mod gaussian_tc;
pub mod mig;

/// A representation: `rows` examples of `dims` latent values, row-major.
pub struct Codes<'a> {
    pub values: &'a [f64],
    pub rows: usize,
    pub dims: usize,
}

impl Codes<'_> {
    /// Latent dimension j over the examples.
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows)
            .map(|i| self.values[i * self.dims + j])
            .collect()
    }
}

/// Ground-truth factor classes: `rows` examples of `count` factors, row-major.
pub struct FactorClasses<'a> {
    pub classes: &'a [u32],
    pub rows: usize,
    pub count: usize,
}

impl FactorClasses<'_> {
    pub fn column(&self, k: usize) -> Vec<usize> {
        (0..self.rows)
            .map(|i| self.classes[i * self.count + k] as usize)
            .collect()
    }
}
