//! The learned ranker: a logistic regression over (incident, candidate) rows, trained pairwise
//! (the cause against each other candidate of its incident, see
//! [`fit_scorer`](pairwise::fit_scorer)), with a softmax temperature fitted on held-out cases
//! so that confidences are probabilities, and multinomial logistic regressions (linfa) naming
//! the fault type and the action that resolves it.
//!
//! Rows are [`features`] of a candidate's evidence: per detector the strength `ln(1 + z)`, that
//! strength relative to the case's strongest candidate on the same detector, and its lead over
//! the strongest *other* candidate (a root cause stands out against the rest of the system at
//! that moment, whatever the system's noise level), then the graph context. Nothing in a row names a service, a metric or a dataset.
//!
//! Confidence: the scores of one incident's candidates go through a softmax at temperature `T`
//! (one root cause per incident). `T` is fitted by maximum likelihood of the true cause on
//! out-of-fold scores, never on scores of cases the scorer was trained on.
//!
//! One job per file: `features` (the rows), `model` (the stored model and its file), `predict`
//! (a model applied to evidence, and the [`Learned`] ranker), `fit` (examples, knobs and the
//! fits of the classifiers and the mixture), `pairwise` (the ranking scorer's fit) and
//! `training` (one run of cross-validation and the final model).

mod examples;
mod features;
mod fit;
mod model;
mod pairwise;
mod predict;
mod training;

pub use examples::{
    CROSS_SYSTEM_PRIOR_ALPHA, DEFAULT_PRIOR_ALPHA, Example, TrainError, TrainParams,
};
pub use features::{COLD_START_FEATURE, FEATURE_COUNT, FEATURE_SCHEMA, feature_names, features};
pub use fit::{MIN_EXPERT_CASES, fit_temperature, fold_of, train_actions};
pub use model::{
    ActionModel, FORMAT, FaultClassifier, LearnedModel, Linear, ModelFileError, Provenance, Scorer,
    version_of,
};
pub use pairwise::PRIOR_WEIGHT;
pub use predict::Learned;
pub use training::{ActionFigures, Stage, Validated, cross_validate, train, train_validated};

#[cfg(test)]
mod tests;
