//! Events for the scenarios.

use kurz_domain::{Code, Event, LinkClicked, LinkCreated, LinkDeleted, LinkSpec, LinkUpdated, TargetUrl, Timestamp};

pub const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z
pub const EPOCH_2026: i64 = 1_767_225_600_000;

pub fn code(text: &str) -> Code {
    Code::parse(text).expect("scenario codes are valid")
}

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(EPOCH_2026 + offset_ms)
}

pub fn spec(target: &str) -> LinkSpec {
    LinkSpec::new(TargetUrl::parse(target).expect("scenario targets are valid"))
}

pub fn created(text: &str) -> Event {
    Event::Created(LinkCreated {
        code: code(text),
        spec: spec(&format!("https://example.com/{text}")),
        custom_alias: false,
        created_at: at(0),
        owner: kurz_domain::Owner::admin(),
        key_id: None,
    })
}

pub fn updated(text: &str, target: &str) -> Event {
    Event::Updated(LinkUpdated { code: code(text), spec: spec(target), updated_at: at(1000), key_id: None })
}

pub fn deleted(text: &str) -> Event {
    Event::Deleted(LinkDeleted { code: code(text), deleted_at: at(2000), key_id: None })
}

pub fn clicked(text: &str, offset_ms: i64, visitor: &str) -> Event {
    Event::Clicked(LinkClicked::new(
        code(text),
        at(offset_ms),
        Some("https://news.example/item"),
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
        Some(visitor),
    ))
}

/// A link of `owner` created `offset_ms` after [`EPOCH_2026`].
pub fn created_by(text: &str, owner: &str, offset_ms: i64) -> Event {
    Event::Created(LinkCreated {
        code: code(text),
        spec: spec(&format!("https://example.com/{text}")),
        custom_alias: false,
        created_at: at(offset_ms),
        owner: kurz_domain::Owner::parse(owner).expect("scenario owners are valid"),
        key_id: None,
    })
}
