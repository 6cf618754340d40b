//! The model registry: versions with their figures, and activation (rollback).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::time_of;
use crate::error::{ApiError, ApiPath, ErrorBody, OptionalJson};
use crate::learning::ActivateError;
use crate::state::AppState;
use crate::store::{ModelStatus, StoredModel};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(get_model))
        .routes(routes!(activate_model))
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
    OptionalJson(post): OptionalJson<ActivatePost>,
) -> Result<Response, ApiError> {
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
