//! The per-service risk score, and what is exposed in the next critical window (pure).
//!
//! A service's score joins five parts, each 0 to 1, as independent chances of trouble
//! (`1 − Π(1 − part)`, so any one strong part makes a high score and parts add up without
//! passing 1):
//! - `structural`: its highest structural risk (as the single point of failure, the single
//!   replica, the blast radius or the fan-in hot spot, or as a member of a dependency cycle);
//! - `fault_trend`: the score of its rising fault rate, when flagged;
//! - `recurrence`: the score of its most recurring root cause;
//! - `change_failure`: its change failure rate shrunk toward the estate's, once it has enough
//!   changes (flagged or not: a service whose changes fail one time in ten carries that risk);
//! - `failing_actions`: the shrunk failure rate of a flagged action used on its faults, at half
//!   weight in the score: a runbook that fails makes an outage longer, not likelier.

use std::collections::BTreeMap;

use rootcause_topology::risks::{RiskKind, Severity, StructuralRisk};
use serde::Serialize;
use utoipa::ToSchema;

use super::calendar::Occurrence;
use super::history::{HistoricalKind, HistoryAnalysis};

/// The weight of the `failing_actions` part in the score.
const FAILING_ACTIONS_WEIGHT: f64 = 0.5;

/// The parts of a service's risk score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct RiskParts {
    /// Its highest structural risk.
    pub structural: f64,
    /// Its rising fault rate.
    pub fault_trend: f64,
    /// Its most recurring root cause.
    pub recurrence: f64,
    /// Its shrunk change failure rate.
    pub change_failure: f64,
    /// A flagged action used on its faults.
    pub failing_actions: f64,
}

impl RiskParts {
    fn combined(&self) -> f64 {
        1.0 - [
            self.structural,
            self.fault_trend,
            self.recurrence,
            self.change_failure,
            FAILING_ACTIONS_WEIGHT * self.failing_actions,
        ]
        .iter()
        .map(|p| 1.0 - p.clamp(0.0, 1.0))
        .product::<f64>()
    }
}

/// One service's risk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceRisk {
    /// The service.
    pub service: String,
    /// 0 to 1, from its parts.
    pub score: f64,
    /// From the score.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// What it is made of.
    pub parts: RiskParts,
    /// Why, as short phrases (the structural one first).
    pub reasons: Vec<String>,
}

/// Every service with a risk above zero, highest first.
pub fn service_scores(
    structural: &[StructuralRisk],
    history: &HistoryAnalysis,
) -> Vec<ServiceRisk> {
    let mut parts: BTreeMap<&str, (RiskParts, Option<RiskKind>, Vec<String>)> = BTreeMap::new();
    for risk in structural {
        let members: &[String] = if risk.kind == RiskKind::DependencyCycle {
            &risk.services
        } else {
            &risk.services[..risk.services.len().min(1)]
        };
        for service in members {
            let entry = parts.entry(service).or_default();
            if risk.score > entry.0.structural {
                entry.0.structural = risk.score;
                entry.1 = Some(risk.kind);
            }
        }
    }
    for risk in &history.risks {
        let Some(service) = risk.services.first() else {
            continue;
        };
        let entry = parts.entry(service).or_default();
        match risk.kind {
            HistoricalKind::RisingFaultRate => {
                entry.0.fault_trend = entry.0.fault_trend.max(risk.score);
                entry.2.push(format!(
                    "its fault rate is rising ({} then {} faults, q = {:.3})",
                    risk.figures["earlier"], risk.figures["recent"], risk.figures["q_value"]
                ));
            }
            HistoricalKind::RecurringRootCause => {
                if risk.score > entry.0.recurrence {
                    entry.0.recurrence = risk.score;
                    entry.2.push(format!(
                        "it caused the same kind of fault {} times in {} days",
                        risk.figures["count"], risk.figures["days"]
                    ));
                }
            }
            HistoricalKind::FailingAction | HistoricalKind::RiskyChanges => {}
        }
    }
    for (service, seen) in &history.services {
        let entry = parts.entry(service).or_default();
        if let Some(rate) = seen.change_failure_rate {
            entry.0.change_failure = rate;
            if seen.risky_changes {
                entry
                    .2
                    .push(format!("its change failure rate is {rate:.2}"));
            }
        }
        if let Some(rate) = seen.failing_action {
            entry.0.failing_actions = rate;
            entry
                .2
                .push(format!("an action used on it failed often ({rate:.2})"));
        }
    }
    let mut scores: Vec<ServiceRisk> = parts
        .into_iter()
        .map(|(service, (parts, kind, history_reasons))| {
            let score = parts.combined();
            let mut reasons: Vec<String> = kind
                .map(structural_phrase)
                .into_iter()
                .map(str::to_owned)
                .collect();
            reasons.extend(history_reasons);
            ServiceRisk {
                service: service.to_owned(),
                score,
                severity: Severity::of(score),
                parts,
                reasons,
            }
        })
        .filter(|r| r.score > 0.0)
        .collect();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.service.cmp(&b.service)));
    scores
}

fn structural_phrase(kind: RiskKind) -> &'static str {
    match kind {
        RiskKind::SinglePointOfFailure => "is a single point of failure",
        RiskKind::SingleReplica => "runs one replica without a fallback",
        RiskKind::BlastRadius => "has one of the estate's largest blast radii",
        RiskKind::DependencyCycle => "is in a dependency cycle",
        RiskKind::FanInHotSpot => "is called by unusually many services",
    }
}

/// A service at risk in a coming window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExposedService {
    /// The service.
    pub service: String,
    /// Its risk score.
    pub score: f64,
    /// Why, in one sentence naming the window.
    pub why: String,
}

/// What a coming window exposes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Exposure {
    /// The window.
    pub window: Occurrence,
    /// The services it concerns whose score is at least the floor, highest first.
    pub services: Vec<ExposedService>,
}

/// The services `window` concerns with a score of at least `floor`, at most `limit`.
pub fn exposure(window: &Occurrence, scores: &[ServiceRisk], floor: f64, limit: usize) -> Exposure {
    let services = scores
        .iter()
        .filter(|r| r.score >= floor && window.concerns(&r.service))
        .take(limit)
        .map(|r| {
            let at = format!("for the {} at {}", window.name, window.local_start);
            let why = match r.reasons.split_first() {
                Some((first, rest)) if r.parts.structural > 0.0 => {
                    let mut s = format!("{} {first} {at}", r.service);
                    for reason in rest {
                        s.push_str("; ");
                        s.push_str(reason);
                    }
                    s
                }
                _ => format!("{} is at risk {at}: {}", r.service, r.reasons.join("; ")),
            };
            ExposedService {
                service: r.service.clone(),
                score: r.score,
                why,
            }
        })
        .collect();
    Exposure {
        window: window.clone(),
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::ServiceHistory;
    use super::*;
    use crate::config::WindowKind;

    fn structural(kind: RiskKind, score: f64, services: &[&str]) -> StructuralRisk {
        StructuralRisk {
            kind,
            score,
            severity: Severity::of(score),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            why: String::new(),
        }
    }

    #[test]
    fn parts_combine_as_independent_chances_and_are_shown() {
        let structural = vec![
            structural(RiskKind::SinglePointOfFailure, 0.8, &["gateway", "a", "b"]),
            structural(RiskKind::DependencyCycle, 0.4, &["a", "b"]),
        ];
        let mut history = HistoryAnalysis::default();
        history.services.insert(
            "gateway".into(),
            ServiceHistory {
                changes: 10,
                failed_changes: 4,
                change_failure_rate: Some(0.4),
                risky_changes: true,
                ..ServiceHistory::default()
            },
        );
        let scores = service_scores(&structural, &history);
        let gateway = &scores[0];
        assert_eq!(gateway.service, "gateway");
        // 1 − (1 − 0.8)(1 − 0.4) = 0.88.
        assert!((gateway.score - 0.88).abs() < 1e-12);
        assert_eq!(gateway.parts.structural, 0.8);
        assert_eq!(
            gateway.reasons,
            [
                "is a single point of failure",
                "its change failure rate is 0.40"
            ]
        );
        // The cycle's members share its risk; the SPOF's affected services do not inherit it.
        let a = scores.iter().find(|r| r.service == "a").unwrap();
        assert_eq!(a.parts.structural, 0.4);
        let window = Occurrence {
            name: "open".into(),
            kind: WindowKind::Auction,
            start: 0,
            end: 1,
            local_start: "09:30".into(),
            raise_priority: 1,
            services: vec![],
        };
        let exposed = exposure(&window, &scores, 0.5, 10);
        assert_eq!(exposed.services.len(), 1);
        assert_eq!(
            exposed.services[0].why,
            "gateway is a single point of failure for the open at 09:30; its change failure rate is 0.40"
        );
    }
}
