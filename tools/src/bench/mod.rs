//! `rootcause bench`: the service measured under load, each bench against the real binary.
//!
//! - [`console`]: the server's time to render the console's pages for a large incident.
//! - [`ingest`]: alert-intake throughput next to a real Alertmanager.
//! - [`ranking`]: time from an alert's 202 to the hypotheses that cover it.
//! - [`training`]: the time of a training job on a large fault history.

pub mod console;
pub mod ingest;
mod load;
mod profile;
pub mod ranking;
mod report;
mod targets;
pub mod training;
