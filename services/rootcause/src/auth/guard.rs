//! The checks every request passes before its handler runs, in this order:
//!
//! 1. **Host**: the `Host` header names this service (`http.allowed_hosts`: loopback names by
//!    default), so a page on another domain that re-points its DNS to 127.0.0.1 (DNS
//!    rebinding) reaches nothing.
//! 2. **Origin**: where a browser says which page sent the request, it is this service or one of
//!    `http.allowed_origins`.
//! 3. **Token**: with authentication on, the route's scope ([`super::required_access`]) must be
//!    granted by the bearer token, or, without one, by the token behind the request's session
//!    cookie ([`super::session`]), within its rate (`auth.rate_limit_per_sec`, else 429); the
//!    token's name becomes the request's [`Principal`].
//! 4. **No simple cross-site requests**: a POST without a token must say its body is JSON, YAML
//!    or protobuf. A web page can POST a form or `text/plain` (or no content type) anywhere
//!    without asking; for anything else, and for PUT and DELETE, the browser asks the service
//!    first (CORS preflight), and the service does not say yes.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Access, Principal, RateLimiter, Tokens, required_access, session_cookie};
use crate::error::{ApiError, media_type};
use crate::telemetry::names;

/// The guard's settings and the tokens it checks.
#[derive(Clone)]
pub struct Guard {
    /// `Some` when authentication is on.
    tokens: Option<Tokens>,
    /// Host names (lowercase, no port) requests may address; `*` allows any.
    hosts: Arc<[String]>,
    /// Origins (`https://console.example:8443`) besides the service's own.
    origins: Arc<[String]>,
    /// Requests per token and second.
    rate: Arc<RateLimiter>,
}

impl Guard {
    /// A guard checking `tokens` (authentication on) or none (off), `hosts` and `origins`.
    pub fn new(
        tokens: Option<Tokens>,
        hosts: &[String],
        origins: &[String],
        rate: RateLimiter,
    ) -> Guard {
        Guard {
            tokens,
            rate: Arc::new(rate),
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        self.hosts.iter().any(|h| h == "*" || *h == name)
    }
}

/// The middleware: see the module documentation.
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let page = console_page(&request);
    match check(&guard, &mut request) {
        Ok(()) => {
            let principal = request.extensions().get::<Principal>().cloned();
            let mut response = next.run(request).await;
            // For the access log, which wraps this layer.
            if let Some(principal) = principal {
                response.extensions_mut().insert(principal);
            }
            response
        }
        // A browser opening a console page without a session is sent to sign in, then back.
        Err(refusal) if refusal.status() == StatusCode::UNAUTHORIZED && page.is_some() => {
            let back = page.unwrap_or_default();
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/login?next={}", encode(&back))) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(refusal) => *refusal,
    }
}

/// The path and query of a GET that a browser sends to open a page (it accepts HTML) outside
/// the API: a console page.
fn console_page(request: &Request) -> Option<String> {
    let accepts_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let uri = request.uri();
    (request.method() == Method::GET && accepts_html && !uri.path().starts_with("/api/"))
        .then(|| uri.path_and_query().map_or("/", |p| p.as_str()).to_owned())
}

/// Percent-encodes a path for a query parameter (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn check(guard: &Guard, request: &mut Request) -> Result<(), Box<Response>> {
    let headers = request.headers();
    // 1. Host (absent only from HTTP/1.0 clients and in-process tests; browsers always send it).
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or_default();
        if !guard.host_allowed(host) {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "unknown_host",
                format!(
                    "this service does not answer to the host {:?}; add it to http.allowed_hosts",
                    host_name(host)
                ),
            )
            .into_response()
            .into());
        }
    }
    // 2. Origin.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let own = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| {
                let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
                authority == host.to_ascii_lowercase()
            });
        if !own && !guard.origins.contains(&origin) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "foreign_origin",
                format!(
                    "requests from pages at {origin:?} are not accepted; add the origin to \
                     http.allowed_origins"
                ),
            )
            .into_response()
            .into());
        }
    }
    // 3. Token and scope.
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let access = path
        .as_deref()
        .map(|p| (p, required_access(request.method(), p)));
    let presented = bearer(headers);
    if let Some(tokens) = &guard.tokens {
        match access {
            // Unmatched paths and other methods on a known path: the router answers 404/405.
            None => {}
            Some((_, Some(Access::Public))) => {}
            Some((p, None)) if !has_any_method(p) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "undeclared_route",
                    "this route declares no scope, so nobody may call it",
                )
                .into_response()
                .into());
            }
            Some((_, None)) => {}
            Some((_, Some(Access::Scoped(needed)))) => {
                let principal = match (presented, session_cookie(headers)) {
                    (Some(secret), _) => tokens.authenticate(secret).ok_or_else(|| {
                        unauthorized("the bearer token is unknown, revoked or expired")
                    })?,
                    (None, Some(cookie)) => tokens.session(cookie).ok_or_else(|| {
                        unauthorized(
                            "the session has ended (expired, closed, or its token revoked); \
                             open a new one with POST /api/v1/session",
                        )
                    })?,
                    (None, None) => {
                        return Err(unauthorized("this endpoint needs a bearer token").into());
                    }
                };
                if !principal.may(needed) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "insufficient_scope",
                        format!(
                            "the token {:?} lacks the {needed} scope this endpoint needs",
                            principal.name
                        ),
                    )
                    .into_response()
                    .into());
                }
                if !guard.rate.allow(&principal.name, std::time::Instant::now()) {
                    metrics::counter!(names::REJECTED, "limit" => "auth.rate_limit_per_sec")
                        .increment(1);
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!(
                            "the token {:?} sent more requests than auth.rate_limit_per_sec \
                             allows; send again after Retry-After",
                            principal.name
                        ),
                    )
                    .with_retry_after(1)
                    .into_response()
                    .into());
                }
                request.extensions_mut().insert::<Principal>(principal);
            }
        }
    }
    // 4. No simple cross-site requests: of the methods that change something, browsers send
    //    only POST without asking first. Unknown routes are left to the router (404/405).
    let headers = request.headers();
    let known = access.is_some_and(|(_, a)| a.is_some());
    if request.method() == Method::POST
        && known
        && bearer(headers).is_none()
        && simple_content(headers)
    {
        return Err(ApiError::unsupported_media_type(
            "a request that changes something must send content-type application/json (an \
             empty body is fine), application/yaml or application/x-protobuf, or a bearer \
             token: a web page can send forms and text/plain to any address without asking",
        )
        .into_response()
        .into());
    }
    Ok(())
}

/// Whether the body type is one a browser sends cross-site without a preflight (or none).
fn simple_content(headers: &HeaderMap) -> bool {
    match media_type(headers) {
        None => true,
        Some(media) => matches!(
            media.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" | ""
        ),
    }
}

/// The secret of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rootcause\""),
    );
    response
}

/// Whether the table knows the path for some method (then another method is a 405).
fn has_any_method(path: &str) -> bool {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ]
    .iter()
    .any(|m| required_access(m, path).is_some())
}

/// The host name of a `Host` value, lowercased, without its port (`[::1]:8080` → `[::1]`).
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or("").to_owned();
    }
    host.rsplit_once(':')
        .map_or(host.clone(), |(name, _)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        let guard = Guard::new(None, &["localhost".into()], &[], RateLimiter::new(0.0, 0.0));
        assert!(guard.host_allowed("localhost:80"));
        assert!(!guard.host_allowed("attacker.example"));
        assert!(!guard.host_allowed("localhost.attacker.example:80"));
    }

    #[test]
    fn only_non_simple_content_types_pass_without_a_token() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            simple_content(&headers)
        };
        assert!(simple_content(&HeaderMap::new()));
        assert!(with("text/plain; charset=utf-8"));
        assert!(with("application/x-www-form-urlencoded"));
        assert!(with("multipart/form-data; boundary=x"));
        assert!(!with("application/json"));
        assert!(!with("application/yaml"));
        assert!(!with("application/x-protobuf"));
    }
}
