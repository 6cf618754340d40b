//! The stored model: its linear parts (the scorer, the fault classifier, the action model),
//! the model file's format, its checks on loading, and the version hash that names it.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{COLD_START_FEATURE, FEATURE_COUNT, feature_names};
use crate::diagnosis::FaultType;
use crate::evidence::{Detector, Settings};
use crate::explain;

/// Format version of a model file; a file of another version is refused.
pub const FORMAT: u32 = 1;

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
    /// to output 0: the prior a ranking scorer starts from and corrects (see
    /// [`fit_scorer`](super::pairwise::fit_scorer)); 0 for the classifiers.
    #[serde(default)]
    pub prior: f64,
}

impl Linear {
    pub(super) fn standardiser(rows: &[&[f64]]) -> (Vec<f64>, Vec<f64>) {
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

    pub(super) fn matrix(&self, rows: &[&[f64]]) -> Array2<f64> {
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

/// A [`Linear`] with its standardisation folded into the weights, for scoring many rows with
/// one model: `w·(x − m)/s + b` becomes `(w/s)·x + (b − (w/s)·m)`, one dot product per output
/// instead of a subtraction, a division and a product per feature. Equal to
/// [`Linear::outputs`] up to rounding.
pub(super) struct Folded<'a> {
    linear: &'a Linear,
    weights: Vec<Vec<f64>>,
    intercepts: Vec<f64>,
}

impl Linear {
    pub(super) fn folded(&self) -> Folded<'_> {
        let weights: Vec<Vec<f64>> = self
            .weights
            .iter()
            .map(|w| w.iter().zip(&self.scale).map(|(w, s)| w / s).collect())
            .collect();
        let intercepts = weights
            .iter()
            .zip(&self.intercepts)
            .map(|(w, b)| b - w.iter().zip(&self.mean).map(|(w, m)| w * m).sum::<f64>())
            .collect();
        Folded {
            linear: self,
            weights,
            intercepts,
        }
    }
}

impl Folded<'_> {
    /// Output `k` of `row`.
    fn output(&self, k: usize, row: &[f64]) -> f64 {
        let mut out = self.intercepts[k] + dot(&self.weights[k], row);
        if k == 0
            && self.linear.prior != 0.0
            && let Some(cold) = row.get(COLD_START_FEATURE)
        {
            out += self.linear.prior * cold;
        }
        out
    }

    /// Every output of `row`.
    pub(super) fn outputs(&self, row: &[f64]) -> Vec<f64> {
        (0..self.weights.len())
            .map(|k| self.output(k, row))
            .collect()
    }
}

/// `a · b` over their common length, summed in four independent lanes: a single running sum
/// of a row's products waits for each addition in turn, and scoring a large incident is tens
/// of thousands of such sums.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
    let tail: f64 = a
        .remainder()
        .iter()
        .zip(b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f64; 4];
    for (x, y) in a.zip(b) {
        for k in 0..4 {
            lanes[k] += x[k] * y[k];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
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
        self.classify_rows(std::slice::from_ref(&row))
            .pop()
            .flatten()
    }

    /// [`FaultClassifier::classify`] of every row (every candidate of an incident).
    pub fn classify_rows(&self, rows: &[impl AsRef<[f64]>]) -> Vec<Option<(FaultType, f64)>> {
        let Some(linear) = &self.model else {
            let only = self.classes.first().map(|&c| (c, 1.0));
            return vec![only; rows.len()];
        };
        let folded = linear.folded();
        rows.iter()
            .map(|row| {
                let p = explain::softmax(&folded.outputs(&row.as_ref()[..Detector::COUNT]), 1.0);
                p.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, &p)| (self.classes[i], p))
            })
            .collect()
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
    /// One scorer per fault class with at least [`MIN_EXPERT_CASES`](super::MIN_EXPERT_CASES)
    /// training cases.
    pub experts: Vec<(FaultType, Linear)>,
    /// Weighs the experts (one output per expert, same order); `None` with fewer than two.
    pub gate: Option<Linear>,
}

/// The incident-level features the gate reads: per detector, the strongest strength and the
/// largest lead any candidate has.
pub(super) fn incident_features(rows: &[[f64; FEATURE_COUNT]]) -> Vec<f64> {
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
        let linear = |l: &Linear| -> Vec<f64> {
            let folded = l.folded();
            rows.iter().map(|r| folded.output(0, r)).collect()
        };
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
