//! The rootcause service, as a library: the `rootcause` binary (crate `rootcause-cli`) serves it.
//! See ARCHITECTURE.md for the path of an alert through these modules.
//!
//! - [`server`]: the HTTP server: open the store, start the service, serve, shut down in order.
//! - [`state`]: the composition root, [`AppState::start`], and the shutdown order.
//! - [`workers`]: every background task, started through one spawner, stopped by one token.
//! - [`clock`]: the service's time, injectable (paused and moved in tests).
//! - [`config`]: defaults, TOML file, `ROOTCAUSE_*` environment, flags; imports no other module.
//! - [`live_risks`]: the estate's risks kept current from the store, and the business calendar.
//! - [`live_topology`]: the current topology version in memory, changes stored as versions.
//! - [`ingest`]: alert intake: validation, mapping, correlation and group commits.
//! - [`ranking`]: incidents ranked as they change: cases, the debounced worker, live updates.
//! - [`prometheus`]: metric windows pulled from a Prometheus server's `query_range`.
//! - [`advice`]: what suggestions come from: the runbook catalogue and similar past incidents.
//! - [`actions`]: runbooks, approvals, automation runs, notifications, the audit log.
//! - [`outgoing`]: one delivery attempt to a webhook, and its backoff.
//! - [`learning`]: fault history, training jobs and the model registry.
//! - [`risk`]: proactive risks from history, the business calendar, risk scores, priority (pure).
//! - [`stability`]: the stability report over a period: its figures (pure) and what it reads.
//! - [`sealing`]: secrets (automation header values) encrypted before they are stored.
//! - [`store`]: the repository over SQLite or PostgreSQL, with embedded migrations.
//! - [`auth`]: bearer tokens with scopes, the scope of every route, and the checks every
//!   request passes (host, origin, token, no simple cross-site requests).
//! - [`error`]: the API's error type and JSON error body.
//! - [`telemetry`]: logging and the service's own Prometheus metrics.
//!
//! HTTP handlers live in private `routes` modules, one per resource; the responder's console
//! (server-rendered pages over the same store and ranking) in the private `console` module.

pub mod actions;
pub mod advice;
pub mod auth;
pub mod clock;
pub mod config;
mod console;
pub mod error;
pub mod ingest;
pub mod learning;
mod lingering;
pub mod live_risks;
pub mod live_topology;
pub mod outgoing;
pub mod prometheus;
pub mod ranking;
pub mod risk;
mod routes;
pub mod sealing;
pub mod server;
pub mod stability;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workers;

#[cfg(feature = "fuzzing")]
pub use routes::fuzzing;
pub use server::{Application, shutdown_signal};
pub use state::AppState;
