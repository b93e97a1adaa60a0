//! The flat buffers the fused engine computes in: where a named parameter lives in one
//! ([`Slot`]), and work buffers sized on demand ([`sized`]).

/// One named parameter tensor: `shape` row-major at `offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl Slot {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// `v` with exactly `len` elements (contents unspecified: every user overwrites them).
pub(super) fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    &mut v[..]
}
