//! One ranking job: a case ranked, explained and given its suggested actions, off the async
//! workers and free of I/O.

use std::time::{Duration, Instant};

use rootcause_models::actions::Suggestion;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evidence;
use rootcause_models::ranker::Ranker;

pub use case::Job;

use crate::advice::Advice;

use super::*;

/// The result of one ranking job.
pub(super) struct Outcome {
    pub(super) incident: u64,
    pub(super) generation: u64,
    pub(super) alert_count: u64,
    pub(super) candidates: Vec<String>,
    /// The topology version and services the candidates were computed for.
    pub(super) candidates_of: (i64, Vec<String>),
    pub(super) diagnosis: Diagnosis,
    pub(super) actions: Vec<Vec<Suggestion>>,
    /// The hypotheses as JSON, serialized off the async workers.
    pub(super) hypotheses: Box<serde_json::value::RawValue>,
    pub(super) elapsed: Duration,
}

/// Ranks one job: builds the case, diagnoses it, keeps the `listed` most likely hypotheses and
/// suggests actions for them. CPU-bound; runs on the blocking pool.
pub(super) fn run_job(job: Job, ranker: &dyn Ranker, advice: &Advice, listed: usize) -> Outcome {
    let started = Instant::now();
    let span = tracing::info_span!(
        "ranking",
        incident = job.incident,
        alerts = job.alerts.len(),
        candidates = tracing::field::Empty,
    );
    let _entered = span.enter();
    let (incident, generation, alert_count) = (job.incident, job.generation, job.alert_count);
    let candidates_of = (job.topology_version, job.services.clone());
    let case = job.case();
    let built = started.elapsed();
    span.record("candidates", case.candidates.len());
    // Rankers that diagnose from evidence get it extracted here, once: the suggestions read it
    // too (the learned action model, the similar-incident index).
    let evidence = (!case.candidates.is_empty())
        .then(|| ranker.evidence_settings())
        .flatten()
        .map(|settings| evidence::extract(&case, &settings));
    let diagnosis = if case.candidates.is_empty() {
        // An incident of unmapped alerts has no service to rank.
        Diagnosis {
            model: ranker.name().to_owned(),
            unknown: true,
            threshold: 0.0,
            hypotheses: Vec::new(),
        }
    } else {
        evidence
            .as_ref()
            .and_then(|e| ranker.diagnose_evidence_listing(e, listed))
            .unwrap_or_else(|| {
                // A ranker that reads the case itself diagnoses every candidate.
                let mut full = ranker.diagnose(&case);
                full.hypotheses.truncate(listed);
                full
            })
    };
    let diagnosed = started.elapsed();
    let actions = advice.advise(incident, &case, &diagnosis, evidence.as_ref(), ranker);
    let advised = started.elapsed();
    let hypotheses = view::hypotheses_json(&diagnosis, &actions);
    let elapsed = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    tracing::debug!(
        elapsed_ms = ms(elapsed),
        case_ms = ms(built),
        diagnose_ms = ms(diagnosed - built),
        advise_ms = ms(advised - diagnosed),
        json_ms = ms(elapsed - advised),
        "ranked"
    );
    Outcome {
        incident,
        generation,
        alert_count,
        candidates: case.candidates,
        candidates_of,
        diagnosis,
        actions,
        hypotheses,
        elapsed,
    }
}
