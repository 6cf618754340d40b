//! `rootcause bench training`: the time a training job takes on a large fault history.
//!
//! Simulates the history (not timed against the target), imports it into a scratch SQLite
//! database the way `rootcause history import` does, then runs the training job's own code
//! ([`learning::train_on_history`] and [`learning::store_model`]: read the history, train with
//! cross-validation by case, score the held-out slice against the active model, store the
//! version) and reports each stage. The target (DESIGN, issue [learning]) is the job: ≤ 30 s
//! for 10,000 incidents on this 2-core machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rootcause_models::rankers;

use crate::cases::{simulated_cases, simulation_topology};
use rootcause::clock::Clock;
use rootcause::config::StoreOptions;
use rootcause::learning;
use rootcause::learning::import::case_row;
use rootcause::learning::training::TrainRequest;
use rootcause::store::Store;
use rootcause_datasets::simulator::Realism;

/// `rootcause bench training`.
#[derive(Debug, Args)]
pub struct TrainingOptions {
    /// Historical incidents.
    #[arg(long, default_value_t = 10_000)]
    pub incidents: usize,
    /// The estate they happened on: a bundled example, a topology file or `generated:N`.
    #[arg(long, default_value = rootcause_topology::bundled::DEFAULT)]
    pub topology: String,
    /// Seed of the simulated history.
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
    /// Training runs to time (the median is the figure).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

/// Runs the benchmark and prints its table.
pub fn training(options: &TrainingOptions) -> anyhow::Result<()> {
    let runtime = super::report::runtime()?;
    runtime.block_on(run(options))
}

async fn run(options: &TrainingOptions) -> anyhow::Result<()> {
    let (system, topology) = simulation_topology(&options.topology, options.seed)?;
    let services = topology.service_count();
    let started = Instant::now();
    let incidents = options.incidents;
    let seed = options.seed;
    let cases = tokio::task::spawn_blocking(move || {
        simulated_cases(&topology, &system, incidents, seed, Realism::none())
    })
    .await?;
    let simulate = started.elapsed();

    let started = Instant::now();
    let rows = tokio::task::spawn_blocking(move || {
        cases
            .iter()
            .filter_map(|case| case_row(case, "bench"))
            .collect::<Vec<_>>()
    })
    .await?;
    let extract = started.elapsed();
    let bytes: usize = rows.iter().map(|r| r.evidence.len()).sum();

    let directory = tempfile::tempdir().context("scratch directory")?;
    let url = format!(
        "sqlite://{}",
        directory.path().join("bench.db").to_string_lossy()
    );
    let store = Store::open(&url, &StoreOptions::default()).await?;
    let started = Instant::now();
    for chunk in rows.chunks(1000) {
        store
            .upsert_history(chunk, Clock::system().now_millis())
            .await?;
    }
    let import = started.elapsed();
    drop(rows);

    let mut runs: Vec<(Duration, Duration, Duration)> = Vec::new();
    let mut last = None;
    for _ in 0..options.runs.max(1) {
        let started = Instant::now();
        let (trained, _) = learning::train_on_history(
            &store,
            Arc::from(rankers::default_ranker()),
            TrainRequest::default(),
            Arc::new(|_: &str, _: f64| {}),
        )
        .await?;
        let trained_at = started.elapsed();
        learning::store_model(&store, &trained, None, Clock::system().now_millis()).await?;
        let total = started.elapsed();
        runs.push((trained_at, total - trained_at, total));
        last = Some(trained);
    }
    store.close().await;
    runs.sort_by_key(|r| r.2);
    let median = runs[runs.len() / 2];
    let trained = last.expect("at least one run");
    let seconds = |d: Duration| d.as_secs_f64();
    println!(
        "training benchmark: {} incidents on {} services (seed {}), median of {} run(s)",
        options.incidents,
        services,
        options.seed,
        runs.len()
    );
    println!("{:<52} {:>9}", "stage", "seconds");
    println!(
        "{:<52} {:>9.2}",
        "simulate the history (setup)",
        seconds(simulate)
    );
    println!(
        "{:<52} {:>9.2}",
        format!("extract evidence ({:.1} MB stored)", bytes as f64 / 1e6),
        seconds(extract)
    );
    println!("{:<52} {:>9.2}", "import into SQLite", seconds(import));
    println!(
        "{:<52} {:>9.2}",
        "job: read history, train + CV, held-out comparison",
        seconds(median.0)
    );
    println!(
        "{:<52} {:>9.2}",
        "job: store the model version",
        seconds(median.1)
    );
    println!(
        "{:<52} {:>9.2}  (target ≤ 30)",
        "training job total",
        seconds(median.2)
    );
    let cv = &trained.figures.cross_validation;
    println!(
        "trained on {} cases ({} rows, {} held out); CV AC@1 {:.3} Avg@5 {:.3} (chance {:.3} / {:.3}); {}",
        trained.figures.training_cases,
        trained.figures.training_rows,
        trained.figures.held_out_cases,
        cv.overall.ac1,
        cv.overall.avg5,
        cv.chance.ac1,
        cv.chance.avg5,
        trained.decision.reason
    );
    Ok(())
}
