//! Codes, aliases, owners, key ids and roles: parsing never panics, and what parses round-trips.
#![no_main]

use kurz_domain::{Code, KeyId, Owner, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(alias) = Code::parse_alias(input) {
        assert_eq!(Code::parse(alias.as_str()).as_ref(), Ok(&alias), "an alias is a code");
    }
    if let Ok(code) = Code::parse(input) {
        assert_eq!(code.as_str(), input);
    }
    if let Ok(owner) = Owner::parse(input) {
        assert_eq!(owner.as_str(), input);
    }
    if let Ok(id) = KeyId::parse(input) {
        assert_eq!(id.as_str(), input);
    }
    if let Ok(role) = Role::parse(input) {
        assert_eq!(role.as_str(), input);
    }
});
