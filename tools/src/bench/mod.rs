//! `rootcause bench`: the service measured under load, each bench against the real binary.
//!
//! - [`console`]: the server's time to render the console's pages for a large incident.
//! - [`ingest`]: alert-intake throughput next to a real Alertmanager, interleaved in rounds.
//! - [`memory`]: the server's resident memory as it retains firing alerts and after they end.
//! - [`ranking`]: time from an alert's 202 to the hypotheses that cover it, in rounds.
//! - [`training`]: the time of a training job on a large fault history.

pub mod console;
pub mod ingest;
mod load;
pub mod memory;
mod profile;
pub mod ranking;
mod ranking_report;
mod report;
mod rounds;
mod targets;
pub mod training;
