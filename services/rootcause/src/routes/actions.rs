//! Emergency actions: the runbook catalogue, similar past incidents, approval and rejection of
//! suggested actions, and the audit log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_models::actions::CatalogueError;
use rootcause_topology::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incident::{IncidentPath, gone_error};
use super::time_of;
use crate::actions::{CatalogueRejection, DecideError, DecisionRequest, masked};
use crate::advice::incident_of_key;
use crate::auth::Principal;
use crate::config::outgoing::origin;
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody, OptionalJson, is_json, media_type};
use crate::state::AppState;
use crate::store::{
    AuditFilter, Decision, RunStatus, StoreError, StoredAudit, StoredDecision, StoredRun,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_runbooks, put_runbooks))
        .routes(routes!(similar))
        .routes(routes!(incident_actions))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(audit))
}

/// The runbook catalogue in force.
#[derive(Debug, Serialize, ToSchema)]
struct CatalogueView {
    /// Stored catalogue version (grows with every replacement).
    version: Option<i64>,
    /// Content digest of the catalogue.
    digest: Option<String>,
    /// RFC 3339; when this version was stored.
    updated_at: Option<String>,
    /// Who stored it (`bundled`, `config`, or the actor of the `PUT`).
    updated_by: Option<String>,
    /// The runbooks: id, title, description, risk, applicability (fault types, signals,
    /// service selector, whether a recent change is required), steps, automation.
    #[schema(value_type = Vec<Object>)]
    runbooks: Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunbooksQuery {
    /// `json` (default) or `yaml`.
    #[serde(default)]
    format: Option<String>,
}

/// The catalogue in force with its header values masked (they hold tokens).
async fn catalogue_response(state: &AppState, yaml: bool) -> Result<Response, ApiError> {
    let (catalogue, stored) = state.actions.catalogue().await;
    let catalogue = masked(&catalogue);
    if yaml {
        return Ok((
            [(header::CONTENT_TYPE, "application/yaml")],
            catalogue.to_yaml(),
        )
            .into_response());
    }
    Ok(Json(CatalogueView {
        version: stored.as_ref().map(|s| s.id),
        digest: stored.as_ref().map(|s| s.digest.clone()),
        updated_at: stored.as_ref().map(|s| time_of(s.created_at)),
        updated_by: stored.as_ref().map(|s| s.actor.clone()),
        runbooks: serde_json::to_value(&catalogue.runbooks).map_err(ApiError::internal)?,
    })
    .into_response())
}

/// The runbook catalogue in force: what actions can be suggested, when each applies, its risk,
/// its steps and its automation. `?format=yaml` gives the YAML document `PUT` takes. Header
/// values of automations (tokens) are shown as `***`; a `PUT` that sends `***` back keeps the
/// stored value.
#[utoipa::path(get, path = "/runbooks", tag = "actions",
    params(RunbooksQuery),
    responses((status = 200, description = "The catalogue", body = CatalogueView),
        (status = 400, description = "Unknown format", body = ErrorBody)))]
async fn get_runbooks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunbooksQuery>,
) -> Result<Response, ApiError> {
    let yaml = match query.format.as_deref() {
        None | Some("json") => false,
        Some("yaml") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("format must be json or yaml, got {other:?}"),
            ));
        }
    };
    catalogue_response(&state, yaml).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ActorQuery {
    /// Who makes the change, for the audit log, when authentication is off; with a token,
    /// its name.
    #[serde(default)]
    actor: Option<String>,
}

/// Replaces the runbook catalogue (YAML, or the same as JSON). It is validated whole: ids,
/// risks, fault types, signals, selectors, steps, and automation URLs, whose hosts must be in
/// `actions.allowed_hosts`. A refused catalogue changes nothing; an accepted one is stored as a
/// new version, written to the audit log, and every held incident is re-ranked with it.
#[utoipa::path(put, path = "/runbooks", tag = "actions",
    params(ActorQuery),
    request_body(description = "The catalogue: `runbooks: [...]` (YAML or JSON)",
        content((String = "application/yaml"), (String = "application/x-yaml"),
                (String = "text/yaml"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Stored and in force", body = CatalogueView),
        (status = 400, description = "Not UTF-8, or not YAML/JSON at all", body = ErrorBody),
        (status = 415, description = "Neither YAML nor JSON", body = ErrorBody),
        (status = 422, description = "Invalid catalogue (syntax or rules), with the path of the \
         problem", body = ErrorBody)))]
async fn put_runbooks(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    ApiQuery(query): ApiQuery<ActorQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let media = media_type(&headers).unwrap_or_default();
    let yaml = matches!(
        media.as_str(),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
    );
    if !yaml && !is_json(&headers) {
        return Err(ApiError::unsupported_media_type(
            "expected a catalogue with content-type application/yaml or application/json",
        ));
    }
    let actor = actor_of(principal.as_ref(), query.actor, "actor")?;
    let body = body?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::bad_request("malformed_document", format!("the body is not UTF-8: {e}"))
    })?;
    state.actions.replace_catalogue(text, &actor).await?;
    catalogue_response(&state, false).await
}

impl From<CatalogueRejection> for ApiError {
    fn from(rejection: CatalogueRejection) -> ApiError {
        match rejection {
            CatalogueRejection::Invalid(error) => invalid_catalogue(error),
            CatalogueRejection::Sealing(error) => ApiError::internal(error),
            CatalogueRejection::Store(error) => error.into(),
        }
    }
}

/// 400 for text that is not YAML or JSON at all (as for every body), 422 for a catalogue of the
/// wrong shape or one that breaks a rule.
fn invalid_catalogue(error: CatalogueError) -> ApiError {
    let (status, code) = if error.syntax {
        (StatusCode::BAD_REQUEST, "malformed_document")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_runbooks")
    };
    ApiError::new(status, code, format!("invalid runbook catalogue: {error}")).with_problems(vec![
        Problem {
            path: error.path,
            message: error.message,
            line: None,
            column: None,
        },
    ])
}

/// An actor named in a request: 1 to 128 printable characters; `None` is `api`.
/// Who acts: the authenticated token's name whenever there is one (what the client says is
/// then ignored), else what the client says (authentication off: loopback only), else `api`.
fn actor_of(
    principal: Option<&Extension<Principal>>,
    actor: Option<String>,
    path: &str,
) -> Result<String, ApiError> {
    if let Some(Extension(principal)) = principal {
        return Ok(principal.name.clone());
    }
    let actor = actor.unwrap_or_else(|| "api".to_owned());
    if actor.trim().is_empty() || actor.chars().count() > 128 || actor.chars().any(char::is_control)
    {
        return Err(unprocessable(
            path,
            format!("must be 1 to 128 printable characters, got {actor:?}"),
        ));
    }
    Ok(actor)
}

fn unprocessable(path: &str, message: String) -> ApiError {
    ApiError::invalid_field(path, message)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SimilarQuery {
    /// Most past incidents to return (1 to 50, default 5).
    #[serde(default)]
    limit: Option<usize>,
}

/// Past incidents like this one.
#[derive(Debug, Serialize, ToSchema)]
struct SimilarView {
    /// The incident asked about.
    incident: u64,
    /// Past incidents in the fault history, most similar first.
    similar: Vec<SimilarIncidentView>,
}

/// A past incident and how it was resolved.
#[derive(Debug, Serialize, ToSchema)]
struct SimilarIncidentView {
    /// 1 for identical incident features, toward 0 for unlike ones.
    similarity: f64,
    /// Its history key (`incident:<id>` for this service's resolved incidents,
    /// `import:<source>:<id>` for imported ones).
    key: String,
    /// The incident id, for this service's own resolved incidents.
    incident: Option<u64>,
    /// The system it happened in (imported history).
    system: String,
    /// RFC 3339 start.
    started_at: String,
    /// The confirmed root cause.
    root_cause: String,
    /// The confirmed fault class.
    fault_type: Option<String>,
    /// What was done.
    action: Option<String>,
    /// Whether it worked.
    worked: Option<bool>,
    /// Seconds from the first alert to mitigation.
    time_to_mitigate_s: Option<f64>,
    /// Its recorded resolutions (this service's own incidents), oldest first.
    #[schema(value_type = Vec<Object>)]
    resolutions: Vec<Value>,
}

/// The past incidents most like this one (nearest neighbours over incident-level evidence
/// features: how strongly each fault mechanism shows and how widely), with their confirmed
/// causes, the actions that resolved them and the time to mitigate. Only incidents in the fault
/// history (resolved here, or imported) are searched.
#[utoipa::path(get, path = "/incidents/{id}/similar", tag = "actions",
    params(("id" = i64, Path, description = "Incident id"), SimilarQuery),
    responses(
        (status = 200, description = "Most similar first", body = SimilarView),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 404, description = "No such incident, or merged (code `merged`)", body = ErrorBody)))]
async fn similar(
    State(state): State<AppState>,
    incident_path: IncidentPath,
    ApiQuery(query): ApiQuery<SimilarQuery>,
) -> Result<Response, ApiError> {
    let incident = incident_path.id;
    let limit = query.limit.unwrap_or(5);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit must be 1 to 50, got {limit}"),
        ));
    }
    let found = incident_path.held(state.actions.similar(incident, limit).await?)?;
    let mut similar = Vec::with_capacity(found.len());
    for s in found {
        let own = incident_of_key(&s.past.key);
        let resolutions = match own {
            Some(past) => state
                .store
                .resolutions(past as i64)
                .await?
                .into_iter()
                .map(|stored| {
                    let r = stored.resolution;
                    serde_json::json!({
                        "root_cause": r.root_cause,
                        "fault_type": r.fault_type,
                        "action": r.action,
                        "worked": r.worked,
                        "time_to_mitigate_s": r.time_to_mitigate_s,
                        "notes": r.notes,
                        "resolved_by": r.resolved_by,
                        "recorded_at": time_of(stored.recorded_at),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        similar.push(SimilarIncidentView {
            similarity: s.similarity,
            incident: own,
            system: s.past.system,
            started_at: time_of(s.past.started_at.saturating_mul(1000)),
            root_cause: s.past.root_cause,
            fault_type: s.past.fault_type,
            action: s.past.action,
            worked: s.past.worked,
            time_to_mitigate_s: s.past.time_to_mitigate_s,
            key: s.past.key,
            resolutions,
        });
    }
    Ok(Json(SimilarView { incident, similar }).into_response())
}

/// A responder's decision on a suggested action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionPost {
    /// Who decides, when authentication is off (default `api`); with a token, its name.
    #[serde(default)]
    actor: Option<String>,
    /// Why.
    #[serde(default)]
    comment: Option<String>,
    /// The hypothesis (service) the action is for; default: the most likely hypothesis that
    /// suggests it, else the most likely one.
    #[serde(default)]
    service: Option<String>,
}

/// An automation run.
#[derive(Debug, Serialize, ToSchema)]
struct RunView {
    /// Run id (`Idempotency-Key: rootcause-run-<id>` on its calls).
    id: i64,
    /// The approval that started it.
    decision: i64,
    /// The runbook.
    action: String,
    /// Scheme, host and port of the webhook (its path may hold a token, so it is not shown).
    target: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    #[schema(value_type = String)]
    status: RunStatus,
    /// Attempts made.
    attempts: u32,
    /// Attempts allowed (1 + the runbook's retries).
    max_attempts: u32,
    /// Time allowed per attempt.
    timeout_ms: u64,
    /// HTTP status of the last answer.
    response_status: Option<u16>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// RFC 3339: approved.
    created_at: String,
    /// RFC 3339: finished.
    finished_at: Option<String>,
}

impl From<StoredRun> for RunView {
    fn from(r: StoredRun) -> Self {
        RunView {
            id: r.id,
            decision: r.decision,
            action: r.action,
            target: origin(&r.url),
            status: r.status,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            timeout_ms: r.timeout_ms,
            response_status: r.response_status,
            last_error: r.last_error,
            created_at: time_of(r.created_at),
            finished_at: r.finished_at.map(time_of),
        }
    }
}

/// A recorded decision and the automation run it started.
#[derive(Debug, Serialize, ToSchema)]
struct DecisionView {
    /// The decision.
    decision: StoredDecision,
    /// The automation run (approved runbooks with automation only): its status moves from
    /// `pending` through `running` to `succeeded` or `failed`; see
    /// `GET /api/v1/incidents/{id}/actions`.
    run: Option<RunView>,
}

/// Approves a runbook for an incident. A runbook with automation gets its webhook called
/// now, once (retried on failure with backoff, each attempt bounded by its timeout; never
/// called before this approval). Any runbook of the catalogue may be approved, suggested or
/// not; the audit log records which. An action is approved at most once per incident.
#[utoipa::path(post, path = "/incidents/{id}/actions/{action}/approve", tag = "actions",
    params(("id" = i64, Path, description = "Incident id"),
        ("action" = String, Path, description = "Runbook id")),
    request_body(content = Option<DecisionPost>, description = "Optional: actor, comment, service"),
    responses(
        (status = 201, description = "Approved (no automation)", body = DecisionView),
        (status = 202, description = "Approved; the automation run has started", body = DecisionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such incident or runbook, or merged (code `merged`)",
         body = ErrorBody),
        (status = 409, description = "Already approved", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 422, description = "Bad body; the runbook does not apply to the service \
         (`not_applicable`); its automation host is not allowed", body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    incident: IncidentPath,
    ApiPath((_id, action)): ApiPath<(i64, String)>,
    OptionalJson(post): OptionalJson<DecisionPost>,
) -> Result<Response, ApiError> {
    let actor = actor_of(principal.as_ref(), post.actor.clone(), "actor")?;
    decide(state, incident, action, Decision::Approved, actor, post).await
}

/// Rejects a suggested runbook for an incident (recorded with its reason in the audit log;
/// an approved action cannot be rejected afterwards).
#[utoipa::path(post, path = "/incidents/{id}/actions/{action}/reject", tag = "actions",
    params(("id" = i64, Path, description = "Incident id"),
        ("action" = String, Path, description = "Runbook id")),
    request_body(content = Option<DecisionPost>, description = "Optional: actor, comment, service"),
    responses(
        (status = 201, description = "Rejected", body = DecisionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such incident or runbook, or merged (code `merged`)",
         body = ErrorBody),
        (status = 409, description = "Already approved", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 422, description = "Bad body", body = ErrorBody)))]
async fn reject(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    incident: IncidentPath,
    ApiPath((_id, action)): ApiPath<(i64, String)>,
    OptionalJson(post): OptionalJson<DecisionPost>,
) -> Result<Response, ApiError> {
    let actor = actor_of(principal.as_ref(), post.actor.clone(), "actor")?;
    decide(state, incident, action, Decision::Rejected, actor, post).await
}

async fn decide(
    state: AppState,
    incident: IncidentPath,
    action: String,
    decision: Decision,
    actor: String,
    // The body is optional: a bare POST approves without a comment.
    post: DecisionPost,
) -> Result<Response, ApiError> {
    let comment = post.comment.unwrap_or_default();
    if comment.len() > 10_000 || comment.contains('\0') {
        return Err(unprocessable(
            "comment",
            "must be at most 10000 bytes without NUL characters".to_owned(),
        ));
    }
    let service = match post.service {
        Some(name) => {
            let current = state.topology.current();
            match current.topology.resolve(&name) {
                Some(service) => Some(service.name.clone()),
                None => {
                    return Err(unprocessable(
                        "service",
                        format!("no service {name:?} in the topology"),
                    ));
                }
            }
        }
        None => None,
    };
    let request = DecisionRequest {
        actor,
        comment,
        service,
    };
    let decided = state
        .actions
        .decide(incident.id, &action, decision, request)
        .await
        .map_err(|error| incident.error(error))?;
    let status = if decided.run.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        [(
            header::LOCATION,
            format!("/api/v1/incidents/{}/actions", incident.id),
        )],
        Json(DecisionView {
            decision: decided.decision,
            run: decided.run.map(RunView::from),
        }),
    )
        .into_response())
}

impl From<DecideError> for ApiError {
    fn from(error: DecideError) -> ApiError {
        match error {
            // Without the request's resource: handlers answer through `IncidentPath::error`.
            DecideError::Gone(gone) => gone_error(gone, "actions"),
            DecideError::UnknownAction { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_action", error.to_string())
            }
            DecideError::NotApplicable { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_applicable",
                error.to_string(),
            ),
            DecideError::NotAllowed { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "automation_not_allowed",
                error.to_string(),
            ),
            DecideError::Store(StoreError::Conflict(message)) => {
                ApiError::new(StatusCode::CONFLICT, "already_decided", message)
            }
            DecideError::Store(error) => error.into(),
        }
    }
}

/// The decisions on an incident's actions and their automation runs.
#[derive(Debug, Serialize, ToSchema)]
struct IncidentActionsView {
    /// The incident.
    incident: u64,
    /// Approvals and rejections, oldest first.
    decisions: Vec<StoredDecision>,
    /// Automation runs, oldest first.
    runs: Vec<RunView>,
}

/// The approvals, rejections and automation runs of an incident.
#[utoipa::path(get, path = "/incidents/{id}/actions", tag = "actions",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Decisions and runs", body = IncidentActionsView),
        (status = 404, description = "No such incident, or merged (code `merged`)", body = ErrorBody)))]
async fn incident_actions(
    State(state): State<AppState>,
    incident_path: IncidentPath,
) -> Result<Response, ApiError> {
    let incident = incident_path.id;
    incident_path.held(state.ranking.find(incident).await?)?;
    Ok(Json(IncidentActionsView {
        incident,
        decisions: state.store.decisions(incident).await?,
        runs: state
            .store
            .runs(incident)
            .await?
            .into_iter()
            .map(RunView::from)
            .collect(),
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only entries about this incident.
    #[serde(default)]
    incident: Option<u64>,
    /// Only entries of this kind: `suggested`, `notified`, `notify_failed`,
    /// `action_approved`, `action_rejected`, `automation_retry`, `automation_succeeded`,
    /// `automation_failed`, `runbooks_replaced`.
    #[serde(default)]
    kind: Option<String>,
    /// Only entries after this id (to page on, or to follow the log).
    #[serde(default)]
    after: Option<i64>,
    /// Most entries (1 to 1000, default 100).
    #[serde(default)]
    limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
struct AuditPage {
    /// Entries, oldest first.
    items: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
struct AuditEntryView {
    /// Grows with every entry; entries are never changed or removed.
    id: i64,
    /// RFC 3339.
    at: String,
    /// Who: a responder, `rootcause` (the service), `config` or `bundled`.
    actor: String,
    /// What happened.
    kind: String,
    /// The incident it concerns.
    incident: Option<u64>,
    /// The runbook it concerns.
    action: Option<String>,
    /// The service it concerns.
    service: Option<String>,
    /// Details: the suggestions shown, a decision's comment, an attempt's response.
    #[schema(value_type = Object)]
    detail: Value,
}

impl From<StoredAudit> for AuditEntryView {
    fn from(entry: StoredAudit) -> Self {
        let record = entry.record;
        AuditEntryView {
            id: entry.id,
            at: time_of(record.at),
            actor: record.actor,
            kind: record.kind,
            incident: record.incident,
            action: record.action,
            service: record.service,
            detail: record.detail,
        }
    }
}

/// The append-only audit log: every suggestion shown with a new top hypothesis, every
/// notification, approval, rejection, automation attempt and catalogue change, oldest first.
#[utoipa::path(get, path = "/audit", tag = "actions",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Bad parameter", body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit must be 1 to 1000, got {limit}"),
        ));
    }
    let entries = state
        .store
        .audit(&AuditFilter {
            incident: query.incident,
            kind: query.kind,
            after: query.after,
            limit,
        })
        .await?;
    let next_after = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        items: entries.into_iter().map(AuditEntryView::from).collect(),
        next_after,
    })
    .into_response())
}

#[cfg(test)]
mod tests;
