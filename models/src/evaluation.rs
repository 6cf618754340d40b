//! Scoring a ranker on labelled cases: AC@1, AC@3, AC@5 and Avg@5 overall and per fault type,
//! the chance level beside each, and the time spent ranking.
//!
//! The caller measures time and reports progress; this module only counts, so the same cases and
//! rankings always give the same report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::accuracy::{Accuracy, Figures, Scored, pessimistic_rank};
use crate::calibration::Reliability;
use crate::case::{Case, Label};
use crate::ranker::Ranking;

/// What [`withhold`] took from a case before ranking, to score the ranking with afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Withheld {
    /// The case's original id.
    pub id: String,
    /// Its label, if it had one.
    pub label: Option<Label>,
}

/// Takes from `case` everything that may name its root cause, so a ranker cannot see it: the
/// label, the loader's notes, and the id (RCAEval's `<service>_<fault>` folders name the cause),
/// which becomes the opaque `case-<index>`. Every evaluation ranks cases through this.
pub fn withhold(case: &mut Case, index: usize) -> Withheld {
    case.notes.clear();
    Withheld {
        id: std::mem::replace(&mut case.id, format!("case-{index:06}")),
        label: case.label.take(),
    }
}

/// The outcome of ranking one labelled case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseOutcome {
    /// The case id.
    pub case: String,
    /// The labelled fault type.
    pub fault_type: String,
    /// The labelled root cause.
    pub root_cause: String,
    /// The 1-based pessimistic rank of the root cause (`None`: not ranked, a miss).
    pub rank: Option<usize>,
    /// How many candidates were ranked.
    pub candidates: usize,
    /// Whether the root cause was among the case's candidates at all. When it was not (the data
    /// never showed it), the case is a miss for a random guess too.
    pub truth_is_candidate: bool,
    /// The ranked services, most likely first.
    pub ranking: Vec<String>,
    /// Seconds spent ranking this case.
    pub seconds: f64,
}

impl CaseOutcome {
    /// Scores `ranking` of the case `case_id`, whose candidates were `candidates`, against its
    /// `label`. The label is passed apart from the case on purpose: rankers never see it.
    pub fn new(
        case_id: &str,
        label: &Label,
        candidates: &[String],
        ranking: &Ranking,
        seconds: f64,
    ) -> CaseOutcome {
        let scored: Vec<Scored<'_>> = ranking
            .services()
            .iter()
            .map(|r| Scored {
                service: &r.service,
                score: r.score,
            })
            .collect();
        let rank = pessimistic_rank(&scored, &label.root_cause);
        CaseOutcome {
            case: case_id.to_string(),
            fault_type: label.fault_type.clone(),
            root_cause: label.root_cause.clone(),
            rank,
            // Chance is over what had to be ranked, even if a ranker left some out.
            candidates: candidates.len().max(scored.len()),
            truth_is_candidate: rank.is_some() || candidates.contains(&label.root_cause),
            ranking: ranking.names(),
            seconds,
        }
    }
}

/// Figures for one group of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// Cases in the group.
    pub cases: usize,
    /// The ranker's figures.
    pub overall: Figures,
    /// A uniformly random ranking of the same candidates.
    pub chance: Figures,
}

/// The evaluation of one ranker on a set of cases. Serialises to the `--json` output of
/// `rootcause eval`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Labelled cases scored.
    pub cases: usize,
    /// The ranker's name.
    pub ranker: String,
    /// AC@1, AC@3, AC@5, Avg@5 over all cases.
    pub overall: Figures,
    /// The same for a uniformly random ranking.
    pub chance: Figures,
    /// Per labelled fault type, sorted by name.
    pub by_fault_type: BTreeMap<String, GroupFigures>,
    /// Cases whose root cause was among their candidates (the rest are misses for every ranker
    /// and for chance).
    pub truth_among_candidates: usize,
    /// Mean seconds spent ranking one case (loading excluded).
    pub seconds_per_case: f64,
    /// Reliability of the top hypothesis' confidence, for rankers that give one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reliability: Option<Reliability>,
    /// Cases answered "unknown" (top confidence below the threshold), for rankers that can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<usize>,
}

impl Report {
    /// Adds the reliability of top-1 confidences and the count of "unknown" answers, from
    /// `(top confidence, top was right, answered unknown)` per case.
    pub fn with_confidences(mut self, answers: &[(f64, bool, bool)]) -> Report {
        let pairs: Vec<(f64, bool)> = answers.iter().map(|a| (a.0, a.1)).collect();
        self.reliability = Some(Reliability::new(&pairs, 10));
        self.unknown = Some(answers.iter().filter(|a| a.2).count());
        self
    }

    /// Summarises the outcomes of `ranker`.
    pub fn new(ranker: &str, outcomes: &[CaseOutcome]) -> Report {
        let group = |outcomes: &mut dyn Iterator<Item = &CaseOutcome>| {
            let mut accuracy = Accuracy::new();
            for outcome in outcomes {
                if outcome.truth_is_candidate {
                    accuracy.add(outcome.rank, outcome.candidates);
                } else {
                    accuracy.add_absent();
                }
            }
            GroupFigures {
                cases: accuracy.cases(),
                overall: accuracy.figures(),
                chance: accuracy.chance_figures(),
            }
        };
        let all = group(&mut outcomes.iter());
        let mut fault_types: Vec<&str> = outcomes.iter().map(|o| o.fault_type.as_str()).collect();
        fault_types.sort_unstable();
        fault_types.dedup();
        let by_fault_type = fault_types
            .into_iter()
            .map(|fault| {
                let figures = group(&mut outcomes.iter().filter(|o| o.fault_type == fault));
                (fault.to_string(), figures)
            })
            .collect();
        let seconds: f64 = outcomes.iter().map(|o| o.seconds).sum();
        Report {
            cases: all.cases,
            ranker: ranker.to_string(),
            overall: all.overall,
            chance: all.chance,
            by_fault_type,
            truth_among_candidates: outcomes.iter().filter(|o| o.truth_is_candidate).count(),
            seconds_per_case: if outcomes.is_empty() {
                0.0
            } else {
                seconds / outcomes.len() as f64
            },
            reliability: None,
            unknown: None,
        }
    }

    /// The report as a text table: one row overall, one per fault type, chance beside each.
    pub fn table(&self) -> String {
        let width = self
            .by_fault_type
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max("FAULT TYPE".len());
        let mut out = format!(
            "{:<width$}  {:>5}  {:>5}  {:>5}  {:>5}  {:>5}    {:>8}  {:>8}  {:>8}  {:>9}\n",
            "FAULT TYPE",
            "CASES",
            "AC@1",
            "AC@3",
            "AC@5",
            "AVG@5",
            "CHANCE@1",
            "CHANCE@3",
            "CHANCE@5",
            "CHANCE-AVG5"
        );
        let row = |name: &str, group: &GroupFigures| {
            format!(
                "{:<width$}  {:>5}  {:>5.3}  {:>5.3}  {:>5.3}  {:>5.3}    {:>8.3}  {:>8.3}  {:>8.3}  {:>9.3}\n",
                name,
                group.cases,
                group.overall.ac1,
                group.overall.ac3,
                group.overall.ac5,
                group.overall.avg5,
                group.chance.ac1,
                group.chance.ac3,
                group.chance.ac5,
                group.chance.avg5,
            )
        };
        for (fault, group) in &self.by_fault_type {
            out.push_str(&row(fault, group));
        }
        out.push_str(&row(
            "all",
            &GroupFigures {
                cases: self.cases,
                overall: self.overall,
                chance: self.chance,
            },
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATES: [&str; 4] = ["a", "b", "c", "d"];

    fn outcome(truth: &str, fault: &str, scores: &[(&str, f64)], seconds: f64) -> CaseOutcome {
        let label = Label {
            root_cause: truth.into(),
            fault_type: fault.into(),
            action: None,
        };
        let candidates: Vec<String> = CANDIDATES.iter().map(|c| c.to_string()).collect();
        let ranking = Ranking::from_scores(scores.iter().map(|(s, v)| (s.to_string(), *v)));
        CaseOutcome::new("case", &label, &candidates, &ranking, seconds)
    }

    #[test]
    fn report_counts_ranks_per_fault_type_with_chance_and_pessimistic_ties() {
        let outcomes = [
            outcome(
                "a",
                "cpu",
                &[("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.0)],
                0.5,
            ),
            // Tied with b: counted as rank 2, not 1.
            outcome(
                "a",
                "cpu",
                &[("a", 3.0), ("b", 3.0), ("c", 1.0), ("d", 0.0)],
                1.5,
            ),
            // A candidate the ranker left out: a miss at every k, while chance still counts it.
            outcome("d", "delay", &[("a", 3.0), ("b", 2.0), ("c", 1.0)], 1.0),
        ];
        assert_eq!(outcomes[1].rank, Some(2));
        assert_eq!(outcomes[2].rank, None);
        assert!(outcomes[2].truth_is_candidate);
        let report = Report::new("test", &outcomes);
        assert_eq!(report.cases, 3);
        assert!((report.overall.ac1 - 1.0 / 3.0).abs() < 1e-12);
        assert!((report.overall.ac3 - 2.0 / 3.0).abs() < 1e-12);
        assert!((report.chance.ac1 - 0.25).abs() < 1e-12);
        assert!((report.seconds_per_case - 1.0).abs() < 1e-12);
        assert_eq!(report.by_fault_type["cpu"].cases, 2);
        assert_eq!(report.by_fault_type["cpu"].overall.ac1, 0.5);
        assert_eq!(report.by_fault_type["delay"].overall.ac5, 0.0);
        let table = report.table();
        assert!(table.contains("cpu"), "{table}");
        assert!(table.lines().last().unwrap().starts_with("all"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "cases",
            "ranker",
            "overall",
            "chance",
            "by_fault_type",
            "seconds_per_case",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert!(json["overall"]["avg5"].is_number());
    }

    #[test]
    fn withholding_removes_everything_that_may_name_the_cause() {
        let mut case = Case {
            id: "checkout_cpu/3".into(),
            notes: vec!["checkout is not a candidate".into()],
            label: Some(Label {
                root_cause: "checkout".into(),
                fault_type: "cpu".into(),
                action: None,
            }),
            ..Case::default()
        };
        let withheld = withhold(&mut case, 7);
        assert_eq!(withheld.id, "checkout_cpu/3");
        assert_eq!(withheld.label.unwrap().root_cause, "checkout");
        assert_eq!(case.id, "case-000007");
        assert!(case.label.is_none() && case.notes.is_empty());
    }

    #[test]
    fn a_root_cause_missing_from_the_candidates_is_a_miss_for_chance_too() {
        let present = outcome("a", "cpu", &[("a", 1.0), ("b", 0.0)], 0.0);
        let absent = outcome("z", "cpu", &[("a", 1.0), ("b", 0.0)], 0.0);
        assert!(!absent.truth_is_candidate);
        let report = Report::new("test", &[present, absent]);
        assert_eq!(report.truth_among_candidates, 1);
        assert_eq!(report.overall.ac1, 0.5);
        // Only the first case could be hit by chance: (1/4 + 0) / 2.
        assert!((report.chance.ac1 - 0.125).abs() < 1e-12);
    }
}
