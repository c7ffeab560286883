//! Signed-in sessions: an API key exchanged for a random session id, kept server-side so that
//! signing out (or expiry) ends it for good — a stolen cookie is worth nothing afterwards — and the
//! key never reaches the browser again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION_COOKIE: &str = "kurz_session";
/// Before sign-in: the token the sign-in form carries (a login form needs CSRF protection too).
pub const SIGN_IN_COOKIE: &str = "kurz_sign_in";
const COOKIE_PATH: &str = "/ui";

/// 32 random bytes, hex: unguessable.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API key every request of this session is made with.
    pub key: Arc<str>,
    /// The token every form of this session carries.
    pub csrf: Arc<str>,
    /// Whether the key is an admin's (the UI shows admin pages; the API decides either way).
    pub admin: bool,
    expires: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self { live: Mutex::new(HashMap::new()), ttl, max: max.max(1) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `key`; returns its id. When the table is full, expired sessions go,
    /// then the one closest to expiry: memory stays bounded whoever signs in.
    pub fn start(&self, key: &str, admin: bool) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session { key: key.into(), csrf: random_token().into(), admin, expires: now + self.ttl };
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= self.max {
            live.retain(|_, session| session.expires > now);
        }
        if live.len() >= self.max
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), session);
        id
    }

    /// The live session the request's cookie names.
    pub fn of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get(id) {
            Some(session) if session.expires > Instant::now() => Some((id.to_owned(), session.clone())),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// A `Set-Cookie` value: HttpOnly (scripts cannot read it), SameSite=Strict (no other site's page
/// can send it), Secure when the UI is served over HTTPS, and limited to the UI's paths.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{secure}", max_age.as_secs());
    HeaderValue::try_from(cookie).expect("tokens and names are header-safe")
}

/// Compares secrets in time independent of where they first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_drops_the_session_closest_to_expiry() {
        let sessions = Sessions::new(Duration::from_mins(1), 2);
        let first = sessions.start("k1", false);
        let second = sessions.start("k2", false);
        let third = sessions.start("k3", true);
        let live = sessions.live.lock().expect("not poisoned");
        assert_eq!(live.len(), 2);
        assert!(!live.contains_key(&first) && live.contains_key(&second) && live.contains_key(&third));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("xkurz_session=a; kurz_session=b"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("b"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
