//! Commands on dataset files: `rootcause simulate` (fault cases from the simulator),
//! `rootcause datasets convert` (to RCAEval's layout, for the peers) and `rootcause datasets
//! topology` (the graph a dataset's cases run on).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use rootcause_datasets::{LoadOptions, simulator};

use crate::cases::{FormatArg, load, simulation_topology};

/// `rootcause simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Topology: a bundled example name, a YAML/JSON file, or `generated:N` for a generated
    /// estate of N services; by default the bundled topology `serve` starts with.
    #[arg(long, value_name = "NAME|FILE|generated:N", default_value = rootcause_topology::bundled::DEFAULT)]
    topology: String,
    /// Number of fault cases.
    #[arg(long, default_value_t = 100)]
    cases: usize,
    /// Random seed; the same seed gives the same cases, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory: new or empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Realism traits (coarse or sparse metrics, per-instance series, unseen metric names, no
    /// topology, no baseline, innocent releases, silent intermediaries, traces and logs, code
    /// faults): `default`, a realistic mix drawn per case, or `none`, the clean simulator.
    #[arg(long, value_parser = ["none", "default"], default_value = "default")]
    realism: String,
}

/// `rootcause datasets convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Target format.
    #[arg(long, value_enum)]
    to: ConvertTarget,
    /// Format of the dataset at PATH.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Dataset directory.
    path: PathBuf,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `rootcause datasets topology`.
#[derive(Debug, Args)]
pub struct DatasetTopologyArgs {
    /// Format of the dataset at PATH.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Dataset directory.
    path: PathBuf,
    /// Print JSON instead of YAML.
    #[arg(long)]
    json: bool,
}

/// Formats `datasets convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertTarget {
    /// RCAEval's `<service>_<fault>/<n>/data.csv` layout, read by RCAEval's own methods.
    Rcaeval,
}

/// Runs `rootcause simulate`.
pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let (system, topology) = simulation_topology(&args.topology, args.seed)?;
    // Cases of an earlier run left beside new ones would be evaluated with them.
    if std::fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty: simulate into a new or empty directory",
            args.out.display()
        );
    }
    let realism = match args.realism.as_str() {
        "none" => simulator::Realism::none(),
        _ => simulator::Realism::default(),
    };
    let options = simulator::Options {
        cases: args.cases,
        seed: args.seed,
        realism,
        ..simulator::Options::default()
    };
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "simulating {} cases on {} services",
        args.cases,
        topology.service_count()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let cases = simulator::simulate(&topology, &system, &options);
    simulator::write(&args.out, &topology.to_document(), &cases)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    spinner.finish_and_clear();
    println!(
        "{} cases on {} ({} services) written to {} in {:.2} s (seed {}, realism {})",
        cases.len(),
        system,
        topology.service_count(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.seed,
        args.realism
    );
    Ok(())
}

/// Runs `rootcause datasets convert`.
pub fn convert(args: &ConvertArgs) -> anyhow::Result<()> {
    let (cases, _) = load(args.format, &args.path, &LoadOptions::default())?;
    match args.to {
        ConvertTarget::Rcaeval => {
            let summary = rootcause_datasets::rcaeval::write(&args.out, &cases)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
            println!(
                "{} cases ({} unlabelled) written to {} in RCAEval's layout: {} data.csv columns; \
                 {} call-edge series not written (the format has no place for them); {} services \
                 and {} columns renamed to fit its naming",
                summary.cases,
                summary.unlabelled,
                args.out.display(),
                summary.columns,
                summary.edges_skipped,
                summary.renamed_services,
                summary.renamed_columns,
            );
        }
    }
    Ok(())
}

/// Runs `rootcause datasets topology`: the graph the dataset's cases run on (learned from its
/// traces for Nezha, as written for simulated cases), ready for `serve --topology`.
pub fn dataset_topology(args: &DatasetTopologyArgs) -> anyhow::Result<()> {
    let (cases, _) = load(args.format, &args.path, &LoadOptions::default())?;
    let topology = cases
        .iter()
        .find_map(|c| c.topology.as_ref())
        .with_context(|| {
            format!(
                "{} holds no topology (RCAEval cases carry none)",
                args.path.display()
            )
        })?;
    let document = topology.to_document();
    if args.json {
        println!("{}", rootcause_topology::to_json(&document));
    } else {
        print!("{}", rootcause_topology::to_yaml(&document));
    }
    Ok(())
}
