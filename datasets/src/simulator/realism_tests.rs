//! Tests of the realism traits: the clean simulator unchanged, determinism with realism on, the
//! disk format's round trip, and one shape test per trait checking the data has it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rootcause_models::case::{EdgeSeries, Family, Series, Source};
use rootcause_models::diagnosis::FaultType;
use rootcause_topology::Topology;

use super::random::derived;
use super::realism::late_generators;
use super::tests::{
    assert_kept, awkward_names, example, generated, options, reseeded, written, written_and_loaded,
};
use super::*;

/// A fingerprint of everything `write` puts on disk for a few runs of the default options.
fn default_fingerprint() -> u64 {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let (document, topology) = generated(300, 5);
    let runs = [
        ("synthetic", document, topology, options(25)),
        (
            "online-boutique",
            example("online-boutique").to_document(),
            example("online-boutique"),
            reseeded(&options(10), 7),
        ),
    ];
    for (system, document, topology, options) in runs {
        let cases = simulate(&topology, system, &options);
        for (path, bytes) in written(&document, &cases) {
            parts.push(path.to_string_lossy().into_owned().into_bytes());
            parts.push(bytes);
        }
    }
    let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    crate::hash::stable_hash(&slices)
}

/// Computed from the simulator as it was before realism existed (same runs, same fingerprint).
/// It depends on the platform's `exp`/`ln`/`sin` only as far as every simulated number does.
const CLEAN_FINGERPRINT: u64 = 0x200a_4a13_cb2a_5065;

#[test]
fn realism_none_reproduces_the_clean_simulator_byte_for_byte() {
    assert_eq!(Options::default().realism, Realism::none());
    assert_eq!(default_fingerprint(), CLEAN_FINGERPRINT);
}

fn realistic(realism: Realism, cases: usize) -> Options {
    Options {
        realism,
        ..options(cases)
    }
}

/// Mean of the finite values (NaN when there are none).
fn mean(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.iter().sum::<f64>() / finite.len() as f64
}

fn find<'a>(case: &'a SimulatedCase, service: &str, name: &str) -> Option<&'a Series> {
    case.series
        .iter()
        .find(|s| s.service == service && s.name == name)
}

/// (before, after) means of a series: the half hour before the anchor (as far as it goes), and
/// minutes 5 to 10 after it, when every fault has ramped up.
fn shift(series: &Series, anchor: i64) -> (f64, f64) {
    (
        mean(series.window(anchor - 1800, anchor)),
        mean(series.window(anchor + 300, anchor + 601)),
    )
}

fn edge_shift(edge: &EdgeSeries, anchor: i64) -> (f64, f64) {
    (
        mean(edge.window(anchor - 1800, anchor)),
        mean(edge.window(anchor + 300, anchor + 601)),
    )
}

/// Values equal bit for bit, so that NaN equals NaN.
fn same_values(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn assert_same_series(loaded: &[Series], expected: &[Series], id: &str) {
    assert_eq!(loaded.len(), expected.len(), "{id}");
    for (l, e) in loaded.iter().zip(expected) {
        assert_eq!(
            (&l.service, l.source, l.family, &l.name, &l.times),
            (&e.service, e.source, e.family, &e.name, &e.times),
            "{id}"
        );
        assert!(same_values(&l.values, &e.values), "{id}: {}", e.name);
    }
}

fn assert_same_edges(loaded: &[EdgeSeries], expected: &[EdgeSeries], id: &str) {
    assert_eq!(loaded.len(), expected.len(), "{id}");
    for (l, e) in loaded.iter().zip(expected) {
        assert_eq!(
            (&l.caller, &l.callee, &l.name, &l.times),
            (&e.caller, &e.callee, &e.name, &e.times),
            "{id}"
        );
        assert!(same_values(&l.values, &e.values), "{id}: {}", e.name);
    }
}

/// A metric name without its `{instance="..."}` label.
fn metric_part(name: &str) -> &str {
    name.split('{').next().unwrap_or(name)
}

#[test]
fn realism_is_deterministic_by_seed() {
    let (document, topology) = generated(120, 3);
    for realism in [Realism::default(), Realism::all()] {
        let options = realistic(realism, 6);
        let first = simulate(&topology, "synthetic", &options);
        let again = simulate(&topology, "synthetic", &options);
        let bytes = written(&document, &first);
        assert_eq!(bytes, written(&document, &again));
        let other = simulate(&topology, "synthetic", &reseeded(&options, 2));
        assert_ne!(bytes, written(&document, &other));
        // Traits are drawn per case, from the case's own generator.
        assert_eq!(
            first.iter().map(|c| &c.realism).collect::<Vec<_>>(),
            again.iter().map(|c| &c.realism).collect::<Vec<_>>()
        );
    }
}

#[test]
fn default_realism_draws_each_trait_at_its_probability() {
    let realism = Realism::default();
    let draws: Vec<Vec<Trait>> = (0..4000u64)
        .map(|i| {
            realism.draw(
                &mut derived(9, &[i, REALISM]),
                &mut late_generators(9, i, LATE_REALISM),
            )
        })
        .collect();
    for one in Trait::ALL {
        let share = draws.iter().filter(|d| d.contains(&one)).count() as f64 / 4000.0;
        let p = realism.probability(one);
        assert!((0.2..=0.4).contains(&p), "{one:?} {p}");
        assert!(
            (share - p).abs() < 0.03,
            "{one:?}: {share} drawn, {p} asked"
        );
    }
    let clean = draws.iter().filter(|d| d.is_empty()).count();
    let messy = draws.iter().filter(|d| d.len() >= 4).count();
    assert!(
        clean > 50 && messy > 200,
        "{clean} clean, {messy} with 4 traits or more"
    );
    assert!(Realism::none().is_none() && !realism.is_none());
    assert_eq!(Realism::only(Trait::Sparse).probability(Trait::Sparse), 1.0);
    for one in Trait::ALL {
        assert_eq!(Trait::from_name(one.as_str()), Some(one));
    }
}

#[test]
fn code_faults_come_only_with_traces_and_logs() {
    let topology = example("online-boutique");
    let cases = simulate(&topology, "ob", &realistic(Realism::default(), 300));
    let (mut traced, mut code) = (0, 0);
    for case in &cases {
        let has_traces = case.realism.has(Trait::TracesLogs);
        traced += usize::from(has_traces);
        if Fault::CODE.contains(&case.fault) {
            code += 1;
            assert!(has_traces, "{}", case.id);
            let kind = topology.service(&case.root_cause).unwrap().kind;
            assert!(matches!(
                kind,
                rootcause_topology::ServiceKind::Service | rootcause_topology::ServiceKind::Gateway
            ));
        }
        // case.json records the traits; rankers see none of it.
        let label = case.clone().into_case(None).label.unwrap();
        assert_eq!(Fault::from_name(&label.fault_type), Some(case.fault));
    }
    let share = code as f64 / traced as f64;
    assert!(
        (0.15..0.45).contains(&share),
        "{code} code faults in {traced}"
    );
    let none = Realism {
        traces_logs: 0.0,
        code_faults: 1.0,
        ..Realism::all()
    };
    assert!(
        simulate(&topology, "ob", &realistic(none, 20))
            .iter()
            .all(|c| !Fault::CODE.contains(&c.fault))
    );
}

#[test]
fn code_fault_labels_are_code_faults_with_a_resolving_action() {
    for fault in Fault::CODE {
        assert_eq!(FaultType::from_label(fault.as_str()), Some(FaultType::Code));
        assert_eq!(Fault::from_name(fault.as_str()), Some(fault));
        assert!(!Fault::ALL.contains(&fault));
    }
    let topology = example("train-ticket");
    let realism = Realism {
        code_faults: 1.0,
        ..Realism::only(Trait::TracesLogs)
    };
    let cases = simulate(&topology, "tt", &realistic(realism, 50));
    let mut actions: BTreeMap<Fault, BTreeMap<Action, usize>> = BTreeMap::new();
    for case in &cases {
        *actions
            .entry(case.fault)
            .or_default()
            .entry(case.action)
            .or_default() += 1;
    }
    let wrong = &actions[&Fault::WrongReturn];
    let exception = &actions[&Fault::Exception];
    assert!(
        wrong
            .keys()
            .all(|a| [Action::Rollback, Action::Restart].contains(a))
            && wrong.get(&Action::Rollback) > wrong.get(&Action::Restart),
        "{actions:?}"
    );
    assert!(
        exception
            .keys()
            .all(|a| [Action::Rollback, Action::Restart].contains(a))
            && exception.get(&Action::Restart) > exception.get(&Action::Rollback),
        "{actions:?}"
    );
}

#[test]
fn every_trait_round_trips_through_the_disk_format() {
    let topology = awkward_names();
    let mut checked = BTreeSet::new();
    for (system, topology) in [
        ("odd", topology),
        ("online-boutique", example("online-boutique")),
    ] {
        let document = topology.to_document();
        let realism = Realism {
            no_topology: 0.5,
            ..Realism::all()
        };
        let cases = simulate(&topology, system, &realistic(realism, 12));
        let (dir, loaded) = written_and_loaded(&document, &cases);
        assert_eq!(loaded.len(), cases.len());
        let shared = Arc::new(Topology::from_document(document).unwrap());
        for (loaded, case) in loaded.iter().zip(&cases) {
            let case_dir = dir.path().join(&case.id);
            for file in ["series.json", "traces.csv", "logs.csv", "edges.csv"] {
                assert!(case_dir.join(file).is_file(), "{} {file}", case.id);
            }
            let text = std::fs::read_to_string(case_dir.join("case.json")).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let traits = json["realism"]["traits"].as_array().unwrap();
            assert_eq!(traits.len(), case.realism.traits.len());
            assert!(traits.len() >= 8);
            assert_eq!(
                json["topology"].as_bool(),
                loaded.topology.is_none().then_some(false)
            );
            let expected = case.clone().into_case(Some(shared.clone()));
            assert_kept(loaded, &expected);
            assert!(loaded.normal_windows.is_empty() && expected.normal_windows.is_empty());
            assert_eq!(loaded.topology.is_some(), expected.topology.is_some());
            assert_eq!(
                loaded.topology.is_none(),
                case.realism.has(Trait::NoTopology)
            );
            assert_same_series(&loaded.series, &expected.series, &case.id);
            assert_same_edges(&loaded.edges, &expected.edges, &case.id);
            for s in &expected.series {
                checked.insert(s.source);
                if s.name.contains("{instance=") {
                    checked.insert(Source::Metric);
                }
            }
            assert!(
                expected
                    .series
                    .iter()
                    .any(|s| s.values.iter().any(|v| v.is_nan()))
            );
            assert!(
                expected
                    .series
                    .iter()
                    .any(|s| s.name.contains("{instance=\""))
            );
            assert!(!expected.edges.is_empty());
        }
        let services: BTreeSet<&str> = cases
            .iter()
            .flat_map(|c| &c.edges)
            .flat_map(|e| [e.caller.as_str(), e.callee.as_str()])
            .collect();
        if system == "odd" {
            assert!(services.contains("order|db"), "{services:?}");
        }
    }
    assert_eq!(checked.len(), 3);
}

#[test]
fn columns_missing_from_series_json_follow_the_default_rules() {
    let topology = example("online-boutique");
    let realism = Realism {
        no_topology: 0.0,
        ..Realism::all()
    };
    let cases = simulate(&topology, "ob", &realistic(realism, 3));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &topology.to_document(), &cases).unwrap();
    for case in &cases {
        // Metrics under another vocabulary need no entry: their family is what the name says.
        let text = std::fs::read_to_string(dir.path().join(&case.id).join("series.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(meta.get("metrics.csv").is_none(), "{}", case.id);
        std::fs::remove_file(dir.path().join(&case.id).join("series.json")).unwrap();
    }
    for (loaded, case) in load(dir.path()).unwrap().iter().zip(&cases) {
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        assert_eq!(loaded.series.len(), case.series.len());
        assert_eq!(loaded.edges.len(), case.edges.len());
        for (l, e) in loaded.series.iter().zip(&case.series) {
            assert_eq!(
                (&l.service, l.source, &l.name),
                (&e.service, e.source, &e.name)
            );
            assert_eq!(
                l.family,
                Family::classify(metric_part(&e.name)),
                "{}",
                e.name
            );
            assert!(same_values(&l.values, &e.values));
        }
    }
}

#[test]
fn coarse_metrics_are_five_minutes_apart_with_few_abnormal_samples() {
    let (_, topology) = generated(120, 5);
    let cases = simulate(
        &topology,
        "synthetic",
        &realistic(Realism::only(Trait::Coarse), 15),
    );
    for case in &cases {
        assert!(case.realism.has(Trait::Coarse));
        for s in &case.series {
            assert!(
                s.times.windows(2).all(|w| w[1] - w[0] == 300),
                "{}",
                case.id
            );
            assert!(s.times[0] <= case.anchor - 7200 + 300);
            assert!(*s.times.last().unwrap() <= case.anchor + 900);
            let abnormal = s.window(case.anchor, case.anchor + 900).len();
            assert!((1..=3).contains(&abnormal), "{}: {abnormal}", case.id);
        }
        assert_eq!(
            case.normal_windows,
            vec![(case.series[0].times[0], case.anchor)]
        );
    }
}

#[test]
fn sparse_services_are_mostly_missing_and_jump() {
    let (_, topology) = generated(120, 6);
    let cases = simulate(
        &topology,
        "synthetic",
        &realistic(Realism::only(Trait::Sparse), 20),
    );
    let (mut missing, mut total, mut traps) = (0, 0, 0);
    for case in &cases {
        let sparse = &case.realism.sparse;
        assert!((1..=3).contains(&sparse.len()), "{}: {sparse:?}", case.id);
        assert!(!sparse.contains(&case.root_cause));
        for s in &case.series {
            let nan = s.values.iter().filter(|v| v.is_nan()).count();
            if !sparse.contains(&s.service) {
                assert_eq!(nan, 0, "{} {}", case.id, s.service);
                continue;
            }
            missing += nan;
            total += s.values.len();
            assert!(
                nan * 10 >= s.values.len() * 4,
                "{} {}: {nan}",
                s.service,
                s.name
            );
        }
        // In the abnormal window, one present sample jumped far above the service's level.
        for service in sparse {
            let jumped = ["latency_p99_ms", "error_rate", "request_rate"]
                .iter()
                .any(|&m| {
                    let s = find(case, service, m).unwrap();
                    let at = s.times.iter().position(|&t| t >= case.anchor).unwrap();
                    let mut others: Vec<f64> = s
                        .values
                        .iter()
                        .enumerate()
                        .filter(|&(i, v)| i != at && v.is_finite())
                        .map(|(_, v)| *v)
                        .collect();
                    others.sort_by(f64::total_cmp);
                    let median = others.get(others.len() / 2).copied().unwrap_or(0.0);
                    s.values[at].is_finite() && s.values[at] >= 4.0 * median && s.values[at] > 0.0
                });
            traps += usize::from(jumped);
        }
    }
    let share = missing as f64 / total as f64;
    assert!((0.55..0.9).contains(&share), "{share}");
    let sparse_services: usize = cases.iter().map(|c| c.realism.sparse.len()).sum();
    assert!(
        traps * 10 >= sparse_services * 9,
        "{traps}/{sparse_services}"
    );
}

#[test]
fn sub_resources_split_metrics_by_instance_and_the_fault_hits_one() {
    let (_, topology) = generated(120, 7);
    let options = Options {
        fault_mix: vec![(Fault::Cpu, 1.0), (Fault::Errors, 1.0)],
        ..realistic(Realism::only(Trait::SubResources), 40)
    };
    let mut checked = 0;
    for case in simulate(&topology, "synthetic", &options) {
        assert!(!case.realism.instances.is_empty(), "{}", case.id);
        for (service, &count) in &case.realism.instances {
            let names: BTreeSet<&str> = case
                .series
                .iter()
                .filter(|s| &s.service == service)
                .map(|s| s.name.as_str())
                .collect();
            assert_eq!(names.len(), count * METRICS.len(), "{service}");
            for i in 0..count {
                for metric in METRICS {
                    let name = format!("{metric}{{instance=\"{service}-{i}\"}}");
                    assert!(names.contains(name.as_str()), "{name}");
                    let s = find(&case, service, &name).unwrap();
                    assert_eq!(s.family, Family::classify(metric));
                }
            }
            // The service-level aggregate is gone.
            assert!(METRICS.iter().all(|m| !names.contains(m)));
        }
        for s in &case.series {
            if !case.realism.instances.contains_key(&s.service) {
                assert!(METRICS.contains(&s.name.as_str()));
            }
        }
        let root = &case.root_cause;
        let Some(&count) = case.realism.instances.get(root) else {
            assert!(case.realism.faulty_instance.is_none());
            continue;
        };
        let faulty = case.realism.faulty_instance.clone().unwrap();
        let metric = if case.fault == Fault::Cpu {
            "cpu_usage"
        } else {
            "error_rate"
        };
        let rise = |instance: &str| {
            let name = format!("{metric}{{instance=\"{instance}\"}}");
            let (before, after) = shift(find(&case, root, &name).unwrap(), case.anchor);
            after - before
        };
        let hit = rise(&faulty);
        for i in 0..count {
            let instance = format!("{root}-{i}");
            if instance == faulty {
                continue;
            }
            let other = rise(&instance);
            assert!(
                other < hit / 4.0,
                "{}: {instance} {other} vs {faulty} {hit}",
                case.id
            );
        }
        let floor = if case.fault == Fault::Cpu { 20.0 } else { 0.05 };
        assert!(hit > floor, "{}: {hit}", case.id);
        checked += 1;
    }
    assert!(checked >= 8, "{checked} cases with a per-instance root");
}

#[test]
fn unseen_names_use_another_vocabulary_classified_by_name() {
    let (_, topology) = generated(120, 8);
    let options = Options {
        fault_mix: vec![(Fault::Errors, 1.0)],
        ..realistic(Realism::only(Trait::UnseenNames), 30)
    };
    let mut vocabularies = BTreeSet::new();
    let mut families = BTreeSet::new();
    let mut availability_fell = 0;
    for case in simulate(&topology, "synthetic", &options) {
        vocabularies.insert(case.realism.vocabulary.clone().unwrap());
        for s in &case.series {
            assert!(!METRICS.contains(&metric_part(&s.name)), "{}", s.name);
            assert_eq!(s.family, Family::classify(&s.name), "{}", s.name);
            families.insert(s.family);
        }
        if let Some(s) = find(&case, &case.root_cause, "availability") {
            let (before, after) = shift(s, case.anchor);
            assert!(before > 98.0 && before <= 100.0);
            availability_fell += usize::from(after < before - 5.0);
        }
    }
    assert_eq!(vocabularies.len(), 3, "{vocabularies:?}");
    assert!(
        families.contains(&Family::Other) && families.len() >= 6,
        "{families:?}"
    );
    assert!(availability_fell >= 1);
}

#[test]
fn no_topology_cases_have_none_and_rank_what_has_data() {
    let (document, topology) = generated(120, 9);
    let cases = simulate(
        &topology,
        "synthetic",
        &realistic(Realism::only(Trait::NoTopology), 10),
    );
    let shared = Arc::new(topology.clone());
    let (_dir, loaded) = written_and_loaded(&document, &cases);
    for (case, loaded) in cases.iter().zip(&loaded) {
        let with_data: BTreeSet<&str> = case
            .series
            .iter()
            .map(|s| s.service.as_str())
            .chain(case.alerts.iter().map(|a| a.service()))
            .collect();
        let candidates: BTreeSet<&str> = case.candidates.iter().map(String::as_str).collect();
        assert_eq!(with_data, candidates, "{}", case.id);
        assert!(
            case.clone()
                .into_case(Some(shared.clone()))
                .topology
                .is_none()
        );
        assert!(loaded.topology.is_none() && loaded.notes.is_empty());
    }
}

#[test]
fn no_baseline_data_starts_just_before_the_anchor_and_still_shows_the_fault() {
    let (_, topology) = generated(120, 10);
    let realism = Realism {
        traces_logs: 1.0,
        ..Realism::only(Trait::NoBaseline)
    };
    let options = Options {
        fault_mix: vec![(Fault::Cpu, 1.0)],
        ..realistic(realism, 15)
    };
    let mut shown = 0;
    for case in simulate(&topology, "synthetic", &options) {
        assert!(case.normal_windows.is_empty());
        let times = case
            .series
            .iter()
            .flat_map(|s| &s.times)
            .chain(case.edges.iter().flat_map(|e| &e.times));
        assert!(
            times.into_iter().all(|&t| t >= case.anchor - 120),
            "{}",
            case.id
        );
        if let Some(cpu) = find(&case, &case.root_cause, "cpu_usage") {
            let first = cpu.values[0];
            let peak = cpu.values.iter().copied().fold(f64::MIN, f64::max);
            assert!(cpu.times[0] <= case.anchor);
            shown += usize::from(peak > first + 20.0);
        }
    }
    assert!(shown >= 10, "{shown}");
}

#[test]
fn releases_add_innocent_deploys_around_the_anchor() {
    let topology = example("train-ticket");
    for fault in [Fault::Deploy, Fault::Cpu] {
        let options = Options {
            fault_mix: vec![(fault, 1.0)],
            noise_changes: 0.0,
            ..realistic(Realism::only(Trait::Releases), 30)
        };
        let mut after = 0;
        for case in simulate(&topology, "tt", &options) {
            let deploys: Vec<&CaseChange> =
                case.changes.iter().filter(|c| c.kind == "deploy").collect();
            let root = &case.root_cause;
            let near = |c: &&&CaseChange| (c.at - case.anchor).abs() <= 1800;
            let faulty: Vec<_> = deploys
                .iter()
                .filter(|c| &c.service == root && c.at < case.anchor && c.at >= case.anchor - 300)
                .collect();
            let others: Vec<_> = deploys.iter().filter(|c| &c.service != root).collect();
            assert!((2..=4).contains(&others.len()), "{}", case.id);
            assert!(others.iter().all(near));
            assert!(others.iter().all(|c| case.candidates.contains(&c.service)));
            after += others.iter().filter(|c| c.at > case.anchor).count();
            match fault {
                Fault::Deploy => {
                    assert!(deploys.len() >= 3, "{}", case.id);
                    assert_eq!(faulty.len(), 1, "{}", case.id);
                }
                _ => assert!(faulty.is_empty()),
            }
            // An innocent root release, if any, is an hour old.
            for c in deploys.iter().filter(|c| &c.service == root) {
                assert!(faulty.contains(&c) || c.at <= case.anchor - 3000);
            }
        }
        assert!(after >= 30, "{after} releases after the anchor");
    }
}

#[test]
fn silent_intermediaries_raise_no_alert_and_the_root_stays_a_candidate() {
    let (_, topology) = generated(300, 12);
    let options = Options {
        fault_mix: vec![(Fault::Latency, 1.0), (Fault::Errors, 1.0)],
        propagation: 0.95,
        propagation_decay: 0.9,
        ..realistic(Realism::only(Trait::SilentIntermediaries), 40)
    };
    let (mut cases_silenced, mut echoes, mut intermediaries) = (0, 0, 0);
    for case in simulate(&topology, "synthetic", &options) {
        assert!(case.affected.iter().all(|a| a.hops <= 3));
        if case.realism.silenced.is_empty() {
            continue;
        }
        cases_silenced += 1;
        assert!(case.candidates.contains(&case.root_cause), "{}", case.id);
        for service in &case.realism.silenced {
            assert_ne!(service, &case.root_cause);
            let hit = case
                .affected
                .iter()
                .find(|a| &a.service == service)
                .unwrap();
            assert!(hit.hops >= 1);
            assert!(
                case.alerts
                    .iter()
                    .all(|a| a.service() != service || a.cause == AlertCause::Noise),
                "{}: {service} alerted",
                case.id
            );
            // Its metrics still show the echo.
            intermediaries += 1;
            let moved = ["latency_p99_ms", "error_rate"].iter().any(|m| {
                find(&case, service, m).is_some_and(|s| {
                    let (before, after) = shift(s, case.anchor);
                    after > 1.3 * before
                })
            });
            echoes += usize::from(moved);
        }
    }
    assert!(cases_silenced >= 10, "{cases_silenced}");
    assert!(
        echoes * 10 >= intermediaries * 7,
        "{echoes}/{intermediaries}"
    );
}

#[test]
fn traces_logs_and_edges_follow_where_the_fault_sits() {
    let (_, topology) = generated(150, 13);
    let options = Options {
        fault_mix: vec![
            (Fault::Latency, 2.0),
            (Fault::Cpu, 1.0),
            (Fault::Errors, 1.0),
        ],
        ..realistic(Realism::only(Trait::TracesLogs), 50)
    };
    let (mut network, mut slow, mut cpu, mut errors) = (0, 0, 0, 0);
    for case in simulate(&topology, "synthetic", &options) {
        // Every candidate has the span and log statistics, every call between candidates its
        // edge series.
        for service in &case.candidates {
            for (name, source, family) in [
                ("span_count", Source::Trace, Family::Traffic),
                ("duration_p50_ms", Source::Trace, Family::Latency),
                ("duration_p90_ms", Source::Trace, Family::Latency),
                ("duration_p99_ms", Source::Trace, Family::Latency),
                ("self_ms_mean", Source::Trace, Family::Latency),
                ("error_spans", Source::Trace, Family::Errors),
                ("log_lines", Source::Log, Family::Traffic),
                ("log_error", Source::Log, Family::Errors),
                ("log_warn", Source::Log, Family::Errors),
                ("log_exception", Source::Log, Family::Errors),
            ] {
                let s = find(&case, service, name).unwrap_or_else(|| panic!("{service} {name}"));
                assert_eq!((s.source, s.family), (source, family));
                assert!(s.times.windows(2).all(|w| w[1] - w[0] == 60));
            }
            let templates: Vec<&Series> = case
                .series
                .iter()
                .filter(|s| &s.service == service && s.name.starts_with("template:"))
                .collect();
            let info = templates
                .iter()
                .filter(|s| s.name.starts_with("template:INFO "))
                .count();
            assert!((5..=15).contains(&info), "{info}");
            assert!(
                templates
                    .iter()
                    .any(|s| s.name.starts_with("template:WARN "))
            );
            assert!(templates.iter().all(|s| s.family == Family::Template));
            for callee in topology.callees(service, 1).unwrap() {
                if case.candidates.iter().any(|c| c == callee.service) {
                    for name in ["calls", "callee_ms", "network_ms", "errors"] {
                        assert!(case.edges.iter().any(|e| &e.caller == service
                            && e.callee == callee.service
                            && e.name == name));
                    }
                }
            }
        }
        let root = &case.root_cause;
        if !case.candidates.contains(root) {
            continue;
        }
        let ratio = |name: &str| {
            let (before, after) = shift(find(&case, root, name).unwrap(), case.anchor);
            after / before
        };
        let root_edges: Vec<&EdgeSeries> = case
            .edges
            .iter()
            .filter(|e| e.name == "network_ms" && (&e.caller == root || &e.callee == root))
            .collect();
        let callers: Vec<&str> = case
            .affected
            .iter()
            .filter(|a| a.hops == 1 && case.candidates.contains(&a.service))
            .map(|a| a.service.as_str())
            .collect();
        match case.fault {
            Fault::Latency if case.realism.network_fault => {
                // Every call into and out of the root slows on the wire; its own spans do not.
                assert!(!root_edges.is_empty());
                for e in &root_edges {
                    let (before, after) = edge_shift(e, case.anchor);
                    assert!(after > before + 10.0, "{} {e:?}", case.id);
                }
                assert!(ratio("self_ms_mean") < 1.25, "{}", case.id);
                assert!(ratio("duration_p50_ms") < 1.25, "{}", case.id);
                network += 1;
            }
            Fault::Latency => {
                assert!(ratio("self_ms_mean") > 2.0 && ratio("duration_p99_ms") > 2.0);
                for e in &root_edges {
                    let (before, after) = edge_shift(e, case.anchor);
                    assert!(after < before * 1.5 + 1.0, "{} {e:?}", case.id);
                }
                // Callers' spans include the root's time; their own time does not change.
                for caller in &callers {
                    let (b, a) =
                        shift(find(&case, caller, "duration_p99_ms").unwrap(), case.anchor);
                    assert!(a > 1.2 * b, "{} {caller}", case.id);
                    let (b, a) = shift(find(&case, caller, "self_ms_mean").unwrap(), case.anchor);
                    assert!(a < 1.25 * b, "{} {caller}", case.id);
                }
                slow += 1;
            }
            Fault::Cpu => {
                assert!(ratio("self_ms_mean") > 1.3, "{}", case.id);
                cpu += 1;
            }
            Fault::Errors => {
                // Failed calls into the root, and (weaker) error spans of its callers.
                let into: f64 = case
                    .edges
                    .iter()
                    .filter(|e| e.name == "errors" && &e.callee == root)
                    .map(|e| {
                        let (before, after) = edge_shift(e, case.anchor);
                        after - before
                    })
                    .sum();
                assert!(callers.is_empty() || into > 0.0, "{}", case.id);
                assert!(ratio("error_spans") > 3.0, "{}", case.id);
                errors += 1;
            }
            _ => unreachable!(),
        }
    }
    assert!(
        network >= 3 && slow >= 3 && cpu >= 3 && errors >= 3,
        "{network} {slow} {cpu} {errors}"
    );
}

/// Cases with traces and logs and a code fault, on a topology with callers: simulated once for
/// the tests that read them.
fn code_fault_cases() -> &'static [SimulatedCase] {
    static CASES: std::sync::OnceLock<Vec<SimulatedCase>> = std::sync::OnceLock::new();
    CASES.get_or_init(|| {
        let (_, topology) = generated(150, 14);
        let realism = Realism {
            code_faults: 1.0,
            ..Realism::only(Trait::TracesLogs)
        };
        simulate(&topology, "synthetic", &realistic(realism, 40))
    })
}

#[test]
fn exception_silences_a_root_template_while_traffic_holds() {
    let (mut checked, mut new_error) = (0, 0);
    for case in code_fault_cases() {
        let root = &case.root_cause;
        if case.fault != Fault::Exception || !case.candidates.contains(root) {
            continue;
        }
        let quiet = case.realism.quiet_template.as_ref().unwrap();
        let ratio = |name: &str| {
            let (before, after) = shift(find(case, root, name).unwrap(), case.anchor);
            after / before
        };
        assert!(ratio(quiet) < 0.2, "{}: {quiet}", case.id);
        assert!((0.75..1.33).contains(&ratio("span_count")), "{}", case.id);
        let (before, after) = shift(find(case, root, "error_spans").unwrap(), case.anchor);
        assert!(
            after > before + 3.0,
            "{}: error spans {before} → {after}",
            case.id
        );
        // Resource metrics barely move.
        let (before, after) = shift(find(case, root, "cpu_usage").unwrap(), case.anchor);
        assert!(after < before + 10.0);
        // Callers see failed calls into the root.
        let into: f64 = case
            .edges
            .iter()
            .filter(|e| e.name == "errors" && &e.callee == root)
            .map(|e| edge_shift(e, case.anchor).1)
            .sum();
        assert!(into > 0.0 || !case.edges.iter().any(|e| &e.callee == root));
        new_error += usize::from(case.realism.new_templates.contains_key(root));
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
    assert!(
        new_error * 2 < checked,
        "a new template in {new_error}/{checked}"
    );
}

#[test]
fn wrong_return_adds_a_new_failure_template_at_the_root() {
    let (mut checked, mut caller_warnings) = (0, 0);
    for case in code_fault_cases() {
        let root = &case.root_cause;
        if case.fault != Fault::WrongReturn || !case.candidates.contains(root) {
            continue;
        }
        let added = &case.realism.new_templates[root];
        assert_eq!(added.len(), 1);
        let template = &added[0];
        assert!(
            template.starts_with("template:ERROR ") || template.starts_with("template:WARN "),
            "{template}"
        );
        let s = find(case, root, template).unwrap();
        let before: f64 = s.window(case.anchor - 1800, case.anchor).iter().sum();
        let after: f64 = s.window(case.anchor + 60, case.anchor + 601).iter().sum();
        assert_eq!(before, 0.0, "{}", case.id);
        assert!(after >= 30.0, "{}: {after}", case.id);
        let (before, after) = shift(find(case, root, "error_spans").unwrap(), case.anchor);
        assert!(after > before, "{}", case.id);
        caller_warnings += case.realism.new_templates.len() - 1;
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
    assert!(caller_warnings >= 1);
}
