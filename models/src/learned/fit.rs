//! Fitting: labelled examples and the knobs of training, the fits of the mixture's experts and
//! gate, the fault classifier and the action model, and the temperature of confidences.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::model::incident_features;
use super::pairwise::fit_scorer;
use super::{ActionModel, FEATURE_COUNT, FaultClassifier, Linear, Scorer, features};
use crate::case::Case;
use crate::diagnosis::FaultType;
use crate::evidence::{self, Detector, Evidence, Settings};
use crate::explain;

/// A labelled incident ready for training: its evidence, which candidate is the cause (`None`
/// when the cause is not among the candidates: such a case teaches nothing), its fault class
/// and the action that resolved it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The evidence of every candidate.
    pub evidence: Evidence,
    /// Index of the true cause among the candidates.
    pub truth: Option<usize>,
    /// The fault class of the label, when it maps to one.
    pub fault: Option<FaultType>,
    /// The action that resolved the incident, only when it worked: an action that failed
    /// teaches the action model nothing about what to do.
    pub action: Option<String>,
}

impl Example {
    /// The example of a labelled case (`None` without a label).
    pub fn of(case: &Case, settings: &Settings) -> Option<Example> {
        let label = case.label.as_ref()?;
        Some(Example::from_evidence(
            evidence::extract(case, settings),
            &label.root_cause,
            &label.fault_type,
            label.action.clone(),
        ))
    }

    /// The example of evidence computed earlier (stored history, or evidence whose case never
    /// held its label), labelled with the cause's name, the dataset's fault label and the
    /// action that resolved it.
    pub fn from_evidence(
        evidence: Evidence,
        root_cause: &str,
        fault_type: &str,
        action: Option<String>,
    ) -> Example {
        let truth = evidence
            .candidates
            .iter()
            .position(|c| c.service == root_cause);
        Example {
            evidence,
            truth,
            fault: FaultType::from_label(fault_type),
            action,
        }
    }
}

/// Knobs of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// L2 penalty of the logistic regressions (on standardised features): the fault-type
    /// classifier, the gate and the action model.
    pub alpha: f64,
    /// L2 penalty of the ranking scorers' corrections to their prior, the cold-start score (see
    /// [`fit_scorer`]), and of the gate that weighs the experts. Learning from a system's own
    /// fault history the corrections pay ([`DEFAULT_PRIOR_ALPHA`]); a model meant for systems
    /// it has never seen keeps close to the prior ([`CROSS_SYSTEM_PRIOR_ALPHA`]), because
    /// corrections learned on some systems do not carry over to others: both chosen by
    /// `rootcause eval --loso` (cross-system) and `--cv` (within a system).
    #[serde(default = "default_prior_alpha")]
    pub prior_alpha: f64,
    /// Optimiser iterations at most.
    pub max_iterations: u64,
    /// Folds of the cross-validation whose out-of-fold scores fit the temperature in
    /// [`train`](super::train) (at least 2 are used).
    pub calibration_folds: usize,
    /// Confidence below which a diagnosis is "unknown".
    pub unknown_threshold: f64,
}

/// The default of [`TrainParams::prior_alpha`]: learning from a system's own history (5-fold
/// cross-validation by case lifts AC@1 from the cold-start's 0.556 to 0.844 on Train Ticket
/// and from 0.880 to 0.951 on Bookinfo at 30).
pub const DEFAULT_PRIOR_ALPHA: f64 = 30.0;

/// [`TrainParams::prior_alpha`] of a model for systems it never saw, as the bundled one: the
/// leave-one-system-out table shows corrections learned on other systems costing accuracy
/// below about this much penalty.
pub const CROSS_SYSTEM_PRIOR_ALPHA: f64 = 10_000.0;

fn default_prior_alpha() -> f64 {
    DEFAULT_PRIOR_ALPHA
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            alpha: 1.0,
            prior_alpha: DEFAULT_PRIOR_ALPHA,
            max_iterations: 300,
            calibration_folds: 5,
            unknown_threshold: crate::cold_start::DEFAULT_UNKNOWN_THRESHOLD,
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Too few cases whose cause is among their candidates.
    #[error("need at least 2 labelled cases whose root cause is among the candidates, got {0}")]
    TooFewCases(usize),
    /// Cross-validation needs two folds or more.
    #[error("cross-validation needs at least 2 folds, got {0}")]
    Folds(usize),
    /// The optimiser failed.
    #[error("logistic regression failed: {0}")]
    Fit(String),
}

/// An example as the fits read it: its feature rows, computed once for every fit that reads
/// them (the final model and each fold's).
pub(super) struct Prepared<'a> {
    pub(super) rows: Vec<[f64; FEATURE_COUNT]>,
    pub(super) truth: Option<usize>,
    pub(super) fault: Option<FaultType>,
    pub(super) action: Option<&'a str>,
}

impl<'a> Prepared<'a> {
    pub(super) fn of(example: &'a Example) -> Prepared<'a> {
        Prepared {
            rows: features(&example.evidence),
            truth: example.truth,
            fault: example.fault,
            action: example.action.as_deref(),
        }
    }

    /// The feature row of the true cause, for cases whose cause is a candidate.
    pub(super) fn cause(&self) -> Option<&[f64; FEATURE_COUNT]> {
        self.truth.and_then(|t| self.rows.get(t))
    }
}

/// Cases a fault class needs in training to get an expert of its own.
pub const MIN_EXPERT_CASES: usize = 4;

/// Fits the pooled scorer, the experts and the gate on `cases`.
pub(super) fn fit_ranker(cases: &[&Prepared], params: &TrainParams) -> Result<Scorer, TrainError> {
    let pooled = fit_scorer(cases, params)?;
    let mut by_class: std::collections::BTreeMap<FaultType, Vec<&Prepared>> = Default::default();
    for c in cases.iter().filter(|c| c.truth.is_some()) {
        if let Some(class) = c.fault {
            by_class.entry(class).or_default().push(c);
        }
    }
    let mut experts = Vec::new();
    for (class, members) in &by_class {
        if members.len() >= MIN_EXPERT_CASES {
            experts.push((*class, fit_scorer(members, params)?));
        }
    }
    if experts.len() < 2 {
        return Ok(Scorer {
            pooled,
            experts: Vec::new(),
            gate: None,
        });
    }
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut targets: Vec<usize> = Vec::new();
    for (k, (class, _)) in experts.iter().enumerate() {
        for c in &by_class[class] {
            rows.push(incident_features(&c.rows));
            targets.push(k);
        }
    }
    let gate_params = TrainParams {
        alpha: params.prior_alpha,
        ..*params
    };
    let gate = fit_multinomial(&rows, &targets, experts.len(), &gate_params)?;
    Ok(Scorer {
        pooled,
        experts,
        gate: Some(gate),
    })
}

/// A multinomial logistic regression on standardised `rows` whose output `k` is the score of
/// target `k` (0..outputs), whatever order linfa keeps its classes in.
fn fit_multinomial(
    rows: &[Vec<f64>],
    targets: &[usize],
    outputs: usize,
    params: &TrainParams,
) -> Result<Linear, TrainError> {
    let refs: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
    let (mean, scale) = Linear::standardiser(&refs);
    let mut linear = Linear {
        mean,
        scale,
        weights: vec![vec![0.0; rows.first().map_or(0, Vec::len)]; outputs],
        intercepts: vec![0.0; outputs],
        prior: 0.0,
    };
    let fitted = MultiLogisticRegression::default()
        .alpha(params.alpha)
        .max_iterations(params.max_iterations)
        .fit(&Dataset::new(
            linear.matrix(&refs),
            Array1::from(targets.to_vec()),
        ))
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    // Column j of the fitted parameters belongs to the target fitted.classes()[j].
    for (j, &k) in fitted.classes().iter().enumerate() {
        linear.weights[k] = fitted.params().column(j).to_vec();
        linear.intercepts[k] = fitted.intercept()[j];
    }
    Ok(linear)
}

/// The distinct labels of `labels` (sorted) and each label's index among them.
fn distinct_targets<T: Ord + Clone>(labels: &[T]) -> (Vec<T>, Vec<usize>) {
    let mut distinct = labels.to_vec();
    distinct.sort();
    distinct.dedup();
    let targets = labels
        .iter()
        .map(|l| distinct.binary_search(l).expect("listed"))
        .collect();
    (distinct, targets)
}

pub(super) fn fit_fault_classifier(
    cases: &[&Prepared],
    params: &TrainParams,
) -> Result<Option<FaultClassifier>, TrainError> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut classes: Vec<FaultType> = Vec::new();
    for c in cases {
        let (Some(row), Some(fault)) = (c.cause(), c.fault) else {
            continue;
        };
        rows.push(row[..Detector::COUNT].to_vec());
        classes.push(fault);
    }
    let (distinct, targets) = distinct_targets(&classes);
    let model = match distinct.len() {
        0 => return Ok(None),
        1 => None,
        n => Some(fit_multinomial(&rows, &targets, n, params)?),
    };
    Ok(Some(FaultClassifier {
        classes: distinct,
        model,
    }))
}

/// Trains the action model alone on `examples` (those whose cause is a candidate and whose
/// resolving action is known); `None` when no example has an action.
pub fn train_actions(
    examples: &[Example],
    params: &TrainParams,
) -> Result<Option<ActionModel>, TrainError> {
    let prepared: Vec<Prepared> = examples.iter().map(Prepared::of).collect();
    let refs: Vec<&Prepared> = prepared.iter().collect();
    fit_actions(&refs, params)
}

pub(super) fn fit_actions(
    cases: &[&Prepared],
    params: &TrainParams,
) -> Result<Option<ActionModel>, TrainError> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut actions: Vec<String> = Vec::new();
    for c in cases {
        let (Some(row), Some(action)) = (c.cause(), c.action) else {
            continue;
        };
        rows.push(row[..Detector::COUNT].to_vec());
        actions.push(action.to_string());
    }
    let (distinct, targets) = distinct_targets(&actions);
    let model = match distinct.len() {
        0 => return Ok(None),
        1 => None,
        n => Some(fit_multinomial(&rows, &targets, n, params)?),
    };
    Ok(Some(ActionModel {
        actions: distinct,
        model,
    }))
}

/// The fold (0..folds) of the `i`-th example: round-robin over the examples' order, so folds
/// are balanced, each holds cases from across the data, and the split depends on order alone.
pub fn fold_of(i: usize, folds: usize) -> usize {
    i % folds.max(1)
}

/// The temperature maximising the likelihood of the true causes under a softmax of `scores`
/// (per case, with the index of its cause), searched on a log grid from 0.05 to 20.
pub fn fit_temperature(scored: &[(Vec<f64>, usize)]) -> f64 {
    if scored.is_empty() {
        return 1.0;
    }
    let nll = |t: f64| -> f64 {
        scored
            .iter()
            .map(|(s, truth)| -explain::softmax(s, t)[*truth].max(1e-12).ln())
            .sum()
    };
    let grid = (0..=120).map(|k| (0.05f64.ln() + k as f64 * (400.0f64.ln() / 120.0)).exp());
    grid.min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
        .unwrap_or(1.0)
}
