//! Convolutional encoders and decoders: the shapes a spec's `conv` lists produce (and the
//! refusals that name every layer's shape), parameter counts against PyTorch's, and burn's
//! convolutions, forward and gradients, against direct f64 sums and finite differences.

use crate::common::flex;
use aevb::data::ImageShape;
use aevb::model::conv::{Conv, Stage, plan};
use aevb::model::mlp::Init;
use aevb::model::{Input, Vae, parameter_count};
use aevb::spec::{Activation, ConvLayer, InitKind, MlpConfig, ModelConfig};
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The Burgess et al. (2018) net disentanglement studies share, as `pytorch_conv_vae.py`
/// builds it: 64×64 (four convolutions) or 32×32 (three).
fn burgess(side: usize) -> ModelConfig {
    let (enc, dec) = if side == 64 {
        (vec![32, 32, 64, 64], vec![64, 64, 32, 32])
    } else {
        (vec![32, 64, 64], vec![64, 64, 32])
    };
    ModelConfig {
        latent_dim: 10,
        encoder: MlpConfig {
            hidden: vec![256],
            activation: Activation::Relu,
            conv: enc.into_iter().map(ConvLayer::standard).collect(),
        },
        decoder: MlpConfig {
            hidden: vec![256],
            activation: Activation::Relu,
            conv: dec.into_iter().map(ConvLayer::standard).collect(),
        },
        ..ModelConfig::default()
    }
}

#[test]
fn the_burgess_net_has_pytorchs_parameter_count_and_burn_builds_exactly_that() {
    // pytorch_conv_vae.py: 764,245 parameters at 1×64×64, 731,413 at 1×32×32 (its printed
    // "params" for --size 64 and --size 32).
    for (side, expected) in [(64, 764_245.0), (32, 731_413.0)] {
        let config = burgess(side);
        let input = Input::from(ImageShape::grey(side, side));
        assert_eq!(parameter_count(&config, input), expected, "{side}×{side}");
        let vae = Vae::new(&config, input, &mut StdRng::seed_from_u64(0), &flex());
        assert_eq!(vae.num_params() as f64, expected, "{side}×{side}");
    }
    // Three colour channels change only the first and last layers.
    let colour = ImageShape {
        channels: 3,
        height: 64,
        width: 64,
    };
    let extra = 2.0 * 32.0 * 16.0 + 2.0;
    assert_eq!(
        parameter_count(&burgess(64), colour),
        764_245.0 + 16.0 * 32.0 * 2.0 + extra
    );
}

#[test]
fn the_decoder_starts_where_it_lands_on_the_image() {
    let p = plan(&burgess(64), Some(ImageShape::grey(64, 64))).expect("fits");
    let shapes: Vec<String> = p.encoder.iter().map(|s| s.output.to_string()).collect();
    assert_eq!(shapes, ["32×32×32", "32×16×16", "64×8×8", "64×4×4"]);
    assert_eq!(
        p.decoder_input(),
        Some(ImageShape {
            channels: 64,
            height: 4,
            width: 4
        })
    );
    let shapes: Vec<String> = p.decoder.iter().map(|s| s.output.to_string()).collect();
    assert_eq!(shapes, ["64×8×8", "32×16×16", "32×32×32", "1×64×64"]);
}

#[test]
fn shapes_that_do_not_fit_are_refused_with_every_layers_shape() {
    // A decoder whose last layer cannot write 32×32 from any size (29 + 2 pixels of padding
    // less a 5-pixel kernel is odd for stride 2): the refusal lists what it would produce.
    let mut config = burgess(32);
    config.decoder.conv[2].kernel = 5;
    let err = plan(&config, Some(ImageShape::grey(32, 32))).expect_err("cannot land");
    assert_eq!(err.key, "model.decoder.conv");
    assert!(err.message.contains("1×32×32"), "{}", err.message);
    assert!(err.message.contains(" → "), "{}", err.message);
    // An encoder that shrinks an 8×8 image below its kernel.
    let config = burgess(64);
    let err = plan(&config, Some(ImageShape::grey(8, 8))).expect_err("too small");
    assert_eq!(err.key, "model.encoder.conv");
    assert!(err.message.contains("conv[3]"), "{}", err.message);
    assert!(
        err.message
            .contains("1×8×8 → 32×4×4 → 32×2×2 → 64×1×1 → nothing"),
        "{}",
        err.message
    );
    // Convolutions on data that are not images.
    let err = plan(&burgess(32), None).expect_err("not images");
    assert_eq!(err.key, "model.encoder.conv");
    assert!(parameter_count(&burgess(32), 100).is_nan());
}

/// out[n, o, y, x] = b[o] + Σ w[o, i, ky, kx] · in[n, i, y·s − p + ky, x·s − p + kx].
fn conv_f64(x: &[f64], w: &[f64], b: &[f64], st: &Stage, n: usize) -> Vec<f64> {
    let (i_s, o_s, k) = (st.input, st.output, st.kernel);
    let mut out = vec![0.0; n * o_s.len()];
    for e in 0..n {
        for o in 0..o_s.channels {
            for y in 0..o_s.height {
                for xx in 0..o_s.width {
                    let mut acc = b[o];
                    for i in 0..i_s.channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (y * st.stride + ky) as isize - st.padding as isize;
                                let ix = (xx * st.stride + kx) as isize - st.padding as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= i_s.height as isize
                                    || ix >= i_s.width as isize
                                {
                                    continue;
                                }
                                let xi = e * i_s.len()
                                    + i * i_s.plane()
                                    + iy as usize * i_s.width
                                    + ix as usize;
                                acc += w[((o * i_s.channels + i) * k + ky) * k + kx] * x[xi];
                            }
                        }
                    }
                    out[e * o_s.len() + o * o_s.plane() + y * o_s.width + xx] = acc;
                }
            }
        }
    }
    out
}

/// The transposed convolution scatters: in[n, i, y, x] adds w[i, o, ky, kx] · in to
/// out[n, o, y·s − p + ky, x·s − p + kx].
fn deconv_f64(x: &[f64], w: &[f64], b: &[f64], st: &Stage, n: usize) -> Vec<f64> {
    let (i_s, o_s, k) = (st.input, st.output, st.kernel);
    let mut out = vec![0.0; n * o_s.len()];
    for e in 0..n {
        for o in 0..o_s.channels {
            for p in 0..o_s.plane() {
                out[e * o_s.len() + o * o_s.plane() + p] = b[o];
            }
        }
        for i in 0..i_s.channels {
            for y in 0..i_s.height {
                for xx in 0..i_s.width {
                    let v = x[e * i_s.len() + i * i_s.plane() + y * i_s.width + xx];
                    for o in 0..o_s.channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let oy = (y * st.stride + ky) as isize - st.padding as isize;
                                let ox = (xx * st.stride + kx) as isize - st.padding as isize;
                                if oy < 0
                                    || ox < 0
                                    || oy >= o_s.height as isize
                                    || ox >= o_s.width as isize
                                {
                                    continue;
                                }
                                out[e * o_s.len()
                                    + o * o_s.plane()
                                    + oy as usize * o_s.width
                                    + ox as usize] +=
                                    w[((i * o_s.channels + o) * k + ky) * k + kx] * v;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn reference(x: &[f64], w: &[f64], b: &[f64], st: &Stage, n: usize) -> Vec<f64> {
    if st.transposed {
        deconv_f64(x, w, b, st, n)
    } else {
        conv_f64(x, w, b, st, n)
    }
}

/// Stages that cover stride 2 with padding (the standard layer, both kinds), stride 1 with
/// an odd kernel, and a non-square image.
fn stages() -> Vec<Stage> {
    let s = |c: usize, h: usize, w: usize| ImageShape {
        channels: c,
        height: h,
        width: w,
    };
    vec![
        Stage {
            input: s(2, 8, 6),
            output: s(3, 4, 3),
            kernel: 4,
            stride: 2,
            padding: 1,
            transposed: false,
        },
        Stage {
            input: s(3, 5, 5),
            output: s(2, 5, 5),
            kernel: 3,
            stride: 1,
            padding: 1,
            transposed: false,
        },
        Stage {
            input: s(3, 4, 3),
            output: s(2, 8, 6),
            kernel: 4,
            stride: 2,
            padding: 1,
            transposed: true,
        },
        Stage {
            input: s(2, 3, 3),
            output: s(3, 7, 7),
            kernel: 3,
            stride: 2,
            padding: 0,
            transposed: true,
        },
    ]
}

fn values(t: Tensor<4>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(f64::from)
        .collect()
}

#[test]
fn burns_convolutions_match_direct_sums_and_their_gradients_match_finite_differences() {
    let device = flex().autodiff();
    let init = Init {
        kind: InitKind::Pytorch,
        std: 0.0,
    };
    let mut rng = StdRng::seed_from_u64(7);
    for st in stages() {
        let n = 2;
        let conv = Conv::new(&st, init, &mut rng, &device);
        let w = values(conv.weight.val());
        let b: Vec<f64> = conv
            .bias
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
            .into_iter()
            .map(f64::from)
            .collect();
        let x: Vec<f64> = (0..n * st.input.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let r: Vec<f64> = (0..n * st.output.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let dims = |s: ImageShape| [n, s.channels, s.height, s.width];
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let x_t =
            Tensor::<4>::from_data(TensorData::new(xf, dims(st.input)), &device).require_grad();
        let out = conv.forward(x_t.clone());
        assert_eq!(out.dims(), dims(st.output), "{st:?}");
        let expected = reference(&x, &w, &b, &st, n);
        for (a, e) in values(out.clone()).iter().zip(&expected) {
            assert!((a - e).abs() < 1e-5, "{st:?}: forward {a} vs {e}");
        }
        // loss = Σ r ⊙ out: its gradients are linear in r, so central differences in f64
        // are exact up to rounding.
        let rf: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        let r_t = Tensor::<4>::from_data(TensorData::new(rf, dims(st.output)), &device);
        let grads = (out * r_t).sum().backward();
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            reference(x, w, b, &st, n)
                .iter()
                .zip(&r)
                .map(|(o, r)| o * r)
                .sum()
        };
        let h = 1e-3;
        let fd = |which: usize, j: usize| {
            let (mut xs, mut ws, mut bs) = (
                [x.clone(), x.clone()],
                [w.clone(), w.clone()],
                [b.clone(), b.clone()],
            );
            match which {
                0 => (xs[0][j] += h, xs[1][j] -= h),
                1 => (ws[0][j] += h, ws[1][j] -= h),
                _ => (bs[0][j] += h, bs[1][j] -= h),
            };
            (loss(&xs[0], &ws[0], &bs[0]) - loss(&xs[1], &ws[1], &bs[1])) / (2.0 * h)
        };
        let gx = values(x_t.grad(&grads).expect("input gradient"));
        let gw = values(conv.weight.val().grad(&grads).expect("weight gradient"));
        let gb: Vec<f64> = conv
            .bias
            .val()
            .grad(&grads)
            .expect("bias gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
            .into_iter()
            .map(f64::from)
            .collect();
        for (which, got) in [(0, &gx), (1, &gw), (2, &gb)] {
            for (j, g) in got.iter().enumerate() {
                let e = fd(which, j);
                assert!(
                    (g - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{st:?}: gradient {which}[{j}] {g} vs finite difference {e}"
                );
            }
        }
    }
}
