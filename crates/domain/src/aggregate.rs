//! The link aggregate: `decide` turns a command into events against the current state, `evolve`
//! folds an event into the state. Both are pure.

use crate::code::Code;
use crate::event::{Event, LinkClicked, LinkCreated, LinkDeleted, LinkUpdated};
use crate::link::{Link, LinkSpec, MaxClicks, Metadata, RedirectStatus, Tags};
use crate::target_url::TargetUrl;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create { code: Code, custom_alias: bool, spec: LinkSpec },
    Update { code: Code, changes: LinkChanges },
    Delete { code: Code },
    RecordClick(LinkClicked),
}

impl Command {
    pub fn code(&self) -> &Code {
        match self {
            Self::Create { code, .. } | Self::Update { code, .. } | Self::Delete { code } => code,
            Self::RecordClick(click) => &click.code,
        }
    }
}

/// A partial update: `None` leaves a field as it is; for optional fields `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkChanges {
    pub target: Option<TargetUrl>,
    pub expires_at: Option<Option<Timestamp>>,
    pub max_clicks: Option<Option<MaxClicks>>,
    pub redirect_status: Option<RedirectStatus>,
    pub tags: Option<Tags>,
    pub metadata: Option<Metadata>,
}

impl LinkChanges {
    fn applied_to(self, spec: &LinkSpec) -> LinkSpec {
        LinkSpec {
            target: self.target.unwrap_or_else(|| spec.target.clone()),
            expires_at: self.expires_at.unwrap_or(spec.expires_at),
            max_clicks: self.max_clicks.unwrap_or(spec.max_clicks),
            redirect_status: self.redirect_status.unwrap_or(spec.redirect_status),
            tags: self.tags.unwrap_or_else(|| spec.tags.clone()),
            metadata: self.metadata.unwrap_or_else(|| spec.metadata.clone()),
        }
    }
}

/// Why the domain refused a command. These are the caller's mistakes, never infrastructure failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("code {0} is already taken")]
    AlreadyExists(Code),
    #[error("no link has code {0}")]
    NotFound(Code),
    #[error("link {0} has been deleted")]
    Deleted(Code),
    #[error("expires_at must be in the future")]
    ExpiryNotInFuture,
}

/// Decides what happens when `command` meets `state` at `now`.
pub fn decide(state: Option<&Link>, command: Command, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::Create { code, custom_alias, spec } => {
            if state.is_some() {
                return Err(Rejection::AlreadyExists(code));
            }
            ensure_future_expiry(&spec, now)?;
            Ok(vec![Event::Created(LinkCreated { code, spec, custom_alias, created_at: now })])
        }
        Command::Update { code, changes } => {
            let link = live(state, code)?;
            let spec = changes.applied_to(&link.spec);
            if spec == link.spec {
                return Ok(Vec::new());
            }
            ensure_future_expiry(&spec, now)?;
            Ok(vec![Event::Updated(LinkUpdated { code: link.code.clone(), spec, updated_at: now })])
        }
        Command::Delete { code } => match state {
            None => Err(Rejection::NotFound(code)),
            // Deleting twice is a retry, not a mistake: nothing more happens.
            Some(link) if link.deleted_at.is_some() => Ok(Vec::new()),
            Some(link) => Ok(vec![Event::Deleted(LinkDeleted { code: link.code.clone(), deleted_at: now })]),
        },
        // Clicks are reported after the fact (edge logs), so a link deleted since still counts them.
        Command::RecordClick(click) => match state {
            None => Err(Rejection::NotFound(click.code)),
            Some(_) => Ok(vec![Event::Clicked(click)]),
        },
    }
}

fn live(state: Option<&Link>, code: Code) -> Result<&Link, Rejection> {
    match state {
        None => Err(Rejection::NotFound(code)),
        Some(link) if link.deleted_at.is_some() => Err(Rejection::Deleted(code)),
        Some(link) => Ok(link),
    }
}

/// A specification may only be given an expiry that lies in the future.
pub fn ensure_future_expiry(spec: &LinkSpec, now: Timestamp) -> Result<(), Rejection> {
    match spec.expires_at {
        Some(at) if at <= now => Err(Rejection::ExpiryNotInFuture),
        _ => Ok(()),
    }
}

/// Folds one event into a link's state. Events for a link that does not exist (other than its
/// creation) leave the state as it is, so a consumer that starts mid-stream cannot panic.
pub fn evolve(state: Option<Link>, event: &Event) -> Option<Link> {
    match event {
        Event::Created(created) => Some(state.unwrap_or_else(|| Link {
            code: created.code.clone(),
            spec: created.spec.clone(),
            custom_alias: created.custom_alias,
            created_at: created.created_at,
            updated_at: created.created_at,
            deleted_at: None,
        })),
        Event::Updated(updated) => {
            state.map(|link| Link { spec: updated.spec.clone(), updated_at: updated.updated_at, ..link })
        }
        Event::Deleted(deleted) => state.map(|link| Link {
            deleted_at: Some(link.deleted_at.unwrap_or(deleted.deleted_at)),
            updated_at: deleted.deleted_at,
            ..link
        }),
        Event::Clicked(_) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> Code {
        Code::parse("promo").expect("valid")
    }

    fn spec(target: &str) -> LinkSpec {
        LinkSpec::new(TargetUrl::parse(target).expect("valid"))
    }

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn fold(events: &[Event]) -> Option<Link> {
        events.iter().fold(None, evolve)
    }

    fn created() -> Vec<Event> {
        decide(None, Command::Create { code: code(), custom_alias: true, spec: spec("https://a.example") }, at(10))
            .expect("created")
    }

    #[test]
    fn create_then_fold_gives_the_link() {
        let link = fold(&created()).expect("exists");
        assert_eq!(link.code, code());
        assert_eq!(link.spec.target.as_str(), "https://a.example/");
        assert_eq!((link.created_at, link.updated_at, link.deleted_at), (at(10), at(10), None));
    }

    #[test]
    fn a_code_is_taken_once_even_after_deletion() {
        let mut events = created();
        let link = fold(&events);
        let again = Command::Create { code: code(), custom_alias: true, spec: spec("https://b.example") };
        assert_eq!(decide(link.as_ref(), again.clone(), at(11)), Err(Rejection::AlreadyExists(code())));
        events.extend(decide(link.as_ref(), Command::Delete { code: code() }, at(12)).expect("deleted"));
        assert_eq!(decide(fold(&events).as_ref(), again, at(13)), Err(Rejection::AlreadyExists(code())));
    }

    #[test]
    fn expiry_must_lie_in_the_future() {
        let mut past = spec("https://a.example");
        past.expires_at = Some(at(10));
        let command = Command::Create { code: code(), custom_alias: false, spec: past };
        assert_eq!(decide(None, command, at(10)), Err(Rejection::ExpiryNotInFuture));
        let link = fold(&created());
        let changes = LinkChanges { expires_at: Some(Some(at(5))), ..LinkChanges::default() };
        assert_eq!(
            decide(link.as_ref(), Command::Update { code: code(), changes }, at(20)),
            Err(Rejection::ExpiryNotInFuture)
        );
    }

    #[test]
    fn update_carries_the_whole_new_spec_and_clears_optional_fields() {
        let mut events = created();
        let changes = LinkChanges {
            target: Some(TargetUrl::parse("https://b.example").expect("valid")),
            max_clicks: Some(Some(MaxClicks::new(3).expect("valid"))),
            ..LinkChanges::default()
        };
        events.extend(decide(fold(&events).as_ref(), Command::Update { code: code(), changes }, at(20)).expect("ok"));
        let Some(Event::Updated(updated)) = events.last() else { panic!("expected an update") };
        assert_eq!(updated.spec.target.as_str(), "https://b.example/");
        assert_eq!(updated.spec.max_clicks.map(MaxClicks::get), Some(3));
        let clear = LinkChanges { max_clicks: Some(None), ..LinkChanges::default() };
        events.extend(
            decide(fold(&events).as_ref(), Command::Update { code: code(), changes: clear }, at(30)).expect("ok"),
        );
        let link = fold(&events).expect("exists");
        assert_eq!((link.spec.max_clicks, link.updated_at, link.created_at), (None, at(30), at(10)));
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let link = fold(&created());
        let same = LinkChanges { redirect_status: Some(RedirectStatus::Found), ..LinkChanges::default() };
        assert_eq!(decide(link.as_ref(), Command::Update { code: code(), changes: same }, at(20)), Ok(vec![]));
    }

    #[test]
    fn missing_and_deleted_links_refuse_updates() {
        let update = Command::Update { code: code(), changes: LinkChanges::default() };
        assert_eq!(decide(None, update.clone(), at(1)), Err(Rejection::NotFound(code())));
        let mut events = created();
        events.extend(decide(fold(&events).as_ref(), Command::Delete { code: code() }, at(12)).expect("deleted"));
        assert_eq!(decide(fold(&events).as_ref(), update, at(13)), Err(Rejection::Deleted(code())));
    }

    #[test]
    fn delete_is_idempotent_and_keeps_the_first_deletion_time() {
        let mut events = created();
        events.extend(decide(fold(&events).as_ref(), Command::Delete { code: code() }, at(12)).expect("deleted"));
        assert_eq!(decide(fold(&events).as_ref(), Command::Delete { code: code() }, at(13)), Ok(vec![]));
        assert_eq!(decide(None, Command::Delete { code: code() }, at(13)), Err(Rejection::NotFound(code())));
        // A replayed deletion does not move the deletion time.
        events.push(Event::Deleted(LinkDeleted { code: code(), deleted_at: at(99) }));
        assert_eq!(fold(&events).expect("exists").deleted_at, Some(at(12)));
    }

    #[test]
    fn clicks_need_a_link_but_not_a_live_one() {
        let click = LinkClicked::new(code(), at(15), None, None, None);
        assert_eq!(decide(None, Command::RecordClick(click.clone()), at(16)), Err(Rejection::NotFound(code())));
        let mut events = created();
        events.extend(decide(fold(&events).as_ref(), Command::Delete { code: code() }, at(12)).expect("deleted"));
        let link = fold(&events);
        assert_eq!(decide(link.as_ref(), Command::RecordClick(click.clone()), at(16)), Ok(vec![Event::Clicked(click)]));
    }

    #[test]
    fn events_for_unknown_links_are_ignored_by_the_fold() {
        let orphan = Event::Deleted(LinkDeleted { code: code(), deleted_at: at(1) });
        assert_eq!(fold(&[orphan]), None);
    }
}
