//! The rootcause service.
//!
//! - [`cli`]: the command line (`serve`, `topology validate|show|examples`, `config`).
//! - [`config`]: defaults, TOML file, `ROOTCAUSE_*` environment, flags.
//! - [`app`]: start-up ([`Application::build`]) and graceful shutdown.
//! - [`live_topology`]: the current topology version in memory, changes stored as versions.
//! - [`ingest`]: alert intake: validation, mapping, correlation and group commits.
//! - [`store`]: the repository over SQLite or PostgreSQL, with embedded migrations.
//! - [`error`]: the API's error type and JSON error body.
//! - [`telemetry`]: logging and Prometheus metrics.
//! - [`bench`]: `rootcause bench ingest`, intake throughput next to a real Alertmanager.
//! - [`offline`]: `rootcause eval`, `simulate` and `datasets convert`: work on datasets.
//! - [`yardstick`]: `rootcause eval --loso`, leave-one-system-out and telemetry ablation tables.
//! - [`traces_import`]: `rootcause topology import-traces`, a topology learned from OTLP/JSON files.
//! - [`prometheus`]: metric windows pulled from a Prometheus server's `query_range`.
//! - [`ranking`]: incidents ranked as they change: cases, the debounced worker, live updates.
//! - [`bench_ranking`]: `rootcause bench ranking`, alert-to-hypotheses latency.
//!
//! HTTP handlers live in private `routes` modules, one per resource.

pub mod actions;
pub mod advice;
pub mod clock;
pub mod config;
pub mod error;
pub mod ingest;
pub mod learning;
pub mod live_topology;
pub mod outgoing;
pub mod prometheus;
pub mod ranking;
mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workers;

pub use server::{Application, shutdown_signal};
pub use state::AppState;
