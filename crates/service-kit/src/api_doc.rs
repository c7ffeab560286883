//! The OpenAPI document. Each handler declares its own operation and the answers only it gives;
//! what every route answers alike — the API gate's refusals, the body and query extractors'
//! problems, the limits — is added here once, read off each operation's shape, so a handler can
//! not forget it and no handler repeats it.

use axum::Router;
use axum::http::StatusCode;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, InfoBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Type};
use utoipa::{PartialSchema as _, ToSchema as _};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::Problem;
use crate::problem::CONTENT_TYPE;

/// `Authorization: Bearer <key>`.
pub const BEARER: &str = "bearer";
/// `X-Api-Key: <key>`, the same key in a header of its own.
pub const API_KEY: &str = "api_key";

/// The document served at `/openapi.json`.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Swagger UI, served from the binary.
pub const DOCS_PATH: &str = "/docs";

/// Printable text, as the domain means it: no control characters (Unicode's `Cc`).
pub const PRINTABLE: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";
/// An owner: 1–64 of `A-Z a-z 0-9 . _ @ -`.
pub const OWNER: &str = "^[A-Za-z0-9._@-]{1,64}$";
/// A code: 3–64 of `A-Z a-z 0-9 _ -`.
pub const CODE: &str = "^[A-Za-z0-9_-]{3,64}$";

/// A string of `min..=max` printable characters.
pub fn printable(min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(PRINTABLE))
}

/// A problem answer (`application/problem+json`) with `description`; `$ref`s the one schema.
pub fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(CONTENT_TYPE, ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build())
        .build()
}

/// A problem answer that may come with `Retry-After` (seconds).
fn problem_with_retry(description: &str) -> Response {
    let mut response = problem(description);
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    response.headers.insert(
        "Retry-After".to_owned(),
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(seconds))
                .description(Some("seconds after which a retry may succeed"))
                .build(),
        ),
    );
    response
}

/// Completes the paths the handlers declared into Kurz's document: operations under `/v1/` take a
/// key and answer as the API gate does; the redirect and the QR code take none; the ops routes
/// (tag `ops`) are not limited.
pub fn document(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("Kurz")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Kurz, a URL shortener. Every error is `application/problem+json` (RFC 9457); a \
             refused field is named in the problem's `field`. Send an API key as \
             `Authorization: Bearer <key>` or `X-Api-Key: <key>`.",
        ))
        .license(Some(utoipa::openapi::LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(Problem::name().into_owned(), Problem::schema());
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kurz_…").build(),
        )),
    );
    components
        .security_schemes
        .insert(API_KEY.to_owned(), RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key")))));
    for (path, item) in &mut doc.paths.paths {
        let keyed = path.starts_with("/v1/");
        for operation in operations(item) {
            let ops = operation.tags.iter().flatten().any(|tag| tag == "ops");
            if !ops {
                complete(operation, keyed);
            }
        }
    }
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.post, &mut item.patch, &mut item.put, &mut item.delete, &mut item.head]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn complete(operation: &mut Operation, keyed: bool) {
    // Every error is a problem: the handlers name their errors' statuses and why, this says how.
    for (status, response) in &mut operation.responses.responses {
        if let RefOr::T(response) = response
            && status.starts_with(['4', '5'])
            && response.content.is_empty()
        {
            let described = std::mem::take(&mut response.description);
            *response = problem(&described);
        }
    }
    let mut add = |status: StatusCode, response: Response| {
        operation.responses.responses.entry(status.as_u16().to_string()).or_insert(RefOr::T(response));
    };
    if keyed {
        add(StatusCode::UNAUTHORIZED, problem("No API key was sent, or it is unknown or revoked"));
        add(StatusCode::SERVICE_UNAVAILABLE, problem("A backing service failed; retry later"));
    }
    add(StatusCode::TOO_MANY_REQUESTS, problem_with_retry("A rate limit was reached"));
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|parameter| matches!(parameter, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    if operation.request_body.is_some() {
        add(StatusCode::BAD_REQUEST, problem("The body is not JSON, or the request is malformed"));
        add(StatusCode::PAYLOAD_TOO_LARGE, problem("The body exceeds this operation's size limit"));
        add(StatusCode::UNSUPPORTED_MEDIA_TYPE, problem("The body was not sent as `application/json`"));
        add(StatusCode::UNPROCESSABLE_ENTITY, problem("A field has an invalid value (named in `field`)"));
    } else if has_query {
        add(StatusCode::BAD_REQUEST, problem("An unknown query parameter, or one that cannot be read"));
    }
    if keyed {
        let bearer = SecurityRequirement::new(BEARER, Vec::<String>::new());
        let header = SecurityRequirement::new(API_KEY, Vec::<String>::new());
        operation.security = Some(vec![bearer, header]);
    }
}

/// `/openapi.json` and the browsable docs at `/docs`: public, like the contract they show.
pub fn routes(doc: OpenApi) -> Router {
    // No validator badge: it would ask swagger.io, which a browser on an intranet cannot reach.
    let config = Config::from(DOCUMENT_PATH).validator_url("none").try_it_out_enabled(true);
    Router::from(SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, doc).config(config))
}
