//! Avro values (data of an older schema version, resolved into the latest) to domain events. Field
//! names are those of the `.avsc` files.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use kurz_domain::{
    ClickDetails, ClickText, Code, Event, LinkClicked, LinkCreated, LinkDeleted, LinkSpec, LinkUpdated, Timestamp,
};

use crate::catalog::EventKind;
use crate::records::{SpecFields, key_id, owner, spec};

pub fn kind_of(event: &Event) -> EventKind {
    match event {
        Event::Created(_) => EventKind::LinkCreated,
        Event::Updated(_) => EventKind::LinkUpdated,
        Event::Deleted(_) => EventKind::LinkDeleted,
        Event::Clicked(_) => EventKind::LinkClicked,
    }
}

/// Why a decoded record does not make a domain event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

pub fn from_value(kind: EventKind, value: Value) -> Result<Event, FieldError> {
    let Value::Record(fields) = value else {
        return Err(FieldError { field: "(record)", problem: "not a record".into() });
    };
    let mut record = Record(fields.into_iter().collect());
    let code = record.string("code")?;
    let code = Code::parse(&code).map_err(|e| invalid("code", e))?;
    Ok(match kind {
        EventKind::LinkCreated => Event::Created(LinkCreated {
            created_at: record.timestamp("created_at")?,
            custom_alias: record.boolean("custom_alias")?,
            owner: owner(&record.string("owner")?)?,
            key_id: key_id(record.optional_string("key_id")?.as_deref())?,
            spec: record.spec()?,
            code,
        }),
        EventKind::LinkUpdated => Event::Updated(LinkUpdated {
            updated_at: record.timestamp("updated_at")?,
            key_id: key_id(record.optional_string("key_id")?.as_deref())?,
            spec: record.spec()?,
            code,
        }),
        EventKind::LinkDeleted => Event::Deleted(LinkDeleted {
            deleted_at: record.timestamp("deleted_at")?,
            key_id: key_id(record.optional_string("key_id")?.as_deref())?,
            code,
        }),
        EventKind::LinkClicked => Event::Clicked(LinkClicked {
            clicked_at: record.timestamp("clicked_at")?,
            referrer: record.optional_string("referrer")?.map(ClickText::from),
            user_agent: record.optional_string("user_agent")?.map(ClickText::from),
            visitor_id: record.optional_string("visitor_id")?.map(ClickText::from),
            details: ClickDetails {
                event_id: record.optional_string("event_id")?.map(ClickText::from),
                language: record.optional_string("language")?.map(ClickText::from),
                country: record.optional_string("country")?.map(ClickText::from),
                region: record.optional_string("region")?.map(ClickText::from),
                city: record.optional_string("city")?.map(ClickText::from),
                bot: record.optional_boolean("bot")?,
            },
            code,
        }),
    })
}

fn invalid(field: &'static str, problem: impl std::fmt::Display) -> FieldError {
    FieldError { field, problem: problem.to_string() }
}

struct Record(HashMap<String, Value>);

impl Record {
    fn take(&mut self, field: &'static str) -> Result<Value, FieldError> {
        match self.0.remove(field) {
            Some(Value::Union(_, inner)) => Ok(*inner),
            Some(value) => Ok(value),
            None => Err(invalid(field, "missing")),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, FieldError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            other => Err(invalid(field, format!("expected a string, got {other:?}"))),
        }
    }

    fn optional_string(&mut self, field: &'static str) -> Result<Option<String>, FieldError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(invalid(field, format!("expected a string or null, got {other:?}"))),
        }
    }

    fn optional_boolean(&mut self, field: &'static str) -> Result<Option<bool>, FieldError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(invalid(field, format!("expected a boolean or null, got {other:?}"))),
        }
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool, FieldError> {
        match self.take(field)? {
            Value::Boolean(b) => Ok(b),
            other => Err(invalid(field, format!("expected a boolean, got {other:?}"))),
        }
    }

    fn timestamp(&mut self, field: &'static str) -> Result<Timestamp, FieldError> {
        self.optional_timestamp(field)?.ok_or_else(|| invalid(field, "null"))
    }

    fn optional_timestamp(&mut self, field: &'static str) -> Result<Option<Timestamp>, FieldError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(Some(Timestamp::from_millis(ms))),
            other => Err(invalid(field, format!("expected timestamp-millis, got {other:?}"))),
        }
    }

    fn long(&mut self, field: &'static str) -> Result<Option<i64>, FieldError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::Long(n) => Ok(Some(n)),
            other => Err(invalid(field, format!("expected a long or null, got {other:?}"))),
        }
    }

    fn spec(&mut self) -> Result<LinkSpec, FieldError> {
        let redirect_status = match self.take("redirect_status")? {
            Value::Int(n) => n,
            other => return Err(invalid("redirect_status", format!("expected an int, got {other:?}"))),
        };
        let tags = match self.take("tags")? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(invalid("tags", format!("expected strings, got {other:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(invalid("tags", format!("expected an array, got {other:?}"))),
        };
        let metadata = match self.take("metadata")? {
            Value::Map(entries) => entries
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(invalid("metadata", format!("expected string values, got {other:?}"))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
            other => return Err(invalid("metadata", format!("expected a map, got {other:?}"))),
        };
        spec(SpecFields {
            target_url: self.string("target_url")?,
            expires_at: self.optional_timestamp("expires_at")?.map(Timestamp::as_millis),
            max_clicks: self.long("max_clicks")?,
            redirect_status,
            tags,
            metadata,
            enabled: self.boolean("enabled")?,
            disabled_reason: self.optional_string("disabled_reason")?,
            forward_query: self.boolean("forward_query")?,
        })
    }
}
