//! The `rootcause` command line: `serve` starts the service of the [`rootcause`] crate; every other
//! subcommand is a tool around it.
//!
//! - [`cli`]: the arguments and the dispatch (`serve`, `config`, `topology ...`, `bench ...`,
//!   `eval`, `train`, `simulate`, `datasets ...`, `history import`, `models ...`, `tokens ...`).
//! - [`cases`]: labelled cases for the offline commands: formats, loading, simulation, evidence.
//! - [`eval`]: `rootcause eval`, a ranker's accuracy on labelled cases.
//! - [`yardstick`]: `rootcause eval --loso`, leave-one-system-out and telemetry ablation tables.
//! - [`train`]: `rootcause train`, a model file from datasets or a job of a running service.
//! - [`datasets`]: `rootcause simulate`, `datasets convert` and `datasets topology`.
//! - [`learning`]: `history import` and `models list|show|activate` against a running service.
//! - [`learning_curve`]: `rootcause learning-curve`, accuracy as resolved incidents accumulate.
//! - [`tokens`]: `rootcause tokens create|list|revoke`, API tokens in the service's database.
//! - [`traces_import`]: `rootcause topology import-traces`, a topology learned from OTLP/JSON.
//! - [`allocator`]: the allocator's statistics as gauges (`serve`).
//! - [`bench`](mod@bench): `rootcause bench ingest|ranking|training`.

pub mod allocator;
pub mod bench;
pub mod cases;
pub mod cli;
pub mod datasets;
pub mod eval;
pub mod learning;
pub mod learning_curve;
pub mod risks;
pub mod tokens;
pub mod traces_import;
pub mod train;
pub mod yardstick;
