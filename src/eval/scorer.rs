//! What evaluation asks of a model, given the noise: per-example ELBO terms and per-sample
//! importance log-weights for one block of examples. Two implementations: the fused
//! engine's forward pass over its flat parameters (any CPU run it trains), and burn's
//! modules (autodiff runs, CUDA). Blocks run in parallel, each on one thread with its own
//! work buffers, so the numbers do not depend on the thread count.

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::device::host;
use crate::engine::fused::forward::{self, Workspace};
use crate::engine::fused::layout::Layout;
use crate::engine::fused::products::Threads;
use crate::model::encoder::repeat_rows;
use crate::model::{Posterior, Vae};

/// One block's evaluation, given its rows `x` (n × D, row-major) and standard normal noise
/// `eps` (S·n × Z, sample s of example i in row s·n + i).
pub trait Scorer: Sync {
    /// Buffers one thread reuses from block to block.
    type Work: Default + Send;

    fn latent_dim(&self) -> usize;

    /// Decoder rows evaluated at once, given the spec's bound on them.
    fn chunk_rows(&self, asked: usize) -> usize {
        asked
    }

    /// Per example: (E_q[log p(x|z)], KL) over the S samples; the KL in closed form with
    /// `analytic_kl`, else the mean of log q(z|x) − log p(z).
    fn elbo_terms(
        &self,
        work: &mut Self::Work,
        x: &[f32],
        eps: &[f32],
        analytic_kl: bool,
        out: &mut Vec<(f64, f64)>,
    );

    /// log w = log p(x|z) + log p(z) − log q(z|x) of every sample row, in row order.
    fn log_weights(&self, work: &mut Self::Work, x: &[f32], eps: &[f32], out: &mut Vec<f64>);
}

/// The fused engine's model: its layout and flat parameters.
pub struct FusedScorer<'a> {
    pub layout: &'a Layout,
    pub params: &'a [f32],
    /// Each block's products run on one thread: blocks are the parallel unit.
    single: Threads,
}

impl<'a> FusedScorer<'a> {
    pub fn new(layout: &'a Layout, params: &'a [f32]) -> anyhow::Result<Self> {
        Ok(Self {
            layout,
            params,
            single: Threads::new(1)?,
        })
    }
}

/// Rows per chunk on the fused path: every thread holds a chunk's activations, and chunks
/// of this size keep them in cache-sized pieces.
const FUSED_CHUNK_ROWS: usize = 8192;

impl Scorer for FusedScorer<'_> {
    type Work = Workspace;

    fn latent_dim(&self) -> usize {
        self.layout.latent_dim
    }

    fn chunk_rows(&self, asked: usize) -> usize {
        let floats = self.layout.decoder_floats_per_row();
        crate::model::eval_chunk_rows(floats, asked.min(FUSED_CHUNK_ROWS))
    }

    fn elbo_terms(
        &self,
        w: &mut Workspace,
        x: &[f32],
        eps: &[f32],
        analytic_kl: bool,
        out: &mut Vec<(f64, f64)>,
    ) {
        let (l, p) = (self.layout, self.params);
        let n = x.len() / l.data_dim;
        forward::forward(l, &self.single, p, x, eps, !analytic_kl, false, w);
        out.clear();
        out.extend(forward::per_example_means(w, n, !analytic_kl));
        if analytic_kl {
            for (i, (_, kl)) in out.iter_mut().enumerate() {
                let (m, lv) = w.posterior(i, l.latent_dim);
                *kl = forward::analytic_kl(l, p, m, lv);
            }
        }
    }

    fn log_weights(&self, w: &mut Workspace, x: &[f32], eps: &[f32], out: &mut Vec<f64>) {
        forward::forward(
            self.layout,
            &self.single,
            self.params,
            x,
            eps,
            true,
            false,
            w,
        );
        out.clear();
        out.extend(
            w.log_px()
                .iter()
                .zip(w.log_ratio())
                .map(|(&lp, &lr)| lp as f64 - lr as f64),
        );
    }
}

/// A burn model on its device (the autodiff engine's runs, CUDA included).
pub struct BurnScorer<'a> {
    pub vae: &'a Vae,
    device: Device,
}

impl<'a> BurnScorer<'a> {
    pub fn new(vae: &'a Vae) -> Self {
        Self {
            device: vae.device(),
            vae,
        }
    }

    fn tensor(&self, values: &[f32], cols: usize) -> Tensor<2> {
        let rows = values.len() / cols;
        Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), &self.device)
    }

    /// The block's posterior, its samples z = μ + σ ε from the given noise (S·n rows) and
    /// log p(x|z) at each: what both bounds start from.
    fn draw(&self, x: &[f32], eps: &[f32]) -> BlockDraws {
        let zd = self.latent_dim();
        let d = self.vae.decoder.data_dim();
        let n = x.len() / d;
        let samples = eps.len() / (n * zd);
        let x = self.tensor(x, d);
        let eps = self.tensor(eps, zd);
        let q = self.vae.encoder.forward(x.clone());
        let z = q.reparameterize(eps.clone());
        let log_px_z = self
            .vae
            .decoder
            .log_prob(z.clone(), repeat_rows(x, samples));
        BlockDraws {
            q,
            eps,
            z,
            log_px_z,
            n,
            samples,
        }
    }
}

/// What [`BurnScorer::draw`] returns for one block.
struct BlockDraws {
    q: Posterior,
    eps: Tensor<2>,
    z: Tensor<2>,
    log_px_z: Tensor<1>,
    n: usize,
    samples: usize,
}

impl Scorer for BurnScorer<'_> {
    type Work = ();

    fn latent_dim(&self) -> usize {
        self.vae.encoder.mean.weight.val().dims()[1]
    }

    fn chunk_rows(&self, asked: usize) -> usize {
        crate::model::eval_chunk_rows(self.vae.decoder_floats_per_row(), asked)
    }

    fn elbo_terms(
        &self,
        _: &mut (),
        x: &[f32],
        eps: &[f32],
        analytic_kl: bool,
        out: &mut Vec<(f64, f64)>,
    ) {
        let BlockDraws {
            q,
            eps,
            z,
            log_px_z,
            n,
            samples,
        } = self.draw(x, eps);
        let log_px = host(log_px_z);
        let analytic = analytic_kl
            .then(|| self.vae.prior_kl(&q))
            .flatten()
            .map(host);
        let ratio = match analytic {
            Some(_) => Vec::new(),
            None => host(q.log_prob_at(eps) - self.vae.log_prior(z)),
        };
        let mean = |v: &[f32], i: usize| {
            (0..samples).map(|s| v[s * n + i] as f64).sum::<f64>() / samples as f64
        };
        out.clear();
        out.extend((0..n).map(|i| {
            let kl = match &analytic {
                Some(kl) => kl[i] as f64,
                None => mean(&ratio, i),
            };
            (mean(&log_px, i), kl)
        }));
    }

    fn log_weights(&self, _: &mut (), x: &[f32], eps: &[f32], out: &mut Vec<f64>) {
        let BlockDraws {
            q,
            eps,
            z,
            log_px_z,
            ..
        } = self.draw(x, eps);
        let log_w = log_px_z + self.vae.log_prior(z) - q.log_prob_at(eps);
        out.clear();
        out.extend(host(log_w).into_iter().map(f64::from));
    }
}
