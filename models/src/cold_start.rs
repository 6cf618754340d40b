//! The cold-start scorer: ranks without any training, from the evidence alone.
//!
//! Each detector's raw z means something different (a CPU z of 8 is common in a busy system; one
//! new ERROR template is rare), so the scorer first calibrates every detector against the rest
//! of the system at that moment: a candidate's score on a detector is how far its z stands out
//! from the other candidates' z on the same detector, tail included ([`standout`]). A root cause stands out on
//! the mechanism of its fault; propagated symptoms stand out less, and on spreading mechanisms
//! (latency, errors) rather than local ones (CPU, a missing log line, a delay on every edge).
//!
//! score = the strongest weighted standout over the detectors, plus [`CORROBORATION`] times the
//! strongest from *another* kind of telemetry ([`Origin`]: metrics, calls, logs, alerts,
//! changes), plus [`PAGERANK_WEIGHT`] times its personalized PageRank, where local mechanisms
//! weigh [`LOCAL_WEIGHT`], spreading ones [`SPREADING_WEIGHT`] and a client-side latency (a
//! sign of the service's dependencies) nothing; all of it multiplied by [`SYMPTOM_FACTOR`] when a
//! dependency of the candidate is at least as anomalous as it is, or when the candidate itself
//! reports waiting anomalously long on its dependencies. A fault shows in several kinds of
//! telemetry at once (a code fault in its logs and its spans, CPU starvation in a metric and
//! in span self time), while a noisy series of one kind (a batch job's disk reads, a
//! low-traffic service's latency quantile) shows in one. Confidence is a softmax of the scores
//! at temperature [`TEMPERATURE`], hand-set and checked with the reliability table of
//! `rootcause eval`.

use crate::case::Case;
use crate::diagnosis::{Diagnosis, FaultType};
use crate::evidence::{self, CandidateEvidence, Detector, Evidence, Origin, Settings, standout};
use crate::explain;
use crate::ranker::{Ranker, Ranking};

/// Weight of a mechanism that stays in the faulty service.
pub const LOCAL_WEIGHT: f64 = 1.0;
/// Weight of a mechanism that spreads to callers (latency, errors, alerts).
pub const SPREADING_WEIGHT: f64 = 0.6;
/// Weight of the strongest standout from a second kind of telemetry, added to the strongest.
pub const CORROBORATION: f64 = 1.25;
/// Factor applied to a likely symptom: an anomalous dependency is at least as anomalous, or the
/// candidate waits anomalously long on its dependencies. Its anomaly is mostly its
/// dependency's: 0.3 rather than 0.5 raised Train Ticket and the simulator's realistic cases and
/// left Bookinfo where it was (README, the yardstick).
pub const SYMPTOM_FACTOR: f64 = 0.3;
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

impl ColdStart {
    /// Scores every candidate of `evidence`, in its order, with the fault class of the
    /// mechanism behind each score.
    pub fn score(&self, evidence: &Evidence) -> Vec<(f64, Option<FaultType>)> {
        standout(&evidence.candidates)
            .iter()
            .zip(&evidence.candidates)
            .map(|(standout, c)| {
                // The strongest weighted standout per kind of telemetry.
                let mut by_origin = [(0.0f64, None::<Detector>); Origin::COUNT];
                for &d in Detector::ALL.iter() {
                    let v = weight(d) * standout[d as usize];
                    let slot = &mut by_origin[d.origin() as usize];
                    if v > slot.0 {
                        *slot = (v, Some(d));
                    }
                }
                by_origin.sort_by(|a, b| b.0.total_cmp(&a.0));
                let (best, detector) = by_origin[0];
                let mut score =
                    best + CORROBORATION * by_origin[1].0 + PAGERANK_WEIGHT * c.graph.pagerank;
                // A symptom's PageRank comes from its own anomaly: explained away with it.
                if c.graph.callee_more_anomalous || self.waits_on_dependencies(c) {
                    score *= SYMPTOM_FACTOR;
                }
                let fault = detector.filter(|_| best > 0.0).map(Detector::fault_type);
                (score, fault)
            })
            .collect()
    }

    /// Whether the candidate itself reports waiting anomalously long for what it calls (a
    /// client-side latency at least [`Settings::anomalous_z`]): its trouble comes from below,
    /// and its own anomalies (retries burning CPU, error logging writing to disk) are more
    /// likely side effects of the wait than a fault of its own. Like a more anomalous callee,
    /// this halves its score; it needs no topology.
    fn waits_on_dependencies(&self, c: &CandidateEvidence) -> bool {
        c.score(Detector::ClientLatency) >= self.settings.anomalous_z
    }
}

/// How much a detector's standout counts: [`LOCAL_WEIGHT`] for a mechanism that stays in the
/// faulty service, [`SPREADING_WEIGHT`] for one that spreads to its callers, nothing for one
/// that points at the service's dependencies (see [`Detector::points_downstream`]).
pub fn weight(d: Detector) -> f64 {
    if d.points_downstream() {
        0.0
    } else if d.is_local() {
        LOCAL_WEIGHT
    } else {
        SPREADING_WEIGHT
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
        self.diagnose_evidence_listing(evidence, usize::MAX)
    }

    fn diagnose_evidence_listing(&self, evidence: &Evidence, listed: usize) -> Option<Diagnosis> {
        let scored = self.score(evidence);
        let scores: Vec<f64> = scored.iter().map(|s| s.0).collect();
        // The mechanism behind the score names the fault class; no probability without training.
        let fault_of = |i: usize| (scored[i].1, None);
        let how = explain::Explaining {
            model: "cold-start",
            temperature: TEMPERATURE,
            unknown_threshold: self.unknown_threshold,
            anomalous_z: self.settings.anomalous_z,
        };
        Some(explain::diagnosis(
            &how, evidence, &scores, &fault_of, listed,
        ))
    }

    fn evidence_settings(&self) -> Option<Settings> {
        Some(self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(rows: &[&[(Detector, f64)]]) -> Evidence {
        Evidence {
            candidates: rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let mut scores = [0.0; Detector::COUNT];
                    for &(d, z) in *row {
                        scores[d as usize] = z;
                    }
                    CandidateEvidence::scored(format!("s{i}"), scores)
                })
                .collect(),
            graph: Default::default(),
        }
    }

    #[test]
    fn evidence_from_two_kinds_of_telemetry_beats_as_strong_a_jump_in_one() {
        // s0: a vanished log line and error spans (logs and calls); s1: a disk metric as
        // unusual as s0's log line, and nothing else. Eight quiet services beside them.
        let mut rows: Vec<&[(Detector, f64)]> = vec![
            &[
                (Detector::MissingTemplates, 20.0),
                (Detector::SpanErrors, 10.0),
            ],
            &[(Detector::DiskMetric, 20.0)],
        ];
        rows.extend(std::iter::repeat_n(&[][..], 8));
        let scores = ColdStart::default().score(&evidence(&rows));
        assert!(scores[0].0 > scores[1].0, "{scores:?}");
        assert_eq!(scores[0].1, Some(FaultType::Code));
        assert_eq!(scores[1].1, Some(FaultType::Disk));
    }

    #[test]
    fn a_service_waiting_on_its_dependencies_is_a_symptom_of_them() {
        // s0 retries a failing dependency: its disk writes jump and it waits 40 z longer for
        // what it calls; s1 has a quieter fault of its own. Without the wait, s0 would lead.
        let waiting: &[(Detector, f64)] = &[
            (Detector::DiskMetric, 30.0),
            (Detector::ClientLatency, 40.0),
        ];
        let cause: &[(Detector, f64)] = &[(Detector::MissingTemplates, 12.0)];
        let mut rows = vec![waiting, cause];
        rows.extend(std::iter::repeat_n(&[][..], 8));
        let scores = ColdStart::default().score(&evidence(&rows));
        assert!(scores[1].0 > scores[0].0, "{scores:?}");
        // The same jump without the wait leads.
        let mut rows: Vec<&[(Detector, f64)]> = vec![&[(Detector::DiskMetric, 30.0)], cause];
        rows.extend(std::iter::repeat_n(&[][..], 8));
        let scores = ColdStart::default().score(&evidence(&rows));
        assert!(scores[0].0 > scores[1].0, "{scores:?}");
    }

    #[test]
    fn a_client_side_latency_does_not_make_a_service_the_cause() {
        let mut rows: Vec<&[(Detector, f64)]> = vec![
            &[(Detector::ClientLatency, 500.0)],
            &[(Detector::CpuMetric, 8.0)],
        ];
        rows.extend(std::iter::repeat_n(&[][..], 8));
        let scores = ColdStart::default().score(&evidence(&rows));
        assert_eq!(scores[0].0, 0.0);
        assert!(scores[1].0 > 0.0);
        assert_eq!(weight(Detector::ClientLatency), 0.0);
        assert_eq!(weight(Detector::CpuMetric), LOCAL_WEIGHT);
        assert_eq!(weight(Detector::LatencyMetric), SPREADING_WEIGHT);
    }
}
