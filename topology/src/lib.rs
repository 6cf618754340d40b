//! The service-dependency graph of rootcause.
//!
//! A [`Topology`] holds [`Service`]s joined by [`Dependency`] edges (`caller → callee`; faults
//! propagate against the arrow). It is read from and written to YAML or JSON
//! [`TopologyDocument`]s whose errors name the path of every problem, changed one validated step
//! at a time, compared with [`TopologyDiff`], and queried: callers and callees within k hops,
//! hop distance, propagation paths, blast radius and single points of failure; [`layout`] draws
//! a part of it in layers for the console; [`risks`] reads its structural risks.
//!
//! [`bundled`] holds the topologies of public benchmark systems (Online Boutique, Sock Shop,
//! Train Ticket), compiled in so the service runs with no configuration.
//!
//! Pure: no I/O, no clock. Callers read files and keep versions.

pub mod bundled;
mod calls;
mod diff;
mod document;
mod error;
mod graph;
pub mod layout;
mod learned;
mod model;
pub mod otlp;
mod query;
pub mod risks;

#[cfg(test)]
mod proptests;

pub use calls::CallIndex;
pub use diff::{DependencyKey, TopologyDiff};
pub use document::{Format, nul_path, parse, to_json, to_yaml};
pub use error::{DocumentError, Problem, TopologyError};
pub use graph::{Canonical, Topology};
pub use learned::{Merged, ObservedCall, ObservedCalls};
pub use model::{
    Criticality, Dependency, DependencySource, MAX_NAME_LEN, Service, ServiceKind, TopologyDocument,
};
pub use query::{PATH_SEARCH_BUDGET, PropagationPaths, Reach, SPOF_EXAMPLES, SinglePointOfFailure};
