//! Alert intake (`POST /api/v1/alerts/alertmanager`, `POST /api/v2/alerts`, `POST /api/v1/alerts`)
//! and the alert list (`GET /api/v1/alerts`).
//!
//! A request is all or nothing: every alert is validated first, and one invalid alert refuses
//! the whole request (422, each problem named by index and field) with nothing stored. A valid
//! request is answered only after its alerts are committed: 202 (200 on the Alertmanager API
//! path, whose clients expect Alertmanager's status) with what the alerts did.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcause_correlation::{Fingerprint, Labels, Millis};
use rootcause_topology::Problem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{blocking, check_range, check_status, page_of, time_of};
use crate::error::{ApiError, ApiQuery, ErrorBody, parse_json, require_json};
use crate::ingest::payload::{self, PlainBatch, PostableAlert, WebhookPayload};
use crate::ingest::{Grouping, IncomingAlert, Ingest, IngestError, Receipt};
use crate::state::AppState;
use crate::store::{AlertFilter, StoredAlert};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_alertmanager_webhook))
        .routes(routes!(post_plain_alerts, list_alerts))
}

/// Alertmanager's own API path, served outside `/api/v1` so that Prometheus and vmalert can use
/// rootcause as their Alertmanager.
pub(super) fn alertmanager_api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_alertmanager_api))
}

/// Receives an Alertmanager webhook notification (payload version 4).
///
/// Configure a `webhook_configs` receiver with `url: http://rootcause:8080/api/v1/alerts/alertmanager`
/// and `send_resolved: true`. Deliveries are idempotent: a retry or the second member of an HA
/// pair changes nothing.
#[utoipa::path(post, path = "/alerts/alertmanager", tag = "alerts", request_body = WebhookPayload,
    responses(
        (status = 202, description = "Committed", body = Receipt),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 413, description = "Body or alert count over the limit", body = ErrorBody),
        (status = 422, description = "Invalid alerts; nothing stored", body = ErrorBody)))]
async fn post_alertmanager_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest_body(
        &state,
        &headers,
        body,
        StatusCode::ACCEPTED,
        |body: WebhookPayload, ingest, now| {
            Ok((
                body.alerts.len(),
                payload::webhook(body, ingest.config(), now),
            ))
        },
    )
    .await
}

/// Receives alerts in Alertmanager's API v2 shape (a JSON array), as Prometheus sends them.
///
/// An `endsAt` in the past resolves the alert; a firing alert ends at its `endsAt` (or after
/// `ingest.resolve_timeout_secs` without one) unless it is sent again, as in Alertmanager.
#[utoipa::path(post, path = "/api/v2/alerts", tag = "alerts", request_body = Vec<PostableAlert>,
    responses(
        (status = 200, description = "Committed", body = Receipt),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 413, description = "Body or alert count over the limit", body = ErrorBody),
        (status = 422, description = "Invalid alerts; nothing stored", body = ErrorBody)))]
async fn post_alertmanager_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest_body(
        &state,
        &headers,
        body,
        StatusCode::OK,
        |body: Vec<PostableAlert>, ingest, now| {
            Ok((
                body.len(),
                payload::alertmanager_api(body, ingest.config(), now),
            ))
        },
    )
    .await
}

/// Receives alerts in the plain form, for custom monitors.
#[utoipa::path(post, path = "/alerts", tag = "alerts", request_body = PlainBatch,
    responses(
        (status = 202, description = "Committed", body = Receipt),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 413, description = "Body or alert count over the limit", body = ErrorBody),
        (status = 422, description = "Invalid alerts; nothing stored", body = ErrorBody)))]
async fn post_plain_alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest_body(
        &state,
        &headers,
        body,
        StatusCode::ACCEPTED,
        |body: PlainBatch, ingest, now| {
            Ok((
                body.alerts.len(),
                payload::plain(body, ingest.config(), now),
            ))
        },
    )
    .await
}

/// What a validator gives back: the number of alerts sent, and the valid alerts or every
/// problem with them.
type Validated = (usize, Result<Vec<IncomingAlert>, Vec<Problem>>);

/// The one way alerts come in: the content type checked, the body parsed as `T` and validated
/// by `validate` (at most `ingest.max_alerts_per_request` alerts, all valid, or nothing is
/// stored), the alerts mapped, committed, and answered with `status` and the receipt.
///
/// Parsing a batch of thousands of alerts takes milliseconds, so it runs on the blocking pool:
/// the async workers stay free to move other requests and the writer's commits along.
///
/// If the group commit the request shared fails, it is parsed again from the body (kept, not
/// copied) and sent alone, so that another client's bad request never fails this one.
async fn ingest_body<T, F>(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    status: StatusCode,
    validate: F,
) -> Result<Response, ApiError>
where
    T: DeserializeOwned,
    F: Fn(T, &Ingest, Millis) -> Result<Validated, ApiError> + Copy + Send + 'static,
{
    require_json(headers)?;
    let body = body?;
    let ingest = state.ingest.clone();
    let now = state.clock.now_millis();
    let prepare = move |body: Bytes| {
        let ingest = ingest.clone();
        blocking(move || {
            let parsed: T = parse_json(&body)?;
            let (count, alerts) = validate(parsed, &ingest, now)?;
            check_count(&ingest, count)?;
            Ok::<_, ApiError>(ingest.prepare(alerts.map_err(invalid_alerts)?))
        })
    };
    let prepared = prepare(body.clone()).await??;
    let receipt = match state.ingest.submit(prepared, Grouping::Shared).await {
        Err(IngestError::GroupFailed(why)) => {
            tracing::warn!(%why, "a group commit failed; sending this request again alone");
            let prepared = prepare(body).await??;
            state.ingest.submit(prepared, Grouping::Alone).await?
        }
        answer => answer?,
    };
    Ok((status, Json(receipt)).into_response())
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> ApiError {
        match error {
            IngestError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down; nothing was stored, send again",
            ),
            IngestError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the ingest queue is full (ingest.queue_capacity); nothing was stored, send \
                 again after Retry-After",
            )
            .with_retry_after(1),
            error @ (IngestError::NotStored(_) | IngestError::GroupFailed(_)) => {
                ApiError::internal(error)
            }
        }
    }
}

fn check_count(ingest: &Ingest, count: usize) -> Result<(), ApiError> {
    let limit = ingest.config().max_alerts_per_request;
    if count > limit {
        metrics::counter!(crate::telemetry::names::REJECTED, "limit" => "ingest.max_alerts_per_request")
            .increment(1);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_alerts",
            format!(
                "{count} alerts in one request; at most {limit} are accepted \
                 (ingest.max_alerts_per_request); nothing was stored"
            ),
        ));
    }
    Ok(())
}

fn invalid_alerts(problems: Vec<Problem>) -> ApiError {
    let message = match problems.as_slice() {
        [one] => format!("invalid alert: {one}; nothing was stored"),
        many => format!("{} problems; nothing was stored", many.len()),
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_alerts", message)
        .with_problems(problems)
}

/// The first of `rows` that fit in about `budget` bytes of JSON (at least one), and whether
/// some were left out: a page is capped in bytes as well as in rows, since an alert may carry up
/// to `ingest.max_alert_bytes` of labels and annotations.
pub(super) fn within_budget(mut rows: Vec<StoredAlert>, budget: usize) -> (Vec<StoredAlert>, bool) {
    let mut used = 0;
    let keep = rows
        .iter()
        .position(|row| {
            // Labels and annotations are stored as JSON already; the other fields and the
            // field names take a few hundred bytes.
            used += row.labels.len()
                + row.annotations.len()
                + row.generator_url.as_ref().map_or(0, String::len)
                + 400;
            used > budget
        })
        .map_or(rows.len(), |first_over| first_over.max(1));
    let cut = keep < rows.len();
    rows.truncate(keep);
    (rows, cut)
}

/// An alert occurrence.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AlertView {
    /// Row id: the order alerts were first received in.
    id: i64,
    /// Alertmanager fingerprint, 16 hex digits.
    fingerprint: String,
    /// `firing` or `resolved`.
    status: String,
    /// The service it was mapped to; null when unmapped.
    service: Option<String>,
    /// Whether no service was found for it.
    unmapped: bool,
    /// The incident it is in.
    incident_id: Option<i64>,
    /// Endpoint: `alertmanager-webhook`, `alertmanager-api` or `api`.
    source: String,
    /// The `severity` label.
    severity: Option<String>,
    /// Signal kind guessed from its labels.
    signal: String,
    /// Identifying labels.
    #[schema(value_type = Object)]
    labels: Labels,
    /// Annotations.
    #[schema(value_type = Object)]
    annotations: Labels,
    /// RFC 3339 start.
    starts_at: String,
    /// RFC 3339 end (resolved) or expiry (firing).
    ends_at: Option<String>,
    /// RFC 3339 time first received.
    received_at: String,
    /// RFC 3339 time last changed.
    updated_at: String,
    /// Link back to the source.
    generator_url: Option<String>,
}

impl From<StoredAlert> for AlertView {
    fn from(row: StoredAlert) -> Self {
        AlertView {
            id: row.id,
            fingerprint: Fingerprint::from_i64(row.fingerprint).to_string(),
            status: row.status,
            unmapped: row.service.is_none(),
            service: row.service,
            incident_id: row.incident_id,
            source: row.source,
            severity: row.severity,
            signal: row.signal,
            labels: serde_json::from_str(&row.labels).unwrap_or_default(),
            annotations: serde_json::from_str(&row.annotations).unwrap_or_default(),
            starts_at: time_of(row.starts_at),
            ends_at: row.ends_at.map(time_of),
            received_at: time_of(row.received_at),
            updated_at: time_of(row.updated_at),
            generator_url: row.generator_url,
        }
    }
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AlertQuery {
    /// `firing` or `resolved`.
    status: Option<String>,
    /// Mapped service.
    service: Option<String>,
    /// Only unmapped alerts (`true`) or only mapped ones (`false`).
    unmapped: Option<bool>,
    /// Incident id.
    incident: Option<i64>,
    /// RFC 3339: started at or after.
    since: Option<String>,
    /// RFC 3339: started at or before.
    until: Option<String>,
    /// Paging: only alerts with ids below this (`next_before` of the previous page).
    before: Option<i64>,
    /// Most alerts, 1 to 100000 (default 100).
    limit: Option<usize>,
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct AlertPage {
    /// The alerts.
    items: Vec<AlertView>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// Alerts, newest first, filtered and paged.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, description = "A page of alerts", body = AlertPage),
              (status = 400, description = "Bad filter", body = ErrorBody)))]
async fn list_alerts(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    check_range("limit", limit, 1..=100_000)?;
    check_status(query.status.as_deref(), &["firing", "resolved"])?;
    let page = page_of(&query.since, &query.until, query.before, limit)?;
    let filter = AlertFilter {
        status: query.status,
        service: query.service,
        unmapped: query.unmapped,
        incident: query.incident,
        page,
    };
    let rows = state.store.list_alerts(&filter).await?;
    let full = rows.len() == limit;
    let (rows, cut) = within_budget(rows, state.max_response_bytes);
    let next_before = (full || cut).then(|| rows.last().map(|r| r.id)).flatten();
    Ok(Json(AlertPage {
        items: rows.into_iter().map(AlertView::from).collect(),
        next_before,
    }))
}
