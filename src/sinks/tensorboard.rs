//! TensorBoard event files: scalars, image grids and the HParams plugin's records.
//!
//! Steps are training examples seen, the x-axis of the AEVB paper's Figure 2.

use std::collections::HashMap;
use std::path::Path;

use protobuf::well_known_types::{ListValue, Value as PbValue};
use protobuf::{Message, RepeatedField};
use rand::rngs::StdRng;
use serde_json::Value;
use tensorboard_proto::api::{DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status};
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::{
    Summary, Summary_Image, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData,
};
use tensorboard_rs::summary_writer::FileWriter;

use crate::data::Dataset;
use crate::model::prior::host;
use crate::model::{LatentPrior, Vae};
use crate::train::{EpochMetrics, to_tensor};

/// Metrics the HParams dashboard shows for each run (scalar tags in each run folder).
pub const HPARAM_METRICS: [&str; 4] = ["test/elbo", "test/log_px", "test/kl", "test/recon"];

pub struct RunBoard {
    writer: FileWriter,
}

impl RunBoard {
    pub fn create(dir: &Path) -> Self {
        Self {
            writer: FileWriter::new(dir),
        }
    }

    pub fn epoch(&mut self, m: &EpochMetrics) {
        let step = m.examples_seen as usize;
        let mut scalars = vec![
            ("train/elbo", m.train_elbo),
            ("train/recon", m.train_recon),
            ("train/kl", m.train_kl),
            ("train/objective", m.train_objective),
            ("beta", m.beta),
            ("lr", m.lr),
            ("epoch", m.epoch as f64),
        ];
        if let (Some(e), Some(r), Some(k)) = (m.test_elbo, m.test_recon, m.test_kl) {
            scalars.extend([("test/elbo", e), ("test/recon", r), ("test/kl", k)]);
        }
        for (tag, v) in scalars {
            self.scalar(tag, v, step as u64);
        }
        self.writer.flush();
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.writer.add_summary(
            tensorboard_rs::summary::scalar(tag, value as f32),
            step as usize,
        );
    }

    /// Test inputs above their reconstructions, and decoded samples from the prior.
    pub fn images(&mut self, model: &Vae, data: &Dataset, step: u64, rng: &mut StdRng) {
        let Some((h, w)) = data.image_shape else {
            return;
        };
        let device = model.decoder.out.weight.val().device();
        let n = data.test.rows.min(8);
        let inputs = data.test.head(n);
        let recon = host(model.reconstruct(to_tensor(&inputs, &device)));
        let mut grid = Grid::new(2, n, h, w);
        for i in 0..n {
            grid.put(0, i, inputs.row(i));
            grid.put(1, i, &recon[i * h * w..(i + 1) * h * w]);
        }
        self.add_image("reconstructions", &grid, step);

        let samples = host(model.decoder.mean(model.prior.sample(16, rng, &device)));
        let mut grid = Grid::new(4, 4, h, w);
        for i in 0..16 {
            grid.put(i / 4, i % 4, &samples[i * h * w..(i + 1) * h * w]);
        }
        self.add_image("samples", &grid, step);
        self.writer.flush();
    }

    fn add_image(&mut self, tag: &str, grid: &Grid, step: u64) {
        let (width, height, pixels) = grid.upscaled();
        let mut png = Vec::new();
        image::png::PngEncoder::new(&mut png)
            .encode(&pixels, width, height, image::ColorType::L8)
            .expect("encoding a PNG in memory cannot fail");
        let mut img = Summary_Image::new();
        img.set_height(height as i32);
        img.set_width(width as i32);
        img.set_colorspace(1);
        img.set_encoded_image_string(png);
        let mut value = Summary_Value::new();
        value.set_tag(tag.to_string());
        value.set_image(img);
        self.write(value, step);
    }

    /// The HParams session record: this run's hyperparameter values.
    pub fn session_start(&mut self, hparams: &[(String, Value)], group: &str) {
        let mut info = SessionStartInfo::new();
        let map: HashMap<String, PbValue> = hparams
            .iter()
            .map(|(k, v)| (k.clone(), pb_value(v)))
            .collect();
        info.set_hparams(map);
        info.set_group_name(group.to_string());
        info.set_start_time_secs(now());
        let mut data = HParamsPluginData::new();
        data.set_session_start_info(info);
        self.write(plugin_value("_hparams_/session_start_info", &data), 0);
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
        self.writer.add_summary(summary, step as usize);
    }

    pub fn flush(&mut self) {
        self.writer.flush();
    }
}

/// The experiment record at the root of the TensorBoard folder: which hyperparameters were
/// swept (with their values) and which metrics to tabulate.
pub fn write_experiment(dir: &Path, name: &str, swept: &[(String, Vec<Value>)]) {
    let mut experiment = Experiment::new();
    experiment.set_name(name.to_string());
    experiment.set_time_created_secs(now());
    let infos = swept
        .iter()
        .map(|(key, values)| {
            let mut info = HParamInfo::new();
            info.set_name(key.clone());
            info.set_field_type(match values.first() {
                Some(Value::Number(_)) => DataType::DATA_TYPE_FLOAT64,
                Some(Value::Bool(_)) => DataType::DATA_TYPE_BOOL,
                _ => DataType::DATA_TYPE_STRING,
            });
            let mut list = ListValue::new();
            list.set_values(values.iter().map(pb_value).collect());
            info.set_domain_discrete(list);
            info
        })
        .collect();
    experiment.set_hparam_infos(RepeatedField::from_vec(infos));
    let metrics = HPARAM_METRICS
        .iter()
        .map(|tag| {
            let mut name = MetricName::new();
            name.set_tag(tag.to_string());
            let mut info = MetricInfo::new();
            info.set_name(name);
            info
        })
        .collect();
    experiment.set_metric_infos(RepeatedField::from_vec(metrics));
    let mut data = HParamsPluginData::new();
    data.set_experiment(experiment);
    let mut board = RunBoard::create(dir);
    board.write(plugin_value("_hparams_/experiment", &data), 0);
    board.flush();
}

fn plugin_value(tag: &str, data: &HParamsPluginData) -> Summary_Value {
    let mut plugin = SummaryMetadata_PluginData::new();
    plugin.set_plugin_name("hparams".into());
    plugin.set_content(
        data.write_to_bytes()
            .expect("encoding in memory cannot fail"),
    );
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

/// Grey images laid out in a grid with a one-pixel border, upscaled so small images show.
struct Grid {
    rows: usize,
    cols: usize,
    h: usize,
    w: usize,
    pixels: Vec<u8>,
}

impl Grid {
    fn new(rows: usize, cols: usize, h: usize, w: usize) -> Self {
        let (width, height) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
        Self {
            rows,
            cols,
            h,
            w,
            pixels: vec![128; width * height],
        }
    }

    fn width(&self) -> usize {
        self.cols * (self.w + 1) + 1
    }

    fn put(&mut self, r: usize, c: usize, values: &[f32]) {
        let width = self.width();
        for y in 0..self.h {
            for x in 0..self.w {
                let v = values[y * self.w + x].clamp(0.0, 1.0);
                let (py, px) = (1 + r * (self.h + 1) + y, 1 + c * (self.w + 1) + x);
                self.pixels[py * width + px] = (v * 255.0).round() as u8;
            }
        }
    }

    /// (width, height, pixels), scaled by an integer factor to at least 28-pixel cells.
    fn upscaled(&self) -> (u32, u32, Vec<u8>) {
        let scale = 28usize.div_ceil(self.h.min(self.w)).max(1);
        let (width, height) = (self.width(), self.rows * (self.h + 1) + 1);
        let mut out = Vec::with_capacity(width * height * scale * scale);
        for y in 0..height * scale {
            for x in 0..width * scale {
                out.push(self.pixels[(y / scale) * width + x / scale]);
            }
        }
        ((width * scale) as u32, (height * scale) as u32, out)
    }
}
