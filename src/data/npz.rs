//! NumPy's `.npz` (a zip of `.npy` arrays), as far as datasets need it: little-endian
//! C-order arrays of u8, i64 or f64, read whole. Every refusal names the file, the array
//! and what was expected.

use std::io::Read;
use std::path::Path;

/// One array: its shape and values (converted to f64 where not u8).
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8 { shape: Vec<usize>, values: Vec<u8> },
    F64 { shape: Vec<usize>, values: Vec<f64> },
}

impl Array {
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::U8 { shape, .. } | Array::F64 { shape, .. } => shape,
        }
    }
}

/// Reads array `name` (`name.npy` inside the archive).
pub fn read(path: &Path, name: &str) -> Result<Array, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{}: not an .npz (zip) archive: {e}", path.display()))?;
    let mut entry = archive.by_name(&format!("{name}.npy")).map_err(|_| {
        format!(
            "{}: no array `{name}` (expected `{name}.npy` inside the archive)",
            path.display()
        )
    })?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: array `{name}` cannot be read: {e}", path.display()))?;
    parse_npy(&bytes).map_err(|e| format!("{}: array `{name}`: {e}", path.display()))
}

/// Parses one `.npy` file's bytes (format versions 1–3).
pub fn parse_npy(bytes: &[u8]) -> Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-text .npy header")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or("no descr in the .npy header")?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err("Fortran-ordered arrays are not supported (expected C order)".into());
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or("no shape in the .npy header")?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape ({shape_text})"))
        })
        .collect::<Result<_, _>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    let need = |size: usize| -> Result<&[u8], String> {
        data.get(..count * size).ok_or_else(|| {
            format!(
                "{} bytes of data for shape {shape:?} of {descr}, expected {}",
                data.len(),
                count * size
            )
        })
    };
    Ok(match descr {
        "|u1" | "<u1" | "|b1" => Array::U8 {
            values: need(1)?.to_vec(),
            shape,
        },
        "<f8" => Array::F64 {
            values: need(8)?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
            shape,
        },
        "<i8" => Array::F64 {
            values: need(8)?
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64)
                .collect(),
            shape,
        },
        other => return Err(format!("dtype {other}: expected uint8, int64 or float64")),
    })
}

/// Writes arrays as an `.npz` (tests build dSprites-layout files with it).
pub fn write(path: &Path, arrays: &[(&str, &Array)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, array) in arrays {
        zip.start_file(format!("{name}.npy"), options)?;
        let (descr, data): (&str, Vec<u8>) = match array {
            Array::U8 { values, .. } => ("|u1", values.clone()),
            Array::F64 { values, .. } => {
                ("<f8", values.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        };
        let dims: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // Pad so that the data start on a 64-byte boundary, as NumPy does.
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        zip.write_all(b"\x93NUMPY\x01\x00")?;
        zip.write_all(&(header.len() as u16).to_le_bytes())?;
        zip.write_all(header.as_bytes())?;
        zip.write_all(&data)?;
    }
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_through_an_npz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let imgs = Array::U8 {
            shape: vec![2, 2, 3],
            values: (0..12).collect(),
        };
        let vals = Array::F64 {
            shape: vec![2, 6],
            values: (0..12).map(|v| v as f64 * 0.5).collect(),
        };
        write(&path, &[("imgs", &imgs), ("latents_values", &vals)]).unwrap();
        assert_eq!(read(&path, "imgs").unwrap(), imgs);
        assert_eq!(read(&path, "latents_values").unwrap(), vals);
        let missing = read(&path, "latents_classes").unwrap_err();
        assert!(
            missing.contains("latents_classes") && missing.contains("a.npz"),
            "{missing}"
        );
    }

    #[test]
    fn numpy_headers_parse_and_bad_ones_are_named() {
        // What numpy 1.x writes for np.zeros((2, 3), dtype=np.int64).
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }";
        let padded = format!("{header:<117}\n");
        bytes.extend((padded.len() as u16).to_le_bytes());
        bytes.extend(padded.as_bytes());
        bytes.extend((0..6i64).flat_map(|v| v.to_le_bytes()));
        assert_eq!(
            parse_npy(&bytes).unwrap(),
            Array::F64 {
                shape: vec![2, 3],
                values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
            }
        );
        assert!(parse_npy(b"garbage").unwrap_err().contains("magic"));
        bytes.truncate(bytes.len() - 8);
        assert!(parse_npy(&bytes).unwrap_err().contains("expected 48"));
    }
}
