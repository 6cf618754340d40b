//! Data for rootcause to learn from and be measured on.
//!
//! - [`examples`]: topologies of public benchmark systems (Online Boutique, Sock Shop, Train
//!   Ticket), bundled in the binary so the service runs with no configuration.
//! - [`synthetic`]: generated topologies of any size with a realistic shape (gateways, tiers of
//!   services, shared databases, caches and queues), deterministic by seed.
//!
//! Loaders turn public dataset formats into [`rootcause_models::case::Case`]s; they fail with a
//! [`LoadError`] only when a dataset as a whole cannot be read.

mod error;
pub mod examples;
pub mod synthetic;

pub use error::LoadError;
