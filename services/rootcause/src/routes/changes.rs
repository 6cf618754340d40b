//! `POST /api/v1/changes` and `GET /api/v1/changes`: deploys, configuration changes, scaling and
//! infrastructure work, the evidence that most often explains an incident.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcause_correlation::{Millis, ServiceMapper};
use rootcause_topology::{Problem, Topology};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_range, millis_of, time_of};
use crate::config::IngestConfig;
use crate::error::{ApiError, ApiQuery, ErrorBody, parse_json, require_json};
use crate::ranking::ChangeRecord;
use crate::state::AppState;
use crate::store::{ChangeFilter, NewChange, StoredChange};

/// Kinds of change events.
const KINDS: [&str; 5] = ["deploy", "config", "scale", "infra", "other"];

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_changes, list_changes))
}

/// A change event as sent.
#[derive(Debug, Deserialize, ToSchema)]
struct ChangeEvent {
    /// The service changed (a name or alias of the topology, or any name).
    service: String,
    /// `deploy`, `config`, `scale`, `infra` or `other`.
    kind: String,
    /// RFC 3339 time of the change (default: now).
    #[serde(default, alias = "time")]
    at: Option<String>,
    /// Version deployed.
    #[serde(default)]
    version: Option<String>,
    /// Who made it.
    #[serde(default)]
    author: Option<String>,
    /// Link to the pipeline run, pull request or ticket.
    #[serde(default, alias = "url")]
    link: Option<String>,
    /// Free text.
    #[serde(default, alias = "summary")]
    description: Option<String>,
}

/// A stored change event.
#[derive(Debug, Serialize, ToSchema)]
struct ChangeView {
    /// Id.
    id: i64,
    /// Service as sent.
    service: String,
    /// The topology service it maps to; null if none.
    mapped_service: Option<String>,
    /// Kind.
    kind: String,
    /// RFC 3339 time of the change.
    at: String,
    /// Version deployed (empty if none).
    version: String,
    /// Who made it.
    author: Option<String>,
    /// Link.
    link: Option<String>,
    /// Free text.
    description: Option<String>,
    /// RFC 3339 time received.
    received_at: String,
}

impl From<StoredChange> for ChangeView {
    fn from(row: StoredChange) -> Self {
        ChangeView {
            id: row.id,
            service: row.service,
            mapped_service: row.mapped,
            kind: row.kind,
            at: time_of(row.at),
            version: row.version,
            author: row.author,
            link: row.link,
            description: row.description,
            received_at: time_of(row.received_at),
        }
    }
}

/// One stored event of a request.
#[derive(Debug, Serialize, ToSchema)]
struct StoredRef {
    /// Its id.
    id: i64,
    /// False when the same event (service, kind, time, version) was already stored.
    new: bool,
    /// Present when the changed service's changes are risky (a `risky_changes` risk of
    /// `GET /api/v1/risks`: they fail more often than the estate's, and often): its change
    /// failure rate, from the fault history.
    #[serde(skip_serializing_if = "Option::is_none")]
    risk: Option<ChangeRisk>,
}

/// Why a change was flagged on arrival.
#[derive(Debug, Serialize, ToSchema)]
struct ChangeRisk {
    /// The changed service (as the topology names it).
    service: String,
    /// Its changes in the look-back (`risk.lookback_days`).
    changes: usize,
    /// Those followed within a day by a fault it caused.
    failed: usize,
    /// Its change failure rate, weighed against the estate's.
    change_failure_rate: f64,
    /// In one sentence.
    why: String,
}

/// What a request stored.
#[derive(Debug, Serialize, ToSchema)]
struct ChangeReceipt {
    /// One entry per event sent, in order.
    items: Vec<StoredRef>,
}

/// Records change events: one object, or an array of them (all or nothing).
#[utoipa::path(post, path = "/changes", tag = "changes", request_body = ChangeEvent,
    responses(
        (status = 202, description = "Committed", body = ChangeReceipt),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid events; nothing stored", body = ErrorBody)))]
async fn post_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = body?;
    let now = state.clock.now_millis();
    let current = state.topology.current();
    let changes = parse_changes(&body, state.ingest.config(), &current.topology, now)?;
    let ids = state.store.insert_changes(&changes, now).await?;
    let history = state.risks.history();
    let risks: Vec<Option<ChangeRisk>> = changes
        .iter()
        .map(|change| {
            let service = change.mapped.as_deref()?;
            let seen = history.analysis.services.get(service)?;
            let rate = seen.change_failure_rate.filter(|_| seen.risky_changes)?;
            metrics::counter!(crate::telemetry::names::RISKY_CHANGES, "service" => service.to_owned())
                .increment(1);
            tracing::warn!(service, rate, "change to a service whose changes often fail");
            Some(ChangeRisk {
                service: service.to_owned(),
                changes: seen.changes,
                failed: seen.failed_changes,
                change_failure_rate: rate,
                why: format!(
                    "{service}'s changes were followed by a fault it caused {} of {} times in the \
                     last {} days (change failure rate {rate:.2})",
                    seen.failed_changes,
                    seen.changes,
                    state.risks.settings().lookback_days
                ),
            })
        })
        .collect();
    // Deploys near an incident are evidence: the incidents they concern are ranked again.
    let records = changes
        .into_iter()
        .zip(&ids)
        .filter(|(_, (_, new))| *new)
        .filter_map(|(change, &(id, _))| {
            ChangeRecord::of(StoredChange {
                id,
                service: change.service,
                mapped: change.mapped,
                kind: change.kind.to_owned(),
                at: change.at,
                version: change.version,
                author: change.author,
                link: change.link,
                description: change.description,
                received_at: now,
            })
        })
        .collect::<Vec<_>>();
    if !records.is_empty() {
        state.ranking.changes_recorded(records);
    }
    let receipt = ChangeReceipt {
        items: ids
            .into_iter()
            .zip(risks)
            .map(|((id, new), risk)| StoredRef { id, new, risk })
            .collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(receipt)).into_response())
}

/// A body of change events (one object, or an array of them), checked: every event valid and
/// within the limits, each mapped to a service of `topology`, or every problem with its path.
pub(super) fn parse_changes(
    body: &[u8],
    limits: &IngestConfig,
    topology: &Topology,
    now: Millis,
) -> Result<Vec<NewChange>, ApiError> {
    let events: Vec<ChangeEvent> = if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
    {
        parse_json(body)?
    } else {
        vec![parse_json(body)?]
    };
    if events.len() > limits.max_changes_per_request {
        metrics::counter!(crate::telemetry::names::REJECTED, "limit" => "ingest.max_changes_per_request")
            .increment(1);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_changes",
            format!(
                "{} change events in one request; at most {} are accepted \
                 (ingest.max_changes_per_request); nothing was stored",
                events.len(),
                limits.max_changes_per_request
            ),
        ));
    }
    let mapper = ServiceMapper::new(topology, &["service".to_owned()]);
    let mut problems = Vec::new();
    let mut changes = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let at = format!("[{index}]");
        if event.service.trim().is_empty() {
            problems.push(Problem::at(
                format!("{at}.service"),
                "service must not be empty",
            ));
        }
        let Some(kind) = KINDS.iter().find(|k| **k == event.kind) else {
            problems.push(Problem::at(
                format!("{at}.kind"),
                format!(
                    "unknown kind {:?}: expected one of {}",
                    event.kind,
                    KINDS.join(", ")
                ),
            ));
            continue;
        };
        let time = match millis_of("at", event.at.as_deref()) {
            Ok(time) => time.unwrap_or(now),
            Err(_) => {
                problems.push(Problem::at(
                    format!("{at}.at"),
                    format!("{:?} is not an RFC 3339 time", event.at.unwrap_or_default()),
                ));
                continue;
            }
        };
        let label = limits.label_value_length_limit;
        let annotation = limits.annotation_value_length_limit;
        let texts = [
            ("service", Some(&event.service), label),
            ("version", event.version.as_ref(), label),
            ("author", event.author.as_ref(), label),
            ("link", event.link.as_ref(), annotation),
            ("description", event.description.as_ref(), annotation),
        ];
        for (field, text, limit) in texts {
            if let Some(text) = text
                && text.len() > limit
            {
                problems.push(Problem::at(
                    format!("{at}.{field}"),
                    format!("{} bytes long; at most {limit} are accepted", text.len()),
                ));
            }
        }
        if time > crate::ingest::payload::LATEST_TIME {
            problems.push(Problem::at(format!("{at}.at"), "after 2100-01-01"));
        }
        let labels = [("service".to_owned(), event.service.clone())].into();
        changes.push(NewChange {
            mapped: mapper.map(&labels).map(str::to_owned),
            service: event.service,
            kind,
            at: time,
            version: event.version.unwrap_or_default(),
            author: event.author,
            link: event.link,
            description: event.description,
        });
    }
    if !problems.is_empty() {
        let message = format!("{} problems; nothing was stored", problems.len());
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_changes", message)
                .with_problems(problems),
        );
    }
    Ok(changes)
}

/// Filters of `GET /api/v1/changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChangeQuery {
    /// Service (as mapped or as sent).
    service: Option<String>,
    /// RFC 3339: at or after.
    since: Option<String>,
    /// RFC 3339: at or before.
    until: Option<String>,
    /// Most events, 1 to 10000 (default 100).
    limit: Option<usize>,
}

/// A list of change events.
#[derive(Debug, Serialize, ToSchema)]
struct ChangeList {
    /// Most recent first.
    items: Vec<ChangeView>,
}

/// Change events, most recent first.
#[utoipa::path(get, path = "/changes", tag = "changes", params(ChangeQuery),
    responses((status = 200, description = "Change events", body = ChangeList),
              (status = 400, description = "Bad filter", body = ErrorBody)))]
async fn list_changes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
) -> Result<Json<ChangeList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    check_range("limit", limit, 1..=10_000)?;
    let filter = ChangeFilter {
        service: query.service,
        since: millis_of("since", query.since.as_deref())?,
        until: millis_of("until", query.until.as_deref())?,
        limit: limit as i64,
    };
    let rows = state.store.list_changes(&filter).await?;
    Ok(Json(ChangeList {
        items: rows.into_iter().map(ChangeView::from).collect(),
    }))
}
