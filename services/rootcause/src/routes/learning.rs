//! Learning from fault history: resolutions and feedback on incidents, history import, training
//! jobs and the model registry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_models::diagnosis::FaultType;
use rootcause_models::history::HistoryRecord;
use rootcause_topology::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incident::IncidentPath;
use super::time_of;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, media_type, parse_json};
use crate::learning::import::ImportError;
use crate::learning::training::TrainRequest;
use crate::learning::{ActivateError, OUTSIDE_CAUSES, ResolveError, action_problem};
use crate::state::AppState;
use crate::store::{
    JobStatus, ModelStatus, NewFeedback, NewResolution, StoreError, StoredFeedback, StoredJob,
    StoredModel, StoredResolution, Verdict,
};

/// Most records one history import may carry.
pub const MAX_RECORDS_PER_IMPORT: usize = 10_000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_resolution, get_resolution))
        .routes(routes!(post_feedback))
        .routes(routes!(import_history, history_summary))
        .routes(routes!(list_models))
        .routes(routes!(get_model))
        .routes(routes!(activate_model))
        .routes(routes!(train, list_jobs))
        .routes(routes!(get_job))
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
    /// Who confirmed it.
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
    fn from(r: StoredResolution) -> Self {
        ResolutionView {
            id: r.id,
            incident: r.incident_id,
            root_cause: r.root_cause,
            fault_type: r.fault_type,
            action: r.action,
            worked: r.worked,
            time_to_mitigate_s: r.time_to_mitigate_s,
            notes: r.notes,
            resolved_by: r.resolved_by,
            recorded_at: time_of(r.recorded_at),
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

fn unprocessable(path: &str, message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        format!("invalid request body: {path}: {message}"),
    )
    .with_problems(vec![Problem {
        path: path.to_owned(),
        message,
        line: None,
        column: None,
    }])
}

/// What is wrong with free text, if anything: too long, or a NUL character (which PostgreSQL
/// cannot store).
fn text_problem(text: &str, max: usize) -> Option<String> {
    if text.len() > max {
        Some(format!("must be at most {max} bytes, got {}", text.len()))
    } else if text.contains('\0') {
        Some("must not contain NUL characters".to_owned())
    } else {
        None
    }
}

/// The canonical name of a service named in a request, or 422 naming `path`.
fn known_service(state: &AppState, path: &str, name: &str) -> Result<String, ApiError> {
    let current = state.topology.current();
    current
        .topology
        .resolve(name)
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            unprocessable(
                path,
                format!(
                    "no service {name:?} in the topology (version {})",
                    current.version.id
                ),
            )
        })
}

impl From<ResolveError> for ApiError {
    fn from(error: ResolveError) -> ApiError {
        match error {
            ResolveError::Unknown(id) => ApiError::not_found(format!("no incident {id}")),
            // Without the request's resource: handlers answer through `IncidentPath::error`.
            ResolveError::Merged { incident, survivor } => {
                ApiError::merged(incident, survivor, "resolution")
            }
            ResolveError::Store(error) => error.into(),
        }
    }
}

impl From<ActivateError> for ApiError {
    fn from(error: ActivateError) -> ApiError {
        match error {
            error @ ActivateError::Unusable { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unusable_model",
                error.to_string(),
            ),
            ActivateError::Store(error) => error.into(),
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
        resolved_by: post.resolved_by,
    };
    let stored = state
        .learning
        .resolve(incident, resolution)
        .await
        .map_err(|error| incident_path.error(error))?;
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
    /// Who said it.
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
                by: post.by,
            },
            state.clock.now_millis(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(FeedbackView::from(stored))).into_response())
}

/// Options of a history import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// Names the source in the rows' keys (`import:<source>:<id>`): records with the same id
    /// from the same source replace each other. Letters, digits, `-` and `_`; default `api`.
    source: Option<String>,
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
struct ImportReceipt {
    /// Records read.
    records: usize,
    /// New history rows.
    inserted: u64,
    /// Rows replaced (same source and id as before).
    replaced: u64,
}

/// Imports past incidents as fault history: JSON lines (`application/x-ndjson`, one
/// `HistoryRecord` per line: alerts, optional metric and call-edge windows, changes, optional
/// topology, and the outcome) or a JSON array of them (`application/json`). All or nothing:
/// the first invalid record is named by its line and path, and nothing is stored. Each
/// record's evidence is extracted on import; records without a topology are read against the
/// current one.
#[utoipa::path(post, path = "/history", tag = "learning",
    params(ImportQuery),
    request_body(content = Vec<Object>, description = "History records (JSON lines or a JSON array)"),
    responses(
        (status = 201, description = "Imported", body = ImportReceipt),
        (status = 400, description = "Malformed JSON (with line)", body = ErrorBody),
        (status = 413, description = "Too many records", body = ErrorBody),
        (status = 415, description = "Neither JSON nor JSON lines", body = ErrorBody),
        (status = 422, description = "An invalid record, with line and path", body = ErrorBody)))]
async fn import_history(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let media = media_type(&headers).unwrap_or_default();
    let lines = matches!(
        media.as_str(),
        "application/x-ndjson" | "application/jsonl" | "application/json-lines"
    );
    if !lines && !crate::error::is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected application/x-ndjson (JSON lines) or application/json (an array)",
        ));
    }
    let source = query.source.unwrap_or_else(|| "api".to_owned());
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if source.is_empty() || source.len() > 64 || !source.chars().all(allowed) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("source must be 1 to 64 letters, digits, '-' or '_', got {source:?}"),
        ));
    }
    let body = body?;
    let records = super::blocking(move || parse_records(&body, lines)).await??;
    let count = records.len();
    match state.learning.import(records, &source).await {
        Ok(upsert) => Ok((
            StatusCode::CREATED,
            Json(ImportReceipt {
                records: count,
                inserted: upsert.inserted,
                replaced: upsert.replaced,
            }),
        )
            .into_response()),
        Err(ImportError::Record { index, error }) => {
            let line = if lines { Some(index + 1) } else { None };
            let path = if lines {
                error.path.clone()
            } else {
                format!("[{index}].{}", error.path)
            };
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_record",
                format!(
                    "record {} is invalid: {}: {}",
                    index + 1,
                    path,
                    error.message
                ),
            )
            .with_problems(vec![Problem {
                path,
                message: error.message,
                line,
                column: None,
            }]))
        }
        Err(ImportError::Store(error)) => Err(error.into()),
        Err(ImportError::Internal(error)) => Err(ApiError::internal(error)),
    }
}

/// Records from JSON lines (blank lines skipped) or a JSON array / single object.
fn parse_records(body: &[u8], lines: bool) -> Result<Vec<HistoryRecord>, ApiError> {
    let records: Vec<HistoryRecord> = if lines {
        let mut records = Vec::new();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = parse_json::<HistoryRecord>(line).map_err(|e| e.on_line(i + 1))?;
            records.push(record);
            if records.len() > MAX_RECORDS_PER_IMPORT {
                break;
            }
        }
        records
    } else {
        match parse_json::<Value>(body)? {
            Value::Array(_) => parse_json(body)?,
            _ => vec![parse_json(body)?],
        }
    };
    if records.len() > MAX_RECORDS_PER_IMPORT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!("at most {MAX_RECORDS_PER_IMPORT} records per import; split the file"),
        ));
    }
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "no records in the body",
        ));
    }
    Ok(records)
}

/// What the fault history holds.
#[derive(Debug, Serialize, ToSchema)]
struct HistorySummaryView {
    /// Rows in all.
    total: u64,
    /// Rows per source (`import:sim`, `resolution`, ...).
    by_source: std::collections::BTreeMap<String, u64>,
    /// Rows whose evidence is of an older schema: training skips them until re-imported.
    stale: u64,
    /// The evidence schema of this build.
    evidence_schema: u32,
}

/// How much fault history there is, by source.
#[utoipa::path(get, path = "/history", tag = "learning",
    responses((status = 200, description = "Counts", body = HistorySummaryView)))]
async fn history_summary(State(state): State<AppState>) -> Result<Response, ApiError> {
    let schema = rootcause_models::evidence::EVIDENCE_SCHEMA;
    let summary = state.store.history_summary(i64::from(schema)).await?;
    Ok(Json(HistorySummaryView {
        total: summary.total,
        by_source: summary.by_source,
        stale: summary.stale,
        evidence_schema: schema,
    })
    .into_response())
}

/// One model version of the registry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelView {
    /// Registry id.
    id: i64,
    /// Content hash of the model (`learned@<version>` in hypotheses).
    version: String,
    /// `active`, `candidate` or `retired`.
    status: ModelStatus,
    /// `bundled`, `file:<path>`, or `job:<id>`.
    source: String,
    /// Feature-set version the model reads.
    feature_schema: i64,
    /// Why it has its status (the promotion decision, an activation's reason).
    reason: String,
    /// The training job that made it.
    job_id: Option<i64>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; when it last became active.
    activated_at: Option<String>,
    /// Back-test figures: cross-validated AC@1/3/5 and Avg@5 with chance, per fault type, the
    /// held-out comparison with the model active at training time, training size.
    #[schema(value_type = Object)]
    figures: Value,
}

impl From<StoredModel> for ModelView {
    fn from(m: StoredModel) -> Self {
        ModelView {
            id: m.id,
            version: m.version,
            status: m.status,
            source: m.source,
            feature_schema: m.feature_schema,
            reason: m.reason,
            job_id: m.job_id,
            created_at: time_of(m.created_at),
            activated_at: m.activated_at.map(time_of),
            figures: serde_json::from_str(&m.figures).unwrap_or(Value::Null),
        }
    }
}

/// The model registry.
#[derive(Debug, Serialize, ToSchema)]
struct ModelList {
    /// The active model's id.
    active: Option<i64>,
    /// Every version, oldest first.
    models: Vec<ModelView>,
}

/// Every model version, oldest first, with its status and back-test figures.
#[utoipa::path(get, path = "/models", tag = "learning",
    responses((status = 200, description = "The registry", body = ModelList)))]
async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let models: Vec<ModelView> = state
        .store
        .list_models()
        .await?
        .into_iter()
        .map(ModelView::from)
        .collect();
    let active = models
        .iter()
        .find(|m| m.status == ModelStatus::Active)
        .map(|m| m.id);
    Ok(Json(ModelList { active, models }).into_response())
}

/// One model version.
#[utoipa::path(get, path = "/models/{id}", tag = "learning",
    params(("id" = i64, Path, description = "Registry id")),
    responses((status = 200, description = "The model", body = ModelView),
              (status = 404, description = "No such model", body = ErrorBody)))]
async fn get_model(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    match state.store.model(id).await? {
        Some(model) => Ok(Json(ModelView::from(model)).into_response()),
        None => Err(ApiError::not_found(format!("no model {id}"))),
    }
}

/// Why a model is activated.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
struct ActivatePost {
    /// Recorded with the change (`rollback after the 14:02 incident`).
    reason: String,
}

/// Makes a model version the active one, whatever its figures (rollback = activating an older
/// version). Rankings use it from the next one on; open incidents are re-ranked. The body is
/// optional.
#[utoipa::path(post, path = "/models/{id}/activate", tag = "learning",
    params(("id" = i64, Path, description = "Registry id")),
    request_body(content = ActivatePost, description = "Optional reason"),
    responses((status = 200, description = "Now active", body = ModelView),
              (status = 404, description = "No such model", body = ErrorBody),
              (status = 422, description = "This build cannot load the model", body = ErrorBody)))]
async fn activate_model(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let post: ActivatePost = if body.iter().all(u8::is_ascii_whitespace) {
        ActivatePost::default()
    } else {
        crate::error::require_json(&headers)?;
        parse_json(&body)?
    };
    let reason = if post.reason.is_empty() {
        "activated through the API".to_owned()
    } else {
        post.reason
    };
    match state.learning.activate(id, &reason).await? {
        Some(model) => Ok(Json(ModelView::from(model)).into_response()),
        None => Err(ApiError::not_found(format!("no model {id}"))),
    }
}

/// A training job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobView {
    /// Job id.
    id: i64,
    /// `queued`, `running`, `succeeded` or `failed`.
    status: JobStatus,
    /// What it is doing (`training`, `scoring held-out cases`, ...).
    stage: String,
    /// Fraction done, 0 to 1.
    progress: f64,
    /// Promote whatever the held-out comparison says.
    force: bool,
    /// The request.
    #[schema(value_type = Object)]
    params: Value,
    /// Why it failed.
    error: Option<String>,
    /// The model it stored.
    model_id: Option<i64>,
    /// When done: the model, whether it was promoted and why, the figures.
    #[schema(value_type = Object)]
    summary: Value,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    started_at: Option<String>,
    /// RFC 3339.
    finished_at: Option<String>,
}

impl From<StoredJob> for JobView {
    fn from(j: StoredJob) -> Self {
        JobView {
            id: j.id,
            status: j.status,
            stage: j.stage,
            progress: j.progress,
            force: j.force,
            params: serde_json::from_str(&j.params).unwrap_or(Value::Null),
            error: j.error,
            model_id: j.model_id,
            summary: serde_json::from_str(&j.summary).unwrap_or(Value::Null),
            created_at: time_of(j.created_at),
            started_at: j.started_at.map(time_of),
            finished_at: j.finished_at.map(time_of),
        }
    }
}

/// Starts a training job on the fault history (resolved incidents and imports): the ranker, the
/// fault-type classifier and the action model are trained on all but the held-out slice (one
/// row in five, by a hash of its key), scored by cross-validation by case, and compared with the
/// active model on the held-out slice. The new version is promoted only if it is not worse there
/// in AC@1 and Avg@5 (or with `force`); otherwise it stays a candidate with the reason. One job
/// at a time: a second request while one is queued or running is refused with 409. The body is
/// optional.
#[utoipa::path(post, path = "/models/train", tag = "learning",
    request_body(content = TrainRequest, description = "Optional settings"),
    responses((status = 202, description = "Queued; poll its `Location`", body = JobView),
              (status = 409, description = "A job is already running", body = ErrorBody),
              (status = 422, description = "A setting out of range", body = ErrorBody)))]
async fn train(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let request: TrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TrainRequest::default()
    } else {
        crate::error::require_json(&headers)?;
        parse_json(&body)?
    };
    if let Some((path, message)) = request.problem() {
        return Err(unprocessable(path, message));
    }
    let job = state.learning.train(request).await.map_err(|e| match e {
        StoreError::Conflict(message) => {
            ApiError::new(StatusCode::CONFLICT, "job_running", message)
        }
        other => other.into(),
    })?;
    let id = job.id;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/models/jobs/{id}"))],
        Json(JobView::from(job)),
    )
        .into_response())
}

/// Paging of the job list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JobsQuery {
    /// Most jobs to list, newest first (1–500, default 50).
    limit: Option<u32>,
}

/// Training jobs, newest first.
#[utoipa::path(get, path = "/models/jobs", tag = "learning",
    params(JobsQuery),
    responses((status = 200, description = "Jobs", body = Vec<JobView>)))]
async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    super::check_range("limit", limit as usize, 1..=500)?;
    let jobs: Vec<JobView> = state
        .store
        .list_jobs(limit)
        .await?
        .into_iter()
        .map(JobView::from)
        .collect();
    Ok(Json(jobs).into_response())
}

/// A training job: its status, stage and progress; when done, the model it stored and whether
/// it was promoted.
#[utoipa::path(get, path = "/models/jobs/{id}", tag = "learning",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobView),
              (status = 404, description = "No such job", body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    match state.learning.job(id).await? {
        Some(job) => Ok(Json(JobView::from(job)).into_response()),
        None => Err(ApiError::not_found(format!("no training job {id}"))),
    }
}
