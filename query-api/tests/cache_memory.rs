//! The link cache is bounded in bytes: 10^5 links with 8 KiB targets (800 MB of targets) fill it
//! to its budget and no further. The only test of this binary: it reads the process's resident
//! memory, which a test running beside it would move.

use kurz_domain::{Code, Link, LinkSpec, Owner, TargetUrl, Timestamp};
use kurz_query_api::{CachedLink, LinkCache};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("linux");
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).expect("resident pages") * 4096
}

fn link(i: u32, target: &str) -> Link {
    Link {
        code: Code::parse(&format!("c{i:07}")).expect("valid"),
        owner: Owner::admin(),
        spec: LinkSpec::new(TargetUrl::parse(target).expect("valid")),
        custom_alias: false,
        created_at: Timestamp::from_millis(0),
        updated_at: Timestamp::from_millis(0),
        deleted_at: None,
    }
}

#[test]
fn links_with_8_kib_targets_stay_within_the_byte_budget() {
    const BUDGET: u64 = 64 << 20;
    let padding = "x".repeat(8 * 1024 - 40);
    let before = resident_bytes();
    let cache = LinkCache::new(BUDGET);
    for i in 0..100_000 {
        let link = link(i, &format!("https://example.com/{i}/{padding}"));
        cache.insert_unless_changed(&link.code, Some(CachedLink::new(&link, false)), cache.generation());
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(cache.weight() <= BUDGET, "weight {} over {BUDGET}", cache.weight());
    assert!(cache.len() < 10_000, "{} links of 8 KiB cannot fit in 64 MiB", cache.len());
    assert!(cache.len() > 6_000, "the budget is used: {} links", cache.len());
    // What the process holds, not only what the cache believes it weighs (the transient links of
    // the loop are freed and their memory reused).
    assert!(grown < BUDGET + (BUDGET / 2), "resident memory grew by {grown} bytes for a {BUDGET}-byte cache");
}
