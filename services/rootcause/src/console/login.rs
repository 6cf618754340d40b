//! `/login`: where a browser without a session is sent when authentication is on. The page asks
//! for an API token once; its script trades the token for a session cookie
//! (`POST /api/v1/session`) and goes back to the page it came from. The token itself is never
//! stored by the browser.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::html;
use super::shell::{self, Section};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Next {
    #[serde(default)]
    next: Option<String>,
}

pub(super) async fn page(State(state): State<AppState>, Query(next): Query<Next>) -> Response {
    let started = Instant::now();
    // Only a path of this service: never an address elsewhere (an open redirect).
    let next = next
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let main = if state.auth_required {
        html! {
            h1 { "Sign in" }
            p { "Paste an API token with at least the " code { "read" } " scope (" code { "respond" }
                " to approve actions and record resolutions, " code { "admin" } " to train and activate models). "
                "The browser keeps a session cookie, not the token." }
            form #login data-next=(next) {
                label { "API token " input #token name="token" type="password" autocomplete="off" required; }
                button type="submit" { "Sign in" }
            }
        }
    } else {
        html! {
            h1 { "No sign-in needed" }
            p { "Authentication is off on this service (it listens on loopback only)." }
            p { a href=(next) { "Continue" } }
        }
    };
    html(
        StatusCode::OK,
        shell::page("Sign in", Section::None, None, main),
        started,
    )
}
