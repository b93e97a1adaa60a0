//! Matrix products on the run's threads: gemm (the crate burn-flex uses; it picks its AVX2 or
//! AVX-512 kernels at run time) on fixed slices of the output, one per thread.
//!
//! Each product is cut into `threads` column (or row) blocks at multiples of 16, and every
//! block is one single-threaded gemm call: the arithmetic of an output element depends only on
//! the block it falls in, so the same thread count gives the same bits whatever the scheduler
//! does. Cutting the output, never the inner dimension, keeps every sum in one order.

use gemm::{Parallelism, gemm};

/// A row-major matrix, or its transpose, as a view.
#[derive(Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    /// Logical shape (after any transpose).
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> View<'a> {
    /// `data` holds a row-major `rows × cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix view of the wrong size");
        Self {
            data,
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// Products smaller than this (multiply-adds) run on one thread: below it, waking a second
/// thread costs more than it saves.
const SPLIT_MIN_WORK: usize = 1 << 19;

/// Elementwise work smaller than this (items) runs on one thread.
const ELEMENTWISE_SPLIT_MIN: usize = 1 << 15;

/// The threads a run computes on: the calling thread alone, or a pool of `count`.
pub struct Threads {
    count: usize,
    pool: Option<rayon::ThreadPool>,
}

/// Raw pointers handed to the blocks, which write disjoint parts of the output.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: each block writes only its own rows/columns of the output (see `matmul`).
unsafe impl Send for Shared {}
// SAFETY: as for Send: no two blocks touch the same element.
unsafe impl Sync for Shared {}

impl Threads {
    pub fn new(count: usize) -> anyhow::Result<Self> {
        let count = count.max(1);
        let pool = if count > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(count)
                    .thread_name(|i| format!("aevb-fused-{i}"))
                    // Pool threads compute too: no slow subnormal arithmetic on them either.
                    .start_handler(|_| crate::fpu::flush_subnormals())
                    .build()?,
            )
        } else {
            None
        };
        Ok(Self { count, pool })
    }

    /// How many threads compute.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Items per piece when `len` items of elementwise (or per-row) work are spread over the
    /// threads: `len` itself (one piece, on the calling thread) for small work or one thread,
    /// else an even share rounded up to a multiple of `align`. Work whose every item is
    /// computed on its own (an optimiser's update, a row's likelihood summed in a fixed
    /// order) gives the same bits however it is cut, so on any thread count.
    pub fn piece(&self, len: usize, align: usize) -> usize {
        if self.pool.is_none() || len < ELEMENTWISE_SPLIT_MIN {
            return len.max(1);
        }
        len.div_ceil(self.count)
            .next_multiple_of(align.max(1))
            .max(1)
    }

    /// `f` on every item, spread over the run's threads; on one thread (or for a single
    /// item), in order on the calling thread. Takes an iterator, so a step allocates nothing
    /// for it. (Not rayon's parallel iterators: without a pool of ours they would run on
    /// rayon's global pool, whose threads are neither this run's nor set to flush subnormals.)
    pub fn each<T, I>(&self, items: I, f: impl Fn(T) + Sync)
    where
        T: Send,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send,
    {
        let mut items = items.into_iter().peekable();
        let Some(pool) = &self.pool else {
            return items.for_each(f);
        };
        let Some(first) = items.next() else { return };
        if items.peek().is_none() {
            return f(first);
        }
        pool.scope(|s| {
            let f = &f;
            s.spawn(move |_| f(first));
            for item in items {
                s.spawn(move |_| f(item));
            }
        });
    }

    /// `dst (m × n) = a · b`, or `dst += a · b` with `accumulate`.
    pub fn matmul(&self, dst: &mut [f32], a: View<'_>, b: View<'_>, accumulate: bool) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        assert_eq!(b.rows, k, "inner dimensions differ");
        assert_eq!(dst.len(), m * n, "output of the wrong size");
        if m == 0 || n == 0 {
            return;
        }
        let out = Shared(dst.as_mut_ptr());
        // One block: rows r0..r1 and columns c0..c1 of the output.
        let block = move |r0: usize, r1: usize, c0: usize, c1: usize| {
            // SAFETY: the views' strides and sizes were checked above; r0..r1 × c0..c1 lies
            // inside every operand, and blocks of one call never overlap in `dst`.
            unsafe {
                let out = out;
                gemm(
                    r1 - r0,
                    c1 - c0,
                    k,
                    out.0.add(r0 * n + c0),
                    1,
                    n as isize,
                    accumulate,
                    a.data.as_ptr().offset(r0 as isize * a.row_stride),
                    a.col_stride,
                    a.row_stride,
                    b.data.as_ptr().offset(c0 as isize * b.col_stride),
                    b.col_stride,
                    b.row_stride,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        };
        let pool = match &self.pool {
            Some(pool) if m * n * k >= SPLIT_MIN_WORK => pool,
            _ => return block(0, m, 0, n),
        };
        // Cut the longer side of the output: the operand re-read by every block is then the
        // smaller one.
        let by_columns = n >= m;
        let cuts = cuts(if by_columns { n } else { m }, self.count);
        pool.scope(|s| {
            for w in cuts.windows(2) {
                let (lo, hi) = (w[0], w[1]);
                s.spawn(move |_| {
                    if by_columns {
                        block(0, m, lo, hi)
                    } else {
                        block(lo, hi, 0, n)
                    }
                });
            }
        });
    }
}

/// `parts` + 1 increasing cut points from 0 to `len`, inner ones at multiples of 16 where the
/// length allows (gemm's kernels work in blocks of 8 or 16).
fn cuts(len: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, len.max(1));
    let mut out = vec![0];
    for i in 1..parts {
        let even = len * i / parts;
        let aligned = if len >= 16 * parts {
            (even + 8) / 16 * 16
        } else {
            even
        };
        out.push(aligned.clamp(*out.last().unwrap(), len));
    }
    out.push(len);
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
            }
        }
        out
    }

    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(salt) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn products_and_transposes_match_an_f64_reference_on_one_two_and_three_threads() {
        let (m, k, n) = (71, 131, 97);
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let want = reference(&a, &b, m, k, n);
        // aᵀ and bᵀ stored row-major, to multiply back through transposed views.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for threads in [1, 2, 3] {
            let t = Threads::new(threads).unwrap();
            let cases = [
                (View::new(&a, m, k), View::new(&b, k, n)),
                (View::new(&at, k, m).t(), View::new(&b, k, n)),
                (View::new(&a, m, k), View::new(&bt, n, k).t()),
            ];
            for (x, y) in cases {
                let mut out = vec![0.0; m * n];
                t.matmul(&mut out, x, y, false);
                for (got, want) in out.iter().zip(&want) {
                    assert!((*got as f64 - want).abs() < 1e-4, "{got} vs {want}");
                }
                // Accumulating adds the product once more.
                t.matmul(&mut out, x, y, true);
                for (got, want) in out.iter().zip(&want) {
                    assert!((*got as f64 - 2.0 * want).abs() < 2e-4);
                }
            }
        }
    }

    #[test]
    fn a_large_product_split_unevenly_over_one_two_and_three_threads_matches_f64() {
        // 129 rows, 401 columns: neither divides by 2 or 3, so every split has a ragged
        // last part; k = 785 is the MNIST input width plus one.
        let (m, k, n) = (129, 785, 401);
        let a = values(m * k, 3);
        let b = values(k * n, 4);
        let want = reference(&a, &b, m, k, n);
        // f32 accumulation error bound per entry: k·ε·Σ|a||b| (values in [-1, 1]).
        let bound = k as f64 * f32::EPSILON as f64 * k as f64;
        for threads in [1, 2, 3] {
            let t = Threads::new(threads).unwrap();
            let mut out = vec![f32::NAN; m * n];
            t.matmul(&mut out, View::new(&a, m, k), View::new(&b, k, n), false);
            let worst = out
                .iter()
                .zip(&want)
                .map(|(got, want)| (*got as f64 - want).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < bound,
                "{threads} threads: error {worst} (bound {bound})"
            );
        }
    }

    #[test]
    fn cuts_cover_the_range_in_order() {
        assert_eq!(cuts(400, 2), vec![0, 208, 400]);
        assert_eq!(cuts(10, 4), vec![0, 2, 5, 7, 10]);
        assert_eq!(cuts(3, 8), vec![0, 1, 2, 3]);
        assert_eq!(cuts(100, 1), vec![0, 100]);
        for len in [1, 15, 16, 17, 784, 1000] {
            for parts in 1..6 {
                let c = cuts(len, parts);
                assert_eq!((c[0], *c.last().unwrap()), (0, len));
                assert!(c.windows(2).all(|w| w[0] < w[1]), "{len}/{parts}: {c:?}");
            }
        }
    }
}
