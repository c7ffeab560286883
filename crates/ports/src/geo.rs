//! Where a visitor's address is, by a GeoIP database the operator provides.

use std::net::IpAddr;

/// A place as a GeoIP database names it: ISO 3166-1 alpha-2 country code, region and city in
/// English. Any part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

/// Looks addresses up. Called off the request path, once per click; an address the database does
/// not know (or a private one) is an unknown place, not an error.
pub trait GeoLookup: Send + Sync + std::fmt::Debug {
    fn place(&self, address: IpAddr) -> Place;
}
