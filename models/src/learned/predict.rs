//! Prediction: a trained model applied to evidence (scores, diagnoses, suggested actions), and
//! the learned ranker that applies it to cases.

use super::{FEATURE_COUNT, LearnedModel, features};
use crate::case::Case;
use crate::diagnosis::Diagnosis;
use crate::evidence::{self, Evidence, Settings};
use crate::explain;
use crate::ranker::{Ranker, Ranking};

impl LearnedModel {
    /// Raw scores (logits) of every candidate of `evidence`, in its order.
    pub fn scores(&self, rows: &[[f64; FEATURE_COUNT]]) -> Vec<f64> {
        self.scorer.scores(rows)
    }

    /// The diagnosis of precomputed evidence.
    pub fn diagnose_evidence(&self, evidence: &Evidence) -> Diagnosis {
        self.diagnose_rows(evidence, &features(evidence), usize::MAX)
    }

    /// The diagnosis of evidence whose feature rows are already computed, listing the `listed`
    /// most likely hypotheses (see [`explain::diagnosis`]).
    pub(super) fn diagnose_rows(
        &self,
        evidence: &Evidence,
        rows: &[[f64; FEATURE_COUNT]],
        listed: usize,
    ) -> Diagnosis {
        let scores = self.scores(rows);
        // Classified on demand: only the listed anomalous candidates show a fault class.
        let fault_of = |i: usize| match &self.fault {
            Some(classifier) => match classifier.classify(&rows[i]) {
                Some((class, p)) => (Some(class), Some(p)),
                None => (None, None),
            },
            None => (None, None),
        };
        let model = format!("learned@{}", self.version);
        let how = explain::Explaining {
            model: &model,
            temperature: self.temperature,
            unknown_threshold: self.unknown_threshold,
            anomalous_z: self.settings.anomalous_z,
        };
        explain::diagnosis(&how, evidence, &scores, &fault_of, listed)
    }

    /// The actions that resolved past incidents whose cause looked like candidate `candidate`
    /// of `evidence`, with their probabilities, most likely first. Empty without an action
    /// model or for a candidate that is not there.
    pub fn suggest_actions(&self, evidence: &Evidence, candidate: usize) -> Vec<(String, f64)> {
        let Some(actions) = &self.actions else {
            return Vec::new();
        };
        match features(evidence).get(candidate) {
            Some(row) => actions.suggest(row),
            None => Vec::new(),
        }
    }
}

/// The learned ranker: a [`LearnedModel`] applied to cases.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The model.
    pub model: LearnedModel,
}

impl Ranker for Learned {
    fn name(&self) -> &str {
        "learned"
    }

    fn rank(&self, case: &Case) -> Ranking {
        let evidence = evidence::extract(case, &self.model.settings);
        let scores = self.model.scores(&features(&evidence));
        Ranking::from_scores(
            evidence
                .candidates
                .iter()
                .zip(scores)
                .map(|(c, s)| (c.service.clone(), s)),
        )
    }

    fn diagnose(&self, case: &Case) -> Diagnosis {
        self.model
            .diagnose_evidence(&evidence::extract(case, &self.model.settings))
    }

    fn diagnose_evidence(&self, evidence: &Evidence) -> Option<Diagnosis> {
        Some(self.model.diagnose_evidence(evidence))
    }

    fn diagnose_evidence_listing(&self, evidence: &Evidence, listed: usize) -> Option<Diagnosis> {
        Some(
            self.model
                .diagnose_rows(evidence, &features(evidence), listed),
        )
    }

    fn evidence_settings(&self) -> Option<Settings> {
        Some(self.model.settings)
    }

    fn action_probabilities(
        &self,
        evidence: &Evidence,
        candidates: &[usize],
    ) -> Vec<Vec<(String, f64)>> {
        let Some(actions) = &self.model.actions else {
            return Vec::new();
        };
        // The action model reads a candidate's own detector strengths only (the first
        // `Detector::COUNT` features), so the rows of the few candidates asked for are computed
        // alone rather than the whole feature matrix.
        candidates
            .iter()
            .map(|&i| match evidence.candidates.get(i) {
                Some(c) => actions.suggest(&c.scores.map(evidence::strength)),
                None => Vec::new(),
            })
            .collect()
    }
}
