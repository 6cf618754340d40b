//! The responder's console, served under `/` by the same binary: server-rendered HTML pages
//! (maud escapes every value spliced in, so alert labels and annotations render as text), a
//! small hand-written ES module and a style sheet embedded in the binary (no CDN, no build
//! step, works air-gapped).
//!
//! Pages read what the JSON API reads (the store, the live ranking, the current topology) and
//! change nothing themselves: the page's buttons and forms call the JSON API with the browser's
//! session cookie ([`crate::auth::session`]), so every change passes the same checks, scopes and
//! audit log as any other client's. Live updates come over server-sent events: the incident
//! page listens to the incident's own stream (`/api/v1/incidents/{id}/events`), the list to
//! [`live::events`].
//!
//! Every page answers with `Server-Timing: render;dur=<ms>` (the server's time for it) and a
//! content security policy that allows only the console's own script and style sheet.

mod bars;
mod chart;
mod graph;
mod incident;
mod incident_parts;
mod incidents;
mod live;
mod login;
mod models;
mod report;
mod risks;
mod shell;
mod topology;

use std::time::Instant;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use crate::state::AppState;

/// The console's routes (their scopes are in [`crate::auth`]'s table).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(incidents::page))
        .route("/incidents/{id}", get(incident::page))
        .route("/topology", get(topology::page))
        .route("/models", get(models::page))
        .route("/risks", get(risks::page))
        .route("/reports", get(report::page))
        .route("/login", get(login::page))
        .route("/console/events", get(live::events))
        .route("/console/assets/{file}", get(asset))
}

/// The embedded assets: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
];

/// Only the console's own files: no inline script or style, no other origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Embedded in the binary: they change only with it.
                (header::CACHE_CONTROL, "public, max-age=300"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => html(
            StatusCode::NOT_FOUND,
            shell::problem("Not found", "The console has no such file."),
            Instant::now(),
        ),
    }
}

/// A rendered page, with the time the server took since `started`.
fn html(status: StatusCode, markup: Markup, started: Instant) -> Response {
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(timing) = HeaderValue::from_str(&format!("render;dur={millis:.1}")) {
        headers.insert("server-timing", timing);
    }
    response
}

/// What a page handler answers when the store or the ranking fails: the error as a page.
fn failure(error: impl std::fmt::Display, started: Instant) -> Response {
    tracing::error!(%error, "console page failed");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        shell::problem(
            "Something failed",
            "The service could not build this page; the log says why. Try again.",
        ),
        started,
    )
}
