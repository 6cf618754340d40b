use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rootcause_topology::{Format, ServiceKind, Topology, TopologyDocument};

use super::*;
use crate::synthetic::{self, Shape};
use rootcause_topology::bundled;

pub(super) fn example(name: &str) -> Topology {
    bundled::find(name).unwrap().topology()
}

pub(super) fn generated(services: usize, seed: u64) -> (TopologyDocument, Topology) {
    let document = synthetic::generate(&Shape::with_services(services, seed));
    let topology = Topology::from_document(document.clone()).unwrap();
    (document, topology)
}

pub(super) fn options(cases: usize) -> Options {
    Options {
        cases,
        ..Options::default()
    }
}

/// `options` under another seed.
pub(super) fn reseeded(options: &Options, seed: u64) -> Options {
    Options {
        seed,
        ..options.clone()
    }
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

pub(super) fn written(
    document: &TopologyDocument,
    cases: &[SimulatedCase],
) -> BTreeMap<PathBuf, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), document, cases).unwrap();
    files(dir.path())
}

/// `cases` written to a temporary directory and loaded back (the directory lives as long as the
/// returned guard).
pub(super) fn written_and_loaded(
    document: &TopologyDocument,
    cases: &[SimulatedCase],
) -> (tempfile::TempDir, Vec<rootcause_models::case::Case>) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), document, cases).unwrap();
    let loaded = load(dir.path()).unwrap();
    (dir, loaded)
}

/// Asserts that a loaded case kept what every case keeps through the disk format: no notes,
/// and the simulated case's id, system, anchor, label, candidates, alerts and changes.
pub(super) fn assert_kept(
    loaded: &rootcause_models::case::Case,
    expected: &rootcause_models::case::Case,
) {
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    assert_eq!(loaded.id, expected.id);
    assert_eq!(loaded.system, expected.system);
    assert_eq!(loaded.anchor, expected.anchor);
    assert_eq!(loaded.label, expected.label);
    assert_eq!(loaded.candidates, expected.candidates);
    assert_eq!(loaded.alerts, expected.alerts);
    assert_eq!(loaded.changes, expected.changes);
}

fn set(reach: Vec<rootcause_topology::Reach<'_>>) -> BTreeSet<String> {
    reach.into_iter().map(|r| r.service.to_owned()).collect()
}

#[test]
fn same_seed_same_files_other_seed_other_files() {
    let (document, topology) = generated(300, 5);
    let options = options(15);
    let first = simulate(&topology, "synthetic", &options);
    let again = simulate(&topology, "synthetic", &options);
    let files_first = written(&document, &first);
    assert_eq!(files_first.len(), 1 + 15 * 4);
    assert_eq!(files_first, written(&document, &again));

    // The order the topology was built in does not matter, only its content.
    let mut reversed = document.clone();
    reversed.services.reverse();
    reversed.dependencies.reverse();
    let reversed = Topology::from_document(reversed).unwrap();
    assert_eq!(simulate(&reversed, "synthetic", &options), first);

    let other = simulate(&topology, "synthetic", &reseeded(&options, 2));
    let files_other = written(&document, &other);
    assert_eq!(files_other.len(), files_first.len());
    // Change lists are often empty under both seeds; everything else differs.
    for (path, bytes) in &files_first {
        let name = path.file_name().unwrap().to_str().unwrap();
        if !["topology.json", "changes.json"].contains(&name) {
            assert_ne!(files_other.get(path), Some(bytes), "{}", path.display());
        }
    }
}

#[test]
fn the_root_is_a_candidate_in_most_cases() {
    let (_, topology) = generated(1_000, 11);
    let cases = simulate(&topology, "synthetic", &options(200));
    assert_eq!(cases.len(), 200);
    let found = cases
        .iter()
        .filter(|c| c.candidates.contains(&c.root_cause))
        .count();
    assert!(found >= 170, "root among the candidates in {found}/200");
    // Silent roots exist, and some are still found through an alerting caller.
    let silent: Vec<&SimulatedCase> = cases
        .iter()
        .filter(|c| !c.alerts.iter().any(|a| a.cause == AlertCause::Root))
        .collect();
    assert!(
        (15..=50).contains(&silent.len()),
        "{} silent roots",
        silent.len()
    );
    assert!(silent.iter().any(|c| c.candidates.contains(&c.root_cause)));
}

#[test]
fn candidates_are_alerting_services_and_their_callees_within_two_hops() {
    let (_, topology) = generated(500, 3);
    // A silent root whose fault reaches no caller can only be found by chance, through noise.
    let options = Options {
        silent_root: 1.0,
        propagation: 0.0,
        ..options(60)
    };
    let cases = simulate(&topology, "synthetic", &options);
    let mut missed = 0;
    for case in &cases {
        let alerting: BTreeSet<String> =
            case.alerts.iter().map(|a| a.service().to_owned()).collect();
        let mut expected = alerting.clone();
        for service in &alerting {
            expected.extend(set(topology.callees(service, 2).unwrap()));
        }
        assert_eq!(
            case.candidates,
            expected.into_iter().collect::<Vec<_>>(),
            "{}",
            case.id
        );
        assert!(case.alerts.iter().all(|a| a.cause == AlertCause::Noise));
        assert_eq!(case.affected.len(), 1);
        if !case.candidates.contains(&case.root_cause) {
            missed += 1;
        }
        // Metrics exist for exactly the candidates.
        let with_series: BTreeSet<&str> = case.series.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(with_series.len(), case.candidates.len());
        assert_eq!(case.series.len(), case.candidates.len() * METRICS.len());
    }
    assert!(
        missed >= 50,
        "the root was missed in only {missed}/60 cases"
    );
}

#[test]
fn callers_alert_after_the_root_and_callees_stay_quiet() {
    let (_, generated) = generated(1_000, 7);
    for (system, topology) in [
        ("online-boutique", example("online-boutique")),
        ("train-ticket", example("train-ticket")),
        ("synthetic", generated),
    ] {
        let cases = simulate(&topology, system, &options(80));
        let mut symptoms = 0;
        for case in &cases {
            let root = &case.root_cause;
            let upstream = set(topology.blast_radius(root).unwrap());
            let downstream: BTreeSet<String> = set(topology.callees(root, usize::MAX).unwrap())
                .difference(&upstream)
                .cloned()
                .collect();
            assert_eq!(case.affected[0].service, *root);
            assert_eq!(case.affected[0].onset, case.anchor);
            for hit in &case.affected[1..] {
                assert!(
                    upstream.contains(&hit.service),
                    "{}: {}",
                    case.id,
                    hit.service
                );
                assert!(hit.onset > case.anchor && hit.hops >= 1 && hit.strength < 1.0);
            }
            let affected: BTreeSet<&str> =
                case.affected.iter().map(|a| a.service.as_str()).collect();
            let root_start = case
                .alerts
                .iter()
                .filter(|a| a.cause == AlertCause::Root)
                .map(|a| a.starts_at)
                .min();
            for alert in &case.alerts {
                let service = alert.service();
                match alert.cause {
                    AlertCause::Root => assert_eq!(service, root),
                    AlertCause::Symptom => {
                        symptoms += 1;
                        assert!(affected.contains(service) && service != root);
                        assert!(["HighLatency", "HighErrorRate"].contains(&alert.name()));
                        assert!(alert.starts_at > case.anchor);
                        if let Some(root_start) = root_start {
                            assert!(
                                alert.starts_at > root_start,
                                "{system} {}: {service} alerted before the root",
                                case.id
                            );
                        }
                    }
                    AlertCause::Noise => {}
                }
                if alert.cause != AlertCause::Noise {
                    assert!(
                        !downstream.contains(service),
                        "{}: callee {service}",
                        case.id
                    );
                }
            }
        }
        assert!(symptoms > 40, "{system}: only {symptoms} symptom alerts");
    }
}

#[test]
fn deploy_faults_change_the_root_before_onset() {
    let topology = example("sock-shop");
    // Without unrelated changes, which may land on the root too.
    let options = Options {
        fault_mix: vec![(Fault::Deploy, 1.0)],
        noise_changes: 0.0,
        ..options(40)
    };
    for case in simulate(&topology, "sock-shop", &options) {
        assert_eq!(case.fault, Fault::Deploy);
        let kind = topology.service(&case.root_cause).unwrap().kind;
        assert!(matches!(kind, ServiceKind::Service | ServiceKind::Gateway));
        let deploys: Vec<&CaseChange> = case
            .changes
            .iter()
            .filter(|c| c.service == case.root_cause && c.kind == "deploy")
            .collect();
        assert_eq!(deploys.len(), 1, "{}", case.id);
        assert!(deploys[0].at < case.anchor && deploys[0].at >= case.anchor - 300);
    }
}

#[test]
fn unrelated_changes_land_on_the_root_as_on_any_service() {
    // Without deploy faults, every change is unrelated; they must not avoid the root, or a
    // learned model would read "changed" as "not the root".
    let topology = example("sock-shop");
    let options = Options {
        fault_mix: vec![(Fault::Cpu, 1.0)],
        noise_changes: 3.0,
        ..options(200)
    };
    let services = topology.service_count() as f64;
    let (mut changes, mut on_root) = (0, 0);
    for case in simulate(&topology, "sock-shop", &options) {
        changes += case.changes.len();
        on_root += case
            .changes
            .iter()
            .filter(|c| c.service == case.root_cause)
            .count();
        assert!(
            case.changes
                .iter()
                .all(|c| c.kind != "deploy" || c.at >= case.anchor - 1800)
        );
    }
    // The natural rate is one change in `services` on any given service.
    let expected = changes as f64 / services;
    assert!(
        (on_root as f64) > 0.5 * expected && (on_root as f64) < 1.5 * expected,
        "{on_root} of {changes} changes on the root, {expected:.1} expected"
    );
}

#[test]
fn root_alerts_draw_severity_like_symptoms() {
    let topology = example("train-ticket");
    let cases = simulate(&topology, "train-ticket", &options(300));
    let mut counts: BTreeMap<(bool, &str), usize> = BTreeMap::new();
    for alert in cases.iter().flat_map(|c| &c.alerts) {
        if alert.cause != AlertCause::Noise {
            *counts
                .entry((
                    alert.cause == AlertCause::Root,
                    alert.labels["severity"].as_str(),
                ))
                .or_default() += 1;
        }
    }
    let share = |root: bool, severity: &str| {
        let total: usize = counts
            .iter()
            .filter(|((r, _), _)| *r == root)
            .map(|(_, n)| n)
            .sum();
        counts.get(&(root, severity)).copied().unwrap_or(0) as f64 / total as f64
    };
    // `info` comes with probability 0.1 whether the alert is the root's or a symptom.
    for root in [true, false] {
        let info = share(root, "info");
        assert!(
            (0.05..0.16).contains(&info),
            "root {root}: info {info} ({counts:?})"
        );
    }
    // Critical follows the disturbance's strength: half the time on the root.
    let critical = share(true, "critical");
    assert!((0.4..0.6).contains(&critical), "{critical}");
    assert!(share(false, "critical") < critical);
}

#[test]
fn metrics_csv_numbers_are_short_and_exact() {
    let topology = example("online-boutique");
    let mut cases = simulate(&topology, "online-boutique", &options(1));
    let series = cases[0]
        .series
        .iter_mut()
        .find(|s| s.name == "request_rate")
        .unwrap();
    series.values[0] = 1e300;
    series.values[1] = 1.5e-300;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &topology.to_document(), &cases).unwrap();
    let id = &cases[0].id;
    let csv = std::fs::read_to_string(dir.path().join(id).join("metrics.csv")).unwrap();
    let longest = csv
        .lines()
        .skip(1)
        .flat_map(|line| line.split(','))
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest < 30, "a cell of {longest} characters");
    assert!(csv.contains(",1e300") && csv.contains(",1.5e-300"));
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded[0].series, cases[0].series);
}

#[test]
fn metrics_csv_rows_are_sorted_and_deduplicated_on_load() {
    let topology = example("online-boutique");
    let cases = simulate(&topology, "online-boutique", &options(1));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &topology.to_document(), &cases).unwrap();
    let path = dir.path().join(&cases[0].id).join("metrics.csv");
    let csv = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    let header = lines.remove(0);
    // Rows reversed, the (now first) last row repeated at the end with other values.
    lines.reverse();
    let repeated =
        lines[0].split(',').next().unwrap().to_owned() + &",1".repeat(header.matches(',').count());
    lines.push(&repeated);
    std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    let loaded = load(dir.path()).unwrap();
    for series in &loaded[0].series {
        assert!(
            series.times.windows(2).all(|w| w[0] < w[1]),
            "{}",
            series.name
        );
    }
    assert_eq!(
        loaded[0].series, cases[0].series,
        "first row of a time kept"
    );
    let notes = loaded[0].notes.join("\n");
    assert!(
        notes.contains("metrics.csv: rows out of time order"),
        "{notes}"
    );
    assert!(
        notes.contains("1 rows repeating an earlier time"),
        "{notes}"
    );
}

#[test]
fn every_case_has_an_action_mostly_the_natural_one() {
    let topology = example("train-ticket");
    let cases = simulate(&topology, "train-ticket", &options(300));
    let natural = |fault: Fault| match fault {
        Fault::Cpu => Some(Action::ScaleOut),
        Fault::Memory => Some(Action::Restart),
        Fault::Disk => Some(Action::FreeDisk),
        Fault::Deploy => Some(Action::Rollback),
        _ => None,
    };
    let (mut checked, mut matched) = (0, 0);
    let mut seen = BTreeSet::new();
    for case in &cases {
        let label = case.clone().into_case(None).label.unwrap();
        let action = label.action.unwrap();
        assert!(Action::from_name(&action).is_some(), "{action}");
        assert_eq!(Fault::from_name(&label.fault_type), Some(case.fault));
        seen.insert(action);
        if let Some(natural) = natural(case.fault) {
            checked += 1;
            matched += usize::from(case.action == natural);
        }
    }
    let share = matched as f64 / checked as f64;
    assert!((0.7..0.97).contains(&share), "natural action in {share}");
    assert!(seen.len() >= 6, "actions seen: {seen:?}");
    let faults: BTreeSet<Fault> = cases.iter().map(|c| c.fault).collect();
    assert_eq!(faults.len(), Fault::ALL.len());
}

#[test]
fn noise_alerts_exist_only_when_asked_for() {
    let topology = example("online-boutique");
    let noisy = simulate(&topology, "online-boutique", &options(30));
    let noise = noisy
        .iter()
        .flat_map(|c| &c.alerts)
        .filter(|a| a.cause == AlertCause::Noise)
        .count();
    assert!(noise >= 30, "{noise} noise alerts in 30 cases");

    let quiet = Options {
        noise_alerts: 0.0,
        ..options(30)
    };
    for case in simulate(&topology, "online-boutique", &quiet) {
        let affected: BTreeSet<&str> = case.affected.iter().map(|a| a.service.as_str()).collect();
        for alert in &case.alerts {
            assert_ne!(alert.cause, AlertCause::Noise);
            assert!(affected.contains(alert.service()));
        }
    }
}

#[test]
fn flapping_alerts_resolve_and_fire_again() {
    let topology = example("train-ticket");
    let flappy = Options {
        flapping: 1.0,
        ..options(20)
    };
    let mut refired = 0;
    for case in simulate(&topology, "train-ticket", &flappy) {
        let mut by_identity: BTreeMap<&BTreeMap<String, String>, Vec<(i64, i64)>> = BTreeMap::new();
        for alert in &case.alerts {
            by_identity
                .entry(&alert.labels)
                .or_default()
                .push((alert.starts_at, alert.ends_at.unwrap()));
        }
        for episodes in by_identity.values() {
            for pair in episodes.windows(2) {
                assert!(pair[0].1 < pair[1].0, "episodes overlap: {pair:?}");
                refired += 1;
            }
        }
    }
    assert!(refired > 20, "{refired}");
    let steady = Options {
        flapping: 0.0,
        noise_alerts: 0.0,
        ..options(20)
    };
    for case in simulate(&topology, "train-ticket", &steady) {
        let identities: BTreeSet<_> = case.alerts.iter().map(|a| &a.labels).collect();
        assert_eq!(identities.len(), case.alerts.len());
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn the_fault_moves_the_roots_own_metrics() {
    let (_, topology) = generated(400, 9);
    let cases = simulate(&topology, "synthetic", &options(150));
    let (mut checked, mut latency_faults, mut busy_cpu) = (0, 0, 0);
    for case in &cases {
        let Some(_) = case.candidates.iter().find(|c| **c == case.root_cause) else {
            continue;
        };
        let metric = |name: &str| {
            let series = case
                .series
                .iter()
                .find(|s| s.service == case.root_cause && s.name == name)
                .unwrap();
            let before = mean(series.window(case.anchor - 1800, case.anchor));
            let after = mean(series.window(case.anchor + 300, case.anchor + 601));
            (before, after)
        };
        let (cpu, memory, disk) = (
            metric("cpu_usage"),
            metric("memory_usage"),
            metric("disk_io"),
        );
        let space = metric("disk_usage");
        let (latency, errors) = (metric("latency_p99_ms"), metric("error_rate"));
        let moved = match case.fault {
            Fault::Cpu => cpu.1 > cpu.0 + 30.0 && latency.1 > 1.3 * latency.0,
            Fault::Memory => memory.1 > memory.0 + 5.0,
            Fault::Disk => disk.1 > 2.5 * disk.0 || space.1 > space.0 + 5.0,
            Fault::Latency => latency.1 > 2.5 * latency.0,
            Fault::Loss => errors.1 > errors.0 + 0.03 && latency.1 > 1.5 * latency.0,
            Fault::Errors => errors.1 > errors.0 + 0.05,
            Fault::Deploy => errors.1 > errors.0 + 0.05 || latency.1 > 2.0 * latency.0,
            // Code faults need realism's traces and logs: never drawn here.
            Fault::Exception | Fault::WrongReturn => unreachable!("{:?}", case.fault),
        };
        assert!(
            moved,
            "{} {:?}: {:?}",
            case.id,
            case.fault,
            case.series.first()
        );
        // The resource signal is the root's own: a latency fault does not move CPU (bar a
        // random blip now and then).
        if case.fault == Fault::Latency {
            latency_faults += 1;
            busy_cpu += usize::from(cpu.1 > cpu.0 + 15.0);
        }
        checked += 1;
    }
    assert!(checked >= 120, "{checked}");
    assert!(
        latency_faults >= 10 && busy_cpu * 10 <= latency_faults,
        "{busy_cpu}/{latency_faults}"
    );
}

#[test]
fn callers_slow_down_and_callees_do_not() {
    let (_, topology) = generated(400, 13);
    let options = Options {
        noise_alerts: 0.0,
        fault_mix: vec![(Fault::Latency, 1.0), (Fault::Cpu, 1.0)],
        ..options(60)
    };
    let (mut callers, mut slow_callers, mut callees, mut slow_callees) = (0, 0, 0, 0);
    for case in simulate(&topology, "synthetic", &options) {
        let upstream = set(topology.blast_radius(&case.root_cause).unwrap());
        let downstream = set(topology.callees(&case.root_cause, 2).unwrap());
        let direct: BTreeSet<&str> = case
            .affected
            .iter()
            .filter(|a| a.hops == 1)
            .map(|a| a.service.as_str())
            .collect();
        for series in case.series.iter().filter(|s| s.name == "latency_p99_ms") {
            let before = mean(series.window(case.anchor - 1800, case.anchor));
            let after = mean(series.window(case.anchor + 300, case.anchor + 601));
            let slow = after > 1.3 * before;
            if direct.contains(series.service.as_str()) {
                callers += 1;
                slow_callers += usize::from(slow);
            } else if downstream.contains(&series.service) && !upstream.contains(&series.service) {
                callees += 1;
                slow_callees += usize::from(slow);
            }
        }
    }
    assert!(
        callers > 30 && callees > 30,
        "{callers} callers, {callees} callees"
    );
    assert!(slow_callers * 10 >= callers * 9, "{slow_callers}/{callers}");
    assert!(slow_callees * 20 <= callees, "{slow_callees}/{callees}");
}

#[test]
fn write_then_load_round_trips() {
    let topology = example("online-boutique");
    let document = topology.to_document();
    let cases = simulate(&topology, "online-boutique", &options(12));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &document, &cases).unwrap();
    // A directory that is not a case is ignored.
    std::fs::create_dir(dir.path().join("scratch")).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.len(), cases.len());
    let shared = Arc::new(Topology::from_document(document).unwrap());
    for (loaded, case) in loaded.iter().zip(cases) {
        let expected = case.into_case(Some(shared.clone()));
        assert_kept(loaded, &expected);
        assert_eq!(loaded.normal_windows, expected.normal_windows);
        assert_eq!(loaded.series, expected.series);
        assert!(loaded.alerts.iter().all(|a| a.service.is_some()));
        assert!(
            loaded
                .alerts
                .iter()
                .all(|a| a.signal != "custom" || a.name == "CertificateExpiringSoon")
        );
        assert_eq!(
            loaded.topology.as_ref().unwrap().service_count(),
            shared.service_count()
        );
    }
    // Every loaded case shares one topology.
    assert!(Arc::ptr_eq(
        loaded[0].topology.as_ref().unwrap(),
        loaded[1].topology.as_ref().unwrap()
    ));
}

#[test]
fn alerts_file_is_alertmanager_postable() {
    let topology = example("sock-shop");
    let cases = simulate(&topology, "sock-shop", &options(3));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &topology.to_document(), &cases).unwrap();
    let text = std::fs::read_to_string(dir.path().join("case-0001/alerts.json")).unwrap();
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!alerts.is_empty());
    for alert in alerts {
        let object = alert.as_object().unwrap();
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "annotations",
                "endsAt",
                "generatorURL",
                "labels",
                "startsAt"
            ])
        );
        for key in [
            "alertname",
            "service",
            "severity",
            "namespace",
            "pod",
            "instance",
        ] {
            assert!(object["labels"][key].is_string(), "{key} in {alert}");
        }
        assert!(object["annotations"]["summary"].is_string());
        let starts = object["startsAt"].as_str().unwrap();
        assert!(starts.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(starts).is_ok());
        assert!(
            ["critical", "warning", "info"]
                .contains(&object["labels"]["severity"].as_str().unwrap())
        );
    }
}

/// A topology of awkward names, for the tests that write cases to disk and read them back: `_`
/// inside names (one that ends like a metric, one that prefixes another), a comma, a quote and
/// a `|` (the edge separator).
pub(super) fn awkward_names() -> Topology {
    Topology::parse(
        r#"
services:
  - {name: web_front, kind: gateway}
  - {name: order_service_cpu_usage, kind: service}
  - {name: "pay, inc", kind: service}
  - {name: 'quote"svc', kind: service}
  - {name: "order|db", kind: database}
  - {name: order, kind: service}
dependencies:
  - {caller: web_front, callee: order_service_cpu_usage}
  - {caller: web_front, callee: "pay, inc"}
  - {caller: web_front, callee: order}
  - {caller: order_service_cpu_usage, callee: "order|db"}
  - {caller: "pay, inc", callee: "order|db"}
  - {caller: "pay, inc", callee: 'quote"svc'}
  - {caller: order, callee: 'quote"svc'}
"#,
        Format::Yaml,
    )
    .unwrap()
}

#[test]
fn service_names_with_underscores_survive_the_csv() {
    let topology = awkward_names();
    let cases = simulate(&topology, "odd", &options(10));
    let (_dir, loaded) = written_and_loaded(&topology.to_document(), &cases);
    let mut services = BTreeSet::new();
    for (loaded, case) in loaded.iter().zip(cases) {
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        services.extend(loaded.series.iter().map(|s| s.service.clone()));
        assert_eq!(loaded.series, case.series);
    }
    assert!(services.contains("order_service_cpu_usage") && services.contains("pay, inc"));
}

#[test]
fn damaged_files_become_notes() {
    let topology = example("online-boutique");
    let cases = simulate(&topology, "online-boutique", &options(2));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &topology.to_document(), &cases).unwrap();
    let case_dir = dir.path().join("case-0001");
    let csv = std::fs::read_to_string(case_dir.join("metrics.csv")).unwrap();
    let (header, rows) = csv.split_once('\n').unwrap();
    std::fs::write(
        case_dir.join("metrics.csv"),
        format!("{header},mystery\n{}", rows.replacen('\n', ",1\nx", 1)),
    )
    .unwrap();
    std::fs::remove_file(case_dir.join("changes.json")).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.len(), 2);
    let notes = loaded[0].notes.join("\n");
    assert!(
        notes.contains("mystery") && notes.contains("changes.json"),
        "{notes}"
    );
    assert!(
        notes.contains("rows with a malformed time dropped"),
        "{notes}"
    );
    assert!(loaded[1].notes.is_empty());
    assert!(load(&dir.path().join("nope")).is_err());
}

#[test]
fn empty_topology_gives_no_cases() {
    assert!(simulate(&Topology::new(), "empty", &options(5)).is_empty());
}

#[test]
fn runs_on_ten_thousand_services() {
    let started = Instant::now();
    let (document, topology) = generated(10_000, 1);
    let cases = simulate(&topology, "synthetic", &options(4));
    assert_eq!(cases.len(), 4);
    for case in &cases {
        assert!(topology.service(&case.root_cause).is_some());
        assert!(case.candidates.len() < 2_000, "{}", case.candidates.len());
        assert!(case.affected.len() <= 101);
    }
    assert_eq!(written_and_loaded(&document, &cases).1.len(), 4);
    eprintln!("10,000 services, 4 cases: {:?}", started.elapsed());
}
