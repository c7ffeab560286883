//! Redirect targets: absolute http(s) URLs only, normalised so equal targets compare equal.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

pub const MAX_LEN: usize = 8 * 1024;

/// An absolute `http` or `https` URL with a host, at most 8 KiB, without credentials, normalised
/// (lower-case scheme and host, IDNA host, default port dropped, `/` for an empty path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TargetUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetUrlError {
    #[error("is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("is not an absolute URL: {0}")]
    Malformed(String),
    #[error("scheme {0:?} is not allowed; use http or https")]
    Scheme(String),
    #[error("has no host")]
    MissingHost,
    #[error("must not contain a user name or password")]
    Credentials,
}

impl TargetUrl {
    pub fn parse(input: &str) -> Result<Self, TargetUrlError> {
        if input.len() > MAX_LEN {
            return Err(TargetUrlError::TooLong);
        }
        let url = Url::parse(input.trim()).map_err(|e| TargetUrlError::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetUrlError::Scheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(TargetUrlError::MissingHost);
        }
        // `https://bank.example@evil.example/` reads as the bank but goes to evil.example.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetUrlError::Credentials);
        }
        let normalised = String::from(url);
        if normalised.len() > MAX_LEN {
            return Err(TargetUrlError::TooLong);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host as normalised: a lower-case (IDNA) name, a dotted IPv4 address or a bracketed IPv6
    /// address.
    pub fn host(&self) -> &str {
        let after_scheme = self.0.split_once("://").map_or("", |(_, rest)| rest);
        if after_scheme.starts_with('[') {
            return after_scheme.find(']').map_or(after_scheme, |end| &after_scheme[..=end]);
        }
        let end = after_scheme.find(['/', ':', '?', '#']).unwrap_or(after_scheme.len());
        &after_scheme[..end]
    }
}

/// Where a redirect of a link with `forward_query` goes: `target` (a normalised target URL) with
/// the short URL's query string added to its own, before any fragment. The query is passed on as
/// the visitor sent it; no parameter is dropped or merged.
pub fn with_forwarded_query(target: &str, query: &str) -> String {
    if query.is_empty() {
        return target.to_owned();
    }
    let (base, fragment) = target.find('#').map_or((target, ""), |hash| target.split_at(hash));
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    let mut location = String::with_capacity(target.len() + query.len() + 1);
    location.push_str(base);
    location.push_str(separator);
    location.push_str(query);
    location.push_str(fragment);
    location
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TargetUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parsed(input: &str) -> String {
        TargetUrl::parse(input).expect("valid").0
    }

    #[test]
    fn normalises_scheme_host_and_default_port() {
        assert_eq!(parsed("HTTPS://Example.COM:443/Path?q=A#Frag"), "https://example.com/Path?q=A#Frag");
        assert_eq!(parsed("http://example.com:80"), "http://example.com/");
        assert_eq!(parsed("http://example.com:8080/x"), "http://example.com:8080/x");
        assert_eq!(parsed("  https://example.com/a b "), "https://example.com/a%20b");
        assert_eq!(parsed("https://bücher.example/"), "https://xn--bcher-kva.example/");
    }

    #[test]
    fn refuses_dangerous_and_relative_targets() {
        for (input, expected) in [
            ("javascript:alert(1)", TargetUrlError::Scheme("javascript".into())),
            ("data:text/html,<b>x</b>", TargetUrlError::Scheme("data".into())),
            ("file:///etc/passwd", TargetUrlError::Scheme("file".into())),
            ("ftp://example.com/", TargetUrlError::Scheme("ftp".into())),
            ("mailto:a@example.com", TargetUrlError::Scheme("mailto".into())),
            ("https://user:pw@example.com/", TargetUrlError::Credentials),
            ("https://bank.example@evil.example/", TargetUrlError::Credentials),
        ] {
            assert_eq!(TargetUrl::parse(input), Err(expected), "{input}");
        }
        assert!(matches!(TargetUrl::parse("/relative/path"), Err(TargetUrlError::Malformed(_))));
        assert!(matches!(TargetUrl::parse("example.com"), Err(TargetUrlError::Malformed(_))));
        assert!(TargetUrl::parse("http://").is_err());
    }

    #[test]
    fn the_host_is_read_from_the_normalised_url() {
        for (input, host) in [
            ("https://Example.COM:8443/x", "example.com"),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://[::1]:8080/a", "[::1]"),
            ("https://example.com?q=1", "example.com"),
            ("https://bücher.example/", "xn--bcher-kva.example"),
        ] {
            assert_eq!(TargetUrl::parse(input).expect("valid").host(), host, "{input}");
        }
    }

    #[test]
    fn enforces_the_length_limit_before_and_after_normalisation() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
        assert_eq!(TargetUrl::parse(&long), Err(TargetUrlError::TooLong));
        // Percent-encoding can grow an input that fits into a URL that does not.
        let spaces = format!("https://example.com/{}", "a b".repeat((MAX_LEN - 40) / 3));
        assert_eq!(TargetUrl::parse(&spaces), Err(TargetUrlError::TooLong));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(input in "\\PC{0,200}") {
            if let Ok(url) = TargetUrl::parse(&input) {
                prop_assert_eq!(TargetUrl::parse(url.as_str()), Ok(url.clone()));
                prop_assert!(url.as_str().starts_with("http://") || url.as_str().starts_with("https://"));
            }
        }

        #[test]
        fn any_http_url_with_a_host_is_accepted(
            scheme in "(http|https|HTTP|Https)",
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6}){1,2}",
            path in "(/[A-Za-z0-9._~-]{0,12}){0,4}",
        ) {
            // A label starting "xn--" is an encoded international name and must be valid Punycode.
            prop_assume!(!host.starts_with("xn--"));
            let url = TargetUrl::parse(&format!("{scheme}://{host}{path}")).expect("valid");
            prop_assert!(url.as_str().starts_with(&scheme.to_ascii_lowercase()));
        }
    }

    #[test]
    fn a_forwarded_query_joins_the_targets_own_before_its_fragment() {
        use super::with_forwarded_query as forward;
        assert_eq!(forward("https://a.example/", "utm_source=x"), "https://a.example/?utm_source=x");
        assert_eq!(forward("https://a.example/p?id=1", "utm_source=x"), "https://a.example/p?id=1&utm_source=x");
        assert_eq!(forward("https://a.example/p?", "a=1&b=2"), "https://a.example/p?a=1&b=2");
        assert_eq!(forward("https://a.example/p#top", "a=1"), "https://a.example/p?a=1#top");
        assert_eq!(forward("https://a.example/p?id=1#top", "a=%20b"), "https://a.example/p?id=1&a=%20b#top");
        assert_eq!(forward("https://a.example/p?id=1", ""), "https://a.example/p?id=1");
    }
}
