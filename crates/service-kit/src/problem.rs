//! RFC 9457 problem details: every error a client sees is `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::throttle::{LOG_INTERVAL, Throttle};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem detail (RFC 9457): what went wrong, for people (`title`, `detail`) and programs
/// (`type`, `status`, `field`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:kurz:problem:<slug>`, one per kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:kurz:problem:invalid-field")]
    pub kind: String,
    pub title: &'static str,
    /// The response's status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:kurz:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid_field(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        let field = field.into();
        let detail = format!("{field} {detail}");
        Self {
            field: Some(field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field has an invalid value", detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", "Gone", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", "The request is malformed", detail)
    }

    /// An infrastructure failure. The cause is logged here, at most one line per 10 s with how many
    /// failed (a full disk fails every write: the log must not flood too), and never shown to the
    /// client; `http_requests_total` counts every 503.
    pub fn unavailable(error: &dyn std::error::Error) -> Self {
        static FAILURES: Throttle = Throttle::new(LOG_INTERVAL);
        if let Some(failures) = FAILURES.hit() {
            tracing::error!(error = %error, failures, "requests failed on infrastructure (one line per 10 s)");
        }
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "a backing service failed; retry later",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("a problem serialises");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Answers requests no route matched.
pub async fn no_route() -> Problem {
    Problem::not_found("no such resource")
}

/// Answers requests with a method the route does not allow.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this resource does not accept that method",
    )
}
