//! Parquet files that every mainstream reader opens.
//!
//! polars stores its strings as Arrow `string_view` and records that in the file's embedded
//! Arrow schema (`ARROW:schema`), which pyarrow honours: pandas then fails on a list of
//! strings ("Not implemented type for Arrow list to pandas: string_view"). The Parquet
//! columns themselves are plain UTF-8 byte arrays; only the embedded schema names the view
//! type. So we write the schema polars produces for its oldest compatibility level
//! (`large_string`, `large_list`, no view types), which pandas, pyarrow, polars and DuckDB
//! all read.

use std::path::Path;

use polars::io::parquet::write::{BatchedWriter, KeyValueMetadata};
use polars::prelude::*;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema};

use super::atomic::write_atomic_with;

/// Writes `df` to `path` atomically (see `write_atomic_with`), with an embedded Arrow
/// schema free of view types, compressed as polars does by default.
pub fn write_parquet_atomic(path: &Path, df: &mut DataFrame) -> anyhow::Result<()> {
    write_parquet_atomic_with(path, df, ParquetCompression::default())
}

/// [`write_parquet_atomic`] with the given compression.
pub fn write_parquet_atomic_with(
    path: &Path,
    df: &mut DataFrame,
    compression: ParquetCompression,
) -> anyhow::Result<()> {
    let metadata = compatible_metadata(df.schema());
    write_atomic_with(path, |file| {
        ParquetWriter::new(file)
            .with_compression(compression)
            .with_key_value_metadata(Some(metadata))
            .finish(df)?;
        Ok(())
    })
}

/// The embedded-schema entry for `schema`: its oldest-compatibility Arrow schema.
fn compatible_metadata(schema: &Schema) -> KeyValueMetadata {
    let arrow = schema.to_arrow(CompatLevel::oldest());
    let key = polars_parquet::write::schema_to_metadata_key(&arrow);
    KeyValueMetadata::from_static(vec![(key.key, key.value.unwrap_or_default())])
}

/// A Parquet file written one batch of rows at a time (memory: one batch), with the same
/// embedded schema as [`write_parquet_atomic`]. Every batch must have the first one's
/// schema. Write at least one batch (an empty one gives a table with no rows).
pub struct ParquetBatches<'a> {
    file: &'a std::fs::File,
    writer: Option<(BatchedWriter<&'a std::fs::File>, Schema)>,
}

impl<'a> ParquetBatches<'a> {
    pub fn new(file: &'a std::fs::File) -> Self {
        Self { file, writer: None }
    }

    pub fn write(&mut self, batch: &mut DataFrame) -> anyhow::Result<()> {
        if self.writer.is_none() {
            let schema = batch.schema().as_ref().clone();
            let writer = ParquetWriter::new(self.file)
                .with_key_value_metadata(Some(compatible_metadata(&schema)))
                .batched(&schema)?;
            self.writer = Some((writer, schema));
        }
        let Some((writer, schema)) = &mut self.writer else {
            unreachable!("created above")
        };
        anyhow::ensure!(
            batch.schema().as_ref() == schema,
            "a batch's columns differ from the table's first batch ({:?} vs {:?})",
            batch.schema(),
            schema
        );
        batch.rechunk_mut_par();
        writer.write_batch(batch)?;
        Ok(())
    }

    /// Writes the footer; the caller then commits the file.
    pub fn finish(self) -> anyhow::Result<()> {
        let (writer, _) = self
            .writer
            .ok_or_else(|| anyhow::anyhow!("a Parquet table needs at least one batch"))?;
        writer.finish()?;
        Ok(())
    }
}

/// The Arrow schema embedded in a Parquet file, exactly as a reader such as pyarrow sees
/// it (polars' own reader turns strings into views on the way in, so it cannot tell).
pub fn embedded_arrow_schema(path: &Path) -> anyhow::Result<ArrowSchema> {
    use base64::Engine as _;
    let mut file =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let metadata = polars_parquet::parquet::read::read_metadata(&mut file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let encoded = metadata
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == "ARROW:schema")
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| anyhow::anyhow!("{}: no embedded Arrow schema", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded)?;
    // A continuation marker (0xFFFFFFFF) and a length precede the IPC message.
    let message = if bytes.starts_with(&[255, 255, 255, 255]) {
        &bytes[8..]
    } else {
        &bytes[4..]
    };
    let (schema, _, _) = polars_arrow::io::ipc::read::deserialize_schema(message)?;
    Ok(schema)
}

/// Whether an Arrow type is, or contains, a view type (`string_view`, `binary_view`), which pandas cannot convert.
pub fn has_view_type(dtype: &ArrowDataType) -> bool {
    use ArrowDataType as D;
    match dtype {
        D::Utf8View | D::BinaryView => true,
        D::List(field) | D::LargeList(field) | D::FixedSizeList(field, _) | D::Map(field, _) => {
            has_view_type(&field.dtype)
        }
        D::Struct(fields) => fields.iter().any(|f| has_view_type(&f.dtype)),
        D::Dictionary(_, value, _) => has_view_type(value),
        D::Extension(ext) => has_view_type(&ext.inner),
        _ => false,
    }
}
