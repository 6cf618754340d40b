//! Models of rootcause: how likely root causes are ranked and how well the ranking does.
//!
//! So far this crate holds the ranking metrics every evaluation reports ([`metrics`]); evidence
//! features, rankers, calibration and training arrive with the ranking work and live here too,
//! free of I/O so they are tested and replayed without a server.

pub mod metrics;
