//! The fused engine's convolutions against burn's autodiff (whose convolutions tests/conv.rs
//! checks against direct sums and finite differences): the same conv model, weights,
//! minibatch and noise give the same bound and gradient, for colour and grey images, strides
//! 1 and 2, both likelihoods and IWAE; and the same bits on one thread and two.

use crate::common::flex;
use aevb::data::batch::Batch;
use aevb::data::{ImageShape, Matrix};
use aevb::engine::{self, Engine};
use aevb::model::Input;
use aevb::spec::{
    Activation, BackendKind, ConvLayer, LikelihoodKind, ObjectiveKind, OptimizerKind, RunConfig,
    VarianceKind,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn colour() -> ImageShape {
    ImageShape {
        channels: 3,
        height: 8,
        width: 8,
    }
}

/// Encoder: a standard 4×4 stride-2 layer then a 3×3 stride-1 one; decoder: the mirror.
fn conv_model(act: Activation) -> RunConfig {
    let same = |channels| ConvLayer {
        channels,
        kernel: 3,
        stride: 1,
        padding: 1,
    };
    let mut c = RunConfig::default();
    c.model.latent_dim = 3;
    c.model.encoder.conv = vec![ConvLayer::standard(4), same(5)];
    c.model.encoder.hidden = vec![16];
    c.model.decoder.hidden = vec![16];
    c.model.decoder.conv = vec![same(5), ConvLayer::standard(4)];
    c.model.encoder.activation = act;
    c.model.decoder.activation = act;
    c
}

fn batch(config: &RunConfig, shape: ImageShape, n: usize, seed: u64) -> Matrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..n * shape.len())
        .map(|_| match config.model.likelihood {
            LikelihoodKind::Bernoulli => rng.random::<f32>(),
            LikelihoodKind::Gaussian => rng.random::<f32>() * 2.0 - 1.0,
        })
        .collect();
    Matrix::new(n, shape.len(), values)
}

type Named = Vec<(String, Vec<f32>)>;

/// Every parameter by its layout name: the engine's model flattened as the fused engine
/// lays it out (which covers the convolutions too).
fn named(config: &RunConfig, engine: &dyn Engine) -> Named {
    let (layout, params) = aevb::engine::fused::flatten(config, &engine.model());
    layout
        .slots
        .iter()
        .map(|s| (s.name.clone(), params[s.range()].to_vec()))
        .collect()
}

/// One SGD step at lr = 1 on `backend`: the parameters before and after, and the sums.
fn one_step(
    config: &RunConfig,
    shape: ImageShape,
    backend: BackendKind,
    threads: usize,
    n: usize,
) -> (Named, Named, [f64; 3]) {
    let mut config = config.clone();
    config.runtime.backend = backend;
    config.train.optimizer = OptimizerKind::Sgd;
    config.train.weight_decay = 0.0;
    let mut init_rng = StdRng::seed_from_u64(11);
    let mut engine = engine::start(
        &config,
        Input::from(shape),
        &flex(),
        threads,
        &mut init_rng,
        None,
    )
    .unwrap();
    assert_eq!(engine.name(), aevb::backend::name(backend));
    let before = named(&config, &*engine);
    let x = batch(&config, shape, n, 5);
    let sums = engine
        .step_and_read(
            &Batch::whole(&x),
            &config.objective,
            &aevb::objective::Schedule::beta(config.objective.beta),
            1.0,
            &mut StdRng::seed_from_u64(3),
        )
        .as_array();
    (before, named(&config, &*engine), sums)
}

fn assert_same_gradient(config: &RunConfig, shape: ImageShape, what: &str) {
    let (b0, b1, burn_sums) = one_step(config, shape, BackendKind::Flex, 1, 5);
    let (f0, f1, fused_sums) = one_step(config, shape, BackendKind::Fused, 1, 5);
    assert_eq!(b0, f0, "{what}: both engines start from the same weights");
    let mut convs = 0;
    for ((name, before), ((_, after_b), (_, after_f))) in b0.iter().zip(b1.iter().zip(&f1)) {
        let grad_b: Vec<f32> = before.iter().zip(after_b).map(|(p, q)| p - q).collect();
        let grad_f: Vec<f32> = before.iter().zip(after_f).map(|(p, q)| p - q).collect();
        if name == "decoder.logvar" {
            continue;
        }
        assert!(
            grad_b.iter().any(|g| g.abs() > 1e-5),
            "{what}: {name} has no gradient to compare"
        );
        let scale = grad_b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = grad_f
            .iter()
            .zip(&grad_b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 2e-3 * scale + 1e-6,
            "{what}: gradient of {name} differs by {worst:e} at scale {scale:e}\nfused {grad_f:?}\nburn  {grad_b:?}"
        );
        convs += usize::from(name.contains(".conv."));
    }
    assert_eq!(
        convs, 8,
        "{what}: every convolution's weight and bias compared"
    );
    for (f, b) in fused_sums.iter().zip(&burn_sums) {
        assert!(
            (f - b).abs() < 1e-4 * b.abs().max(1.0),
            "{what}: sums {fused_sums:?} vs {burn_sums:?}"
        );
    }
}

#[test]
fn a_bernoulli_conv_vae_on_colour_images_has_autodiffs_gradient() {
    assert_same_gradient(&conv_model(Activation::Relu), colour(), "relu, colour");
}

#[test]
fn gaussian_iwae_conv_vae_on_grey_images_has_autodiffs_gradient() {
    let mut c = conv_model(Activation::Tanh);
    c.model.likelihood = LikelihoodKind::Gaussian;
    c.model.variance = VarianceKind::Learned;
    c.objective.kind = ObjectiveKind::Iwae;
    c.objective.iwae_k = 3;
    assert_same_gradient(&c, ImageShape::grey(8, 8), "gaussian iwae, grey");
}

#[test]
fn conv_steps_give_the_same_bits_on_one_thread_and_two() {
    // A minibatch of three 64-example blocks, and one block big enough to split products.
    let c = conv_model(Activation::Relu);
    for n in [150, 64] {
        let one = one_step(&c, colour(), BackendKind::Fused, 1, n);
        let two = one_step(&c, colour(), BackendKind::Fused, 2, n);
        assert_eq!(one.2, two.2, "the bounds, {n} examples");
        for ((name, a), (_, b)) in one.1.iter().zip(&two.1) {
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name} differs between 1 and 2 threads ({n} examples)"
            );
        }
    }
}
