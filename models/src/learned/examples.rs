//! What training reads: labelled examples, the knobs of training, why it fails, and an example
//! prepared once for every fit that reads it.

use serde::{Deserialize, Serialize};

use super::{FEATURE_COUNT, features};
use crate::case::Case;
use crate::diagnosis::FaultType;
use crate::evidence::{self, Evidence, Settings};

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
/// cross-validation by case lifts AC@1 from the cold-start's 0.711 to 0.822 on Train Ticket
/// and from 0.891 to 0.951 on Bookinfo at 30).
pub const DEFAULT_PRIOR_ALPHA: f64 = 30.0;

/// [`TrainParams::prior_alpha`] of a model for systems it never saw, as the bundled one: in the
/// leave-one-system-out table, corrections learned on the other systems cost accuracy on the
/// one left out (Train Ticket AC@1 0.622 at 10,000 and 0.667 at 100,000 against the
/// cold-start's 0.711; Bookinfo 0.880 at 10,000 against 0.886); at 1,000,000 the learned ranking
/// is the cold-start's, and what such a model adds is what carries across systems: calibrated
/// confidences, fault types and actions.
pub const CROSS_SYSTEM_PRIOR_ALPHA: f64 = 1_000_000.0;

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
