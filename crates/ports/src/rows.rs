//! How a link is stored in a row of a shared store (Redis, ScyllaDB, the shared link cache), with its
//! layout version. The embedded store marks its whole file with a version instead and rebuilds it.
//!
//! Layout 1 (before owners) was the bare postcard encoding of the domain's `Link`, whose first byte
//! is the code's length (3–64). Every later layout starts with [`MARK`] and its version byte, so a
//! row of any layout can be told apart and read: rows of layout 1 are upcast (owner `admin`,
//! enabled), rows of layout 2 (before `forward_query`) get it off, and a store never has to be
//! rebuilt for either.

use kurz_domain::link::{DisabledReason, MaxClicks, Metadata, RedirectStatus, Tags};
use kurz_domain::{Code, Link, LinkSpec, Owner, TargetUrl, Timestamp};
use serde::Deserialize;

/// The first byte of every versioned row; no layout-1 row starts with it.
const MARK: u8 = 0xff;
/// The layout [`encode_link`] writes.
pub const LINK_LAYOUT: u8 = 3;
/// Links with owners and a switch, before `forward_query`.
const LINK_LAYOUT_2: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("a stored row has layout {0}, which this build does not know")]
    UnknownLayout(u8),
    #[error("a stored link row does not decode: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("a stored {0} row is damaged")]
    Damaged(&'static str),
}

pub fn encode_link(link: &Link) -> Vec<u8> {
    let row = vec![MARK, LINK_LAYOUT];
    postcard::to_extend(link, row).expect("a link serialises into a vector")
}

pub fn decode_link(row: &[u8]) -> Result<Link, RowError> {
    match row {
        [MARK, LINK_LAYOUT, body @ ..] => Ok(postcard::from_bytes(body)?),
        [MARK, LINK_LAYOUT_2, body @ ..] => Ok(postcard::from_bytes::<LinkV2>(body)?.into()),
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        layout_1 => Ok(postcard::from_bytes::<LinkV1>(layout_1)?.into()),
    }
}

/// The layout [`encode_directory_row`] writes: the offset of the last event folded in (8 bytes,
/// little-endian), then the link as [`encode_link`] writes it (with its own layout, upcast on read).
const DIRECTORY_LAYOUT: u8 = 1;

pub fn encode_directory_row(row: &crate::fold::LinkRow) -> Vec<u8> {
    let mut bytes = vec![MARK, DIRECTORY_LAYOUT];
    bytes.extend_from_slice(&row.last_offset.to_le_bytes());
    bytes.extend_from_slice(&encode_link(&row.link));
    bytes
}

pub fn decode_directory_row(row: &[u8]) -> Result<crate::fold::LinkRow, RowError> {
    match row {
        [MARK, DIRECTORY_LAYOUT, offset @ ..] if offset.len() > 8 => {
            let last_offset = u64::from_le_bytes(offset[..8].try_into().expect("8 bytes"));
            Ok(crate::fold::LinkRow { link: decode_link(&offset[8..])?, last_offset })
        }
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        _ => Err(RowError::Damaged("directory")),
    }
}

/// The layout [`encode_history_event`] writes: the event as the embedded log encodes it (Avro
/// behind the catalog's local schema id), so a history row of any schema version the log can read
/// reads too, upcast to today's event.
const HISTORY_LAYOUT: u8 = 1;

static LOCAL_CODEC: std::sync::LazyLock<kurz_schemas::Codec> =
    std::sync::LazyLock::new(|| kurz_schemas::Codec::local(kurz_schemas::Catalog::shipped()));

pub fn encode_history_event(event: &kurz_domain::Event) -> Vec<u8> {
    let mut row = vec![MARK, HISTORY_LAYOUT];
    row.extend(LOCAL_CODEC.encode(event).expect("the shipped schemas encode every event"));
    row
}

pub fn decode_history_event(row: &[u8]) -> Result<kurz_domain::Event, RowError> {
    match row {
        [MARK, HISTORY_LAYOUT, body @ ..] => LOCAL_CODEC.decode(body).map_err(|_| RowError::Damaged("history")),
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        _ => Err(RowError::Damaged("history")),
    }
}

/// The layout [`encode_key`] writes.
const KEY_LAYOUT: u8 = 1;

pub fn encode_key(key: &crate::StoredKey) -> Vec<u8> {
    postcard::to_extend(key, vec![MARK, KEY_LAYOUT]).expect("a key serialises into a vector")
}

pub fn decode_key(row: &[u8]) -> Result<crate::StoredKey, RowError> {
    match row {
        [MARK, KEY_LAYOUT, body @ ..] => Ok(postcard::from_bytes(body)?),
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        _ => Err(RowError::UnknownLayout(0)),
    }
}

/// The layout [`encode_reservation`] writes: the fingerprint, when the reservation lapses (ms, for
/// stores that expire rows themselves), then the code.
const RESERVATION_LAYOUT: u8 = 1;

/// The layout of an orphan-visit day row: the domain's `OrphanDay` in postcard.
const ORPHAN_DAY_LAYOUT: u8 = 1;

pub fn encode_orphan_day(day: &kurz_domain::orphans::OrphanDay) -> Vec<u8> {
    postcard::to_extend(day, vec![MARK, ORPHAN_DAY_LAYOUT]).expect("a day serialises into a vector")
}

pub fn decode_orphan_day(row: &[u8]) -> Result<kurz_domain::orphans::OrphanDay, RowError> {
    match row {
        [MARK, ORPHAN_DAY_LAYOUT, body @ ..] => Ok(postcard::from_bytes(body)?),
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        _ => Err(RowError::Damaged("orphan visits")),
    }
}

pub fn encode_reservation(reservation: &crate::Reservation, expires_at: Timestamp) -> Vec<u8> {
    let mut row = vec![MARK, RESERVATION_LAYOUT];
    row.extend_from_slice(&reservation.fingerprint);
    row.extend_from_slice(&expires_at.as_millis().to_le_bytes());
    row.extend_from_slice(reservation.code.as_str().as_bytes());
    row
}

/// The reservation in a row, and when it lapses.
pub fn decode_reservation(row: &[u8]) -> Result<(crate::Reservation, Timestamp), RowError> {
    match row {
        [MARK, RESERVATION_LAYOUT, body @ ..] if body.len() > 40 => {
            let fingerprint = body[..32].try_into().expect("32 bytes");
            let expires_at = Timestamp::from_millis(i64::from_le_bytes(body[32..40].try_into().expect("8 bytes")));
            let code = std::str::from_utf8(&body[40..]).ok().and_then(|text| Code::parse(text).ok());
            let code = code.ok_or(RowError::Damaged("idempotency"))?;
            Ok((crate::Reservation { fingerprint, code }, expires_at))
        }
        [MARK, layout, ..] => Err(RowError::UnknownLayout(*layout)),
        _ => Err(RowError::UnknownLayout(0)),
    }
}

#[derive(Deserialize)]
struct LinkV1 {
    code: Code,
    spec: LinkSpecV1,
    custom_alias: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
}

#[derive(Deserialize)]
struct LinkSpecV1 {
    target: TargetUrl,
    expires_at: Option<Timestamp>,
    max_clicks: Option<MaxClicks>,
    redirect_status: RedirectStatus,
    tags: Tags,
    metadata: Metadata,
}

impl From<LinkV1> for Link {
    fn from(v1: LinkV1) -> Self {
        let LinkSpecV1 { target, expires_at, max_clicks, redirect_status, tags, metadata } = v1.spec;
        let spec = LinkSpec {
            target,
            expires_at,
            max_clicks,
            redirect_status,
            tags,
            metadata,
            disabled: None,
            forward_query: false,
        };
        Self {
            code: v1.code,
            owner: Owner::admin(),
            spec,
            custom_alias: v1.custom_alias,
            created_at: v1.created_at,
            updated_at: v1.updated_at,
            deleted_at: v1.deleted_at,
        }
    }
}

#[derive(Deserialize)]
struct LinkV2 {
    code: Code,
    owner: Owner,
    spec: LinkSpecV2,
    custom_alias: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
}

#[derive(Deserialize)]
struct LinkSpecV2 {
    target: TargetUrl,
    expires_at: Option<Timestamp>,
    max_clicks: Option<MaxClicks>,
    redirect_status: RedirectStatus,
    tags: Tags,
    metadata: Metadata,
    disabled: Option<DisabledReason>,
}

impl From<LinkV2> for Link {
    fn from(v2: LinkV2) -> Self {
        let LinkSpecV2 { target, expires_at, max_clicks, redirect_status, tags, metadata, disabled } = v2.spec;
        Self {
            code: v2.code,
            owner: v2.owner,
            spec: LinkSpec {
                target,
                expires_at,
                max_clicks,
                redirect_status,
                tags,
                metadata,
                disabled,
                forward_query: false,
            },
            custom_alias: v2.custom_alias,
            created_at: v2.created_at,
            updated_at: v2.updated_at,
            deleted_at: v2.deleted_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    fn link() -> Link {
        let mut spec = LinkSpec::new(TargetUrl::parse("https://example.com/x").expect("valid"));
        spec.forward_query = true;
        spec.max_clicks = Some(MaxClicks::new(3).expect("valid"));
        spec.disabled = Some(DisabledReason::parse("spam".into()).expect("valid"));
        Link {
            code: Code::parse("abc").expect("valid"),
            owner: Owner::parse("alice").expect("valid"),
            spec,
            custom_alias: true,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(2),
            deleted_at: None,
        }
    }

    #[test]
    fn directory_and_history_rows_round_trip() {
        let row = crate::fold::LinkRow { link: link(), last_offset: 77 };
        assert_eq!(decode_directory_row(&encode_directory_row(&row)).expect("decodes"), row);
        let event = kurz_domain::Event::Deleted(kurz_domain::LinkDeleted {
            code: Code::parse("abc").expect("valid"),
            deleted_at: Timestamp::from_millis(5),
            key_id: None,
        });
        assert_eq!(decode_history_event(&encode_history_event(&event)).expect("decodes"), event);
        assert!(matches!(decode_history_event(&[MARK, 9, 1]), Err(RowError::UnknownLayout(9))));
        assert!(decode_directory_row(&[MARK, DIRECTORY_LAYOUT, 1, 2]).is_err());
    }

    #[test]
    fn a_row_round_trips_with_its_layout() {
        let row = encode_link(&link());
        assert_eq!(&row[..2], &[MARK, LINK_LAYOUT]);
        assert_eq!(decode_link(&row).expect("decodes"), link());
    }

    /// A row written before owners existed, exactly as that build wrote it.
    #[test]
    fn a_layout_1_row_reads_as_an_admin_link_that_is_enabled() {
        #[derive(Serialize)]
        struct OldSpec<'a> {
            target: &'a TargetUrl,
            expires_at: Option<Timestamp>,
            max_clicks: Option<MaxClicks>,
            redirect_status: RedirectStatus,
            tags: &'a Tags,
            metadata: &'a Metadata,
        }
        #[derive(Serialize)]
        struct OldLink<'a> {
            code: &'a Code,
            spec: OldSpec<'a>,
            custom_alias: bool,
            created_at: Timestamp,
            updated_at: Timestamp,
            deleted_at: Option<Timestamp>,
        }
        let new = link();
        let old = OldLink {
            code: &new.code,
            spec: OldSpec {
                target: &new.spec.target,
                expires_at: new.spec.expires_at,
                max_clicks: new.spec.max_clicks,
                redirect_status: new.spec.redirect_status,
                tags: &new.spec.tags,
                metadata: &new.spec.metadata,
            },
            custom_alias: new.custom_alias,
            created_at: new.created_at,
            updated_at: new.updated_at,
            deleted_at: new.deleted_at,
        };
        let row = postcard::to_stdvec(&old).expect("serialises");
        let read = decode_link(&row).expect("decodes");
        assert_eq!(read.owner, Owner::admin());
        assert_eq!(read.spec.disabled, None);
        assert_eq!((read.code, read.spec.max_clicks, read.updated_at), (new.code, new.spec.max_clicks, new.updated_at));
    }

    /// A row written before `forward_query`, exactly as that build wrote it.
    #[test]
    fn a_layout_2_row_reads_with_its_owner_and_switch_and_no_query_forwarding() {
        #[derive(Serialize)]
        struct OldSpec<'a> {
            target: &'a TargetUrl,
            expires_at: Option<Timestamp>,
            max_clicks: Option<MaxClicks>,
            redirect_status: RedirectStatus,
            tags: &'a Tags,
            metadata: &'a Metadata,
            disabled: &'a Option<DisabledReason>,
        }
        #[derive(Serialize)]
        struct OldLink<'a> {
            code: &'a Code,
            owner: &'a Owner,
            spec: OldSpec<'a>,
            custom_alias: bool,
            created_at: Timestamp,
            updated_at: Timestamp,
            deleted_at: Option<Timestamp>,
        }
        let mut new = link();
        new.spec.forward_query = true;
        let old = OldLink {
            code: &new.code,
            owner: &new.owner,
            spec: OldSpec {
                target: &new.spec.target,
                expires_at: new.spec.expires_at,
                max_clicks: new.spec.max_clicks,
                redirect_status: new.spec.redirect_status,
                tags: &new.spec.tags,
                metadata: &new.spec.metadata,
                disabled: &new.spec.disabled,
            },
            custom_alias: new.custom_alias,
            created_at: new.created_at,
            updated_at: new.updated_at,
            deleted_at: new.deleted_at,
        };
        let row = postcard::to_extend(&old, vec![MARK, LINK_LAYOUT_2]).expect("serialises");
        let read = decode_link(&row).expect("decodes");
        assert!(!read.spec.forward_query);
        assert_eq!(read, Link { spec: LinkSpec { forward_query: false, ..new.spec.clone() }, ..new });
    }

    #[test]
    fn a_row_of_a_newer_layout_is_an_error_not_a_guess() {
        assert!(matches!(decode_link(&[MARK, LINK_LAYOUT + 1, 0]), Err(RowError::UnknownLayout(_))));
        assert!(decode_link(&[MARK]).is_err());
        assert!(decode_link(&[]).is_err());
    }
}
