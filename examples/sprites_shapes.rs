//! Draws the sprites generator's three shapes at eight orientations (scale 1, centred) into
//! `docs/sprites_shapes.png`, one labelled row per shape, and the same at 32×32 beside it:
//! `cargo run --release --example sprites_shapes [OUT_DIR]`.

use aevb::data::sprites::{ORIENTATIONS, POSITIONS, SCALES, Sprite};
use aevb::sinks::grid::Grid;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "docs".into());
    let names = ["square", "ellipse", "heart"];
    for side in [64, 32] {
        let steps = 8;
        let mut grid = Grid::new(3, steps, aevb::data::ImageShape::grey(side, side));
        let mut image = vec![0.0; side * side];
        for (shape, _) in names.iter().enumerate() {
            for c in 0..steps {
                let sprite = Sprite {
                    shape,
                    scale: SCALES - 1,
                    orientation: c * ORIENTATIONS / steps,
                    x: POSITIONS / 2,
                    y: POSITIONS / 2,
                };
                sprite.render(side, &mut image);
                grid.put(shape, c, &image);
            }
        }
        let labels: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let path = std::path::Path::new(&out).join(format!("sprites_shapes_{side}.png"));
        std::fs::write(&path, grid.labelled_png(&labels)?)?;
        eprintln!("wrote {} (orientations 0, 45°, …, 315°)", path.display());
    }
    Ok(())
}
