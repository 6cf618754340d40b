//! Training with cross-validated figures in one pass.
//!
//! [`train_validated`] fits one mixture per fold (on the other folds' cases) and one on every
//! case, side by side on the machine's cores. The folds' out-of-fold scores fit the softmax
//! temperature, which the final model then uses, and the same fold models give every case its
//! out-of-fold diagnosis and the action figures. [`train`] and [`cross_validate`] are the two
//! halves of that one run, so a model and its figures always come from the same procedure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::examples::Prepared;
use super::fit::{fit_actions, fit_fault_classifier, fit_ranker};
use super::{
    ActionModel, Example, FEATURE_COUNT, FORMAT, FaultClassifier, LearnedModel, Provenance, Scorer,
    TrainError, TrainParams, feature_names, fit_temperature, fold_of, version_of,
};
use crate::diagnosis::Diagnosis;
use crate::evidence::Settings;

/// How far [`train_validated`] has got, reported on the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `done` of `total` models are fitted (one per fold and the final one, in any order).
    Fitted {
        /// Models fitted so far.
        done: usize,
        /// Models to fit.
        total: usize,
    },
    /// Every model is fitted; the temperature and the out-of-fold diagnoses are next.
    Diagnosing,
}

/// How well the action model named the action that resolved each case, out of fold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionFigures {
    /// Cases scored: those whose cause is a candidate and whose resolving action is known.
    pub cases: usize,
    /// Fraction whose action was the first suggestion.
    pub top1: f64,
    /// Fraction whose action was among the first three.
    pub top3: f64,
    /// `top1` of a uniform guess among the `k` distinct actions: `1/k`.
    pub chance_top1: f64,
    /// `top3` of a uniform guess: `min(3, k)/k`.
    pub chance_top3: f64,
}

/// A model and the figures of the cross-validation run with it.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Trained on every usable example, with the temperature fitted on out-of-fold scores.
    pub model: LearnedModel,
    /// One diagnosis per example, in order, each by the model of the folds it is not in.
    pub out_of_fold: Vec<Diagnosis>,
    /// Out-of-fold figures of the action model; `None` when no usable example has an action.
    pub action_figures: Option<ActionFigures>,
}

/// What one fit produces: everything a model holds that is learned from cases.
struct Fitted {
    scorer: Scorer,
    fault: Option<FaultClassifier>,
    actions: Option<ActionModel>,
}

fn fit(cases: &[&Prepared], params: &TrainParams) -> Result<Fitted, TrainError> {
    Ok(Fitted {
        scorer: fit_ranker(cases, params)?,
        fault: fit_fault_classifier(cases, params)?,
        actions: fit_actions(cases, params)?,
    })
}

/// Trains a model on `examples` and cross-validates it by case in the same run.
///
/// `folds` (at least 2; fewer than the examples are used when there are fewer) split the
/// examples by [`fold_of`]. One model per fold is fitted on the usable examples (those whose
/// cause is a candidate) of the other folds, and one on every usable example: `folds + 1` fits,
/// at most as many at once as the machine has cores. The softmax temperature is fitted on the
/// fold models' out-of-fold scores and shared by the final model and the fold models, which
/// diagnose the examples of their own fold. Examples whose cause is not a candidate are
/// diagnosed but never trained on.
///
/// `progress` is called on the calling thread as models finish.
pub fn train_validated(
    examples: &[Example],
    folds: usize,
    params: &TrainParams,
    settings: Settings,
    sources: Vec<String>,
    mut progress: impl FnMut(Stage),
) -> Result<Validated, TrainError> {
    if folds < 2 {
        return Err(TrainError::Folds(folds));
    }
    let prepared: Vec<Prepared> = examples.iter().map(Prepared::of).collect();
    let usable = prepared.iter().filter(|p| p.truth.is_some()).count();
    if usable < 2 {
        return Err(TrainError::TooFewCases(usable));
    }
    let folds = folds.min(examples.len());
    // Job 0 trains the final model (the largest, so it starts first); job k + 1 fold k's.
    let mut jobs: Vec<Vec<&Prepared>> =
        vec![prepared.iter().filter(|p| p.truth.is_some()).collect()];
    for k in 0..folds {
        let train: Vec<&Prepared> = prepared
            .iter()
            .enumerate()
            .filter(|(i, p)| fold_of(*i, folds) != k && p.truth.is_some())
            .map(|(_, p)| p)
            .collect();
        if train.is_empty() {
            return Err(TrainError::TooFewCases(0));
        }
        jobs.push(train);
    }
    let mut fitted = fit_all(&jobs, params, &mut progress)?.into_iter();
    let last = fitted.next().expect("the final model is a job");
    let by_fold: Vec<Fitted> = fitted.collect();
    progress(Stage::Diagnosing);

    let held_out: Vec<(Vec<f64>, usize)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let truth = p.truth?;
            Some((by_fold[fold_of(i, folds)].scorer.scores(&p.rows), truth))
        })
        .collect();
    let temperature = fit_temperature(&held_out);

    let model = |f: Fitted, provenance: Provenance| {
        let mut model = LearnedModel {
            format: FORMAT,
            version: String::new(),
            settings,
            features: feature_names(),
            scorer: f.scorer,
            temperature,
            fault: f.fault,
            actions: f.actions,
            unknown_threshold: params.unknown_threshold,
            provenance,
        };
        model.version = version_of(&model);
        model
    };
    let fold_models: Vec<LearnedModel> = by_fold
        .into_iter()
        .map(|f| model(f, Provenance::default()))
        .collect();
    let out_of_fold = examples
        .iter()
        .zip(&prepared)
        .enumerate()
        .map(|(i, (e, p))| {
            fold_models[fold_of(i, folds)].diagnose_rows(&e.evidence, &p.rows, usize::MAX)
        })
        .collect();
    let action_figures = action_figures(&prepared, |i, row| {
        fold_models[fold_of(i, folds)]
            .actions
            .as_ref()
            .map(|a| a.suggest(row))
            .unwrap_or_default()
    });
    let provenance = Provenance {
        sources,
        cases: usable,
        rows: jobs[0].iter().map(|p| p.rows.len()).sum(),
        figures: Default::default(),
    };
    Ok(Validated {
        model: model(last, provenance),
        out_of_fold,
        action_figures,
    })
}

/// Fits every job's model, at most as many at once as there are cores, reporting each on the
/// calling thread as it finishes; the first failure stops jobs not yet started.
fn fit_all(
    jobs: &[Vec<&Prepared>],
    params: &TrainParams,
    progress: &mut impl FnMut(Stage),
) -> Result<Vec<Fitted>, TrainError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Fitted>> = jobs.iter().map(|_| None).collect();
    let mut error = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= jobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = fit(&jobs[j], params);
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    if sender.send((j, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut done = 0;
        for (j, result) in receiver {
            match result {
                Ok(fitted) => {
                    results[j] = Some(fitted);
                    done += 1;
                    progress(Stage::Fitted {
                        done,
                        total: jobs.len(),
                    });
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}

/// Action figures over the usable examples with an action, from `suggest(i, cause_row)`: the
/// out-of-fold suggestions for example `i`.
fn action_figures(
    prepared: &[Prepared],
    suggest: impl Fn(usize, &[f64; FEATURE_COUNT]) -> Vec<(String, f64)>,
) -> Option<ActionFigures> {
    let mut distinct: Vec<&str> = Vec::new();
    let (mut cases, mut top1, mut top3) = (0usize, 0usize, 0usize);
    for (i, p) in prepared.iter().enumerate() {
        let (Some(row), Some(action)) = (p.cause(), p.action) else {
            continue;
        };
        distinct.push(action);
        cases += 1;
        let place = suggest(i, row).iter().position(|(a, _)| a == action);
        top1 += usize::from(place == Some(0));
        top3 += usize::from(place.is_some_and(|p| p < 3));
    }
    if cases == 0 {
        return None;
    }
    distinct.sort_unstable();
    distinct.dedup();
    let k = distinct.len() as f64;
    Some(ActionFigures {
        cases,
        top1: top1 as f64 / cases as f64,
        top3: top3 as f64 / cases as f64,
        chance_top1: 1.0 / k,
        chance_top3: k.min(3.0) / k,
    })
}

/// Trains a model on `examples`: the model of [`train_validated`] with
/// [`TrainParams::calibration_folds`] folds (at least 2).
pub fn train(
    examples: &[Example],
    params: &TrainParams,
    settings: Settings,
    sources: Vec<String>,
) -> Result<LearnedModel, TrainError> {
    let folds = params.calibration_folds.max(2);
    train_validated(examples, folds, params, settings, sources, |_| {}).map(|v| v.model)
}

/// Out-of-fold diagnoses of every example by `folds`-fold cross-validation by case: those of
/// [`train_validated`]. Each example is diagnosed by a model trained on the other folds only;
/// examples whose cause is not a candidate are diagnosed too but never trained on. `progress`
/// gets how many folds' worth of fitting is done (up to `folds`).
pub fn cross_validate(
    examples: &[Example],
    folds: usize,
    params: &TrainParams,
    settings: Settings,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Diagnosis>, TrainError> {
    let validated = train_validated(examples, folds, params, settings, Vec::new(), |stage| {
        if let Stage::Fitted { done, total } = stage {
            progress(done * folds / total);
        }
    })?;
    Ok(validated.out_of_fold)
}
