//! Evidence on hand-built cases: each detector fires on its own mechanism.

use std::collections::BTreeMap;

use super::*;
use crate::case::{CaseAlert, EdgeSeries, Series};

const ANCHOR: i64 = 10_000;

fn minutes(from: i64, to: i64) -> Vec<i64> {
    (from..to).step_by(60).collect()
}

fn series(service: &str, source: Source, name: &str, f: impl Fn(i64) -> f64) -> Series {
    let times = minutes(ANCHOR - 1800, ANCHOR + 300);
    Series {
        service: service.into(),
        source,
        family: if name.starts_with("template:") {
            Family::Template
        } else {
            Family::classify(name)
        },
        name: name.into(),
        values: times.iter().map(|&t| f(t)).collect(),
        times,
    }
}

fn edge(caller: &str, callee: &str, name: &str, f: impl Fn(i64) -> f64) -> EdgeSeries {
    let times = minutes(ANCHOR - 1800, ANCHOR + 300);
    EdgeSeries {
        caller: caller.into(),
        callee: callee.into(),
        name: name.into(),
        values: times.iter().map(|&t| f(t)).collect(),
        times,
    }
}

fn noisy(t: i64, level: f64) -> f64 {
    level * (1.0 + 0.05 * ((t / 60) % 3) as f64)
}

fn case() -> Case {
    Case {
        id: "c".into(),
        anchor: ANCHOR,
        candidates: vec!["a".into(), "b".into(), "c".into()],
        ..Case::default()
    }
}

fn score(evidence: &Evidence, service: &str, d: Detector) -> f64 {
    evidence
        .candidates
        .iter()
        .find(|c| c.service == service)
        .unwrap()
        .score(d)
}

#[test]
fn a_cpu_rise_scores_on_the_cpu_detector_of_that_service_only() {
    let mut case = case();
    case.series
        .push(series("a", Source::Metric, "cpu_usage", |t| {
            if t > ANCHOR { 90.0 } else { noisy(t, 20.0) }
        }));
    case.series
        .push(series("b", Source::Metric, "cpu_usage", |t| noisy(t, 20.0)));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::CpuMetric) >= 3.0);
    assert!(score(&evidence, "b", Detector::CpuMetric) < 1.0);
    assert_eq!(score(&evidence, "c", Detector::CpuMetric), 0.0);
    let a = &evidence.candidates[0];
    assert_eq!(a.strongest().unwrap().0, Detector::CpuMetric);
    assert!(
        a.findings[0].sentence.contains("cpu_usage rose to 90"),
        "{:?}",
        a.findings
    );
}

#[test]
fn a_new_error_template_and_a_missing_info_template_are_both_seen() {
    let mut case = case();
    case.series
        .push(series("a", Source::Log, "template:ERROR x.Y#12", |t| {
            if t > ANCHOR { 5.0 } else { 0.0 }
        }));
    case.series
        .push(series("b", Source::Log, "template:INFO x.Z#7", |t| {
            if t > ANCHOR { 0.0 } else { 30.0 }
        }));
    case.series
        .push(series("b", Source::Trace, "span_count", |_| 30.0));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::NewErrorTemplates) > 3.0);
    assert!(score(&evidence, "b", Detector::MissingTemplates) > 3.0);
    assert_eq!(score(&evidence, "a", Detector::MissingTemplates), 0.0);
}

#[test]
fn a_template_that_goes_quiet_because_traffic_stopped_is_no_evidence() {
    let mut case = case();
    case.series
        .push(series("b", Source::Log, "template:INFO x.Z#7", |t| {
            if t > ANCHOR { 0.0 } else { 30.0 }
        }));
    case.series
        .push(series("b", Source::Trace, "span_count", |t| {
            if t > ANCHOR { 0.0 } else { 30.0 }
        }));
    let evidence = extract(&case, &Settings::default());
    assert_eq!(score(&evidence, "b", Detector::MissingTemplates), 0.0);
}

#[test]
fn a_delay_at_one_service_slows_all_its_edges_but_only_one_edge_of_a_neighbour() {
    let mut case = case();
    // a → b → c, and a → c; the delay sits at b: both of b's edges slow down.
    let slow = |t: i64| if t > ANCHOR { 200.0 } else { noisy(t, 2.0) };
    let fast = |t: i64| noisy(t, 2.0);
    case.edges.push(edge("a", "b", "network_ms", slow));
    case.edges.push(edge("b", "c", "network_ms", slow));
    case.edges.push(edge("a", "c", "network_ms", fast));
    let evidence = extract(&case, &Settings::default());
    let b = score(&evidence, "b", Detector::AllEdgesDelay);
    assert!(
        b > score(&evidence, "a", Detector::AllEdgesDelay),
        "{evidence:?}"
    );
    assert!(b > score(&evidence, "c", Detector::AllEdgesDelay));
    assert!(score(&evidence, "b", Detector::InboundCallDelay) > 3.0);
}

#[test]
fn alerts_order_the_graph_context_and_paths_lead_to_them() {
    let mut case = case();
    let alert = |service: &str, at: i64| CaseAlert {
        service: Some(service.into()),
        name: "HighLatency".into(),
        signal: "latency".into(),
        severity: "critical".into(),
        starts_at: at,
        ends_at: None,
        labels: BTreeMap::new(),
    };
    case.alerts = vec![alert("a", ANCHOR + 60), alert("b", ANCHOR)];
    case.edges.push(edge("a", "b", "calls", |_| 10.0));
    case.edges.push(edge("b", "c", "calls", |_| 10.0));
    let evidence = extract(&case, &Settings::default());
    let b = &evidence.candidates[1];
    assert!(b.graph.alerting);
    assert_eq!(b.graph.alert_delay_min, Some(0.0));
    assert_eq!(evidence.candidates[0].graph.alert_delay_min, Some(1.0));
    assert!(!evidence.candidates[2].graph.alerting);
    assert_eq!(evidence.paths(2), vec![vec!["c", "b"], vec!["c", "b", "a"]]);
    assert!(score(&evidence, "b", Detector::Alerts) >= 3.0);
    // A latency alert is also evidence on the latency mechanism, so the fault type follows it.
    assert_eq!(score(&evidence, "b", Detector::LatencyMetric), 3.0);
    assert_eq!(score(&evidence, "b", Detector::CpuMetric), 0.0);
}

#[test]
fn candidates_add_silent_callees_within_reach() {
    use rootcause_topology::{Dependency, Service, ServiceKind, Topology};
    let mut topology = Topology::new();
    for s in ["front", "api", "db", "cache"] {
        topology
            .add_service(Service::new(s, ServiceKind::Service))
            .unwrap();
    }
    topology
        .add_dependency(Dependency::new("front", "api"))
        .unwrap();
    topology
        .add_dependency(Dependency::new("api", "db"))
        .unwrap();
    topology
        .add_dependency(Dependency::new("db", "cache"))
        .unwrap();
    assert_eq!(
        candidates(&topology, &["front".into()], 2),
        ["api", "db", "front"]
    );
    assert_eq!(candidates(&topology, &["front".into()], 0), ["front"]);
}

#[test]
fn a_change_shortly_before_the_incident_is_evidence_and_one_after_it_is_not() {
    use crate::case::CaseChange;
    let mut case = case();
    let change = |service: &str, at: i64| CaseChange {
        service: service.into(),
        kind: "deploy".into(),
        at,
        description: "v2".into(),
    };
    // a deployed 3 minutes before, b 2 hours before (outside the baseline), c rolled back after.
    case.changes = vec![
        change("a", ANCHOR - 180),
        change("b", ANCHOR - 7200),
        change("c", ANCHOR + 120),
    ];
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::RecentChange) > 4.0);
    assert_eq!(score(&evidence, "b", Detector::RecentChange), 0.0);
    assert_eq!(score(&evidence, "c", Detector::RecentChange), 0.0);
    assert!(
        evidence.candidates[0].findings[0]
            .sentence
            .contains("3 min before the incident")
    );
}
