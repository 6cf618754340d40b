//! One training run, free of I/O: labelled history in, a candidate model out, with its figures
//! and the decision whether it may replace the active model.
//!
//! **Held-out slice.** One history row in [`HELD_OUT_ONE_IN`] is never trained on, chosen by a
//! hash of its key: the choice does not depend on when a row arrived or on what else is in the
//! history, so a row held out once is held out by every later job, and every model a job
//! trains can be compared with the active one on cases neither has seen (except a model
//! trained elsewhere, such as the bundled one, whose training cases this service cannot know).
//! The rest is the training slice; its figures come from cross-validation by case.

use rootcause_models::accuracy::Figures;
use rootcause_models::case::Label;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evaluation::{CaseOutcome, Report};
use rootcause_models::learned::{
    self, ActionFigures, Example, LearnedModel, TrainError, TrainParams,
};
use rootcause_models::ranker::{Ranker, Ranking};
use serde::{Deserialize, Serialize};

/// One history row in this many is held out of training (see the module documentation).
pub const HELD_OUT_ONE_IN: u64 = 5;

/// Fewest held-out cases on which a candidate is compared with the active model; with fewer the
/// comparison says too little, and a job promotes only when forced.
pub const MIN_HELD_OUT: usize = 5;

/// Whether the history row with `key` belongs to the held-out slice.
pub fn held_out(key: &str) -> bool {
    // FNV-1a: stable across builds, so the slice never moves.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.is_multiple_of(HELD_OUT_ONE_IN)
}

/// A history row ready for training.
#[derive(Debug, Clone)]
pub struct HistoryExample {
    /// The row's key (see [`held_out`]).
    pub key: String,
    /// Its label.
    pub label: Label,
    /// Its evidence and label, as the learner reads them.
    pub example: Example,
}

/// What a training request may set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainRequest {
    /// Promote the new model even if it is worse than the active one on the held-out cases.
    pub force: bool,
    /// Folds of the cross-validation by case on the training slice (2–10).
    pub folds: usize,
    /// L2 penalty of the logistic regressions (on standardised features): fault type, actions;
    /// larger is simpler.
    pub alpha: f64,
    /// L2 penalty of the ranking scorer's corrections to its cold-start prior; larger keeps the
    /// ranking closer to the training-free scorer.
    pub prior_alpha: f64,
}

impl Default for TrainRequest {
    fn default() -> Self {
        TrainRequest {
            force: false,
            folds: 5,
            alpha: TrainParams::default().alpha,
            prior_alpha: TrainParams::default().prior_alpha,
        }
    }
}

impl TrainRequest {
    /// What is wrong with the request, if anything: (field, problem).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(2..=10).contains(&self.folds) {
            return Some(("folds", format!("must be 2 to 10, got {}", self.folds)));
        }
        // Below this the penalty no longer keeps the fit well conditioned (collinear features,
        // separable pairs).
        for (field, value) in [("alpha", self.alpha), ("prior_alpha", self.prior_alpha)] {
            if !(value.is_finite() && value >= 1e-4) {
                return Some((field, format!("must be a number ≥ 0.0001, got {value}")));
            }
        }
        None
    }
}

/// How a candidate and the active model did on the same held-out cases.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HeldOutFigures {
    /// Held-out cases scored.
    pub cases: usize,
    /// Of them, cases whose cause was among their candidates: the only ones that can tell two
    /// models apart (an `external` cause is a miss for every model).
    pub usable: usize,
    /// The candidate's AC@1, AC@3, AC@5, Avg@5.
    #[schema(value_type = Object)]
    pub candidate: Figures,
    /// The active model's, on the same cases.
    #[schema(value_type = Object)]
    pub active: Option<Figures>,
    /// The model that was active.
    pub active_model: String,
    /// A uniformly random ranking of the same candidates.
    #[schema(value_type = Object)]
    pub chance: Figures,
}

/// Everything a job measured about the model it trained, stored with the model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrainingFigures {
    /// Version of the feature set the model reads.
    pub feature_schema: u32,
    /// Version of the evidence the features were computed from.
    pub evidence_schema: u32,
    /// History rows trained on (their cause among their candidates).
    pub training_cases: usize,
    /// Candidate rows trained on.
    pub training_rows: usize,
    /// History rows in the held-out slice.
    pub held_out_cases: usize,
    /// History rows that teach nothing: the confirmed cause was not among the candidates
    /// (outside the graph, `external`, `unknown`).
    pub unusable_cases: usize,
    /// Cross-validation by case on the training slice: AC@k, Avg@5, chance, per fault type,
    /// reliability of confidences.
    #[schema(value_type = Object)]
    pub cross_validation: Report,
    /// Top-1/top-3 accuracy of the action model (out of fold), with chance.
    #[schema(value_type = Object)]
    pub actions: Option<ActionFigures>,
    /// The comparison on the held-out slice; `None` when the slice is empty.
    pub held_out: Option<HeldOutFigures>,
}

/// Whether a candidate replaces the active model, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// Promote it.
    pub promote: bool,
    /// Why, in words.
    pub reason: String,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The candidate model, trained on the training slice.
    pub model: LearnedModel,
    /// Its figures.
    pub figures: TrainingFigures,
    /// Promote or not.
    pub decision: Decision,
}

/// Trains a candidate on the training slice of `history`, scores it by cross-validation and,
/// with `active`, on the held-out slice, and decides. `progress` hears `(stage, fraction)`.
pub fn run(
    history: &[HistoryExample],
    active: &dyn Ranker,
    request: &TrainRequest,
    progress: &(dyn Fn(&str, f64) + Sync),
) -> Result<Trained, TrainError> {
    let (held, train): (Vec<&HistoryExample>, Vec<&HistoryExample>) =
        history.iter().partition(|h| held_out(&h.key));
    let examples: Vec<Example> = train.iter().map(|h| h.example.clone()).collect();
    let params = TrainParams {
        alpha: request.alpha,
        prior_alpha: request.prior_alpha,
        ..TrainParams::default()
    };
    progress("training", 0.1);
    let validated = learned::train_validated(
        &examples,
        request.folds,
        &params,
        Default::default(),
        vec![format!("history:{} cases", train.len())],
        |stage| match stage {
            learned::Stage::Fitted { done, total } => {
                progress("training", 0.1 + 0.7 * done as f64 / total.max(1) as f64)
            }
            learned::Stage::Diagnosing => progress("diagnosing out of fold", 0.8),
        },
    )?;
    progress("scoring held-out cases", 0.85);
    let cross_validation = report("cross-validation", &train, &validated.out_of_fold);
    let mut model = validated.model;
    let candidate = learned::Learned {
        model: model.clone(),
    };
    let held_out_figures = held_out_comparison(&held, &candidate, active);
    let decision = decide(held_out_figures.as_ref(), request.force);
    model.provenance.figures.extend([
        ("cv_ac1".to_owned(), cross_validation.overall.ac1),
        ("cv_avg5".to_owned(), cross_validation.overall.avg5),
    ]);
    let figures = TrainingFigures {
        feature_schema: learned::FEATURE_SCHEMA,
        evidence_schema: rootcause_models::evidence::EVIDENCE_SCHEMA,
        training_cases: model.provenance.cases,
        training_rows: model.provenance.rows,
        held_out_cases: held.len(),
        unusable_cases: history.iter().filter(|h| h.example.truth.is_none()).count(),
        cross_validation,
        actions: validated.action_figures,
        held_out: held_out_figures,
    };
    Ok(Trained {
        model,
        figures,
        decision,
    })
}

/// The candidate and the active model on the held-out cases (`None` without any).
fn held_out_comparison(
    held: &[&HistoryExample],
    candidate: &dyn Ranker,
    active: &dyn Ranker,
) -> Option<HeldOutFigures> {
    if held.is_empty() {
        return None;
    }
    let diagnose = |ranker: &dyn Ranker| -> Option<Vec<Diagnosis>> {
        held.iter()
            .map(|h| ranker.diagnose_evidence(&h.example.evidence))
            .collect()
    };
    let ours = report(
        "candidate",
        held,
        &diagnose(candidate).expect("a learned model ranks evidence"),
    );
    let theirs = diagnose(active);
    // A diagnosis names its model's version (`learned@…`); the ranker only its kind.
    let active_model = theirs
        .as_ref()
        .and_then(|d| d.first())
        .map_or_else(|| active.name().to_owned(), |d| d.model.clone());
    let theirs = theirs.map(|d| report(&active_model, held, &d));
    Some(HeldOutFigures {
        cases: ours.cases,
        usable: ours.truth_among_candidates,
        candidate: ours.overall,
        active: theirs.map(|r| r.overall),
        active_model,
        chance: ours.chance,
    })
}

/// Promote when the candidate is at least as good as the active model on the held-out cases in
/// AC@1 and in Avg@5, or when forced.
fn decide(held_out: Option<&HeldOutFigures>, force: bool) -> Decision {
    let (promote, reason) = match held_out {
        _ if force => (true, "forced".to_owned()),
        None => (
            false,
            format!("no held-out cases to compare on (need {MIN_HELD_OUT}); promote with force"),
        ),
        Some(h) if h.usable < MIN_HELD_OUT => (
            false,
            format!(
                "only {} held-out cases with their cause among the candidates, too few to \
                 compare (need {MIN_HELD_OUT}); promote with force",
                h.usable
            ),
        ),
        Some(HeldOutFigures {
            active: None,
            active_model,
            ..
        }) => (
            true,
            format!("the active ranker {active_model} cannot be scored on stored evidence"),
        ),
        Some(
            h @ HeldOutFigures {
                active: Some(a), ..
            },
        ) => {
            let c = &h.candidate;
            // A tolerance for rounding only: "not worse" means not worse.
            let not_worse = c.ac1 + 1e-9 >= a.ac1 && c.avg5 + 1e-9 >= a.avg5;
            let comparison = format!(
                "on {} held-out cases AC@1 {:.3} vs {:.3}, Avg@5 {:.3} vs {:.3} ({})",
                h.cases, c.ac1, a.ac1, c.avg5, a.avg5, h.active_model
            );
            if not_worse {
                (
                    true,
                    format!("not worse than the active model: {comparison}"),
                )
            } else {
                (false, format!("worse than the active model: {comparison}"))
            }
        }
    };
    Decision { promote, reason }
}

/// The accuracy report of `diagnoses` (one per history row, same order), with the reliability
/// of their top confidences when every diagnosis has one.
pub fn report(name: &str, rows: &[&HistoryExample], diagnoses: &[Diagnosis]) -> Report {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut confidences = Vec::with_capacity(rows.len());
    for (row, diagnosis) in rows.iter().zip(diagnoses) {
        let ranking = Ranking::from_scores(
            diagnosis
                .hypotheses
                .iter()
                .map(|h| (h.service.clone(), h.score)),
        );
        let candidates: Vec<String> = row
            .example
            .evidence
            .candidates
            .iter()
            .map(|c| c.service.clone())
            .collect();
        let outcome = CaseOutcome::new(&row.key, &row.label, &candidates, &ranking, 0.0);
        if let Some(confidence) = diagnosis.hypotheses.first().and_then(|h| h.confidence) {
            confidences.push((confidence, outcome.rank == Some(1), diagnosis.unknown));
        }
        outcomes.push(outcome);
    }
    let report = Report::new(name, &outcomes);
    if !outcomes.is_empty() && confidences.len() == outcomes.len() {
        report.with_confidences(&confidences)
    } else {
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `held_out("incident:1")` .. `held_out("incident:12")`, as computed when the slice was
    /// defined.
    const PINNED_INCIDENTS_1_TO_12: [bool; 12] = [
        false, true, false, false, false, false, true, true, false, true, false, false,
    ];

    #[test]
    fn the_held_out_slice_is_about_one_in_five_and_stable() {
        let keys: Vec<String> = (0..5000).map(|i| format!("import:sim:case-{i}")).collect();
        let held = keys.iter().filter(|k| held_out(k)).count();
        assert!((850..1150).contains(&held), "{held} of 5000 held out");
        // Pinned: the slice must never move between builds, or a later job would train on
        // cases earlier models were compared on.
        let pinned: Vec<bool> = (1..=12)
            .map(|i| held_out(&format!("incident:{i}")))
            .collect();
        assert_eq!(pinned, PINNED_INCIDENTS_1_TO_12);
    }

    fn figures(ac1: f64, avg5: f64) -> Figures {
        Figures {
            ac1,
            ac3: ac1,
            ac5: ac1,
            avg5,
        }
    }

    fn comparison(cases: usize, candidate: Figures, active: Figures) -> HeldOutFigures {
        HeldOutFigures {
            cases,
            usable: cases,
            candidate,
            active: Some(active),
            active_model: "learned@x".into(),
            chance: figures(0.1, 0.2),
        }
    }

    #[test]
    fn a_candidate_is_promoted_only_when_not_worse_on_both_figures() {
        let even = comparison(20, figures(0.8, 0.9), figures(0.8, 0.9));
        assert!(decide(Some(&even), false).promote);
        let worse_ac1 = comparison(20, figures(0.75, 0.95), figures(0.8, 0.9));
        let decision = decide(Some(&worse_ac1), false);
        assert!(!decision.promote);
        assert!(decision.reason.contains("worse"), "{}", decision.reason);
        let worse_avg = comparison(20, figures(0.9, 0.85), figures(0.8, 0.9));
        assert!(!decide(Some(&worse_avg), false).promote);
        assert!(decide(Some(&worse_avg), true).promote, "forced");
    }

    #[test]
    fn held_out_cases_with_causes_outside_the_graph_do_not_count() {
        let mut outside = comparison(20, figures(0.0, 0.0), figures(0.0, 0.0));
        outside.usable = MIN_HELD_OUT - 1;
        assert!(!decide(Some(&outside), false).promote);
    }

    #[test]
    fn too_few_held_out_cases_promote_only_when_forced() {
        let few = comparison(MIN_HELD_OUT - 1, figures(1.0, 1.0), figures(0.0, 0.0));
        let decision = decide(Some(&few), false);
        assert!(!decision.promote);
        assert!(decision.reason.contains("too few"), "{}", decision.reason);
        assert!(!decide(None, false).promote);
        assert!(decide(None, true).promote);
    }

    #[test]
    fn requests_outside_their_ranges_are_named() {
        let bad = TrainRequest {
            folds: 1,
            ..TrainRequest::default()
        };
        assert_eq!(bad.problem().map(|p| p.0), Some("folds"));
        let bad = TrainRequest {
            alpha: 0.0,
            ..TrainRequest::default()
        };
        assert_eq!(bad.problem().map(|p| p.0), Some("alpha"));
        let bad = TrainRequest {
            prior_alpha: f64::NAN,
            ..TrainRequest::default()
        };
        assert_eq!(bad.problem().map(|p| p.0), Some("prior_alpha"));
        assert!(TrainRequest::default().problem().is_none());
    }
}
