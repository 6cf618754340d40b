//! The learned ranker: a logistic regression (linfa) over (incident, candidate) rows, trained
//! pairwise (the cause against each other candidate of its incident, see [`fit_scorer`]), with a softmax temperature fitted on held-out cases so that confidences are
//! probabilities, and a multinomial logistic regression naming the fault type.
//!
//! Rows are [`features`] of a candidate's evidence: per detector the strength `ln(1 + z)`, that
//! strength relative to the case's strongest candidate on the same detector, and its lead over
//! the strongest *other* candidate (a root cause stands out against the rest of the system at
//! that moment, whatever the system's noise level), then the graph context. Nothing in a row names a service, a metric or a dataset.
//!
//! Confidence: the scores of one incident's candidates go through a softmax at temperature `T`
//! (one root cause per incident). `T` is fitted by maximum likelihood of the true cause on
//! out-of-fold scores, never on scores of cases the scorer was trained on.

use linfa::prelude::*;
use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::diagnosis::{Diagnosis, FaultType};
use crate::evidence::{self, Detector, Evidence, Settings};
use crate::explain;
use crate::ranker::{Ranker, Ranking};

/// Format version of a model file; a file of another version is refused.
pub const FORMAT: u32 = 1;

/// Number of graph-context features after the per-detector ones.
const GRAPH_FEATURES: usize = 7;
/// Number of features that summarise the leads over all detectors.
const SUMMARY_FEATURES: usize = 3;

/// Length of a feature row.
pub const FEATURE_COUNT: usize = 3 * Detector::COUNT + SUMMARY_FEATURES + GRAPH_FEATURES;

/// Names of the row's features, in order.
pub fn feature_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(FEATURE_COUNT);
    for d in Detector::ALL {
        names.push(format!("{}_strength", d.name()));
    }
    for d in Detector::ALL {
        names.push(format!("{}_place", d.name()));
    }
    for d in Detector::ALL {
        names.push(format!("{}_lead", d.name()));
    }
    names.extend(
        [
            "best_lead",
            "best_local_lead",
            "detectors_led",
            "pagerank",
            "anomalous_callers",
            "anomalous_callees",
            "callee_more_anomalous",
            "fan_in",
            "alerting",
            "first_to_alert",
        ]
        .map(String::from),
    );
    names
}

/// One feature row per candidate of `evidence`, in its order.
pub fn features(evidence: &Evidence) -> Vec<[f64; FEATURE_COUNT]> {
    let strength: Vec<[f64; Detector::COUNT]> = evidence
        .candidates
        .iter()
        .map(|c| c.scores.map(|z| z.max(0.0).ln_1p()))
        .collect();
    // The best and second-best strength per detector, to know every candidate's best rival.
    let mut top = [0.0f64; Detector::COUNT];
    let mut second = [0.0f64; Detector::COUNT];
    for s in &strength {
        for d in 0..Detector::COUNT {
            if s[d] > top[d] {
                second[d] = top[d];
                top[d] = s[d];
            } else if s[d] > second[d] {
                second[d] = s[d];
            }
        }
    }
    // Each candidate's place on each detector: 1 for the strongest, 1/2 for the next, ...
    let mut place = vec![[0.0f64; Detector::COUNT]; strength.len()];
    for d in 0..Detector::COUNT {
        let mut order: Vec<usize> = (0..strength.len())
            .filter(|&i| strength[i][d] > 0.0)
            .collect();
        order.sort_by(|&a, &b| strength[b][d].total_cmp(&strength[a][d]));
        for (k, &i) in order.iter().enumerate() {
            place[i][d] = 1.0 / (k + 1) as f64;
        }
    }
    evidence
        .candidates
        .iter()
        .zip(&strength)
        .zip(&place)
        .map(|((c, s), place)| {
            let mut row = [0.0; FEATURE_COUNT];
            for d in 0..Detector::COUNT {
                row[d] = s[d];
                row[Detector::COUNT + d] = place[d];
                let rival = if s[d] >= top[d] { second[d] } else { top[d] };
                row[2 * Detector::COUNT + d] = (s[d] - rival).max(0.0);
            }
            // Whatever the mechanism, a cause usually leads the system on at least one.
            let leads = &row[2 * Detector::COUNT..3 * Detector::COUNT];
            let best_lead = leads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let best_local_lead = Detector::ALL
                .iter()
                .filter(|d| d.is_local())
                .map(|&d| leads[d as usize])
                .fold(f64::NEG_INFINITY, f64::max);
            let led = leads.iter().filter(|&&l| l > 0.5).count() as f64;
            let g = &c.graph;
            let tail = [
                best_lead,
                best_local_lead,
                led,
                g.pagerank,
                g.anomalous_callers,
                g.anomalous_callees,
                f64::from(u8::from(g.callee_more_anomalous)),
                g.fan_in,
                f64::from(u8::from(g.alerting)),
                f64::from(u8::from(g.alert_delay_min == Some(0.0))),
            ];
            row[3 * Detector::COUNT..].copy_from_slice(&tail);
            row
        })
        .collect()
}

/// A labelled incident ready for training: its evidence, which candidate is the cause (`None`
/// when the cause is not among the candidates: such a case teaches nothing), and its fault class.
#[derive(Debug, Clone)]
pub struct Example {
    /// The evidence of every candidate.
    pub evidence: Evidence,
    /// Index of the true cause among the candidates.
    pub truth: Option<usize>,
    /// The fault class of the label, when it maps to one.
    pub fault: Option<FaultType>,
}

impl Example {
    /// The example of a labelled case (`None` without a label).
    pub fn of(case: &Case, settings: &Settings) -> Option<Example> {
        let label = case.label.as_ref()?;
        let evidence = evidence::extract(case, settings);
        let truth = evidence
            .candidates
            .iter()
            .position(|c| c.service == label.root_cause);
        Some(Example {
            evidence,
            truth,
            fault: FaultType::from_label(&label.fault_type),
        })
    }
}

/// Knobs of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// L2 penalty of the logistic regressions (on standardised features).
    pub alpha: f64,
    /// Optimiser iterations at most.
    pub max_iterations: u64,
    /// Folds of the inner cross-validation that fits the temperature.
    pub calibration_folds: usize,
    /// Confidence below which a diagnosis is "unknown".
    pub unknown_threshold: f64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            alpha: 1.0,
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

/// A linear scorer on standardised features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Feature means subtracted first.
    pub mean: Vec<f64>,
    /// Feature spreads divided by next.
    pub scale: Vec<f64>,
    /// One weight vector per output (one for the ranker, one per class for the classifier).
    pub weights: Vec<Vec<f64>>,
    /// One intercept per output.
    pub intercepts: Vec<f64>,
}

impl Linear {
    fn standardiser(rows: &[&[f64]]) -> (Vec<f64>, Vec<f64>) {
        let n = rows.len().max(1) as f64;
        let width = rows.first().map_or(0, |r| r.len());
        let mut mean = vec![0.0; width];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r.iter()) {
                *m += v / n;
            }
        }
        let mut scale = vec![0.0; width];
        for r in rows {
            for ((s, v), m) in scale.iter_mut().zip(r.iter()).zip(&mean) {
                *s += (v - m).powi(2) / n;
            }
        }
        let scale = scale
            .into_iter()
            .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
            .collect();
        (mean, scale)
    }

    fn matrix(&self, rows: &[&[f64]]) -> Array2<f64> {
        let width = self.mean.len();
        Array2::from_shape_fn((rows.len(), width), |(i, j)| {
            (rows[i][j] - self.mean[j]) / self.scale[j]
        })
    }

    /// The outputs (logits) of one row.
    pub fn outputs(&self, row: &[f64]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.intercepts)
            .map(|(w, b)| {
                b + w
                    .iter()
                    .zip(row)
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|((w, x), (m, s))| w * (x - m) / s)
                    .sum::<f64>()
            })
            .collect()
    }
}

/// Fault-type classifier over a candidate's detector strengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultClassifier {
    /// Classes, in output order.
    pub classes: Vec<FaultType>,
    /// Multinomial logistic regression (one output per class); `None` when training saw one
    /// class only, which is then always the answer.
    pub model: Option<Linear>,
}

impl FaultClassifier {
    /// The most likely class of a candidate with these features, and its probability.
    pub fn classify(&self, row: &[f64]) -> Option<(FaultType, f64)> {
        let strengths = &row[..Detector::COUNT];
        match &self.model {
            None => self.classes.first().map(|&c| (c, 1.0)),
            Some(linear) => {
                let p = explain::softmax(&linear.outputs(strengths), 1.0);
                p.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, &p)| (self.classes[i], p))
            }
        }
    }
}

/// What a model was trained on and how it scored, recorded in the model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Where the training cases came from (`nezha:<path>`, `sim:<path>`), as the trainer said.
    pub sources: Vec<String>,
    /// Cases trained on (whose cause was among their candidates).
    pub cases: usize,
    /// Candidate rows trained on.
    pub rows: usize,
    /// Free-form figures the trainer attached (cross-validated AC@1 and the like).
    #[serde(default)]
    pub figures: std::collections::BTreeMap<String, f64>,
}

/// A trained model, as stored in a model file (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedModel {
    /// [`FORMAT`].
    pub format: u32,
    /// Content hash, set when trained: names the model in diagnoses (`learned@<version>`).
    pub version: String,
    /// Evidence windows the features were computed with.
    pub settings: Settings,
    /// Feature names, to refuse a file from an incompatible build.
    pub features: Vec<String>,
    /// The root-cause scorer.
    pub scorer: Scorer,
    /// Softmax temperature of confidences.
    pub temperature: f64,
    /// Fault-type classifier.
    pub fault: Option<FaultClassifier>,
    /// Confidence below which a diagnosis is "unknown".
    pub unknown_threshold: f64,
    /// What it was trained on.
    pub provenance: Provenance,
}

/// Why a model file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// Not JSON of a model.
    #[error("not a rootcause model file: {0}")]
    Parse(#[from] serde_json::Error),
    /// Right format, but a part has the wrong shape or an unusable value.
    #[error("model file is damaged: {0}")]
    Invalid(String),
    /// Another format or feature set.
    #[error(
        "model file has format {found} and {features} features; this build reads format {FORMAT} with {FEATURE_COUNT} features: retrain it"
    )]
    Incompatible {
        /// Its format.
        found: u32,
        /// Its feature count.
        features: usize,
    },
}

impl LearnedModel {
    /// Reads a model file's text.
    pub fn from_json(text: &str) -> Result<LearnedModel, ModelFileError> {
        let model: LearnedModel = serde_json::from_str(text)?;
        if model.format != FORMAT || model.features != feature_names() {
            return Err(ModelFileError::Incompatible {
                found: model.format,
                features: model.features.len(),
            });
        }
        model.check().map_err(ModelFileError::Invalid)?;
        Ok(model)
    }

    /// Checks every dimension and value a scoring step relies on, so a damaged or hand-edited
    /// file is refused when loaded rather than failing (or scoring NaN) in the middle of an
    /// incident.
    fn check(&self) -> Result<(), String> {
        let linear = |what: &str, l: &Linear, width: usize, outputs: usize| -> Result<(), String> {
            let shape_ok = l.mean.len() == width
                && l.scale.len() == width
                && l.weights.len() == outputs
                && l.intercepts.len() == outputs
                && l.weights.iter().all(|w| w.len() == width);
            if !shape_ok {
                return Err(format!(
                    "{what}: expected {outputs} output(s) over {width} features"
                ));
            }
            let finite = l
                .mean
                .iter()
                .chain(&l.intercepts)
                .chain(l.weights.iter().flatten())
                .all(|v| v.is_finite());
            if !finite || !l.scale.iter().all(|v| v.is_finite() && *v > 0.0) {
                return Err(format!(
                    "{what}: non-finite values or a scale that is not positive"
                ));
            }
            Ok(())
        };
        linear("scorer.pooled", &self.scorer.pooled, FEATURE_COUNT, 1)?;
        for (class, expert) in &self.scorer.experts {
            linear(
                &format!("scorer.experts[{}]", class.as_str()),
                expert,
                FEATURE_COUNT,
                1,
            )?;
        }
        match &self.scorer.gate {
            Some(gate) if self.scorer.experts.len() >= 2 => linear(
                "scorer.gate",
                gate,
                2 * Detector::COUNT,
                self.scorer.experts.len(),
            )?,
            None if self.scorer.experts.is_empty() => {}
            _ => {
                return Err(
                    "scorer: a gate needs two experts or more, and experts need a gate".into(),
                );
            }
        }
        if let Some(fault) = &self.fault {
            if fault.classes.is_empty() {
                return Err("fault: no classes".into());
            }
            if let Some(model) = &fault.model {
                linear("fault.model", model, Detector::COUNT, fault.classes.len())?;
            }
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "temperature {} is not a positive number",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.unknown_threshold) {
            return Err(format!(
                "unknown_threshold {} is not within [0, 1]",
                self.unknown_threshold
            ));
        }
        Ok(())
    }

    /// The model file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model serialises")
    }

    /// Raw scores (logits) of every candidate of `evidence`, in its order.
    pub fn scores(&self, rows: &[[f64; FEATURE_COUNT]]) -> Vec<f64> {
        self.scorer.scores(rows)
    }

    /// The diagnosis of precomputed evidence.
    pub fn diagnose_evidence(&self, evidence: &Evidence) -> Diagnosis {
        let rows = features(evidence);
        let scores = self.scores(&rows);
        let confidences = explain::softmax(&scores, self.temperature);
        let faults: Vec<(Option<FaultType>, Option<f64>)> = rows
            .iter()
            .map(|r| match self.fault.as_ref().and_then(|f| f.classify(r)) {
                Some((class, p)) => (Some(class), Some(p)),
                None => (None, None),
            })
            .collect();
        explain::diagnosis(
            &format!("learned@{}", self.version),
            evidence,
            &scores,
            &confidences,
            &faults,
            self.unknown_threshold,
            self.settings.anomalous_z,
        )
    }
}

/// The learned ranker: a [`LearnedModel`] applied to cases.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The model.
    pub model: LearnedModel,
}

impl Ranker for Learned {
    fn name(&self) -> &str {
        "learned"
    }

    fn rank(&self, case: &Case) -> Ranking {
        let evidence = evidence::extract(case, &self.model.settings);
        let scores = self.model.scores(&features(&evidence));
        Ranking::from_scores(
            evidence
                .candidates
                .iter()
                .zip(scores)
                .map(|(c, s)| (c.service.clone(), s)),
        )
    }

    fn diagnose(&self, case: &Case) -> Diagnosis {
        self.model
            .diagnose_evidence(&evidence::extract(case, &self.model.settings))
    }
}

/// Fits the root-cause scorer on `examples` (those whose cause is a candidate).
///
/// Pairwise (RankNet-style): for each case and each other candidate, one row holds the
/// cause's standardised features minus the other's (label 1) and one the reverse (label 0); a
/// logistic regression without intercept then learns weights `w` such that `w · x` orders
/// causes above the rest of *their own* incident. Comparing within incidents is what a ranking
/// needs: a pointwise model also spends its few parameters separating busy incidents from quiet
/// ones, which says nothing about which candidate caused either.
fn fit_scorer(examples: &[&Example], params: &TrainParams) -> Result<Linear, TrainError> {
    let mut cases: Vec<(Vec<[f64; FEATURE_COUNT]>, usize)> = Vec::new();
    for e in examples {
        let Some(truth) = e.truth else { continue };
        cases.push((features(&e.evidence), truth));
    }
    let refs: Vec<&[f64]> = cases
        .iter()
        .flat_map(|(rows, _)| rows.iter().map(|r| &r[..]))
        .collect();
    let (mean, scale) = Linear::standardiser(&refs);
    let mut linear = Linear {
        mean,
        scale,
        weights: Vec::new(),
        intercepts: Vec::new(),
    };
    let pairs: usize = cases.iter().map(|(rows, _)| rows.len() - 1).sum();
    let mut x = Array2::<f64>::zeros((2 * pairs, FEATURE_COUNT));
    let mut y = Array1::<usize>::zeros(2 * pairs);
    let mut at = 0;
    for (rows, truth) in &cases {
        let cause = &rows[*truth];
        for (i, other) in rows.iter().enumerate() {
            if i == *truth {
                continue;
            }
            for j in 0..FEATURE_COUNT {
                let d = (cause[j] - other[j]) / linear.scale[j];
                x[[at, j]] = d;
                x[[at + 1, j]] = -d;
            }
            y[at] = 1;
            at += 2;
        }
    }
    let fitted = LogisticRegression::default()
        .alpha(params.alpha)
        .max_iterations(params.max_iterations)
        .with_intercept(false)
        .fit(&Dataset::new(x, y))
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    // The fitted model's outputs are the log-odds of its "positive" class, which linfa picks
    // itself: orient them so that a higher score means "ranks above" (label 1).
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    linear.weights = vec![fitted.params().iter().map(|w| sign * w).collect()];
    linear.intercepts = vec![0.0];
    Ok(linear)
}

/// Cases a fault class needs in training to get an expert of its own.
pub const MIN_EXPERT_CASES: usize = 4;

/// The root-cause scorer: a mixture of experts.
///
/// Which evidence marks a cause depends on the fault: a CPU hog leads the system on CPU, a
/// delayed service on the delay of calls into it, a code fault on new or missing log lines. One
/// linear scorer for all faults has to trade these off against each other; so each fault class
/// with enough training cases gets its own *expert* scorer (trained on that class's cases), and
/// a *gate* (a multinomial logistic regression over the incident as a whole: how strongly some
/// candidate leads on each detector) weighs the experts: `P(c) = Σₖ P(class k | incident) ·
/// softmax(expertₖ)(c)`. The score is `ln P(c)`. With fewer than two experts, the pooled scorer
/// (trained on every case) scores alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorer {
    /// Trained on every case; used when there is no gate.
    pub pooled: Linear,
    /// One scorer per fault class with at least [`MIN_EXPERT_CASES`] training cases.
    pub experts: Vec<(FaultType, Linear)>,
    /// Weighs the experts (one output per expert, same order); `None` with fewer than two.
    pub gate: Option<Linear>,
}

/// The incident-level features the gate reads: per detector, the strongest strength and the
/// largest lead any candidate has.
fn incident_features(rows: &[[f64; FEATURE_COUNT]]) -> Vec<f64> {
    let mut out = vec![0.0f64; 2 * Detector::COUNT];
    for r in rows {
        for d in 0..Detector::COUNT {
            out[d] = out[d].max(r[d]);
            out[Detector::COUNT + d] = out[Detector::COUNT + d].max(r[2 * Detector::COUNT + d]);
        }
    }
    out
}

impl Scorer {
    /// Scores of every row (candidate) of one incident.
    pub fn scores(&self, rows: &[[f64; FEATURE_COUNT]]) -> Vec<f64> {
        let linear = |l: &Linear| -> Vec<f64> { rows.iter().map(|r| l.outputs(r)[0]).collect() };
        let Some(gate) = &self.gate else {
            return linear(&self.pooled);
        };
        let weights = explain::softmax(&gate.outputs(&incident_features(rows)), 1.0);
        let mut mixture = vec![0.0; rows.len()];
        for ((_, expert), w) in self.experts.iter().zip(weights) {
            for (m, p) in mixture
                .iter_mut()
                .zip(explain::softmax(&linear(expert), 1.0))
            {
                *m += w * p;
            }
        }
        mixture.into_iter().map(|p| p.max(1e-300).ln()).collect()
    }

    /// The gate's belief in each expert's fault class for an incident, if there is a gate.
    pub fn classes(&self, rows: &[[f64; FEATURE_COUNT]]) -> Option<Vec<(FaultType, f64)>> {
        let gate = self.gate.as_ref()?;
        let weights = explain::softmax(&gate.outputs(&incident_features(rows)), 1.0);
        Some(self.experts.iter().map(|(c, _)| *c).zip(weights).collect())
    }
}

/// Fits the pooled scorer, the experts and the gate on `examples`.
fn fit_ranker(examples: &[&Example], params: &TrainParams) -> Result<Scorer, TrainError> {
    let pooled = fit_scorer(examples, params)?;
    let mut by_class: std::collections::BTreeMap<FaultType, Vec<&Example>> = Default::default();
    for e in examples.iter().filter(|e| e.truth.is_some()) {
        if let Some(class) = e.fault {
            by_class.entry(class).or_default().push(e);
        }
    }
    let mut experts = Vec::new();
    for (class, cases) in &by_class {
        if cases.len() >= MIN_EXPERT_CASES {
            experts.push((*class, fit_scorer(cases, params)?));
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
        for e in &by_class[class] {
            rows.push(incident_features(&features(&e.evidence)));
            targets.push(k);
        }
    }
    let gate = fit_multinomial(&rows, &targets, experts.len(), params)?;
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

fn fit_fault_classifier(
    examples: &[&Example],
    params: &TrainParams,
) -> Result<Option<FaultClassifier>, TrainError> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut classes: Vec<FaultType> = Vec::new();
    for e in examples {
        let (Some(truth), Some(fault)) = (e.truth, e.fault) else {
            continue;
        };
        let row = features(&e.evidence)[truth];
        rows.push(row[..Detector::COUNT].to_vec());
        classes.push(fault);
    }
    let mut distinct = classes.clone();
    distinct.sort();
    distinct.dedup();
    match distinct.len() {
        0 => return Ok(None),
        1 => {
            return Ok(Some(FaultClassifier {
                classes: distinct,
                model: None,
            }));
        }
        _ => {}
    }
    let targets: Vec<usize> = classes
        .iter()
        .map(|c| distinct.binary_search(c).expect("listed"))
        .collect();
    let model = fit_multinomial(&rows, &targets, distinct.len(), params)?;
    Ok(Some(FaultClassifier {
        classes: distinct,
        model: Some(model),
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

/// Trains a model on `examples`.
pub fn train(
    examples: &[Example],
    params: &TrainParams,
    settings: Settings,
    sources: Vec<String>,
) -> Result<LearnedModel, TrainError> {
    let usable: Vec<&Example> = examples.iter().filter(|e| e.truth.is_some()).collect();
    if usable.len() < 2 {
        return Err(TrainError::TooFewCases(usable.len()));
    }
    let scorer = fit_ranker(&usable, params)?;
    // The temperature comes from scores of cases each inner scorer did not see.
    let folds = params.calibration_folds.min(usable.len());
    let mut held_out: Vec<(Vec<f64>, usize)> = Vec::new();
    if folds >= 2 {
        for k in 0..folds {
            let train: Vec<&Example> = usable
                .iter()
                .enumerate()
                .filter(|(i, _)| fold_of(*i, folds) != k)
                .map(|(_, e)| *e)
                .collect();
            let inner = fit_ranker(&train, params)?;
            for (i, e) in usable.iter().enumerate() {
                if fold_of(i, folds) == k {
                    let scores = inner.scores(&features(&e.evidence));
                    held_out.push((scores, e.truth.expect("usable")));
                }
            }
        }
    }
    let temperature = fit_temperature(&held_out);
    let fault = fit_fault_classifier(&usable, params)?;
    let rows = usable.iter().map(|e| e.evidence.candidates.len()).sum();
    let mut model = LearnedModel {
        format: FORMAT,
        version: String::new(),
        settings,
        features: feature_names(),
        scorer,
        temperature,
        fault,
        unknown_threshold: params.unknown_threshold,
        provenance: Provenance {
            sources,
            cases: usable.len(),
            rows,
            figures: Default::default(),
        },
    };
    model.version = version_of(&model);
    Ok(model)
}

/// A short content hash of a model's weights and settings.
pub fn version_of(model: &LearnedModel) -> String {
    let text = serde_json::to_string(&(
        &model.settings,
        &model.scorer,
        model.temperature,
        &model.fault,
    ))
    .expect("serialises");
    // FNV-1a: stable across builds and platforms, enough to tell models apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

/// Out-of-fold diagnoses of every example by `folds`-fold cross-validation by case: each
/// example is diagnosed by a model trained on the other folds only. Examples whose cause is
/// not a candidate are diagnosed too (by the model of their fold) but never trained on.
pub fn cross_validate(
    examples: &[Example],
    folds: usize,
    params: &TrainParams,
    settings: Settings,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Diagnosis>, TrainError> {
    if folds < 2 {
        return Err(TrainError::Folds(folds));
    }
    let mut out: Vec<Option<Diagnosis>> = vec![None; examples.len()];
    for k in 0..folds {
        let train_set: Vec<Example> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| fold_of(*i, folds) != k)
            .map(|(_, e)| e.clone())
            .collect();
        let model = train(&train_set, params, settings, Vec::new())?;
        for (i, e) in examples.iter().enumerate() {
            if fold_of(i, folds) == k {
                out[i] = Some(model.diagnose_evidence(&e.evidence));
            }
        }
        progress(k + 1);
    }
    Ok(out
        .into_iter()
        .map(|d| d.expect("every example is in a fold"))
        .collect())
}

#[cfg(test)]
mod tests;
