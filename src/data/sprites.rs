//! `dataset = "sprites"`: dSprites (Matthey et al. 2017) generated procedurally, with its
//! generative factors: a white square, ellipse or heart on black, 6 scales in [0.5, 1], 40
//! orientations in [0, 2π), 32 x and 32 y positions in [0, 1], every combination once
//! (737,280 binary images) or a seeded subset of them; 64×64, or 32×32 with
//! `data.sprites.resolution = 32`. No download: image i is a pure function of its factors,
//! which travel with the data (`Dataset::test_factors`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;

use super::{DataError, Dataset, Factors, Matrix, split_rows};
use crate::spec::DataConfig;

/// Values per factor, in dSprites' order (its `color` factor has one value and is left out).
pub const SHAPES: usize = 3;
pub const SCALES: usize = 6;
pub const ORIENTATIONS: usize = 40;
pub const POSITIONS: usize = 32;
/// Every combination: 3 · 6 · 40 · 32 · 32.
pub const ALL: usize = SHAPES * SCALES * ORIENTATIONS * POSITIONS * POSITIONS;

pub const FACTOR_NAMES: [&str; 5] = ["shape", "scale", "orientation", "pos_x", "pos_y"];
pub const FACTOR_SIZES: [usize; 5] = [SHAPES, SCALES, ORIENTATIONS, POSITIONS, POSITIONS];

/// A sprite's factor classes (indices into each factor's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sprite {
    /// 0 square, 1 ellipse, 2 heart.
    pub shape: usize,
    pub scale: usize,
    pub orientation: usize,
    pub x: usize,
    pub y: usize,
}

impl Sprite {
    /// Combination `index` of [`ALL`], in dSprites' order (y fastest, then x, orientation,
    /// scale, shape).
    pub fn from_index(index: usize) -> Self {
        let mut i = index;
        let mut next = |n: usize| {
            let v = i % n;
            i /= n;
            v
        };
        let y = next(POSITIONS);
        let x = next(POSITIONS);
        let orientation = next(ORIENTATIONS);
        let scale = next(SCALES);
        let shape = next(SHAPES);
        Self {
            shape,
            scale,
            orientation,
            x,
            y,
        }
    }

    pub fn classes(&self) -> [usize; 5] {
        [self.shape, self.scale, self.orientation, self.x, self.y]
    }

    /// The factors' values as dSprites records them: shape 1–3, scale, radians, x and y.
    pub fn values(&self) -> [f32; 5] {
        [
            (self.shape + 1) as f32,
            0.5 + 0.5 * self.scale as f32 / (SCALES - 1) as f32,
            std::f32::consts::TAU * self.orientation as f32 / ORIENTATIONS as f32,
            self.x as f32 / (POSITIONS - 1) as f32,
            self.y as f32 / (POSITIONS - 1) as f32,
        ]
    }

    /// The binary image, `side`×`side`, row-major, 1 inside the shape.
    pub fn render(&self, side: usize, out: &mut [f32]) {
        let [_, scale, angle, px, py] = self.values();
        let s = side as f32;
        // Half-size of a scale-1 sprite, and the margin that keeps every rotation inside.
        let radius = RADIUS * s * scale;
        let margin = REACH * RADIUS * s;
        let (cx, cy) = (
            margin + px * (s - 2.0 * margin),
            margin + py * (s - 2.0 * margin),
        );
        let (sin, cos) = angle.sin_cos();
        out.fill(0.0);
        let reach = REACH * radius;
        let lo = |c: f32| ((c - reach).floor().max(0.0)) as usize;
        let hi = |c: f32| ((c + reach).ceil().min(s - 1.0)) as usize;
        for row in lo(cy)..=hi(cy) {
            for col in lo(cx)..=hi(cx) {
                // The pixel's centre in the sprite's own frame (rotated back, unit size).
                let (dx, dy) = (col as f32 + 0.5 - cx, row as f32 + 0.5 - cy);
                let u = (cos * dx + sin * dy) / radius;
                let v = (-sin * dx + cos * dy) / radius;
                if inside(self.shape, u, v) {
                    out[row * side + col] = 1.0;
                }
            }
        }
    }
}

/// Half-size of a scale-1 sprite as a fraction of the image side.
const RADIUS: f32 = 0.16;
/// How far (in half-sizes) any shape reaches from its centre at any rotation: the square's
/// corner, √2.
const REACH: f32 = 1.42;

/// Whether (u, v) (v pointing down) lies in the unit shape.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    match shape {
        0 => u.abs() <= 1.0 && v.abs() <= 1.0,
        1 => u * u + 4.0 * v * v <= 1.0,
        _ => {
            // (x² + y² − 1)³ ≤ x² y³, y up, shrunk by 0.85 to stay within the reach.
            let (x, y) = (u / 0.85, -v / 0.85 + 0.1);
            let a = x * x + y * y - 1.0;
            a * a * a <= x * x * y * y * y
        }
    }
}

/// Which combinations a spec asks for: all of them (`count = 0`) or `count` drawn without
/// replacement with `data.split_seed`, in index order.
pub fn indices(count: usize, seed: u64) -> Vec<usize> {
    subset(ALL, count, seed)
}

/// `count` of `total` rows drawn without replacement with `seed`, in order (all of them for
/// `count = 0` or `count ≥ total`): the sprites' combinations and dSprites' file rows alike.
pub fn subset(total: usize, count: usize, seed: u64) -> Vec<usize> {
    if count == 0 || count >= total {
        return (0..total).collect();
    }
    let mut picked =
        sample(&mut StdRng::seed_from_u64(seed ^ 0x5971_7E5D), total, count).into_vec();
    picked.sort_unstable();
    picked
}

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let side = config.sprites.resolution;
    if side != 32 && side != 64 {
        return Err(DataError::new(
            "data.sprites.resolution",
            format!("expected 32 or 64 pixels, found {side}"),
        ));
    }
    let chosen = indices(config.sprites.count, config.split_seed);
    let bytes = chosen.len() as f64 * (side * side) as f64 * 4.0;
    crate::resources::ensure_fits(bytes, "the sprites")
        .map_err(|m| DataError::new("data.sprites.count", m))?;
    let mut values = vec![0f32; chosen.len() * side * side];
    for (&index, image) in chosen.iter().zip(values.chunks_exact_mut(side * side)) {
        Sprite::from_index(index).render(side, image);
    }
    let all = Matrix::new(chosen.len(), side * side, values);
    let (train, test) = split_rows(all.rows, config.test_fraction, config.split_seed);
    let sprites: Vec<Sprite> = test
        .iter()
        .map(|&r| Sprite::from_index(chosen[r]))
        .collect();
    Ok(Dataset {
        train: all.gather(&train),
        test: all.gather(&test),
        image_shape: Some(super::ImageShape::grey(side, side)),
        validation: None,
        dynamic_binarization: false,
        exact_test_log_px: None,
        test_labels: Some(sprites.iter().map(|s| s.shape as u32).collect()),
        test_factors: Some(Factors {
            names: FACTOR_NAMES.iter().map(|n| n.to_string()).collect(),
            sizes: FACTOR_SIZES.to_vec(),
            classes: sprites
                .iter()
                .flat_map(|s| s.classes().map(|c| c as u32))
                .collect(),
            values: sprites.iter().flat_map(|s| s.values()).collect(),
        }),
        columns: None,
        notes: Vec::new(),
        train_on_device: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_set_is_every_combination_of_dsprites_factors_once() {
        assert_eq!(ALL, 737_280);
        let mut counts = [
            vec![0usize; 3],
            vec![0; 6],
            vec![0; 40],
            vec![0; 32],
            vec![0; 32],
        ];
        let mut seen = std::collections::HashSet::new();
        for i in indices(0, 0) {
            let s = Sprite::from_index(i);
            for (f, c) in s.classes().into_iter().enumerate() {
                counts[f][c] += 1;
            }
            assert!(seen.insert(s.classes()), "{s:?} twice");
        }
        for (f, size) in FACTOR_SIZES.iter().enumerate() {
            assert!(counts[f].iter().all(|&c| c == ALL / size), "factor {f}");
        }
    }

    #[test]
    fn factor_values_span_dsprites_ranges() {
        let first = Sprite::from_index(0).values();
        let last = Sprite::from_index(ALL - 1).values();
        assert_eq!(first, [1.0, 0.5, 0.0, 0.0, 0.0]);
        assert_eq!(last[0], 3.0);
        assert_eq!(last[1], 1.0);
        assert!((last[2] - std::f32::consts::TAU * 39.0 / 40.0).abs() < 1e-6);
        assert_eq!((last[3], last[4]), (1.0, 1.0));
    }

    /// Pixels on, for a sprite at a resolution.
    fn area(s: Sprite, side: usize) -> f32 {
        let mut img = vec![0.0; side * side];
        s.render(side, &mut img);
        img.iter().sum()
    }

    #[test]
    fn shapes_have_their_areas_and_stay_inside_the_image_at_every_rotation() {
        let side = 64;
        let radius = RADIUS * side as f32;
        let base = Sprite::from_index(0);
        let at = |shape, scale, orientation, x, y| Sprite {
            shape,
            scale,
            orientation,
            x,
            y,
        };
        // Square of side 2r, ellipse of semi-axes r and r/2: areas to within the rasterisation.
        let square = area(at(0, 5, 0, 16, 16), side);
        assert!(
            (square / (4.0 * radius * radius) - 1.0).abs() < 0.1,
            "{square}"
        );
        let ellipse = area(at(1, 5, 0, 16, 16), side);
        let exact = std::f32::consts::PI * radius * radius / 2.0;
        assert!((ellipse / exact - 1.0).abs() < 0.1, "{ellipse} vs {exact}");
        // Scale 0.5 has a quarter of the area.
        let small = area(at(0, 0, 0, 16, 16), side);
        assert!((small / square - 0.25).abs() < 0.05, "{small} / {square}");
        // In a corner, rotated: the whole sprite stays in the image (same area as centred).
        for shape in 0..3 {
            for orientation in [0, 5, 13, 27] {
                let centred = area(at(shape, 5, orientation, 16, 16), side);
                for (x, y) in [(0, 0), (31, 31), (0, 31)] {
                    let corner = area(at(shape, 5, orientation, x, y), side);
                    assert!(
                        (corner - centred).abs() <= 0.05 * centred,
                        "{shape} {orientation} {x},{y}"
                    );
                }
            }
        }
        // Rotation moves pixels of the ellipse, not its area.
        let turned = area(at(1, 5, 10, 16, 16), side);
        assert!((turned / ellipse - 1.0).abs() < 0.05);
        let _ = base;
    }

    #[test]
    fn position_moves_the_sprite_by_whole_steps() {
        let side = 64;
        let centroid = |s: Sprite| {
            let mut img = vec![0.0; side * side];
            s.render(side, &mut img);
            let (mut cx, mut n) = (0.0, 0.0);
            for (i, v) in img.iter().enumerate() {
                cx += v * (i % side) as f32;
                n += v;
            }
            cx / n
        };
        let left = Sprite::from_index(0);
        let right = Sprite { x: 31, ..left };
        let span = centroid(right) - centroid(left);
        let expected = side as f32 * (1.0 - 2.0 * REACH * RADIUS);
        assert!((span - expected).abs() < 1.0, "{span} vs {expected}");
    }
}
