//! What suggestions are computed from: what is known about the service a hypothesis names,
//! and what resolved similar past incidents.

use std::collections::BTreeMap;

use rootcause_topology::{Criticality, ServiceKind};

use serde::Serialize;

use crate::case::CaseChange;
use crate::diagnosis::FaultType;

/// What is known about one hypothesis' service when suggesting actions.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The service.
    pub service: &'a str,
    /// Its kind, if the topology knows it.
    pub kind: Option<ServiceKind>,
    /// Its labels, if the topology knows it.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Its criticality, if the topology gives one.
    pub criticality: Option<Criticality>,
    /// Services calling it in the topology.
    pub callers: usize,
    /// The hypothesis' most likely fault type.
    pub fault_type: Option<FaultType>,
    /// Probability of that fault type, when the ranker gives one.
    pub fault_type_confidence: Option<f64>,
    /// Signal kinds of the alerts firing on the service (sorted, unique).
    pub signals: &'a [String],
    /// The latest change on the service shortly before the incident.
    pub recent_change: Option<&'a CaseChange>,
    /// Unix seconds when the incident began (its first alert), to say how long before it the
    /// change came.
    pub incident_at: Option<i64>,
    /// The learned action model's probabilities for the service's evidence (empty: no model;
    /// an action it does not list was never taken in its training data and gets no opinion).
    pub learned: &'a [(String, f64)],
    /// What resolved similar past incidents (`None`: no history).
    pub similar: Option<&'a Votes>,
}

/// What resolved similar past incidents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Votes {
    /// Similar incidents considered.
    pub incidents: usize,
    /// Actions that resolved some of them, largest share first.
    pub actions: Vec<ActionVote>,
}

/// How often one action resolved similar past incidents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionVote {
    /// The action (a runbook id).
    pub action: String,
    /// Similarity-weighted share of the similar incidents it resolved, 0 to 1.
    pub share: f64,
    /// How many of them it resolved.
    pub count: usize,
}
