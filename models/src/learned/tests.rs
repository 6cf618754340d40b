//! Training on synthetic evidence where the cause shows on one mechanism per fault class.

use super::*;
use crate::evidence::{CandidateEvidence, GraphContext};

/// A case of `n` candidates: every candidate has some noise on every detector, the cause
/// (index `truth`) a strong `detector`, and its callers a weaker echo on `latency`.
fn example(seed: u64, n: usize, truth: usize, detector: Detector, fault: FaultType) -> Example {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0
    };
    let candidates = (0..n)
        .map(|i| {
            let mut scores = [0.0; Detector::COUNT];
            for s in scores.iter_mut() {
                *s = noise();
            }
            if i == truth {
                scores[detector as usize] = 8.0 + noise() * 3.0;
            } else if i % 3 == 0 {
                scores[Detector::LatencyMetric as usize] = 6.0 + noise() * 4.0;
            }
            CandidateEvidence {
                service: format!("s{i}"),
                scores,
                graph: GraphContext::default(),
                findings: Vec::new(),
            }
        })
        .collect();
    Example {
        evidence: Evidence {
            candidates,
            graph: Default::default(),
        },
        truth: Some(truth),
        fault: Some(fault),
    }
}

fn examples(count: u64) -> Vec<Example> {
    (0..count)
        .map(|k| {
            let (d, f) = match k % 3 {
                0 => (Detector::CpuMetric, FaultType::Cpu),
                1 => (Detector::NewErrorTemplates, FaultType::Code),
                _ => (Detector::AllEdgesDelay, FaultType::Network),
            };
            example(k, 12, (k as usize * 7) % 12, d, f)
        })
        .collect()
}

#[test]
fn a_trained_model_ranks_the_cause_first_on_unseen_cases_and_names_its_fault() {
    let model = train(
        &examples(30),
        &TrainParams::default(),
        Settings::default(),
        vec![],
    )
    .unwrap();
    let unseen: Vec<Example> = (100..130)
        .map(|k| {
            let (d, f) = if k % 2 == 0 {
                (Detector::CpuMetric, FaultType::Cpu)
            } else {
                (Detector::NewErrorTemplates, FaultType::Code)
            };
            example(k, 12, (k as usize) % 12, d, f)
        })
        .collect();
    let mut hits = 0;
    for e in &unseen {
        let d = model.diagnose_evidence(&e.evidence);
        let top = &d.hypotheses[0];
        if top.service == e.evidence.candidates[e.truth.unwrap()].service {
            hits += 1;
            assert_eq!(top.fault_type, e.fault, "{top:?}");
        }
        let sum: f64 = d.hypotheses.iter().map(|h| h.confidence.unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }
    assert!(hits >= 28, "{hits}/30");
    assert!(model.temperature > 0.0);
    assert!(model.version.len() == 12);
}

#[test]
fn a_model_file_round_trips_and_an_incompatible_one_is_refused() {
    let model = train(
        &examples(12),
        &TrainParams::default(),
        Settings::default(),
        vec![],
    )
    .unwrap();
    let back = LearnedModel::from_json(&model.to_json()).unwrap();
    assert_eq!(back, model);
    let mut old = model.clone();
    old.features.pop();
    let err = LearnedModel::from_json(&old.to_json()).unwrap_err();
    assert!(err.to_string().contains("retrain"), "{err}");
    assert!(LearnedModel::from_json("{}").is_err());
    // Damaged parts are refused when loaded, not when an incident is ranked.
    let mut damaged = model.clone();
    damaged.scorer.pooled.weights.clear();
    let err = LearnedModel::from_json(&damaged.to_json()).unwrap_err();
    assert!(err.to_string().contains("scorer.pooled"), "{err}");
    let mut damaged = model.clone();
    damaged.temperature = 0.0;
    assert!(LearnedModel::from_json(&damaged.to_json()).is_err());
    if let Some(fault) = &model.fault
        && fault.model.is_some()
    {
        let mut damaged = model.clone();
        damaged.fault.as_mut().unwrap().classes.pop();
        let err = LearnedModel::from_json(&damaged.to_json()).unwrap_err();
        assert!(err.to_string().contains("fault.model"), "{err}");
    }
}

#[test]
fn cross_validation_diagnoses_every_case_with_a_model_that_never_saw_it() {
    let all = examples(15);
    let mut folds_done = 0;
    let out = cross_validate(&all, 5, &TrainParams::default(), Settings::default(), |k| {
        folds_done = k;
    })
    .unwrap();
    assert_eq!(out.len(), 15);
    assert_eq!(folds_done, 5);
    let hits = out
        .iter()
        .zip(&all)
        .filter(|(d, e)| d.hypotheses[0].service == e.evidence.candidates[e.truth.unwrap()].service)
        .count();
    assert!(hits >= 12, "{hits}/15");
}

#[test]
fn training_needs_cases_whose_cause_is_a_candidate() {
    let mut few = examples(3);
    few[0].truth = None;
    few[1].truth = None;
    assert!(matches!(
        train(&few, &TrainParams::default(), Settings::default(), vec![]),
        Err(TrainError::TooFewCases(1))
    ));
}

#[test]
fn the_temperature_sharpens_confident_correct_scores() {
    // Scores that always put the truth far ahead want a low temperature; scores that are right
    // only half the time want a high one.
    let sure: Vec<(Vec<f64>, usize)> = (0..10).map(|_| (vec![5.0, 0.0, 0.0], 0)).collect();
    let unsure: Vec<(Vec<f64>, usize)> = (0..10).map(|i| (vec![5.0, 0.0, 0.0], i % 2)).collect();
    assert!(fit_temperature(&sure) < fit_temperature(&unsure));
}
