//! The model an evaluation runs on: the fused engine's flat parameters on its threads, or a
//! burn model on its device.

use crate::engine::Engine;
use crate::engine::fused::layout::Layout;
use crate::engine::fused::products::Threads;
use crate::model::Vae;
use crate::spec::RunConfig;

/// The model being evaluated, and where.
pub enum Model<'a> {
    /// The fused engine's flat parameters, evaluated on `threads`.
    Fused {
        layout: &'a Layout,
        params: &'a [f32],
        threads: &'a Threads,
    },
    /// A burn model on its device, one block at a time.
    Burn(&'a Vae),
}

/// A burn model flattened for the fused engine's forward pass, with the threads to run on.
pub struct Flat {
    layout: Layout,
    params: Vec<f32>,
    threads: Threads,
}

impl Flat {
    fn model(&self) -> Model<'_> {
        Model::Fused {
            layout: &self.layout,
            params: &self.params,
            threads: &self.threads,
        }
    }
}

/// `f` on `vae` as the run's engine evaluates it: flattened onto the fused engine's forward
/// pass on `threads` threads where that engine trains `config`, else burn's modules. A
/// saved model evaluated this way gives the recorded numbers bit for bit.
pub fn with_model<T>(
    vae: &Vae,
    config: &RunConfig,
    threads: usize,
    f: impl FnOnce(&Model<'_>) -> T,
) -> anyhow::Result<T> {
    if crate::engine::uses_fused(config) {
        let (layout, params) = crate::engine::fused::flatten(config, vae);
        let flat = Flat {
            layout,
            params,
            threads: Threads::new(threads)?,
        };
        Ok(f(&flat.model()))
    } else {
        Ok(f(&Model::Burn(vae)))
    }
}

/// `f` on a training engine's model as it stands: the fused engine's parameters in place
/// (nothing copied), else the autodiff engine's model on the plain device.
pub fn with_engine<T>(engine: &dyn Engine, f: impl FnOnce(&Model<'_>) -> T) -> T {
    match engine.fused_parts() {
        Some((layout, params, threads)) => f(&Model::Fused {
            layout,
            params,
            threads,
        }),
        None => f(&Model::Burn(&engine.model())),
    }
}

pub(super) fn one_thread() -> Threads {
    Threads::new(1).expect("one thread needs no pool")
}
