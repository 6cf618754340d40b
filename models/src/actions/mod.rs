//! Emergency actions: which runbook to run for a hypothesis, and why.
//!
//! - [`catalogue`]: the runbook catalogue (YAML), its validation, and which services a runbook
//!   may be applied to.
//! - [`suggest`]: ranking a catalogue's runbooks for one hypothesis from its fault type,
//!   alerts, a recent change, the learned action model and similar past incidents.
//! - [`similar`]: incident feature vectors and the nearest past incidents.
//! - [`advise`]: suggestions for every hypothesis of a diagnosis.
//! - [`evaluation`]: top-1/top-3 accuracy of the suggestions by cross-validation by case.
//!
//! Free of I/O: the service loads catalogues and history and calls webhooks.

pub mod advise;
pub mod catalogue;
pub mod evaluation;
pub mod similar;
pub mod suggest;
pub mod target;

#[cfg(test)]
mod tests;

pub use advise::{Advisor, advise, runbook_applies};
pub use catalogue::{
    Applicability, Automation, BUNDLED_RUNBOOKS, Catalogue, CatalogueError, Risk, Runbook, SIGNALS,
    ServiceSelector,
};
pub use similar::{Neighbour, PastIncident, SimilarIndex, VECTOR_LEN, incident_vector};
pub use suggest::{Suggestion, Weights, applies, suggest};
pub use target::{ActionVote, Target, Votes};
