//! Discrete information measures in nats, as scikit-learn's `mutual_info_score` computes them
//! (what disentanglement_lib calls), and numpy's histogram discretisation.

use std::collections::HashMap;

/// Each value's bin among `bins` equal-width bins over [min, max] of `values`, exactly as
/// `np.digitize(x, np.histogram(x, bins)[1][:-1]) - 1` (disentanglement_lib's
/// `_histogram_discretize`): edge k is min + k·(max − min)/bins, a value's bin is the number
/// of edges 1 … bins−1 at or below it, so the maximum falls in the last bin. A constant
/// input is one bin.
pub fn histogram_bins(values: &[f64], bins: usize) -> Vec<usize> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || bins < 2 {
        return vec![0; values.len()];
    }
    let step = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (1..bins).map(|k| lo + k as f64 * step).collect();
    values
        .iter()
        .map(|&v| edges.iter().take_while(|&&e| e <= v).count())
        .collect()
}

/// I(a; b) = Σ p(a, b) ln p(a, b) / (p(a) p(b)), from the joint counts.
pub fn mutual_information(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "paired labels");
    let n = a.len() as f64;
    if a.is_empty() {
        return 0.0;
    }
    let mut joint: HashMap<(usize, usize), f64> = HashMap::new();
    let mut pa: HashMap<usize, f64> = HashMap::new();
    let mut pb: HashMap<usize, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0;
        *pa.entry(x).or_default() += 1.0;
        *pb.entry(y).or_default() += 1.0;
    }
    // Summed in a fixed order: the same bits every time.
    let mut cells: Vec<((usize, usize), f64)> = joint.into_iter().collect();
    cells.sort_by_key(|(k, _)| *k);
    let mi: f64 = cells
        .iter()
        .map(|&((x, y), c)| c / n * ((c * n) / (pa[&x] * pb[&y])).ln())
        .sum();
    mi.max(0.0)
}

/// H(a) = I(a; a).
pub fn entropy(a: &[usize]) -> f64 {
    mutual_information(a, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_numpy_digitize_on_histogram_edges() {
        // np.digitize([0, 1, 2.5, 5, 9.99, 10], np.histogram([0, 10], 4)[1][:-1]) - 1
        //   = [0, 0, 1, 2, 3, 3] (edges 0, 2.5, 5, 7.5, 10).
        let v = [0.0, 1.0, 2.5, 5.0, 9.99, 10.0];
        assert_eq!(histogram_bins(&v, 4), vec![0, 0, 1, 2, 3, 3]);
        assert_eq!(histogram_bins(&[3.0, 3.0], 20), vec![0, 0]);
    }

    #[test]
    fn information_of_small_cases_by_hand() {
        // Two independent fair bits: I = 0; a bit with itself: H = ln 2.
        let a = [0, 0, 1, 1];
        let b = [0, 1, 0, 1];
        assert!(mutual_information(&a, &b).abs() < 1e-15);
        assert!((entropy(&a) - 2f64.ln()).abs() < 1e-15);
        // A relabelling keeps the information.
        let c = [7, 7, 3, 3];
        assert!((mutual_information(&a, &c) - 2f64.ln()).abs() < 1e-15);
        // p = (½, ¼, ¼): H = 1.5 ln 2.
        assert!((entropy(&[0, 0, 1, 2]) - 1.5 * 2f64.ln()).abs() < 1e-15);
    }
}
