//! Links as `kurz export` writes them and `kurz import` and the web UI's import read them back: one
//! record per link (its JSON fields; CSV cells typed back), and the create body that recreates it.

use anyhow::Context;
use serde_json::{Map, Value, json};

/// A link as exported, field by field (the names of a link's JSON).
pub type Record = Map<String, Value>;

/// The fields a create takes from an exported link; `code` becomes the alias.
const CREATE_FIELDS: [&str; 10] = [
    "target_url",
    "owner",
    "enabled",
    "disabled_reason",
    "expires_at",
    "max_clicks",
    "redirect_status",
    "forward_query",
    "tags",
    "metadata",
];

/// The create body that gives an exported link back, or `None` for a deleted one (not imported).
pub fn create_body(record: &Record) -> Option<Value> {
    if record.get("state").and_then(Value::as_str) == Some("deleted") {
        return None;
    }
    let mut body = Map::new();
    if let Some(code) = record.get("code") {
        body.insert("alias".into(), code.clone());
    }
    for field in CREATE_FIELDS {
        match record.get(field) {
            None | Some(Value::Null) => {}
            Some(value) => {
                body.insert(field.into(), value.clone());
            }
        }
    }
    // A reason only goes with a switched-off link.
    if body.get("enabled") != Some(&Value::Bool(false)) {
        body.remove("disabled_reason");
    }
    Some(Value::Object(body))
}

/// A CSV row as a record: empty cells are absent, and each column gets its JSON type back.
pub fn csv_record(headers: &csv::StringRecord, row: &csv::StringRecord) -> anyhow::Result<Record> {
    let mut record = Map::new();
    for (name, cell) in headers.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let value = match name {
            "enabled" | "forward_query" => json!(cell == "true"),
            "max_clicks" | "redirect_status" => json!(cell.parse::<u64>().with_context(|| format!("{name} {cell:?}"))?),
            "tags" | "metadata" => serde_json::from_str(cell).with_context(|| format!("{name} {cell:?}"))?,
            _ => json!(cell),
        };
        record.insert(name.to_owned(), value);
    }
    Ok(record)
}
