//! Training jobs: started on the fault history, gated against the active model.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::time_of;
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody, OptionalJson};
use crate::learning::training::TrainRequest;
use crate::state::AppState;
use crate::store::{JobStatus, StoreError, StoredJob};

use super::unprocessable;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(train, list_jobs))
        .routes(routes!(get_job))
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
    OptionalJson(request): OptionalJson<TrainRequest>,
) -> Result<Response, ApiError> {
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
    crate::routes::check_range("limit", limit as usize, 1..=500)?;
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
