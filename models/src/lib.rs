//! Models of rootcause: how likely root causes are ranked and how well the ranking does.
//!
//! - [`case`]: what a ranker sees of one incident, whatever the data came from.
//! - [`ablation`]: a case with a source of evidence (logs, traces, alerts, graph, baseline) withheld.
//! - [`history`]: past incidents as analysts import them (JSON lines), and their cases.
//! - [`ranker`]: the [`Ranker`](ranker::Ranker) interface.
//! - [`rankers`]: every ranker by name, the configured one, the bundled model.
//! - [`accuracy`]: AC@k and Avg@k with pessimistic ties and chance level.
//! - [`evaluation`]: a ranker's report on labelled cases, overall and per fault type.
//! - [`stats`]: quantiles and other small statistics, computed one way everywhere.
//! - [`evidence`]: per-candidate features from fault mechanisms, graph context, findings.
//! - [`cold_start`]: the training-free scorer.
//! - [`calibration`]: reliability tables: do confidences mean what they say?
//! - [`learned`]: the learned ranker (linfa), its calibration, fault classifier and model file.
//! - [`diagnosis`]: ranked hypotheses as a responder reads them.
//! - [`explain`]: confidences, roles, sentences and paths of a diagnosis.
//! - [`baselines`]: N-Sigma and BARO, the reference rankers of the evaluation table.
//!
//! Free of I/O so everything here is tested and replayed without a server.

pub mod ablation;
pub mod accuracy;
pub mod actions;
pub mod baselines;
pub mod calibration;
pub mod case;
pub mod cold_start;
pub mod diagnosis;
pub mod evaluation;
pub mod evidence;
pub mod explain;
pub mod history;
pub mod learned;
pub mod ranker;
pub mod rankers;
pub mod stats;
