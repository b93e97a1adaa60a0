//! TensorBoard event files: scalars, image grids and the HParams plugin's records.
//!
//! Steps are training examples seen, the x-axis of the AEVB paper's Figure 2.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use protobuf::well_known_types::{ListValue, Value as PbValue};
use protobuf::{Message, RepeatedField};
use rand::rngs::StdRng;
use serde_json::Value;
use tensorboard_proto::api::{DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status};
use tensorboard_proto::event::Event;
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::{
    Summary, Summary_Image, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData,
};

use super::grid::Grid;
use crate::data::Dataset;
use crate::data::device::host;
use crate::data::device::to_tensor;
use crate::model::Vae;
use crate::train::EpochMetrics;

/// Metrics the HParams dashboard shows for each run (scalar tags in each run folder): the
/// bounds and their terms, then the disentanglement scores `test/dis_*` (empty for runs
/// without factors; [`hparam_metrics`] adds them).
pub const HPARAM_BOUNDS: [&str; 6] = [
    "test/elbo",
    "test/log_px",
    "test/kl",
    "test/recon",
    "test/active_units",
    "train/elbo",
];

/// Every HParams metric tag: [`HPARAM_BOUNDS`] and `test/` + each of [`crate::metrics::NAMES`].
pub fn hparam_metrics() -> Vec<String> {
    HPARAM_BOUNDS
        .iter()
        .map(|t| t.to_string())
        .chain(crate::metrics::NAMES.iter().map(|n| format!("test/{n}")))
        .collect()
}

/// One TensorBoard event file (TFRecord framing), written by the calling thread so that an
/// I/O error (full disk, read-only folder) is an error we report, not a panic in a writer
/// thread (tensorboard-rs's `FileWriter` panics on any write error and the process aborts).
/// The first error is kept, with the file's path, and later writes are skipped.
struct EventWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    error: Option<String>,
}

impl EventWriter {
    fn create(dir: &Path) -> Self {
        let secs = now();
        let path = dir.join(format!(
            "events.out.tfevents.{:010}.aevb.{}",
            secs as u64,
            std::process::id()
        ));
        let mut writer = Self {
            path: path.clone(),
            out: None,
            error: None,
        };
        match std::fs::create_dir_all(dir).and_then(|_| File::create(&path)) {
            Ok(f) => writer.out = Some(BufWriter::new(f)),
            Err(e) => writer.fail(&e),
        }
        let mut first = Event::new();
        first.set_wall_time(secs);
        first.set_file_version("brain.Event:2".to_string());
        writer.event(first);
        writer
    }

    /// Continues the event file `dir/file` from byte `bytes`: what was written after that
    /// point (by a run killed after its last checkpoint) is cut off, so that no step is
    /// logged twice. None when the file is not there or is shorter than `bytes`.
    fn resume(dir: &Path, file: &str, bytes: u64) -> Option<Self> {
        use std::io::{Seek, SeekFrom};
        let path = dir.join(file);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).ok()?;
        if f.metadata().ok()?.len() < bytes {
            return None;
        }
        f.set_len(bytes).ok()?;
        f.seek(SeekFrom::End(0)).ok()?;
        Some(Self {
            path,
            out: Some(BufWriter::new(f)),
            error: None,
        })
    }

    /// The file's name and length once everything so far is on disk.
    fn position(&mut self) -> Option<(String, u64)> {
        self.flush();
        let out = self.out.as_ref()?;
        let bytes = out.get_ref().metadata().ok()?.len();
        let name = self.path.file_name()?.to_string_lossy().into_owned();
        Some((name, bytes))
    }

    fn fail(&mut self, e: &std::io::Error) {
        if self.error.is_none() {
            self.error = Some(format!("cannot write {}: {e}", self.path.display()));
        }
        self.out = None;
    }

    fn event(&mut self, event: Event) {
        let Some(out) = self.out.as_mut() else { return };
        let data = match event.write_to_bytes() {
            Ok(d) => d,
            Err(e) => return self.fail(&std::io::Error::other(e)),
        };
        let len = (data.len() as u64).to_le_bytes();
        let written = out
            .write_all(&len)
            .and_then(|_| out.write_all(&masked_crc32c(&len).to_le_bytes()))
            .and_then(|_| out.write_all(&data))
            .and_then(|_| out.write_all(&masked_crc32c(&data).to_le_bytes()));
        if let Err(e) = written {
            self.fail(&e);
        }
    }

    fn summary(&mut self, summary: Summary, step: u64) {
        let mut event = Event::new();
        event.set_wall_time(now());
        event.set_step(step as i64);
        event.set_summary(summary);
        self.event(event);
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush().and_then(|_| out.get_ref().sync_data())
        {
            self.fail(&e);
        }
    }
}

/// TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant.
fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

pub struct RunBoard {
    writer: EventWriter,
}

impl RunBoard {
    pub fn create(dir: &Path) -> Self {
        Self {
            writer: EventWriter::create(dir),
        }
    }

    /// Continues a run's log from a checkpoint's position (see [`EventWriter::resume`]).
    pub fn resume(dir: &Path, file: &str, bytes: u64) -> Option<Self> {
        EventWriter::resume(dir, file, bytes).map(|writer| Self { writer })
    }

    /// The event file's name and length, everything so far flushed to disk.
    pub fn position(&mut self) -> Option<(String, u64)> {
        self.writer.position()
    }

    /// The first write error ("cannot write path: reason"), if any: the logs are incomplete.
    pub fn error(&self) -> Option<&str> {
        self.writer.error.as_deref()
    }

    pub fn epoch(&mut self, m: &EpochMetrics) {
        let step = m.examples_seen as usize;
        let mut scalars = vec![
            ("train/elbo", m.train_elbo),
            ("train/recon", m.train_recon),
            ("train/kl", m.train_kl),
            ("train/objective", m.train_objective),
            // Under train/: TensorBoard sorts tag groups by name and opens the first, which
            // is then test/ (ELBO, log p(x)), not a flat chart of β or the epoch number.
            ("train/beta", m.beta),
            ("train/lr", m.lr),
            ("train/epoch", m.epoch as f64),
        ];
        // The family's own terms: β-TCVAE's total correlation, AnnealedVAE's capacity.
        scalars.extend(m.train_tc.map(|tc| ("train/tc", tc)));
        scalars.extend(m.capacity.map(|c| ("train/capacity", c)));
        scalars.extend(
            m.train_discriminator_loss
                .map(|d| ("train/discriminator_loss", d)),
        );
        if let (Some(e), Some(r), Some(k)) = (m.test_elbo, m.test_recon, m.test_kl) {
            scalars.extend([("test/elbo", e), ("test/recon", r), ("test/kl", k)]);
        }
        // Standard errors over the test examples, beside their values.
        for (tag, se) in [
            ("test/elbo_se", m.test_elbo_se),
            ("test/kl_se", m.test_kl_se),
        ] {
            if let Some(se) = se {
                scalars.push((tag, se));
            }
        }
        scalars.extend(m.valid_elbo.map(|e| ("validation/elbo", e)));
        scalars.extend(m.valid_elbo_se.map(|se| ("validation/elbo_se", se)));
        for (tag, v) in scalars {
            self.scalar(tag, v, step as u64);
        }
        self.writer.flush();
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.writer
            .summary(tensorboard_rs::summary::scalar(tag, value as f32), step);
    }

    /// Test inputs above their reconstructions, and decoded samples from the prior.
    pub fn images(&mut self, model: &Vae, data: &Dataset, step: u64, rng: &mut StdRng) {
        let Some(shape) = data.image_shape else {
            return;
        };
        let len = shape.len();
        let device = model.device();
        let n = data.test.rows.min(8);
        let inputs = data.test.head(n);
        let recon = host(model.reconstruct(to_tensor(&inputs, &device)));
        let mut grid = Grid::new(2, n, shape);
        for i in 0..n {
            grid.put(0, i, inputs.row(i));
            grid.put(1, i, &recon[i * len..(i + 1) * len]);
        }
        self.add_image("reconstructions", &grid, step);

        let samples = host(model.decoder.mean(model.sample_prior(16, rng, &device)));
        let mut grid = Grid::new(4, 4, shape);
        for i in 0..16 {
            grid.put(i / 4, i % 4, &samples[i * len..(i + 1) * len]);
        }
        self.add_image("samples", &grid, step);
        // The VampPrior's pseudo-inputs (the first 16), as the encoder reads them.
        if let crate::model::Prior::Vamp(p) = &model.prior {
            let u = p.inputs_host();
            let n = (u.len() / len).min(16);
            let mut grid = Grid::new(n.div_ceil(4), 4, shape);
            for i in 0..n {
                grid.put(i / 4, i % 4, &u[i * len..(i + 1) * len]);
            }
            self.add_image("pseudo_inputs", &grid, step);
        }
        self.writer.flush();
    }

    fn add_image(&mut self, tag: &str, grid: &Grid, step: u64) {
        // Encoding into memory fails only on absurd sizes: the image is skipped.
        let Ok((width, height, png)) = grid.png() else {
            return;
        };
        let mut img = Summary_Image::new();
        img.set_height(height as i32);
        img.set_width(width as i32);
        img.set_colorspace(if grid.is_colour() { 3 } else { 1 });
        img.set_encoded_image_string(png);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_image(img);
        self.write(value, step);
    }

    /// The HParams session record: this run's hyperparameter values.
    /// `text_keys`: the hparams written as text (see [`integer_keys`]).
    pub fn session_start(
        &mut self,
        hparams: &[(String, Value)],
        group: &str,
        text_keys: &[String],
    ) {
        let mut info = SessionStartInfo::new();
        let map: HashMap<String, PbValue> = hparams
            .iter()
            .map(|(k, v)| (k.clone(), pb_value(&as_text_if(v, text_keys.contains(k)))))
            .collect();
        info.set_hparams(map);
        info.set_group_name(group.to_string());
        info.set_start_time_secs(now());
        let mut data = HParamsPluginData::new();
        data.set_session_start_info(info);
        self.write(plugin_value("_hparams_/session_start_info", &data), 0);
    }

    /// The sweep's HParams experiment record (see `ExperimentRecord`).
    pub fn experiment(&mut self, record: &ExperimentRecord) {
        self.write(plugin_value("_hparams_/experiment", &record.0), 0);
    }

    pub fn session_end(&mut self, ok: bool) {
        let mut info = SessionEndInfo::new();
        info.set_status(if ok {
            Status::STATUS_SUCCESS
        } else {
            Status::STATUS_FAILURE
        });
        info.set_end_time_secs(now());
        let mut data = HParamsPluginData::new();
        data.set_session_end_info(info);
        self.write(plugin_value("_hparams_/session_end_info", &data), 0);
        self.writer.flush();
    }

    fn write(&mut self, value: Summary_Value, step: u64) {
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from_vec(vec![value]));
        self.writer.summary(summary, step);
    }

    pub fn flush(&mut self) {
        self.writer.flush();
    }
}

/// Swept keys whose values are all integers (seeds, sizes). TensorBoard shows every number
/// with four decimals ("0.0000" for seed 0), so these go into HParams as text ("0").
pub fn integer_keys(swept: &[(String, Vec<Value>)]) -> Vec<String> {
    swept
        .iter()
        .filter(|(_, values)| values.iter().all(|v| v.is_i64() || v.is_u64()))
        .map(|(k, _)| k.clone())
        .collect()
}

fn as_text_if(v: &Value, text: bool) -> Value {
    match v {
        Value::Number(n) if text => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// The most values an HParams domain lists. Every run's log carries the experiment record,
/// so a listed domain of every seed of a 10,000-run sweep would make the logs grow with the
/// square of the runs; above this a numeric key gets its interval and others no domain.
pub const MAX_DISCRETE: usize = 64;

/// [min, max] of values that are all numbers.
fn numeric_interval(values: &[Value]) -> Option<tensorboard_proto::api::Interval> {
    let numbers: Option<Vec<f64>> = values.iter().map(Value::as_f64).collect();
    let numbers = numbers?;
    let mut interval = tensorboard_proto::api::Interval::new();
    interval.set_min_value(numbers.iter().copied().fold(f64::INFINITY, f64::min));
    interval.set_max_value(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    Some(interval)
}

/// The HParams experiment record of a sweep: the swept keys with their values, and the
/// metrics the table shows. TensorBoard reads it from any run, so every run's log carries
/// it (`RunBoard::experiment`) rather than a file of its own at the top of `tb/`, which
/// TensorBoard would list as an empty run named ".".
pub struct ExperimentRecord(HParamsPluginData);

impl ExperimentRecord {
    pub fn new(name: &str, swept: &[(String, Vec<Value>)]) -> Self {
        let text_keys = integer_keys(swept);
        let mut experiment = Experiment::new();
        experiment.set_name(name.to_string());
        experiment.set_time_created_secs(now());
        let infos = swept
            .iter()
            .map(|(key, values)| {
                let mut info = HParamInfo::new();
                info.set_name(key.clone());
                let text = text_keys.contains(key);
                info.set_field_type(match values.first() {
                    Some(Value::Number(_)) if !text => DataType::DATA_TYPE_FLOAT64,
                    Some(Value::Bool(_)) => DataType::DATA_TYPE_BOOL,
                    _ => DataType::DATA_TYPE_STRING,
                });
                if values.len() <= MAX_DISCRETE {
                    let mut list = ListValue::new();
                    list.set_values(
                        values
                            .iter()
                            .map(|v| pb_value(&as_text_if(v, text)))
                            .collect(),
                    );
                    info.set_domain_discrete(list);
                } else if let Some(interval) = numeric_interval(values).filter(|_| !text) {
                    info.set_domain_interval(interval);
                }
                // Else no domain: TensorBoard gathers the values from the runs' own records.
                info
            })
            .collect();
        experiment.set_hparam_infos(RepeatedField::from_vec(infos));
        let metrics = hparam_metrics()
            .into_iter()
            .map(|tag| {
                let mut name = MetricName::new();
                name.set_tag(tag);
                let mut info = MetricInfo::new();
                info.set_name(name);
                info
            })
            .collect();
        experiment.set_metric_infos(RepeatedField::from_vec(metrics));
        let mut data = HParamsPluginData::new();
        data.set_experiment(experiment);
        Self(data)
    }
}

/// Removes the experiment records that earlier versions wrote at the top of `tb/`.
pub fn remove_top_level_events(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_file() && name.starts_with("events.out.tfevents.") {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn plugin_value(tag: &str, data: &HParamsPluginData) -> Summary_Value {
    let mut plugin = SummaryMetadata_PluginData::new();
    plugin.set_plugin_name("hparams".into());
    plugin.set_content(data.write_to_bytes().unwrap_or_default());
    let mut meta = SummaryMetadata::new();
    meta.set_plugin_data(plugin);
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(meta);
    value
}

fn pb_value(v: &Value) -> PbValue {
    let mut out = PbValue::new();
    match v {
        Value::Number(n) => out.set_number_value(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => out.set_bool_value(*b),
        Value::String(s) => out.set_string_value(s.clone()),
        other => out.set_string_value(crate::sweep::format_value(other)),
    }
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_experiment_record_lists_small_domains_and_bounds_large_ones() {
        let seeds: Vec<Value> = (0..10_000).map(Value::from).collect();
        let rates: Vec<Value> = (1..=100).map(|i| Value::from(i as f64 * 1e-4)).collect();
        let betas: Vec<Value> = [0.5, 1.0, 4.0].map(Value::from).to_vec();
        let swept = vec![
            ("objective.beta".to_string(), betas),
            ("train.seed".to_string(), seeds),
            ("train.lr".to_string(), rates),
        ];
        let record = ExperimentRecord::new("e", &swept);
        let infos = record.0.get_experiment().get_hparam_infos();
        assert_eq!(infos[0].get_domain_discrete().get_values().len(), 3);
        // 10,000 integer seeds: text, no domain (TensorBoard gathers them from the runs).
        assert!(!infos[1].has_domain_discrete() && !infos[1].has_domain_interval());
        assert_eq!(infos[1].get_field_type(), DataType::DATA_TYPE_STRING);
        let lr = infos[2].get_domain_interval();
        assert_eq!(
            (lr.get_min_value(), lr.get_max_value()),
            (1e-4, 100.0 * 1e-4)
        );
        // Every run's log carries it: its size must not grow with the runs.
        let bytes = record.0.write_to_bytes().unwrap().len();
        assert!(bytes < 2_000, "{bytes} bytes");
    }
}
