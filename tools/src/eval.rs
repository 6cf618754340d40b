//! `rootcause eval`: a ranker's accuracy on labelled cases (AC@k, Avg@k and chance, per fault
//! type), by cross-validation by case for the learned ranker, with action accuracy beside it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rootcause_models::ablation::{Withhold, withhold_sources};
use rootcause_models::actions::evaluation::{ActionCase, ActionReport};
use rootcause_models::actions::{Catalogue, Weights};
use rootcause_models::case::Case;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evaluation::{CaseOutcome, Report, Withheld, withhold};
use rootcause_models::evidence::Settings;
use rootcause_models::learned::{self, LearnedModel, TrainParams};
use rootcause_models::ranker::{Ranker, Ranking};
use rootcause_models::rankers::{self, RANKERS};
use serde::Serialize;

use crate::cases::{
    FormatArg, GraphArgs, examples, extract_all, load, notes_summary, progress_bar,
};

/// The ranker `eval` uses when none is named: the cold-start scorer, which needs no training
/// on the data it ranks (a learned model is scored by `--cv` or on data it was not trained on).
pub const DEFAULT_RANKER: &str = "cold-start";

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
            let ranker = rankers::by_name(name).with_context(|| {
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
