//! The latest schema version of each event as a serde struct, field for field as in its `.avsc`.
//! Encoding and decoding through these skips apache-avro's intermediate `Value` tree: the fast path
//! for everything written with the current schemas. Older versions go through `mapping` and Avro
//! schema resolution instead.

use std::collections::BTreeMap;

use kurz_domain::link::{DisabledReason, MaxClicks, Metadata, RedirectStatus, Tags};
use kurz_domain::{
    ClickDetails, ClickText, Code, Event, KeyId, LinkClicked, LinkCreated, LinkDeleted, LinkSpec, LinkUpdated, Owner,
    TargetUrl, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::mapping::FieldError;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "LinkCreated")]
pub struct LinkCreatedV3 {
    code: String,
    target_url: String,
    created_at: i64,
    expires_at: Option<i64>,
    max_clicks: Option<i64>,
    redirect_status: i32,
    tags: Vec<String>,
    metadata: BTreeMap<String, String>,
    custom_alias: bool,
    owner: String,
    key_id: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    forward_query: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "LinkUpdated")]
pub struct LinkUpdatedV3 {
    code: String,
    target_url: String,
    updated_at: i64,
    expires_at: Option<i64>,
    max_clicks: Option<i64>,
    redirect_status: i32,
    tags: Vec<String>,
    metadata: BTreeMap<String, String>,
    key_id: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    forward_query: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "LinkDeleted")]
pub struct LinkDeletedV2 {
    code: String,
    deleted_at: i64,
    key_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "LinkClicked")]
pub struct LinkClickedV2 {
    pub(crate) code: String,
    pub(crate) clicked_at: i64,
    pub(crate) referrer: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) visitor_id: Option<String>,
    pub(crate) event_id: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) bot: Option<bool>,
}

/// The fields a link's specification shares between creation and update.
pub(crate) struct SpecFields {
    pub(crate) target_url: String,
    pub(crate) expires_at: Option<i64>,
    pub(crate) max_clicks: Option<i64>,
    pub(crate) redirect_status: i32,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) enabled: bool,
    pub(crate) disabled_reason: Option<String>,
    pub(crate) forward_query: bool,
}

fn spec_fields(spec: &LinkSpec) -> SpecFields {
    SpecFields {
        target_url: spec.target.to_string(),
        expires_at: spec.expires_at.map(Timestamp::as_millis),
        max_clicks: spec.max_clicks.map(|m| i64::try_from(m.get()).expect("bounded by MaxClicks::MAX")),
        redirect_status: i32::from(spec.redirect_status.code()),
        tags: spec.tags.as_slice().to_vec(),
        metadata: spec.metadata.as_map().clone(),
        enabled: spec.disabled.is_none(),
        disabled_reason: spec.disabled.as_ref().map(|r| r.as_str().to_owned()).filter(|r| !r.is_empty()),
        forward_query: spec.forward_query,
    }
}

fn invalid(field: &'static str, problem: impl std::fmt::Display) -> FieldError {
    FieldError { field, problem: problem.to_string() }
}

pub(crate) fn owner(raw: &str) -> Result<Owner, FieldError> {
    Owner::parse(raw).map_err(|e| invalid("owner", e))
}

pub(crate) fn key_id(raw: Option<&str>) -> Result<Option<KeyId>, FieldError> {
    raw.map(KeyId::parse).transpose().map_err(|e| invalid("key_id", e))
}

pub(crate) fn spec(fields: SpecFields) -> Result<LinkSpec, FieldError> {
    let disabled = if fields.enabled {
        None
    } else {
        Some(
            DisabledReason::parse(fields.disabled_reason.unwrap_or_default())
                .map_err(|e| invalid("disabled_reason", e))?,
        )
    };
    let status = u16::try_from(fields.redirect_status)
        .ok()
        .and_then(|n| RedirectStatus::from_code(n).ok())
        .ok_or_else(|| invalid("redirect_status", format!("{} is not a redirect status", fields.redirect_status)))?;
    Ok(LinkSpec {
        target: TargetUrl::parse(&fields.target_url).map_err(|e| invalid("target_url", e))?,
        expires_at: fields.expires_at.map(Timestamp::from_millis),
        max_clicks: fields
            .max_clicks
            .map(|n| MaxClicks::new(i128::from(n)))
            .transpose()
            .map_err(|e| invalid("max_clicks", e))?,
        redirect_status: status,
        tags: Tags::parse(fields.tags).map_err(|e| invalid("tags", e))?,
        metadata: Metadata::parse(fields.metadata).map_err(|e| invalid("metadata", e))?,
        disabled,
        forward_query: fields.forward_query,
    })
}

fn code(raw: &str) -> Result<Code, FieldError> {
    Code::parse(raw).map_err(|e| invalid("code", e))
}

impl From<&LinkCreated> for LinkCreatedV3 {
    fn from(e: &LinkCreated) -> Self {
        let s = spec_fields(&e.spec);
        Self {
            code: e.code.to_string(),
            target_url: s.target_url,
            created_at: e.created_at.as_millis(),
            expires_at: s.expires_at,
            max_clicks: s.max_clicks,
            redirect_status: s.redirect_status,
            tags: s.tags,
            metadata: s.metadata,
            custom_alias: e.custom_alias,
            owner: e.owner.to_string(),
            key_id: e.key_id.as_ref().map(ToString::to_string),
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            forward_query: s.forward_query,
        }
    }
}

impl TryFrom<LinkCreatedV3> for Event {
    type Error = FieldError;

    fn try_from(r: LinkCreatedV3) -> Result<Self, FieldError> {
        let fields = SpecFields {
            target_url: r.target_url,
            expires_at: r.expires_at,
            max_clicks: r.max_clicks,
            redirect_status: r.redirect_status,
            tags: r.tags,
            metadata: r.metadata,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            forward_query: r.forward_query,
        };
        Ok(Self::Created(LinkCreated {
            code: code(&r.code)?,
            owner: owner(&r.owner)?,
            spec: spec(fields)?,
            custom_alias: r.custom_alias,
            created_at: Timestamp::from_millis(r.created_at),
            key_id: key_id(r.key_id.as_deref())?,
        }))
    }
}

impl From<&LinkUpdated> for LinkUpdatedV3 {
    fn from(e: &LinkUpdated) -> Self {
        let s = spec_fields(&e.spec);
        Self {
            code: e.code.to_string(),
            target_url: s.target_url,
            updated_at: e.updated_at.as_millis(),
            expires_at: s.expires_at,
            max_clicks: s.max_clicks,
            redirect_status: s.redirect_status,
            tags: s.tags,
            metadata: s.metadata,
            key_id: e.key_id.as_ref().map(ToString::to_string),
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            forward_query: s.forward_query,
        }
    }
}

impl TryFrom<LinkUpdatedV3> for Event {
    type Error = FieldError;

    fn try_from(r: LinkUpdatedV3) -> Result<Self, FieldError> {
        let fields = SpecFields {
            target_url: r.target_url,
            expires_at: r.expires_at,
            max_clicks: r.max_clicks,
            redirect_status: r.redirect_status,
            tags: r.tags,
            metadata: r.metadata,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            forward_query: r.forward_query,
        };
        Ok(Self::Updated(LinkUpdated {
            code: code(&r.code)?,
            spec: spec(fields)?,
            updated_at: Timestamp::from_millis(r.updated_at),
            key_id: key_id(r.key_id.as_deref())?,
        }))
    }
}

impl From<&LinkDeleted> for LinkDeletedV2 {
    fn from(e: &LinkDeleted) -> Self {
        Self {
            code: e.code.to_string(),
            deleted_at: e.deleted_at.as_millis(),
            key_id: e.key_id.as_ref().map(ToString::to_string),
        }
    }
}

impl TryFrom<LinkDeletedV2> for Event {
    type Error = FieldError;

    fn try_from(r: LinkDeletedV2) -> Result<Self, FieldError> {
        Ok(Self::Deleted(LinkDeleted {
            code: code(&r.code)?,
            deleted_at: Timestamp::from_millis(r.deleted_at),
            key_id: key_id(r.key_id.as_deref())?,
        }))
    }
}

impl From<&LinkClicked> for LinkClickedV2 {
    fn from(e: &LinkClicked) -> Self {
        let details = &e.details;
        Self {
            code: e.code.to_string(),
            clicked_at: e.clicked_at.as_millis(),
            referrer: owned(e.referrer.as_ref()),
            user_agent: owned(e.user_agent.as_ref()),
            visitor_id: owned(e.visitor_id.as_ref()),
            event_id: owned(details.event_id.as_ref()),
            language: owned(details.language.as_ref()),
            country: owned(details.country.as_ref()),
            region: owned(details.region.as_ref()),
            city: owned(details.city.as_ref()),
            bot: details.bot,
        }
    }
}

impl TryFrom<LinkClickedV2> for Event {
    type Error = FieldError;

    fn try_from(r: LinkClickedV2) -> Result<Self, FieldError> {
        Ok(Self::Clicked(LinkClicked {
            code: code(&r.code)?,
            clicked_at: Timestamp::from_millis(r.clicked_at),
            referrer: text(r.referrer),
            user_agent: text(r.user_agent),
            visitor_id: text(r.visitor_id),
            details: ClickDetails {
                event_id: text(r.event_id),
                language: text(r.language),
                country: text(r.country),
                region: text(r.region),
                city: text(r.city),
                bot: r.bot,
            },
        }))
    }
}

/// A click's text as the domain holds it.
fn text(value: Option<String>) -> Option<ClickText> {
    value.map(ClickText::from)
}

fn owned(value: Option<&ClickText>) -> Option<String> {
    value.map(ClickText::to_string)
}
