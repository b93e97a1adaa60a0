//! The saved progress of a run's final evaluation: the ELBO terms once computed, the log p(x)
//! estimate's finished examples and the blocks it has begun (exactly where each stands),
//! and the metrics once computed. One safetensors file beside the trained model's
//! checkpoint, replaced atomically; its metadata says which estimate it belongs to.

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::tensor::{Dtype, TensorView};

use super::ledger::Ledger;
use crate::eval::{ImportanceExamples, InFlight, LogPxProgress, LogWeights};
use crate::sinks::results::write_atomic;
use crate::spec::RunConfig;

/// File of the evaluation's progress, inside the trained model's checkpoint folder.
pub const PROGRESS_FILE: &str = "evaluation.safetensors";

/// The ELBO terms: train ELBO, recon, KL; test ELBO, recon, KL, ELBO SE, KL SE (NaN: none).
pub(super) type ElboParts = [f64; 8];

/// Active units, then the disentanglement scores in [`crate::metrics::NAMES`]' order (NaN:
/// none).
pub(super) type MetricParts = [f64; 1 + crate::metrics::NAMES.len()];

/// How far a final evaluation has got.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct EvalProgress {
    pub elbo: Option<ElboParts>,
    pub log_px: LogPxProgress,
    pub metrics: Option<MetricParts>,
}

/// Where a run's evaluation saves its progress, and what it must match to be continued: the
/// run, the trained model (its examples seen), K, the examples, the seed and the engine.
/// Each save also brings the run's ledger of attempts up to date.
pub(super) struct ProgressFile {
    pub path: Option<PathBuf>,
    pub key: HashMap<String, String>,
    pub ledger: Ledger,
}

impl ProgressFile {
    pub(super) fn new(
        checkpoint: Option<PathBuf>,
        run_id: &str,
        examples_seen: u64,
        config: &RunConfig,
        examples: usize,
        ledger: Ledger,
    ) -> Self {
        let key = [
            ("run_id", run_id.to_string()),
            ("examples_seen", examples_seen.to_string()),
            ("k", config.eval.importance_samples.to_string()),
            ("examples", examples.to_string()),
            ("seed", config.train.seed.to_string()),
            ("max_rows", config.eval.max_rows_per_chunk.to_string()),
            ("engine", crate::engine::identity(config)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            path: checkpoint.map(|dir| dir.join(PROGRESS_FILE)),
            key,
            ledger,
        }
    }

    /// The saved progress, if there is some for exactly this evaluation.
    pub(super) fn load(&self) -> Option<EvalProgress> {
        let bytes = std::fs::read(self.path.as_ref()?).ok()?;
        let progress = read(&bytes, &self.key).ok()?;
        let number = |k: &str| self.key.get(k).and_then(|v| v.parse::<usize>().ok());
        let fits = progress
            .log_px
            .fits(number("examples")?, number("k")?.max(1));
        fits.then_some(progress)
    }

    pub(super) fn save(&self, progress: &EvalProgress) -> anyhow::Result<()> {
        self.save_parts(
            progress.elbo.as_ref(),
            &progress.log_px,
            progress.metrics.as_ref(),
        )
    }

    /// [`Self::save`] of the parts, borrowed where they are (the estimate in progress is
    /// saved while the sampler holds it, nothing copied).
    pub(super) fn save_parts(
        &self,
        elbo: Option<&ElboParts>,
        log_px: &LogPxProgress,
        metrics: Option<&MetricParts>,
    ) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        write_atomic(path, &bytes(elbo, log_px, metrics, &self.key)?)?;
        self.ledger.touch();
        Ok(())
    }
}

fn f64_bytes<'a>(v: impl IntoIterator<Item = &'a f64>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes(
    elbo: Option<&ElboParts>,
    log_px: &LogPxProgress,
    metrics: Option<&MetricParts>,
    key: &HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let done = &log_px.examples;
    let flights = &log_px.in_flight;
    anyhow::ensure!(
        flights.iter().all(|f| f.word_pos <= u64::MAX as u128),
        "a noise stream past 2⁶⁴ words"
    );
    let mut arrays: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "log_px",
            Dtype::F64,
            vec![done.len()],
            f64_bytes(&done.log_px),
        ),
        ("ess", Dtype::F64, vec![done.len()], f64_bytes(&done.ess)),
        (
            "log_w_sd",
            Dtype::F64,
            vec![done.len()],
            f64_bytes(&done.log_w_sd),
        ),
    ];
    let position = flights
        .iter()
        .flat_map(|f| [f.block as u64, f.samples as u64, f.word_pos as u64].map(u64::to_le_bytes));
    arrays.push((
        "in_flight",
        Dtype::U64,
        vec![flights.len(), 3],
        position.flatten().collect(),
    ));
    let weights: Vec<f64> = flights
        .iter()
        .flat_map(|f| f.weights.iter().flat_map(|w| w.parts()))
        .collect();
    arrays.push((
        "in_flight_weights",
        Dtype::F64,
        vec![weights.len() / 6, 6],
        f64_bytes(&weights),
    ));
    if let Some(elbo) = elbo {
        arrays.push(("elbo_terms", Dtype::F64, vec![elbo.len()], f64_bytes(elbo)));
    }
    if let Some(metrics) = metrics {
        arrays.push((
            "metrics",
            Dtype::F64,
            vec![metrics.len()],
            f64_bytes(metrics),
        ));
    }
    let views = arrays
        .iter()
        .map(|(name, dtype, shape, data)| {
            Ok((*name, TensorView::new(*dtype, shape.clone(), data)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, Some(key.clone()))?)
}

fn read(bytes: &[u8], key: &HashMap<String, String>) -> anyhow::Result<EvalProgress> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    anyhow::ensure!(
        header.metadata().as_ref() == Some(key),
        "saved for another estimate"
    );
    let tensors = safetensors::SafeTensors::deserialize(bytes)?;
    // Files written before blocks were saved part-way have no `in_flight`: none begun.
    let words = |name: &str| -> anyhow::Result<Option<Vec<[u8; 8]>>> {
        let Ok(t) = tensors.tensor(name) else {
            return Ok(None);
        };
        let data = t.data();
        anyhow::ensure!(
            data.len().is_multiple_of(8),
            "{name}: not whole 8-byte words"
        );
        Ok(Some(
            data.chunks_exact(8)
                .map(|c| c.try_into().unwrap_or_default())
                .collect(),
        ))
    };
    let floats = |name: &str| -> anyhow::Result<Option<Vec<f64>>> {
        Ok(words(name)?.map(|w| w.into_iter().map(f64::from_le_bytes).collect()))
    };
    let required = |name: &str| floats(name)?.ok_or_else(|| anyhow::anyhow!("no {name}"));
    let examples = ImportanceExamples {
        log_px: required("log_px")?,
        ess: required("ess")?,
        log_w_sd: required("log_w_sd")?,
    };
    anyhow::ensure!(
        examples.ess.len() == examples.len() && examples.log_w_sd.len() == examples.len(),
        "arrays of different lengths"
    );
    let position: Vec<u64> = words("in_flight")?
        .unwrap_or_default()
        .into_iter()
        .map(u64::from_le_bytes)
        .collect();
    let mut weights = floats("in_flight_weights")?.unwrap_or_default().into_iter();
    let rows: usize = key
        .get("examples")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut in_flight = Vec::new();
    for p in position.chunks_exact(3) {
        let block = p[0] as usize;
        let n = crate::eval::blocks::block_range(block, rows).len();
        let parts: Vec<f64> = weights.by_ref().take(n * 6).collect();
        anyhow::ensure!(parts.len() == n * 6, "in-flight weights cut short");
        in_flight.push(InFlight {
            block,
            samples: p[1] as usize,
            word_pos: p[2] as u128,
            weights: parts
                .chunks_exact(6)
                .map(|c| LogWeights::from_parts(c.try_into().unwrap_or_default()))
                .collect(),
        });
    }
    anyhow::ensure!(weights.next().is_none(), "in-flight weights left over");
    Ok(EvalProgress {
        elbo: floats("elbo_terms")?
            .map(|v| v.try_into())
            .transpose()
            .map_err(|_| anyhow::anyhow!("elbo_terms of the wrong size"))?,
        log_px: LogPxProgress {
            examples,
            in_flight,
        },
        metrics: floats("metrics")?
            .map(|v| v.try_into())
            .transpose()
            .map_err(|_| anyhow::anyhow!("metrics of the wrong size"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_back_bit_for_bit_and_only_for_its_own_estimate() {
        let mut w = LogWeights::default();
        [-3.5, -2.25, f64::MIN_POSITIVE.ln()]
            .iter()
            .for_each(|&lw| w.push(lw));
        let progress = EvalProgress {
            elbo: Some([-1.0, 0.5, f64::NAN, 3.0, -0.0, 1e-300, f64::INFINITY, 7.0]),
            log_px: LogPxProgress {
                examples: ImportanceExamples {
                    log_px: vec![-90.125; 64],
                    ess: vec![3.0; 64],
                    log_w_sd: vec![0.1; 64],
                },
                in_flight: vec![
                    InFlight {
                        block: 1,
                        samples: 40,
                        word_pos: (1 << 40) + 3,
                        weights: vec![w; 64],
                    },
                    InFlight {
                        block: 2,
                        samples: 0,
                        word_pos: 0,
                        weights: vec![LogWeights::default(); 2],
                    },
                ],
            },
            metrics: None,
        };
        let key: HashMap<String, String> = [("examples".to_string(), "130".to_string())].into();
        let bytes = bytes(
            progress.elbo.as_ref(),
            &progress.log_px,
            progress.metrics.as_ref(),
            &key,
        )
        .unwrap();
        let back = read(&bytes, &key).unwrap();
        assert_eq!(back.log_px, progress.log_px);
        assert_eq!(back.metrics, None);
        let (a, b) = (back.elbo.unwrap(), progress.elbo.unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let other: HashMap<String, String> = [("examples".to_string(), "131".to_string())].into();
        assert!(read(&bytes, &other).is_err());
    }
}
