//! Fully connected layers, initialised from our own seeded generator so that a run's numbers
//! depend on its seed alone (burn's global RNG is shared by every run in the process).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData, activation};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::spec::{Activation, InitKind};

/// How new weights are drawn.
#[derive(Clone, Copy, Debug)]
pub struct Init {
    pub kind: InitKind,
    pub std: f64,
}

/// Seeded initial values of a layer's `weights` weights and `biases` biases: PyTorch's
/// U(±1/√fan_in) for both (the weights drawn first), or N(0, std²) weights and zero biases.
pub fn initial_values(
    weights: usize,
    biases: usize,
    fan_in: usize,
    init: Init,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<f32>) {
    match init.kind {
        InitKind::Pytorch => {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut draw = || rng.random_range(-bound..bound);
            let w = (0..weights).map(|_| draw()).collect();
            let b = (0..biases).map(|_| draw()).collect();
            (w, b)
        }
        InitKind::Normal => {
            // In f64: any finite init_std > 0 (validated) is a valid scale there; draws too
            // large for f32 become infinities and the run is recorded as diverged.
            let w = match Normal::new(0.0, init.std) {
                Ok(normal) => (0..weights).map(|_| normal.sample(rng) as f32).collect(),
                Err(_) => vec![f32::NAN; weights],
            };
            (w, vec![0.0; biases])
        }
    }
}

/// A `Linear` layer (weight [d_in, d_out]) with seeded initial values.
pub fn dense(d_in: usize, d_out: usize, init: Init, rng: &mut StdRng, device: &Device) -> Linear {
    let (weight, bias) = initial_values(d_in * d_out, d_out, d_in, init, rng);
    Linear {
        weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [d_out]), device)),
    }
}

pub fn activate<const D: usize>(x: Tensor<D>, a: Activation) -> Tensor<D> {
    match a {
        Activation::Tanh => activation::tanh(x),
        Activation::Relu => activation::relu(x),
        Activation::Softplus => activation::softplus(x, 1.0),
        Activation::Sigmoid => activation::sigmoid(x),
        Activation::Elu => activation::elu(x, 1.0),
        Activation::Gelu => activation::gelu(x),
        Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
        Activation::Identity => x,
    }
}

/// Hidden layers, each followed by the activation; no layers is the identity.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub fn new(
        d_in: usize,
        hidden: &[usize],
        activation: Activation,
        init: Init,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let mut layers = Vec::new();
        let mut width = d_in;
        for &h in hidden {
            layers.push(dense(width, h, init, rng, device));
            width = h;
        }
        Self { layers, activation }
    }

    /// Width of the output: the last hidden layer, or the input when there is none.
    pub fn out_dim(&self, d_in: usize) -> usize {
        self.layers
            .last()
            .map(|l| l.weight.val().dims()[1])
            .unwrap_or(d_in)
    }

    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for layer in &self.layers {
            x = activate(layer.forward(x), self.activation);
        }
        x
    }
}
