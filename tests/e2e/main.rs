//! End-to-end tests: the real binary, started as a process, over real sockets, on SQLite and on
//! PostgreSQL. One test binary, one module per area.

mod actions;
mod cli;
mod console;
mod datasets;
mod hardening;
mod ingest;
mod learning;
mod prometheus;
mod ranking;
mod readme;
mod risks;
mod serve;
mod traces;
