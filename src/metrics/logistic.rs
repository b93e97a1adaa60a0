//! Multinomial logistic regression as scikit-learn's `LogisticRegression()` defines it with
//! its defaults (the β-VAE score's classifier in disentanglement_lib): L2 penalty with
//! C = 1, so the fitted (W, b) minimise Σᵢ −log softmax(W xᵢ + b)_{yᵢ} + ½‖W‖², the intercept
//! unpenalised, multinomial over the classes present. Fitted here by L-BFGS to a gradient of
//! at most 10⁻⁶ per example (max norm), not stopped after scikit-learn's 100 iterations: the
//! answer is the optimum, whatever the iteration budget.

/// A fitted classifier: `classes` labels, `weights` [classes × (features + 1)], the last
/// column the intercept.
pub struct Logistic {
    pub labels: Vec<usize>,
    pub features: usize,
    pub weights: Vec<f64>,
}

impl Logistic {
    /// Fits on `x` ([rows × features], row-major) with labels `y`.
    pub fn fit(x: &[f64], features: usize, y: &[usize]) -> Self {
        let mut labels: Vec<usize> = y.to_vec();
        labels.sort_unstable();
        labels.dedup();
        let index: Vec<usize> = y
            .iter()
            .map(|l| labels.binary_search(l).expect("a present label"))
            .collect();
        let problem = Problem {
            x,
            features,
            y: &index,
            classes: labels.len(),
        };
        let start = vec![0.0; labels.len() * (features + 1)];
        let tolerance = 1e-6 * y.len().max(1) as f64;
        let weights = if labels.len() < 2 {
            start
        } else {
            lbfgs(|w| problem.value_and_gradient(w), start, tolerance, 2000)
        };
        Logistic {
            labels,
            features,
            weights,
        }
    }

    /// The most probable label of each row of `x`.
    pub fn predict(&self, x: &[f64]) -> Vec<usize> {
        let width = self.features + 1;
        x.chunks_exact(self.features.max(1))
            .map(|row| {
                let scores = (0..self.labels.len())
                    .map(|c| linear(&self.weights[c * width..(c + 1) * width], row));
                let best = scores
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(0, |(c, _)| c);
                self.labels[best]
            })
            .collect()
    }

    /// The fraction of rows of `x` predicted as their label in `y`.
    pub fn accuracy(&self, x: &[f64], y: &[usize]) -> f64 {
        let hits = self
            .predict(x)
            .iter()
            .zip(y)
            .filter(|(p, l)| p == l)
            .count();
        hits as f64 / y.len().max(1) as f64
    }
}

/// w·x + b, with the intercept b last in `w`.
fn linear(w: &[f64], x: &[f64]) -> f64 {
    let (b, w) = w.split_last().expect("an intercept");
    w.iter().zip(x).map(|(a, v)| a * v).sum::<f64>() + b
}

struct Problem<'a> {
    x: &'a [f64],
    features: usize,
    y: &'a [usize],
    classes: usize,
}

impl Problem<'_> {
    /// The penalised negative log-likelihood and its gradient.
    fn value_and_gradient(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let width = self.features + 1;
        let mut value = 0.0;
        let mut gradient = vec![0.0; w.len()];
        let mut scores = vec![0.0; self.classes];
        for (row, &label) in self.x.chunks_exact(self.features.max(1)).zip(self.y) {
            for (c, s) in scores.iter_mut().enumerate() {
                *s = linear(&w[c * width..(c + 1) * width], row);
            }
            let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let norm: f64 = scores.iter().map(|s| (s - top).exp()).sum();
            let log_norm = top + norm.ln();
            value += log_norm - scores[label];
            for (c, s) in scores.iter().enumerate() {
                let residual = (s - log_norm).exp() - f64::from(u8::from(c == label));
                let g = &mut gradient[c * width..(c + 1) * width];
                for (gj, v) in g.iter_mut().zip(row) {
                    *gj += residual * v;
                }
                g[self.features] += residual;
            }
        }
        for c in 0..self.classes {
            for j in 0..self.features {
                let a = w[c * width + j];
                value += 0.5 * a * a;
                gradient[c * width + j] += a;
            }
        }
        (value, gradient)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Limited-memory BFGS (Nocedal & Wright, Algorithm 7.4; memory 10) with a backtracking
/// Armijo line search, until the gradient's largest entry is at most `tolerance`.
fn lbfgs(
    f: impl Fn(&[f64]) -> (f64, Vec<f64>),
    mut w: Vec<f64>,
    tolerance: f64,
    max_iterations: usize,
) -> Vec<f64> {
    const MEMORY: usize = 10;
    let (mut value, mut gradient) = f(&w);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    for iteration in 0..max_iterations {
        if gradient.iter().all(|g| g.abs() <= tolerance) {
            break;
        }
        // Two-loop recursion: direction = −H·gradient.
        let mut q = gradient.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = history.back().map_or_else(
            || 1.0 / gradient.iter().map(|g| g.abs()).fold(1.0, f64::max),
            |(s, y, _)| dot(s, y) / dot(y, y),
        );
        q.iter_mut().for_each(|qi| *qi *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost to rounding): restart on the gradient.
            history.clear();
            direction = gradient.iter().map(|g| -g * gamma.min(1.0)).collect();
            slope = dot(&gradient, &direction);
        }
        let mut step = 1.0;
        let (next, next_value, next_gradient) = loop {
            let candidate: Vec<f64> = w
                .iter()
                .zip(&direction)
                .map(|(a, d)| a + step * d)
                .collect();
            let (v, g) = f(&candidate);
            if v <= value + 1e-4 * step * slope || step < 1e-20 {
                break (candidate, v, g);
            }
            step *= 0.5;
        };
        let s: Vec<f64> = next.iter().zip(&w).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let stalled = next_value >= value && iteration > 0 && step < 1e-20;
        (w, value, gradient) = (next, next_value, next_gradient);
        if stalled {
            break;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The penalised objective, written out again independently of `Problem`.
    fn objective(x: &[f64], features: usize, y: &[usize], classes: usize, w: &[f64]) -> f64 {
        let width = features + 1;
        let mut total = 0.0;
        for (row, &label) in x.chunks(features).zip(y) {
            let s: Vec<f64> = (0..classes)
                .map(|c| {
                    (0..features)
                        .map(|j| w[c * width + j] * row[j])
                        .sum::<f64>()
                        + w[c * width + features]
                })
                .collect();
            let lse = s.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - s[label];
        }
        let penalty: f64 = (0..classes)
            .flat_map(|c| (0..features).map(move |j| c * width + j))
            .map(|i| w[i] * w[i])
            .sum();
        total + 0.5 * penalty
    }

    fn noisy_three_classes(rows: usize, rng: &mut StdRng) -> (Vec<f64>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..rows {
            let label = rng.random_range(0..3usize);
            let centre = [[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]][label];
            x.push(centre[0] + rng.random_range(-1.0..1.0));
            x.push(centre[1] + rng.random_range(-1.0..1.0));
            y.push(label + 4); // labels need not start at 0
        }
        (x, y)
    }

    #[test]
    fn the_fit_is_the_minimum_of_the_penalised_likelihood() {
        let mut rng = StdRng::seed_from_u64(3);
        let (x, y) = noisy_three_classes(400, &mut rng);
        let model = Logistic::fit(&x, 2, &y);
        assert_eq!(model.labels, vec![4, 5, 6]);
        let index: Vec<usize> = y.iter().map(|l| l - 4).collect();
        let best = objective(&x, 2, &index, 3, &model.weights);
        // No step along any coordinate, either way, lowers the objective.
        for i in 0..model.weights.len() {
            for h in [1e-3, -1e-3] {
                let mut w = model.weights.clone();
                w[i] += h;
                assert!(
                    objective(&x, 2, &index, 3, &w) >= best - 1e-9,
                    "coordinate {i}"
                );
            }
        }
        let accuracy = model.accuracy(&x, &y);
        assert!(accuracy > 0.7 && accuracy < 1.0, "{accuracy}");
    }

    #[test]
    fn separable_classes_are_predicted_exactly_and_one_class_predicts_itself() {
        let x = [0.0, 0.1, 0.2, 5.0, 5.1, 5.2];
        let y = [0, 0, 0, 1, 1, 1];
        assert_eq!(Logistic::fit(&x, 1, &y).accuracy(&x, &y), 1.0);
        let one = Logistic::fit(&x, 1, &[2; 6]);
        assert_eq!(one.predict(&x), vec![2; 6]);
    }
}
