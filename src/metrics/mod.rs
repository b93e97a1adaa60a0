//! Disentanglement metrics on a representation (latent means of the evaluation set) against
//! the data's known generative factors, one file per metric, following disentanglement_lib's
//! protocol (Locatello et al. 2019) where it defines one.

pub mod beta_vae;
pub mod dci;
pub mod discrete;
pub mod factor_vae;
pub mod fixed_factor;
pub mod gaussian_tc;
pub mod logistic;
pub mod mig;
pub mod sap;
#[cfg(test)]
mod tests_support;

/// The metrics' columns in `runs.parquet` (and, after `test/`, their TensorBoard tags), in
/// the order [`Scores::named`] gives them.
pub const NAMES: [&str; 8] = [
    "dis_beta_vae",
    "dis_factor_vae",
    "dis_mig",
    "dis_sap",
    "dis_dci_disentanglement",
    "dis_dci_completeness",
    "dis_dci_informativeness",
    "dis_gaussian_tc",
];

/// Every metric of one evaluation set: the unsupervised Gaussian total correlation always,
/// the supervised ones where the data have factors. None where a metric is undefined (too
/// few varying factors or latents, a singular covariance).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    pub beta_vae: Option<f64>,
    pub factor_vae: Option<f64>,
    pub mig: Option<f64>,
    pub sap: Option<f64>,
    pub dci_disentanglement: Option<f64>,
    pub dci_completeness: Option<f64>,
    pub dci_informativeness: Option<f64>,
    pub gaussian_tc: Option<f64>,
}

impl Scores {
    /// The metrics of posterior means `means` ([rows × latent], row-major) against the
    /// examples' `factors`, where there are some; the Gaussian total correlation over the
    /// `active` latent dimensions.
    pub fn of(
        means: &[f32],
        latent: usize,
        active: &[usize],
        factors: Option<&crate::data::Factors>,
    ) -> Self {
        let rows = means.len() / latent.max(1);
        let values: Vec<f64> = means.iter().map(|&v| v as f64).collect();
        let codes = Codes {
            values: &values,
            rows,
            dims: latent,
        };
        let finite = |v: f64| v.is_finite().then_some(v);
        let mut scores = Scores {
            gaussian_tc: gaussian_tc::gaussian_total_correlation(&codes, active).and_then(finite),
            ..Scores::default()
        };
        let Some(factors) = factors else {
            return scores;
        };
        let classes = FactorClasses {
            classes: &factors.classes,
            rows,
            count: factors.names.len(),
        };
        scores.beta_vae =
            beta_vae::beta_vae(&codes, &classes).and_then(|s| finite(s.eval_accuracy));
        scores.factor_vae =
            factor_vae::factor_vae(&codes, &classes).and_then(|s| finite(s.eval_accuracy));
        scores.mig = finite(mig::mig(&codes, &classes).score);
        scores.sap = finite(sap::sap(&codes, &classes).score);
        if let Some(d) = dci::dci(&codes, &classes) {
            scores.dci_disentanglement = finite(d.disentanglement);
            scores.dci_completeness = finite(d.completeness);
            scores.dci_informativeness = finite(d.informativeness);
        }
        scores
    }

    /// (column, value) pairs, as `runs.parquet` and TensorBoard name them (`dis_*`).
    pub fn named(&self) -> [(&'static str, Option<f64>); NAMES.len()] {
        let values = [
            self.beta_vae,
            self.factor_vae,
            self.mig,
            self.sap,
            self.dci_disentanglement,
            self.dci_completeness,
            self.dci_informativeness,
            self.gaussian_tc,
        ];
        std::array::from_fn(|i| (NAMES[i], values[i]))
    }

    /// The scores whose values, in [`NAMES`]' order, are `values` (what [`Self::named`] gives).
    pub fn from_values(values: [Option<f64>; NAMES.len()]) -> Self {
        let [
            beta_vae,
            factor_vae,
            mig,
            sap,
            dci_disentanglement,
            dci_completeness,
            dci_informativeness,
            gaussian_tc,
        ] = values;
        Self {
            beta_vae,
            factor_vae,
            mig,
            sap,
            dci_disentanglement,
            dci_completeness,
            dci_informativeness,
            gaussian_tc,
        }
    }
}

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
