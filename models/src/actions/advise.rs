//! Suggestions for every hypothesis of a diagnosis: what a responder reads next to each
//! candidate cause, from the case the diagnosis was made on.

use std::collections::{BTreeSet, HashMap};

use crate::case::{Case, CaseChange};
use crate::diagnosis::Diagnosis;
use crate::evidence::Evidence;

use super::catalogue::Catalogue;
use super::catalogue::Runbook;
use super::suggest::{Suggestion, Weights, applies, suggest};
use super::target::{Target, Votes};

/// How far before the incident's anchor a change on a service still counts as a likely cause
/// (the ranking service loads change events from as far back).
pub const CHANGE_LOOKBACK_S: i64 = 3600;

/// A change shortly after the anchor still counts: the anchor is the first alert, which can
/// fire before the deploy that caused it has finished rolling out everywhere.
const CHANGE_LOOKAHEAD_S: i64 = 120;

/// What [`advise`] reads besides the case and the diagnosis.
#[derive(Debug, Clone, Copy)]
pub struct Advisor<'a> {
    /// The runbooks that can be suggested.
    pub catalogue: &'a Catalogue,
    /// How the sources of a suggestion are weighed.
    pub weights: Weights,
    /// Most suggestions per hypothesis.
    pub limit: usize,
    /// Hypotheses given suggestions, most likely first; those below get none (as propagation
    /// paths, see [`crate::explain::TRACED`]): a large incident ranks a thousand candidates, and
    /// reasons for every one of them would multiply the size of every ranking a responder
    /// receives for candidates nobody acts on.
    pub hypotheses: usize,
}

/// The suggestions for the first [`Advisor::hypotheses`] hypotheses of `diagnosis`, in its
/// order (one list per hypothesis advised; fewer lists than hypotheses when there are more).
///
/// `evidence` is the evidence the diagnosis was made from (candidates in the case's order);
/// `learned` is asked once, with the evidence indices of the hypotheses to advise, for the
/// learned action model's probabilities of each (in the same order; empty without a model);
/// `similar` is what resolved incidents like this one.
pub fn advise(
    advisor: &Advisor,
    case: &Case,
    diagnosis: &Diagnosis,
    evidence: Option<&Evidence>,
    learned: impl FnOnce(&[usize]) -> Vec<Vec<(String, f64)>>,
    similar: Option<&Votes>,
) -> Vec<Vec<Suggestion>> {
    let advised = &diagnosis.hypotheses[..advisor.hypotheses.min(diagnosis.hypotheses.len())];
    // Only the advised few are looked up: a large incident has thousands of candidates.
    let wanted: HashMap<&str, usize> = match evidence {
        Some(e) => advised
            .iter()
            .filter_map(|h| candidate_index(e, &h.service).map(|i| (h.service.as_str(), i)))
            .collect(),
        None => HashMap::new(),
    };
    let indices: Vec<usize> = advised
        .iter()
        .filter_map(|h| wanted.get(h.service.as_str()).copied())
        .collect();
    let probabilities: HashMap<usize, Vec<(String, f64)>> =
        indices.iter().copied().zip(learned(&indices)).collect();
    let services: Vec<&str> = advised.iter().map(|h| h.service.as_str()).collect();
    let signals = signals_of(case, &services);
    let none: &[String] = &[];
    advised
        .iter()
        .map(|h| {
            let service = case.topology.as_deref().and_then(|t| t.service(&h.service));
            let target = Target {
                service: &h.service,
                kind: service.map(|s| s.kind),
                labels: service.map(|s| &s.labels),
                criticality: service.and_then(|s| s.criticality),
                callers: callers_of(case, &h.service),
                fault_type: h.fault_type,
                fault_type_confidence: h.fault_type_confidence,
                signals: signals.get(h.service.as_str()).map_or(none, Vec::as_slice),
                recent_change: recent_change(case, &h.service),
                incident_at: Some(case.anchor),
                learned: wanted
                    .get(h.service.as_str())
                    .and_then(|i| probabilities.get(i))
                    .map_or(&[][..], Vec::as_slice),
                similar,
            };
            suggest(advisor.catalogue, &target, &advisor.weights, advisor.limit)
        })
        .collect()
}

/// Whether `runbook` may be applied to `service` in `case`: its service selector matches the
/// service as the case's topology describes it and, if it requires one, the service changed
/// recently. What [`advise`] checks before suggesting a runbook, for approvals to check too.
pub fn runbook_applies(runbook: &Runbook, case: &Case, service: &str) -> bool {
    let signals = signals_of(case, &[service]);
    let described = case.topology.as_deref().and_then(|t| t.service(service));
    let target = Target {
        service,
        kind: described.map(|s| s.kind),
        labels: described.map(|s| &s.labels),
        criticality: described.and_then(|s| s.criticality),
        callers: callers_of(case, service),
        fault_type: None,
        fault_type_confidence: None,
        signals: signals.get(service).map_or(&[][..], Vec::as_slice),
        recent_change: recent_change(case, service),
        incident_at: Some(case.anchor),
        learned: &[],
        similar: None,
    };
    applies(runbook, &target)
}

/// Where `service` is among the evidence's candidates: found by binary search, since a case's
/// candidates are sorted by name, or by a scan should a source not sort them.
fn candidate_index(evidence: &Evidence, service: &str) -> Option<usize> {
    let candidates = &evidence.candidates;
    match candidates.binary_search_by(|c| c.service.as_str().cmp(service)) {
        Ok(i) => Some(i),
        Err(_) => candidates.iter().position(|c| c.service == service),
    }
}

/// The signal kinds of the case's alerts, per service, sorted and unique.
///
/// Only for `services`: an alert storm's incident holds hundreds of thousands of alerts, and the
/// few services advised need a handful of distinct signals, not a copy of every alert's.
fn signals_of<'a>(case: &'a Case, services: &[&'a str]) -> HashMap<&'a str, Vec<String>> {
    let mut seen: HashMap<&str, BTreeSet<&str>> =
        services.iter().map(|&s| (s, BTreeSet::new())).collect();
    for alert in &case.alerts {
        if let Some(kinds) = alert
            .service
            .as_deref()
            .and_then(|service| seen.get_mut(service))
        {
            kinds.insert(alert.signal.as_str());
        }
    }
    seen.into_iter()
        .map(|(service, kinds)| (service, kinds.into_iter().map(str::to_owned).collect()))
        .collect()
}

/// How many services call `service` in the case's topology.
fn callers_of(case: &Case, service: &str) -> usize {
    case.topology
        .as_deref()
        .and_then(|t| t.callers(service, 1).ok())
        .map_or(0, |callers| callers.len())
}

/// The latest change on `service` that can explain an incident anchored at the case's anchor.
pub fn recent_change<'a>(case: &'a Case, service: &str) -> Option<&'a CaseChange> {
    case.changes
        .iter()
        .filter(|c| c.service == service)
        .filter(|c| {
            c.at >= case.anchor - CHANGE_LOOKBACK_S && c.at <= case.anchor + CHANGE_LOOKAHEAD_S
        })
        .max_by_key(|c| c.at)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rootcause_topology::{Format, Topology};

    use super::*;
    use crate::case::CaseAlert;
    use crate::diagnosis::{FaultType, Hypothesis};
    use crate::evidence::CandidateEvidence;

    fn change(service: &str, at: i64) -> CaseChange {
        CaseChange {
            service: service.to_owned(),
            kind: "deploy".into(),
            at,
            description: String::new(),
        }
    }

    #[test]
    fn each_hypothesis_gets_suggestions_from_its_own_service() {
        let topology = Topology::parse(
            "services:\n  - {name: web, kind: service}\n  - {name: api, kind: service}\n  \
             - {name: db, kind: database}\ndependencies:\n  - {caller: web, callee: api}\n  \
             - {caller: api, callee: db}\n",
            Format::Yaml,
        )
        .unwrap();
        let case = Case {
            anchor: 10_000,
            candidates: vec!["api".into(), "db".into()],
            alerts: vec![CaseAlert {
                service: Some("db".into()),
                name: "DiskFull".into(),
                signal: "disk".into(),
                severity: "critical".into(),
                starts_at: 10_000,
                ends_at: None,
                labels: Default::default(),
                count: 1,
            }],
            // A deploy of api ten minutes before, one of db two hours before (too old).
            changes: vec![change("api", 9_400), change("db", 2_800)],
            topology: Some(Arc::new(topology)),
            ..Case::default()
        };
        let evidence = Evidence {
            candidates: ["api", "db"]
                .iter()
                .map(|s| CandidateEvidence::scored(*s, [0.0; crate::evidence::Detector::COUNT]))
                .collect(),
            graph: Default::default(),
        };
        // Hypotheses in another order than the evidence: db first.
        let diagnosis = Diagnosis::of(vec![
            Hypothesis::origin("db", FaultType::Disk),
            Hypothesis::origin("api", FaultType::Code),
        ]);
        // The learned model strongly favours scale_out for api (evidence index 0) only.
        let learned = [
            vec![("scale_out".to_owned(), 0.99), ("restart".to_owned(), 0.01)],
            Vec::new(),
        ];
        let catalogue = Catalogue::bundled();
        let advisor = Advisor {
            catalogue: &catalogue,
            weights: Weights::default(),
            limit: 3,
            hypotheses: 2,
        };
        let advice = advise(
            &advisor,
            &case,
            &diagnosis,
            Some(&evidence),
            |indices| indices.iter().map(|&i| learned[i].clone()).collect(),
            None,
        );
        assert_eq!(advice.len(), 2);
        let ids = |i: usize| {
            advice[i]
                .iter()
                .map(|s| s.action.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(0)[0], "free_disk", "{:?}", ids(0));
        assert!(!ids(0).contains(&"rollback"), "db's deploy is too old");
        assert_eq!(ids(1)[0], "rollback", "api changed 10 min before");
        assert!(
            advice[1][0].reason.contains("10 min before"),
            "{}",
            advice[1][0].reason
        );
        let scale_out = advice[1].iter().position(|s| s.action == "scale_out");
        assert!(
            scale_out.is_some(),
            "the learned vote for api reaches api: {:?}",
            ids(1)
        );
        assert!(
            advice[0].iter().all(|s| !s.reason.contains("learned")),
            "db had no learned probabilities"
        );
    }
}
