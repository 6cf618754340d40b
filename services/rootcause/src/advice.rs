//! What the ranking job reads to suggest actions: the runbook catalogue in force and the index
//! of past incidents. Shared by the ranking worker (which reads it for every ranking) and the
//! actions service (which replaces the catalogue and adds resolved incidents).

use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use rootcause_models::actions::{
    Advisor, Catalogue, PastIncident, SimilarIndex, Suggestion, Votes, Weights, advise,
    incident_vector,
};
use rootcause_models::case::Case;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evidence::Evidence;
use rootcause_models::ranker::Ranker;

use crate::config::ActionsConfig;
use crate::store::HistoryFacts;

/// The catalogue in force and the similar-incident index.
pub struct Advice {
    catalogue: ArcSwap<Catalogue>,
    /// Read by every ranking, written when an incident is resolved or history imported.
    similar: RwLock<SimilarIndex>,
    weights: Weights,
    suggestions: usize,
    hypotheses: usize,
    neighbours: usize,
}

/// A past incident found similar, with how similar (0 to 1].
#[derive(Debug, Clone)]
pub struct Similar {
    /// The past incident.
    pub past: PastIncident,
    /// 1 for identical incident features.
    pub similarity: f64,
}

impl Advice {
    /// Advice from the bundled catalogue and an empty index, sized by the configuration.
    pub fn new(config: &ActionsConfig) -> Advice {
        Advice {
            catalogue: ArcSwap::from_pointee(Catalogue::bundled()),
            similar: RwLock::new(SimilarIndex::new()),
            weights: Weights::default(),
            suggestions: config.suggestions,
            hypotheses: config.hypotheses,
            neighbours: config.similar,
        }
    }

    /// The catalogue in force.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.load_full()
    }

    /// Puts `catalogue` in force for every ranking from now on.
    pub fn set_catalogue(&self, catalogue: Catalogue) {
        self.catalogue.store(Arc::new(catalogue));
    }

    /// Adds (or replaces, by key) a past incident.
    pub fn remember(&self, past: PastIncident, vector: Vec<f64>) {
        self.similar
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(past, vector);
    }

    /// How many past incidents the index holds.
    pub fn remembered(&self) -> usize {
        self.read().len()
    }

    /// The `k` past incidents most like `evidence`, most similar first, leaving out the
    /// incident's own history row (`incident:<id>` once it is resolved).
    pub fn similar(&self, evidence: &Evidence, k: usize, own_key: &str) -> Vec<Similar> {
        let vector = incident_vector(evidence);
        self.read()
            .nearest(&vector, k, |key| key == own_key)
            .into_iter()
            .map(|n| Similar {
                past: n.past.clone(),
                similarity: n.similarity,
            })
            .collect()
    }

    /// What resolved the incidents most like `evidence`; `None` while no history is known.
    fn votes(&self, evidence: &Evidence, own_key: &str) -> Option<Votes> {
        let index = self.read();
        if index.is_empty() || self.neighbours == 0 {
            return None;
        }
        let vector = incident_vector(evidence);
        let neighbours = index.nearest(&vector, self.neighbours, |key| key == own_key);
        Some(SimilarIndex::votes(&neighbours))
    }

    /// Suggestions for the hypotheses of a ranking of incident `incident` by `ranker`, in
    /// their order (the first `actions.hypotheses` of them).
    pub fn advise(
        &self,
        incident: u64,
        case: &Case,
        diagnosis: &Diagnosis,
        evidence: Option<&Evidence>,
        ranker: &dyn Ranker,
    ) -> Vec<Vec<Suggestion>> {
        let learned = |indices: &[usize]| match evidence {
            Some(evidence) => ranker.action_probabilities(evidence, indices),
            None => Vec::new(),
        };
        let votes = evidence.and_then(|e| self.votes(e, &history_key(incident)));
        let catalogue = self.catalogue();
        let advisor = Advisor {
            catalogue: &catalogue,
            weights: self.weights,
            limit: self.suggestions,
            hypotheses: self.hypotheses,
        };
        advise(&advisor, case, diagnosis, evidence, learned, votes.as_ref())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SimilarIndex> {
        self.similar
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The history key of a resolved incident.
pub fn history_key(incident: u64) -> String {
    format!("incident:{incident}")
}

/// The incident a history key names, for rows that came from a resolution.
pub fn incident_of_key(key: &str) -> Option<u64> {
    key.strip_prefix("incident:")?.parse().ok()
}

/// A history row (stored or being stored) as the similar-incident index keeps it.
pub fn past_incident(row: &HistoryFacts) -> PastIncident {
    PastIncident {
        key: row.key.clone(),
        system: row.system.clone(),
        started_at: row.started_at,
        root_cause: row.root_cause.clone(),
        fault_type: Some(row.fault_type.clone()).filter(|f| !f.is_empty()),
        action: row.action.clone(),
        worked: row.worked,
        time_to_mitigate_s: row.time_to_mitigate_s,
    }
}
