//! Target URLs: parsing never panics, a parsed target parses to itself again, and the target
//! policy answers for every target.
#![no_main]

use kurz_domain::target_policy::DEFAULT_SHORTENERS;
use kurz_domain::{DomainSet, TargetPolicy, TargetUrl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(target) = TargetUrl::parse(input) else { return };
    assert_eq!(TargetUrl::parse(target.as_str()).as_ref(), Ok(&target), "normalisation is idempotent");
    assert!(!target.host().is_empty());
    let policy = TargetPolicy {
        own_hosts: DomainSet::new(["kurz.example"]),
        shorteners: DomainSet::new(DEFAULT_SHORTENERS),
        blocklist: DomainSet::new(["blocked.example", "com"]),
        allow_private: false,
    };
    let _ = policy.check(&target);
});
