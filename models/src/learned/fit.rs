//! Fitting: the mixture's experts and gate, the fault classifier and the action model, and the
//! temperature of confidences.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::Array1;

use super::examples::{Example, Prepared, TrainError, TrainParams};
use super::model::incident_features;
use super::pairwise::fit_scorer;
use super::{ActionModel, FaultClassifier, Linear, Scorer};
use crate::diagnosis::FaultType;
use crate::evidence::Detector;
use crate::explain;

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

/// Distinct labels, sorted, and the model that tells them apart (`None` for a single label).
type Labels<T> = (Vec<T>, Option<Linear>);

/// The distinct labels of the causes that have one (sorted) and, when there are two or more, a
/// multinomial model telling them apart from the cause's detector scores; `None` when no cause
/// has a label. The fault classifier and the action model are both this, over another label.
fn fit_labels<T: Ord + Clone>(
    cases: &[&Prepared],
    params: &TrainParams,
    label: impl Fn(&Prepared) -> Option<T>,
) -> Result<Option<Labels<T>>, TrainError> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut labels: Vec<T> = Vec::new();
    for c in cases {
        let (Some(row), Some(l)) = (c.cause(), label(c)) else {
            continue;
        };
        rows.push(row[..Detector::COUNT].to_vec());
        labels.push(l);
    }
    let (distinct, targets) = distinct_targets(&labels);
    let model = match distinct.len() {
        0 => return Ok(None),
        1 => None,
        n => Some(fit_multinomial(&rows, &targets, n, params)?),
    };
    Ok(Some((distinct, model)))
}

pub(super) fn fit_fault_classifier(
    cases: &[&Prepared],
    params: &TrainParams,
) -> Result<Option<FaultClassifier>, TrainError> {
    Ok(fit_labels(cases, params, |c| c.fault)?
        .map(|(classes, model)| FaultClassifier { classes, model }))
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
    Ok(fit_labels(cases, params, |c| c.action.map(str::to_string))?
        .map(|(actions, model)| ActionModel { actions, model }))
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
