//! Who may do what: API keys' owners and roles, and the rule that a key sees only its owner's links.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub const MAX_OWNER_LEN: usize = 64;
pub const MAX_KEY_ID_LEN: usize = 32;

/// Whom a link belongs to. Several keys may share an owner, so keys rotate without losing links.
/// 1–64 characters of `[A-Za-z0-9._@-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Owner(CompactString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {max} characters of A-Z, a-z, 0-9, '.', '_', '@' and '-'", max = MAX_OWNER_LEN)]
pub struct OwnerError;

impl Owner {
    /// The owner of the bootstrap admin key, and of every link created before links had owners.
    pub const ADMIN: &'static str = "admin";

    pub fn parse(input: &str) -> Result<Self, OwnerError> {
        let valid = (1..=MAX_OWNER_LEN).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        if valid { Ok(Self(input.into())) } else { Err(OwnerError) }
    }

    pub fn admin() -> Self {
        Self(Self::ADMIN.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The public identifier of an API key: shown in listings, recorded on the events it caused, never
/// enough to authenticate. 1–32 characters of `[a-z0-9]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(CompactString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {max} characters of a-z and 0-9", max = MAX_KEY_ID_LEN)]
pub struct KeyIdError;

impl KeyId {
    pub fn parse(input: &str) -> Result<Self, KeyIdError> {
        let valid = (1..=MAX_KEY_ID_LEN).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid { Ok(Self(input.into())) } else { Err(KeyIdError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Everything: every owner's links, and key management.
    Admin,
    /// Creates links, and reads and manages its owner's links.
    User,
    /// Reports clicks (`POST /v1/clicks`) and nothing else: for edge services.
    Ingest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be admin, user or ingest")]
pub struct RoleError;

impl Role {
    pub fn parse(input: &str) -> Result<Self, RoleError> {
        match input {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            "ingest" => Ok(Self::Ingest),
            _ => Err(RoleError),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
            Self::Ingest => "ingest",
        }
    }

    pub const fn permits(self, permission: Permission) -> bool {
        match self {
            Self::Admin => true,
            Self::User => matches!(permission, Permission::WriteLinks | Permission::ReadLinks),
            Self::Ingest => matches!(permission, Permission::RecordClicks),
        }
    }
}

/// The kinds of request a role may or may not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Create, update, disable and delete links.
    WriteLinks,
    /// Read links and their statistics.
    ReadLinks,
    /// Report clicks seen elsewhere.
    RecordClicks,
    /// Create, list and revoke API keys; act for any owner.
    ManageKeys,
    /// Read hits on codes that name no live link (every owner's: admins only).
    ReadOrphanVisits,
}

/// The key behind a request, as far as the domain cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub key_id: KeyId,
    pub owner: Owner,
    pub role: Role,
}

impl Actor {
    /// An admin sees every owner's links; anyone else only their owner's. A link the actor may
    /// not see is answered as missing, so keys cannot probe which codes exist.
    pub fn sees(&self, owner: &Owner) -> bool {
        self.role == Role::Admin || self.owner == *owner
    }

    /// The owner a new link gets: the actor's own unless an admin names another.
    pub fn owner_for_new_link(&self, requested: Option<Owner>) -> Result<Owner, ForeignOwner> {
        match requested {
            None => Ok(self.owner.clone()),
            Some(owner) if owner == self.owner || self.role == Role::Admin => Ok(owner),
            Some(_) => Err(ForeignOwner),
        }
    }

    /// Whose links a list shows: the actor's own; an admin's lists every owner's unless it names
    /// one (`None`: every owner).
    pub fn list_scope(&self, requested: Option<Owner>) -> Result<Option<Owner>, ForeignList> {
        match requested {
            None if self.role == Role::Admin => Ok(None),
            None => Ok(Some(self.owner.clone())),
            Some(owner) if self.sees(&owner) => Ok(Some(owner)),
            Some(_) => Err(ForeignList),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only an admin key may create links for another owner")]
pub struct ForeignOwner;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only an admin key may list another owner's links")]
pub struct ForeignList;

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(owner: &str, role: Role) -> Actor {
        Actor { key_id: KeyId::parse("k1").expect("valid"), owner: Owner::parse(owner).expect("valid"), role }
    }

    #[test]
    fn owners_and_key_ids_are_bounded_and_plain() {
        assert!(Owner::parse("team-growth@example.com").is_ok());
        assert!(Owner::parse("").is_err());
        assert!(Owner::parse(&"a".repeat(MAX_OWNER_LEN + 1)).is_err());
        assert!(Owner::parse("a b").is_err());
        assert!(KeyId::parse("0a9z").is_ok());
        assert!(KeyId::parse("ABC").is_err());
        assert!(KeyId::parse(&"a".repeat(MAX_KEY_ID_LEN + 1)).is_err());
    }

    #[test]
    fn each_role_has_its_permissions() {
        use Permission::*;
        for permission in [WriteLinks, ReadLinks, RecordClicks, ManageKeys, ReadOrphanVisits] {
            assert!(Role::Admin.permits(permission));
        }
        assert!(!Role::User.permits(ReadOrphanVisits) && !Role::Ingest.permits(ReadOrphanVisits));
        assert!(Role::User.permits(WriteLinks) && Role::User.permits(ReadLinks));
        assert!(!Role::User.permits(RecordClicks) && !Role::User.permits(ManageKeys));
        assert!(Role::Ingest.permits(RecordClicks));
        assert!(!Role::Ingest.permits(ReadLinks) && !Role::Ingest.permits(WriteLinks));
        for role in [Role::Admin, Role::User, Role::Ingest] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
    }

    #[test]
    fn only_admins_see_or_create_for_other_owners() {
        let alice = actor("alice", Role::User);
        let bob = Owner::parse("bob").expect("valid");
        assert!(alice.sees(&alice.owner) && !alice.sees(&bob));
        assert!(actor("root", Role::Admin).sees(&bob));
        assert_eq!(alice.owner_for_new_link(None), Ok(alice.owner.clone()));
        assert_eq!(alice.owner_for_new_link(Some(bob.clone())), Err(ForeignOwner));
        assert_eq!(actor("root", Role::Admin).owner_for_new_link(Some(bob.clone())), Ok(bob.clone()));
    }

    #[test]
    fn lists_show_the_actors_own_links_and_admins_any_owners() {
        let alice = actor("alice", Role::User);
        let bob = Owner::parse("bob").expect("valid");
        assert_eq!(alice.list_scope(None), Ok(Some(alice.owner.clone())));
        assert_eq!(alice.list_scope(Some(alice.owner.clone())), Ok(Some(alice.owner.clone())));
        assert_eq!(alice.list_scope(Some(bob.clone())), Err(ForeignList));
        let root = actor("root", Role::Admin);
        assert_eq!(root.list_scope(None), Ok(None));
        assert_eq!(root.list_scope(Some(bob.clone())), Ok(Some(bob)));
    }
}
