//! `GET`/`POST /api/v1/tokens` and `DELETE /api/v1/tokens/{name}`: API tokens, for admins.
//! The secret of a new token is in the creation answer and nowhere else.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::time_of;
use crate::auth::{Scope, check_name, format_scopes, new_secret};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;
use crate::store::StoredToken;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TokenView {
    /// Name: the actor recorded for what it does.
    name: String,
    /// Scopes.
    scopes: Vec<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339, if it expires.
    expires_at: Option<String>,
    /// RFC 3339, if revoked.
    revoked_at: Option<String>,
}

impl From<StoredToken> for TokenView {
    fn from(t: StoredToken) -> TokenView {
        TokenView {
            name: t.name,
            scopes: t.scopes.split(',').map(str::to_owned).collect(),
            created_at: time_of(t.created_at),
            expires_at: t.expires_at.map(time_of),
            revoked_at: t.revoked_at.map(time_of),
        }
    }
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    /// Unique name (letters, digits, `.`, `_`, `-`, `@`; at most 64).
    name: String,
    /// Scopes: any of `ingest`, `read`, `respond`, `admin`.
    scopes: Vec<Scope>,
    /// Days until it expires (default: never).
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A created token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    token: TokenView,
    /// Send as `Authorization: Bearer <secret>`. Only its digest is stored.
    secret: String,
}

/// Lists every token (revoked ones too), without secrets.
#[utoipa::path(get, path = "/tokens", tag = "auth",
    responses((status = 200, description = "Tokens", body = Vec<TokenView>)))]
async fn list_tokens(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.store.tokens().await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// Creates a token; its secret is in this answer only.
#[utoipa::path(post, path = "/tokens", tag = "auth", request_body = NewToken,
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid name or scopes", body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<Response, ApiError> {
    check_name(&new.name).map_err(|m| ApiError::invalid_field("name", m))?;
    let scopes = format_scopes(&new.scopes).map_err(|m| ApiError::invalid_field("scopes", m))?;
    let secret = new_secret().map_err(ApiError::internal)?;
    let now = state.clock.now_millis();
    let expires_at = new
        .expires_in_days
        .map(|days| now + i64::from(days) * 86_400_000);
    let token = state
        .store
        .create_token(&new.name, &secret.digest, &scopes, now, expires_at)
        .await?;
    state.tokens.reload().await?;
    tracing::info!(token = %token.name, %scopes, "API token created");
    let created = CreatedToken {
        token: token.into(),
        secret: secret.secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/tokens/{name}", tag = "auth",
    params(("name" = String, Path, description = "Token name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No active token of that name", body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now_millis();
    if !state.store.revoke_token(&name, now).await? {
        return Err(ApiError::not_found(format!(
            "no active token named {name:?}"
        )));
    }
    state.tokens.reload().await?;
    tracing::info!(token = %name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
