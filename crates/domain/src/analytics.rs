//! What a click says about its visitor: browser, operating system, device class and referring site.
//!
//! Coarse on purpose: stats group by a handful of families (plus the browser's major version, read
//! by Woothee's parser). Classification runs in the projector, once per distinct agent of a batch
//! (callers cache it by agent string). Events keep the raw header, so a better classifier, or the
//! operator's own bot markers, only need a rebuild.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use url::Url;

pub const UNKNOWN: &str = "Unknown";
pub const DIRECT: &str = "(direct)";

/// Link-preview fetchers: chat and social apps fetching a shared link to show a card. Each
/// marker is what the fetcher's agent says and what no in-app browser of the same app says (those
/// send the system browser's agent with `FBAN`, `Twitter for iPhone`, `LinkedInApp`…). Apple's
/// iMessage preview names `facebookexternalhit` and `Twitterbot`; Teams says `MicrosoftPreview`
/// (older: `SkypeUriPreview`, as Skype does).
const PREVIEW_MARKERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "whatsapp/",
    "telegrambot",
    "discordbot",
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "linkedinbot",
    "skypeuripreview",
    "microsoftpreview",
    "redditbot",
    "pinterestbot",
    "viber",
    "snapchat",
    "iframely",
    "embedly",
    "bluesky cardyb",
    "mastodon/",
    "google-pagerenderer",
    "bitlybot",
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

/// A link-preview fetcher (see [`PREVIEW_MARKERS`]): one pass over the agent, ignoring ASCII case.
pub fn is_preview(user_agent: &str) -> bool {
    static PREVIEWS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(PREVIEW_MARKERS)
            .expect("the preview markers form an automaton")
    });
    PREVIEWS.is_match(user_agent)
}

/// A bot of any kind: a preview, or an agent on the `isbot` crate's list (crawlers, monitors, HTTP
/// libraries, headless browsers), which is kept to match no browser's agent. A regular expression
/// of some hundreds of patterns: callers on a hot path classify each distinct agent once.
pub fn is_bot(user_agent: &str) -> bool {
    static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);
    is_preview(user_agent) || BOTS.is_bot(user_agent)
}

/// The operator's additions to the bot list (`analytics.bot_agents`): an agent that contains any
/// of these markers, ignoring ASCII case, is a bot too — an uptime checker of one's own, a partner's
/// crawler. Events keep the raw agent, so changing the markers and rebuilding reclassifies every
/// past click.
#[derive(Debug, Clone, Default)]
pub struct BotRules {
    extra: Option<AhoCorasick>,
}

/// Markers an operator may add, and how long each may be.
pub const MAX_BOT_MARKERS: usize = 1000;
pub const MAX_BOT_MARKER_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotRulesError {
    #[error("a bot marker is empty (it would match every agent)")]
    Empty,
    #[error("a bot marker is longer than {MAX_BOT_MARKER_LEN} characters")]
    TooLong,
    #[error("more than {MAX_BOT_MARKERS} bot markers")]
    TooMany,
}

impl BotRules {
    pub fn new(markers: &[String]) -> Result<Self, BotRulesError> {
        if markers.len() > MAX_BOT_MARKERS {
            return Err(BotRulesError::TooMany);
        }
        if markers.iter().any(|marker| marker.trim().is_empty()) {
            return Err(BotRulesError::Empty);
        }
        if markers.iter().any(|marker| marker.len() > MAX_BOT_MARKER_LEN) {
            return Err(BotRulesError::TooLong);
        }
        if markers.is_empty() {
            return Ok(Self::default());
        }
        let extra =
            AhoCorasick::builder().ascii_case_insensitive(true).build(markers).map_err(|_| BotRulesError::TooLong)?;
        Ok(Self { extra: Some(extra) })
    }

    /// A bot by the maintained lists ([`is_bot`]) or by the operator's markers.
    pub fn is_bot(&self, user_agent: &str) -> bool {
        is_bot(user_agent) || self.extra.as_ref().is_some_and(|extra| extra.is_match(user_agent))
    }
}

/// Everything the stats keep of one user agent, classified in one pass over the bot markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    /// Counted apart from people ([`is_bot`]).
    pub bot: bool,
    pub browser: &'static str,
    /// The browser's major version, where Woothee's parser reads one (`Chrome/131.0…` → 131).
    pub browser_major: Option<u32>,
    pub operating_system: &'static str,
    pub device: &'static str,
}

impl Agent {
    /// `Chrome 131`: the browser and its major version, when there is one.
    pub fn browser_version(&self) -> Option<String> {
        self.browser_major.map(|major| format!("{} {major}", self.browser))
    }

    /// By the maintained bot lists alone.
    pub fn classify(user_agent: Option<&str>) -> Self {
        Self::classify_with(user_agent, &BotRules::default())
    }

    pub fn classify_with(user_agent: Option<&str>, bots: &BotRules) -> Self {
        let Some(ua) = user_agent else {
            return Self {
                bot: false,
                browser: UNKNOWN,
                browser_major: None,
                operating_system: UNKNOWN,
                device: UNKNOWN,
            };
        };
        let bot = bots.is_bot(ua);
        if bot {
            return Self {
                bot,
                browser: "Bot",
                browser_major: None,
                operating_system: operating_system(Some(ua)),
                device: "Bot",
            };
        }
        let browser = browser_family(ua);
        let parsed = woothee::parser::Parser::new().parse(ua);
        let browser_major = parsed
            .as_ref()
            .filter(|parsed| parsed.browser_type == "browser" && browser != "Other")
            .and_then(|parsed| major_version(parsed.version));
        // Woothee's appliances (consoles, TVs, readers) and other devices are no desktops.
        let other = parsed.as_ref().is_some_and(|parsed| matches!(parsed.category, "appliance" | "misc"));
        Self {
            bot,
            browser,
            browser_major,
            operating_system: operating_system(Some(ua)),
            device: if other { "Other" } else { device_class(ua) },
        }
    }
}

/// The leading number of a version (`131.0.0.0` → 131); none for `UNKNOWN` and the like.
fn major_version(version: &str) -> Option<u32> {
    let digits = version.split('.').next()?;
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Entries of an `Accept-Language` header looked at: browsers send a handful; the rest of a long
/// header is not read.
const MAX_LANGUAGE_ENTRIES: usize = 16;

/// The primary subtag, lower-case, of the most preferred language in an `Accept-Language` header
/// (`de-CH, fr;q=0.9` → `de`; the first of equals wins). `None` when nothing names a language
/// (`*`, garbage, or every entry weighted `q=0`). A value that is already a primary subtag (`de`)
/// reads as itself.
pub fn primary_language(accept_language: &str) -> Option<String> {
    let mut best: Option<(&str, u16)> = None;
    for entry in accept_language.split(',').take(MAX_LANGUAGE_ENTRIES) {
        let mut parts = entry.split(';');
        let range = parts.next().unwrap_or_default().trim();
        let primary = range.split('-').next().unwrap_or_default();
        if primary.is_empty() || primary.len() > 8 || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        let Some(weight) = parts.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1000), quality) else {
            continue;
        };
        if weight > 0 && best.is_none_or(|(_, top)| weight > top) {
            best = Some((primary, weight));
        }
    }
    best.map(|(primary, _)| primary.to_ascii_lowercase())
}

/// A quality value (`0` to `1` with at most three decimals) in thousandths.
fn quality(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
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

    #[test]
    fn the_most_preferred_language_is_read_by_its_primary_subtag() {
        let cases = [
            ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", Some("de")),
            ("en-US", Some("en")),
            ("fr", Some("fr")),
            ("da, en-GB;q=0.8, en;q=0.7", Some("da")),
            ("en;q=0.5, ja;q=0.9", Some("ja")),
            ("en;q=0.5, ja;q=0.5", Some("en")),
            ("PT-br", Some("pt")),
            ("*", None),
            ("*;q=1, it;q=0.1", Some("it")),
            ("de;q=0, en;q=0", None),
            ("de;q=2, en;q=0.3", Some("en")),
            ("zh-Hant-TW;q=0.8, x1;q=0.9", Some("zh")),
            ("", None),
            ("123, ;;;, -", None),
        ];
        for (header, expected) in cases {
            assert_eq!(primary_language(header).as_deref(), expected, "{header:?}");
        }
        let long = format!("{}, en", "xx;q=0, ".repeat(100));
        assert_eq!(primary_language(&long), None, "only the first entries are read");
    }

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
    fn browsers_come_with_their_major_version_where_the_agent_names_one() {
        let version = |ua: &str| Agent::classify(Some(ua)).browser_version();
        assert_eq!(version(CHROME_WINDOWS).as_deref(), Some("Chrome 120"));
        assert_eq!(version(SAFARI_IPHONE).as_deref(), Some("Safari 17"), "Safari's version is Version/…");
        assert_eq!(version(EDGE_MAC).as_deref(), Some("Edge 120"));
        assert_eq!(version(FIREFOX_LINUX).as_deref(), Some("Firefox 121"));
        assert_eq!(version("curl/8.5.0"), None, "a bot's version is not a browser's");
        assert_eq!(Agent::classify(None).browser_version(), None);
        let console = "Mozilla/5.0 (PlayStation 4 3.11) AppleWebKit/537.73 (KHTML, like Gecko)";
        assert_eq!(Agent::classify(Some(console)).device, "Other", "a console is no desktop");
        assert_eq!(major_version("131.0.0.0"), Some(131));
        assert_eq!((major_version("UNKNOWN"), major_version(""), major_version("99999999.1")), (None, None, None));
    }

    /// Agents the fetchers of link previews send (from their documentation and from logs).
    const PREVIEWS: &[&str] = &[
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0 A",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview",
    ];

    /// People: browsers, in-app browsers of the same apps, and a phone whose name holds "bot".
    const PEOPLE: &[&str] = &[
        CHROME_WINDOWS,
        SAFARI_IPHONE,
        EDGE_MAC,
        FIREFOX_LINUX,
        ANDROID_TABLET,
        ANDROID_PHONE,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.33.116;FBBV/536224154;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/0]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Twitter for iPhone/10.6",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.8260",
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    ];

    #[test]
    fn link_previews_are_bots_of_their_own_kind() {
        for agent in PREVIEWS {
            assert!(is_preview(agent), "a preview: {agent}");
            assert!(is_bot(agent), "a bot: {agent}");
            assert_eq!(device(Some(agent)), "Bot", "{agent}");
        }
    }

    #[test]
    fn people_are_neither_bots_nor_previews() {
        for agent in PEOPLE {
            assert!(!is_preview(agent), "not a preview: {agent}");
            assert!(!is_bot(agent), "not a bot: {agent}");
        }
    }

    #[test]
    fn crawlers_and_tools_are_bots_but_not_previews() {
        for agent in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ] {
            assert!(is_bot(agent), "a bot: {agent}");
            assert!(!is_preview(agent), "not a preview: {agent}");
        }
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
