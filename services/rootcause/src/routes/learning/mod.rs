//! Learning from fault history: resolutions and feedback on incidents, history import, training
//! jobs and the model registry.

mod history;
mod jobs;
mod models;
mod resolutions;
#[cfg(test)]
mod tests;

use axum::http::StatusCode;
use rootcause_topology::Problem;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(resolutions::router())
        .merge(history::router())
        .merge(models::router())
        .merge(jobs::router())
}

pub(super) fn unprocessable(path: &str, message: String) -> ApiError {
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
pub(super) fn text_problem(text: &str, max: usize) -> Option<String> {
    if text.len() > max {
        Some(format!("must be at most {max} bytes, got {}", text.len()))
    } else if text.contains('\0') {
        Some("must not contain NUL characters".to_owned())
    } else {
        None
    }
}

/// The canonical name of a service named in a request, or 422 naming `path`.
pub(super) fn known_service(state: &AppState, path: &str, name: &str) -> Result<String, ApiError> {
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
