//! The learned ranker: a logistic regression over (incident, candidate) rows, trained pairwise
//! (the cause against each other candidate of its incident, see [`fit_scorer`]), with a softmax
//! temperature fitted on held-out cases so that confidences are probabilities, and multinomial
//! logistic regressions (linfa) naming the fault type and the action that resolves it.
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
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::diagnosis::{Diagnosis, FaultType};
use crate::evidence::{self, Detector, Evidence, Settings};
use crate::explain;
use crate::ranker::{Ranker, Ranking};

/// Format version of a model file; a file of another version is refused.
pub const FORMAT: u32 = 1;

/// Version of what [`features`] computes from evidence: bump it whenever a row changes, so
/// stored rows or figures of another schema are not mixed with this one's.
pub const FEATURE_SCHEMA: u32 = 2;

/// Number of graph-context features after the per-detector ones.
const GRAPH_FEATURES: usize = 7;
/// Number of features that summarise all detectors: the best lead, the best local lead and
/// the cold-start score.
const SUMMARY_FEATURES: usize = 3;

/// Length of a feature row.
pub const FEATURE_COUNT: usize = 3 * Detector::COUNT + SUMMARY_FEATURES + GRAPH_FEATURES;

/// Index of the cold-start score among the features: the prior of the ranking scorer.
pub const COLD_START_FEATURE: usize = 3 * Detector::COUNT + 2;

/// Weight of the cold-start score in a trained scorer before any correction: the inverse of the
/// cold-start's own softmax temperature, so an untrained correction ranks as the cold-start
/// scorer does and gives its confidences.
pub const PRIOR_WEIGHT: f64 = 1.0 / crate::cold_start::TEMPERATURE;

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
            "cold_start",
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
    // The training-free score: the prior every scorer starts from (see [`fit_scorer`]).
    let prior = crate::cold_start::ColdStart::default().score(evidence);
    evidence
        .candidates
        .iter()
        .zip(&strength)
        .zip(&place)
        .zip(&prior)
        .map(|(((c, s), place), &(prior, _))| {
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
            let g = &c.graph;
            let tail = [
                best_lead,
                best_local_lead,
                prior,
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
    /// [`train`] (at least 2 are used).
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
    /// Weight of the cold-start score (the row's [`COLD_START_FEATURE`], unstandardised) added
    /// to output 0: the prior a ranking scorer starts from and corrects (see [`fit_scorer`]); 0
    /// for the classifiers.
    #[serde(default)]
    pub prior: f64,
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
        let mut out: Vec<f64> = self
            .weights
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
            .collect();
        if self.prior != 0.0
            && let (Some(first), Some(cold)) = (out.first_mut(), row.get(COLD_START_FEATURE))
        {
            *first += self.prior * cold;
        }
        out
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

/// What resolved past incidents, from the detector strengths of their cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionModel {
    /// The actions, sorted, in output order.
    pub actions: Vec<String>,
    /// Multinomial logistic regression (one output per action); `None` when training saw one
    /// action only, which is then always the answer.
    pub model: Option<Linear>,
}

impl ActionModel {
    /// Every action with its probability for a cause with these features, most likely first.
    pub fn suggest(&self, row: &[f64]) -> Vec<(String, f64)> {
        let p = match &self.model {
            None => vec![1.0; self.actions.len().min(1)],
            Some(linear) => explain::softmax(&linear.outputs(&row[..Detector::COUNT]), 1.0),
        };
        let mut out: Vec<(String, f64)> = self.actions.iter().cloned().zip(p).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
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
    /// What resolved incidents like this one; absent from files trained before actions were
    /// recorded, which load as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<ActionModel>,
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
        if let Some(actions) = &self.actions {
            if actions.actions.is_empty() || actions.actions.iter().any(String::is_empty) {
                return Err("actions: no actions, or an action without a name".into());
            }
            if actions.actions.windows(2).any(|w| w[0] >= w[1]) {
                return Err("actions: names must be sorted and distinct".into());
            }
            match &actions.model {
                Some(model) => linear(
                    "actions.model",
                    model,
                    Detector::COUNT,
                    actions.actions.len(),
                )?,
                None if actions.actions.len() == 1 => {}
                None => return Err("actions: several actions need a model".into()),
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
        self.diagnose_rows(evidence, &features(evidence))
    }

    /// The diagnosis of evidence whose feature rows are already computed.
    fn diagnose_rows(&self, evidence: &Evidence, rows: &[[f64; FEATURE_COUNT]]) -> Diagnosis {
        let scores = self.scores(rows);
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

    /// The actions that resolved past incidents whose cause looked like candidate `candidate`
    /// of `evidence`, with their probabilities, most likely first. Empty without an action
    /// model or for a candidate that is not there.
    pub fn suggest_actions(&self, evidence: &Evidence, candidate: usize) -> Vec<(String, f64)> {
        let Some(actions) = &self.actions else {
            return Vec::new();
        };
        match features(evidence).get(candidate) {
            Some(row) => actions.suggest(row),
            None => Vec::new(),
        }
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

    fn diagnose_evidence(&self, evidence: &Evidence) -> Option<Diagnosis> {
        Some(self.model.diagnose_evidence(evidence))
    }

    fn evidence_settings(&self) -> Option<Settings> {
        Some(self.model.settings)
    }

    fn action_probabilities(
        &self,
        evidence: &Evidence,
        candidates: &[usize],
    ) -> Vec<Vec<(String, f64)>> {
        let Some(actions) = &self.model.actions else {
            return Vec::new();
        };
        // The action model reads a candidate's own detector strengths only (the first
        // `Detector::COUNT` features), so the rows of the few candidates asked for are computed
        // alone rather than the whole feature matrix.
        candidates
            .iter()
            .map(|&i| match evidence.candidates.get(i) {
                Some(c) => actions.suggest(&c.scores.map(|z| z.max(0.0).ln_1p())),
                None => Vec::new(),
            })
            .collect()
    }
}

/// An example as the fits read it: its feature rows, computed once for every fit that reads
/// them (the final model and each fold's).
struct Prepared<'a> {
    rows: Vec<[f64; FEATURE_COUNT]>,
    truth: Option<usize>,
    fault: Option<FaultType>,
    action: Option<&'a str>,
}

impl<'a> Prepared<'a> {
    fn of(example: &'a Example) -> Prepared<'a> {
        Prepared {
            rows: features(&example.evidence),
            truth: example.truth,
            fault: example.fault,
            action: example.action.as_deref(),
        }
    }

    /// The feature row of the true cause, for cases whose cause is a candidate.
    fn cause(&self) -> Option<&[f64; FEATURE_COUNT]> {
        self.truth.and_then(|t| self.rows.get(t))
    }
}

/// Fits the root-cause scorer on `cases` (those whose cause is a candidate).
///
/// Pairwise (RankNet-style): for each case and each other candidate, one row holds the cause's
/// standardised features minus the other's; a logistic regression without intercept then
/// learns weights `w` such that `w · x` orders causes above the rest of *their own* incident.
/// Comparing within incidents is what a ranking needs: a pointwise model also spends its few
/// parameters separating busy incidents from quiet ones, which says nothing about which
/// candidate caused either.
///
/// Without an intercept, a pair written the other way round (the other minus the cause,
/// labelled "below") has the same loss as the pair itself, so each pair is written once at
/// half the penalty: the optimum of every pair written both ways at the full penalty, at half
/// the rows.
fn fit_scorer(cases: &[&Prepared], params: &TrainParams) -> Result<Linear, TrainError> {
    let cases: Vec<(&[[f64; FEATURE_COUNT]], usize)> = cases
        .iter()
        .filter_map(|c| c.truth.map(|t| (&c.rows[..], t)))
        .collect();
    let refs: Vec<&[f64]> = cases
        .iter()
        .flat_map(|(rows, _)| rows.iter().map(|r| &r[..]))
        .collect();
    let (mean, scale) = Linear::standardiser(&refs);
    let pairs: usize = cases.iter().map(|(rows, _)| rows.len() - 1).sum();
    if pairs == 0 {
        return Err(TrainError::Fit(
            "no case has a candidate besides its cause: nothing to rank".into(),
        ));
    }
    let mut x = Array2::<f64>::zeros((pairs, FEATURE_COUNT));
    let mut offsets = Array1::<f64>::zeros(pairs);
    let mut at = 0;
    for (rows, truth) in &cases {
        let cause = &rows[*truth];
        for (i, other) in rows.iter().enumerate() {
            if i == *truth {
                continue;
            }
            for j in 0..FEATURE_COUNT {
                x[[at, j]] = (cause[j] - other[j]) / scale[j];
            }
            offsets[at] = PRIOR_WEIGHT * (cause[COLD_START_FEATURE] - other[COLD_START_FEATURE]);
            at += 1;
        }
    }
    let weights = fit_pairwise(
        &x,
        &offsets,
        params.prior_alpha / 2.0,
        params.max_iterations,
    )?;
    Ok(Linear {
        mean,
        scale,
        weights: vec![weights],
        intercepts: vec![0.0],
        prior: PRIOR_WEIGHT,
    })
}

/// `ln(1 + eˣ)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// `1 / (1 + e⁻ˣ)`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Minimises `Σᵢ ln(1 + e^(−(oᵢ + w·xᵢ))) + α/2 · |w|²` over the rows `xᵢ` of `x` (pairs
/// oriented so that `w · xᵢ > 0` is right), each with its fixed offset `oᵢ` (the prior's
/// margin), by Newton's method with a backtracking line search.
///
/// The loss is convex and, with a penalty, strictly so: Newton reaches the optimum to machine
/// precision in a dozen steps, each one pass to form the Hessian (`FEATURE_COUNT` is small), where
/// a quasi-Newton method needs hundreds of passes over the rows on these ill-conditioned
/// features (strength, place and lead of one detector move together) and may stop short.
fn fit_pairwise(
    x: &Array2<f64>,
    offsets: &Array1<f64>,
    alpha: f64,
    max_iterations: u64,
) -> Result<Vec<f64>, TrainError> {
    let width = x.ncols();
    let loss = |w: &Array1<f64>| -> f64 {
        (x.dot(w) + offsets)
            .iter()
            .map(|&z| softplus(-z))
            .sum::<f64>()
            + 0.5 * alpha * w.dot(w)
    };
    let mut w = Array1::<f64>::zeros(width);
    let mut current = loss(&w);
    for _ in 0..max_iterations.max(1) {
        let z = x.dot(&w) + offsets;
        // d/dz ln(1 + e⁻ᶻ) = −σ(−z); d²/dz² = σ(z) σ(−z).
        let slope = z.mapv(|z| -sigmoid(-z));
        let curvature = z.mapv(|z| sigmoid(z) * sigmoid(-z));
        // Row by row: the rows are contiguous, the columns of a transposed product are not.
        let mut gradient = &w * alpha;
        for (row, s) in x.rows().into_iter().zip(&slope) {
            gradient.scaled_add(*s, &row);
        }
        let weighted = x * &curvature.insert_axis(ndarray::Axis(1));
        let mut hessian = x.t().dot(&weighted);
        // A feature that never differs within a pair has no curvature; without a penalty the
        // tiny ridge keeps the system solvable and leaves its weight at 0.
        for j in 0..width {
            hessian[[j, j]] += alpha.max(1e-9);
        }
        let step = solve_spd(&hessian, &gradient).ok_or_else(|| {
            TrainError::Fit("the pairwise Hessian is not positive definite".into())
        })?;
        // Newton decrement: half of it estimates how far the loss is above its minimum.
        let decrement = gradient.dot(&step);
        if !decrement.is_finite() {
            return Err(TrainError::Fit("the pairwise fit diverged".into()));
        }
        if decrement < 1e-12 * (1.0 + current.abs()) {
            break;
        }
        let mut t = 1.0;
        loop {
            let candidate = &w - &(&step * t);
            let next = loss(&candidate);
            if next <= current - 1e-4 * t * decrement {
                w = candidate;
                current = next;
                break;
            }
            t *= 0.5;
            if t < 1e-10 {
                // No step decreases the loss any more: as close to the optimum as floating
                // point gets.
                return Ok(w.to_vec());
            }
        }
    }
    Ok(w.to_vec())
}

/// Solves `a · x = b` for a symmetric positive definite `a` by Cholesky decomposition; `None`
/// when `a` is not positive definite.
fn solve_spd(a: &Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    let n = b.len();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                let d = a[[i, i]] - sum;
                if d.is_nan() || d <= 0.0 {
                    return None;
                }
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - sum) / l[[j, j]];
            }
        }
    }
    let mut y = Array1::<f64>::zeros(n);
    for i in 0..n {
        let sum: f64 = (0..i).map(|k| l[[i, k]] * y[k]).sum();
        y[i] = (b[i] - sum) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let sum: f64 = (i + 1..n).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (y[i] - sum) / l[[i, i]];
    }
    Some(x)
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

/// Fits the pooled scorer, the experts and the gate on `cases`.
fn fit_ranker(cases: &[&Prepared], params: &TrainParams) -> Result<Scorer, TrainError> {
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

fn fit_fault_classifier(
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

fn fit_actions(
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

/// A short content hash of a model's weights and settings.
pub fn version_of(model: &LearnedModel) -> String {
    let mut text = serde_json::to_string(&(
        &model.settings,
        &model.scorer,
        model.temperature,
        &model.fault,
    ))
    .expect("serialises");
    // Hashed only when present, so models trained before actions keep their version.
    if let Some(actions) = &model.actions {
        text.push_str(&serde_json::to_string(actions).expect("serialises"));
    }
    // FNV-1a: stable across builds and platforms, enough to tell models apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

mod training;
pub use training::{ActionFigures, Stage, Validated, cross_validate, train, train_validated};

#[cfg(test)]
mod tests;
