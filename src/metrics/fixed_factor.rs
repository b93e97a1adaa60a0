//! Holding one factor fixed, on the evaluation set. disentanglement_lib's β-VAE and
//! FactorVAE scores render new observations from a simulator with one factor fixed; aevb
//! draws them from the evaluation set instead: examples that share the fixed factor's
//! class, uniformly, with replacement. For a dataset whose factors are sampled
//! independently (sprites, dSprites subsets, any full factorial) that is the same
//! distribution, it works for any data with factor columns, and the scores can be
//! recomputed from `runner encode`'s file alone.

use rand::Rng;
use rand::rngs::StdRng;

use super::FactorClasses;

/// The seed of the metrics' own draws (disentanglement_lib gives each metric a
/// `random_state`): fixed, so a saved model's scores recompute to the same bits.
pub const SEED: u64 = 0x6d65_7472_6963;

/// The evaluation set's rows grouped by each factor's class.
pub struct FactorGroups {
    /// [factor][class] → the rows with that class.
    groups: Vec<Vec<Vec<usize>>>,
    /// Each row's class per factor, [rows × factors].
    classes: Vec<usize>,
    rows: usize,
    count: usize,
}

impl FactorGroups {
    pub fn new(factors: &FactorClasses<'_>) -> Self {
        let classes: Vec<usize> = factors.classes.iter().map(|&c| c as usize).collect();
        let groups = (0..factors.count)
            .map(|k| {
                let column = factors.column(k);
                let size = column.iter().max().map_or(0, |m| m + 1);
                let mut by_class = vec![Vec::new(); size];
                for (row, c) in column.into_iter().enumerate() {
                    by_class[c].push(row);
                }
                by_class
            })
            .collect();
        FactorGroups {
            groups,
            classes,
            rows: factors.rows,
            count: factors.count,
        }
    }

    /// The factors that take at least two values here: the only ones a score can tell
    /// apart (disentanglement_lib's factors all vary).
    pub fn varying(&self) -> Vec<usize> {
        (0..self.count)
            .filter(|&k| self.groups[k].iter().filter(|g| !g.is_empty()).count() > 1)
            .collect()
    }

    /// A uniformly drawn row.
    pub fn any_row(&self, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.rows)
    }

    /// A row drawn uniformly among those sharing factor `k`'s class with `row` (`row`
    /// itself included, as a simulator may draw the same factors twice).
    pub fn partner(&self, k: usize, row: usize, rng: &mut StdRng) -> usize {
        let group = &self.groups[k][self.classes[row * self.count + k]];
        group[rng.random_range(0..group.len())]
    }

    /// `n` rows with one value of factor `k`, the value that of a uniformly drawn row (so
    /// values come as often as the data hold them), the rows uniform within it.
    pub fn batch_with_fixed(&self, k: usize, n: usize, rng: &mut StdRng) -> Vec<usize> {
        let anchor = self.any_row(rng);
        (0..n).map(|_| self.partner(k, anchor, rng)).collect()
    }
}
