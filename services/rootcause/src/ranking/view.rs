//! The JSON of a ranking, as `GET /api/v1/incidents/{id}/hypotheses` and the event stream send
//! it.
//!
//! A ranking of a large incident lists hundreds of candidates with their evidence: hundreds of
//! kilobytes of JSON. It is serialized once, by the ranking job on the blocking pool, and every
//! reader and subscriber gets the same text; the async workers only copy it.

use rootcause_models::actions::Suggestion;
use rootcause_models::diagnosis::{Diagnosis, FaultType, Role};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// The ranked root-cause hypotheses of an incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct HypothesesView {
    /// The incident.
    pub incident: u64,
    /// Grows by one with every ranking of the incident since the service started.
    pub revision: u64,
    /// RFC 3339 time of the ranking.
    pub ranked_at: String,
    /// The model that ranked (`cold-start`, `learned@<version>`, ...).
    pub model: String,
    /// True when the top confidence is below `threshold`: the cause may be something the
    /// evidence does not cover.
    pub unknown: bool,
    /// The confidence below which the answer is `unknown`.
    pub threshold: f64,
    /// The incident's alert occurrences the ranking covered.
    pub alert_count: u64,
    /// Services ranked (the incident's candidates); `hypotheses` lists the
    /// `ranking.hypotheses_listed` (50) most likely of them.
    pub candidates: usize,
    /// The most likely candidates, most likely first (already serialized: see the module
    /// documentation).
    #[schema(value_type = Vec<HypothesisView>)]
    pub hypotheses: Box<RawValue>,
}

/// One candidate root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HypothesisView {
    /// 1 for the most likely.
    pub rank: usize,
    /// The service.
    pub service: String,
    /// The ranker's score (higher is more likely); comparable within one ranking only.
    pub score: Option<f64>,
    /// Probability that it is the root cause; null for rankers that give none.
    pub confidence: Option<f64>,
    /// `origin` (where the fault likely began), `symptom` (an anomalous dependency is at least as anomalous) or
    /// `silent` (no anomaly of its own; a dependency of anomalous services).
    #[schema(value_type = String)]
    pub role: Role,
    /// The likely fault class: `cpu`, `memory`, `disk`, `network`, `code` or `deploy`.
    #[schema(value_type = Option<String>)]
    pub fault_type: Option<FaultType>,
    /// Probability of that fault class.
    pub fault_type_confidence: Option<f64>,
    /// Why, in sentences, strongest first.
    pub evidence: Vec<String>,
    /// Propagation paths, each from this service (the cause) to an alerting one.
    pub paths: Vec<Vec<String>>,
    /// Emergency actions for this cause, most advisable first (runbooks of
    /// `GET /api/v1/runbooks`; approve one with
    /// `POST /api/v1/incidents/{id}/actions/{action}/approve`). Present on the first
    /// `actions.hypotheses` (20) hypotheses, as propagation paths are; empty when no runbook
    /// applies; absent below them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<SuggestionView>>,
}

/// An emergency action suggested for a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuggestionView {
    /// The runbook id (`restart`, `rollback`, ...).
    pub action: String,
    /// The runbook's title.
    pub title: String,
    /// `low`, `medium` or `high`.
    pub risk: String,
    /// Share of the belief that goes to this action among the runbooks that apply, 0 to 1.
    pub confidence: f64,
    /// Why, in one sentence: the fault and signals it fits, a recent change, what resolved
    /// similar past incidents, what the learned action model says, its risk.
    pub reason: String,
    /// Whether approving it calls the runbook's automation webhook.
    pub automated: bool,
}

/// [`HypothesisView`] borrowing from the diagnosis: a ranking of hundreds of candidates would
/// otherwise copy every evidence sentence and path just to serialize them.
#[derive(Serialize)]
struct HypothesisRef<'a> {
    rank: usize,
    service: &'a str,
    score: Option<f64>,
    confidence: Option<f64>,
    role: Role,
    fault_type: Option<FaultType>,
    fault_type_confidence: Option<f64>,
    evidence: &'a [String],
    paths: &'a [Vec<String>],
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<&'a [Suggestion]>,
}

/// The hypotheses of a diagnosis as the JSON array the API sends ([`HypothesisView`] each),
/// with the actions suggested for each advised one (`actions[i]` for hypothesis `i`).
pub fn hypotheses_json(diagnosis: &Diagnosis, actions: &[Vec<Suggestion>]) -> Box<RawValue> {
    let views = diagnosis
        .hypotheses
        .iter()
        .enumerate()
        .map(|(i, h)| HypothesisRef {
            actions: actions.get(i).map(Vec::as_slice),
            rank: i + 1,
            service: &h.service,
            // JSON has no NaN: a score the ranker could not compute is null.
            score: h.score.is_finite().then_some(h.score),
            confidence: h.confidence.filter(|c| c.is_finite()),
            role: h.role,
            fault_type: h.fault_type,
            fault_type_confidence: h.fault_type_confidence.filter(|c| c.is_finite()),
            evidence: &h.evidence,
            paths: &h.paths,
        })
        .collect::<Vec<_>>();
    serde_json::value::to_raw_value(&views).expect("hypotheses always serialize")
}

#[cfg(test)]
mod tests {
    use rootcause_models::diagnosis::Hypothesis;

    use super::*;

    #[test]
    fn hypotheses_serialize_as_their_documented_view_with_ranks_and_no_nan() {
        let diagnosis = Diagnosis {
            model: "m".to_owned(),
            unknown: false,
            threshold: 0.3,
            hypotheses: vec![
                Hypothesis {
                    service: "db".to_owned(),
                    score: 2.5,
                    confidence: Some(0.7),
                    role: Role::Origin,
                    fault_type: Some(FaultType::Cpu),
                    fault_type_confidence: None,
                    evidence: vec!["cpu up".to_owned()],
                    paths: vec![vec!["db".to_owned(), "api".to_owned()]],
                },
                Hypothesis {
                    service: "api".to_owned(),
                    score: f64::NAN,
                    confidence: None,
                    role: Role::Silent,
                    fault_type: None,
                    fault_type_confidence: None,
                    evidence: Vec::new(),
                    paths: Vec::new(),
                },
            ],
        };
        let views: Vec<HypothesisView> =
            serde_json::from_str(hypotheses_json(&diagnosis, &[]).get()).unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].rank, 1);
        assert_eq!(views[0].service, "db");
        assert_eq!(views[0].score, Some(2.5));
        assert_eq!(views[0].role, Role::Origin);
        assert_eq!(views[0].fault_type, Some(FaultType::Cpu));
        assert_eq!(views[0].paths, [["db", "api"]]);
        assert_eq!(views[1].rank, 2);
        assert_eq!(views[1].score, None, "NaN is null");
    }
}
