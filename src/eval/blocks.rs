//! Evaluation in fixed blocks of examples. Each block has its own noise stream, a function
//! of (seed, purpose, block), so a block's numbers are the same whichever thread computes it,
//! however many threads there are, and whether the evaluation ran through or was continued
//! from saved progress.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::engine::fused::products::Threads;

/// Examples per block. Fixed (never a function of the thread count or K).
pub const BLOCK_EXAMPLES: usize = 64;

/// What a block's noise is for: each its own stream.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    /// The ELBO's L samples per example (train and test sets alike).
    Elbo = 1,
    /// The importance sampler's K samples per example.
    LogPx = 2,
}

/// A block's noise stream: ChaCha12, the algorithm of rand's `StdRng` (the same draws from
/// the same key), whose position can be saved and restored.
pub type Stream = ChaCha12Rng;

/// The noise of one block. Byte 24 carries the purpose with its top bit set, so these
/// streams never meet the training streams (`train::stream`, bytes 1–3 there).
pub fn stream(seed: u64, purpose: Purpose, block: usize) -> Stream {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(block as u64).to_le_bytes());
    key[24] = 0x80 | purpose as u8;
    Stream::from_seed(key)
}

/// `count` standard normal draws into `out`, continuing `rng`.
pub fn draw(rng: &mut Stream, count: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend((0..count).map(|_| -> f32 { StandardNormal.sample(rng) }));
}

/// The examples of block `b` of `rows`.
pub fn block_range(b: usize, rows: usize) -> std::ops::Range<usize> {
    b * BLOCK_EXAMPLES..((b + 1) * BLOCK_EXAMPLES).min(rows)
}

/// Every block of `rows` examples, one per thread at a time: `f` computes block b with
/// that thread's work buffers, `done` takes each block's result in block order. (The
/// importance sampler, which stops and continues inside blocks, has rounds of its own:
/// `importance.rs`.)
pub fn run<W: Default + Send, R: Send>(
    threads: &Threads,
    rows: usize,
    f: impl Fn(&mut W, usize) -> R + Sync,
    mut done: impl FnMut(R),
) {
    let blocks = rows.div_ceil(BLOCK_EXAMPLES);
    let width = threads.count();
    let mut works: Vec<W> = (0..width).map(|_| W::default()).collect();
    let mut results: Vec<Option<R>> = (0..width).map(|_| None).collect();
    let mut b = 0;
    while b < blocks {
        let group = width.min(blocks - b);
        let items = (b..b + group).zip(works.iter_mut()).zip(results.iter_mut());
        threads.each(items, |((block, work), result)| {
            *result = Some(f(work, block))
        });
        results
            .iter_mut()
            .take(group)
            .flat_map(Option::take)
            .for_each(&mut done);
        b += group;
    }
}
