//! The interface every root-cause ranker implements, whatever its method.

use crate::case::Case;
use crate::diagnosis::{Diagnosis, Hypothesis, Role};
use crate::evidence::{Evidence, Settings};

/// Orders a case's candidate services by how likely each is the root cause.
///
/// Implementations are pure (the same case gives the same ranking) and score every candidate:
/// a candidate left out counts as a miss, never as a tie. During evaluation a ranker gets the
/// case without its label, notes or original id (which can name the root cause, as RCAEval's
/// `<service>_<fault>` folders do).
pub trait Ranker: Send + Sync {
    /// Short name used on the command line and in reports (`nsigma`, `baro`, ...).
    fn name(&self) -> &str;

    /// Scores the candidates of `case`.
    fn rank(&self, case: &Case) -> Ranking;

    /// Ranks `case` and explains the ranking. Rankers without explanations (the reference
    /// baselines) give their scores with no confidence, role or evidence beyond the score.
    fn diagnose(&self, case: &Case) -> Diagnosis {
        let ranking = self.rank(case);
        Diagnosis {
            model: self.name().to_string(),
            unknown: false,
            threshold: 0.0,
            hypotheses: ranking
                .services()
                .iter()
                .map(|r| Hypothesis {
                    service: r.service.clone(),
                    score: r.score,
                    confidence: None,
                    role: Role::Origin,
                    fault_type: None,
                    fault_type_confidence: None,
                    evidence: vec![format!("{} score {:.3}", self.name(), r.score)],
                    paths: Vec::new(),
                })
                .collect(),
        }
    }

    /// Diagnoses an incident from its evidence alone, extracted with the ranker's own settings;
    /// `None` for rankers that need the case itself (the baselines read raw series). Rankers
    /// that rank from evidence alone can so be scored on stored history, which keeps evidence
    /// rather than every series of every past incident.
    fn diagnose_evidence(&self, evidence: &Evidence) -> Option<Diagnosis> {
        let _ = evidence;
        None
    }

    /// [`Ranker::diagnose_evidence`] for a reader who lists only the `listed` most likely
    /// hypotheses (the server): the same hypotheses as the full diagnosis' first `listed`, with
    /// the same confidences; rankers that explain their hypotheses explain only those.
    fn diagnose_evidence_listing(&self, evidence: &Evidence, listed: usize) -> Option<Diagnosis> {
        let mut diagnosis = self.diagnose_evidence(evidence)?;
        diagnosis.hypotheses.truncate(listed);
        Some(diagnosis)
    }

    /// The evidence settings of a ranker that diagnoses from evidence alone, so that a caller
    /// who needs the evidence too (to suggest actions, to find similar incidents) extracts it
    /// once and passes it to [`Ranker::diagnose_evidence`]; `None` for rankers that read the
    /// case itself.
    fn evidence_settings(&self) -> Option<Settings> {
        None
    }

    /// For each of `candidates` (indices into `evidence`): the actions that resolved past
    /// incidents whose cause looked like it, with their probabilities, most likely first.
    /// Empty for rankers that learned no actions.
    fn action_probabilities(
        &self,
        evidence: &Evidence,
        candidates: &[usize],
    ) -> Vec<Vec<(String, f64)>> {
        let _ = (evidence, candidates);
        Vec::new()
    }
}

/// A candidate and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedService {
    /// The candidate.
    pub service: String,
    /// Higher is more likely the root cause; `NaN` ranks last.
    pub score: f64,
}

/// Candidates ordered from the most to the least likely root cause.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranking(Vec<RankedService>);

impl Ranking {
    /// Orders scores from highest to lowest (`NaN` last); equal scores keep name order so output
    /// is deterministic, while accuracy still counts the tie against the true cause.
    pub fn from_scores(scores: impl IntoIterator<Item = (String, f64)>) -> Ranking {
        let key = |score: f64| {
            if score.is_nan() {
                f64::NEG_INFINITY
            } else {
                score
            }
        };
        let mut ranked: Vec<RankedService> = scores
            .into_iter()
            .map(|(service, score)| RankedService { service, score })
            .collect();
        ranked.sort_by(|a, b| {
            key(b.score)
                .total_cmp(&key(a.score))
                .then_with(|| a.service.cmp(&b.service))
        });
        Ranking(ranked)
    }

    /// The candidates, most likely first.
    pub fn services(&self) -> &[RankedService] {
        &self.0
    }

    /// The names of the candidates, most likely first.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|r| r.service.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_orders_by_score_then_name_with_nan_last() {
        let ranking = Ranking::from_scores([
            ("c".to_string(), 1.0),
            ("a".to_string(), f64::NAN),
            ("b".to_string(), 2.0),
            ("d".to_string(), 1.0),
        ]);
        assert_eq!(ranking.names(), ["b", "c", "d", "a"]);
    }
}
