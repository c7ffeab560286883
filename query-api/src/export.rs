//! How an export writes links: CSV (one row per link, tags and metadata as JSON cells, so a row
//! reads back exactly) or NDJSON (one list item per line).

use kurz_domain::{Link, Timestamp};
use kurz_service_kit::representation::ListedLink;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// The CSV columns, in order: the fields of a link's JSON.
pub const CSV_COLUMNS: [&str; 16] = [
    "code",
    "short_url",
    "target_url",
    "owner",
    "state",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
    "deleted_at",
    "expires_at",
    "max_clicks",
    "redirect_status",
    "forward_query",
    "tags",
    "metadata",
];

pub fn csv_header() -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).expect("writing to memory");
    writer.into_inner().expect("writing to memory")
}

pub fn encode(format: ExportFormat, links: &[Link], base: &str, now: Timestamp) -> Vec<u8> {
    let listed = links.iter().map(|link| ListedLink::new(link, base, now));
    match format {
        ExportFormat::Ndjson => {
            let mut bytes = Vec::with_capacity(links.len() * 400);
            for link in listed {
                serde_json::to_writer(&mut bytes, &link).expect("a link serialises");
                bytes.push(b'\n');
            }
            bytes
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::with_capacity(links.len() * 300));
            for ListedLink { link, state, deleted_at } in listed {
                let optional = |value: Option<String>| value.unwrap_or_default();
                writer
                    .write_record([
                        link.code,
                        link.short_url,
                        link.target_url,
                        link.owner,
                        state.to_owned(),
                        link.enabled.to_string(),
                        optional(link.disabled_reason),
                        link.created_at,
                        link.updated_at,
                        optional(deleted_at),
                        optional(link.expires_at),
                        optional(link.max_clicks.map(|max| max.to_string())),
                        link.redirect_status.to_string(),
                        link.forward_query.to_string(),
                        serde_json::to_string(&link.tags).expect("tags serialise"),
                        serde_json::to_string(&link.metadata).expect("metadata serialises"),
                    ])
                    .expect("writing to memory");
            }
            writer.into_inner().expect("writing to memory")
        }
    }
}
