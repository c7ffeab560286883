//! A link's history: every change, told from its events. An update event carries the whole
//! specification after the change, so what changed is the difference from the one before.

use crate::access::KeyId;
use crate::event::Event;
use crate::link::{DisabledReason, LinkSpec, MaxClicks, Metadata, RedirectStatus, Tags};
use crate::target_url::TargetUrl;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Disabled,
    Enabled,
    Deleted,
}

impl ChangeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::Deleted => "deleted",
        }
    }
}

/// One field of a link's specification, with its value after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Target(TargetUrl),
    ExpiresAt(Option<Timestamp>),
    MaxClicks(Option<MaxClicks>),
    RedirectStatus(RedirectStatus),
    Tags(Tags),
    Metadata(Metadata),
    /// `Some` when switched off (with its reason), `None` when switched on.
    Disabled(Option<DisabledReason>),
    ForwardQuery(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: Timestamp,
    pub kind: ChangeKind,
    /// The API key that made the change (`None` before keys existed).
    pub key_id: Option<KeyId>,
    /// For a creation every field; for an update the fields it changed; none for a deletion.
    pub fields: Vec<FieldChange>,
}

/// Tells a link's events, oldest first, as changes. Remembers the specification each event left.
#[derive(Debug, Default)]
pub struct HistoryTeller {
    spec: Option<LinkSpec>,
}

impl HistoryTeller {
    /// Starts after an event already told (a page of history goes on from the one before).
    pub fn after(event: &Event) -> Self {
        let mut teller = Self::default();
        teller.tell(event);
        teller
    }

    /// The change `event` made; `None` for a click.
    pub fn tell(&mut self, event: &Event) -> Option<Change> {
        let change = match event {
            Event::Created(created) => Change {
                at: created.created_at,
                kind: ChangeKind::Created,
                key_id: created.key_id.clone(),
                fields: differences(None, &created.spec),
            },
            Event::Updated(updated) => {
                let fields = differences(self.spec.as_ref(), &updated.spec);
                let was_disabled = self.spec.as_ref().is_some_and(|spec| spec.disabled.is_some());
                let kind = match (was_disabled, updated.spec.disabled.is_some()) {
                    (false, true) => ChangeKind::Disabled,
                    (true, false) => ChangeKind::Enabled,
                    _ => ChangeKind::Updated,
                };
                Change { at: updated.updated_at, kind, key_id: updated.key_id.clone(), fields }
            }
            Event::Deleted(deleted) => Change {
                at: deleted.deleted_at,
                kind: ChangeKind::Deleted,
                key_id: deleted.key_id.clone(),
                fields: Vec::new(),
            },
            Event::Clicked(_) => return None,
        };
        match event {
            Event::Created(created) => self.spec = Some(created.spec.clone()),
            Event::Updated(updated) => self.spec = Some(updated.spec.clone()),
            _ => {}
        }
        Some(change)
    }
}

/// The fields of `after` that differ from `before` (every field when there is no `before`).
fn differences(before: Option<&LinkSpec>, after: &LinkSpec) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    let mut note = |changed: bool, field: FieldChange| {
        if changed {
            fields.push(field);
        }
    };
    let differs = |same: fn(&LinkSpec, &LinkSpec) -> bool| before.is_none_or(|before| !same(before, after));
    note(differs(|a, b| a.target == b.target), FieldChange::Target(after.target.clone()));
    note(differs(|a, b| a.expires_at == b.expires_at), FieldChange::ExpiresAt(after.expires_at));
    note(differs(|a, b| a.max_clicks == b.max_clicks), FieldChange::MaxClicks(after.max_clicks));
    note(differs(|a, b| a.redirect_status == b.redirect_status), FieldChange::RedirectStatus(after.redirect_status));
    note(differs(|a, b| a.tags == b.tags), FieldChange::Tags(after.tags.clone()));
    note(differs(|a, b| a.metadata == b.metadata), FieldChange::Metadata(after.metadata.clone()));
    note(differs(|a, b| a.disabled == b.disabled), FieldChange::Disabled(after.disabled.clone()));
    note(differs(|a, b| a.forward_query == b.forward_query), FieldChange::ForwardQuery(after.forward_query));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LinkClicked, LinkCreated, LinkDeleted, LinkUpdated};
    use crate::{Code, Owner};

    fn code() -> Code {
        Code::parse("promo").expect("valid")
    }

    fn key() -> KeyId {
        KeyId::parse("k1").expect("valid")
    }

    fn spec(target: &str) -> LinkSpec {
        LinkSpec::new(TargetUrl::parse(target).expect("valid"))
    }

    fn updated(spec: LinkSpec, at: i64) -> Event {
        Event::Updated(LinkUpdated { code: code(), spec, updated_at: Timestamp::from_millis(at), key_id: Some(key()) })
    }

    #[test]
    fn a_links_life_is_told_field_by_field() {
        let created = spec("https://example.com/a");
        let mut retargeted = created.clone();
        retargeted.target = TargetUrl::parse("https://example.com/b").expect("valid");
        retargeted.tags = Tags::parse(vec!["spring".into()]).expect("valid");
        let mut disabled = retargeted.clone();
        disabled.disabled = Some(DisabledReason::parse("abuse".into()).expect("valid"));
        let events = [
            Event::Created(LinkCreated {
                code: code(),
                owner: Owner::admin(),
                spec: created.clone(),
                custom_alias: true,
                created_at: Timestamp::from_millis(1),
                key_id: Some(key()),
            }),
            Event::Clicked(LinkClicked::new(code(), Timestamp::from_millis(2), None, None, None)),
            updated(retargeted.clone(), 3),
            updated(disabled.clone(), 4),
            updated(retargeted.clone(), 5),
            Event::Deleted(LinkDeleted { code: code(), deleted_at: Timestamp::from_millis(6), key_id: None }),
        ];
        let mut teller = HistoryTeller::default();
        let changes: Vec<Change> = events.iter().filter_map(|event| teller.tell(event)).collect();
        let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::Created, ChangeKind::Updated, ChangeKind::Disabled, ChangeKind::Enabled, ChangeKind::Deleted]
        );
        assert_eq!(changes[0].fields.len(), 8, "a creation tells every field");
        assert_eq!(
            changes[1].fields,
            [FieldChange::Target(retargeted.target.clone()), FieldChange::Tags(retargeted.tags)]
        );
        assert_eq!(changes[2].fields, [FieldChange::Disabled(disabled.disabled)]);
        assert_eq!(changes[3].fields, [FieldChange::Disabled(None)]);
        assert!(changes[4].fields.is_empty() && changes[4].key_id.is_none());
        assert_eq!(changes.iter().map(|c| c.at.as_millis()).collect::<Vec<_>>(), [1, 3, 4, 5, 6]);

        let mut from_second_page = HistoryTeller::after(&events[2]);
        assert_eq!(from_second_page.tell(&events[3]), Some(changes[2].clone()));
    }
}
