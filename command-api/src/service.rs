//! The command handler: load state, let the domain decide, append, wait until the read side shows it.

use std::sync::Arc;

use kurz_domain::aggregate::{LinkChanges, ensure_future_expiry};
use kurz_domain::{Actor, Code, Command, Event, KeyId, Link, LinkClicked, LinkSpec, Owner, Rejection, decide, evolve};
use kurz_ports::{
    CreationLog, EventLog, IdempotencyStore, InfraError, LinkChangeListener, LogRecord, Position, ReadStore,
    Reservation, partition_for,
};
use kurz_service_kit::Clock;
use kurz_service_kit::targets::TargetRules;
use tokio::sync::{Mutex, MutexGuard};

use crate::codes::CodeAllocator;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// One item of a batch was refused, and with it the whole batch.
    #[error("item {index}: {rejection}")]
    InBatch { index: usize, rejection: Rejection },
    /// The `Idempotency-Key` was first used for another request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// The first request with this `Idempotency-Key` has not finished yet.
    #[error("a request with this Idempotency-Key is still being served")]
    IdempotentRequestInProgress,
}

/// How long an `Idempotency-Key` holds: a retry within it gets the first answer.
pub const IDEMPOTENCY_WINDOW: std::time::Duration = std::time::Duration::from_hours(24);

/// How long a click batch sent with an `Idempotency-Key` holds the key while it is being appended:
/// longer than any request takes. A retry meanwhile is answered 409; after it, a batch that never
/// finished (its server died, or the broker's answer was lost) may be appended again.
pub const CLICKS_IN_PROGRESS: std::time::Duration = std::time::Duration::from_mins(2);

/// What a batch of clicks came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedClicks {
    pub accepted: usize,
    /// The batch was recorded by an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
}

/// A created link, and whether this request made it or replays an earlier one's answer.
#[derive(Debug)]
pub struct Created {
    pub link: Link,
    pub replayed: bool,
}

/// A create request after parsing: the alias, if the caller chose one, and the specification.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub alias: Option<Code>,
    pub owner: Owner,
    pub spec: LinkSpec,
}

impl NewLink {
    /// What the request asks for, as a digest: the same request (however its JSON was written)
    /// gives the same fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let canonical = serde_json::to_vec(&(&self.alias, &self.owner, &self.spec)).expect("a request serialises");
        sha2::Sha256::digest(canonical).into()
    }
}

/// Whether `link`, found at the code an idempotency key reserved, is the one `new` made. A
/// generated code was issued for that reservation alone, so its link is, even if updated since,
/// unless someone chose the same text as an alias. A chosen alias may have been someone else's
/// link before the request tried it: only a link that is what the request asked for is its own.
fn is_ours(new: &NewLink, link: &Link) -> bool {
    link.owner == new.owner
        && match &new.alias {
            None => !link.custom_alias,
            Some(_) => link.custom_alias && link.spec == new.spec,
        }
}

/// Serialises commands on one link within this process, so each decides on the state its
/// predecessor left. 1024 stripes keep unrelated links from waiting on each other.
const LOCK_STRIPES: u32 = 1024;

#[derive(Debug)]
pub struct CommandServiceParts {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn ReadStore>,
    /// Claims a new link's code and appends its creation.
    pub creations: Arc<dyn CreationLog>,
    pub codes: CodeAllocator,
    pub clock: Clock,
    /// Told about links a command changed (to evict cached copies), as the projector would be.
    pub listeners: Vec<Arc<dyn LinkChangeListener>>,
    /// Which targets links may point to.
    pub targets: Arc<TargetRules>,
    /// `Idempotency-Key` reservations, shared by every instance.
    pub idempotency: Arc<dyn IdempotencyStore>,
}

#[derive(Debug)]
pub struct CommandService {
    log: Arc<dyn EventLog>,
    store: Arc<dyn ReadStore>,
    creations: Arc<dyn CreationLog>,
    codes: CodeAllocator,
    clock: Clock,
    listeners: Vec<Arc<dyn LinkChangeListener>>,
    targets: Arc<TargetRules>,
    idempotency: Arc<dyn IdempotencyStore>,
    locks: Vec<Mutex<()>>,
}

impl CommandService {
    pub fn new(parts: CommandServiceParts) -> Self {
        let CommandServiceParts { log, store, creations, codes, clock, listeners, targets, idempotency } = parts;
        let locks = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Self { log, store, creations, codes, clock, listeners, targets, idempotency, locks }
    }

    pub fn now(&self) -> kurz_domain::Timestamp {
        self.clock.now()
    }

    pub async fn create(&self, new: NewLink, key_id: Option<KeyId>) -> Result<Link, CommandError> {
        let now = self.clock.now();
        self.check_new(&new, now)?;
        loop {
            // The permutation never repeats a code, but a custom alias may have taken it first.
            let code = match &new.alias {
                Some(alias) => alias.clone(),
                None => self.codes.next_code().await?,
            };
            if let Some(link) = self.append_creation(&new, key_id.clone(), code, now).await? {
                return Ok(link);
            }
            if let Some(alias) = &new.alias {
                return Err(Rejection::AlreadyExists(alias.clone()).into());
            }
        }
    }

    /// A create sent with an `Idempotency-Key` (`scoped_key`: the key within its owner). The key
    /// is reserved with the code before anything is appended, so a retry, on any instance and
    /// after any failure, finds the code: it answers that link, or makes it if the first attempt
    /// failed before appending, and never makes a second one. The same key with another request
    /// is refused.
    pub async fn create_idempotently(
        &self,
        new: NewLink,
        key_id: Option<KeyId>,
        scoped_key: &str,
    ) -> Result<Created, CommandError> {
        let now = self.clock.now();
        self.check_new(&new, now)?;
        let fingerprint = new.fingerprint();
        loop {
            let code = match &new.alias {
                Some(alias) => alias.clone(),
                None => self.codes.next_code().await?,
            };
            let reservation = Reservation { fingerprint, code: code.clone() };
            if let Some(held) = self.idempotency.reserve(scoped_key, &reservation, now, IDEMPOTENCY_WINDOW).await? {
                if held.fingerprint != fingerprint {
                    return Err(CommandError::IdempotencyKeyReused);
                }
                return self.replay(&new, key_id, held.code).await;
            }
            match self.append_creation(&new, key_id.clone(), code.clone(), now).await {
                Ok(Some(link)) => return Ok(Created { link, replayed: false }),
                // The code is claimed. A generated code was issued for this reservation alone:
                // a retry of this very request that found it claimed it (then the link is ours),
                // or, rarely, someone chose the same text as an alias (then try another code). A
                // chosen alias was someone else's: the key is given up and the alias is taken.
                Ok(None) => {
                    if new.alias.is_none() {
                        match self.store.link(&code).await? {
                            Some(link) if is_ours(&new, &link) => return Ok(Created { link, replayed: true }),
                            Some(_) => {}
                            // Claimed but not readable yet: the retry is appending it right now.
                            None => return Err(CommandError::IdempotentRequestInProgress),
                        }
                    }
                    self.idempotency.release(scoped_key, &reservation).await?;
                    if let Some(alias) = &new.alias {
                        return Err(Rejection::AlreadyExists(alias.clone()).into());
                    }
                }
                Err(error) => {
                    let appended_maybe = matches!(&error, CommandError::Infra(e) if e.outcome_unknown());
                    if !appended_maybe {
                        self.idempotency.release(scoped_key, &reservation).await?;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// A retry of a create whose key holds `code`: that link if it is there (and is what this
    /// request asked for), else the first attempt failed before appending and this one makes it.
    async fn replay(&self, new: &NewLink, key_id: Option<KeyId>, code: Code) -> Result<Created, CommandError> {
        if let Some(link) = self.store.link(&code).await? {
            return if is_ours(new, &link) {
                Ok(Created { link, replayed: true })
            } else {
                Err(Rejection::AlreadyExists(code).into())
            };
        }
        match self.append_creation(new, key_id, code, self.clock.now()).await? {
            Some(link) => Ok(Created { link, replayed: false }),
            // Claimed but not yet readable: the first attempt is appending it right now.
            None => Err(CommandError::IdempotentRequestInProgress),
        }
    }

    /// Refuses a past expiry or a refused target before a code is spent on the request.
    fn check_new(&self, new: &NewLink, now: kurz_domain::Timestamp) -> Result<(), CommandError> {
        ensure_future_expiry(&new.spec, now)?;
        self.targets.current().check(&new.spec.target).map_err(Rejection::from)?;
        Ok(())
    }

    /// Claims `code` and appends the link's creation; `None` when the code is taken.
    async fn append_creation(
        &self,
        new: &NewLink,
        key_id: Option<KeyId>,
        code: Code,
        now: kurz_domain::Timestamp,
    ) -> Result<Option<Link>, CommandError> {
        let command = Command::Create {
            code: code.clone(),
            custom_alias: new.alias.is_some(),
            owner: new.owner.clone(),
            spec: new.spec.clone(),
            key_id,
        };
        let events = decide(None, command, now)?;
        let Some(positions) = self.creations.claim_and_append(&code, &events).await? else {
            return Ok(None);
        };
        self.show(&events, positions).await;
        metrics::counter!("links_created_total").increment(1);
        Ok(Some(fold(None, &events).expect("a creation yields a link")))
    }

    pub async fn update(&self, code: Code, changes: LinkChanges, by: Actor) -> Result<Link, CommandError> {
        if let Some(target) = &changes.target {
            self.targets.current().check(target).map_err(Rejection::from)?;
        }
        let _serialised = self.lock(&code).await;
        let state = self.store.link(&code).await?;
        let events = decide(state.as_ref(), Command::Update { code, changes, by }, self.clock.now())?;
        self.publish(&events).await?;
        Ok(fold(state, &events).expect("an update applies to an existing link"))
    }

    pub async fn delete(&self, code: Code, by: Actor) -> Result<(), CommandError> {
        let _serialised = self.lock(&code).await;
        let state = self.store.link(&code).await?;
        let events = decide(state.as_ref(), Command::Delete { code, by }, self.clock.now())?;
        self.publish(&events).await?;
        Ok(())
    }

    /// Records clicks reported by other services. All or nothing: one click for an unknown link
    /// refuses the batch, so a retry never double-counts the rest.
    pub async fn record_clicks(&self, clicks: Vec<LinkClicked>) -> Result<usize, CommandError> {
        let mut events = Vec::with_capacity(clicks.len());
        let mut known: std::collections::HashMap<Code, Option<Link>> = std::collections::HashMap::new();
        let now = self.clock.now();
        for (index, click) in clicks.into_iter().enumerate() {
            if !known.contains_key(&click.code) {
                known.insert(click.code.clone(), self.store.link(&click.code).await?);
            }
            let decided = decide(known[&click.code].as_ref(), Command::RecordClick(click), now);
            events.extend(decided.map_err(|rejection| CommandError::InBatch { index, rejection })?);
        }
        let count = events.len();
        self.log.append(&events).await?;
        metrics::counter!("clicks_reported_total").increment(count as u64);
        Ok(count)
    }

    /// As [`Self::record_clicks`], once per `Idempotency-Key`: a retry of a recorded batch appends
    /// nothing and is answered as the first was. The key is held while the batch is appended and
    /// marked done after: a retry while it is held is refused as in progress, and one after it lapsed
    /// unmarked (the first attempt's outcome unknown) is appended again, with the same event ids.
    pub async fn record_clicks_idempotently(
        &self,
        clicks: Vec<LinkClicked>,
        scoped_key: &str,
        fingerprint: [u8; 32],
    ) -> Result<RecordedClicks, CommandError> {
        let now = self.clock.now();
        let Some(first) = clicks.first() else { return Ok(RecordedClicks { accepted: 0, replayed: false }) };
        let reservation = Reservation { fingerprint, code: first.code.clone() };
        let done = format!("{scoped_key}/done");
        if let Some(held) = self.idempotency.held(&done, now).await? {
            if held.fingerprint != fingerprint {
                return Err(CommandError::IdempotencyKeyReused);
            }
            return Ok(RecordedClicks { accepted: clicks.len(), replayed: true });
        }
        if let Some(held) = self.idempotency.reserve(scoped_key, &reservation, now, CLICKS_IN_PROGRESS).await? {
            return Err(if held.fingerprint == fingerprint {
                CommandError::IdempotentRequestInProgress
            } else {
                CommandError::IdempotencyKeyReused
            });
        }
        match self.record_clicks(clicks).await {
            Ok(accepted) => {
                self.idempotency.reserve(&done, &reservation, now, IDEMPOTENCY_WINDOW).await?;
                Ok(RecordedClicks { accepted, replayed: false })
            }
            Err(error) => {
                let appended_maybe = matches!(&error, CommandError::Infra(e) if e.outcome_unknown());
                if !appended_maybe {
                    self.idempotency.release(scoped_key, &reservation).await?;
                }
                Err(error)
            }
        }
    }

    /// Appends durably, then shows the events at once.
    async fn publish(&self, events: &[Event]) -> Result<(), InfraError> {
        if events.is_empty() {
            return Ok(());
        }
        let positions = self.log.append(events).await?;
        self.show(events, positions).await;
        Ok(())
    }

    /// Folds appended events into the link rows (read-your-writes) and evicts cached copies. The
    /// projector folds the same events later, to the same result.
    async fn show(&self, events: &[Event], positions: Vec<Position>) {
        let records =
            positions.into_iter().zip(events).map(|(position, event)| LogRecord { position, event: Ok(event.clone()) });
        match self.store.apply_link_events(records.collect()).await {
            Ok(changed) => {
                for listener in &self.listeners {
                    listener.links_changed(&changed);
                }
            }
            // The events are durable and the projector will fold them; the caller may just not see
            // them for a moment.
            Err(error) => {
                metrics::counter!("command_read_model_failures_total").increment(1);
                tracing::warn!(%error, "answering before the read models show the command");
            }
        }
    }

    async fn lock(&self, code: &Code) -> MutexGuard<'_, ()> {
        self.locks[partition_for(code, LOCK_STRIPES) as usize].lock().await
    }
}

fn fold(state: Option<Link>, events: &[Event]) -> Option<Link> {
    events.iter().fold(state, evolve)
}
