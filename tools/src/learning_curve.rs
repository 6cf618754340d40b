//! `rootcause learning-curve`: how ranking improves as resolved incidents accumulate.
//!
//! A simulated estate's fault history grows to 0, 10, 50, 200 and 1,000 resolved incidents
//! (one fixed seed); after each step a training job runs exactly as the service runs one
//! ([`training::run`]: held-out slice, cross-validation, promotion gate against the model that
//! was active), and both the model it trained and the model active after the gate are scored
//! on the same test incidents of that estate (another fixed seed), which no model trains on.
//! With no history the service ranks with the cold-start scorer; the bundled model (trained
//! elsewhere, never on this estate) is shown for reference.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rootcause_models::cold_start::ColdStart;
use rootcause_models::evaluation::Report;
use rootcause_models::evidence;
use rootcause_models::learned::{self, Example};
use rootcause_models::ranker::Ranker;
use rootcause_models::rankers;

use crate::cases::{simulated_cases, simulation_topology};
use rootcause::learning::training::{self, HistoryExample, TrainRequest};
use rootcause_datasets::simulator::Realism;

/// `rootcause learning-curve`.
#[derive(Debug, Args)]
pub struct CurveArgs {
    /// The estate: `generated:N`, a bundled example or a topology file.
    #[arg(long, default_value = "generated:200")]
    pub topology: String,
    /// Seed of the estate (for `generated:N`) and of the history.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Test incidents (simulated with seed + 1000, never trained on).
    #[arg(long, default_value_t = 300)]
    pub test_cases: usize,
    /// History sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,10,50,200,1000")]
    pub sizes: Vec<usize>,
}

/// Cases of `topology` simulated with `seed`, as history rows with their evidence.
fn simulate(
    topology: &rootcause_topology::Topology,
    system: &str,
    cases: usize,
    seed: u64,
) -> Vec<HistoryExample> {
    simulated_cases(topology, system, cases, seed, Realism::none())
        .into_iter()
        .map(|case| {
            let evidence = evidence::extract(&case, &Default::default());
            let label = case.label.expect("simulated cases are labelled");
            let example = Example::from_evidence(
                evidence,
                &label.root_cause,
                &label.fault_type,
                label.action.clone(),
            );
            HistoryExample {
                key: format!("incident:{}", case.id),
                label,
                example,
            }
        })
        .collect()
}

/// AC@k of `ranker` on the test cases (from their evidence).
fn score(ranker: &dyn Ranker, test: &[HistoryExample]) -> Report {
    let diagnoses: Vec<_> = test
        .iter()
        .map(|t| {
            ranker
                .diagnose_evidence(&t.example.evidence)
                .expect("the rankers compared rank evidence")
        })
        .collect();
    let rows: Vec<&HistoryExample> = test.iter().collect();
    training::report(ranker.name(), &rows, &diagnoses)
}

/// Runs the learning curve and prints its table.
pub fn run(args: &CurveArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (system, topology) = simulation_topology(&args.topology, args.seed)?;
    let largest = args.sizes.iter().copied().max().unwrap_or(0);
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "simulating {} history and {} test incidents on {} services",
        largest,
        args.test_cases,
        topology.service_count()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let history = simulate(&topology, &system, largest, args.seed);
    let test = simulate(&topology, &system, args.test_cases, args.seed + 1000);
    spinner.finish_and_clear();
    let bundled = score(&*rankers::default_ranker(), &test);

    let progress = ProgressBar::new(args.sizes.len() as u64).with_message("training");
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .context("progress template")?,
    );
    let mut active: Arc<dyn Ranker> = Arc::new(ColdStart::default());
    let mut rows = Vec::new();
    for &size in &args.sizes {
        progress.set_message(format!("{size} resolved incidents"));
        let (trained, promoted, trained_cases) = if size == 0 {
            (None, false, 0)
        } else {
            match training::run(
                &history[..size],
                &*active,
                &TrainRequest::default(),
                &|_, _| {},
            ) {
                Ok(run) => {
                    let cases = run.figures.training_cases;
                    let model: Arc<dyn Ranker> = Arc::new(learned::Learned { model: run.model });
                    let report = score(&*model, &test);
                    if run.decision.promote {
                        active = model;
                    }
                    (Some(report), run.decision.promote, cases)
                }
                Err(error) => {
                    tracing::debug!(%error, size, "too little history to train");
                    (None, false, 0)
                }
            }
        };
        rows.push((
            size,
            trained_cases,
            trained,
            promoted,
            score(&*active, &test),
        ));
        progress.inc(1);
    }
    progress.finish_and_clear();

    println!(
        "learning curve on {} ({} services): test {} incidents (seed {}), history seed {}",
        system,
        topology.service_count(),
        test.len(),
        args.seed + 1000,
        args.seed
    );
    println!(
        "{:>9}  {:>7}  {:>24}  {:>8}  {:>24}  {:>24}  active",
        "resolved",
        "trained",
        "trained model @1/@3/avg5",
        "promoted",
        "active model @1/@3/avg5",
        "chance @1/@3/avg5",
    );
    let triple = |r: &Report| {
        format!(
            "{:.3} / {:.3} / {:.3}",
            r.overall.ac1, r.overall.ac3, r.overall.avg5
        )
    };
    let chance = |r: &Report| {
        format!(
            "{:.3} / {:.3} / {:.3}",
            r.chance.ac1, r.chance.ac3, r.chance.avg5
        )
    };
    for (size, trained_cases, trained, promoted, active) in &rows {
        println!(
            "{:>9}  {:>7}  {:>24}  {:>8}  {:>24}  {:>24}  {}",
            size,
            trained_cases,
            trained.as_ref().map_or_else(|| "-".to_owned(), triple),
            if *size == 0 {
                "-"
            } else if *promoted {
                "yes"
            } else {
                "no"
            },
            triple(active),
            chance(active),
            active.ranker,
        );
    }
    println!(
        "bundled model (trained on other data, never on this estate): {}",
        triple(&bundled)
    );
    println!(
        "(\"trained\": history rows trained on, the held-out fifth excluded; \"active\": the model \
         ranking after the promotion gate; {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
