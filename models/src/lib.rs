//! Models of rootcause: how likely root causes are ranked and how well the ranking does.
//!
//! - [`case`]: what a ranker sees of one incident, whatever the data came from.
//! - [`ranker`]: the [`Ranker`](ranker::Ranker) interface.
//! - [`metrics`]: AC@k and Avg@k with pessimistic ties and chance level.
//! - [`evaluation`]: a ranker's report on labelled cases, overall and per fault type.
//! - [`stats`]: quantiles and other small statistics, computed one way everywhere.
//! - [`baselines`]: N-Sigma and BARO, the reference rankers of the evaluation table.
//!
//! Free of I/O so everything here is tested and replayed without a server.

pub mod baselines;
pub mod case;
pub mod evaluation;
pub mod metrics;
pub mod ranker;
pub mod stats;
