//! Data for rootcause to learn from and be measured on.
//!
//! - [`nezha`]: the Nezha fault-injection dataset format (Yu et al., ESEC/FSE 2023): labelled
//!   cases with per-service metrics, trace and log statistics, and a call graph learned from spans.
//! - [`jsonl`]: rootcause's own history format (JSON lines of past incidents with outcomes).
//! - [`microirc`]: MicroIRC's "dataset E" (Zhu et al., JSS 2024): labelled fault cases on Istio's
//!   Bookinfo with per-workload, per-pod and per-call-edge metrics and the Istio service graph.
//! - [`rcaeval`]: the RCAEval benchmark format (Pham et al., WWW 2025), read and written, so
//!   RCAEval's own methods can run on any dataset rootcause reads.
//! - [`simulator`]: labelled fault cases (alert storms, metric windows, changes, resolving
//!   actions) on any topology, deterministic by seed.
//! - [`synthetic`]: generated topologies of any size with a realistic shape (gateways, tiers of
//!   services, shared databases, caches and queues), deterministic by seed.
//!
//! Loaders turn dataset formats into [`rootcause_models::case::Case`]s ([`load`] picks one by
//! [`DatasetFormat`]); they fail with a [`LoadError`] only when a dataset as a whole cannot be
//! read. Problems confined to a case become notes on it.

mod csv_series;
mod error;
mod format;
mod hash;
pub mod jsonl;
pub mod microirc;
pub mod nezha;
pub mod rcaeval;
pub mod simulator;
pub mod synthetic;
#[cfg(test)]
mod test_support;

pub use error::LoadError;
pub use format::{DatasetFormat, LoadOptions, load};
