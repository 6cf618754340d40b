//! Commands that work on datasets rather than on a running service: `rootcause eval` (a ranker's
//! accuracy on labelled cases), `rootcause simulate` (fault cases from the simulator) and
//! `rootcause datasets convert` (any supported format to RCAEval's, for the peers).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rootcause_datasets::{DatasetFormat, simulator};
use rootcause_models::case::Case;
use rootcause_models::evaluation::{CaseOutcome, Report, Withheld, withhold};
use rootcause_models::ranker::{self, RANKERS};
use serde::Serialize;

use crate::live_topology::TopologySpec;

/// The ranker `eval` uses when none is named. Until the evidence-based rankers land, the most
/// accurate reference method on the shared cases.
pub const DEFAULT_RANKER: &str = "baro";

/// A dataset format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Nezha's layout (`rca_data/<date>/...`, fault lists, metric/trace/log files).
    Nezha,
    /// RCAEval's layout (`<case>/data.csv` + `inject_time.txt`, nested at any depth).
    Rcaeval,
    /// The output of `rootcause simulate`.
    Sim,
}

impl From<FormatArg> for DatasetFormat {
    fn from(format: FormatArg) -> DatasetFormat {
        match format {
            FormatArg::Nezha => DatasetFormat::Nezha,
            FormatArg::Rcaeval => DatasetFormat::Rcaeval,
            FormatArg::Sim => DatasetFormat::Sim,
        }
    }
}

/// `rootcause eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Format of the dataset at PATH.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Dataset directory.
    path: PathBuf,
    /// Ranker to score (baro, nsigma).
    #[arg(long, default_value = DEFAULT_RANKER)]
    ranker: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write each case's ranking to FILE as JSON lines: {"case": ..., "ranking": [...]}.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
}

/// `rootcause simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Topology: a bundled example name, a YAML/JSON file, or `generated:N` for a generated
    /// estate of N services; by default the bundled topology `serve` starts with.
    #[arg(long, value_name = "NAME|FILE|generated:N", default_value = rootcause_datasets::examples::DEFAULT)]
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

/// The `--json` output of `eval`: the report plus loading time.
#[derive(Debug, Serialize)]
struct EvalJson<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// Seconds spent loading the dataset, all cases together.
    load_seconds: f64,
    /// Cases loaded, labelled or not.
    cases_loaded: usize,
}

#[derive(Debug, Serialize)]
struct Prediction<'a> {
    case: &'a str,
    ranking: Vec<String>,
}

/// Loads a dataset with a spinner on stderr.
fn load(format: FormatArg, path: &Path) -> anyhow::Result<(Vec<Case>, Duration)> {
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "loading {} cases from {}",
        format!("{format:?}").to_lowercase(),
        path.display()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let cases = rootcause_datasets::load(format.into(), path)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let elapsed = started.elapsed();
    spinner.finish_and_clear();
    if cases.is_empty() {
        bail!("no cases found in {}", path.display());
    }
    Ok((cases, elapsed))
}

/// How many data notes the loader left on the cases, with the first as an example.
fn notes_summary(cases: &[Case]) -> Option<String> {
    let count: usize = cases.iter().map(|c| c.notes.len()).sum();
    let first = cases
        .iter()
        .find_map(|c| c.notes.first().map(|n| format!("{}: {n}", c.id)))?;
    Some(format!("{count} data notes while loading, e.g. {first}"))
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs `rootcause eval`.
pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let ranker = ranker::by_name(&args.ranker).with_context(|| {
        format!(
            "unknown ranker {:?}; known: {}",
            args.ranker,
            RANKERS.join(", ")
        )
    })?;
    let (cases, load_time) = load(args.format, &args.path)?;
    let loaded = cases.len();
    let notes = notes_summary(&cases);
    let mut predictions = match &args.predictions {
        Some(file) => Some(std::io::BufWriter::new(
            std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?,
        )),
        None => None,
    };
    let bar = progress_bar(loaded, &format!("ranking with {}", ranker.name()));
    let mut outcomes = Vec::with_capacity(loaded);
    for (index, mut case) in cases.into_iter().enumerate() {
        let Withheld { id, label } = withhold(&mut case, index);
        let started = Instant::now();
        let ranking = ranker.rank(&case);
        let seconds = started.elapsed().as_secs_f64();
        if let Some(out) = predictions.as_mut() {
            let line = serde_json::to_string(&Prediction {
                case: &id,
                ranking: ranking.names(),
            })?;
            writeln!(out, "{line}")?;
        }
        if let Some(label) = label {
            outcomes.push(CaseOutcome::new(
                &id,
                &label,
                &case.candidates,
                &ranking,
                seconds,
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(mut out) = predictions {
        out.flush()?;
    }
    if outcomes.is_empty() {
        bail!(
            "none of the {loaded} cases in {} is labelled: nothing to score",
            args.path.display()
        );
    }
    let report = Report::new(ranker.name(), &outcomes);
    if args.json {
        let json = EvalJson {
            report: &report,
            load_seconds: load_time.as_secs_f64(),
            cases_loaded: loaded,
        };
        println!("{}", serde_json::to_string(&json)?);
        return Ok(());
    }
    println!(
        "{loaded} cases from {} ({} labelled), loaded in {:.2} s; ranker {}",
        args.path.display(),
        outcomes.len(),
        load_time.as_secs_f64(),
        report.ranker
    );
    if let Some(notes) = notes {
        println!("{notes}");
    }
    println!();
    print!("{}", report.table());
    println!();
    println!(
        "root cause among the candidates in {} of {} cases (the others are misses, for chance too)",
        report.truth_among_candidates, report.cases
    );
    println!(
        "ties count against the true cause; CHANCE = a uniformly random ranking of the same candidates"
    );
    println!(
        "time per case: {:.2} ms ranking, {:.1} ms loading",
        report.seconds_per_case * 1e3,
        load_time.as_secs_f64() * 1e3 / loaded as f64
    );
    Ok(())
}

/// Runs `rootcause simulate`.
pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let (system, topology) = match args.topology.strip_prefix("generated:") {
        Some(size) => {
            let services: usize = size
                .parse()
                .with_context(|| format!("generated:N needs a number of services, got {size:?}"))?;
            if services < 8 {
                bail!("generated:N needs at least 8 services, got {services}");
            }
            let document = rootcause_datasets::synthetic::generate(
                &rootcause_datasets::synthetic::Shape::with_services(services, args.seed),
            );
            let topology = rootcause_topology::Topology::from_document(document)
                .context("generated topology is invalid")?;
            (format!("generated-{services}"), topology)
        }
        None => {
            let spec = TopologySpec::parse(&args.topology)?;
            let topology = spec.load()?;
            let system = Path::new(&args.topology).file_stem().map_or_else(
                || args.topology.clone(),
                |s| s.to_string_lossy().into_owned(),
            );
            (system, topology)
        }
    };
    // Cases of an earlier run left beside new ones would be evaluated with them.
    if std::fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty: simulate into a new or empty directory",
            args.out.display()
        );
    }
    let options = simulator::Options {
        cases: args.cases,
        seed: args.seed,
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
        "{} cases on {} ({} services) written to {} in {:.2} s (seed {})",
        cases.len(),
        system,
        topology.service_count(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.seed
    );
    Ok(())
}

/// Runs `rootcause datasets convert`.
pub fn convert(args: &ConvertArgs) -> anyhow::Result<()> {
    let (cases, _) = load(args.format, &args.path)?;
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
    let (cases, _) = load(args.format, &args.path)?;
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
