//! The cold-start scorer: ranks without any training, from the evidence alone.
//!
//! Each detector's raw z means something different (a CPU z of 8 is common in a busy system; one
//! new ERROR template is rare), so the scorer first calibrates every detector against the rest
//! of the system at that moment: a candidate's score on a detector is how far its z stands out
//! from the other candidates' z on the same detector ([`standout`]). A root cause stands out on
//! the mechanism of its fault; propagated symptoms stand out less, and on spreading mechanisms
//! (latency, errors) rather than local ones (CPU, a missing log line, a delay on every edge).
//!
//! score = max over detectors of (weight · standout), where local mechanisms weigh
//! [`LOCAL_WEIGHT`] and spreading ones [`SPREADING_WEIGHT`]; halved when a dependency of the
//! candidate is at least as anomalous as it is ([`SYMPTOM_FACTOR`]); plus [`PAGERANK_WEIGHT`] times
//! its personalized PageRank. Confidence is a softmax of the scores at temperature
//! [`TEMPERATURE`], hand-set and checked with the reliability table of `rootcause eval`.

use crate::case::Case;
use crate::diagnosis::{Diagnosis, FaultType};
use crate::evidence::{self, Detector, Evidence, Settings};
use crate::explain;
use crate::ranker::{Ranker, Ranking};

/// Weight of a mechanism that stays in the faulty service.
pub const LOCAL_WEIGHT: f64 = 1.0;
/// Weight of a mechanism that spreads to callers (latency, errors, alerts).
pub const SPREADING_WEIGHT: f64 = 0.6;
/// Factor applied when an anomalous dependency is at least as anomalous: likely a symptom.
pub const SYMPTOM_FACTOR: f64 = 0.5;
/// Weight of the personalized PageRank (0..1) added to the score.
pub const PAGERANK_WEIGHT: f64 = 1.0;
/// Softmax temperature turning scores into confidences.
pub const TEMPERATURE: f64 = 1.5;
/// Default confidence below which the answer is "unknown".
pub const DEFAULT_UNKNOWN_THRESHOLD: f64 = 0.3;

/// The training-free ranker.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// Evidence windows.
    pub settings: Settings,
    /// Confidence below which a diagnosis is "unknown".
    pub unknown_threshold: f64,
}

impl Default for ColdStart {
    fn default() -> Self {
        ColdStart {
            settings: Settings::default(),
            unknown_threshold: DEFAULT_UNKNOWN_THRESHOLD,
        }
    }
}

/// Spread floor of [`standout`], in `ln(1 + z)` units: when nearly every candidate scores the
/// same, a candidate must still lead by a clear factor to stand out.
pub const MIN_SPREAD: f64 = 0.5;

/// How far each candidate stands out from the others on each detector: with `s = ln(1 + z)`,
/// `(s − median) / max(1.4826 · MAD, MIN_SPREAD)` over the candidates, floored at 0. Indexed
/// `[candidate][detector]`. The logarithm makes detectors comparable whatever their units, and
/// the candidates' own spread calibrates each detector to the system's noise at that moment.
pub fn standout(evidence: &Evidence) -> Vec<[f64; Detector::COUNT]> {
    let n = evidence.candidates.len();
    let mut out = vec![[0.0; Detector::COUNT]; n];
    for d in 0..Detector::COUNT {
        let mut zs: Vec<f64> = evidence
            .candidates
            .iter()
            .map(|c| c.scores[d].max(0.0).ln_1p())
            .collect();
        zs.sort_by(f64::total_cmp);
        if zs.is_empty() {
            continue;
        }
        let median = crate::stats::quantile(&zs, 0.5);
        let mut dev: Vec<f64> = zs.iter().map(|z| (z - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let spread = (1.4826 * crate::stats::quantile(&dev, 0.5)).max(MIN_SPREAD);
        for (row, c) in out.iter_mut().zip(&evidence.candidates) {
            row[d] = ((c.scores[d].max(0.0).ln_1p() - median) / spread).max(0.0);
        }
    }
    out
}

impl ColdStart {
    /// Scores every candidate of `evidence`, in its order, with the fault class of the
    /// mechanism behind each score.
    pub fn score(&self, evidence: &Evidence) -> Vec<(f64, Option<FaultType>)> {
        standout(evidence)
            .iter()
            .zip(&evidence.candidates)
            .map(|(standout, c)| {
                let best = Detector::ALL
                    .iter()
                    .map(|&d| {
                        let weight = if d.is_local() {
                            LOCAL_WEIGHT
                        } else {
                            SPREADING_WEIGHT
                        };
                        (d, weight * standout[d as usize])
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                let (mut score, fault) = match best {
                    Some((d, s)) if s > 0.0 => (s, Some(d.fault_type())),
                    _ => (0.0, None),
                };
                if c.graph.callee_more_anomalous {
                    score *= SYMPTOM_FACTOR;
                }
                (score + PAGERANK_WEIGHT * c.graph.pagerank, fault)
            })
            .collect()
    }
}

impl Ranker for ColdStart {
    fn name(&self) -> &str {
        "cold-start"
    }

    fn rank(&self, case: &Case) -> Ranking {
        let evidence = evidence::extract(case, &self.settings);
        Ranking::from_scores(
            evidence
                .candidates
                .iter()
                .zip(self.score(&evidence))
                .map(|(c, (s, _))| (c.service.clone(), s)),
        )
    }

    fn diagnose(&self, case: &Case) -> Diagnosis {
        self.diagnose_evidence(&evidence::extract(case, &self.settings))
            .expect("the cold-start scorer diagnoses from evidence")
    }

    fn diagnose_evidence(&self, evidence: &Evidence) -> Option<Diagnosis> {
        let scored = self.score(evidence);
        let scores: Vec<f64> = scored.iter().map(|s| s.0).collect();
        let confidences = explain::softmax(&scores, TEMPERATURE);
        // The mechanism behind the score names the fault class; no probability without training.
        let faults: Vec<(Option<FaultType>, Option<f64>)> =
            scored.iter().map(|s| (s.1, None)).collect();
        Some(explain::diagnosis(
            "cold-start",
            evidence,
            &scores,
            &confidences,
            &faults,
            self.unknown_threshold,
            self.settings.anomalous_z,
        ))
    }

    fn evidence_settings(&self) -> Option<Settings> {
        Some(self.settings)
    }
}
