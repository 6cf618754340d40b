//! Commands that work on datasets rather than on a running service: `rootcause eval` (a ranker's
//! accuracy on labelled cases), `rootcause simulate` (fault cases from the simulator) and
//! `rootcause datasets convert` (any supported format to RCAEval's, for the peers).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rootcause_datasets::{DatasetFormat, LoadOptions, simulator};
use rootcause_models::ablation::{Withhold, withhold_sources};
use rootcause_models::actions::evaluation::{ActionCase, ActionReport};
use rootcause_models::actions::{Catalogue, Weights};
use rootcause_models::case::Case;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evaluation::{CaseOutcome, Report, Withheld, withhold};
use rootcause_models::evidence::{Evidence, Settings};
use rootcause_models::learned::{self, Example, LearnedModel, TrainParams};
use rootcause_models::ranker::{self, RANKERS};
use rootcause_models::ranker::{Ranker, Ranking};
use serde::Serialize;

use crate::live_topology::TopologySpec;

/// The ranker `eval` uses when none is named: the cold-start scorer, which needs no training
/// on the data it ranks (a learned model is scored by `--cv` or on data it was not trained on).
pub const DEFAULT_RANKER: &str = "cold-start";

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

/// `rootcause eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Format of the dataset at PATH.
    #[arg(long, value_enum, required_unless_present = "loso")]
    format: Option<FormatArg>,
    /// Dataset directory (or, for jsonl, a file).
    #[arg(required_unless_present = "loso")]
    path: Option<PathBuf>,
    /// Leave one system out (repeatable, two systems or more): for each development system
    /// FORMAT:PATH in turn, train the learned ranker on the others and on simulated cases, and
    /// score the one left out beside the cold-start scorer, BARO, N-Sigma and chance.
    #[arg(long, value_name = "FORMAT:PATH", conflicts_with_all = ["format", "path", "cv", "model", "ranker"])]
    loso: Vec<String>,
    /// With --loso: simulated cases (realistic mix, generated estates) in every training set.
    #[arg(long, default_value_t = 100, requires = "loso")]
    sim_cases: usize,
    /// With --loso: seed of the simulated cases.
    #[arg(long, default_value_t = 42, requires = "loso")]
    sim_seed: u64,
    /// With --loso: also score every system with each source of evidence withheld (the
    /// telemetry ablation table).
    #[arg(long, requires = "loso")]
    ablations: bool,
    /// With --loso: fail when the served (learned) ranker is below the better of BARO and
    /// N-Sigma on AC@1 or Avg@5 for any system or ablation.
    #[arg(long, requires = "loso")]
    require_reference: bool,
    /// With --loso: fail when the learned ranker's AC@1 on SYSTEM (full telemetry) is below
    /// FLOOR (repeatable).
    #[arg(long, value_name = "SYSTEM=FLOOR", requires = "loso")]
    min_loso_ac1: Vec<String>,
    /// With --loso: a target to print as met or not (repeatable; not a gate), as
    /// SYSTEM[/RANKER[/TELEMETRY]]=AC@1, e.g. `train-ticket/learned/without logs=0.8`; the ranker
    /// defaults to learned, the telemetry to full.
    #[arg(long, value_name = "SPEC", requires = "loso")]
    target: Vec<String>,
    /// Ranker to score: cold-start, learned (with --cv or --model), baro, nsigma. Default:
    /// the cold-start scorer, the best ranker that needs no training on the data it ranks.
    #[arg(long)]
    ranker: Option<String>,
    /// With `--ranker learned`: train and score by K-fold cross-validation by case.
    #[arg(long, value_name = "K")]
    cv: Option<usize>,
    /// With `--ranker learned` (implied): a model file from `rootcause train` on other data.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Exit with an error when AC@1 falls below this floor (a regression gate).
    #[arg(long, value_name = "AC1")]
    min_ac1: Option<f64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write each case's ranking to FILE as JSON lines: {"case": ..., "ranking": [...]}.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Exit with an error when the served actions' top-1 accuracy falls below this floor (a
    /// regression gate; needs cases that record their resolving action).
    #[arg(long, value_name = "TOP1")]
    min_action_top1: Option<f64>,
    /// Runbook catalogue (YAML) whose suggestions are scored on cases that record the action
    /// that resolved them (simulated ones do). Default: the bundled runbooks.
    #[arg(long, value_name = "FILE")]
    runbooks: Option<PathBuf>,
    /// Withhold a source of evidence from every case before ranking (repeatable): logs,
    /// traces (trace statistics and call-edge series), alerts, topology, baseline (everything
    /// before the incident), so the cases stand in for systems with less telemetry.
    #[arg(long, value_name = "SOURCE")]
    without: Vec<Withhold>,
    #[command(flatten)]
    graph: GraphArgs,
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

/// `rootcause train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Format of the dataset at PATH.
    #[arg(long, value_enum, requires = "path")]
    format: Option<FormatArg>,
    /// Dataset directory of labelled cases: train a model file from it. Without it, a running
    /// service trains on its fault history (see --url).
    #[arg(requires_all = ["format", "out"])]
    path: Option<PathBuf>,
    /// More labelled datasets to train on, as FORMAT:PATH (repeatable).
    #[arg(long, value_name = "FORMAT:PATH", requires = "path")]
    also: Vec<String>,
    /// Where to write the model file (JSON).
    #[arg(long, value_name = "FILE", requires = "path")]
    out: Option<PathBuf>,
    /// L2 penalty of the logistic regressions (fault type, actions).
    #[arg(long, default_value_t = TrainParams::default().alpha)]
    alpha: f64,
    /// L2 penalty of the ranking scorer's corrections to its cold-start prior (default: for
    /// learning from one system's own history; the bundled model, meant for systems it never
    /// saw, is trained with 10000).
    #[arg(long, default_value_t = TrainParams::default().prior_alpha)]
    prior_alpha: f64,
    /// Folds of the cross-validation by case whose figures are recorded in the model file
    /// (0: skip), or of the training job.
    #[arg(long, default_value_t = 5)]
    cv: usize,
    #[command(flatten)]
    graph: GraphArgs,
    /// Training job: promote the new model even if it is worse on the held-out cases.
    #[arg(long, conflicts_with = "path")]
    force: bool,
    #[command(flatten)]
    service: crate::learning_cli::ServiceArgs,
}

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

/// The `--json` output of `eval`: the report plus loading time.
#[derive(Debug, Serialize)]
struct EvalJson<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// Action accuracy, on cases that record the action that resolved them.
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<&'a ActionReport>,
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
pub(crate) fn load(
    format: FormatArg,
    path: &Path,
    options: &LoadOptions,
) -> anyhow::Result<(Vec<Case>, Duration)> {
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
fn notes_summary(cases: &[Case]) -> Option<String> {
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

/// How `eval` gets its rankings.
enum Method {
    /// A ranker that needs no training on the cases (or a model trained elsewhere).
    Ranker(Box<dyn Ranker>),
    /// The learned ranker, trained and scored by k-fold cross-validation by case.
    CrossValidated(usize),
}

impl Method {
    fn of(args: &EvalArgs, path: &Path) -> anyhow::Result<Method> {
        let name = args.ranker.as_deref().unwrap_or(if args.model.is_some() {
            "learned"
        } else {
            DEFAULT_RANKER
        });
        if name != "learned" {
            if args.cv.is_some() || args.model.is_some() {
                bail!("--cv and --model go with --ranker learned, not {name}");
            }
            let ranker = ranker::by_name(name).with_context(|| {
                format!(
                    "unknown ranker {name:?}; known: {}, learned",
                    RANKERS.join(", ")
                )
            })?;
            return Ok(Method::Ranker(ranker));
        }
        match (args.cv, &args.model) {
            (Some(folds), None) if folds >= 2 => Ok(Method::CrossValidated(folds)),
            (Some(folds), None) => bail!("--cv needs at least 2 folds, got {folds}"),
            (None, Some(model)) => {
                let text = std::fs::read_to_string(model)
                    .with_context(|| format!("cannot read model file {}", model.display()))?;
                let model_file = LearnedModel::from_json(&text)
                    .with_context(|| format!("model file {}", model.display()))?;
                refuse_training_data(&model_file, path)?;
                Ok(Method::Ranker(Box::new(learned::Learned {
                    model: model_file,
                })))
            }
            (Some(_), Some(_)) => bail!("give either --cv K or --model FILE, not both"),
            (None, None) => bail!(
                "--ranker learned needs --cv K (train and score by K-fold cross-validation by \
                 case) or --model FILE (a model trained on other data)"
            ),
        }
    }

    fn name(&self) -> String {
        match self {
            Method::Ranker(r) => r.name().to_string(),
            Method::CrossValidated(k) => format!("learned-cv{k}"),
        }
    }
}

/// Refuses to score `model` on `dataset` when the model was trained on it: its provenance
/// names every dataset it was trained on (`nezha:PATH (N cases)`), and a case must never be
/// scored by a model that saw it.
fn refuse_training_data(model: &LearnedModel, dataset: &Path) -> anyhow::Result<()> {
    let Ok(target) = dataset.canonicalize() else {
        return Ok(());
    };
    for source in &model.provenance.sources {
        let path = source
            .split_once(':')
            .map_or(source.as_str(), |(_, rest)| rest);
        let path = path.rsplit_once(" (").map_or(path, |(p, _)| p);
        if Path::new(path).canonicalize().is_ok_and(|p| p == target) {
            bail!(
                "the model was trained on {} (its provenance: {source}): scoring it there would \
                 score cases with a model that saw them; use --ranker learned --cv K instead",
                dataset.display()
            );
        }
    }
    Ok(())
}

/// Runs `rootcause eval`.
pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    if !args.loso.is_empty() {
        return crate::yardstick::run(&crate::yardstick::LosoOptions {
            systems: args.loso.clone(),
            sim_cases: args.sim_cases,
            sim_seed: args.sim_seed,
            ablations: args.ablations,
            require_reference: args.require_reference,
            min_ac1: args.min_loso_ac1.clone(),
            targets: args.target.clone(),
            json: args.json,
        });
    }
    let (Some(format), Some(path)) = (args.format, args.path.as_deref()) else {
        bail!("eval needs --format and PATH (or --loso FORMAT:PATH ...)");
    };
    let method = Method::of(args, path)?;
    let (cases, load_time) = load(format, path, &args.graph.load_options()?)?;
    let loaded = cases.len();
    let notes = notes_summary(&cases);
    let mut predictions = match &args.predictions {
        Some(file) => Some(std::io::BufWriter::new(
            std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?,
        )),
        None => None,
    };
    let mut withheld = Vec::with_capacity(loaded);
    let mut cases: Vec<Case> = cases;
    for (index, case) in cases.iter_mut().enumerate() {
        withheld.push(withhold(case, index));
        withhold_sources(case, &args.without, Settings::default().lead_s);
    }
    let (diagnoses, seconds) = match &method {
        Method::Ranker(ranker) => {
            let bar = progress_bar(loaded, &format!("ranking with {}", ranker.name()));
            let mut diagnoses = Vec::with_capacity(loaded);
            let mut seconds = Vec::with_capacity(loaded);
            for case in &cases {
                let started = Instant::now();
                diagnoses.push(ranker.diagnose(case));
                seconds.push(started.elapsed().as_secs_f64());
                bar.inc(1);
            }
            bar.finish_and_clear();
            (diagnoses, seconds)
        }
        Method::CrossValidated(folds) => cross_validate(&cases, &withheld, *folds)?,
    };
    let mut outcomes = Vec::with_capacity(loaded);
    let mut confidences = Vec::new();
    for (((case, held), diagnosis), seconds) in
        cases.iter().zip(&withheld).zip(&diagnoses).zip(&seconds)
    {
        let ranking = Ranking::from_scores(
            diagnosis
                .hypotheses
                .iter()
                .map(|h| (h.service.clone(), h.score)),
        );
        if let Some(out) = predictions.as_mut() {
            let line = serde_json::to_string(&Prediction {
                case: &held.id,
                ranking: ranking.names(),
            })?;
            writeln!(out, "{line}")?;
        }
        let Some(label) = &held.label else { continue };
        let outcome = CaseOutcome::new(&held.id, label, &case.candidates, &ranking, *seconds);
        if let Some(top) = diagnosis.hypotheses.first()
            && let Some(confidence) = top.confidence
        {
            confidences.push((confidence, outcome.rank == Some(1), diagnosis.unknown));
        }
        outcomes.push(outcome);
    }
    if let Some(mut out) = predictions {
        out.flush()?;
    }
    if outcomes.is_empty() {
        bail!(
            "none of the {loaded} cases in {} is labelled: nothing to score",
            path.display()
        );
    }
    let mut report = Report::new(&method.name(), &outcomes);
    if confidences.len() == outcomes.len() {
        report = report.with_confidences(&confidences);
    }
    let below_floor = args.min_ac1.filter(|floor| report.overall.ac1 < *floor);
    let actions = action_accuracy(args, &cases, &withheld, &diagnoses)?;
    if args.json {
        let json = EvalJson {
            report: &report,
            actions: actions.as_ref(),
            load_seconds: load_time.as_secs_f64(),
            cases_loaded: loaded,
        };
        println!("{}", serde_json::to_string(&json)?);
    } else {
        print_report(
            path,
            &args.without,
            &report,
            loaded,
            outcomes.len(),
            load_time,
            notes,
        );
        if let Some(actions) = &actions {
            println!();
            print!("{}", actions.table());
        }
    }
    if let Some(floor) = below_floor {
        bail!(
            "AC@1 {:.3} is below the floor {floor:.3} (--min-ac1): accuracy regressed",
            report.overall.ac1
        );
    }
    if let Some(floor) = args.min_action_top1 {
        let Some(actions) = &actions else {
            bail!("--min-action-top1: no case records the action that resolved it");
        };
        let top1 = actions.served().top1;
        if top1 < floor {
            bail!(
                "served actions' top-1 {top1:.3} is below the floor {floor:.3} \
                 (--min-action-top1): action accuracy regressed"
            );
        }
    }
    Ok(())
}

fn print_report(
    path: &Path,
    without: &[Withhold],
    report: &Report,
    loaded: usize,
    labelled: usize,
    load_time: Duration,
    notes: Option<String>,
) {
    println!(
        "{loaded} cases from {} ({labelled} labelled), loaded in {:.2} s; ranker {}; {}",
        path.display(),
        load_time.as_secs_f64(),
        report.ranker,
        rootcause_models::ablation::describe(without)
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
        "time per case: {:.2} ms ranking (evidence included, training excluded), {:.1} ms loading",
        report.seconds_per_case * 1e3,
        load_time.as_secs_f64() * 1e3 / loaded as f64
    );
    if let Some(reliability) = &report.reliability {
        println!();
        println!("reliability of the top hypothesis' confidence:");
        print!("{}", reliability.table());
        if let Some(unknown) = report.unknown {
            println!(
                "answered \"unknown\" (top confidence below the threshold): {unknown} of {labelled} cases"
            );
        }
    }
}

/// The action-accuracy table of the cases whose label records the resolving action (`None`
/// when none does): suggestions for each case's top hypothesis (the diagnosis scored above),
/// with the learned action model and the similar-incident index built from the other folds.
fn action_accuracy(
    args: &EvalArgs,
    cases: &[Case],
    withheld: &[Withheld],
    diagnoses: &[Diagnosis],
) -> anyhow::Result<Option<ActionReport>> {
    let with_action: Vec<usize> = (0..cases.len())
        .filter(|&i| {
            withheld[i]
                .label
                .as_ref()
                .is_some_and(|l| l.action.is_some())
        })
        .collect();
    if with_action.is_empty() {
        return Ok(None);
    }
    let catalogue = match &args.runbooks {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Catalogue::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Catalogue::bundled(),
    };
    let chosen: Vec<Case> = with_action.iter().map(|&i| cases[i].clone()).collect();
    let (evidence, _) = extract_all(&chosen, &Settings::default());
    let action_cases: Vec<ActionCase> = with_action
        .iter()
        .zip(&chosen)
        .zip(&evidence)
        .map(|((&i, case), evidence)| ActionCase {
            case,
            evidence,
            diagnosis: &diagnoses[i],
            label: withheld[i].label.as_ref().expect("filtered above"),
        })
        .collect();
    let folds = args.cv.unwrap_or(5);
    let bar = progress_bar(folds, "scoring action suggestions");
    let report = rootcause_models::actions::evaluation::evaluate(
        &action_cases,
        &catalogue,
        Weights::default(),
        folds,
        &TrainParams::default(),
        |k| bar.set_position(k as u64),
    )?;
    bar.finish_and_clear();
    Ok(Some(report))
}

/// Evidence of every case, with a progress bar, and the seconds each took.
fn extract_all(cases: &[Case], settings: &Settings) -> (Vec<Evidence>, Vec<f64>) {
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
fn examples(evidence: Vec<Evidence>, withheld: &[Withheld]) -> Vec<Example> {
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

/// The learned ranker's out-of-fold diagnoses: each case diagnosed by a model trained on the
/// other folds' cases only.
fn cross_validate(
    cases: &[Case],
    withheld: &[Withheld],
    folds: usize,
) -> anyhow::Result<(Vec<Diagnosis>, Vec<f64>)> {
    let settings = Settings::default();
    let (evidence, seconds) = extract_all(cases, &settings);
    let examples = examples(evidence, withheld);
    let bar = progress_bar(folds, "training and scoring folds");
    let diagnoses =
        learned::cross_validate(&examples, folds, &TrainParams::default(), settings, |k| {
            bar.set_position(k as u64)
        })?;
    bar.finish_and_clear();
    Ok((diagnoses, seconds))
}

/// Runs `rootcause train`.
pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    for (name, value) in [("--alpha", args.alpha), ("--prior-alpha", args.prior_alpha)] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be a number ≥ 0, got {value}");
        }
    }
    let (Some(format), Some(path), Some(out)) = (args.format, &args.path, &args.out) else {
        return crate::learning_cli::train(
            args.force,
            args.cv,
            (args.alpha, args.prior_alpha),
            &args.service,
        );
    };
    let mut sources = vec![(format, path.clone())];
    for extra in &args.also {
        let (format, path) = extra.split_once(':').with_context(|| {
            format!("--also takes FORMAT:PATH (nezha:DIR, rcaeval:DIR, sim:DIR), got {extra:?}")
        })?;
        let format = FormatArg::from_str(format, true)
            .map_err(|e| anyhow::anyhow!("--also {extra:?}: {e}"))?;
        sources.push((format, PathBuf::from(path)));
    }
    let settings = Settings::default();
    let options = args.graph.load_options()?;
    let mut all = Vec::new();
    let mut names = Vec::new();
    for (format, path) in &sources {
        let (mut cases, _) = load(*format, path, &options)?;
        let withheld: Vec<Withheld> = cases
            .iter_mut()
            .enumerate()
            .map(|(i, c)| withhold(c, i))
            .collect();
        let labelled = withheld.iter().filter(|w| w.label.is_some()).count();
        if labelled == 0 {
            bail!("none of the cases in {} is labelled", path.display());
        }
        let (evidence, _) = extract_all(&cases, &settings);
        all.extend(examples(evidence, &withheld));
        // The absolute path, so that `eval --model` can refuse this model on these cases from
        // whatever directory it runs in.
        let absolute = path.canonicalize().unwrap_or_else(|_| path.clone());
        names.push(format!(
            "{}:{} ({labelled} cases)",
            format!("{format:?}").to_lowercase(),
            absolute.display()
        ));
    }
    let params = TrainParams {
        alpha: args.alpha,
        prior_alpha: args.prior_alpha,
        ..TrainParams::default()
    };
    let model = if args.cv >= 2 {
        // One pass: the fold models give the figures and the temperature, then the final fit.
        let bar = progress_bar(args.cv + 1, "training with cross-validation");
        let validated =
            learned::train_validated(&all, args.cv, &params, settings, names, |stage| {
                if let learned::Stage::Fitted { done, .. } = stage {
                    bar.set_position(done as u64)
                }
            })?;
        bar.finish_and_clear();
        let mut accuracy = rootcause_models::metrics::Accuracy::new();
        for (example, diagnosis) in all.iter().zip(&validated.out_of_fold) {
            match example.truth {
                Some(truth) => {
                    let service = &example.evidence.candidates[truth].service;
                    let rank = diagnosis
                        .hypotheses
                        .iter()
                        .position(|h| &h.service == service)
                        .map(|p| p + 1);
                    accuracy.add(rank, diagnosis.hypotheses.len());
                }
                None => accuracy.add_absent(),
            }
        }
        let figures = accuracy.figures();
        let chance = accuracy.chance_figures();
        let mut model = validated.model;
        for (key, value) in [
            ("cv_ac1", figures.ac1),
            ("cv_ac3", figures.ac3),
            ("cv_avg5", figures.avg5),
            ("chance_ac1", chance.ac1),
            ("cv_folds", args.cv as f64),
        ] {
            model.provenance.figures.insert(key.to_string(), value);
        }
        model
    } else {
        learned::train(&all, &params, settings, names)?
    };
    std::fs::write(out, model.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "model learned@{} trained on {} cases ({} candidate rows) from {}; temperature {:.3}; written to {}",
        model.version,
        model.provenance.cases,
        model.provenance.rows,
        model.provenance.sources.join(", "),
        model.temperature,
        out.display()
    );
    if let Some(ac1) = model.provenance.figures.get("cv_ac1") {
        println!(
            "{}-fold cross-validation by case on the training data: AC@1 {:.3}, AC@3 {:.3}, Avg@5 {:.3} (chance AC@1 {:.3})",
            args.cv,
            ac1,
            model.provenance.figures["cv_ac3"],
            model.provenance.figures["cv_avg5"],
            model.provenance.figures["chance_ac1"]
        );
    }
    Ok(())
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
