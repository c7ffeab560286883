//! Who a request is in the logs: its id (`X-Request-Id`, the caller's when it sent a usable one,
//! else a new one) and the W3C trace it belongs to (`traceparent`). Both are the task's while it
//! serves the request, and every log line written meanwhile carries them (see
//! [`crate::telemetry`]); the id goes back on the response.
//!
//! A task-local value rather than a tracing span: a span costs its fields' formatting and a slot
//! in the subscriber's registry on every request (a redirect took a third more instructions), while a
//! task-local costs nothing until a line is logged. A real span is made only for OTLP export.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The longest request id taken from a caller; a longer one is replaced, so a caller cannot make
/// every log line of its requests arbitrarily long.
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// A request's identity in logs and traces.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Visible ASCII: checked, or generated. Also the answer's `X-Request-Id`.
    pub id: HeaderValue,
    pub trace: Option<TraceParent>,
}

impl RequestContext {
    /// The context of a request with these headers.
    pub fn of(headers: &HeaderMap) -> Self {
        let trace = headers.get(&TRACEPARENT).and_then(|value| TraceParent::parse(value.as_bytes()));
        let given = headers.get(&X_REQUEST_ID).filter(|id| usable_request_id(id.as_bytes()));
        // The caller's own value is shared, not copied.
        let id = given.cloned().unwrap_or_else(new_request_id);
        Self { id, trace }
    }

    /// The id as text (visible ASCII: checked or generated).
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }

    /// Runs `serving` as this request's: log lines written meanwhile carry its id and trace.
    pub async fn scope<F: Future>(self, serving: F) -> F::Output {
        CURRENT.scope(self, serving).await
    }

    /// Runs `log` as this request's, outside the task that served it.
    pub fn in_scope<R>(&self, log: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self.clone(), log)
    }

    /// The context of the request the current task serves, if any.
    pub fn current<R>(read: impl FnOnce(&Self) -> R) -> Option<R> {
        CURRENT.try_with(read).ok()
    }

    /// A span for OTLP export: the request as a child of the caller's span, when there is one.
    #[cfg(feature = "otlp")]
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(target: "kurz::trace", "request", request_id = self.id());
        if let Some(trace) = &self.trace {
            crate::telemetry::continue_trace(&span, trace);
        }
        span
    }
}

/// Visible ASCII, no spaces, at most [`MAX_REQUEST_ID_LEN`] bytes: safe to log and to echo.
fn usable_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(u8::is_ascii_graphic)
}

/// 32 hex digits: 64 random bits fixed per process, then a counter. Unique without coordination
/// and cheap (no system call per request); nothing relies on ids being unpredictable.
fn new_request_id() -> HeaderValue {
    static PROCESS: OnceLock<[u8; 16]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| {
        let mut bytes = [0; 8];
        // Without randomness, the process id and start time still tell processes apart.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes =
                (u64::from(std::process::id()) << 32 ^ nanos.as_secs() ^ u64::from(nanos.subsec_nanos())).to_le_bytes();
        }
        hex(u64::from_le_bytes(bytes))
    });
    let mut id = [0; 32];
    id[..16].copy_from_slice(process);
    id[16..].copy_from_slice(&hex(NEXT.fetch_add(1, Ordering::Relaxed)));
    HeaderValue::from_bytes(&id).expect("hex digits are a valid header value")
}

/// 16 lowercase hex digits, most significant first.
fn hex(value: u64) -> [u8; 16] {
    let mut digits = [0; 16];
    for (digit, shift) in digits.iter_mut().zip((0..64).step_by(4).rev()) {
        *digit = b"0123456789abcdef"[usize::try_from((value >> shift) & 0xf).expect("a nibble")];
    }
    digits
}

/// A W3C Trace Context `traceparent`: `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The header's ASCII, kept whole: ids are slices of it.
    text: [u8; 55],
}

impl TraceParent {
    /// The header's value, or `None` when it is not one the specification lets us continue (an
    /// unknown version may be longer, but starts with the same fields).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let head = value.get(..55)?;
        let (version, trace_id, parent_id, flags) = (&head[0..2], &head[3..35], &head[36..52], &head[53..55]);
        let separators = head[2] == b'-' && head[35] == b'-' && head[52] == b'-';
        let lower_hex = |part: &[u8]| part.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        let all_zero = |part: &[u8]| part.iter().all(|&b| b == b'0');
        let valid = separators
            && [version, trace_id, parent_id, flags].into_iter().all(lower_hex)
            && version != b"ff"
            && !all_zero(trace_id)
            && !all_zero(parent_id)
            // Version 00 is exactly 55 bytes; a later version may append fields after a dash.
            && (value.len() == 55 && version == b"00" || version != b"00" && value.get(55).is_none_or(|&b| b == b'-'));
        valid.then(|| Self { text: head.try_into().expect("55 bytes") })
    }

    pub fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.text[3..35]).expect("checked hex")
    }

    pub fn parent_id(&self) -> &str {
        std::str::from_utf8(&self.text[36..52]).expect("checked hex")
    }

    pub fn sampled(&self) -> bool {
        let flags = u8::from_str_radix(std::str::from_utf8(&self.text[53..55]).expect("checked hex"), 16);
        flags.is_ok_and(|flags| flags & 1 == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_gives_its_ids() {
        let trace = TraceParent::parse(EXAMPLE.as_bytes()).expect("valid");
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id(), "00f067aa0ba902b7");
        assert!(trace.sampled());
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes-next";
        let trace = TraceParent::parse(later.as_bytes()).expect("valid");
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!trace.sampled());
    }

    #[test]
    fn an_invalid_traceparent_is_ignored() {
        for invalid in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(invalid.as_bytes()), None, "{invalid:?}");
        }
    }

    #[test]
    fn a_callers_request_id_is_kept_when_it_is_short_visible_ascii() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("checkout-7f3a"));
        assert_eq!(RequestContext::of(&headers).id(), "checkout-7f3a");
        let longest = "x".repeat(MAX_REQUEST_ID_LEN);
        headers.insert(&X_REQUEST_ID, HeaderValue::from_str(&longest).expect("header value"));
        assert_eq!(RequestContext::of(&headers).id(), longest);

        for unusable in ["", "has space", &"x".repeat(MAX_REQUEST_ID_LEN + 1)] {
            headers.insert(&X_REQUEST_ID, HeaderValue::from_str(unusable).expect("header value"));
            let id = RequestContext::of(&headers).id().to_owned();
            assert_ne!(id, unusable);
            assert_eq!(id.len(), 32, "a new id instead: {id}");
        }
    }

    #[test]
    fn hex_digits_run_most_significant_first() {
        assert_eq!(&hex(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_eq!(&hex(1), b"0000000000000001");
    }

    #[test]
    fn generated_ids_differ() {
        let headers = HeaderMap::new();
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| RequestContext::of(&headers).id().to_owned()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        }
        // One process: the first half is the process's, the second a sequence.
        let processes: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..16]).collect();
        assert_eq!(processes.len(), 1, "{processes:?}");
    }
}
