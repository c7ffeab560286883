//! The Kurz domain: what a short link is, which commands it accepts, which events it emits and how
//! read models are folded from those events.
//!
//! Everything here is pure: time, randomness and stored state come in as arguments, so every rule can
//! be tested without I/O and the same fold serves the projector, a rebuild and every storage adapter.

pub mod access;
pub mod aggregate;
pub mod analytics;
pub mod code;
pub mod code_generator;
pub mod counts;
pub mod event;
pub mod history;
pub mod hll;
pub mod link;
pub mod listing;
pub mod orphans;
pub mod stats;
pub mod target_policy;
pub mod target_url;
pub mod time;

pub use access::{Actor, KeyId, Owner, Permission, Role};
pub use aggregate::{Command, Rejection, decide, evolve};
pub use code::{Code, CodeError, CodeRef};
pub use code_generator::{CodeGenerator, CodeKey};
pub use event::{ClickDetails, ClickFields, ClickText, Event, LinkClicked, LinkCreated, LinkDeleted, LinkUpdated};
pub use link::{
    Admission, Availability, DisabledReason, Link, LinkSpec, MaxClicks, Metadata, RedirectFacts, RedirectStatus, Tags,
};
pub use target_policy::{DomainSet, TargetPolicy, TargetRefusal};
pub use target_url::{TargetUrl, TargetUrlError};
pub use time::{Day, DayRange, Timestamp};
