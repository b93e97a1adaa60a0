//! The one font every figure draws text with, embedded so no system font is looked up.

use std::sync::Once;

use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Makes "sans-serif" mean the embedded DejaVu Sans for plotters (once per process).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| ())
            .expect("the embedded DejaVu Sans is a valid font");
    });
}
