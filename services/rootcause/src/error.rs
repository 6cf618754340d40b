//! The one error type of the HTTP API, and the JSON body every error response carries.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_topology::{DocumentError, Problem, TopologyError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::live_topology::ChangeError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: `invalid_topology`, `malformed_json`, `not_found`, ...
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// For bad input: each problem and where it is (`dependencies[3].callee`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// An error answer: a status, a code and a message, plus the problems of bad input.
///
/// 5xx errors keep their cause for the log and show the client only a generic message.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    problems: Vec<Problem>,
    internal: Option<String>,
    /// A `Location` header: where the resource is now (an incident merged into another).
    location: Option<String>,
    /// A `Retry-After` header, in seconds: when a refused request may be sent again.
    retry_after: Option<u16>,
}

impl ApiError {
    /// An error with no problem list.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
            internal: None,
            location: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: seconds` (503 for a full queue, 429 for a rate limit).
    pub fn with_retry_after(mut self, seconds: u16) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 404 for an incident merged into another, with code `merged` and a `Location` naming the
    /// same `resource` of the survivor (`hypotheses`, `actions/restart/approve`, ...).
    pub fn merged(incident: u64, survivor: u64, resource: &str) -> Self {
        let location = format!("/api/v1/incidents/{survivor}/{resource}");
        ApiError {
            location: Some(location.clone()),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "merged",
                format!("incident {incident} was merged into incident {survivor}; see {location}"),
            )
        }
    }

    /// 404 for a thing that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 for a request that cannot be understood.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 500 whose cause is logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError {
            internal: Some(cause.to_string()),
            ..ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            )
        }
    }

    /// The same error about line `line` of a body of JSON lines: the line goes into the message
    /// and into every problem.
    pub fn on_line(mut self, line: usize) -> Self {
        self.message = format!("line {line}: {}", self.message);
        for problem in &mut self.problems {
            problem.line = Some(line);
            problem.column = None;
        }
        self
    }

    /// 422 for one field of a body: `invalid request: PATH: MESSAGE`, with the problem listed.
    pub fn invalid_field(path: &str, message: String) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("invalid request: {path}: {message}"),
        )
        .with_problems(vec![Problem::at(path, message)])
    }

    /// Adds the problems of bad input.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> Self {
        self.problems = problems;
        self
    }

    /// 415 for a body whose content type the route does not read; `expected` says which it does.
    pub fn unsupported_media_type(expected: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            expected,
        )
    }

    /// A rejected topology document: 400 when it is not YAML/JSON at all, 422 when it is but
    /// breaks the schema or a graph rule.
    pub fn invalid_topology(error: DocumentError) -> Self {
        let (status, code) = if error.syntax {
            (StatusCode::BAD_REQUEST, "malformed_document")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_topology")
        };
        let message = match error.problems.as_slice() {
            [one] => format!("invalid topology: {one}"),
            many => format!("invalid topology: {} problems", many.len()),
        };
        ApiError::new(status, code, message).with_problems(error.problems)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(status = %self.status, code = self.code, %cause, "request failed");
        }
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            problems: self.problems,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(location) = self.location
            && let Ok(value) = header::HeaderValue::from_str(&location)
        {
            response.headers_mut().insert(header::LOCATION, value);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Invalid(error) => {
                let (status, code) = match &error {
                    TopologyError::UnknownService(_) | TopologyError::UnknownDependency { .. } => {
                        (StatusCode::NOT_FOUND, "not_found")
                    }
                    TopologyError::DuplicateService(_)
                    | TopologyError::DuplicateDependency { .. }
                    | TopologyError::AliasConflict { .. } => (StatusCode::CONFLICT, "conflict"),
                    _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_topology"),
                };
                ApiError::new(status, code, error.to_string())
            }
            error @ ChangeError::VersionMismatch { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_mismatch",
                error.to_string(),
            ),
            ChangeError::Store(error) => error.into(),
            ChangeError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_parameter", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(rejection.status(), "invalid_path", rejection.body_text())
    }
}

/// Query parameters whose errors are [`ApiError`]s (400 with a JSON body).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters whose errors are [`ApiError`]s (JSON bodies).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body is larger than the configured limit (http.body_limit_bytes)",
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    }
}

/// A JSON request body whose errors are [`ApiError`]s: 415 without a JSON content type, 413
/// over the size limit, 400 for malformed JSON (with line and column), 422 for JSON of the
/// wrong shape (with the path of the offending field).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let bytes = Bytes::from_request(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON request body that may be left out: an empty body (or only whitespace) is
/// `T::default()`, anything else is read as [`ApiJson`] reads it. For actions whose body only
/// adds detail (an approval's comment, a training job's settings), so that a bare POST works.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        require_json(&headers)?;
        parse_json(&bytes).map(OptionalJson)
    }
}

/// 415 unless the request says its body is JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(
            "expected a body with content-type application/json",
        ))
    }
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|media| {
        media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
    })
}

/// 422 when a JSON body holds a NUL character in a string or key (escaped as `\u0000`: JSON
/// has no raw control characters), with the path of the first one.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    // Rare: find where, or learn it was an escaped backslash followed by `u0000`.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        // Not JSON, or JSON with invalid UTF-8 in a string the typed parse would skip unread
        // (an unknown field): refused here with where, since a typed parse could succeed and
        // carry the NUL in. (Found by the `changes` fuzz target.)
        return parse_typed::<serde_json::Value>(bytes).map(|_| ());
    };
    match rootcause_topology::nul_path(&value) {
        None => Ok(()),
        Some(path) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("invalid request body: {path}: NUL characters cannot be stored"),
        )
        .with_problems(vec![Problem::at(path, "NUL characters cannot be stored")])),
    }
}

/// The request's media type, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// Deserializes JSON, reporting where it went wrong. A string holding a NUL character is
/// refused (422, with its path) on either engine: PostgreSQL's text cannot store one, and a
/// request that reached a group commit with one would fail the other requests of the group.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul(bytes)?;
    parse_typed(bytes)
}

/// `bytes` parsed as `T`; a failure is 400 (syntax) or 422 (shape) with its path and position.
fn parse_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let (path, inner) = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => match deserializer.end() {
            Ok(()) => return Ok(value),
            Err(inner) => (String::new(), inner),
        },
        Err(error) => {
            let path = error.path().to_string();
            (
                if path == "." { String::new() } else { path },
                error.into_inner(),
            )
        }
    };
    let syntax = !matches!(inner.classify(), serde_json::error::Category::Data);
    let message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let problem = Problem {
        path,
        message: message
            .strip_suffix(&position)
            .unwrap_or(&message)
            .to_owned(),
        line: Some(inner.line()),
        column: Some(inner.column()),
    };
    let error = if syntax {
        ApiError::bad_request("malformed_json", format!("malformed JSON: {problem}"))
    } else {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("invalid request body: {problem}"),
        )
    };
    Err(error.with_problems(vec![problem]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Event {
        #[allow(dead_code)] // read by the parse only
        service: String,
    }

    /// Found by the `changes` fuzz target: invalid UTF-8 in a field the typed parse skips unread
    /// made the NUL check give up, and the typed parse then let `"f\u0000d"` through.
    #[test]
    fn a_nul_cannot_hide_behind_invalid_utf8_in_an_unknown_field() {
        let mut body = br#"{"service":"f\u0000d","other":"x"#.to_vec();
        body.extend_from_slice(&[0xff, 0xff]);
        body.extend_from_slice(br#""}"#);
        assert!(
            parse_typed::<Event>(&body).is_ok(),
            "the typed parse alone skips the bad field"
        );
        let error = parse_json::<Event>(&body).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{error:?}");
        let clean = br#"{"service":"f\u0000d"}"#;
        let error = parse_json::<Event>(clean).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{error:?}");
        assert!(
            parse_json::<Event>(br#"{"service":"f\\u0000d"}"#).is_ok(),
            "an escaped backslash"
        );
    }
}
