//! What a responder reads: ranked hypotheses, each with a confidence, a role, a likely fault
//! type, the evidence behind it in sentences, and the paths along which it would explain the
//! symptoms.

use serde::{Deserialize, Serialize};

/// A ranker's answer for one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The model that produced it (`cold-start`, or `learned@<version>`).
    pub model: String,
    /// True when the top confidence is below [`Diagnosis::threshold`]: the cause may be
    /// something the evidence does not cover (a novel fault, a service outside the graph).
    pub unknown: bool,
    /// The confidence below which the answer is `unknown`.
    pub threshold: f64,
    /// Hypotheses, most likely first. Every candidate appears once, unless the diagnosis was
    /// asked for only the most likely few ([`crate::ranker::Ranker::diagnose_evidence_listing`]).
    pub hypotheses: Vec<Hypothesis>,
}

impl Diagnosis {
    /// A diagnosis of these hypotheses, not `unknown`, by a model called `test`: the action
    /// tests, which start from a diagnosis rather than from a case.
    #[cfg(test)]
    pub(crate) fn of(hypotheses: Vec<Hypothesis>) -> Self {
        Diagnosis {
            model: "test".into(),
            unknown: false,
            threshold: 0.3,
            hypotheses,
        }
    }
}

/// One candidate root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The service.
    pub service: String,
    /// The ranker's score (higher is more likely); comparable within one diagnosis only.
    pub score: f64,
    /// Probability that this service is the root cause, calibrated on labelled cases for a
    /// learned model; `None` for rankers that give no probability.
    pub confidence: Option<f64>,
    /// What part the service plays in the incident.
    pub role: Role,
    /// The most likely fault type, if the service shows any anomaly.
    pub fault_type: Option<FaultType>,
    /// Probability of that fault type.
    pub fault_type_confidence: Option<f64>,
    /// Why, in sentences a responder can check (strongest first).
    pub evidence: Vec<String>,
    /// Propagation paths from this service to alerting services, each listed from the cause to
    /// the symptom (`[db, cart, frontend]`): how the fault would reach what users see. Traced
    /// for the top [`crate::explain::TRACED`] hypotheses; empty below them.
    pub paths: Vec<Vec<String>>,
}

impl Hypothesis {
    /// `service` as the origin of a `fault` (at confidence 0.9), with no score, confidence,
    /// evidence or paths: the action tests, which read only the service and its fault type.
    #[cfg(test)]
    pub(crate) fn origin(service: &str, fault: FaultType) -> Self {
        Hypothesis {
            service: service.to_owned(),
            score: 0.0,
            confidence: None,
            role: Role::Origin,
            fault_type: Some(fault),
            fault_type_confidence: Some(0.9),
            evidence: Vec::new(),
            paths: Vec::new(),
        }
    }
}

/// The part a candidate plays in an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Anomalous, and no anomalous dependency is as anomalous: where the fault likely began.
    Origin,
    /// Anomalous, but an anomalous dependency is at least as anomalous: likely a symptom of it.
    Symptom,
    /// Shows no anomaly; a dependency of anomalous services, kept because a silent dependency
    /// (a database without alerts) can still be the cause.
    Silent,
}

/// Fault classes the emergency actions are chosen by. Dataset labels map onto them by
/// [`FaultType::from_label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// Processor contention or exhaustion.
    Cpu,
    /// Memory pressure or leaks.
    Memory,
    /// Disk space or disk I/O.
    Disk,
    /// Network delay or packet loss between services.
    Network,
    /// Wrong results, exceptions, error responses: a code or data fault.
    Code,
    /// A bad deploy or configuration change.
    Deploy,
}

impl FaultType {
    /// Every class, in a fixed order (the learned classifier's output order).
    pub const ALL: [FaultType; 6] = [
        FaultType::Cpu,
        FaultType::Memory,
        FaultType::Disk,
        FaultType::Network,
        FaultType::Code,
        FaultType::Deploy,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultType::Cpu => "cpu",
            FaultType::Memory => "memory",
            FaultType::Disk => "disk",
            FaultType::Network => "network",
            FaultType::Code => "code",
            FaultType::Deploy => "deploy",
        }
    }

    /// Maps a dataset's fault label (`cpu_contention`, `network_delay`, `return`, `exception`,
    /// `mem`, `disk`, `delay`, `loss`, `errors`, `deploy`, ...) onto a class by the mechanism
    /// its words name; `None` for a label that names none.
    pub fn from_label(label: &str) -> Option<FaultType> {
        let label = label.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| label.contains(w));
        if has(&["cpu"]) {
            Some(FaultType::Cpu)
        } else if has(&["mem", "oom"]) {
            Some(FaultType::Memory)
        } else if has(&["disk", "filesystem"]) {
            Some(FaultType::Disk)
        } else if has(&["net", "delay", "latency", "loss", "socket"]) {
            Some(FaultType::Network)
        } else if has(&["deploy", "config", "rollout", "release"]) {
            Some(FaultType::Deploy)
        } else if has(&[
            "return",
            "exception",
            "error",
            "code",
            "fail",
            "abort",
            "http",
        ]) {
            Some(FaultType::Code)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_labels_map_onto_fault_classes() {
        assert_eq!(
            FaultType::from_label("cpu_contention"),
            Some(FaultType::Cpu)
        );
        assert_eq!(
            FaultType::from_label("network_delay"),
            Some(FaultType::Network)
        );
        assert_eq!(FaultType::from_label("return"), Some(FaultType::Code));
        assert_eq!(FaultType::from_label("exception"), Some(FaultType::Code));
        assert_eq!(FaultType::from_label("mem"), Some(FaultType::Memory));
        assert_eq!(FaultType::from_label("disk"), Some(FaultType::Disk));
        assert_eq!(FaultType::from_label("loss"), Some(FaultType::Network));
        assert_eq!(FaultType::from_label("deploy"), Some(FaultType::Deploy));
        assert_eq!(FaultType::from_label("mystery"), None);
    }
}
