//! What a click says about its visitor: browser, operating system, device class and referring site.
//!
//! Deliberately coarse and allocation-free: stats group by a handful of families, and classification
//! runs in the projector for every click, so it must stay cheap. Events keep the raw header, so a
//! better classifier later only needs a rebuild.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use url::Url;

pub const UNKNOWN: &str = "Unknown";
pub const DIRECT: &str = "(direct)";

const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "curl/",
    "wget/",
    "python-requests",
    "go-http-client",
    "httpclient",
    "okhttp",
    "headless",
    "preview",
    "facebookexternalhit",
];

// Order matters: most browsers also claim to be Chrome and Safari.
const BROWSER_FAMILIES: &[(&str, &str)] = &[
    ("Edg", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chrome"),
    ("Safari/", "Safari"),
    ("MSIE", "Internet Explorer"),
    ("Trident/", "Internet Explorer"),
];

const OPERATING_SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("iPod", "iOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

pub fn is_bot(user_agent: &str) -> bool {
    // One pass over the agent for every marker, ignoring ASCII case, without allocating.
    static BOTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(BOT_MARKERS)
            .expect("the bot markers form an automaton")
    });
    BOTS.is_match(user_agent)
}

/// Everything the stats keep of one user agent, classified in one pass over the bot markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    pub browser: &'static str,
    pub operating_system: &'static str,
    pub device: &'static str,
}

impl Agent {
    pub fn classify(user_agent: Option<&str>) -> Self {
        let Some(ua) = user_agent else {
            return Self { browser: UNKNOWN, operating_system: UNKNOWN, device: UNKNOWN };
        };
        let bot = is_bot(ua);
        Self {
            browser: if bot { "Bot" } else { browser_family(ua) },
            operating_system: operating_system(Some(ua)),
            device: if bot { "Bot" } else { device_class(ua) },
        }
    }
}

pub fn browser(user_agent: Option<&str>) -> &'static str {
    Agent::classify(user_agent).browser
}

fn browser_family(ua: &str) -> &'static str {
    BROWSER_FAMILIES.iter().find(|(marker, _)| ua.contains(marker)).map_or("Other", |(_, family)| family)
}

pub fn operating_system(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else { return UNKNOWN };
    OPERATING_SYSTEMS.iter().find(|(marker, _)| ua.contains(marker)).map_or("Other", |(_, os)| os)
}

pub fn device(user_agent: Option<&str>) -> &'static str {
    Agent::classify(user_agent).device
}

fn device_class(ua: &str) -> &'static str {
    if ua.contains("iPad") || ua.contains("Tablet") || (ua.contains("Android") && !ua.contains("Mobile")) {
        "Tablet"
    } else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("iPod") {
        "Mobile"
    } else {
        "Desktop"
    }
}

/// The referring site's host without `www.`, or `(direct)` when there is none or it is not a URL.
///
/// Most referrers are plain `scheme://host/…` with a lower-case host: those are sliced without
/// parsing or allocating; anything else goes through the URL parser.
pub fn referrer_site(referrer: Option<&str>) -> Cow<'_, str> {
    let Some(referrer) = referrer else { return Cow::Borrowed(DIRECT) };
    if let Some(host) = plain_host(referrer) {
        return Cow::Borrowed(host.strip_prefix("www.").unwrap_or(host));
    }
    Url::parse(referrer)
        .ok()
        .and_then(|url| url.host_str().map(|host| Cow::Owned(host.strip_prefix("www.").unwrap_or(host).to_owned())))
        .unwrap_or(Cow::Borrowed(DIRECT))
}

/// The host of `scheme://host[:port][/?#…]` when it is already in canonical form (lower-case
/// letters, digits, `-` and `.`), so that slicing gives what the URL parser would. Byte scans rather
/// than substring searches: this runs for every click a projector folds.
fn plain_host(referrer: &str) -> Option<&str> {
    let bytes = referrer.as_bytes();
    // A scheme of lower-case letters ends at the first ':', so "://" can only start there.
    let scheme_end = bytes.iter().position(|&b| !b.is_ascii_lowercase())?;
    if scheme_end == 0 || !bytes[scheme_end..].starts_with(b"://") {
        return None;
    }
    let rest = &referrer[scheme_end + 3..];
    let authority = &rest[..rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len())];
    let host = match authority.bytes().position(|b| b == b':') {
        Some(colon) => {
            let port = &authority[colon + 1..];
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return None;
            }
            &authority[..colon]
        }
        None => authority,
    };
    let canonical = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.starts_with('.')
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    canonical.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const EDGE_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
    const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    const ANDROID_TABLET: &str =
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";

    #[test]
    fn classifies_common_agents() {
        let cases = [
            (CHROME_WINDOWS, "Chrome", "Windows", "Desktop"),
            (SAFARI_IPHONE, "Safari", "iOS", "Mobile"),
            (EDGE_MAC, "Edge", "macOS", "Desktop"),
            (FIREFOX_LINUX, "Firefox", "Linux", "Desktop"),
            (ANDROID_TABLET, "Chrome", "Android", "Tablet"),
            (ANDROID_PHONE, "Chrome", "Android", "Mobile"),
            ("curl/8.5.0", "Bot", "Other", "Bot"),
            ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Bot", "Other", "Bot"),
        ];
        for (ua, b, os, d) in cases {
            assert_eq!((browser(Some(ua)), operating_system(Some(ua)), device(Some(ua))), (b, os, d), "{ua}");
        }
        assert_eq!((browser(None), operating_system(None), device(None)), (UNKNOWN, UNKNOWN, UNKNOWN));
    }

    #[test]
    fn the_fast_referrer_path_agrees_with_the_url_parser() {
        for referrer in [
            "https://www.example.com/a?b#c",
            "http://news.example:8080/x",
            "https://Example.COM/",
            "https://user@example.com/",
            "https://192.168.0.1/",
            "https://[::1]/",
            "https://xn--bcher-kva.example/",
            "https://bücher.example/",
            "ftp://files.example",
            "https://a..b/",
            "https://example.com:99999/",
            "https://example.com:/x",
            "https://example.com:443/",
            "https://-x.example/",
            "HTTPS://example.com/",
            "https:/example.com/",
            "://example.com/",
            "a://b.example",
            "https://example.com?q=https://other.example/",
            "https://example.com#://x",
            "https://",
        ] {
            let parsed = Url::parse(referrer)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.strip_prefix("www.").unwrap_or(h).to_owned()))
                .unwrap_or_else(|| DIRECT.to_owned());
            assert_eq!(referrer_site(Some(referrer)), parsed, "{referrer}");
        }
    }

    #[test]
    fn referrer_is_reduced_to_its_site() {
        assert_eq!(referrer_site(Some("https://www.Example.com/path?q=1")), "example.com");
        assert_eq!(referrer_site(Some("android-app://com.slack")), "com.slack");
        assert_eq!(referrer_site(Some("not a url")), DIRECT);
        assert_eq!(referrer_site(None), DIRECT);
    }
}
