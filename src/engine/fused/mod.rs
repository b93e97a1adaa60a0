//! The fused CPU engine: the VAE's forward and backward passes written out by hand over flat
//! f32 buffers, matrix products by gemm on the run's threads, every elementwise step one
//! vectorised pass, and the optimiser one loop over all parameters. On the 2-core machine it
//! trains the canonical VAE and Burda's IWAE faster than burn-flex and PyTorch (README,
//! "Performance"); models it does not cover train on burn (see [`super::support`], which `engine::start` asks).

pub mod conv;
mod flat;
pub mod forward;
pub mod kernels;
pub mod layout;
pub mod math;
pub mod network;
pub mod optim;
pub mod prior;
pub mod products;
pub mod vamp;

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::Engine;
use crate::data::Matrix;
use crate::data::batch::Batch;
use crate::data::device::host;
use crate::model::Vae;
use crate::model::conv::{Conv, ConvStack};
use crate::model::prior::Prior;
use crate::spec::{KlMode, ObjectiveConfig, ObjectiveKind, OptimizerKind, RunConfig};
use forward::Workspace;
use layout::{Dense, Layout};
use network::Objective;
use optim::Optimizer;
use products::Threads;

/// Parameters, gradients, optimiser state and the threads of one run.
pub struct FusedEngine {
    layout: Layout,
    params: Vec<f32>,
    grads: Vec<f32>,
    optimizer: Optimizer,
    threads: Threads,
    workspace: Workspace,
    eps: Vec<f32>,
    /// Where `model()` builds the burn model for evaluation (a plain CPU device).
    device: Device,
    /// The model's structure (heads, prior) to copy the trained values into.
    template: Vae,
    /// Per-block buffers of `blocked_step`, and the one-thread product runner they use.
    blocks: Vec<Block>,
    single: Threads,
    /// The VampPrior's encoder pass at its pseudo-inputs (unused for other priors).
    vamp: vamp::VampWork,
    /// The sums of the steps not yet taken (`Engine::take_sums`).
    sums: Vec<crate::engine::StepSums>,
}

/// Examples per block of a minibatch (see `FusedEngine::blocked_step`). Fixed, so that the
/// numbers do not depend on the thread count; 64 rows keep gemm's kernels efficient.
pub const BLOCK_EXAMPLES: usize = 64;

/// Examples per block of a model with convolutions: each example is already hundreds of
/// rows of the products (one per pixel), so a 64-example minibatch splits into two blocks
/// that the threads take whole instead of sharing every product (conv32, 2 threads: 0.34
/// against 0.41–0.43 s per 1,000 examples with one 64-example block; 16-example blocks cost
/// 12% on one thread).
pub const CONV_BLOCK_EXAMPLES: usize = 32;

/// The block size of `layout`'s model: fixed by the model, never by the thread count.
pub fn block_examples(layout: &Layout) -> usize {
    if conv::any(layout) {
        CONV_BLOCK_EXAMPLES
    } else {
        BLOCK_EXAMPLES
    }
}

/// One block's buffers, reused from step to step.
#[derive(Default)]
struct Block {
    workspace: Workspace,
    grads: Vec<f32>,
    eps: Vec<f32>,
    sums: [f64; 3],
}

/// What a checkpoint of this engine holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    pub params: Vec<f32>,
    pub optimizer: Optimizer,
}

/// File name of the engine's checkpoint inside a checkpoint folder.
pub const CHECKPOINT_FILE: &str = "fused.safetensors";

fn linear_values(l: &Linear) -> (Vec<f32>, Vec<f32>) {
    let w = l
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let b = l
        .bias
        .as_ref()
        .map(|b| b.val().into_data().try_to_vec::<f32>().unwrap_or_default())
        .unwrap_or_default();
    (w, b)
}

/// The burn prior's parameters in the order of `PriorPiece::slots`.
fn prior_values(prior: &Prior) -> Vec<Vec<f32>> {
    match prior {
        Prior::StandardNormal(_) => Vec::new(),
        Prior::Normal(p) => vec![host(p.mean.val()), host(p.logvar.val())],
        Prior::Mixture(p) => vec![
            host(p.means.val()),
            host(p.logvars.val()),
            host(p.logits.val()),
        ],
        // Its components (the first two slots) are computed, not copied (`vamp::refresh`).
        Prior::Vamp(p) => vec![Vec::new(), Vec::new(), host(p.pseudo_inputs.val())],
    }
}

/// The burn model's layers in layout order: (layout dense, burn linear) pairs.
fn pairs<'a>(layout: &'a Layout, vae: &'a Vae) -> Vec<(&'a Dense, &'a Linear)> {
    let mut out: Vec<(&Dense, &Linear)> = Vec::new();
    out.extend(layout.encoder.iter().zip(&vae.encoder.body.layers));
    out.push((&layout.mean, &vae.encoder.mean));
    out.push((&layout.logvar, &vae.encoder.logvar));
    out.extend(layout.decoder.iter().zip(&vae.decoder.body.layers));
    out.push((&layout.out, &vae.decoder.out));
    if let (Some(dense), Some(linear)) = (&layout.logvar_head, &vae.decoder.logvar_head) {
        out.push((dense, linear));
    }
    out
}

/// The burn model's convolutions in layout order.
fn conv_pairs<'a>(layout: &'a Layout, vae: &'a Vae) -> Vec<(&'a layout::ConvSlot, &'a Conv)> {
    let layers = |stack: &'a Option<ConvStack>| stack.iter().flat_map(|s| s.layers.iter());
    layout
        .encoder_conv
        .iter()
        .zip(layers(&vae.encoder.conv))
        .chain(layout.decoder_conv.iter().zip(layers(&vae.decoder.conv)))
        .collect()
}

/// The layout of `config`'s model and `vae`'s values in it: the engine's parameters.
pub fn flatten(config: &RunConfig, vae: &Vae) -> (Layout, Vec<f32>) {
    let layout = Layout::new(&config.model, vae.input());
    let mut params = vec![0.0; layout.len];
    for (slot, conv) in conv_pairs(&layout, vae) {
        let values =
            |t: burn::tensor::Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        params[slot.weight.range()].copy_from_slice(&values(conv.weight.val().flatten(0, 3)));
        params[slot.bias.range()].copy_from_slice(&values(conv.bias.val()));
    }
    for (dense, linear) in pairs(&layout, vae) {
        let (w, b) = linear_values(linear);
        params[dense.weight.range()].copy_from_slice(&w);
        params[dense.bias.range()].copy_from_slice(&b);
    }
    if let (Some(slot), Some(lv)) = (&layout.output_logvar, &vae.decoder.logvar) {
        let v = lv.val().into_data().try_to_vec::<f32>().unwrap_or_default();
        params[slot.range()].copy_from_slice(&v);
    }
    for (slot, values) in layout
        .prior
        .slots()
        .into_iter()
        .zip(prior_values(&vae.prior))
        .filter(|(_, values)| !values.is_empty())
    {
        params[slot.range()].copy_from_slice(&values);
    }
    let one = Threads::new(1).expect("one thread");
    vamp::refresh(&layout, &one, &mut params, &mut vamp::VampWork::default());
    (layout, params)
}

impl FusedEngine {
    /// The model as the engine holds it, and the run's threads: what evaluation reads
    /// (no copy into a burn model).
    pub fn parts(&self) -> (&Layout, &[f32], &Threads) {
        (&self.layout, &self.params, &self.threads)
    }

    /// Starts from `init` (the autodiff engine's initialisation, so both engines start from
    /// the same weights) or from a checkpoint.
    pub fn new(
        config: &RunConfig,
        init: Vae,
        device: &Device,
        threads: usize,
        resume: Option<Saved>,
    ) -> anyhow::Result<Self> {
        let (layout, mut params) = flatten(config, &init);
        let mut optimizer = Optimizer::new(&config.train, layout.len);
        if let Some(saved) = resume {
            if saved.params.len() != layout.len || saved.optimizer.kind != optimizer.kind {
                anyhow::bail!(
                    "the checkpoint's model ({} parameters, {:?}) does not fit this run ({} parameters, {:?})",
                    saved.params.len(),
                    saved.optimizer.kind,
                    layout.len,
                    optimizer.kind
                );
            }
            params = saved.params;
            optimizer = saved.optimizer;
        }
        Ok(Self {
            grads: vec![0.0; layout.len],
            layout,
            params,
            optimizer,
            threads: Threads::new(threads)?,
            workspace: Workspace::default(),
            eps: Vec::new(),
            device: device.clone(),
            template: init,
            blocks: Vec::new(),
            single: Threads::new(1)?,
            vamp: vamp::VampWork::default(),
            sums: Vec::new(),
        })
        .map(|mut engine| {
            // The components of the parameters it starts from (a checkpoint's included).
            let (l, p, t, w) = (
                &engine.layout,
                &mut engine.params,
                &engine.threads,
                &mut engine.vamp,
            );
            vamp::refresh(l, t, p, w);
            engine
        })
    }

    /// A minibatch of at least two blocks: each block of `BLOCK_EXAMPLES` examples goes
    /// forward and back on its own (its products on one thread), the blocks spread over the
    /// run's threads, and their gradients and sums are added in block order. The blocks are
    /// fixed by the minibatch, not by the thread count, so every thread count computes the
    /// same bits; and a step wakes the pool once instead of once per product.
    fn blocked_step(&mut self, x: &Matrix, objective: Objective, beta: f32) -> [f64; 3] {
        let (d, zd, n) = (self.layout.data_dim, self.layout.latent_dim, x.rows);
        let samples = objective.samples();
        let per_block = block_examples(&self.layout);
        let count = n.div_ceil(per_block);
        if self.blocks.len() != count {
            self.blocks.resize_with(count, Block::default);
        }
        let (layout, params, eps) = (&self.layout, &self.params, &self.eps);
        let one = &self.single;
        // Block 0 writes its gradient straight into the engine's; the others into their own.
        let work = |(b, block, grads): (usize, &mut Block, Option<&mut Vec<f32>>)| {
            let (lo, hi) = (b * per_block, ((b + 1) * per_block).min(n));
            let Block {
                workspace,
                grads: own,
                eps: block_eps,
                sums,
            } = block;
            // Sample s of example i is eps row s·n + i; the block's rows keep that order.
            block_eps.clear();
            for s in 0..samples {
                block_eps.extend_from_slice(&eps[(s * n + lo) * zd..(s * n + hi) * zd]);
            }
            let grads = grads.unwrap_or(own);
            grads.resize(layout.len, 0.0);
            *sums = network::step(
                layout,
                one,
                params,
                grads,
                &x.values[lo * d..hi * d],
                block_eps,
                objective,
                beta,
                n,
                workspace,
            );
        };
        let (first, rest) = self.blocks.split_first_mut().expect("two blocks or more");
        let items = std::iter::once((0, first, Some(&mut self.grads))).chain(
            rest.iter_mut()
                .enumerate()
                .map(|(b, block)| (b + 1, block, None)),
        );
        self.threads.each(items, work);
        // g = g_0 + g_1 + … in block order, every parameter on its own (any split of the
        // work gives the same bits).
        let piece = self.threads.piece(self.grads.len(), 64);
        let blocks = &self.blocks;
        let pieces = self.grads.chunks_mut(piece).enumerate();
        self.threads.each(pieces, |(c, g)| {
            let range = c * piece..c * piece + g.len();
            for block in &blocks[1..] {
                for (gi, bi) in g.iter_mut().zip(&block.grads[range.clone()]) {
                    *gi += bi;
                }
            }
        });
        let mut sums = [0.0; 3];
        for block in blocks {
            for (s, b) in sums.iter_mut().zip(block.sums) {
                *s += b;
            }
        }
        sums
    }

    fn saved(&self) -> Saved {
        Saved {
            params: self.params.clone(),
            optimizer: self.optimizer.clone(),
        }
    }
}

impl Engine for FusedEngine {
    fn name(&self) -> &'static str {
        "fused"
    }

    fn fused_parts(&self) -> Option<(&Layout, &[f32], &Threads)> {
        Some(self.parts())
    }

    fn sums_on_host(&self) -> bool {
        true
    }

    fn take_sums(&mut self) -> Vec<crate::engine::StepSums> {
        std::mem::take(&mut self.sums)
    }

    fn step(
        &mut self,
        batch: &Batch<'_>,
        objective: &ObjectiveConfig,
        schedule: &crate::objective::Schedule,
        lr: f64,
        rng: &mut StdRng,
    ) {
        let x = &batch.host(rng);
        let beta = schedule.beta;
        let objective = match objective.kind {
            // A mixture has no closed-form KL: estimated, as `objective::elbo` does too.
            ObjectiveKind::Elbo => Objective::Elbo {
                samples: objective.mc_samples,
                analytic_kl: objective.kl == KlMode::Analytic
                    && !matches!(
                        self.layout.prior,
                        prior::PriorPiece::Mixture { .. } | prior::PriorPiece::Vamp { .. }
                    ),
            },
            ObjectiveKind::DipVaeI
            | ObjectiveKind::DipVaeIi
            | ObjectiveKind::BetaTcvae
            | ObjectiveKind::Annealed
            | ObjectiveKind::FactorVae => {
                unreachable!(
                    "engine::start refuses {:?} on the fused engine (support::fused)",
                    objective.kind
                )
            }
            ObjectiveKind::Iwae => Objective::Iwae {
                k: objective.iwae_k,
            },
        };
        // The same draws, in the same order, as the autodiff engine (objective::draw).
        let len = objective.samples() * x.rows * self.layout.latent_dim;
        self.eps.clear();
        self.eps
            .extend((0..len).map(|_| -> f32 { StandardNormal.sample(rng) }));
        let sums = if x.rows >= 2 * block_examples(&self.layout) {
            self.blocked_step(x, objective, beta as f32)
        } else {
            network::step(
                &self.layout,
                &self.threads,
                &self.params,
                &mut self.grads,
                &x.values,
                &self.eps,
                objective,
                beta as f32,
                x.rows,
                &mut self.workspace,
            )
        };
        // The VampPrior: the components' gradient back through the encoder at the
        // pseudo-inputs, then the components of the updated weights.
        vamp::backward(
            &self.layout,
            &self.threads,
            &self.params,
            &mut self.grads,
            &mut self.vamp,
        );
        self.optimizer
            .step(lr, &mut self.params, &self.grads, &self.threads);
        vamp::refresh(
            &self.layout,
            &self.threads,
            &mut self.params,
            &mut self.vamp,
        );
        self.sums.push(crate::engine::StepSums {
            bound: sums[0],
            recon: sums[1],
            kl: sums[2],
            tc: None,
            discriminator: None,
        });
    }

    /// The trained values in a burn model on the plain CPU device.
    fn model(&self) -> Vae {
        let mut vae = self.template.clone();
        let p = &self.params;
        let device = &self.device;
        let linear = |d: &Dense| Linear {
            weight: Param::from_data(
                TensorData::new(p[d.weight.range()].to_vec(), [d.d_in, d.d_out]),
                device,
            ),
            bias: Some(Param::from_data(
                TensorData::new(p[d.bias.range()].to_vec(), [d.d_out]),
                device,
            )),
        };
        let l = &self.layout;
        vae.encoder.body.layers = l.encoder.iter().map(linear).collect();
        vae.encoder.mean = linear(&l.mean);
        vae.encoder.logvar = linear(&l.logvar);
        vae.decoder.body.layers = l.decoder.iter().map(linear).collect();
        vae.decoder.out = linear(&l.out);
        let conv = |slot: &layout::ConvSlot, layer: &mut Conv| {
            layer.weight = Param::from_data(
                TensorData::new(p[slot.weight.range()].to_vec(), slot.weight.shape.clone()),
                device,
            );
            layer.bias = Param::from_data(
                TensorData::new(p[slot.bias.range()].to_vec(), slot.bias.shape.clone()),
                device,
            );
        };
        let stacks = [
            (&l.encoder_conv, vae.encoder.conv.as_mut()),
            (&l.decoder_conv, vae.decoder.conv.as_mut()),
        ];
        for (slots, stack) in stacks {
            if let Some(stack) = stack {
                for (slot, layer) in slots.iter().zip(&mut stack.layers) {
                    conv(slot, layer);
                }
            }
        }
        vae.decoder.logvar_head = l.logvar_head.as_ref().map(linear);
        prior_into(l, p, device, &mut vae.prior);
        if let Some(slot) = &l.output_logvar {
            vae.decoder.logvar = Some(Param::from_data(
                TensorData::new(p[slot.range()].to_vec(), [slot.len()]),
                device,
            ));
        }
        vae.to_device(device)
    }

    fn checkpoint_files(&self) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![(CHECKPOINT_FILE, self.saved().to_bytes()?)])
    }
}

/// The prior's trained values (a mixture's and a learned normal's parameters, the
/// VampPrior's pseudo-inputs) into burn's prior.
fn prior_into(l: &Layout, p: &[f32], device: &Device, prior: &mut Prior) {
    // A slot's values as a parameter of any rank (closures cannot be generic).
    fn value<const D: usize>(p: &[f32], slot: &layout::Slot, device: &Device) -> Param<Tensor<D>> {
        Param::from_data(
            TensorData::new(p[slot.range()].to_vec(), slot.shape.clone()),
            device,
        )
    }
    let param =
        |slot: &layout::Slot, learned: bool| value::<1>(p, slot, device).set_require_grad(learned);
    match (&l.prior, prior) {
        (
            prior::PriorPiece::Normal {
                mean,
                logvar,
                learned,
            },
            Prior::Normal(burn),
        ) => {
            burn.mean = param(mean, *learned);
            burn.logvar = param(logvar, *learned);
        }
        (prior::PriorPiece::Vamp { pseudo, .. }, Prior::Vamp(burn)) => {
            burn.pseudo_inputs = value(p, pseudo, device);
        }
        (
            prior::PriorPiece::Mixture {
                means,
                logvars,
                logits,
                ..
            },
            Prior::Mixture(burn),
        ) => {
            burn.means = value(p, means, device);
            burn.logvars = value(p, logvars, device);
            burn.logits = param(logits, true);
        }
        _ => {}
    }
}

impl Saved {
    /// safetensors: the parameters and optimiser arrays, with the scalars as metadata.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        use safetensors::tensor::{Dtype, TensorView};
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let arrays = [
            ("params", bytes(&self.params)),
            ("first", bytes(&self.optimizer.first)),
            ("second", bytes(&self.optimizer.second)),
        ];
        let mut views = Vec::new();
        for (name, data) in &arrays {
            views.push((
                *name,
                TensorView::new(Dtype::F32, vec![data.len() / 4], data)?,
            ));
        }
        let o = &self.optimizer;
        let meta: HashMap<String, String> = [
            ("kind", format!("{:?}", o.kind)),
            ("time", o.time.to_string()),
            ("weight_decay", o.weight_decay.to_bits().to_string()),
            ("beta1", o.beta1.to_bits().to_string()),
            ("beta2", o.beta2.to_bits().to_string()),
            ("epsilon", o.epsilon.to_bits().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
        let tensors = safetensors::SafeTensors::deserialize(bytes)?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no metadata"))?;
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| anyhow::anyhow!("metadata has no {k}"))
        };
        let bits = |k: &str| -> anyhow::Result<f32> { Ok(f32::from_bits(get(k)?.parse()?)) };
        let array = |name: &str| -> anyhow::Result<Vec<f32>> {
            let t = tensors.tensor(name)?;
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let kind = match get("kind")?.as_str() {
            "Adam" => OptimizerKind::Adam,
            "Adagrad" => OptimizerKind::Adagrad,
            "Sgd" => OptimizerKind::Sgd,
            other => anyhow::bail!("unknown optimiser {other}"),
        };
        Ok(Self {
            params: array("params")?,
            optimizer: Optimizer {
                kind,
                weight_decay: bits("weight_decay")?,
                beta1: bits("beta1")?,
                beta2: bits("beta2")?,
                epsilon: bits("epsilon")?,
                time: get("time")?.parse()?,
                first: array("first")?,
                second: array("second")?,
            },
        })
    }
}
