//! Convolutions on the fused engine: im2col and col2im around gemm, on the run's threads.
//!
//! Inside a stack, activations are held channels-last (NHWC: one row of C channels per pixel),
//! so that a convolution is one product of the gathered patches [pixels, C·k²] with the
//! weight matrix, its bias and activation are the dense layers' row kernels, and the weight
//! matrices are burn's tensors read in place ([C_out, C_in·k²] for a convolution,
//! [C_in, C_out·k²] for a transposed one). Rows cross into and out of a stack in the data's
//! channel-planar order (CHW), which is also how the dense layers beside it see them.
//!
//! A convolution gathers patches of its input (the larger grid) and multiplies; a transposed
//! convolution multiplies and scatters into its output (the larger grid). Their backward
//! passes swap the two: one [`Grid`] describes both.

use super::forward::sized;
use super::kernels;
use super::layout::{ConvSlot, Layout};
use super::products::{Threads, View};
use crate::data::ImageShape;
use crate::spec::Activation;

/// How a kernel maps a small grid onto a large one: small pixel (y, x) and kernel offset
/// (ky, kx) meet large pixel (y·s − p + ky, x·s − p + kx). `channels` are the large grid's;
/// a patch is `k² · channels` values in (ky, kx, channel) order, so that each kernel row of a
/// patch is one contiguous run of the channels-last grid.
#[derive(Clone, Copy, Debug)]
struct Grid {
    large: ImageShape,
    small: ImageShape,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Grid {
    fn of(slot: &ConvSlot) -> Self {
        let s = &slot.stage;
        let (large, small) = if s.transposed {
            (s.output, s.input)
        } else {
            (s.input, s.output)
        };
        Self {
            large,
            small,
            kernel: s.kernel,
            stride: s.stride,
            padding: s.padding,
        }
    }

    /// Values per patch.
    fn patch(&self) -> usize {
        self.large.channels * self.kernel * self.kernel
    }

    /// The kernel offsets [lo, hi) that land inside a large side of `side` pixels from small
    /// coordinate `small`, and the large coordinate offset `lo` lands on.
    fn inside(&self, small: usize, side: usize) -> (usize, usize, usize) {
        let origin = small * self.stride;
        let lo = self.padding.saturating_sub(origin).min(self.kernel);
        let hi = (side + self.padding)
            .saturating_sub(origin)
            .min(self.kernel);
        (lo, hi.max(lo), origin + lo - self.padding.min(origin + lo))
    }

    /// Patches of one example's large grid (NHWC) into `cols` [small pixels, patch].
    fn gather(&self, large: &[f32], cols: &mut [f32]) {
        let (c, k, w) = (self.large.channels, self.kernel, self.large.width);
        let patch = self.patch();
        for sy in 0..self.small.height {
            let (ky_lo, ky_hi, y0) = self.inside(sy, self.large.height);
            for sx in 0..self.small.width {
                let (kx_lo, kx_hi, x0) = self.inside(sx, w);
                let row = &mut cols[(sy * self.small.width + sx) * patch..][..patch];
                for ky in 0..k {
                    let line = &mut row[ky * k * c..][..k * c];
                    if ky < ky_lo || ky >= ky_hi {
                        line.fill(0.0);
                        continue;
                    }
                    let y = y0 + ky - ky_lo;
                    line[..kx_lo * c].fill(0.0);
                    line[kx_hi * c..].fill(0.0);
                    let from = &large[(y * w + x0) * c..][..(kx_hi - kx_lo) * c];
                    line[kx_lo * c..kx_hi * c].copy_from_slice(from);
                }
            }
        }
    }

    /// Adds one example's patches `cols` [small pixels, patch] into its large grid (NHWC),
    /// each large value's terms in one fixed order.
    fn scatter_add(&self, cols: &[f32], large: &mut [f32]) {
        let (c, k, w) = (self.large.channels, self.kernel, self.large.width);
        let patch = self.patch();
        for sy in 0..self.small.height {
            let (ky_lo, ky_hi, y0) = self.inside(sy, self.large.height);
            for sx in 0..self.small.width {
                let (kx_lo, kx_hi, x0) = self.inside(sx, w);
                let row = &cols[(sy * self.small.width + sx) * patch..][..patch];
                for ky in ky_lo..ky_hi {
                    let y = y0 + ky - ky_lo;
                    let from = &row[(ky * k + kx_lo) * c..(ky * k + kx_hi) * c];
                    let to = &mut large[(y * w + x0) * c..][..from.len()];
                    for (t, f) in to.iter_mut().zip(from) {
                        *t += f;
                    }
                }
            }
        }
    }

    /// Patches of `n` examples, on the run's threads (examples are independent).
    fn gather_all(&self, t: &Threads, large: &[f32], cols: &mut [f32], n: usize) {
        let (lg, pc) = (self.large.len(), self.small.plane() * self.patch());
        let per = examples_per_piece(t, n, pc);
        let pieces = large.chunks(per * lg).zip(cols.chunks_mut(per * pc));
        t.each(pieces, |(l, c)| {
            for (l, c) in l.chunks(lg).zip(c.chunks_mut(pc)) {
                self.gather(l, c);
            }
        });
    }

    /// Scatter-adds the patches of `n` examples, on the run's threads.
    fn scatter_all(&self, t: &Threads, cols: &[f32], large: &mut [f32], n: usize) {
        let (lg, pc) = (self.large.len(), self.small.plane() * self.patch());
        let per = examples_per_piece(t, n, pc);
        let pieces = cols.chunks(per * pc).zip(large.chunks_mut(per * lg));
        t.each(pieces, |(c, l)| {
            for (c, l) in c.chunks(pc).zip(l.chunks_mut(lg)) {
                self.scatter_add(c, l);
            }
        });
    }
}

/// burn's weight [a, b, k, k] ([C_out, C_in, ..] or, transposed, [C_in, C_out, ..]) as the
/// matrix [a, k·k·b] whose columns follow the patch order (ky, kx, b).
fn to_patch_order(w: &[f32], a: usize, b: usize, k: usize, out: &mut [f32]) {
    let kk = k * k;
    for i in 0..a {
        for j in 0..b {
            for o in 0..kk {
                out[(i * kk + o) * b + j] = w[(i * b + j) * kk + o];
            }
        }
    }
}

/// The inverse of [`to_patch_order`]: a gradient in patch order back into burn's layout.
fn from_patch_order(m: &[f32], a: usize, b: usize, k: usize, out: &mut [f32]) {
    let kk = k * k;
    for i in 0..a {
        for j in 0..b {
            for o in 0..kk {
                out[(i * b + j) * kk + o] = m[(i * kk + o) * b + j];
            }
        }
    }
}

/// The (a, b) of a layer's weight tensor [a, b, k, k].
fn weight_dims(slot: &ConvSlot) -> (usize, usize) {
    let s = &slot.stage;
    if s.transposed {
        (s.input.channels, s.output.channels)
    } else {
        (s.output.channels, s.input.channels)
    }
}

/// Examples per piece of per-example work of `len` values each.
fn examples_per_piece(t: &Threads, n: usize, len: usize) -> usize {
    (t.piece(n * len, len) / len.max(1)).max(1)
}

/// Rows of `shape`'s images between channel-planar (CHW) and channels-last (HWC) order.
fn to_channels_last(t: &Threads, chw: &[f32], hwc: &mut [f32], shape: ImageShape) {
    permute(t, chw, hwc, shape, true);
}

fn to_channels_planar(t: &Threads, hwc: &[f32], chw: &mut [f32], shape: ImageShape) {
    permute(t, hwc, chw, shape, false);
}

fn permute(t: &Threads, src: &[f32], dst: &mut [f32], shape: ImageShape, to_last: bool) {
    let (c, plane, len) = (shape.channels, shape.plane(), shape.len());
    if c == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let per = examples_per_piece(t, src.len() / len, len);
    let pieces = src.chunks(per * len).zip(dst.chunks_mut(per * len));
    t.each(pieces, |(s, d)| {
        for (s, d) in s.chunks(len).zip(d.chunks_mut(len)) {
            for ch in 0..c {
                for px in 0..plane {
                    if to_last {
                        d[px * c + ch] = s[ch * plane + px];
                    } else {
                        d[ch * plane + px] = s[px * c + ch];
                    }
                }
            }
        }
    });
}

/// The activation of every value, on the run's threads.
fn activate(t: &Threads, a: Activation, pre: &[f32], post: &mut [f32]) {
    let per = t.piece(pre.len(), 64);
    t.each(pre.chunks(per).zip(post.chunks_mut(per)), |(x, y)| {
        kernels::activate(a, x, y)
    });
}

fn activation_backward(t: &Threads, a: Activation, pre: &[f32], post: &[f32], grad: &mut [f32]) {
    let per = t.piece(pre.len(), 64);
    let pieces = pre
        .chunks(per)
        .zip(post.chunks(per))
        .zip(grad.chunks_mut(per));
    t.each(pieces, |((x, y), g)| {
        kernels::activation_backward(a, x, y, g)
    });
}

/// One stack's activations, kept for the backward pass.
#[derive(Default)]
pub struct StackWork {
    /// The stack's input, channels-last (a later layer's input is the one before's `post`).
    input: Vec<f32>,
    /// Each layer's output before and after its activation, channels-last.
    pre: Vec<Vec<f32>>,
    post: Vec<Vec<f32>>,
    /// A convolution's gathered patches (kept: its weight gradient reads them).
    cols: Vec<Vec<f32>>,
    /// Each layer's weights in patch order, and a weight gradient in that order.
    weights: Vec<Vec<f32>>,
    dweight: Vec<f32>,
    /// The stack's output, channel-planar.
    pub(super) output: Vec<f32>,
    scratch: Vec<f32>,
    grad: Vec<f32>,
}

/// Forward through the stack `layers` for `n` rows of `input` (channel-planar); leaves the
/// output (channel-planar) in `work.output`. The last layer is activated unless it is a
/// decoder's (its output is the likelihood's parameters).
pub fn forward(
    t: &Threads,
    p: &[f32],
    layers: &[ConvSlot],
    a: Activation,
    input: &[f32],
    n: usize,
    work: &mut StackWork,
) {
    let count = layers.len();
    for v in [
        &mut work.pre,
        &mut work.post,
        &mut work.cols,
        &mut work.weights,
    ] {
        v.resize_with(count, Vec::new);
    }
    let first = layers[0].stage.input;
    to_channels_last(t, input, sized(&mut work.input, n * first.len()), first);
    for (l, slot) in layers.iter().enumerate() {
        let x: &[f32] = if l == 0 {
            &work.input
        } else {
            &work.post[l - 1]
        };
        let s = slot.stage;
        let grid = Grid::of(slot);
        let pixels = n * grid.small.plane();
        let out = sized(&mut work.pre[l], n * s.output.len());
        let (wa, wb) = weight_dims(slot);
        let weight = sized(&mut work.weights[l], slot.weight.len());
        to_patch_order(&p[slot.weight.range()], wa, wb, s.kernel, weight);
        let weight: &[f32] = weight;
        let bias = &p[slot.bias.range()];
        let cols = sized(&mut work.cols[l], pixels * grid.patch());
        if s.transposed {
            // cols = X · W ([pixels, C_in] · [C_in, C_out·k²]), scattered onto the output.
            t.matmul(
                cols,
                View::new(x, pixels, s.input.channels),
                View::new(weight, s.input.channels, grid.patch()),
                false,
            );
            kernels::fill_rows(out, bias);
            grid.scatter_all(t, cols, out, n);
        } else {
            // out = patches · Wᵀ ([pixels, C_in·k²] · [C_in·k², C_out]) + b.
            grid.gather_all(t, x, cols, n);
            kernels::fill_rows(out, bias);
            t.matmul(
                out,
                View::new(cols, pixels, grid.patch()),
                View::new(weight, s.output.channels, grid.patch()).t(),
                true,
            );
        }
        let post = sized(&mut work.post[l], n * s.output.len());
        if l + 1 < count || !s.transposed {
            activate(t, a, &work.pre[l], post);
        } else {
            post.copy_from_slice(&work.pre[l]);
        }
    }
    let last = layers[count - 1].stage.output;
    to_channels_planar(
        t,
        &work.post[count - 1],
        sized(&mut work.output, n * last.len()),
        last,
    );
}

/// Back through the stack of the last [`forward`]: `grad` holds the gradient of its output
/// (channel-planar) and is left holding its input's (channel-planar) when `input_grad`.
/// Writes every layer's weight and bias gradients into `g`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    t: &Threads,
    g: &mut [f32],
    layers: &[ConvSlot],
    a: Activation,
    n: usize,
    grad: &mut Vec<f32>,
    input_grad: bool,
    work: &mut StackWork,
) {
    let count = layers.len();
    let last = layers[count - 1].stage.output;
    to_channels_last(t, grad, sized(&mut work.grad, grad.len()), last);
    for (l, slot) in layers.iter().enumerate().rev() {
        let s = slot.stage;
        if l + 1 < count || !s.transposed {
            activation_backward(t, a, &work.pre[l], &work.post[l], &mut work.grad);
        }
        kernels::column_sums(&work.grad, &mut g[slot.bias.range()], false);
        let grid = Grid::of(slot);
        let pixels = n * grid.small.plane();
        let weight = &work.weights[l];
        let (wa, wb) = weight_dims(slot);
        let dweight = sized(&mut work.dweight, slot.weight.len());
        let wants_input = l > 0 || input_grad;
        let dx = sized(&mut work.scratch, n * s.input.len());
        let cols = &mut work.cols[l];
        let x: &[f32] = if l == 0 {
            &work.input
        } else {
            &work.post[l - 1]
        };
        if s.transposed {
            // dcols = patches of dY; dW = Xᵀ · dcols; dX = dcols · Wᵀ.
            grid.gather_all(t, &work.grad, cols, n);
            t.matmul(
                dweight,
                View::new(x, pixels, s.input.channels).t(),
                View::new(cols, pixels, grid.patch()),
                false,
            );
            if wants_input {
                t.matmul(
                    dx,
                    View::new(cols, pixels, grid.patch()),
                    View::new(weight, s.input.channels, grid.patch()).t(),
                    false,
                );
            }
        } else {
            // dW = dYᵀ · patches; dpatches = dY · W, scattered back onto the input.
            t.matmul(
                dweight,
                View::new(&work.grad, pixels, s.output.channels).t(),
                View::new(cols, pixels, grid.patch()),
                false,
            );
            if wants_input {
                t.matmul(
                    cols,
                    View::new(&work.grad, pixels, s.output.channels),
                    View::new(weight, s.output.channels, grid.patch()),
                    false,
                );
                dx.fill(0.0);
                grid.scatter_all(t, cols, dx, n);
            }
        }
        from_patch_order(dweight, wa, wb, s.kernel, &mut g[slot.weight.range()]);
        if wants_input {
            std::mem::swap(&mut work.grad, &mut work.scratch);
        }
    }
    if input_grad {
        let first = layers[0].stage.input;
        to_channels_planar(t, &work.grad, sized(grad, n * first.len()), first);
    }
}

/// Whether `layout` has convolutions on either side.
pub fn any(layout: &Layout) -> bool {
    !layout.encoder_conv.is_empty() || !layout.decoder_conv.is_empty()
}
