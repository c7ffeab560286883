//! Which targets a link may point to. URL shorteners are a favourite tool of phishing and spam:
//! by default Kurz refuses targets inside the operator's network (loopback, private, link-local and
//! unique-local addresses, `localhost`), its own host (redirect loops), other shorteners (chains hide
//! the destination), and domains on the operator's blocklist.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::target_url::TargetUrl;

/// Well-known public shorteners, refused as targets unless the operator replaces this list.
pub const DEFAULT_SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "buff.ly",
    "cutt.ly",
    "goo.gl",
    "is.gd",
    "lnkd.in",
    "ow.ly",
    "rb.gy",
    "rebrand.ly",
    "s.id",
    "short.io",
    "shorturl.at",
    "t.co",
    "t.ly",
    "tiny.cc",
    "tinyurl.com",
    "v.gd",
];

/// Domain names matched by suffix: `example.com` covers `example.com` and `www.example.com`, not
/// `badexample.com`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSet(HashSet<String>);

impl DomainSet {
    /// Lower-cased entries; blank ones and leading dots are dropped.
    pub fn new<S: AsRef<str>>(domains: impl IntoIterator<Item = S>) -> Self {
        Self(
            domains
                .into_iter()
                .map(|d| d.as_ref().trim().trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
        )
    }

    /// The entry `host` falls under, if any. Costs one hash lookup per label of the host.
    pub fn matching<'a>(&'a self, host: &str) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let host = host.trim_end_matches('.');
        let mut suffix = host;
        loop {
            if let Some(entry) = self.0.get(suffix) {
                return Some(entry);
            }
            suffix = suffix.split_once('.')?.1;
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefusal {
    #[error("points into a private network ({0}); only public addresses may be targets")]
    PrivateAddress(String),
    #[error("points to localhost")]
    Localhost,
    #[error("points to this shortener itself ({0}), which would loop")]
    OwnHost(String),
    #[error("points to another URL shortener ({0}); link to the final destination instead")]
    Shortener(String),
    #[error("points to a blocked domain ({0})")]
    Blocked(String),
}

/// The rules a new or changed target must pass. Pure: the blocklist is read elsewhere and handed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Hosts Kurz itself answers on (from its public base URL).
    pub own_hosts: DomainSet,
    pub shorteners: DomainSet,
    pub blocklist: DomainSet,
    /// Targets in private networks are allowed (for a Kurz that only serves an intranet).
    pub allow_private: bool,
}

impl TargetPolicy {
    pub fn check(&self, target: &TargetUrl) -> Result<(), TargetRefusal> {
        let host = target.host();
        if !self.allow_private {
            if let Some(ip) = literal_address(host) {
                if !is_public(ip) {
                    return Err(TargetRefusal::PrivateAddress(host.to_owned()));
                }
            } else if host == "localhost" || host.ends_with(".localhost") {
                return Err(TargetRefusal::Localhost);
            }
        }
        if let Some(own) = self.own_hosts.matching(host).filter(|own| *own == host) {
            return Err(TargetRefusal::OwnHost(own.to_owned()));
        }
        if let Some(shortener) = self.shorteners.matching(host) {
            return Err(TargetRefusal::Shortener(shortener.to_owned()));
        }
        self.blocked(target).map_or(Ok(()), |domain| Err(TargetRefusal::Blocked(domain.to_owned())))
    }

    /// The blocklist entry a target falls under: such a link stops redirecting, whenever it was made.
    pub fn blocked(&self, target: &TargetUrl) -> Option<&str> {
        self.blocklist.matching(target.host())
    }
}

fn literal_address(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // RFC 6598 carrier-grade NAT
    let reserved = a >= 240 || a == 0;
    !(ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_broadcast() || shared || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let site_local = first & 0xffc0 == 0xfec0;
    !(ip.is_loopback() || ip.is_unspecified() || unique_local || link_local || site_local || ip.is_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> TargetUrl {
        TargetUrl::parse(url).expect("valid")
    }

    fn policy() -> TargetPolicy {
        TargetPolicy {
            own_hosts: DomainSet::new(["kurz.example"]),
            shorteners: DomainSet::new(DEFAULT_SHORTENERS),
            blocklist: DomainSet::new(["phish.example", ".Spam.Example."]),
            allow_private: false,
        }
    }

    #[test]
    fn private_and_local_targets_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/admin",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(matches!(policy().check(&target(url)), Err(TargetRefusal::PrivateAddress(_))), "{url}");
        }
        assert_eq!(policy().check(&target("http://localhost:8080/")), Err(TargetRefusal::Localhost));
        assert_eq!(policy().check(&target("http://app.localhost/")), Err(TargetRefusal::Localhost));
        assert_eq!(policy().check(&target("http://93.184.215.14/")), Ok(()));
        assert_eq!(policy().check(&target("http://[2606:4700::1111]/")), Ok(()));
        let intranet = TargetPolicy { allow_private: true, ..policy() };
        assert_eq!(intranet.check(&target("http://10.1.2.3/")), Ok(()));
    }

    #[test]
    fn own_host_shorteners_and_blocked_domains_are_refused() {
        assert_eq!(
            policy().check(&target("https://kurz.example/abc")),
            Err(TargetRefusal::OwnHost("kurz.example".into()))
        );
        assert_eq!(policy().check(&target("https://docs.kurz.example/")), Ok(()), "a sibling host is another site");
        assert_eq!(policy().check(&target("https://bit.ly/x")), Err(TargetRefusal::Shortener("bit.ly".into())));
        assert_eq!(
            policy().check(&target("https://login.phish.example/")),
            Err(TargetRefusal::Blocked("phish.example".into()))
        );
        assert_eq!(
            policy().check(&target("https://spam.example/")),
            Err(TargetRefusal::Blocked("spam.example".into()))
        );
        assert_eq!(policy().check(&target("https://notphish.example/")), Ok(()));
        assert_eq!(policy().check(&target("https://example.com/")), Ok(()));
    }

    #[test]
    fn an_empty_set_matches_nothing() {
        assert_eq!(DomainSet::default().matching("example.com"), None);
        assert_eq!(DomainSet::new(["", "  "]).len(), 0);
        assert_eq!(DomainSet::new(["com"]).matching("example.com"), Some("com"));
    }
}
