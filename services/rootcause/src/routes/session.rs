//! `POST`/`DELETE /api/v1/session`: a browser trades a token for a session cookie, once, and
//! ends the session (see `auth::session` for what the cookie is and why).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::time_of;
use crate::auth::{bearer, session_cookie};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open_session, close_session))
}

/// An open session: who it acts as. The cookie itself is in `Set-Cookie` only.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SessionView {
    /// The token's name: the actor recorded for what the session does.
    name: String,
    /// The token's scopes.
    scopes: Vec<String>,
    /// RFC 3339: the session ends then (never after its token does).
    expires_at: String,
}

/// Opens a browser session with the bearer token sent: the answer sets the cookie
/// `rootcause_session` (`HttpOnly`, `SameSite=Strict`, `Path=/`; `Secure` with
/// `auth.secure_cookie`), which then stands for the token until `auth.session_ttl_secs` pass,
/// the session is closed or the token revoked. Only a bearer token opens one, not a cookie.
#[utoipa::path(post, path = "/session", tag = "auth",
    responses(
        (status = 201, description = "Opened; the cookie is in Set-Cookie", body = SessionView),
        (status = 400, description = "No bearer token sent (a session cannot open another)", body = ErrorBody),
        (status = 401, description = "The token is unknown, revoked or expired", body = ErrorBody),
        (status = 409, description = "Authentication is off: no session is needed", body = ErrorBody)))]
async fn open_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !state.auth_required {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "auth_off",
            "authentication is off (loopback address, auth.mode auto): every request is \
             allowed without a session",
        ));
    }
    let secret = bearer(&headers).ok_or_else(|| {
        ApiError::bad_request(
            "bearer_required",
            "send the token as Authorization: Bearer <token> to open a session",
        )
    })?;
    let Some((cookie, principal, expires_at)) = state
        .tokens
        .open_session(secret)
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is unknown, revoked or expired",
        ));
    };
    let max_age = ((expires_at - state.clock.now_millis()) / 1000).max(0);
    tracing::info!(token = %principal.name, "browser session opened");
    let view = SessionView {
        name: principal.name,
        scopes: principal
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        expires_at: time_of(expires_at),
    };
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&state.tokens.set_cookie(&cookie, max_age))
            .map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// Ends the session of the request's cookie, if any, and tells the browser to drop the cookie.
#[utoipa::path(delete, path = "/session", tag = "auth",
    responses((status = 204, description = "Closed (or none was open); the cookie is cleared")))]
async fn close_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(cookie) = session_cookie(&headers)
        && state.tokens.close_session(cookie)
    {
        tracing::info!("browser session closed");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&state.tokens.set_cookie("", 0)).map_err(ApiError::internal)?,
    );
    Ok(response)
}
