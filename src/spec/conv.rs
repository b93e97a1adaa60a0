//! `conv` lists in `[model.encoder]` and `[model.decoder]`: one convolution per entry, given
//! as its channel count (`32`: a 4×4 kernel, stride 2, padding 1, the layer every
//! disentanglement study uses) or in full (`{ channels = 32, kernel = 5, stride = 1,
//! padding = 2 }`; omitted keys take those defaults).

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// One square convolution. In the encoder `channels` is what the layer writes; in the
/// decoder (transposed convolutions) what it reads, so that a decoder's list is its
/// encoder's reversed and the last layer writes the image's channels.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvLayer {
    pub const DEFAULT_KERNEL: usize = 4;
    pub const DEFAULT_STRIDE: usize = 2;
    pub const DEFAULT_PADDING: usize = 1;

    /// The standard layer with `channels` channels.
    pub const fn standard(channels: usize) -> Self {
        Self {
            channels,
            kernel: Self::DEFAULT_KERNEL,
            stride: Self::DEFAULT_STRIDE,
            padding: Self::DEFAULT_PADDING,
        }
    }
}

impl<'de> Deserialize<'de> for ConvLayer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LayerVisitor)
    }
}

struct LayerVisitor;

impl<'de> Visitor<'de> for LayerVisitor {
    type Value = ConvLayer;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "a channel count (32) or a table { channels = 32, kernel = 4, stride = 2, padding = 1 }",
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConvLayer, E> {
        Ok(ConvLayer::standard(count(v)?))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConvLayer, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("found {v}; expected a non-negative channel count")))?;
        self.visit_u64(v)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConvLayer, A::Error> {
        let mut channels = None;
        let mut layer = ConvLayer::standard(0);
        while let Some(key) = map.next_key::<String>()? {
            let value: u64 = map.next_value()?;
            match key.as_str() {
                "channels" => channels = Some(count(value)?),
                "kernel" => layer.kernel = count(value)?,
                "stride" => layer.stride = count(value)?,
                "padding" => layer.padding = count(value)?,
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &["channels", "kernel", "stride", "padding"],
                    ));
                }
            }
        }
        layer.channels = channels.ok_or_else(|| de::Error::missing_field("channels"))?;
        Ok(layer)
    }
}

fn count<E: de::Error>(v: u64) -> Result<usize, E> {
    usize::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Net {
        conv: Vec<ConvLayer>,
    }

    #[test]
    fn a_number_is_the_standard_layer_and_a_table_overrides_its_defaults() {
        let net: Net = toml::from_str("conv = [32, { channels = 8, kernel = 3, stride = 1 }]")
            .expect("parses");
        assert_eq!(net.conv[0], ConvLayer::standard(32));
        assert_eq!(
            net.conv[1],
            ConvLayer {
                channels: 8,
                kernel: 3,
                stride: 1,
                padding: 1
            }
        );
    }

    #[test]
    fn unknown_keys_and_missing_channels_are_refused_by_name() {
        let err = toml::from_str::<Net>("conv = [{ channels = 8, kernal = 3 }]")
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("kernal"), "{err}");
        let err = toml::from_str::<Net>("conv = [{ kernel = 3 }]")
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("channels"), "{err}");
    }
}
