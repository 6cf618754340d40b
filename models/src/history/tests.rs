//! A simulated-like incident written as history and read back, and records refused with the
//! path of their problem.

use std::collections::BTreeMap;

use rootcause_topology::{Dependency, Service, ServiceKind};

use super::*;
use crate::evidence::{Settings, extract};

const ANCHOR: i64 = 1_700_000_000;

fn topology() -> Arc<Topology> {
    let document = TopologyDocument {
        services: vec![
            Service::new("frontend", ServiceKind::Gateway),
            Service::new("checkout", ServiceKind::Service),
            Service::new("catalog", ServiceKind::Service),
            Service::new("db", ServiceKind::Database),
        ],
        dependencies: vec![
            Dependency::new("frontend", "checkout"),
            Dependency::new("frontend", "catalog"),
            Dependency::new("checkout", "db"),
        ],
    };
    Arc::new(Topology::from_document(document).unwrap())
}

/// A CPU fault in `checkout` at the anchor: its CPU and self time climb, the calls into it
/// slow, the front end's latency follows and alerts; a deploy on it shortly before. Every
/// series has noise and a gap.
fn case() -> Case {
    let mut state = 7u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let times: Vec<i64> = (-30..=5).map(|k| ANCHOR + 60 * k).collect();
    let mut series_of = |service: &str, source: Source, name: &str, base: f64, fault: f64| {
        let values: Vec<f64> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if i == 3 {
                    f64::NAN
                } else {
                    base * (1.0 + 0.05 * noise()) + if t >= ANCHOR { fault } else { 0.0 }
                }
            })
            .collect();
        Series {
            service: service.into(),
            source,
            family: Family::classify(name),
            name: name.into(),
            times: times.clone(),
            values,
        }
    };
    let series = vec![
        series_of("checkout", Source::Metric, "cpu_usage", 0.3, 0.6),
        series_of("checkout", Source::Trace, "self_ms_mean", 12.0, 80.0),
        series_of("checkout", Source::Trace, "span_count", 600.0, 0.0),
        series_of("frontend", Source::Metric, "latency_p99_ms", 120.0, 300.0),
        series_of("frontend", Source::Metric, "cpu_usage", 0.4, 0.0),
        series_of("catalog", Source::Metric, "cpu_usage", 0.2, 0.0),
        series_of("db", Source::Metric, "memory_rss_bytes", 1.0e9, 0.0),
        series_of(
            "catalog",
            Source::Log,
            "template:INFO served item",
            50.0,
            0.0,
        ),
    ];
    let edge = series_of("frontend", Source::Trace, "callee_ms", 30.0, 90.0);
    let edges = vec![EdgeSeries {
        caller: "frontend".into(),
        callee: "checkout".into(),
        name: "callee_ms".into(),
        times: edge.times,
        values: edge.values,
    }];
    Case {
        id: "sim-0001".into(),
        system: "shop".into(),
        anchor: ANCHOR,
        candidates: vec![
            "catalog".into(),
            "checkout".into(),
            "db".into(),
            "frontend".into(),
        ],
        series,
        edges,
        alerts: vec![CaseAlert {
            service: Some("frontend".into()),
            name: "HighLatency".into(),
            signal: "latency".into(),
            severity: "critical".into(),
            starts_at: ANCHOR + 60,
            ends_at: Some(ANCHOR + 900),
            labels: BTreeMap::from([("alertname".to_string(), "HighLatency".to_string())]),
            count: 1,
        }],
        changes: vec![CaseChange {
            service: "checkout".into(),
            kind: "deploy".into(),
            at: ANCHOR - 300,
            description: "version 2.3.1".into(),
        }],
        topology: Some(topology()),
        normal_windows: vec![(ANCHOR - 7200, ANCHOR - 3600)],
        label: None,
        notes: Vec::new(),
    }
}

fn outcome() -> Outcome {
    Outcome {
        root_cause: "checkout".into(),
        fault_type: "cpu".into(),
        action: Some("rollback".into()),
        worked: Some(true),
        time_to_mitigate_s: Some(840.0),
    }
}

fn record() -> HistoryRecord {
    HistoryRecord::from_case(&case(), outcome())
}

fn refused(record: HistoryRecord) -> RecordError {
    record
        .into_case(None, 2)
        .expect_err("the record is refused")
}

#[test]
fn a_case_written_as_history_and_read_back_gives_the_same_evidence() {
    let original = case();
    let line = serde_json::to_string(&HistoryRecord::from_case(&original, outcome())).unwrap();
    assert!(!line.contains('\n'));
    assert!(line.contains("null"), "a gap is written as null");
    let record: HistoryRecord = serde_json::from_str(&line).unwrap();
    let (back, outcome) = record.into_case(None, 2).unwrap();
    assert_eq!(outcome, self::outcome());
    let label = back.label.clone().unwrap();
    assert_eq!(
        (label.root_cause.as_str(), label.fault_type.as_str()),
        ("checkout", "cpu")
    );
    assert_eq!(label.action.as_deref(), Some("rollback"));
    assert_eq!(back.candidates, original.candidates);
    assert_eq!(
        back.topology.as_ref().map(|t| t.to_document()),
        original.topology.as_ref().map(|t| t.to_document())
    );
    let settings = Settings::default();
    let (a, b) = (extract(&original, &settings), extract(&back, &settings));
    assert_eq!(a.candidates, b.candidates);
    assert!(
        a.candidates[1].anomaly() > 3.0,
        "the fault shows: {:?}",
        a.candidates[1]
    );
    for i in 0..a.candidates.len() {
        assert_eq!(a.paths(i), b.paths(i));
    }
}

#[test]
fn candidates_are_derived_from_the_alerts_and_the_series_when_not_given() {
    let mut r = record();
    r.candidates.clear();
    r.metrics.retain(|m| m.service != "catalog");
    // The front end alerts: it and everything it reaches in one hop, and db, which has series.
    let (case, _) = r.clone().into_case(None, 1).unwrap();
    assert_eq!(case.candidates, ["catalog", "checkout", "db", "frontend"]);
    r.metrics.retain(|m| m.service != "db");
    let (case, _) = r.clone().into_case(None, 1).unwrap();
    assert_eq!(case.candidates, ["catalog", "checkout", "frontend"]);
    // Without a topology of its own the fallback is used; without either, only the alerting
    // services and those with series remain.
    r.topology = None;
    let (case, _) = r.clone().into_case(Some(topology()), 2).unwrap();
    assert_eq!(case.candidates, ["catalog", "checkout", "db", "frontend"]);
    assert!(case.topology.is_some());
    let (case, _) = r.into_case(None, 2).unwrap();
    assert_eq!(case.candidates, ["checkout", "frontend"]);
    assert!(case.topology.is_none());
}

#[test]
fn a_family_left_out_is_classified_from_the_name_and_the_source_defaults_to_metric() {
    let line = r#"{"id":"x","started_at":1700000000,"metrics":[{"service":"a","name":"CpuUsageRate(%)","points":[[1700000000,1.5],[1700000060,null]]}],"outcome":{"root_cause":"a","fault_type":"cpu"}}"#;
    let record: HistoryRecord = serde_json::from_str(line).unwrap();
    let (case, _) = record.into_case(None, 2).unwrap();
    let s = &case.series[0];
    assert_eq!((s.family, s.source), (Family::Cpu, Source::Metric));
    assert!(s.values[1].is_nan());
    assert_eq!(case.candidates, ["a"]);
}

#[test]
fn an_action_that_did_not_work_is_not_the_label_action() {
    let mut r = record();
    r.outcome.worked = Some(false);
    let (case, outcome) = r.into_case(None, 2).unwrap();
    assert_eq!(case.label.unwrap().action, None);
    assert_eq!(outcome.action.as_deref(), Some("rollback"));
}

#[test]
fn records_are_refused_with_the_path_of_the_problem() {
    let mut r = record();
    r.metrics[1].points.swap(6, 7);
    let e = refused(r);
    assert_eq!(e.path, "metrics[1].points[7]");
    assert!(e.message.contains("times must increase"), "{e}");
    assert!(e.to_string().starts_with("metrics[1].points[7]: "), "{e}");

    let mut r = record();
    r.outcome.root_cause = String::new();
    assert_eq!(refused(r).path, "outcome.root_cause");

    let mut r = record();
    r.outcome.fault_type = " ".into();
    assert_eq!(refused(r).path, "outcome.fault_type");

    let mut r = record();
    r.started_at *= 1000;
    let e = refused(r);
    assert_eq!(e.path, "started_at");
    assert!(e.message.contains("milliseconds"), "{e}");

    let mut r = record();
    r.alerts[0].starts_at = 0;
    assert_eq!(refused(r).path, "alerts[0].starts_at");

    let mut r = record();
    r.edges[0].points[2].1 = Some(f64::INFINITY);
    assert_eq!(refused(r).path, "edges[0].points[2]");

    let mut r = record();
    let copy = r.metrics[2].clone();
    r.metrics.push(copy);
    let e = refused(r);
    assert_eq!(e.path, "metrics[8]");
    assert!(e.message.contains("metrics[2]"), "{e}");

    let mut r = record();
    r.normal_windows[0] = (ANCHOR, ANCHOR);
    assert_eq!(refused(r).path, "normal_windows[0]");

    let mut r = record();
    r.topology
        .as_mut()
        .unwrap()
        .dependencies
        .push(Dependency::new("frontend", "ghost"));
    let e = refused(r);
    assert_eq!(e.path, "topology.dependencies[3].callee");

    let mut r = record();
    r.outcome.time_to_mitigate_s = Some(-1.0);
    assert_eq!(refused(r).path, "outcome.time_to_mitigate_s");
}

#[test]
fn unknown_fields_are_refused() {
    let line = r#"{"id":"x","started_at":1700000000,"outcome":{"root_cause":"a","fault_type":"cpu"},"severity":"high"}"#;
    let err = serde_json::from_str::<HistoryRecord>(line).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let line = r#"{"id":"x","started_at":1700000000,"outcome":{"root_cause":"a","fault_type":"cpu","workd":true}}"#;
    assert!(serde_json::from_str::<HistoryRecord>(line).is_err());
}
