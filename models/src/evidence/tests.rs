//! Evidence on hand-built cases: each detector fires on its own mechanism.

use std::collections::BTreeMap;

use super::per_series::thinned;
use super::*;
use crate::case::{CaseAlert, EdgeSeries, Family, Series, Source};
use crate::ranker::Ranker;

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

/// A series at `from` (with a little noise) that jumps to `to` after the anchor.
fn rises(from: f64, to: f64) -> impl Fn(i64) -> f64 + Copy {
    move |t| if t > ANCHOR { to } else { noisy(t, from) }
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
        count: 1,
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

    // Three occurrences held as one alert with a count read as the three of them.
    let three = |c: &mut Case| {
        c.alerts = vec![alert("a", ANCHOR + 60), alert("b", ANCHOR)];
        c.alerts
            .extend([alert("b", ANCHOR + 30), alert("b", ANCHOR + 90)]);
    };
    let mut apart = case.clone();
    three(&mut apart);
    let mut grouped = case.clone();
    grouped.alerts = vec![alert("a", ANCHOR + 60), alert("b", ANCHOR)];
    grouped.alerts[1].count = 3;
    let (apart, grouped) = (
        extract(&apart, &Settings::default()),
        extract(&grouped, &Settings::default()),
    );
    assert_eq!(score(&apart, "b", Detector::Alerts), 9.0);
    assert_eq!(apart, grouped);
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

#[test]
fn a_client_side_latency_points_below_the_service_and_an_unknown_metric_still_counts() {
    let mut case = case();
    case.series
        .push(series("a", Source::Metric, "PodClientLatencyP90(s)", |t| {
            if t > ANCHOR { 9.0 } else { noisy(t, 0.02) }
        }));
    case.series
        .push(series("b", Source::Metric, "checkout_widgets", |t| {
            if t > ANCHOR { 5.0 } else { noisy(t, 50.0) }
        }));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::ClientLatency) >= 3.0);
    assert_eq!(score(&evidence, "a", Detector::LatencyMetric), 0.0);
    assert!(Detector::ClientLatency.points_downstream());
    // A metric no classifier knows, falling tenfold: a change either way.
    assert_eq!(Family::classify("checkout_widgets"), Family::Other);
    assert!(score(&evidence, "b", Detector::OtherMetric) >= 3.0);
}

#[test]
fn a_call_that_slows_while_the_callee_does_not_is_a_delay_between_them() {
    // Mesh metrics without spans: `a → b` calls take 1 s, `b` itself still answers in 2 ms.
    let mut case = case();
    case.edges.push(edge("a", "b", "callee_ms_p50", |t| {
        if t > ANCHOR { 1000.0 } else { noisy(t, 3.0) }
    }));
    case.series
        .push(series("b", Source::Metric, "latency_p50_ms", |t| {
            noisy(t, 2.0)
        }));
    // `c → b` slows the same way: b's two edges are slow, a and c have one each.
    case.edges.push(edge("c", "b", "callee_ms_p50", |t| {
        if t > ANCHOR { 900.0 } else { noisy(t, 3.0) }
    }));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "b", Detector::InboundCallDelay) >= 3.0);
    assert!(score(&evidence, "b", Detector::AllEdgesDelay) >= 3.0);
    assert_eq!(score(&evidence, "a", Detector::OutboundCallDelay), 0.0);
    assert_eq!(score(&evidence, "c", Detector::OutboundCallDelay), 0.0);

    // When the callee slows as much itself, the call's slowdown is no delay on the wire.
    let mut slow = case.clone();
    slow.series = vec![series("b", Source::Metric, "latency_p50_ms", |t| {
        if t > ANCHOR { 990.0 } else { noisy(t, 2.0) }
    })];
    let evidence = extract(&slow, &Settings::default());
    let call = score(&evidence, "b", Detector::InboundCallDuration);
    assert!(score(&evidence, "b", Detector::InboundCallDelay) < 0.1 * call);
    assert!(score(&evidence, "b", Detector::LatencyMetric) >= 3.0);
}

#[test]
fn a_delay_at_a_callers_interface_is_told_from_its_callee_by_how_far_each_rose() {
    // Mesh metrics: a delay at b's interface. b's own latency takes the delay of its calls out
    // to c (8 → 1,000 ms), the calls a → b take it twice (10 → 1,800 ms), the calls b → c
    // take it once (1 → 1,000 ms) while c itself answers as ever. Every one of these rises is
    // off the scale of its baseline's spread: only their sizes tell where the delay is.
    let mut case = case();
    case.edges
        .push(edge("a", "b", "callee_ms_p90", rises(10.0, 1800.0)));
    case.edges
        .push(edge("b", "c", "callee_ms_p90", rises(1.0, 1000.0)));
    case.series.push(series(
        "b",
        Source::Metric,
        "latency_p90_ms",
        rises(8.0, 1000.0),
    ));
    case.series
        .push(series("c", Source::Metric, "latency_p90_ms", |t| {
            noisy(t, 0.5)
        }));
    let evidence = extract(&case, &Settings::default());
    // Both of b's edges carry a delay its neighbours' own latency does not explain.
    assert!(score(&evidence, "b", Detector::AllEdgesDelay) >= 3.0);
    assert!(score(&evidence, "b", Detector::OutboundCallDelay) >= 3.0);
    assert_eq!(score(&evidence, "c", Detector::InboundCallDelay), 0.0);
    // c is not credited with calls that were slow only on the wire.
    assert!(score(&evidence, "c", Detector::InboundCallDuration) < 1.0);
    let ranking = crate::cold_start::ColdStart::default().rank(&case);
    assert_eq!(ranking.names()[0], "b", "{:?}", ranking.names());

    // A slow c instead (its own latency rises as much as the calls into it): c's doing.
    let mut slow = case.clone();
    slow.edges = vec![
        edge("a", "b", "callee_ms_p90", rises(10.0, 1010.0)),
        edge("b", "c", "callee_ms_p90", rises(1.0, 1000.0)),
    ];
    slow.series = vec![
        series("b", Source::Metric, "latency_p90_ms", rises(8.0, 1005.0)),
        series("c", Source::Metric, "latency_p90_ms", rises(0.5, 999.0)),
    ];
    let evidence = extract(&slow, &Settings::default());
    assert!(score(&evidence, "c", Detector::InboundCallDuration) >= 3.0);
    assert!(score(&evidence, "b", Detector::AllEdgesDelay) < 3.0);
    let ranking = crate::cold_start::ColdStart::default().rank(&slow);
    assert_eq!(ranking.names()[0], "c", "{:?}", ranking.names());
}

#[test]
fn a_slow_edge_is_credited_to_the_end_whose_other_edges_are_slow_too() {
    let delayed = rises(5.0, 400.0);
    let healthy = |t: i64| noisy(t, 5.0);
    let mut case = case();
    case.candidates = vec!["a".into(), "b".into(), "c".into(), "d".into()];
    // b's network is slow: a → b and b → c are slow; a also calls d, which is fine.
    case.edges.push(edge("a", "b", "network_ms", delayed));
    case.edges.push(edge("b", "c", "network_ms", delayed));
    case.edges.push(edge("a", "d", "network_ms", healthy));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "b", Detector::AllEdgesDelay) >= 3.0);
    assert!(score(&evidence, "b", Detector::InboundCallDelay) >= 3.0);
    assert!(score(&evidence, "b", Detector::OutboundCallDelay) >= 3.0);
    // a's and c's one slow edge each is b's doing.
    assert_eq!(score(&evidence, "a", Detector::OutboundCallDelay), 0.0);
    assert_eq!(score(&evidence, "c", Detector::InboundCallDelay), 0.0);
    assert_eq!(score(&evidence, "a", Detector::AllEdgesDelay), 0.0);
    // A leaf behind a busy caller: the one slow edge is all the leaf has.
    let mut leaf = case.clone();
    leaf.edges = vec![
        edge("a", "b", "network_ms", delayed),
        edge("a", "c", "network_ms", healthy),
        edge("a", "d", "network_ms", healthy),
    ];
    let evidence = extract(&leaf, &Settings::default());
    assert!(score(&evidence, "b", Detector::InboundCallDelay) >= 3.0);
    assert_eq!(score(&evidence, "a", Detector::OutboundCallDelay), 0.0);
}

#[test]
fn a_neighbour_edge_slowed_by_a_fraction_of_the_delay_is_not_slowed_by_the_same_cause() {
    let mut case = case();
    // A delay at c's interface: b → c takes 360 ms longer. b's caller a sees its calls to b
    // slowed by 30 ms on the wire too (b's threads wait on c): a far smaller delay, however
    // unusual for that edge (its deviation is a third of b → c's), so b has one edge slowed
    // by the delay, as c has, and the leaf c explains it.
    case.edges
        .push(edge("b", "c", "network_ms", rises(36.0, 400.0)));
    case.edges
        .push(edge("a", "b", "network_ms", rises(4.0, 33.0)));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "c", Detector::InboundCallDelay) >= 3.0);
    assert_eq!(score(&evidence, "b", Detector::OutboundCallDelay), 0.0);

    // A delay at b's interface adds as much to both of its edges: b's doing.
    let mut at_b = case.clone();
    at_b.edges[1] = edge("a", "b", "network_ms", rises(4.0, 1500.0));
    let evidence = extract(&at_b, &Settings::default());
    assert!(score(&evidence, "b", Detector::OutboundCallDelay) >= 3.0);
    assert!(score(&evidence, "b", Detector::AllEdgesDelay) >= 3.0);
    assert_eq!(score(&evidence, "c", Detector::InboundCallDelay), 0.0);
}

#[test]
fn a_component_seen_in_few_samples_counts_less_however_far_they_jumped() {
    let mut case = case();
    // b reports one scrape in five, and one of its few samples in the incident jumps 30-fold;
    // a, fully observed, rises fivefold and stays there.
    case.series
        .push(series("a", Source::Metric, "request_rate", |t| {
            if t > ANCHOR { 500.0 } else { noisy(t, 100.0) }
        }));
    case.series
        .push(series("b", Source::Metric, "request_rate", |t| {
            if (t / 60) % 5 != 0 {
                f64::NAN
            } else if t > ANCHOR && t < ANCHOR + 120 {
                3000.0
            } else {
                noisy(t, 100.0)
            }
        }));
    let evidence = extract(&case, &Settings::default());
    let (a, b) = (
        score(&evidence, "a", Detector::TrafficMetric),
        score(&evidence, "b", Detector::TrafficMetric),
    );
    assert!(a >= 3.0 && a > b, "a {a} b {b}");
    assert!(thinned(1000.0, 1.0) == 1000.0 && thinned(1000.0, 0.25) < 40.0);
}

#[test]
fn a_series_that_spikes_by_itself_needs_more_than_its_usual_spike() {
    let mut case = case();
    // Every fifth minute a batch job doubles b's disk reads for two minutes; in the incident
    // it does the same once more. a's reads never moved before and now double.
    let batch = |t: i64| {
        if (t / 60) % 5 < 2 {
            20.0
        } else {
            noisy(t, 10.0)
        }
    };
    case.series
        .push(series("b", Source::Metric, "disk_io", batch));
    case.series
        .push(series("a", Source::Metric, "disk_io", |t| {
            if t > ANCHOR { 20.0 } else { noisy(t, 10.0) }
        }));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::DiskMetric) >= 3.0);
    assert!(score(&evidence, "b", Detector::DiskMetric) < 1.0);
}

#[test]
fn without_any_history_a_case_is_judged_by_change_within_its_data() {
    let mut case = case();
    // Data from two minutes before the anchor only: a's CPU doubles at the anchor.
    let times: Vec<i64> = (ANCHOR - 120..ANCHOR + 300).step_by(15).collect();
    let make = |service: &str, f: &dyn Fn(i64) -> f64| Series {
        service: service.into(),
        source: Source::Metric,
        family: Family::Cpu,
        name: "cpu_usage".into(),
        values: times.iter().map(|&t| f(t)).collect(),
        times: times.clone(),
    };
    case.series.push(make("a", &|t| {
        if t >= ANCHOR { 60.0 } else { noisy(t, 30.0) }
    }));
    case.series.push(make("b", &|t| noisy(t, 30.0)));
    let evidence = extract(&case, &Settings::default());
    assert!(score(&evidence, "a", Detector::CpuMetric) >= 3.0);
    assert!(score(&evidence, "b", Detector::CpuMetric) < 1.0);
    // Starting at the anchor, the first third is the reference.
    let late: Vec<i64> = (ANCHOR..ANCHOR + 300).step_by(15).collect();
    let mut case2 = case.clone();
    case2.series = vec![Series {
        service: "a".into(),
        source: Source::Metric,
        family: Family::Cpu,
        name: "cpu_usage".into(),
        values: late
            .iter()
            .map(|&t| {
                if t >= ANCHOR + 100 {
                    60.0
                } else {
                    noisy(t, 30.0)
                }
            })
            .collect(),
        times: late,
    }];
    let evidence = extract(&case2, &Settings::default());
    assert!(score(&evidence, "a", Detector::CpuMetric) >= 3.0);
}

#[test]
fn a_short_history_borrows_the_spread_its_kind_shows() {
    // One reference sample per edge: each edge's own spread is unknowable. Most edges move by
    // a third between the reference and the incident; b's quadruples.
    let mut case = case();
    let names = ["a", "b", "c", "d", "e", "f"];
    case.candidates = names.iter().map(|s| s.to_string()).collect();
    let times = vec![ANCHOR - 600, ANCHOR + 60, ANCHOR + 120];
    for (i, callee) in names.iter().enumerate().skip(1) {
        let (before, after) = if *callee == "b" {
            (10.0, 40.0)
        } else {
            (10.0, 10.0 + 3.0 * ((i % 3) as f64 - 1.0))
        };
        case.edges.push(EdgeSeries {
            caller: "a".into(),
            callee: (*callee).into(),
            name: "network_ms".into(),
            times: times.clone(),
            values: vec![before, after, after],
        });
    }
    case.normal_windows = vec![(ANCHOR - 700, ANCHOR - 500)];
    let evidence = extract(&case, &Settings::default());
    let b = score(&evidence, "b", Detector::InboundCallDelay);
    let others: f64 = ["c", "d", "e", "f"]
        .iter()
        .map(|s| score(&evidence, s, Detector::InboundCallDelay))
        .fold(0.0, f64::max);
    assert!(b >= 3.0 && others < 3.0, "b {b} others {others}");
    // Without the borrowed spread (10 % of a 10 ms level, floored at 1 ms), a 3 ms wobble
    // alone would have read as z 3.
    assert!(b < 30.0, "{b}");
}

#[test]
fn a_client_side_latency_is_not_the_services_own_anomaly() {
    let mut scores = [0.0; Detector::COUNT];
    scores[Detector::ClientLatency as usize] = 500.0;
    scores[Detector::CpuMetric as usize] = 2.0;
    let c = CandidateEvidence::scored("waiting", scores);
    assert_eq!(c.anomaly(), 2.0);
    assert_eq!(c.strongest(), Some((Detector::CpuMetric, 2.0)));
}

#[test]
fn a_statement_that_stops_is_not_explained_by_a_callee_that_is_only_slower() {
    // `a` calls `b`. `a` is called as before but one of its steady statements stops: its code
    // now ends early. `b` answers far more slowly (a larger deviation than `a`'s). A slower
    // answer makes `a` wait; it does not make `a` skip a statement, so `a` is no symptom of
    // `b`. When `b`'s calls fail as well, `a` may be catching those failures: then it is.
    let built = |callee_fails: bool| {
        let mut case = case();
        case.series
            .push(series("a", Source::Log, "template:INFO x.A#7", |t| {
                if t > ANCHOR { 0.0 } else { 30.0 }
            }));
        case.series
            .push(series("a", Source::Trace, "span_count", |_| 30.0));
        case.series.push(series(
            "b",
            Source::Trace,
            "duration_p50_ms",
            rises(10.0, 900.0),
        ));
        case.edges.push(edge("a", "b", "calls", |_| 30.0));
        if callee_fails {
            case.edges.push(edge("a", "b", "errors", |t| {
                if t > ANCHOR { 20.0 } else { 0.0 }
            }));
        }
        extract(&case, &Settings::default())
    };
    for callee_fails in [false, true] {
        let evidence = built(callee_fails);
        let a = &evidence.candidates[0];
        assert_eq!(a.strongest().unwrap().0, Detector::MissingTemplates);
        assert!(
            evidence.candidates[1].anomaly() > a.anomaly(),
            "{evidence:?}"
        );
        assert_eq!(a.graph.callee_more_anomalous, callee_fails, "{:?}", a.graph);
    }
}

#[test]
fn one_slow_edge_does_not_say_that_every_edge_of_its_leaf_is_slow() {
    // a → b, and b calls nothing else: b's only edge slows. The delay may sit at a, at b or on
    // the wire; one edge cannot say that b's interface slows everything through it, so b gets
    // the call's delay but not the all-edges mechanism. With a second slow edge (b → c) it does.
    let slow = |t: i64| if t > ANCHOR { 200.0 } else { noisy(t, 2.0) };
    let mut case = case();
    case.edges.push(edge("a", "b", "network_ms", slow));
    let evidence = extract(&case, &Settings::default());
    assert!(
        score(&evidence, "b", Detector::InboundCallDelay) > 3.0,
        "{evidence:?}"
    );
    assert_eq!(score(&evidence, "b", Detector::AllEdgesDelay), 0.0);
    case.edges.push(edge("b", "c", "network_ms", slow));
    let evidence = extract(&case, &Settings::default());
    assert!(
        score(&evidence, "b", Detector::AllEdgesDelay) > 3.0,
        "{evidence:?}"
    );
}
