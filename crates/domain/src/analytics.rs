//! What a click says about its visitor: browser, operating system, device class and referring site.
//!
//! Deliberately coarse and allocation-free: stats group by a handful of families, and classification
//! runs in the projector for every click, so it must stay cheap. Events keep the raw header, so a
//! better classifier later only needs a rebuild.

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
    let lower = user_agent.to_ascii_lowercase();
    BOT_MARKERS.iter().any(|marker| lower.contains(marker))
}

pub fn browser(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else { return UNKNOWN };
    if is_bot(ua) {
        return "Bot";
    }
    BROWSER_FAMILIES.iter().find(|(marker, _)| ua.contains(marker)).map_or("Other", |(_, family)| family)
}

pub fn operating_system(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else { return UNKNOWN };
    OPERATING_SYSTEMS.iter().find(|(marker, _)| ua.contains(marker)).map_or("Other", |(_, os)| os)
}

pub fn device(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else { return UNKNOWN };
    if is_bot(ua) {
        "Bot"
    } else if ua.contains("iPad") || ua.contains("Tablet") || (ua.contains("Android") && !ua.contains("Mobile")) {
        "Tablet"
    } else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("iPod") {
        "Mobile"
    } else {
        "Desktop"
    }
}

/// The referring site's host without `www.`, or `(direct)` when there is none or it is not a URL.
pub fn referrer_site(referrer: Option<&str>) -> String {
    referrer
        .and_then(|r| Url::parse(r).ok())
        .and_then(|url| url.host_str().map(|host| host.strip_prefix("www.").unwrap_or(host).to_owned()))
        .unwrap_or_else(|| DIRECT.to_owned())
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
    fn referrer_is_reduced_to_its_site() {
        assert_eq!(referrer_site(Some("https://www.Example.com/path?q=1")), "example.com");
        assert_eq!(referrer_site(Some("android-app://com.slack")), "com.slack");
        assert_eq!(referrer_site(Some("not a url")), DIRECT);
        assert_eq!(referrer_site(None), DIRECT);
    }
}
