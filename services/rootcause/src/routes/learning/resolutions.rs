//! Resolutions of incidents and feedback on their hypotheses: what training learns from.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_models::diagnosis::FaultType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::time_of;
use crate::auth::Principal;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::learning::{OUTSIDE_CAUSES, ResolveError, action_problem};
use crate::routes::incident::{IncidentPath, gone_error};
use crate::state::AppState;
use crate::store::{NewFeedback, NewResolution, StoredFeedback, StoredResolution, Verdict};

use super::{known_service, text_problem, unprocessable};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_resolution, get_resolution))
        .routes(routes!(post_feedback))
}

/// The confirmed outcome of an incident.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolutionPost {
    /// The service that caused it (a topology name or alias), or `external` / `unknown`.
    root_cause: String,
    /// `cpu`, `memory`, `disk`, `network`, `code`, `deploy` or `other`.
    fault_type: String,
    /// The action that was taken (`restart`, `rollback`, `scale_out`, ...).
    #[serde(default)]
    action: Option<String>,
    /// Whether the action resolved the incident.
    #[serde(default)]
    worked: Option<bool>,
    /// Seconds from the incident's start to mitigation; default: until now.
    #[serde(default)]
    time_to_mitigate_s: Option<f64>,
    /// Free text.
    #[serde(default)]
    notes: String,
    /// Who confirmed it, when authentication is off; with a token, its name.
    #[serde(default)]
    resolved_by: String,
}

/// A recorded resolution.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct ResolutionView {
    id: i64,
    incident: i64,
    root_cause: String,
    fault_type: String,
    action: Option<String>,
    worked: Option<bool>,
    time_to_mitigate_s: Option<f64>,
    notes: String,
    resolved_by: String,
    /// RFC 3339.
    recorded_at: String,
}

impl From<StoredResolution> for ResolutionView {
    fn from(stored: StoredResolution) -> Self {
        let r = stored.resolution;
        ResolutionView {
            id: stored.id,
            incident: r.incident_id,
            root_cause: r.root_cause,
            fault_type: r.fault_type,
            action: r.action,
            worked: r.worked,
            time_to_mitigate_s: r.time_to_mitigate_s,
            notes: r.notes,
            resolved_by: r.resolved_by,
            recorded_at: time_of(stored.recorded_at),
        }
    }
}

/// A responder's verdict on one hypothesis.
#[derive(Debug, Serialize, ToSchema)]
struct FeedbackView {
    id: i64,
    incident: i64,
    service: String,
    /// `confirm` or `reject`.
    verdict: Verdict,
    /// The model whose hypothesis it was.
    model: String,
    note: String,
    by: String,
    /// RFC 3339.
    recorded_at: String,
}

impl From<StoredFeedback> for FeedbackView {
    fn from(f: StoredFeedback) -> Self {
        FeedbackView {
            id: f.id,
            incident: f.incident_id,
            service: f.service,
            verdict: f.verdict,
            model: f.model,
            note: f.note,
            by: f.by,
            recorded_at: time_of(f.recorded_at),
        }
    }
}

/// An incident's resolutions (latest last) and the feedback on its hypotheses.
#[derive(Debug, Serialize, ToSchema)]
struct ResolutionHistory {
    /// The latest resolution, if any.
    resolution: Option<ResolutionView>,
    /// Every resolution recorded, oldest first.
    resolutions: Vec<ResolutionView>,
    /// Confirmations and rejections of hypotheses, oldest first.
    feedback: Vec<FeedbackView>,
}
impl From<ResolveError> for ApiError {
    fn from(error: ResolveError) -> ApiError {
        match error {
            // Without the request's resource: handlers answer through `IncidentPath::error`.
            ResolveError::Gone(gone) => gone_error(gone, "resolution"),
            ResolveError::Store(error) => error.into(),
        }
    }
}

/// Records the confirmed root cause, fault type and action of an incident. The incident, with
/// the evidence its rankings see now, joins the fault history that training jobs learn from
/// (a later resolution of the same incident replaces it there; both stay in the incident's
/// record). The root cause must be a service of the topology, or `external` / `unknown` (kept,
/// but they teach the ranker nothing).
#[utoipa::path(post, path = "/incidents/{id}/resolution", tag = "learning",
    params(("id" = i64, Path, description = "Incident id")),
    request_body = ResolutionPost,
    responses(
        (status = 201, description = "Recorded", body = ResolutionView),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such incident, or merged (code `merged`)", body = ErrorBody),
        (status = 422, description = "Unknown service or fault type, bad number; with its path",
         body = ErrorBody)))]
async fn post_resolution(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    incident_path: IncidentPath,
    ApiJson(post): ApiJson<ResolutionPost>,
) -> Result<Response, ApiError> {
    let incident = incident_path.id;
    let id = incident_path.row();
    let root_cause = if OUTSIDE_CAUSES.contains(&post.root_cause.as_str()) {
        post.root_cause.clone()
    } else {
        let current = state.topology.current();
        match current.topology.resolve(&post.root_cause) {
            Some(service) => service.name.clone(),
            None => {
                return Err(unprocessable(
                    "root_cause",
                    format!(
                        "no service {:?} in the topology (version {}); name a service, or \
                         \"external\" or \"unknown\"",
                        post.root_cause, current.version.id
                    ),
                ));
            }
        }
    };
    let fault_types: Vec<&str> = FaultType::ALL
        .iter()
        .map(|f| f.as_str())
        .chain(["other"])
        .collect();
    if !fault_types.contains(&post.fault_type.as_str()) {
        return Err(unprocessable(
            "fault_type",
            format!(
                "must be one of {}, got {:?}",
                fault_types.join(", "),
                post.fault_type
            ),
        ));
    }
    if let Some(seconds) = post.time_to_mitigate_s
        && !(seconds.is_finite() && seconds >= 0.0)
    {
        return Err(unprocessable(
            "time_to_mitigate_s",
            format!("must be a number of seconds ≥ 0, got {seconds}"),
        ));
    }
    if let Some(action) = &post.action
        && let Some(problem) = action_problem(action)
    {
        return Err(unprocessable("action", problem));
    }
    for (path, text) in [("notes", &post.notes), ("resolved_by", &post.resolved_by)] {
        if let Some(problem) = text_problem(text, 10_000) {
            return Err(unprocessable(path, problem));
        }
    }
    let resolution = NewResolution {
        incident_id: id,
        root_cause,
        fault_type: post.fault_type,
        action: post.action,
        worked: post.worked,
        time_to_mitigate_s: post.time_to_mitigate_s,
        notes: post.notes,
        // With a token, who confirmed is the token, whatever the body says.
        resolved_by: principal.map_or(post.resolved_by, |Extension(p)| p.name),
    };
    let stored = state
        .learning
        .resolve(incident, resolution)
        .await
        .map_err(|error| incident_path.error(error))?;
    // Before answering, so that the next look at the risks counts this fault.
    state.refresh_risks().await;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/incidents/{id}/resolution"),
        )],
        Json(ResolutionView::from(stored)),
    )
        .into_response())
}

/// The resolutions of an incident and the feedback on its hypotheses.
#[utoipa::path(get, path = "/incidents/{id}/resolution", tag = "learning",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Its resolutions and feedback", body = ResolutionHistory),
        (status = 404, description = "No such incident, or merged (code `merged`)", body = ErrorBody)))]
async fn get_resolution(
    State(state): State<AppState>,
    incident_path: IncidentPath,
) -> Result<Response, ApiError> {
    let incident = incident_path.id;
    let id = incident_path.row();
    incident_path.held(state.ranking.find(incident).await?)?;
    let resolutions: Vec<ResolutionView> = state
        .store
        .resolutions(id)
        .await?
        .into_iter()
        .map(ResolutionView::from)
        .collect();
    let feedback = state
        .store
        .feedback(id)
        .await?
        .into_iter()
        .map(FeedbackView::from)
        .collect();
    let history = ResolutionHistory {
        resolution: resolutions.last().cloned(),
        resolutions,
        feedback,
    };
    Ok(Json(history).into_response())
}

/// A responder's confirmation or rejection of one hypothesis.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FeedbackPost {
    /// The hypothesis' service.
    service: String,
    /// `confirm` or `reject`.
    verdict: Verdict,
    /// Free text.
    #[serde(default)]
    note: String,
    /// Who said it, when authentication is off; with a token, its name.
    #[serde(default)]
    by: String,
}

/// Records a responder's confirmation or rejection of a hypothesis, with the model that made
/// it. Feedback is kept for review and audit; only a resolution labels the incident for
/// training.
#[utoipa::path(post, path = "/incidents/{id}/feedback", tag = "learning",
    params(("id" = i64, Path, description = "Incident id")),
    request_body = FeedbackPost,
    responses(
        (status = 201, description = "Recorded", body = FeedbackView),
        (status = 404, description = "No such incident, or merged (code `merged`)", body = ErrorBody),
        (status = 422, description = "Unknown service or verdict", body = ErrorBody)))]
async fn post_feedback(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    incident_path: IncidentPath,
    ApiJson(post): ApiJson<FeedbackPost>,
) -> Result<Response, ApiError> {
    let incident = incident_path.id;
    let id = incident_path.row();
    let service = known_service(&state, "service", &post.service)?;
    for (path, text) in [("note", &post.note), ("by", &post.by)] {
        if let Some(problem) = text_problem(text, 10_000) {
            return Err(unprocessable(path, problem));
        }
    }
    let model = incident_path
        .held(state.ranking.hypotheses(incident).await?)?
        .diagnosis
        .model
        .clone();
    let stored = state
        .store
        .insert_feedback(
            &NewFeedback {
                incident_id: id,
                service,
                verdict: post.verdict,
                model,
                note: post.note,
                by: principal.map_or(post.by, |Extension(p)| p.name),
            },
            state.clock.now_millis(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(FeedbackView::from(stored))).into_response())
}
