//! Labelled cases for the offline commands: dataset formats on the command line, loading with a
//! spinner, simulated cases, and the evidence and training examples computed from them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rootcause_datasets::{DatasetFormat, LoadOptions, simulator};
use rootcause_models::case::Case;
use rootcause_models::evaluation::Withheld;
use rootcause_models::evidence::{Evidence, Settings};
use rootcause_models::learned::Example;

use rootcause::live_topology::TopologySpec;

/// A dataset format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Nezha's layout (`rca_data/<date>/...`, fault lists, metric/trace/log files).
    Nezha,
    /// RCAEval's layout (`<case>/data.csv` + `inject_time.txt`, nested at any depth).
    Rcaeval,
    /// The output of `rootcause simulate`.
    Sim,
    /// rootcause's history format: JSON lines of past incidents with their outcome (a file, or
    /// a directory of `*.jsonl` files), as `POST /api/v1/history` takes them.
    Jsonl,
    /// MicroIRC's Bookinfo fault cases (`data/label.txt`, `data/<case>/bookinfo/*.csv`).
    Microirc,
}

impl From<FormatArg> for DatasetFormat {
    fn from(format: FormatArg) -> DatasetFormat {
        match format {
            FormatArg::Nezha => DatasetFormat::Nezha,
            FormatArg::Rcaeval => DatasetFormat::Rcaeval,
            FormatArg::Sim => DatasetFormat::Sim,
            FormatArg::Jsonl => DatasetFormat::Jsonl,
            FormatArg::Microirc => DatasetFormat::Microirc,
        }
    }
}

impl FormatArg {
    /// The name on the command line.
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// The dependency graph a dataset's cases are ranked on, when their format carries none.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Topology (YAML/JSON file or bundled example name) for cases that carry no graph of
    /// their own (RCAEval cases, history records without one).
    #[arg(long, value_name = "FILE|NAME")]
    topology: Option<String>,
    /// With --format jsonl: how far below the alerting services the candidates of a record
    /// without a candidate list reach (the service's `ranking.hops`).
    #[arg(long, default_value_t = 2)]
    hops: usize,
}

impl GraphArgs {
    /// The load options these arguments ask for.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let topology = match &self.topology {
            Some(spec) => Some(std::sync::Arc::new(TopologySpec::parse(spec)?.load()?)),
            None => None,
        };
        Ok(LoadOptions {
            topology,
            hops: self.hops,
        })
    }
}

/// Loads a dataset with a spinner on stderr.
pub(crate) fn load(
    format: FormatArg,
    path: &Path,
    options: &LoadOptions,
) -> anyhow::Result<(Vec<Case>, Duration)> {
    if !path.exists() {
        bail!(
            "{} does not exist (datasets are read from where they are, never copied into the \
             project: the shared ones are in ../shared/datasets/ beside the project directory)",
            path.display()
        );
    }
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "loading {} cases from {}",
        format!("{format:?}").to_lowercase(),
        path.display()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let cases = rootcause_datasets::load(format.into(), path, options)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let elapsed = started.elapsed();
    spinner.finish_and_clear();
    if cases.is_empty() {
        bail!("no cases found in {}", path.display());
    }
    Ok((cases, elapsed))
}

/// How many data notes the loader left on the cases, with the first as an example.
pub(crate) fn notes_summary(cases: &[Case]) -> Option<String> {
    let count: usize = cases.iter().map(|c| c.notes.len()).sum();
    let first = cases
        .iter()
        .find_map(|c| c.notes.first().map(|n| format!("{}: {n}", c.id)))?;
    Some(format!("{count} data notes while loading, e.g. {first}"))
}

/// A progress bar on stderr for `len` steps of `what`.
pub(crate) fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Evidence of every case, with a progress bar, and the seconds each took.
pub(crate) fn extract_all(cases: &[Case], settings: &Settings) -> (Vec<Evidence>, Vec<f64>) {
    let bar = progress_bar(cases.len(), "computing evidence");
    let mut evidence = Vec::with_capacity(cases.len());
    let mut seconds = Vec::with_capacity(cases.len());
    for case in cases {
        let started = Instant::now();
        evidence.push(rootcause_models::evidence::extract(case, settings));
        seconds.push(started.elapsed().as_secs_f64());
        bar.inc(1);
    }
    bar.finish_and_clear();
    (evidence, seconds)
}

/// Training examples from evidence and the labels withheld from the rankers.
pub(crate) fn examples(evidence: Vec<Evidence>, withheld: &[Withheld]) -> Vec<Example> {
    evidence
        .into_iter()
        .zip(withheld)
        .map(|(evidence, held)| {
            match &held.label {
                Some(l) => {
                    Example::from_evidence(evidence, &l.root_cause, &l.fault_type, l.action.clone())
                }
                // An unlabelled case is diagnosed, never trained on.
                None => Example {
                    evidence,
                    truth: None,
                    fault: None,
                    action: None,
                },
            }
        })
        .collect()
}

/// `cases` labelled cases simulated on `topology` with `seed` and `realism`, sharing one copy of
/// the graph.
pub fn simulated_cases(
    topology: &rootcause_topology::Topology,
    system: &str,
    cases: usize,
    seed: u64,
    realism: simulator::Realism,
) -> Vec<Case> {
    let options = simulator::Options {
        cases,
        seed,
        realism,
        ..simulator::Options::default()
    };
    let shared = std::sync::Arc::new(topology.clone());
    simulator::simulate(topology, system, &options)
        .into_iter()
        .map(|c| c.into_case(Some(shared.clone())))
        .collect()
}

/// The topology a simulation runs on: `generated:N` (a generated estate of N services, shaped by
/// `seed`), a bundled example name or a YAML/JSON file; with the system name cases carry.
pub fn simulation_topology(
    spec: &str,
    seed: u64,
) -> anyhow::Result<(String, rootcause_topology::Topology)> {
    Ok(match spec.strip_prefix("generated:") {
        Some(size) => {
            let services: usize = size
                .parse()
                .with_context(|| format!("generated:N needs a number of services, got {size:?}"))?;
            if services < 8 {
                bail!("generated:N needs at least 8 services, got {services}");
            }
            let document = rootcause_datasets::synthetic::generate(
                &rootcause_datasets::synthetic::Shape::with_services(services, seed),
            );
            let topology = rootcause_topology::Topology::from_document(document)
                .context("generated topology is invalid")?;
            (format!("generated-{services}"), topology)
        }
        None => {
            let topology = TopologySpec::parse(spec)?.load()?;
            let system = Path::new(spec)
                .file_stem()
                .map_or_else(|| spec.to_owned(), |s| s.to_string_lossy().into_owned());
            (system, topology)
        }
    })
}
