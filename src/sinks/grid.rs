//! Images laid out in a grid (samples, reconstructions, traversals), for TensorBoard and for
//! the PNG files of the trained-model commands: grey for one channel, RGB for three.

use std::path::Path;

use crate::data::ImageShape;

/// Images laid out in a grid with a one-pixel border, upscaled so small images show. Pixels
/// are held as RGB; a grey grid is written as an 8-bit grey PNG.
pub struct Grid {
    rows: usize,
    cols: usize,
    h: usize,
    w: usize,
    colour: bool,
    /// RGB triples, row-major over the whole grid.
    pixels: Vec<u8>,
}

impl Grid {
    /// A grid of `rows` × `cols` cells of `shape`'s images: colour when they have three
    /// channels, else grey (the first channel).
    pub fn new(rows: usize, cols: usize, shape: ImageShape) -> Self {
        let (h, w) = (shape.height, shape.width);
        let (width, height) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
        Self {
            rows,
            cols,
            h,
            w,
            colour: shape.channels == 3,
            pixels: vec![128; width * height * 3],
        }
    }

    fn width(&self) -> usize {
        self.cols * (self.w + 1) + 1
    }

    /// Draws one image (channel-planar values in [0, 1]) into cell (`r`, `c`).
    pub fn put(&mut self, r: usize, c: usize, values: &[f32]) {
        let width = self.width();
        let plane = self.h * self.w;
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        for y in 0..self.h {
            for x in 0..self.w {
                let at = y * self.w + x;
                let (py, px) = (1 + r * (self.h + 1) + y, 1 + c * (self.w + 1) + x);
                let rgb = if self.colour {
                    [values[at], values[plane + at], values[2 * plane + at]].map(byte)
                } else {
                    [byte(values[at]); 3]
                };
                let o = (py * width + px) * 3;
                self.pixels[o..o + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// (width, height, RGB pixels), scaled by an integer factor to at least 28-pixel cells.
    fn upscaled(&self) -> (u32, u32, Vec<u8>) {
        let scale = 28usize.div_ceil(self.h.min(self.w)).max(1);
        let (width, height) = (self.width(), self.rows * (self.h + 1) + 1);
        let mut out = Vec::with_capacity(width * height * scale * scale * 3);
        for y in 0..height * scale {
            for x in 0..width * scale {
                let o = ((y / scale) * width + x / scale) * 3;
                out.extend_from_slice(&self.pixels[o..o + 3]);
            }
        }
        ((width * scale) as u32, (height * scale) as u32, out)
    }

    /// Whether the PNG is RGB (three-channel images) rather than grey.
    pub fn is_colour(&self) -> bool {
        self.colour
    }

    /// The grid as an 8-bit PNG (grey, or RGB for colour images) upscaled to at least
    /// 28-pixel cells: (width, height, the PNG's bytes).
    pub fn png(&self) -> anyhow::Result<(u32, u32, Vec<u8>)> {
        let (width, height, rgb) = self.upscaled();
        let (pixels, kind) = if self.colour {
            (rgb, image::ColorType::Rgb8)
        } else {
            (
                rgb.iter().step_by(3).copied().collect(),
                image::ColorType::L8,
            )
        };
        let mut png = Vec::new();
        image::png::PngEncoder::new(&mut png)
            .encode(&pixels, width, height, kind)
            .map_err(|e| anyhow::anyhow!("cannot encode a {width}x{height} PNG: {e}"))?;
        Ok((width, height, png))
    }

    /// The grid with a text label left of each row (a traversal's latent dimension and its
    /// KL, say), as an RGB PNG's bytes.
    pub fn labelled_png(&self, labels: &[String]) -> anyhow::Result<Vec<u8>> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        super::font::register();
        let (width, height, pixels) = self.upscaled();
        let row_height = height as f64 / self.rows.max(1) as f64;
        let font_px = (row_height * 0.32).clamp(10.0, 18.0);
        let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let margin = (longest as f64 * font_px * 0.6 + 12.0).ceil() as u32;
        let total = width + margin;
        let mut rgb = vec![255u8; (total * height * 3) as usize];
        for y in 0..height {
            for x in 0..width {
                let from = ((y * width + x) * 3) as usize;
                let at = ((y * total + margin + x) * 3) as usize;
                rgb[at..at + 3].copy_from_slice(&pixels[from..from + 3]);
            }
        }
        {
            let area = BitMapBackend::with_buffer(&mut rgb, (total, height)).into_drawing_area();
            let style = TextStyle::from(("sans-serif", font_px).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            for (r, label) in labels.iter().enumerate().take(self.rows) {
                let y = ((r as f64 + 0.5) * row_height) as i32;
                area.draw_text(label, &style, (margin as i32 - 6, y))
                    .map_err(|e| anyhow::anyhow!("cannot draw a row label: {e}"))?;
            }
            area.present()
                .map_err(|e| anyhow::anyhow!("cannot draw the row labels: {e}"))?;
        }
        let mut png = Vec::new();
        image::png::PngEncoder::new(&mut png)
            .encode(&rgb, total, height, image::ColorType::Rgb8)
            .map_err(|e| anyhow::anyhow!("cannot encode a {total}x{height} PNG: {e}"))?;
        Ok(png)
    }

    /// Writes the grid to `path` as a PNG, atomically.
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        super::results::write_atomic(path, &self.png()?.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoded PNG's pixel at the centre of cell (r, c) of a grid of `side`-pixel cells.
    fn pixel(png: &[u8], side: usize, r: usize, c: usize) -> image::Rgb<u8> {
        let img = image::load_from_memory(png).expect("a PNG").to_rgb8();
        let scale = 28usize.div_ceil(side);
        let at = |cell: usize| ((1 + cell * (side + 1)) * scale + side * scale / 2) as u32;
        *img.get_pixel(at(c), at(r))
    }

    #[test]
    fn three_channel_images_are_drawn_in_colour_and_one_channel_in_grey() {
        let colour = ImageShape {
            channels: 3,
            height: 2,
            width: 2,
        };
        let mut grid = Grid::new(1, 2, colour);
        // Channel-planar: red plane, green plane, blue plane.
        grid.put(
            0,
            0,
            &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2],
        );
        grid.put(0, 1, &[0.0; 12]);
        let (_, _, png) = grid.png().unwrap();
        assert!(grid.is_colour());
        assert_eq!(pixel(&png, 2, 0, 0), image::Rgb([255, 0, 51]));
        assert_eq!(pixel(&png, 2, 0, 1), image::Rgb([0, 0, 0]));
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!(decoded.color(), image::ColorType::Rgb8);

        let mut grey = Grid::new(1, 1, ImageShape::grey(2, 2));
        grey.put(0, 0, &[0.5; 4]);
        let (_, _, png) = grey.png().unwrap();
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!(decoded.color(), image::ColorType::L8);
        assert_eq!(pixel(&png, 2, 0, 0), image::Rgb([128, 128, 128]));
    }
}
