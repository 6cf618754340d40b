//! The HTTP API: one module per resource, each owning its routes; this module assembles them,
//! produces the OpenAPI document from the handlers' annotations, and adds the cross-cutting
//! layers (request ids, tracing spans, metrics, the [`auth`] guard, body limit, timeout).

mod actions;
mod alerts;
mod changes;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod health;
mod hypotheses;
mod incident;
mod incident_metrics;
mod incidents;
mod learning;
mod reports;
mod risks;
mod services;
mod session;
mod tokens;
mod topology;
mod traces;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rootcause_topology::{Topology, TopologyError};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{self, Guard, RateLimiter};
use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Page;
use crate::telemetry::names;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rootcause",
        description = "Root-cause analysis for alert storms: alerts are correlated into incidents \
                       across a service-dependency graph and the likely root causes ranked. \
                       Every error answer has the body `ErrorBody`."
    ),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "topology", description = "The service-dependency graph and its versions"),
        (name = "services", description = "Services, their neighbours and blast radius"),
        (name = "alerts", description = "Alert intake (Alertmanager webhook, Alertmanager API, plain JSON) and the alert list. A request is all or nothing: one invalid alert refuses it with every problem named by index and field, and nothing is stored; a success is answered only after the alerts are committed."),
        (name = "incidents", description = "Alerts correlated into incidents across the dependency graph, their ranked root-cause hypotheses (also as a live event stream) and the metric windows posted as their evidence"),
        (name = "changes", description = "Deploys, configuration changes and other change events"),
        (name = "actions", description = "Emergency actions: the runbook catalogue, similar past incidents, human approval or rejection of suggested actions (automation runs only after approval) and the append-only audit log"),
        (name = "auth", description = "API tokens with scopes (ingest, read, respond, admin); every route's scope is listed in the service's auth module"),
        (name = "learning", description = "Fault history (confirmed resolutions, feedback on hypotheses, imported past incidents), training jobs, and the versioned model registry with its promotion gate and rollback"),
    )
)]
struct ApiDoc;

/// The whole application: API routes, OpenAPI document and layers.
pub fn router(state: AppState, http: &HttpConfig) -> Router {
    let guard = Guard::new(
        state.auth_required.then(|| state.tokens.clone()),
        &http.allowed_hosts,
        &http.allowed_origins,
        RateLimiter::new(state.rate_limit.0, state.rate_limit.1),
    );
    let v1 = OpenApiRouter::new()
        .merge(topology::router())
        .merge(risks::router())
        .merge(reports::router())
        .merge(traces::router())
        .merge(services::router())
        .merge(alerts::router())
        .merge(incidents::router())
        .merge(hypotheses::router())
        .merge(incident_metrics::router())
        .merge(changes::router())
        .merge(learning::router())
        .merge(actions::router())
        .merge(tokens::router())
        .merge(session::router());
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(alerts::alertmanager_api_router())
        .nest("/api/v1", v1)
        .split_for_parts();
    let openapi = Arc::new(openapi);

    router
        .merge(crate::console::router())
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(guard, auth::guard))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(http.request_timeout_secs),
            time_limit,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(SetRequestIdLayer::x_request_id(CountingRequestId::default()))
        .with_state(state)
}

/// Answers 503 (with the usual JSON error body) when a request takes longer than the limit.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {limit:?} (http.request_timeout_secs)"),
        )
        .into_response(),
    }
}

/// Counts requests and their latency by matched route (never by raw path, which would let
/// clients create unbounded label values), and writes the access log: one line per request at
/// info level (target `rootcause::access`), with the token's name when one was presented and
/// the client's address.
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other", // clients choose methods; they must not choose our label values
    };
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let token = response
        .extensions()
        .get::<auth::Principal>()
        .map(|p| p.name.as_str());
    tracing::info!(
        target: "rootcause::access",
        method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        token,
        client,
        "request"
    );
    metrics::counter!(
        names::HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(names::HTTP_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// Request ids `<process start, hex>-<counter>`: unique within a process, short in logs, and
/// unlikely to repeat across restarts. A client's own `x-request-id` is kept.
#[derive(Clone)]
struct CountingRequestId {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for CountingRequestId {
    fn default() -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        CountingRequestId {
            prefix: format!("{:x}", started & 0xff_ffff_ffff).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for CountingRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The version a write was made from, from an `If-Match` header: `"7"` (the `ETag` of
/// `GET /api/v1/topology`); `None` when absent or `*`. A weak tag (`W/"7"`) never matches, as
/// RFC 9110 requires for `If-Match`, so it answers 412; a list of tags is not supported (400).
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    if text.starts_with("W/") {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            "a weak entity tag never matches in If-Match; send the ETag as served",
        ));
    }
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|id| id.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_if_match",
                format!("If-Match must be one topology version ETag such as \"7\", got {text:?}"),
            )
        })
}

/// Runs a handler's graph work on the blocking pool: it grows with the topology, and the async
/// workers must stay free for other requests (and for the request timeout to fire).
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// RFC 3339 (UTC, milliseconds) for epoch milliseconds.
fn time_of(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The part of a list a query asks for: its `since` and `until` (RFC 3339), `before` and a
/// `limit` already checked.
fn page_of(
    since: &Option<String>,
    until: &Option<String>,
    before: Option<i64>,
    limit: usize,
) -> Result<Page, ApiError> {
    Ok(Page {
        since: millis_of("since", since.as_deref())?,
        until: millis_of("until", until.as_deref())?,
        before,
        limit: i64::try_from(limit).unwrap_or(i64::MAX),
    })
}

/// 400 unless the `status` filter, when given, is one of `allowed`.
fn check_status(status: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match status {
        Some(status) if !allowed.contains(&status) => {
            let (last, others) = allowed.split_last().expect("some statuses are allowed");
            Err(ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "status must be {} or {last}, got {status:?}",
                    others.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Epoch milliseconds of an RFC 3339 query parameter; 400 naming `name` when it is not one.
fn millis_of(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_millis())
                .map_err(|error| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("{name} must be an RFC 3339 time, got {text:?} ({error})"),
                    )
                })
        })
        .transpose()
}

/// An `ETag` naming a topology version.
fn version_etag(id: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{id}\""))
}

/// Answers 400 for a query parameter outside its range.
fn check_range(
    name: &str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ApiError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "{name} must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Applies a change made through the API: conditional on `If-Match` when the request has one,
/// recorded with `note`, answered by [`change_response`].
async fn apply_change<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    note: String,
    stored: StatusCode,
    change: impl Fn(&mut Topology) -> Result<T, TopologyError> + Send + Sync + 'static,
) -> Result<Response, ApiError> {
    let expected = expected_version(headers)?;
    let (_, outcome) = state
        .topology
        .modify(expected, "api", &note, change)
        .await?;
    Ok(change_response(outcome, stored))
}

/// A response from a topology change: `stored` (201 for a PUT, 200 for a DELETE) with the new
/// version, or 200 when nothing changed.
fn change_response(outcome: crate::live_topology::Outcome, stored: StatusCode) -> Response {
    use crate::live_topology::Outcome;
    let (status, body) = match &outcome {
        Outcome::Stored { previous, current } => (
            stored,
            topology::TopologyChange {
                changed: true,
                version: current.version.clone(),
                diff: rootcause_topology::TopologyDiff::between(
                    &previous.topology,
                    &current.topology,
                ),
            },
        ),
        Outcome::Unchanged(current) => (
            StatusCode::OK,
            topology::TopologyChange {
                changed: false,
                version: current.version.clone(),
                diff: rootcause_topology::TopologyDiff::default(),
            },
        ),
    };
    let id = body.version.id;
    (
        status,
        [
            version_etag(id),
            (header::LOCATION, format!("/api/v1/topology/versions/{id}")),
        ],
        Json(body),
    )
        .into_response()
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod console_tests;
#[cfg(test)]
mod guard_tests;
