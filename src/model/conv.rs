//! Convolutional layers of the zoo: the shapes a spec's `conv` lists produce on an image
//! (checked before anything trains, with every layer's shape in the refusal), and the burn
//! modules that compute them. The encoder's convolutions read the image and feed its dense
//! layers; the decoder's transposed convolutions start from its last dense layer, reshaped
//! to the size they need to land exactly on the image.

use burn::module::{Module, Param};
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;

use super::mlp::{Init, activate, initial_values};
use crate::data::ImageShape;
use crate::spec::{Activation, ConvLayer, ModelConfig};

/// One square convolution between two shapes. `transposed`: the decoder's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    pub input: ImageShape,
    pub output: ImageShape,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub transposed: bool,
}

impl Stage {
    /// Weights and biases: C_in·C_out·k² + C_out.
    pub fn parameters(&self) -> usize {
        self.input.channels * self.output.channels * self.kernel * self.kernel
            + self.output.channels
    }
}

/// f32 values a forward pass holds per row for `stages`: each layer's output before and after
/// its activation, and its patch matrix (im2col or the transposed product).
pub fn floats_per_row(stages: &[Stage]) -> usize {
    stages
        .iter()
        .map(|s| {
            let (large, small) = if s.transposed {
                (s.output, s.input)
            } else {
                (s.input, s.output)
            };
            2 * s.output.len() + small.plane() * large.channels * s.kernel * s.kernel
        })
        .sum()
}

/// The convolutions of a model on its data; both empty for a fully connected model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub encoder: Vec<Stage>,
    pub decoder: Vec<Stage>,
}

impl Plan {
    /// What the encoder's dense layers read: the last convolution's output, flattened.
    pub fn encoder_output(&self) -> Option<ImageShape> {
        self.encoder.last().map(|s| s.output)
    }

    /// What the decoder's last dense layer is reshaped to.
    pub fn decoder_input(&self) -> Option<ImageShape> {
        self.decoder.first().map(|s| s.input)
    }
}

/// Why a model's convolutions do not fit its data: the spec key and every layer's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ShapeError {}

/// Pixels a side a convolution writes from `n` (`None`: the kernel does not fit).
fn conv_side(n: usize, l: &ConvLayer) -> Option<usize> {
    (n + 2 * l.padding)
        .checked_sub(l.kernel)
        .map(|span| span / l.stride + 1)
}

/// Pixels a side a transposed convolution writes from `n` (`None`: nothing).
fn deconv_side(n: usize, l: &ConvLayer) -> Option<usize> {
    ((n.max(1) - 1) * l.stride + l.kernel)
        .checked_sub(2 * l.padding)
        .filter(|&s| s > 0)
}

/// The side a transposed convolution must read to write exactly `n`, if one exists, else
/// the nearest smaller one.
fn deconv_source(n: usize, l: &ConvLayer) -> (usize, bool) {
    match (n + 2 * l.padding).checked_sub(l.kernel) {
        Some(span) => (span / l.stride + 1, span % l.stride == 0),
        None => (1, false),
    }
}

fn chain(shapes: &[ImageShape]) -> String {
    shapes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The shapes `model`'s convolutions produce on `image`, or why they cannot.
pub fn plan(model: &ModelConfig, image: Option<ImageShape>) -> Result<Plan, ShapeError> {
    let (enc, dec) = (&model.encoder.conv, &model.decoder.conv);
    if enc.is_empty() && dec.is_empty() {
        return Ok(Plan::default());
    }
    let Some(image) = image else {
        let key = if enc.is_empty() {
            "model.decoder.conv"
        } else {
            "model.encoder.conv"
        };
        return Err(ShapeError {
            key,
            message: "convolutions read images, and these data are not images (no channels × height × width); remove the conv layers or use an image dataset".into(),
        });
    };
    Ok(Plan {
        encoder: encoder_stages(enc, image)?,
        decoder: decoder_stages(dec, image)?,
    })
}

fn encoder_stages(layers: &[ConvLayer], image: ImageShape) -> Result<Vec<Stage>, ShapeError> {
    let mut shapes = vec![image];
    let mut stages = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let input = *shapes.last().expect("starts with the image");
        let sides = conv_side(input.height, l).zip(conv_side(input.width, l));
        let Some((height, width)) = sides else {
            return Err(ShapeError {
                key: "model.encoder.conv",
                message: format!(
                    "conv[{i}] (kernel {}, stride {}, padding {}) reads {input}, smaller than its kernel: {} → nothing",
                    l.kernel,
                    l.stride,
                    l.padding,
                    chain(&shapes)
                ),
            });
        };
        let output = ImageShape {
            channels: l.channels,
            height,
            width,
        };
        shapes.push(output);
        stages.push(Stage {
            input,
            output,
            kernel: l.kernel,
            stride: l.stride,
            padding: l.padding,
            transposed: false,
        });
    }
    Ok(stages)
}

/// Works back from the image to the size the first transposed convolution must read, then
/// forward; a stack that cannot land exactly on the image is refused with what it produces.
fn decoder_stages(layers: &[ConvLayer], image: ImageShape) -> Result<Vec<Stage>, ShapeError> {
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let (mut h, mut w, mut exact) = (image.height, image.width, true);
    for l in layers.iter().rev() {
        let (sh, eh) = deconv_source(h, l);
        let (sw, ew) = deconv_source(w, l);
        (h, w, exact) = (sh, sw, exact && eh && ew);
    }
    let mut shapes = vec![ImageShape {
        channels: layers[0].channels,
        height: h,
        width: w,
    }];
    let mut stages = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let input = *shapes.last().expect("starts with the reshape");
        let channels = layers
            .get(i + 1)
            .map_or(image.channels, |next| next.channels);
        let (height, width) = deconv_side(input.height, l)
            .zip(deconv_side(input.width, l))
            .unwrap_or((0, 0));
        let output = ImageShape {
            channels,
            height,
            width,
        };
        shapes.push(output);
        stages.push(Stage {
            input,
            output,
            kernel: l.kernel,
            stride: l.stride,
            padding: l.padding,
            transposed: true,
        });
    }
    if !exact || shapes.last() != Some(&image) {
        return Err(ShapeError {
            key: "model.decoder.conv",
            message: format!(
                "the transposed convolutions cannot land on the images' {image}: from the nearest start they produce {} (a layer writes (in − 1)·stride − 2·padding + kernel pixels a side); change a stride, kernel or padding",
                chain(&shapes)
            ),
        });
    }
    Ok(stages)
}

/// One convolution's weights ([C_out, C_in, k, k]; transposed: [C_in, C_out, k, k], as
/// PyTorch's) and biases.
#[derive(Module, Debug)]
pub struct Conv {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub stride: usize,
    #[module(skip)]
    pub padding: usize,
    #[module(skip)]
    pub transposed: bool,
}

impl Conv {
    /// Seeded initial weights, as PyTorch draws them (uniform ±1/√fan-in, with fan-in
    /// C_in·k² for a convolution and C_out·k² for a transposed one) or N(0, std²).
    pub fn new(stage: &Stage, init: Init, rng: &mut StdRng, device: &Device) -> Self {
        let (cin, cout, k) = (stage.input.channels, stage.output.channels, stage.kernel);
        let fan_in = if stage.transposed { cout } else { cin } * k * k;
        let (weight, bias) = initial_values(cin * cout * k * k, cout, fan_in, init, rng);
        let dims = if stage.transposed {
            [cin, cout, k, k]
        } else {
            [cout, cin, k, k]
        };
        Self {
            weight: Param::from_data(TensorData::new(weight, dims), device),
            bias: Param::from_data(TensorData::new(bias, [cout]), device),
            stride: stage.stride,
            padding: stage.padding,
            transposed: stage.transposed,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (s, p) = (self.stride, self.padding);
        if self.transposed {
            let options = ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1);
            conv_transpose2d(x, self.weight.val(), Some(self.bias.val()), options)
        } else {
            let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            conv2d(x, self.weight.val(), Some(self.bias.val()), options)
        }
    }
}

/// Convolutions in a row on flat rows of `input`'s shape, the activation after each (but
/// the last of a decoder, whose output is the likelihood's parameters).
#[derive(Module, Debug)]
pub struct ConvStack {
    pub layers: Vec<Conv>,
    #[module(skip)]
    pub activation: Activation,
    #[module(skip)]
    pub input: [usize; 3],
    #[module(skip)]
    pub output: [usize; 3],
    #[module(skip)]
    pub activate_last: bool,
    /// What a forward pass holds per row ([`floats_per_row`]).
    #[module(skip)]
    pub floats_per_row: usize,
}

impl ConvStack {
    /// The stack of `stages` (non-empty), activated after every layer when `activate_last`.
    pub fn new(
        stages: &[Stage],
        activation: Activation,
        activate_last: bool,
        init: Init,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let dims = |s: ImageShape| [s.channels, s.height, s.width];
        Self {
            layers: stages
                .iter()
                .map(|s| Conv::new(s, init, rng, device))
                .collect(),
            activation,
            input: dims(stages[0].input),
            output: dims(stages[stages.len() - 1].output),
            activate_last,
            floats_per_row: floats_per_row(stages),
        }
    }

    /// Values per output row.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// [N, C·H·W] → [N, C'·H'·W'].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = x.dims()[0];
        let [c, h, w] = self.input;
        let mut x = x.reshape([n, c, h, w]);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last || self.activate_last {
                x = activate(x, self.activation);
            }
        }
        x.reshape([n, self.output_len()])
    }
}
