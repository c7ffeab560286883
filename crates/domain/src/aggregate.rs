//! The link aggregate: `decide` turns a command into events against the current state, `evolve`
//! folds an event into the state. Both are pure.

use crate::access::{Actor, KeyId, Owner};
use crate::code::Code;
use crate::event::{Event, LinkClicked, LinkCreated, LinkDeleted, LinkUpdated};
use crate::link::{DisabledReason, Link, LinkSpec, MaxClicks, Metadata, RedirectStatus, Tags};
use crate::target_url::TargetUrl;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create { code: Code, custom_alias: bool, owner: Owner, spec: LinkSpec, key_id: Option<KeyId> },
    Update { code: Code, changes: LinkChanges, by: Actor },
    Delete { code: Code, by: Actor },
    RecordClick(LinkClicked),
}

impl Command {
    pub fn code(&self) -> &Code {
        match self {
            Self::Create { code, .. } | Self::Update { code, .. } | Self::Delete { code, .. } => code,
            Self::RecordClick(click) => &click.code,
        }
    }
}

/// How far a reported click's time may lie ahead of the receiver's clock (the reporter's clock may
/// run ahead).
pub const CLICK_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// How old a reported click may be: edge logs arrive late, and imports bring a link's history from
/// elsewhere, but not from further back than this.
pub const MAX_CLICK_AGE_MS: i64 = 400 * 86_400_000;

/// A partial update: `None` leaves a field as it is; for optional fields `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkChanges {
    pub target: Option<TargetUrl>,
    pub expires_at: Option<Option<Timestamp>>,
    pub max_clicks: Option<Option<MaxClicks>>,
    pub redirect_status: Option<RedirectStatus>,
    pub tags: Option<Tags>,
    pub metadata: Option<Metadata>,
    /// `Some(Some(reason))` switches the link off, `Some(None)` on again.
    pub disabled: Option<Option<DisabledReason>>,
    pub forward_query: Option<bool>,
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
            disabled: self.disabled.unwrap_or_else(|| spec.disabled.clone()),
            forward_query: self.forward_query.unwrap_or(spec.forward_query),
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
    #[error("a click's time must lie within the last 400 days and not in the future")]
    ClickTimeOutOfRange,
    #[error("target_url {0}")]
    TargetRefused(#[from] crate::target_policy::TargetRefusal),
}

/// Decides what happens when `command` meets `state` at `now`.
pub fn decide(state: Option<&Link>, command: Command, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::Create { code, custom_alias, owner, spec, key_id } => {
            if state.is_some() {
                return Err(Rejection::AlreadyExists(code));
            }
            ensure_future_expiry(&spec, now)?;
            Ok(vec![Event::Created(LinkCreated { code, owner, spec, custom_alias, created_at: now, key_id })])
        }
        Command::Update { code, changes, by } => {
            let link = live(visible(state, &by), code)?;
            let spec = changes.applied_to(&link.spec);
            if spec == link.spec {
                return Ok(Vec::new());
            }
            if spec.expires_at != link.spec.expires_at {
                ensure_future_expiry(&spec, now)?;
            }
            let key_id = Some(by.key_id);
            Ok(vec![Event::Updated(LinkUpdated { code: link.code.clone(), spec, updated_at: now, key_id })])
        }
        Command::Delete { code, by } => match visible(state, &by) {
            None => Err(Rejection::NotFound(code)),
            // Deleting twice is a retry, not a mistake: nothing more happens.
            Some(link) if link.deleted_at.is_some() => Ok(Vec::new()),
            Some(link) => {
                let key_id = Some(by.key_id);
                Ok(vec![Event::Deleted(LinkDeleted { code: link.code.clone(), deleted_at: now, key_id })])
            }
        },
        // Clicks are reported after the fact (edge logs), so a link deleted since still counts them.
        Command::RecordClick(click) => {
            if state.is_none() {
                return Err(Rejection::NotFound(click.code));
            }
            let at = click.clicked_at.as_millis();
            let earliest = now.as_millis().saturating_sub(MAX_CLICK_AGE_MS);
            if at < earliest || at > now.as_millis().saturating_add(CLICK_CLOCK_SKEW_MS) {
                return Err(Rejection::ClickTimeOutOfRange);
            }
            Ok(vec![Event::Clicked(click)])
        }
    }
}

/// The link as `actor` may see it: another owner's link is as good as missing.
fn visible<'a>(state: Option<&'a Link>, actor: &Actor) -> Option<&'a Link> {
    state.filter(|link| actor.sees(&link.owner))
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
            owner: created.owner.clone(),
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

    fn admin() -> Actor {
        Actor { key_id: KeyId::parse("k1").expect("valid"), owner: Owner::admin(), role: crate::Role::Admin }
    }

    fn create(code: Code, custom_alias: bool, spec: LinkSpec) -> Command {
        Command::Create { code, custom_alias, owner: Owner::admin(), spec, key_id: None }
    }

    fn fold(events: &[Event]) -> Option<Link> {
        events.iter().fold(None, evolve)
    }

    fn created() -> Vec<Event> {
        decide(None, create(code(), true, spec("https://a.example")), at(10)).expect("created")
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
        let again = create(code(), true, spec("https://b.example"));
        assert_eq!(decide(link.as_ref(), again.clone(), at(11)), Err(Rejection::AlreadyExists(code())));
        events.extend(decide(link.as_ref(), Command::Delete { code: code(), by: admin() }, at(12)).expect("deleted"));
        assert_eq!(decide(fold(&events).as_ref(), again, at(13)), Err(Rejection::AlreadyExists(code())));
    }

    #[test]
    fn expiry_must_lie_in_the_future() {
        let mut past = spec("https://a.example");
        past.expires_at = Some(at(10));
        let command = create(code(), false, past);
        assert_eq!(decide(None, command, at(10)), Err(Rejection::ExpiryNotInFuture));
        let link = fold(&created());
        let changes = LinkChanges { expires_at: Some(Some(at(5))), ..LinkChanges::default() };
        assert_eq!(
            decide(link.as_ref(), Command::Update { code: code(), changes, by: admin() }, at(20)),
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
        events.extend(
            decide(fold(&events).as_ref(), Command::Update { code: code(), changes, by: admin() }, at(20)).expect("ok"),
        );
        let Some(Event::Updated(updated)) = events.last() else { panic!("expected an update") };
        assert_eq!(updated.spec.target.as_str(), "https://b.example/");
        assert_eq!(updated.spec.max_clicks.map(MaxClicks::get), Some(3));
        let clear = LinkChanges { max_clicks: Some(None), ..LinkChanges::default() };
        events.extend(
            decide(fold(&events).as_ref(), Command::Update { code: code(), changes: clear, by: admin() }, at(30))
                .expect("ok"),
        );
        let link = fold(&events).expect("exists");
        assert_eq!((link.spec.max_clicks, link.updated_at, link.created_at), (None, at(30), at(10)));
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let link = fold(&created());
        let same = LinkChanges { redirect_status: Some(RedirectStatus::Found), ..LinkChanges::default() };
        assert_eq!(
            decide(link.as_ref(), Command::Update { code: code(), changes: same, by: admin() }, at(20)),
            Ok(vec![])
        );
    }

    #[test]
    fn missing_and_deleted_links_refuse_updates() {
        let update = Command::Update { code: code(), changes: LinkChanges::default(), by: admin() };
        assert_eq!(decide(None, update.clone(), at(1)), Err(Rejection::NotFound(code())));
        let mut events = created();
        events.extend(
            decide(fold(&events).as_ref(), Command::Delete { code: code(), by: admin() }, at(12)).expect("deleted"),
        );
        assert_eq!(decide(fold(&events).as_ref(), update, at(13)), Err(Rejection::Deleted(code())));
    }

    #[test]
    fn delete_is_idempotent_and_keeps_the_first_deletion_time() {
        let mut events = created();
        events.extend(
            decide(fold(&events).as_ref(), Command::Delete { code: code(), by: admin() }, at(12)).expect("deleted"),
        );
        assert_eq!(decide(fold(&events).as_ref(), Command::Delete { code: code(), by: admin() }, at(13)), Ok(vec![]));
        assert_eq!(
            decide(None, Command::Delete { code: code(), by: admin() }, at(13)),
            Err(Rejection::NotFound(code()))
        );
        // A replayed deletion does not move the deletion time.
        events.push(Event::Deleted(LinkDeleted { code: code(), deleted_at: at(99), key_id: None }));
        assert_eq!(fold(&events).expect("exists").deleted_at, Some(at(12)));
    }

    #[test]
    fn clicks_need_a_link_but_not_a_live_one() {
        let click = LinkClicked::new(code(), at(15), None, None, None);
        assert_eq!(decide(None, Command::RecordClick(click.clone()), at(16)), Err(Rejection::NotFound(code())));
        let mut events = created();
        events.extend(
            decide(fold(&events).as_ref(), Command::Delete { code: code(), by: admin() }, at(12)).expect("deleted"),
        );
        let link = fold(&events);
        assert_eq!(decide(link.as_ref(), Command::RecordClick(click.clone()), at(16)), Ok(vec![Event::Clicked(click)]));
    }

    #[test]
    fn events_for_unknown_links_are_ignored_by_the_fold() {
        let orphan = Event::Deleted(LinkDeleted { code: code(), deleted_at: at(1), key_id: None });
        assert_eq!(fold(&[orphan]), None);
    }
}

#[cfg(test)]
mod access_and_bounds {
    use super::*;
    use crate::Role;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn actor(owner: &str, role: Role) -> Actor {
        Actor { key_id: KeyId::parse("k2").expect("valid"), owner: Owner::parse(owner).expect("valid"), role }
    }

    fn alices_link() -> Option<Link> {
        let code = Code::parse("promo").expect("valid");
        let spec = LinkSpec::new(TargetUrl::parse("https://a.example").expect("valid"));
        let owner = Owner::parse("alice").expect("valid");
        let command = Command::Create { code, custom_alias: true, owner, spec, key_id: None };
        decide(None, command, at(1_000_000)).expect("created").iter().fold(None, evolve)
    }

    #[test]
    fn another_owners_link_is_answered_as_missing() {
        let link = alices_link();
        let code = Code::parse("promo").expect("valid");
        for by in [actor("bob", Role::User), actor("bob", Role::Ingest)] {
            let delete = Command::Delete { code: code.clone(), by: by.clone() };
            assert_eq!(decide(link.as_ref(), delete, at(2_000_000)), Err(Rejection::NotFound(code.clone())));
            let update = Command::Update { code: code.clone(), changes: LinkChanges::default(), by };
            assert_eq!(decide(link.as_ref(), update, at(2_000_000)), Err(Rejection::NotFound(code.clone())));
        }
        let by = actor("root", Role::Admin);
        let events = decide(link.as_ref(), Command::Delete { code, by }, at(2_000_000)).expect("admin deletes");
        let Some(Event::Deleted(deleted)) = events.first() else { panic!("a deletion") };
        assert_eq!(deleted.key_id, Some(KeyId::parse("k2").expect("valid")), "the event names the key");
    }

    #[test]
    fn disabling_and_enabling_are_updates_of_the_spec() {
        let link = alices_link();
        let code = Code::parse("promo").expect("valid");
        let by = actor("alice", Role::User);
        let off = LinkChanges { disabled: Some(Some(DisabledReason::default())), ..LinkChanges::default() };
        let events =
            decide(link.as_ref(), Command::Update { code: code.clone(), changes: off, by: by.clone() }, at(2_000_000))
                .expect("disabled");
        let disabled = events.iter().fold(link, evolve);
        assert!(disabled.as_ref().is_some_and(|l| l.spec.disabled.is_some()));
        let on = LinkChanges { disabled: Some(None), ..LinkChanges::default() };
        let events = decide(disabled.as_ref(), Command::Update { code, changes: on, by }, at(3_000_000)).expect("on");
        assert!(events.iter().fold(disabled, evolve).is_some_and(|l| l.spec.disabled.is_none()));
    }

    #[test]
    fn a_reported_click_lies_within_the_last_400_days_and_not_ahead() {
        let link = alices_link();
        let code = Code::parse("promo").expect("valid");
        let now = at(MAX_CLICK_AGE_MS + 10_000_000);
        let click = |millis| Command::RecordClick(LinkClicked::new(code.clone(), at(millis), None, None, None));
        assert!(decide(link.as_ref(), click(5_000_000), now).is_err());
        assert!(decide(link.as_ref(), click(10_000_000), now).is_ok(), "before the link existed: an import");
        assert_eq!(decide(link.as_ref(), click(9_999_999), now), Err(Rejection::ClickTimeOutOfRange));
        assert_eq!(decide(link.as_ref(), click(i64::MIN), now), Err(Rejection::ClickTimeOutOfRange));
        let ahead = now.as_millis() + CLICK_CLOCK_SKEW_MS;
        assert!(decide(link.as_ref(), click(ahead), now).is_ok());
        assert_eq!(decide(link.as_ref(), click(ahead + 1), now), Err(Rejection::ClickTimeOutOfRange));
        assert_eq!(decide(link.as_ref(), click(i64::MAX), now), Err(Rejection::ClickTimeOutOfRange));
    }
}
