//! Training on synthetic evidence where the cause shows on one mechanism per fault class.

use linfa::prelude::*;
use ndarray::{Array1, Array2};

use super::examples::Prepared;
use super::pairwise::{fit_pairwise, fit_scorer};
use super::*;
use crate::diagnosis::{Diagnosis, FaultType};
use crate::evidence::{CandidateEvidence, Detector, Evidence, Settings};
use crate::ranker::Ranker;
use linfa_logistic::LogisticRegression;

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
            CandidateEvidence::scored(format!("s{i}"), scores)
        })
        .collect();
    Example {
        evidence: Evidence {
            candidates,
            graph: Default::default(),
        },
        truth: Some(truth),
        fault: Some(fault),
        action: None,
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

/// A model trained on `examples` with the default parameters and settings.
fn trained(examples: &[Example]) -> LearnedModel {
    train(
        examples,
        &TrainParams::default(),
        Settings::default(),
        vec![],
    )
    .unwrap()
}

#[test]
fn a_trained_model_ranks_the_cause_first_on_unseen_cases_and_names_its_fault() {
    let model = trained(&examples(30));
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
    let model = trained(&examples(12));
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

fn prepared(examples: &[Example]) -> Vec<Prepared<'_>> {
    examples.iter().map(Prepared::of).collect()
}

/// The standardised pairs (cause minus other) of `prepared`, as `fit_scorer` builds them, with
/// their prior margins.
fn pairs(prepared: &[Prepared]) -> (Array2<f64>, Array1<f64>) {
    let refs: Vec<&[f64]> = prepared
        .iter()
        .flat_map(|p| p.rows.iter().map(|r| &r[..]))
        .collect();
    let (_, scale) = Linear::standardiser(&refs);
    let mut rows = Vec::new();
    let mut offsets = Vec::new();
    for p in prepared {
        let truth = p.truth.unwrap();
        for (i, other) in p.rows.iter().enumerate() {
            if i != truth {
                rows.push(
                    (0..FEATURE_COUNT)
                        .map(|j| (p.rows[truth][j] - other[j]) / scale[j])
                        .collect::<Vec<f64>>(),
                );
                offsets.push(
                    PRIOR_WEIGHT * (p.rows[truth][COLD_START_FEATURE] - other[COLD_START_FEATURE]),
                );
            }
        }
    }
    let x = Array2::from_shape_fn((rows.len(), FEATURE_COUNT), |(i, j)| rows[i][j]);
    (x, Array1::from(offsets))
}

#[test]
fn the_pairwise_fit_finds_the_optimum_of_pairs_written_both_ways() {
    let all = examples(12);
    let prepared = prepared(&all);
    let (x, _) = pairs(&prepared);
    let alpha = 1.0;
    let iterations = TrainParams::default().max_iterations;
    // Without offsets, each pair written once at half the penalty is every pair both ways at
    // the full penalty: linfa's logistic regression on the doubled rows.
    let once = fit_pairwise(&x, &Array1::zeros(x.nrows()), alpha / 2.0, iterations).unwrap();
    let doubled = ndarray::concatenate![ndarray::Axis(0), x.view(), (-&x).view()];
    let y = Array1::from_iter((0..doubled.nrows()).map(|i| usize::from(i < x.nrows())));
    let both = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(iterations)
        .with_intercept(false)
        .fit(&Dataset::new(doubled, y))
        .unwrap();
    let sign = if both.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    let norm = both.params().iter().map(|w| w * w).sum::<f64>().sqrt();
    for (a, b) in once.iter().zip(both.params()) {
        assert!((a - sign * b).abs() < 1e-3 * norm, "{a} vs {}", sign * b);
    }
}

#[test]
fn corrections_to_the_prior_reach_the_optimum_and_vanish_under_a_large_penalty() {
    let all = examples(12);
    let prepared = prepared(&all);
    let (x, offsets) = pairs(&prepared);
    let alpha = 0.5;
    let w = Array1::from(fit_pairwise(&x, &offsets, alpha, 300).unwrap());
    // The gradient of Σ ln(1 + e^(−(o + w·x))) + α/2 |w|² is 0 at the optimum.
    let z = x.dot(&w) + &offsets;
    let mut gradient = &w * alpha;
    for (row, z) in x.rows().into_iter().zip(&z) {
        gradient.scaled_add(-1.0 / (1.0 + z.exp()), &row);
    }
    let size = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
    assert!(size < 1e-6 * (1.0 + x.nrows() as f64), "gradient {size}");
    // A penalty far above the data leaves the prior alone: the scorer ranks as cold-start.
    let tiny = fit_pairwise(&x, &offsets, 1e9, 300).unwrap();
    assert!(tiny.iter().all(|w| w.abs() < 1e-5), "{tiny:?}");
    let params = TrainParams {
        prior_alpha: 1e9,
        ..TrainParams::default()
    };
    let refs: Vec<&Prepared> = prepared.iter().collect();
    let scorer = fit_scorer(&refs, &params).unwrap();
    for p in &prepared {
        let learned: Vec<f64> = p.rows.iter().map(|r| scorer.outputs(r)[0]).collect();
        let prior: Vec<f64> = p.rows.iter().map(|r| r[COLD_START_FEATURE]).collect();
        for i in 0..learned.len() {
            for j in 0..learned.len() {
                if prior[i] > prior[j] + 1e-9 {
                    assert!(learned[i] > learned[j], "{learned:?} vs prior {prior:?}");
                }
            }
        }
    }
}

/// Two candidates: `a` strong on CPU, `b` on memory, and `a` is the cause; except where
/// `contrary`, where `b` is strong on disk (which no other case shows) and is the cause.
fn contrary_example(seed: u64, contrary: bool) -> Example {
    let wobble = (seed % 5) as f64 * 0.3;
    let mut a = [0.0; Detector::COUNT];
    let mut b = [0.0; Detector::COUNT];
    a[Detector::CpuMetric as usize] = 8.0 + wobble;
    if contrary {
        b[Detector::DiskMetric as usize] = 8.0 + wobble;
    } else {
        b[Detector::MemoryMetric as usize] = 4.0 + wobble;
    }
    let candidate = CandidateEvidence::scored;
    Example {
        evidence: Evidence {
            candidates: vec![candidate("a", a), candidate("b", b)],
            graph: Default::default(),
        },
        truth: Some(usize::from(contrary)),
        fault: None,
        action: None,
    }
}

#[test]
fn an_out_of_fold_diagnosis_never_comes_from_a_model_trained_on_its_case() {
    let all: Vec<Example> = (0..11).map(|k| contrary_example(k, k == 5)).collect();
    let params = TrainParams::default();
    let mut stages = Vec::new();
    let validated = train_validated(&all, 5, &params, Settings::default(), vec![], |s| {
        stages.push(s)
    })
    .unwrap();
    assert_eq!(validated.out_of_fold.len(), all.len());
    // A model that saw the contrary case learns that disk marks a cause and ranks it first...
    let top = |d: &Diagnosis| d.hypotheses[0].service.clone();
    assert_eq!(
        top(&validated.model.diagnose_evidence(&all[5].evidence)),
        "b"
    );
    // ...but its out-of-fold diagnosis comes from models that never saw it, nor any disk.
    assert_eq!(top(&validated.out_of_fold[5]), "a");
    for (i, d) in validated.out_of_fold.iter().enumerate() {
        if i != 5 {
            assert_eq!(top(d), "a", "case {i}");
        }
    }
    // The fold's diagnosis is exactly that of a model trained on the other folds alone.
    let others: Vec<Example> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| fold_of(*i, 5) != fold_of(5, 5))
        .map(|(_, e)| e.clone())
        .collect();
    let alone = train(&others, &params, Settings::default(), vec![]).unwrap();
    let scores = |d: &Diagnosis| d.hypotheses.iter().map(|h| h.score).collect::<Vec<_>>();
    assert_eq!(
        scores(&validated.out_of_fold[5]),
        scores(&alone.diagnose_evidence(&all[5].evidence))
    );
    assert_eq!(stages.len(), 7);
    assert_eq!(stages[5], Stage::Fitted { done: 6, total: 6 });
    assert_eq!(stages[6], Stage::Diagnosing);
    assert!(matches!(
        train_validated(&all, 1, &params, Settings::default(), vec![], |_| {}),
        Err(TrainError::Folds(1))
    ));
}

/// The action that resolves a fault of each class (with a few exceptions).
fn action_for(fault: FaultType, k: u64) -> &'static str {
    if k % 10 == 9 {
        return "restart";
    }
    match fault {
        FaultType::Cpu => "scale_out",
        FaultType::Code => "rollback",
        _ => "failover",
    }
}

fn with_actions(count: u64) -> Vec<Example> {
    examples(count)
        .into_iter()
        .zip(0..)
        .map(|(mut e, k)| {
            e.action = Some(action_for(e.fault.unwrap(), k).to_string());
            e
        })
        .collect()
}

#[test]
fn the_action_model_names_the_action_of_the_mechanism_well_above_chance() {
    let all = with_actions(60);
    let validated = train_validated(
        &all,
        5,
        &TrainParams::default(),
        Settings::default(),
        vec![],
        |_| {},
    )
    .unwrap();
    let figures = validated.action_figures.unwrap();
    assert_eq!(figures.cases, 60);
    assert_eq!(figures.chance_top1, 0.25);
    assert_eq!(figures.chance_top3, 0.75);
    assert!(figures.top1 >= 0.8, "{figures:?}");
    assert!(figures.top3 >= figures.top1);
    let model = validated.model;
    let mut hits = 0;
    for k in 1000..1030 {
        let (d, f) = match k % 3 {
            0 => (Detector::CpuMetric, FaultType::Cpu),
            1 => (Detector::NewErrorTemplates, FaultType::Code),
            _ => (Detector::AllEdgesDelay, FaultType::Network),
        };
        let unseen = example(k, 12, 4, d, f);
        let suggested = model.suggest_actions(&unseen.evidence, 4);
        assert_eq!(suggested.len(), 4);
        let sum: f64 = suggested.iter().map(|s| s.1).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!(suggested.windows(2).all(|w| w[0].1 >= w[1].1));
        hits += usize::from(suggested[0].0 == action_for(f, 0));
    }
    assert!(hits >= 24, "{hits}/30");
    let unseen = example(1000, 12, 4, Detector::CpuMetric, FaultType::Cpu);
    assert!(model.suggest_actions(&unseen.evidence, 12).is_empty());

    // The action model is stored and checked like the rest; files without one still load.
    let back = LearnedModel::from_json(&model.to_json()).unwrap();
    assert_eq!(back, model);
    let mut damaged = model.clone();
    damaged.actions.as_mut().unwrap().actions.pop();
    let err = LearnedModel::from_json(&damaged.to_json()).unwrap_err();
    assert!(err.to_string().contains("actions.model"), "{err}");
    let mut without = model.clone();
    without.actions = None;
    assert!(!without.to_json().contains("\"actions\""));
    assert!(
        LearnedModel::from_json(&without.to_json())
            .unwrap()
            .suggest_actions(&unseen.evidence, 4)
            .is_empty()
    );
}

#[test]
fn a_single_action_needs_no_model_and_examples_without_one_are_skipped() {
    let mut all = examples(12);
    for e in &mut all {
        e.action = Some("restart".into());
    }
    all[3].action = None;
    let model = trained(&all);
    let actions = model.actions.as_ref().unwrap();
    assert_eq!(actions.actions, ["restart"]);
    assert!(actions.model.is_none());
    let e = &all[0];
    assert_eq!(
        model.suggest_actions(&e.evidence, e.truth.unwrap()),
        [("restart".to_string(), 1.0)]
    );
}

#[test]
fn examples_from_stored_evidence_find_their_cause_by_name() {
    let e = examples(1).remove(0);
    let truth = e.truth.unwrap();
    let name = e.evidence.candidates[truth].service.clone();
    let stored = e.evidence.clone().without_findings();
    let from = Example::from_evidence(stored, &name, "cpu_contention", Some("restart".into()));
    assert_eq!(from.truth, Some(truth));
    assert_eq!(from.fault, Some(FaultType::Cpu));
    assert_eq!(from.action.as_deref(), Some("restart"));
    let missing = Example::from_evidence(e.evidence, "nowhere", "mystery", None);
    assert_eq!((missing.truth, missing.fault), (None, None));
}

#[test]
fn the_learned_and_cold_start_rankers_diagnose_stored_evidence() {
    let model = trained(&examples(12));
    let e = &examples(13)[12];
    let learned = Learned {
        model: model.clone(),
    };
    assert_eq!(
        learned.diagnose_evidence(&e.evidence),
        Some(model.diagnose_evidence(&e.evidence))
    );
    let cold = crate::cold_start::ColdStart::default();
    let d = cold.diagnose_evidence(&e.evidence).unwrap();
    assert_eq!(d.model, "cold-start");
    assert_eq!(d.hypotheses.len(), 12);
    assert!(
        crate::baselines::NSigma
            .diagnose_evidence(&e.evidence)
            .is_none()
    );
}

#[test]
fn a_listing_diagnosis_is_the_head_of_the_full_one() {
    let model = trained(&examples(12));
    let e = &examples(13)[12];
    let rankers: [Box<dyn Ranker>; 3] = [
        Box::new(Learned { model }),
        Box::new(crate::cold_start::ColdStart::default()),
        Box::new(crate::baselines::NSigma),
    ];
    for ranker in &rankers {
        let Some(full) = ranker.diagnose_evidence(&e.evidence) else {
            // A baseline reads the case, not evidence: nothing to list either.
            assert!(ranker.diagnose_evidence_listing(&e.evidence, 3).is_none());
            continue;
        };
        assert_eq!(full.hypotheses.len(), 12);
        for listed in [0, 1, 5, 12, usize::MAX] {
            let head = ranker
                .diagnose_evidence_listing(&e.evidence, listed)
                .unwrap();
            assert_eq!(head.hypotheses[..], full.hypotheses[..listed.min(12)]);
            assert_eq!((head.unknown, &head.model), (full.unknown, &full.model));
        }
    }
}

#[test]
fn action_probabilities_of_a_few_candidates_match_the_full_feature_rows() {
    let model = crate::rankers::bundled_model();
    assert!(
        model.actions.is_some(),
        "the bundled model has an action model"
    );
    let evidence = Evidence {
        candidates: (0..5)
            .map(|i| {
                let mut scores = [0.0; Detector::COUNT];
                scores[i % Detector::COUNT] = 2.0 + i as f64;
                scores[Detector::Alerts as usize] = 1.0;
                CandidateEvidence::scored(format!("s{i}"), scores)
            })
            .collect(),
        graph: Default::default(),
    };
    let learned = Learned {
        model: model.clone(),
    };
    let asked = [3, 0];
    let few = learned.action_probabilities(&evidence, &asked);
    assert_eq!(few.len(), 2);
    for (probabilities, &i) in few.iter().zip(&asked) {
        assert_eq!(probabilities, &model.suggest_actions(&evidence, i));
        assert!(!probabilities.is_empty());
    }
}

#[test]
fn folded_standardisation_scores_as_the_model_does() {
    let linear = Linear {
        mean: vec![0.5, -1.0, 3.0],
        scale: vec![2.0, 0.25, 7.0],
        weights: vec![vec![1.5, -0.3, 0.02], vec![-2.0, 0.0, 4.0]],
        intercepts: vec![0.1, -0.7],
        prior: 0.0,
    };
    let folded = linear.folded();
    for row in [[0.0, 0.0, 0.0], [1.0, -2.5, 10.0], [-3.0, 8.0, 0.125]] {
        let (slow, fast) = (linear.outputs(&row), folded.outputs(&row));
        assert_eq!(slow.len(), fast.len());
        for (a, b) in slow.iter().zip(&fast) {
            assert!((a - b).abs() < 1e-12, "{slow:?} {fast:?}");
        }
    }
}
