//! Typed Parquet columns from JSON values: a column is a list, Int64, Float64, Boolean or
//! String by the values it holds in *any* row (ints mixed with floats are Float64, lists
//! of ints List(Int64)), decided once over every row ([`Seen`]) and then applied to each
//! batch of rows ([`Columns::frame`]), so that every batch of a table has the same schema.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde_json::Value;

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Float,
    Bool,
    Text,
    IntList,
    TextList,
}

/// What a column's values have been so far.
#[derive(Clone, Copy)]
pub(super) struct Seen {
    present: bool,
    arrays: bool,
    bools: bool,
    ints: bool,
    numbers: bool,
    list_ints: bool,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            present: false,
            arrays: true,
            bools: true,
            ints: true,
            numbers: true,
            list_ints: true,
        }
    }
}

fn is_int(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

impl Seen {
    pub(super) fn add(&mut self, v: &Value) {
        if v.is_null() {
            return;
        }
        self.present = true;
        self.arrays &= v.is_array();
        self.bools &= v.is_boolean();
        self.ints &= is_int(v);
        self.numbers &= v.is_number();
        if let Some(items) = v.as_array() {
            self.list_ints &= items.iter().all(is_int);
        }
    }

    pub(super) fn kind(self) -> Option<Kind> {
        self.present.then_some(if self.arrays {
            if self.list_ints {
                Kind::IntList
            } else {
                Kind::TextList
            }
        } else if self.bools {
            Kind::Bool
        } else if self.ints {
            Kind::Int
        } else if self.numbers {
            Kind::Float
        } else {
            Kind::Text
        })
    }
}

/// Columns in order with their types.
#[derive(Clone, Debug, Default)]
pub(super) struct Columns {
    pub(super) names: Vec<String>,
    kinds: Vec<Kind>,
}

impl Columns {
    /// `names` typed by what `seen` saw, else by the template's value, else text.
    pub(super) fn typed(names: Vec<String>, seen: &HashMap<String, Seen>, template: &Row) -> Self {
        let kinds = names
            .iter()
            .map(|n| {
                seen.get(n).and_then(|s| s.kind()).unwrap_or_else(|| {
                    let mut s = Seen::default();
                    s.add(template.get(n).unwrap_or(&Value::Null));
                    s.kind().unwrap_or(Kind::Text)
                })
            })
            .collect();
        Self { names, kinds }
    }

    /// A frame of `rows` with these columns (a value that does not fit its column's type,
    /// which a run rewritten between the two passes could give, is null).
    pub(super) fn frame(&self, rows: &[Row]) -> anyhow::Result<DataFrame> {
        let columns = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(name, &kind)| {
                let values: Vec<&Value> = rows
                    .iter()
                    .map(|r| r.get(name).unwrap_or(&Value::Null))
                    .collect();
                column(name, kind, &values)
            })
            .collect();
        Ok(DataFrame::new(rows.len(), columns)?)
    }
}

/// A row as JSON values by column name.
pub(super) type Row = BTreeMap<String, Value>;

fn column(name: &str, kind: Kind, values: &[&Value]) -> Column {
    match kind {
        Kind::Int => Column::new(
            name.into(),
            values.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
        ),
        Kind::Float => Column::new(
            name.into(),
            values.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
        ),
        Kind::Bool => Column::new(
            name.into(),
            values.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
        ),
        Kind::Text => Column::new(
            name.into(),
            values.iter().map(|v| as_text(v)).collect::<Vec<_>>(),
        ),
        Kind::IntList | Kind::TextList => list_column(name, kind == Kind::IntList, values),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A list column (hidden widths, table columns): List(Int64) or List(String).
fn list_column(name: &str, ints: bool, values: &[&Value]) -> Column {
    let inner = if ints {
        DataType::Int64
    } else {
        DataType::String
    };
    if values.iter().all(|v| !v.is_array()) {
        return ListChunked::full_null_with_dtype(name.into(), values.len(), &inner)
            .into_series()
            .into();
    }
    let lists: ListChunked = values
        .iter()
        .map(|v| {
            v.as_array().map(|items| {
                if ints {
                    Series::new(
                        "".into(),
                        items.iter().map(|x| x.as_i64()).collect::<Vec<_>>(),
                    )
                } else {
                    Series::new("".into(), items.iter().map(as_text).collect::<Vec<_>>())
                }
            })
        })
        .collect();
    let series = lists.into_series().with_name(name.into());
    // An all-empty batch would infer a null inner type: every batch must match the first.
    series
        .cast(&DataType::List(Box::new(inner)))
        .unwrap_or(series)
        .into()
}
