//! `rootcause eval --loso`: the yardstick every ranking choice is judged by.
//!
//! A ranking choice counts when it helps on a system it was not tuned on. For each development
//! system in turn, the learned ranker is trained as the bundled model is (cross-system prior,
//! [`learned::CROSS_SYSTEM_PRIOR_ALPHA`]) on every *other* system's labelled cases plus
//! simulated cases (realistic ones, on generated estates that resemble none of the systems), and
//! scores the system left out; the cold-start scorer (no training at all), the reference rankers
//! (BARO, N-Sigma) and chance stand beside it. With `--ablations`, each system is also scored
//! with a source of evidence withheld (logs, traces, both, alerts, the graph, the baseline), by
//! the same models: a system rich in telemetry then stands in for estates with less.
//!
//! No case is ever scored by a model trained on it: the model that scores system S never saw a
//! case of S.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use rootcause_datasets::{LoadOptions, simulator};
use rootcause_models::ablation::{Withhold, describe, withhold_sources};
use rootcause_models::baselines::{Baro, NSigma};
use rootcause_models::case::Case;
use rootcause_models::cold_start::ColdStart;
use rootcause_models::evaluation::{CaseOutcome, Report, Withheld, withhold};
use rootcause_models::evidence::{self, Settings};
use rootcause_models::learned::{self, Example, Learned, TrainParams};
use rootcause_models::ranker::Ranker;
use serde::Serialize;

use crate::cases::{FormatArg, progress_bar};

/// What `eval --loso` needs to know.
#[derive(Debug, Clone)]
pub struct LosoOptions {
    /// The development systems, as `FORMAT:PATH`.
    pub systems: Vec<String>,
    /// Simulated cases added to every training set.
    pub sim_cases: usize,
    /// Seed of the simulated cases.
    pub sim_seed: u64,
    /// Also score each system with each source of evidence withheld.
    pub ablations: bool,
    /// Fail when the served (learned) ranker falls below the better reference ranker on AC@1
    /// or Avg@5 in any row.
    pub require_reference: bool,
    /// Per system (`NAME=FLOOR`), the AC@1 the learned ranker must reach with full telemetry.
    pub min_ac1: Vec<String>,
    /// Targets to print as met or not (`SYSTEM[/RANKER[/TELEMETRY]]=AC@1`), not gates.
    pub targets: Vec<String>,
    /// Print JSON instead of tables.
    pub json: bool,
}

/// The ablations of the table, in order: full telemetry first.
pub fn ablations() -> Vec<Vec<Withhold>> {
    vec![
        vec![],
        vec![Withhold::Logs],
        vec![Withhold::Traces],
        vec![Withhold::Logs, Withhold::Traces],
        vec![Withhold::Alerts],
        vec![Withhold::Topology],
        vec![Withhold::Baseline],
    ]
}

/// One development system, loaded, its labels withheld from the cases.
struct System {
    name: String,
    cases: Vec<Case>,
    withheld: Vec<Withheld>,
}

/// The figures of one ranker on one system under one ablation.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The system scored.
    pub system: String,
    /// What was withheld (`full telemetry`, `without logs`, ...).
    pub telemetry: String,
    /// The ranker.
    pub ranker: String,
    /// Its report.
    pub report: Report,
    /// AC@1 when workloads are counted as their service (`reviews-v2` as `reviews`), for
    /// systems whose candidates are versioned workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ac1: Option<f64>,
}

/// Baselines that need the labels of the whole system: what a ranker that knew only the
/// distribution of root causes would score.
#[derive(Debug, Clone, Serialize)]
pub struct Majority {
    /// The system.
    pub system: String,
    /// The most frequent root cause and its share of the cases (AC@1 of always naming it).
    pub cause: (String, f64),
    /// The same at service level, for versioned workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<(String, f64)>,
    /// Chance AC@1 at service level (a uniform guess over the candidates' services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_chance: Option<f64>,
}

/// The `--json` output.
#[derive(Debug, Serialize)]
struct Output<'a> {
    rows: &'a [Row],
    majority: &'a [Majority],
    sim_cases: usize,
    seconds: f64,
}

/// Runs `rootcause eval --loso`.
pub fn run(options: &LosoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    if options.systems.len() < 2 {
        bail!(
            "--loso needs at least two systems (FORMAT:PATH), got {}",
            options.systems.len()
        );
    }
    let mut systems = Vec::new();
    for spec in &options.systems {
        systems.push(load_system(spec)?);
    }
    let settings = Settings::default();
    let simulated = simulated_examples(options.sim_cases, options.sim_seed, &settings);
    let evidence_of: Vec<Vec<Example>> = systems
        .iter()
        .map(|s| examples_of(&s.cases, &s.withheld, &settings))
        .collect();

    let mut rows = Vec::new();
    let mut majority = Vec::new();
    for (i, system) in systems.iter().enumerate() {
        let mut training: Vec<Example> = simulated.clone();
        let mut sources = vec![format!("sim:generated ({} cases)", options.sim_cases)];
        for (j, other) in systems.iter().enumerate() {
            if j != i {
                training.extend(evidence_of[j].iter().cloned());
                sources.push(format!("{} ({} cases)", other.name, other.cases.len()));
            }
        }
        let params = TrainParams {
            prior_alpha: learned::CROSS_SYSTEM_PRIOR_ALPHA,
            ..TrainParams::default()
        };
        let model = learned::train(&training, &params, settings, sources)
            .with_context(|| format!("training without {}", system.name))?;
        let learned = Learned { model };
        let cold = ColdStart::default();
        let rankers: [(&str, &dyn Ranker); 4] = [
            ("learned", &learned),
            ("cold-start", &cold),
            ("baro", &Baro),
            ("nsigma", &NSigma),
        ];
        let grid = if options.ablations {
            ablations()
        } else {
            vec![vec![]]
        };
        for withheld_sources in &grid {
            let mut cases = system.cases.clone();
            for case in &mut cases {
                withhold_sources(case, withheld_sources, settings.lead_s);
            }
            let bar = progress_bar(
                rankers.len() * cases.len(),
                &format!("{}, {}", system.name, describe(withheld_sources)),
            );
            for (name, ranker) in rankers {
                let outcomes: Vec<CaseOutcome> = cases
                    .iter()
                    .zip(&system.withheld)
                    .filter_map(|(case, held)| {
                        bar.inc(1);
                        let label = held.label.as_ref()?;
                        let t = Instant::now();
                        let ranking = ranker.rank(case);
                        Some(CaseOutcome::new(
                            &held.id,
                            label,
                            &case.candidates,
                            &ranking,
                            t.elapsed().as_secs_f64(),
                        ))
                    })
                    .collect();
                rows.push(Row {
                    system: system.name.clone(),
                    telemetry: describe(withheld_sources),
                    ranker: name.to_string(),
                    service_ac1: service_ac1(&outcomes),
                    report: Report::new(name, &outcomes),
                });
            }
            bar.finish_and_clear();
        }
        majority.push(majority_of(system));
    }

    if options.json {
        let out = Output {
            rows: &rows,
            majority: &majority,
            sim_cases: options.sim_cases,
            seconds: started.elapsed().as_secs_f64(),
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print!("{}", loso_table(&rows, &majority, options.sim_cases));
        if options.ablations {
            println!();
            print!("{}", ablation_table(&rows));
        }
        if !options.targets.is_empty() {
            println!();
            print!("{}", target_table(&options.targets, &rows)?);
        }
        println!(
            "\n{:.1} s in all (loading, simulating, training {} models, scoring)",
            started.elapsed().as_secs_f64(),
            systems.len()
        );
    }
    check_gates(options, &rows)
}

fn load_system(spec: &str) -> anyhow::Result<System> {
    let (format, path) = spec.split_once(':').with_context(|| {
        format!("--loso takes FORMAT:PATH (nezha:DIR, microirc:DIR, ...), got {spec:?}")
    })?;
    let format = <FormatArg as clap::ValueEnum>::from_str(format, true)
        .map_err(|e| anyhow::anyhow!("--loso {spec:?}: {e}"))?;
    let path = PathBuf::from(path);
    let (mut cases, _) = crate::cases::load(format, &path, &LoadOptions::default())?;
    let name = cases
        .first()
        .map(|c| c.system.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| path.display().to_string());
    let withheld = cases
        .iter_mut()
        .enumerate()
        .map(|(i, c)| withhold(c, i))
        .collect();
    Ok(System {
        name,
        cases,
        withheld,
    })
}

fn examples_of(cases: &[Case], withheld: &[Withheld], settings: &Settings) -> Vec<Example> {
    cases
        .iter()
        .zip(withheld)
        .filter_map(|(case, held)| {
            let label = held.label.as_ref()?;
            Some(Example::from_evidence(
                evidence::extract(case, settings),
                &label.root_cause,
                &label.fault_type,
                label.action.clone(),
            ))
        })
        .collect()
}

/// Sizes of the generated estates the simulated training cases run on: small and mid-sized,
/// none shaped like a development system.
const SIM_ESTATES: [usize; 3] = [24, 60, 150];

/// Training examples from `count` simulated cases (realistic mix), spread over generated
/// estates of [`SIM_ESTATES`] services.
fn simulated_examples(count: usize, seed: u64, settings: &Settings) -> Vec<Example> {
    let mut out = Vec::with_capacity(count);
    let per = count.div_ceil(SIM_ESTATES.len());
    for (k, &size) in SIM_ESTATES.iter().enumerate() {
        let n = per.min(count - out.len());
        if n == 0 {
            break;
        }
        let estate_seed = seed.wrapping_add(k as u64);
        let document = rootcause_datasets::synthetic::generate(
            &rootcause_datasets::synthetic::Shape::with_services(size, estate_seed),
        );
        let topology = rootcause_topology::Topology::from_document(document)
            .expect("generated topologies are valid");
        let cases = crate::cases::simulated_cases(
            &topology,
            &format!("generated-{size}"),
            n,
            estate_seed,
            simulator::Realism::default(),
        );
        for case in &cases {
            if let Some(example) = Example::of(case, settings) {
                out.push(example);
            }
        }
    }
    out
}

/// Whether a candidate name is a versioned workload (`reviews-v2`), and its service.
fn service_of(name: &str) -> &str {
    match name.rsplit_once("-v") {
        Some((service, version))
            if !service.is_empty()
                && !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            service
        }
        _ => name,
    }
}

/// AC@1 counting a top hypothesis of the true cause's service as right, when some candidate is
/// a versioned workload; `None` otherwise.
fn service_ac1(outcomes: &[CaseOutcome]) -> Option<f64> {
    let versioned = outcomes
        .iter()
        .any(|o| o.ranking.iter().any(|c| service_of(c) != c));
    if !versioned || outcomes.is_empty() {
        return None;
    }
    // Pessimistic as everywhere: the first ranked name is taken as the answer, and the
    // rankings here are already tie-broken against nobody (name order), so a tie at the top
    // between services is resolved in name order; ties are rare at service level.
    let hits = outcomes
        .iter()
        .filter(|o| {
            o.ranking
                .first()
                .is_some_and(|top| service_of(top) == service_of(&o.root_cause))
        })
        .count();
    Some(hits as f64 / outcomes.len() as f64)
}

fn majority_of(system: &System) -> Majority {
    let labels: Vec<&str> = system
        .withheld
        .iter()
        .filter_map(|w| w.label.as_ref().map(|l| l.root_cause.as_str()))
        .collect();
    let top = |names: Vec<&str>| -> (String, f64) {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &names {
            *counts.entry(n).or_default() += 1;
        }
        let (name, count) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .unwrap_or(("", 0));
        (name.to_string(), count as f64 / names.len().max(1) as f64)
    };
    let versioned = system
        .cases
        .iter()
        .any(|c| c.candidates.iter().any(|n| service_of(n) != n));
    let service_chance = versioned.then(|| {
        let labelled: Vec<&Case> = system
            .cases
            .iter()
            .zip(&system.withheld)
            .filter(|(_, w)| w.label.is_some())
            .map(|(c, _)| c)
            .collect();
        labelled
            .iter()
            .map(|c| {
                let mut services: Vec<&str> = c.candidates.iter().map(|n| service_of(n)).collect();
                services.sort_unstable();
                services.dedup();
                1.0 / services.len().max(1) as f64
            })
            .sum::<f64>()
            / labelled.len().max(1) as f64
    });
    Majority {
        system: system.name.clone(),
        cause: top(labels.clone()),
        service: versioned.then(|| top(labels.iter().map(|n| service_of(n)).collect())),
        service_chance,
    }
}

fn loso_table(rows: &[Row], majority: &[Majority], sim_cases: usize) -> String {
    let mut out = format!(
        "Leave one system out: each system is scored by a model trained on the other systems and \
         on {sim_cases} simulated cases, never on itself\n\n"
    );
    out.push_str(&format!(
        "{:<16} {:>5}  {:<11} {:>6} {:>6} {:>6} {:>6}   {:>8} {:>9}\n",
        "SYSTEM LEFT OUT",
        "CASES",
        "RANKER",
        "AC@1",
        "AC@3",
        "AC@5",
        "AVG@5",
        "CHANCE@1",
        "CHANCE-A5"
    ));
    for row in rows.iter().filter(|r| r.telemetry == describe(&[])) {
        let r = &row.report;
        out.push_str(&format!(
            "{:<16} {:>5}  {:<11} {:>6.3} {:>6.3} {:>6.3} {:>6.3}   {:>8.3} {:>9.3}\n",
            row.system,
            r.cases,
            row.ranker,
            r.overall.ac1,
            r.overall.ac3,
            r.overall.ac5,
            r.overall.avg5,
            r.chance.ac1,
            r.chance.avg5
        ));
    }
    for m in majority {
        out.push_str(&format!(
            "{}: always naming the most frequent cause ({}) scores AC@1 {:.3}",
            m.system, m.cause.0, m.cause.1
        ));
        if let (Some((service, share)), Some(chance)) = (&m.service, m.service_chance) {
            out.push_str(&format!(
                "; at service level (workload -vN counted as its service) chance is {chance:.3}, \
                 always naming {service} scores {share:.3}, and the rankers score {}",
                rows.iter()
                    .filter(|r| r.system == m.system && r.telemetry == describe(&[]))
                    .filter_map(|r| r.service_ac1.map(|a| format!("{} {a:.3}", r.ranker)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push('\n');
    }
    out
}

fn ablation_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "Telemetry ablation: the same models, each system scored with a source withheld \
         (AC@1 / Avg@5)\n\n",
    );
    out.push_str(&format!(
        "{:<16} {:<24} {:>13} {:>13} {:>13} {:>13} {:>13}  {}\n",
        "SYSTEM",
        "TELEMETRY",
        "LEARNED",
        "COLD-START",
        "BARO",
        "NSIGMA",
        "CHANCE",
        "SERVED ≥ BEST REF"
    ));
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.system.as_str(), r.telemetry.as_str())) {
            keys.push((r.system.as_str(), r.telemetry.as_str()));
        }
    }
    for (system, telemetry) in keys {
        let of = |ranker: &str| {
            rows.iter()
                .find(|r| r.system == system && r.telemetry == telemetry && r.ranker == ranker)
        };
        let cell = |ranker: &str| {
            of(ranker).map_or("-".to_string(), |r| {
                format!("{:.3} / {:.3}", r.report.overall.ac1, r.report.overall.avg5)
            })
        };
        let chance = of("learned").map_or("-".to_string(), |r| {
            format!("{:.3} / {:.3}", r.report.chance.ac1, r.report.chance.avg5)
        });
        out.push_str(&format!(
            "{:<16} {:<24} {:>13} {:>13} {:>13} {:>13} {:>13}  {}\n",
            system,
            telemetry,
            cell("learned"),
            cell("cold-start"),
            cell("baro"),
            cell("nsigma"),
            chance,
            match reference_gap(rows, system, telemetry) {
                Some(gaps) if gaps.is_empty() => "yes".to_string(),
                Some(gaps) => format!("NO ({})", gaps.join(", ")),
                None => "-".to_string(),
            }
        ));
    }
    out
}

/// Where the served ranker (learned) falls below the better reference ranker on AC@1 or Avg@5
/// for one system and ablation; `None` when a ranker is missing.
fn reference_gap(rows: &[Row], system: &str, telemetry: &str) -> Option<Vec<String>> {
    let of = |ranker: &str| {
        rows.iter()
            .find(|r| r.system == system && r.telemetry == telemetry && r.ranker == ranker)
            .map(|r| r.report.overall)
    };
    let served = of("learned")?;
    let (baro, nsigma) = (of("baro")?, of("nsigma")?);
    let mut gaps = Vec::new();
    let best_ac1 = baro.ac1.max(nsigma.ac1);
    let best_avg5 = baro.avg5.max(nsigma.avg5);
    // A hair of tolerance for float noise in equal counts.
    if served.ac1 + 1e-9 < best_ac1 {
        gaps.push(format!("AC@1 {:.3} < {:.3}", served.ac1, best_ac1));
    }
    if served.avg5 + 1e-9 < best_avg5 {
        gaps.push(format!("Avg@5 {:.3} < {:.3}", served.avg5, best_avg5));
    }
    Some(gaps)
}

/// One target of `--target SYSTEM[/RANKER[/TELEMETRY]]=AC@1`: the ranker defaults to the
/// served one (learned), the telemetry to full.
#[derive(Debug, PartialEq)]
struct Target {
    system: String,
    ranker: String,
    telemetry: String,
    ac1: f64,
}

impl Target {
    fn parse(spec: &str) -> anyhow::Result<Target> {
        let (key, floor) = spec.split_once('=').with_context(|| {
            format!("--target takes SYSTEM[/RANKER[/TELEMETRY]]=AC@1, got {spec:?}")
        })?;
        let ac1: f64 = floor
            .trim()
            .parse()
            .with_context(|| format!("--target {spec:?}: {floor:?} is not a number"))?;
        let mut parts = key.splitn(3, '/').map(str::trim);
        let system = parts.next().unwrap_or_default().to_string();
        let ranker = parts.next().unwrap_or("learned").to_string();
        let telemetry = parts.next().unwrap_or("full telemetry").to_string();
        if system.is_empty() {
            bail!("--target {spec:?}: no system named");
        }
        Ok(Target {
            system,
            ranker,
            telemetry,
            ac1,
        })
    }
}

/// The targets beside what was reached: printed, not enforced (`--min-loso-ac1` and
/// `--require-reference` are the gates).
fn target_table(specs: &[String], rows: &[Row]) -> anyhow::Result<String> {
    let mut out = String::from("Targets (AC@1; printed, not gates)\n\n");
    out.push_str(&format!(
        "{:<16} {:<11} {:<24} {:>7} {:>8}  MET\n",
        "SYSTEM", "RANKER", "TELEMETRY", "TARGET", "REACHED"
    ));
    for spec in specs {
        let target = Target::parse(spec)?;
        let reached = rows
            .iter()
            .find(|r| {
                r.system == target.system
                    && r.ranker == target.ranker
                    && r.telemetry == target.telemetry
            })
            .map(|r| r.report.overall.ac1)
            .with_context(|| {
                format!(
                    "--target {spec:?}: no row for {} / {} / {} (telemetry as the ablation \
                     table names it; --ablations for rows other than full telemetry)",
                    target.system, target.ranker, target.telemetry
                )
            })?;
        out.push_str(&format!(
            "{:<16} {:<11} {:<24} {:>7.2} {:>8.3}  {}\n",
            target.system,
            target.ranker,
            target.telemetry,
            target.ac1,
            reached,
            if reached + 1e-9 >= target.ac1 {
                "yes"
            } else {
                "NO"
            }
        ));
    }
    Ok(out)
}

fn check_gates(options: &LosoOptions, rows: &[Row]) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    if options.require_reference {
        let mut keys: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.system.as_str(), r.telemetry.as_str()))
            .collect();
        keys.dedup();
        for (system, telemetry) in keys {
            if let Some(gaps) = reference_gap(rows, system, telemetry)
                && !gaps.is_empty()
            {
                failures.push(format!(
                    "{system}, {telemetry}: the served ranker is below the better reference ranker: {}",
                    gaps.join(", ")
                ));
            }
        }
    }
    for gate in &options.min_ac1 {
        let (system, floor) = gate
            .split_once('=')
            .with_context(|| format!("--min-loso-ac1 takes SYSTEM=FLOOR, got {gate:?}"))?;
        let floor: f64 = floor
            .parse()
            .with_context(|| format!("--min-loso-ac1 {gate:?}: not a number"))?;
        let row = rows
            .iter()
            .find(|r| r.system == system && r.ranker == "learned" && r.telemetry == describe(&[]))
            .with_context(|| format!("--min-loso-ac1: no system named {system:?}"))?;
        if row.report.overall.ac1 < floor {
            failures.push(format!(
                "{system}: learned AC@1 {:.3} is below the floor {floor:.3}",
                row.report.overall.ac1
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("the yardstick's gates failed:\n  {}", failures.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_defaults_to_the_served_ranker_with_full_telemetry() {
        let full = Target::parse("bookinfo=0.9").unwrap();
        assert_eq!(
            full,
            Target {
                system: "bookinfo".into(),
                ranker: "learned".into(),
                telemetry: "full telemetry".into(),
                ac1: 0.9
            }
        );
        let ablated = Target::parse("train-ticket/cold-start/without logs, traces=0.55").unwrap();
        assert_eq!(ablated.ranker, "cold-start");
        assert_eq!(ablated.telemetry, "without logs, traces");
        assert!(Target::parse("bookinfo").is_err());
        assert!(Target::parse("=0.5").is_err());
        assert!(Target::parse("bookinfo=high").is_err());
    }

    #[test]
    fn versioned_workloads_map_to_their_service_and_others_to_themselves() {
        assert_eq!(service_of("reviews-v2"), "reviews");
        assert_eq!(service_of("details-v1"), "details");
        assert_eq!(service_of("ts-travel-service"), "ts-travel-service");
        assert_eq!(service_of("api-vx"), "api-vx");
        assert_eq!(service_of("-v1"), "-v1");
    }
}
