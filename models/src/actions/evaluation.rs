//! How often the suggested actions name the action that resolved each case: top-1 and top-3
//! accuracy by cross-validation by case, for each source of a suggestion alone and combined,
//! beside chance and the most frequent action.
//!
//! Every case is scored with what was learned from the *other* folds only: the learned action
//! model is trained on them, and the similar-incident index holds only them. The runbooks are
//! fixed knowledge and need no training.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::case::{Case, Label};
use crate::diagnosis::Diagnosis;
use crate::evidence::Evidence;
use crate::learned::{
    ActionModel, Example, TrainError, TrainParams, features, fold_of, train_actions,
};

use super::advise::{Advisor, advise};
use super::catalogue::Catalogue;
use super::similar::{PastIncident, SimilarIndex, incident_vector};
use super::suggest::{Suggestion, Weights};
use super::target::Votes;

/// The row of what the service serves: every source combined.
pub const SERVED: &str = "runbooks + similar + learned (served)";

/// One labelled case to score.
#[derive(Debug, Clone, Copy)]
pub struct ActionCase<'a> {
    /// The case (its alerts, changes and topology).
    pub case: &'a Case,
    /// Its evidence.
    pub evidence: &'a Evidence,
    /// The ranker's diagnosis of it (out of fold for a learned ranker).
    pub diagnosis: &'a Diagnosis,
    /// Its label; cases without an action are not scored.
    pub label: &'a Label,
}

/// Top-1 and top-3 accuracy of one way of suggesting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Share of cases whose resolving action came first.
    pub top1: f64,
    /// Share of cases whose resolving action was among the first three.
    pub top3: f64,
}

/// The action-accuracy table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    /// Cases scored (labelled with a resolving action).
    pub cases: usize,
    /// Folds of the cross-validation.
    pub folds: usize,
    /// Runbooks in the catalogue.
    pub runbooks: usize,
    /// Rows: what suggested, and how well.
    pub rows: Vec<(String, Accuracy)>,
    /// How often each action resolved a case.
    pub actions: BTreeMap<String, usize>,
    /// Share of cases whose resolving action is not a runbook of the catalogue (no runbook
    /// suggestion can name it).
    pub outside_catalogue: f64,
    /// Mean confidence of the combined first suggestion (to compare with its top-1).
    pub mean_top_confidence: f64,
}

/// Scores the suggestions on `cases` by `folds`-fold cross-validation by case.
///
/// `progress` is told how many folds are done.
pub fn evaluate(
    cases: &[ActionCase],
    catalogue: &Catalogue,
    weights: Weights,
    folds: usize,
    params: &TrainParams,
    mut progress: impl FnMut(usize),
) -> Result<ActionReport, TrainError> {
    let scored: Vec<(&ActionCase, &str)> = cases
        .iter()
        .filter_map(|c| c.label.action.as_deref().map(|a| (c, a)))
        .collect();
    let folds = folds.clamp(2, scored.len().max(2));
    let mut tally = Tally::default();
    let mut actions: BTreeMap<String, usize> = BTreeMap::new();
    let mut outside = 0usize;
    let mut confidence = 0.0;
    let advisor = Advisor {
        catalogue,
        weights,
        limit: catalogue.runbooks.len(),
        hypotheses: usize::MAX,
    };
    for k in 0..folds {
        let training: Vec<(&ActionCase, &str)> = scored
            .iter()
            .enumerate()
            .filter(|(i, _)| fold_of(*i, folds) != k)
            .map(|(_, c)| *c)
            .collect();
        let model = train_actions(&examples(&training), params)?;
        let index = similar_index(&training);
        let frequent = most_frequent(&training);
        for (i, (case, truth)) in scored.iter().enumerate() {
            if fold_of(i, folds) != k {
                continue;
            }
            *actions.entry((*truth).to_owned()).or_default() += 1;
            outside += usize::from(catalogue.get(truth).is_none());
            let learned = learned_rows(model.as_ref(), case.evidence);
            let neighbours = index.nearest(&incident_vector(case.evidence), 10, |_| false);
            let votes = (!index.is_empty()).then(|| SimilarIndex::votes(&neighbours));
            let advised = |learned: &[Vec<(String, f64)>], votes: Option<&Votes>| {
                let by_index = |indices: &[usize]| {
                    indices
                        .iter()
                        .map(|&i| learned.get(i).cloned().unwrap_or_default())
                        .collect()
                };
                advise(
                    &advisor,
                    case.case,
                    case.diagnosis,
                    Some(case.evidence),
                    by_index,
                    votes,
                )
            };
            let combined = advised(&learned, votes.as_ref());
            let runbooks_only = advised(&[], None);
            let top = |all: &[Vec<Suggestion>]| -> Vec<String> {
                all.first()
                    .map(|s| s.iter().map(|s| s.action.clone()).collect())
                    .unwrap_or_default()
            };
            confidence += combined
                .first()
                .and_then(|s| s.first())
                .map_or(0.0, |s| s.confidence);
            tally.add("most frequent action (training folds)", &frequent, truth);
            tally.add("runbooks only", &top(&runbooks_only), truth);
            let votes_order: Vec<String> = votes
                .as_ref()
                .map(|v| ordered(v.actions.iter().map(|a| (a.action.clone(), a.share))))
                .unwrap_or_default();
            tally.add("similar incidents only", &votes_order, truth);
            let top_row = top_candidate(case);
            let learned_order: Vec<String> = top_row
                .and_then(|i| learned.get(i))
                .map(|p| p.iter().map(|(a, _)| a.clone()).collect())
                .unwrap_or_default();
            tally.add("learned action model only", &learned_order, truth);
            tally.add(SERVED, &top(&combined), truth);
            // The same for the true cause: how much of a miss is the ranking's.
            if let Some(at) = case
                .diagnosis
                .hypotheses
                .iter()
                .position(|h| h.service == case.label.root_cause)
            {
                tally.add(
                    "served, at the true cause (oracle ranking)",
                    &combined[at]
                        .iter()
                        .map(|s| s.action.clone())
                        .collect::<Vec<_>>(),
                    truth,
                );
            } else {
                tally.add("served, at the true cause (oracle ranking)", &[], truth);
            }
        }
        progress(k + 1);
    }
    let n = scored.len().max(1) as f64;
    let runbooks = catalogue.runbooks.len().max(1) as f64;
    // A uniform guess among the runbooks never names an action outside the catalogue.
    let inside = 1.0 - outside as f64 / n;
    let mut rows = vec![(
        format!(
            "chance (uniform over {} runbooks)",
            catalogue.runbooks.len()
        ),
        Accuracy {
            top1: inside / runbooks,
            top3: inside * (3.0 / runbooks).min(1.0),
        },
    )];
    rows.extend(tally.rows(scored.len()));
    Ok(ActionReport {
        cases: scored.len(),
        folds,
        runbooks: catalogue.runbooks.len(),
        rows,
        actions,
        outside_catalogue: outside as f64 / n,
        mean_top_confidence: confidence / n,
    })
}

impl ActionReport {
    /// The accuracy of what the service serves.
    pub fn served(&self) -> Accuracy {
        self.rows
            .iter()
            .find(|(name, _)| name == SERVED)
            .map(|(_, accuracy)| *accuracy)
            .unwrap_or_default()
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "action accuracy: {} cases with a resolving action, {}-fold cross-validation by case; \
             suggestions for the top hypothesis\n",
            self.cases, self.folds
        );
        out.push_str(&format!(
            "{:<48} {:>6} {:>6}\n",
            "suggested by", "top-1", "top-3"
        ));
        for (name, accuracy) in &self.rows {
            out.push_str(&format!(
                "{name:<48} {:>6.3} {:>6.3}\n",
                accuracy.top1, accuracy.top3
            ));
        }
        let actions: Vec<String> = self
            .actions
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect();
        out.push_str(&format!("resolving actions: {}\n", actions.join(", ")));
        out.push_str(&format!(
            "mean confidence of the first served suggestion: {:.3}; resolving action outside the \
             catalogue in {:.1}% of cases\n",
            self.mean_top_confidence,
            self.outside_catalogue * 100.0
        ));
        out
    }
}

/// Hits per row name, in the order rows were first added.
#[derive(Default)]
struct Tally {
    rows: Vec<(String, usize, usize)>,
}

impl Tally {
    fn add(&mut self, name: &str, order: &[String], truth: &str) {
        let place = order.iter().position(|a| a == truth);
        let at = match self.rows.iter().position(|r| r.0 == name) {
            Some(at) => at,
            None => {
                self.rows.push((name.to_owned(), 0, 0));
                self.rows.len() - 1
            }
        };
        self.rows[at].1 += usize::from(place == Some(0));
        self.rows[at].2 += usize::from(place.is_some_and(|p| p < 3));
    }

    fn rows(self, cases: usize) -> Vec<(String, Accuracy)> {
        let n = cases.max(1) as f64;
        self.rows
            .into_iter()
            .map(|(name, top1, top3)| {
                (
                    name,
                    Accuracy {
                        top1: top1 as f64 / n,
                        top3: top3 as f64 / n,
                    },
                )
            })
            .collect()
    }
}

fn examples(cases: &[(&ActionCase, &str)]) -> Vec<Example> {
    cases
        .iter()
        .map(|(c, action)| {
            Example::from_evidence(
                c.evidence.clone(),
                &c.label.root_cause,
                &c.label.fault_type,
                Some((*action).to_owned()),
            )
        })
        .collect()
}

fn similar_index(cases: &[(&ActionCase, &str)]) -> SimilarIndex {
    let mut index = SimilarIndex::new();
    for (c, action) in cases {
        index.insert(
            PastIncident {
                key: c.case.id.clone(),
                system: c.case.system.clone(),
                started_at: c.case.anchor,
                root_cause: c.label.root_cause.clone(),
                fault_type: Some(c.label.fault_type.clone()),
                action: Some((*action).to_owned()),
                worked: Some(true),
                time_to_mitigate_s: None,
            },
            incident_vector(c.evidence),
        );
    }
    index
}

/// Actions by how often they resolved the training cases.
fn most_frequent(cases: &[(&ActionCase, &str)]) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, action) in cases {
        *counts.entry(action).or_default() += 1;
    }
    ordered(counts.into_iter().map(|(a, n)| (a.to_owned(), n as f64)))
}

fn ordered(scores: impl Iterator<Item = (String, f64)>) -> Vec<String> {
    let mut scores: Vec<(String, f64)> = scores.collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scores.into_iter().map(|(a, _)| a).collect()
}

/// The learned action model's probabilities per candidate of `evidence`.
fn learned_rows(model: Option<&ActionModel>, evidence: &Evidence) -> Vec<Vec<(String, f64)>> {
    match model {
        Some(model) => features(evidence)
            .iter()
            .map(|r| model.suggest(r))
            .collect(),
        None => Vec::new(),
    }
}

/// The evidence index of the diagnosis' top hypothesis.
fn top_candidate(case: &ActionCase) -> Option<usize> {
    let top = case.diagnosis.hypotheses.first()?;
    case.evidence
        .candidates
        .iter()
        .position(|c| c.service == top.service)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rootcause_topology::{Format, Topology};

    use super::*;
    use crate::case::CaseAlert;
    use crate::diagnosis::{FaultType, Hypothesis};
    use crate::evidence::{CandidateEvidence, Detector};

    const TOPOLOGY: &str = "services:\n  - {name: api, kind: service}\n  - {name: db, kind: database}\n\
                            dependencies:\n  - {caller: api, callee: db}\n";

    fn candidate(service: &str, detector: Detector, z: f64) -> CandidateEvidence {
        let mut scores = [0.0; Detector::COUNT];
        scores[detector as usize] = z;
        CandidateEvidence::scored(service, scores)
    }

    fn hypothesis(service: &str, fault: FaultType) -> Hypothesis {
        Hypothesis {
            score: 1.0,
            confidence: Some(0.9),
            ..Hypothesis::origin(service, fault)
        }
    }

    /// Memory faults on `api` resolved by a restart, disk faults on `db` by freeing disk.
    fn material(i: usize) -> (Case, Evidence, Diagnosis, Label) {
        let memory = i.is_multiple_of(2);
        let (service, detector, fault, signal, action) = if memory {
            (
                "api",
                Detector::MemoryMetric,
                FaultType::Memory,
                "memory",
                "restart",
            )
        } else {
            (
                "db",
                Detector::DiskMetric,
                FaultType::Disk,
                "disk",
                "free_disk",
            )
        };
        let topology = Topology::parse(TOPOLOGY, Format::Yaml).unwrap();
        let case = Case {
            id: format!("case-{i}"),
            anchor: 1_000,
            candidates: vec!["api".into(), "db".into()],
            alerts: vec![CaseAlert {
                service: Some(service.to_owned()),
                name: "Alert".into(),
                signal: signal.into(),
                severity: "critical".into(),
                starts_at: 1_000,
                ends_at: None,
                labels: Default::default(),
                count: 1,
            }],
            topology: Some(Arc::new(topology)),
            ..Case::default()
        };
        let strength = 4.0 + (i % 5) as f64;
        let evidence = Evidence {
            candidates: ["api", "db"]
                .iter()
                .map(|s| {
                    if *s == service {
                        candidate(s, detector, strength)
                    } else {
                        candidate(s, Detector::Alerts, 0.5)
                    }
                })
                .collect(),
            graph: Default::default(),
        };
        let diagnosis = Diagnosis::of(vec![hypothesis(service, fault)]);
        let label = Label {
            root_cause: service.to_owned(),
            fault_type: fault.as_str().to_owned(),
            action: Some(action.to_owned()),
        };
        (case, evidence, diagnosis, label)
    }

    #[test]
    fn every_source_is_scored_out_of_fold_beside_chance() {
        let material: Vec<_> = (0..20).map(material).collect();
        let cases: Vec<ActionCase> = material
            .iter()
            .map(|(case, evidence, diagnosis, label)| ActionCase {
                case,
                evidence,
                diagnosis,
                label,
            })
            .collect();
        let catalogue = Catalogue::bundled();
        let mut folds_done = Vec::new();
        let report = evaluate(
            &cases,
            &catalogue,
            Weights::default(),
            5,
            &TrainParams::default(),
            |k| folds_done.push(k),
        )
        .unwrap();
        assert_eq!(folds_done, [1, 2, 3, 4, 5]);
        assert_eq!(report.cases, 20);
        let row = |name: &str| {
            report
                .rows
                .iter()
                .find(|r| r.0.starts_with(name))
                .unwrap_or_else(|| panic!("no row {name}: {:?}", report.rows))
                .1
        };
        let chance = row("chance");
        assert!((chance.top1 - 1.0 / 7.0).abs() < 1e-9);
        assert!((chance.top3 - 3.0 / 7.0).abs() < 1e-9);
        // Half the cases each: the most frequent action is right half the time at best.
        assert!(row("most frequent").top1 <= 0.5 + 1e-9);
        // The mechanisms are unmistakable: every informed source names the action.
        for name in [
            "runbooks only",
            "similar incidents only",
            "learned action model only",
        ] {
            assert_eq!(row(name).top1, 1.0, "{name}: {:?}", report.rows);
        }
        assert_eq!(row("runbooks + similar + learned").top1, 1.0);
        assert_eq!(report.served().top1, 1.0);
        assert_eq!(report.actions["restart"], 10);
        assert!(report.table().contains("chance (uniform over 7 runbooks)"));
    }
}
