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

use super::flat::sized;
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

/// Transposes every consecutive `rows` × `cols` block of `src` into `dst`. The one reorder
/// the stacks need: burn's weights [a, b, k·k] to patch order [a, k·k, b] and their gradients
/// back, and each example's CHW rows to HWC and back.
fn transpose_blocks(src: &[f32], dst: &mut [f32], rows: usize, cols: usize) {
    let len = rows * cols;
    for (s, d) in src.chunks_exact(len).zip(dst.chunks_exact_mut(len)) {
        for r in 0..rows {
            for c in 0..cols {
                d[c * rows + r] = s[r * cols + c];
            }
        }
    }
}

/// The b of a layer's weight tensor [a, b, k, k] ([C_out, C_in, ..] or, transposed, [C_in,
/// C_out, ..]): the channels a patch runs over.
fn patch_channels(slot: &ConvSlot) -> usize {
    let s = &slot.stage;
    if s.transposed {
        s.output.channels
    } else {
        s.input.channels
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
    let (rows, cols) = if to_last { (c, plane) } else { (plane, c) };
    let per = examples_per_piece(t, src.len() / len, len);
    let pieces = src.chunks(per * len).zip(dst.chunks_mut(per * len));
    t.each(pieces, |(s, d)| transpose_blocks(s, d, rows, cols));
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
        let weight = sized(&mut work.weights[l], slot.weight.len());
        let kk = s.kernel * s.kernel;
        transpose_blocks(&p[slot.weight.range()], weight, patch_channels(slot), kk);
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
        if activated(layers, l) {
            activate(
                t,
                a,
                &work.pre[l],
                sized(&mut work.post[l], n * s.output.len()),
            );
        }
    }
    // A decoder's last layer is not activated: its output is `pre` itself.
    let last = count - 1;
    let y = if activated(layers, last) {
        &work.post[last]
    } else {
        &work.pre[last]
    };
    let shape = layers[last].stage.output;
    to_channels_planar(t, y, sized(&mut work.output, n * shape.len()), shape);
}

/// Whether layer `l` of the stack is followed by the activation: every layer but a
/// decoder's last, whose output is the likelihood's parameters.
fn activated(layers: &[ConvSlot], l: usize) -> bool {
    l + 1 < layers.len() || !layers[l].stage.transposed
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
        if activated(layers, l) {
            activation_backward(t, a, &work.pre[l], &work.post[l], &mut work.grad);
        }
        kernels::column_sums(&work.grad, &mut g[slot.bias.range()], false);
        let grid = Grid::of(slot);
        let pixels = n * grid.small.plane();
        let weight = &work.weights[l];
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
        let kk = s.kernel * s.kernel;
        transpose_blocks(
            dweight,
            &mut g[slot.weight.range()],
            kk,
            patch_channels(slot),
        );
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
