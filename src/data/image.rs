//! The shape of image data: channels × height × width, rows stored channel-planar (CHW, as
//! PyTorch's NCHW tensors and CIFAR-10's files lay them out).

/// Channels × height × width of every example of an image dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// One grey channel.
    pub const fn grey(height: usize, width: usize) -> Self {
        Self {
            channels: 1,
            height,
            width,
        }
    }

    /// Values per example: C·H·W.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels per channel plane: H·W.
    pub const fn plane(&self) -> usize {
        self.height * self.width
    }

    /// An image has at least one value; this is never true of a loaded dataset's shape.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}
