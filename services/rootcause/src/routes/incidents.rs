//! `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}`: incidents with their services,
//! alerts and timeline.

use axum::Json;
use axum::extract::State;
use rootcause_correlation::{IncidentKind, IncidentSnapshot};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use rootcause_topology::Topology;

use super::alerts::AlertView;
use super::{check_range, check_status, page_of, time_of};
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::live_risks::LiveRisks;
use crate::risk::priority::Priority;
use crate::state::AppState;
use crate::store::{IncidentFilter, StoredIncident};

/// Most alerts shown with one incident.
const MAX_INCIDENT_ALERTS: usize = 1000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents))
        .routes(routes!(get_incident))
}

/// A service of an incident.
#[derive(Debug, Serialize, ToSchema)]
struct IncidentService {
    /// Service name.
    name: String,
    /// RFC 3339 start of its first alert in the incident.
    first_alert_at: String,
}

/// A label pair unmapped alerts are grouped by.
#[derive(Debug, Serialize, ToSchema)]
struct LabelPair {
    /// Label name.
    name: String,
    /// Label value.
    value: String,
}

/// An incident.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct IncidentView {
    /// Id.
    id: i64,
    /// `open`, `resolved`, or `merged` (into `merged_into`).
    status: String,
    /// `topology` (alerts mapped to services) or `unmapped` (alerts grouped by labels).
    kind: String,
    /// Whether its alerts are unmapped.
    unmapped: bool,
    /// Services that alerted, by name.
    services: Vec<IncidentService>,
    /// For unmapped incidents: the label pairs that group its alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    label_groups: Vec<LabelPair>,
    /// RFC 3339 time it was opened.
    opened_at: String,
    /// RFC 3339 start of its earliest alert.
    started_at: String,
    /// RFC 3339 time of its latest alert activity.
    last_activity_at: String,
    /// RFC 3339 time its last firing alert ended, while none fires.
    quiet_since: Option<String>,
    /// RFC 3339 time it resolved.
    resolved_at: Option<String>,
    /// The incident it was merged into.
    merged_into: Option<i64>,
    /// Alert occurrences in it.
    alert_count: i64,
    /// Those firing.
    firing_count: i64,
    /// Topology version it was last correlated under.
    topology_version: Option<i64>,
    /// P1 to P4 from its services' criticality, raised while a critical window of the business
    /// calendar concerning them was open (the window is named).
    priority: Priority,
}

impl IncidentView {
    /// The view of a stored incident, with its priority as of `now` (ms).
    pub(super) fn of(row: StoredIncident, state: &AppState, now: i64) -> Result<Self, ApiError> {
        let services: Vec<(String, i64)> =
            serde_json::from_str(&row.services).map_err(ApiError::internal)?;
        let groups: Vec<(String, String)> =
            serde_json::from_str(&row.label_groups).map_err(ApiError::internal)?;
        let names: Vec<String> = services.iter().map(|(name, _)| name.clone()).collect();
        let priority = state.risks.priority(
            &names,
            &state.topology.current().topology,
            row.first_activity,
            row.resolved_at.unwrap_or(now),
        );
        Ok(IncidentView {
            priority,
            id: row.id,
            unmapped: row.kind == "unmapped",
            status: row.status,
            kind: row.kind,
            services: services
                .into_iter()
                .map(|(name, first)| IncidentService {
                    name,
                    first_alert_at: time_of(first),
                })
                .collect(),
            label_groups: groups
                .into_iter()
                .map(|(name, value)| LabelPair { name, value })
                .collect(),
            opened_at: time_of(row.opened_at),
            started_at: time_of(row.first_activity),
            last_activity_at: time_of(row.last_activity),
            quiet_since: row.quiet_since.map(time_of),
            resolved_at: row.resolved_at.map(time_of),
            merged_into: row.merged_into,
            alert_count: row.alert_count,
            firing_count: row.firing_count,
            topology_version: row.topology_version,
        })
    }
}

impl IncidentView {
    /// Its priority.
    pub(super) fn priority(&self) -> &Priority {
        &self.priority
    }

    /// The view of an incident as the correlation engine holds it (the same JSON as the store's
    /// row gives), with its priority as of `now` (ms).
    pub(super) fn of_snapshot(
        snapshot: &IncidentSnapshot,
        risks: &LiveRisks,
        topology: &Topology,
        now: i64,
    ) -> IncidentView {
        let names: Vec<String> = snapshot.services.iter().map(|(n, _)| n.clone()).collect();
        IncidentView {
            priority: risks.priority(
                &names,
                topology,
                snapshot.first_activity,
                snapshot.resolved_at.unwrap_or(now),
            ),
            id: i64::try_from(snapshot.id).unwrap_or(i64::MAX),
            status: snapshot.status.as_str().to_owned(),
            kind: snapshot.kind.as_str().to_owned(),
            unmapped: snapshot.kind == IncidentKind::Unmapped,
            services: snapshot
                .services
                .iter()
                .map(|(name, first)| IncidentService {
                    name: name.clone(),
                    first_alert_at: time_of(*first),
                })
                .collect(),
            label_groups: snapshot
                .groups
                .iter()
                .map(|(name, value)| LabelPair {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            opened_at: time_of(snapshot.opened_at),
            started_at: time_of(snapshot.first_activity),
            last_activity_at: time_of(snapshot.last_activity),
            quiet_since: snapshot.quiet_since.map(time_of),
            resolved_at: snapshot.resolved_at.map(time_of),
            merged_into: snapshot
                .merged_into
                .map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
            alert_count: i64::try_from(snapshot.alert_count).unwrap_or(i64::MAX),
            firing_count: i64::try_from(snapshot.firing_count).unwrap_or(i64::MAX),
            topology_version: snapshot.topology_version,
        }
    }
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct IncidentQuery {
    /// `open`, `resolved` or `merged`.
    status: Option<String>,
    /// Only incidents this service alerted in.
    service: Option<String>,
    /// RFC 3339: active at or after (an alert of it still fires, or its last activity is later).
    since: Option<String>,
    /// RFC 3339: active at or before.
    until: Option<String>,
    /// Paging: only incidents with ids below this (`next_before` of the previous page).
    before: Option<i64>,
    /// Most incidents, 1 to 1000 (default 50).
    limit: Option<usize>,
}

/// A page of incidents, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct IncidentPage {
    /// The incidents.
    items: Vec<IncidentView>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// Incidents, newest first, filtered and paged.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(IncidentQuery),
    responses((status = 200, description = "A page of incidents", body = IncidentPage),
              (status = 400, description = "Bad filter", body = ErrorBody)))]
async fn list_incidents(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<IncidentQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    check_range("limit", limit, 1..=1000)?;
    check_status(query.status.as_deref(), &["open", "resolved", "merged"])?;
    let page = page_of(&query.since, &query.until, query.before, limit)?;
    let filter = IncidentFilter {
        status: query.status,
        service: query.service,
        page,
    };
    let rows = state.store.list_incidents(&filter).await?;
    let next_before = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let now = state.clock.now_millis();
    Ok(Json(IncidentPage {
        items: rows
            .into_iter()
            .map(|row| IncidentView::of(row, &state, now))
            .collect::<Result<_, _>>()?,
        next_before,
    }))
}

/// A timeline entry.
#[derive(Debug, Serialize, ToSchema)]
struct TimelineView {
    /// RFC 3339 time.
    at: String,
    /// `opened`, `service_joined`, `merged`, `merged_into`, `all_alerts_ended`, `refired`,
    /// `resolved`, `reopened`.
    kind: String,
    /// The event's details (services, alert fingerprints, the other incident of a merge).
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// An incident with its alerts and timeline.
#[derive(Debug, Serialize, ToSchema)]
struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    incident: IncidentView,
    /// Its alerts, first received first (at most 1000, and at most `http.max_response_bytes`
    /// of them).
    alerts: Vec<AlertView>,
    /// Whether it has more alerts than shown (list them with `GET /api/v1/alerts?incident=`).
    alerts_truncated: bool,
    /// What happened to it, oldest first.
    timeline: Vec<TimelineView>,
}

/// One incident: its services, alerts and timeline (with merges).
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, description = "The incident", body = IncidentDetail),
              (status = 404, description = "No such incident", body = ErrorBody)))]
async fn get_incident(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let row = state
        .store
        .incident(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    let mut alerts = state
        .store
        .incident_alerts(id, MAX_INCIDENT_ALERTS as i64 + 1)
        .await?;
    let mut alerts_truncated = alerts.len() > MAX_INCIDENT_ALERTS;
    alerts.truncate(MAX_INCIDENT_ALERTS);
    let (alerts, cut) = super::alerts::within_budget(alerts, state.max_response_bytes);
    alerts_truncated |= cut;
    let timeline = state
        .store
        .incident_timeline(id)
        .await?
        .into_iter()
        .map(|event| TimelineView {
            at: time_of(event.at),
            kind: event.kind,
            detail: serde_json::from_str(&event.detail).unwrap_or_default(),
        })
        .collect();
    Ok(Json(IncidentDetail {
        incident: IncidentView::of(row, &state, state.clock.now_millis())?,
        alerts: alerts.into_iter().map(AlertView::from).collect(),
        alerts_truncated,
        timeline,
    }))
}
