//! A path segment extractor whose rejection is a problem: a segment that does not percent-decode
//! to UTF-8 names nothing, so it is answered 404 like any other unknown name.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::Problem;

#[derive(Debug, Clone)]
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(segment)) => Ok(Self(segment)),
            Err(_) => Err(Problem::not_found("no such resource")),
        }
    }
}
