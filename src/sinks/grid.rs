//! Grey images laid out in a grid (samples, reconstructions, traversals), for TensorBoard
//! and for the PNG files of the trained-model commands.

use std::path::Path;

/// Grey images laid out in a grid with a one-pixel border, upscaled so small images show.
pub struct Grid {
    rows: usize,
    cols: usize,
    h: usize,
    w: usize,
    pixels: Vec<u8>,
}

impl Grid {
    pub fn new(rows: usize, cols: usize, h: usize, w: usize) -> Self {
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

    pub fn put(&mut self, r: usize, c: usize, values: &[f32]) {
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

    /// The grid as an 8-bit grey PNG upscaled to at least 28-pixel cells: (width, height,
    /// the PNG's bytes).
    pub fn png(&self) -> anyhow::Result<(u32, u32, Vec<u8>)> {
        let (width, height, pixels) = self.upscaled();
        let mut png = Vec::new();
        image::png::PngEncoder::new(&mut png)
            .encode(&pixels, width, height, image::ColorType::L8)
            .map_err(|e| anyhow::anyhow!("cannot encode a {width}x{height} PNG: {e}"))?;
        Ok((width, height, png))
    }

    /// Writes the grid to `path` as a PNG, atomically.
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        super::results::write_atomic(path, &self.png()?.2)
    }
}
