//! Tests of the MicroIRC loader, on small hand-written synthetic fixtures (the real data has no
//! licence: nothing of it may be copied here), and one test on the shared copy when present.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rootcause_models::case::{Case, EdgeSeries, Family, Series, Source};
use rootcause_topology::ServiceKind;

use super::names::{CaseName, has_version, split_pair, workload_of_pod};
use super::*;

/// 2024-03-05 07:31:01 UTC, the first row of the fixtures.
const T0: i64 = 1_709_623_861;

/// `T0 + 5 i` as the files write it.
fn ts(i: i64) -> String {
    table::format_time(T0 + 5 * i)
}

/// A label block as `label.txt` writes it, `create` in UTC+8.
fn block(case: &str, create: &str, deployment: &str) -> String {
    format!(
        "{case}\nstresschaos.chaos-mesh.org/cpu created\n{create} start create.\n\
         2024-03-05 15:38:12 start scale up 1.\ndeployment.apps/{deployment} scaled\n\
         2024-03-05 15:40:12 start delete.\nstresschaos.chaos-mesh.org \"cpu\" deleted\n\
         2024-03-05 15:40:12 finish delete.\n2024-03-05 15:41:12 start scale down 1.\n\
         deployment.apps/{deployment} scaled\n\n\n"
    )
}

/// A dataset folder in a tempdir.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(dir.path().join("data/label.txt"), label).expect("label.txt");
        Fixture { dir }
    }

    /// The case most tests start from: `details_cpu_load_1`, labelled, complete (see [`Fixture::case`]).
    fn details_cpu_load_1() -> Fixture {
        let fixture = Fixture::new(&block(
            "details_cpu_load_1",
            "2024-03-05 15:37:12",
            "details-v1",
        ));
        fixture.case("details_cpu_load_1");
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `data/<case>/bookinfo/<file>`.
    fn file(&self, case: &str, file: &str, text: &str) {
        let path = self
            .root()
            .join("data")
            .join(case)
            .join("bookinfo")
            .join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("case dir");
        std::fs::write(path, text).expect("write");
    }

    /// A small but complete case of three workloads and four 5 s steps: productpage-v1 calls
    /// details-v1 and reviews-v2, the gateway calls productpage-v1.
    fn case(&self, case: &str) {
        let rows = |f: &dyn Fn(i64) -> String| (0..4).map(f).collect::<String>();
        self.file(
            case,
            "latency.csv",
            &format!(
                "timestamp,details-v1&p50,productpage-v1&p50,reviews-v2&p50,details-v1&p90,\
                 productpage-v1&p90,reviews-v2&p90,details-v1&p99,productpage-v1&p99,reviews-v2&p99\n{}",
                rows(&|i| format!("{},0.5,20,7,1,40,9,2,90,19\n", ts(i)))
            ),
        );
        self.file(
            case,
            "svc_qps.csv",
            &format!(
                "timestamp,details-v1,productpage-v1,reviews-v2\n{}",
                rows(&|i| format!("{},7,7,2.5\n", ts(i)))
            ),
        );
        // Timestamp last, as in graph.csv: found by name.
        self.file(
            case,
            "success_rate.csv",
            &format!(
                "details-v1,productpage-v1,reviews-v2,timestamp\n{}",
                rows(&|i| format!("1.0,0.5,1.0,{}\n", ts(i)))
            ),
        );
        self.file(
            case,
            "instance.csv",
            &format!(
                "timestamp,details-v1-b7884-grnsf_cpu,productpage-v1-7fb56-hm9g2_cpu,\
                 details-v1-b7884-grnsf_memory,details-v1-b7884-grnsf_network\n{}",
                rows(&|i| format!(
                    "{},{},22,{},{}\n",
                    ts(i),
                    5 + i,
                    100 + i,
                    16 * (i + 1) * (i + 1)
                ))
            ),
        );
        self.file(
            case,
            "call.csv",
            &format!(
                "timestamp,productpage-v1_details-v1&p50,istio-ingressgateway_productpage-v1&p50,\
                 unknown_details-v1&p50,productpage-v1_reviews-v2&p99\n{}",
                rows(&|i| format!("{},{},25,,30\n", ts(i), 2 + i))
            ),
        );
        self.file(
            case,
            "graph.csv",
            &format!(
                "source,destination,timestamp\n{}",
                rows(&|i| {
                    let t = ts(i);
                    format!(
                        "productpage-v1,details-v1,{t}\ndetails-v1-b7884-grnsf,izbp16node,{t}\n\
                         istio-ingressgateway,productpage-v1,{t}\nunknown,details-v1,{t}\n\
                         productpage-v1,reviews-v2,{t}\n"
                    )
                })
            ),
        );
    }
}

fn load_ok(root: &Path) -> Vec<Case> {
    load(root).expect("loads")
}

fn series<'a>(case: &'a Case, service: &str, name: &str) -> &'a Series {
    case.series
        .iter()
        .find(|s| s.service == service && s.name == name)
        .unwrap_or_else(|| panic!("no series {service}/{name} in {:?}", names(case)))
}

/// A series of one `details-v1` pod of the fixtures, `details-v1-b7884-<pod>`.
fn pod_series<'a>(case: &'a Case, metric: &str, pod: &str) -> &'a Series {
    series(
        case,
        "details-v1",
        &format!("{metric}{{pod=\"details-v1-b7884-{pod}\"}}"),
    )
}

fn names(case: &Case) -> Vec<String> {
    case.series
        .iter()
        .map(|s| format!("{}/{}", s.service, s.name))
        .collect()
}

fn edge<'a>(case: &'a Case, caller: &str, callee: &str, name: &str) -> &'a EdgeSeries {
    case.edges
        .iter()
        .find(|e| e.caller == caller && e.callee == callee && e.name == name)
        .unwrap_or_else(|| panic!("no edge series {caller}→{callee}/{name}"))
}

fn notes(case: &Case) -> String {
    case.notes.join("\n")
}

/// Asserts that the case's notes say each of `expected`.
fn assert_notes(case: &Case, expected: &[&str]) {
    let text = notes(case);
    for wanted in expected {
        assert!(
            text.contains(wanted),
            "{wanted:?} not in the notes:\n{text}"
        );
    }
}

fn same(actual: &[f64], expected: &[f64]) -> bool {
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| (a.is_nan() && e.is_nan()) || (a - e).abs() < 1e-9)
}

/// Asserts [`same`], showing the values when not.
fn assert_same(actual: &[f64], expected: &[f64]) {
    assert!(same(actual, expected), "{actual:?} is not {expected:?}");
}

#[test]
fn microirc_case_names_parse_generally() {
    let name = CaseName::parse("reviews-v2_cpu_load_1").expect("parses");
    assert_eq!(
        (name.root.as_str(), name.fault.as_str()),
        ("reviews-v2", "cpu_load")
    );
    assert_eq!(name.workload(), "reviews-v2");
    let name = CaseName::parse("details_net_latency_10").expect("parses");
    assert_eq!(name.fault, "net_latency");
    assert_eq!(name.workload(), "details-v1");
    let name = CaseName::parse("cart_disk_3").expect("parses");
    assert_eq!((name.root.as_str(), name.fault.as_str()), ("cart", "disk"));
    for bad in [
        "label.txt",
        "details_cpu_load",
        "details_1",
        "Details_cpu_1",
        "_cpu_1",
        "a_b_",
    ] {
        assert_eq!(CaseName::parse(bad), None, "{bad}");
    }
    assert!(has_version("reviews-v12"));
    assert!(!has_version("reviews-v"));
    assert!(!has_version("-v1"));
    assert!(!has_version("ratings"));
}

#[test]
fn microirc_labels_are_utc_plus_8_and_name_the_workload() {
    let text = format!(
        "preamble line\n{}{}{}details_cpu_load_1\n2024-03-05 16:00:00 start create.\n\
         ratings_mem_load_2\n2024-03-05 1x:00:00 start create.\n",
        block("details_cpu_load_1", "2024-03-05 15:37:12", "details-v1"),
        block(
            "reviews-v2_net_latency_3",
            "2024-03-06 00:07:09",
            "reviews-v2"
        ),
        block("ratings_cpu_load_4", "2024-03-05 15:37:12", "ratings-v2"),
    );
    let labels = labels::parse(&text);
    let details = &labels["details_cpu_load_1"];
    // 15:37:12 in UTC+8 is 07:37:12 UTC.
    assert_eq!(details.inject, Some(1_709_624_232));
    assert_eq!(details.scaled, ["details-v1", "details-v1"]);
    assert!(details.problems[0].contains("another block"), "{details:?}");
    // Across midnight: 00:07:09 UTC+8 on the 6th is 16:07:09 UTC on the 5th.
    assert_eq!(
        labels["reviews-v2_net_latency_3"].inject,
        Some(1_709_654_829)
    );
    assert_eq!(labels["ratings_mem_load_2"].inject, None);
    assert!(labels["ratings_mem_load_2"].problems[0].contains("malformed"));

    let fixture = Fixture::new(&text);
    for case in [
        "details_cpu_load_1",
        "reviews-v2_net_latency_3",
        "ratings_cpu_load_4",
    ] {
        fixture.case(case);
    }
    let cases = load_ok(fixture.root());
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "details_cpu_load_1",
            "ratings_cpu_load_4",
            "reviews-v2_net_latency_3"
        ]
    );
    let details = &cases[0];
    assert_eq!(details.anchor, 1_709_624_232);
    assert_eq!(details.system, "bookinfo");
    let label = details.label.as_ref().expect("labelled");
    assert_eq!(
        (label.root_cause.as_str(), label.fault_type.as_str()),
        ("details-v1", "cpu_load")
    );
    // `ratings` completes to ratings-v1, which the fixture lacks; its block scales ratings-v2.
    let ratings = &cases[1];
    assert_eq!(
        ratings.label.as_ref().map(|l| l.root_cause.as_str()),
        Some("ratings-v1")
    );
    assert_notes(
        ratings,
        &[
            "scales deployment \"ratings-v2\"",
            "not among the 3 candidate",
        ],
    );
    let reviews = cases[2].label.as_ref().expect("labelled");
    assert_eq!(
        (reviews.root_cause.as_str(), reviews.fault_type.as_str()),
        ("reviews-v2", "net_latency")
    );
}

#[test]
fn microirc_series_are_named_and_classified_by_file() {
    let fixture = Fixture::details_cpu_load_1();
    let case = &load_ok(fixture.root())[0];
    assert!(case.notes.is_empty(), "{}", notes(case));
    assert_eq!(
        case.candidates,
        ["details-v1", "productpage-v1", "reviews-v2"]
    );
    let times: Vec<i64> = (0..4).map(|i| T0 + 5 * i).collect();
    let p90 = series(case, "details-v1", "latency_p90_ms");
    assert_eq!(
        (p90.source, p90.family, &p90.times),
        (Source::Metric, Family::Latency, &times)
    );
    assert_eq!(p90.values, [1.0; 4]);
    // Timestamp column last: found by name, the values are the workloads'.
    let success = series(case, "productpage-v1", "success_rate");
    assert_eq!((success.family, &success.times), (Family::Errors, &times));
    assert_eq!(success.values, [0.5; 4]);
    let qps = series(case, "reviews-v2", "requests_per_s");
    assert_eq!(
        (qps.family, qps.values.as_slice()),
        (Family::Traffic, &[2.5; 4][..])
    );
    assert!(case.alerts.is_empty() && case.changes.is_empty() && case.normal_windows.is_empty());
    // Sorted by service then name.
    let order = names(case);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn microirc_pods_map_to_workloads_with_absent_pods_nan_and_packets_unsquared() {
    assert_eq!(
        workload_of_pod("details-v1-b788479c5-grnsf"),
        Some("details-v1")
    );
    assert_eq!(
        workload_of_pod("reviews-v2-7b4f9d8cb4-6vbcr"),
        Some("reviews-v2")
    );
    assert_eq!(workload_of_pod("a-b"), None);

    let fixture = Fixture::details_cpu_load_1();
    fixture.file(
        "details_cpu_load_1",
        "instance.csv",
        &format!(
            "timestamp,details-v1-b7884-aaaaa_cpu,details-v1-b7884-bbbbb_cpu,\
             details-v1-b7884-aaaaa_network,details-v1-b7884-aaaaa_memory,\
             mystery-v1-1234-zzzzz_cpu,details-v1-b7884-aaaaa_disk,details-v1-b7884-nnnnn_cpu\n\
             {},4,800,16,11,1,1,-1\n{},-1.0,810,-1.0,-1.0,1,1,900\n{},0.0,790,6.25,-2,1,1,950\n",
            ts(0),
            ts(1),
            ts(2)
        ),
    );
    let case = &load_ok(fixture.root())[0];
    let cpu = pod_series(case, "cpu_millicores", "aaaaa");
    assert_eq!(cpu.family, Family::Cpu);
    assert_same(&cpu.values, &[4.0, f64::NAN, 0.0]);
    let other = pod_series(case, "cpu_millicores", "bbbbb");
    assert_eq!(other.values, [800.0, 810.0, 790.0]);
    let packets = pod_series(case, "transmit_packets_per_s", "aaaaa");
    assert_eq!(packets.family, Family::Network);
    assert_same(&packets.values, &[4.0, f64::NAN, 2.5]);
    let memory = pod_series(case, "memory_mb", "aaaaa");
    assert_eq!(memory.family, Family::Memory);
    assert_same(&memory.values, &[11.0, f64::NAN, f64::NAN]);
    assert!(!case.series.iter().any(|s| s.name.contains("mystery")));
    // A pod created during the window (absent at its start) is the experiment's scale-up.
    assert!(case.series.iter().all(|s| !s.name.contains("nnnnn")));
    assert_notes(
        case,
        &[
            "1 pod(s) absent at the window's start left out",
            "1 pods of no candidate workload skipped",
            "\"details-v1-b7884-aaaaa_disk\" is not",
            "1 negative values other than -1 read as NaN",
        ],
    );
    assert!(!case.candidates.iter().any(|c| c.contains("mystery")));
}

#[test]
fn microirc_rows_are_sorted_deduplicated_and_gaps_noted() {
    let fixture = Fixture::details_cpu_load_1();
    // Out of order, a repeated time (the first in file order stays), a malformed time, a gap of
    // two steps after step 3.
    fixture.file(
        "details_cpu_load_1",
        "svc_qps.csv",
        &format!(
            "timestamp,details-v1,productpage-v1\n{},2,2\n{},1,1\n{},9,9\n{},3,3\n\
             2024-03-05 07:3x:00,5,5\n{},4,4\n{},6,6\n",
            ts(1),
            ts(0),
            ts(1),
            ts(2),
            ts(3),
            ts(6)
        ),
    );
    let case = &load_ok(fixture.root())[0];
    let qps = series(case, "details-v1", "requests_per_s");
    assert_eq!(qps.times, [0, 1, 2, 3, 6].map(|i| T0 + 5 * i));
    assert_eq!(qps.values, [1.0, 2.0, 3.0, 4.0, 6.0]);
    assert_notes(
        case,
        &[
            "svc_qps.csv: rows out of time order: sorted",
            "svc_qps.csv: 1 rows repeating an earlier timestamp",
            "svc_qps.csv: 1 rows with a malformed timestamp",
            "svc_qps.csv: 2 rows missing from the 5 s grid in 1 gaps",
        ],
    );
    // The other files keep their own grid.
    assert_eq!(series(case, "details-v1", "latency_p50_ms").times.len(), 4);
}

#[test]
fn microirc_ragged_rows_are_dropped_with_a_note_and_empty_cells_are_nan() {
    let fixture = Fixture::details_cpu_load_1();
    fixture.file(
        "details_cpu_load_1",
        "instance.csv",
        &format!(
            "timestamp,details-v1-b7884-aaaaa_cpu,details-v1-b7884-bbbbb_cpu,details-v1-b7884-ccccc_cpu\n\
             {},1,1,3\n{},1,,3\n{},2,3\n{},x,3,3\n",
            ts(0),
            ts(1),
            ts(2),
            ts(3)
        ),
    );
    let case = &load_ok(fixture.root())[0];
    let b = pod_series(case, "cpu_millicores", "bbbbb");
    assert_eq!(b.times, [0, 1, 3].map(|i| T0 + 5 * i));
    assert_same(&b.values, &[1.0, f64::NAN, 3.0]);
    let a = pod_series(case, "cpu_millicores", "aaaaa");
    assert!(a.values[2].is_nan());
    assert_notes(
        case,
        &[
            "instance.csv: 1 rows with a field count unlike the header's dropped (first at line 4: 3 fields under a 4-field header)",
            "instance.csv: 1 malformed numbers read as NaN",
            // A dropped row is a gap in the file's grid too.
            "instance.csv: 1 rows missing",
        ],
    );
}

#[test]
fn microirc_call_headers_split_between_known_names() {
    let known = |n: &str| {
        [
            "istio-ingressgateway",
            "reviews-v2",
            "ratings-v1",
            "a",
            "a_b",
            "b_c",
            "c",
        ]
        .contains(&n)
    };
    assert_eq!(
        split_pair("reviews-v2_ratings-v1", known),
        Ok(("reviews-v2", "ratings-v1"))
    );
    assert_eq!(
        split_pair("istio-ingressgateway_reviews-v2", known),
        Ok(("istio-ingressgateway", "reviews-v2"))
    );
    assert!(split_pair("reviews-v2_nobody-v1", known).is_err());
    assert!(split_pair("reviews-v2ratings-v1", known).is_err());
    // Not simply the first or last `_`: the one between two known names.
    assert_eq!(
        split_pair("a_b_c_x", |n| n == "a_b" || n == "c_x"),
        Ok(("a_b", "c_x"))
    );
    // `a` → `b_c` and `a_b` → `c` are both possible.
    let ambiguous = split_pair("a_b_c", known).expect_err("ambiguous");
    assert!(ambiguous.contains("more than one"), "{ambiguous}");
}

#[test]
fn microirc_edges_carry_call_duration() {
    let fixture = Fixture::details_cpu_load_1();
    fixture.file(
        "details_cpu_load_1",
        "latency.csv",
        &format!(
            "timestamp,details-v1&p50,productpage-v1&p50,reviews-v2&p50,reviews-v2&p99\n\
             {},0.5,20,7,19\n{},0.5,20,7,19\n{},,20,7,19\n{},1.5,20,7,19\n",
            ts(0),
            ts(1),
            ts(2),
            ts(3)
        ),
    );
    fixture.file(
        "details_cpu_load_1",
        "call.csv",
        &format!(
            "timestamp,productpage-v1_details-v1&p50,istio-ingressgateway_productpage-v1&p99,\
             unknown_details-v1&p50,productpage-v1_reviews-v2&p99,nobody_details-v1&p50,\
             productpage-v1_details-v1&p75\n\
             {},2,25,,30,1,1\n{},1000.5,25,,30,1,1\n{},3,25,1,30,1,1\n{},4.5,25,,,1,1\n",
            ts(0),
            ts(1),
            ts(2),
            ts(4)
        ),
    );
    let case = &load_ok(fixture.root())[0];
    let call = edge(case, "productpage-v1", "details-v1", "callee_ms_p50");
    assert_eq!(call.times, [0, 1, 2, 4].map(|i| T0 + 5 * i));
    assert_eq!(call.values, [2.0, 1000.5, 3.0, 4.5]);
    // No time between caller and callee is derived from the quantiles (see the module docs).
    assert!(!case.edges.iter().any(|e| e.name.starts_with("network_ms")));
    assert_eq!(
        edge(
            case,
            "istio-ingressgateway",
            "productpage-v1",
            "callee_ms_p99"
        )
        .values,
        [25.0; 4]
    );
    assert!(!case.edges.iter().any(|e| e.caller == "unknown"));
    assert_eq!(case.edges.len(), 3);
    assert_notes(
        case,
        &[
            "\"nobody_details-v1&p50\" does not split",
            "\"productpage-v1_details-v1&p75\" is not",
        ],
    );
}

#[test]
fn microirc_unlabelled_cases_load_without_label_anchored_mid_window() {
    let fixture = Fixture::details_cpu_load_1();
    fixture.case("reviews-v2_cpu_load_1");
    let cases = load_ok(fixture.root());
    assert_eq!(cases.len(), 2);
    let unlabelled = &cases[1];
    assert_eq!(unlabelled.id, "reviews-v2_cpu_load_1");
    assert_eq!(unlabelled.label, None);
    // The window is steps 0..=3: its midpoint, floored, not the schedule's start + 360 s.
    assert_eq!(unlabelled.anchor, T0 + 7);
    assert_notes(
        unlabelled,
        &[
            "unlabelled, not scored",
            "no entry in label.txt",
            "midpoint of the data window (2024-03-05 07:31:08)",
        ],
    );
}

#[test]
fn microirc_topology_comes_from_graph_csv_and_is_shared() {
    let label = format!(
        "{}{}",
        block("details_cpu_load_1", "2024-03-05 15:37:12", "details-v1"),
        block("details_cpu_load_2", "2024-03-05 15:52:13", "details-v1")
    );
    let fixture = Fixture::new(&label);
    fixture.case("details_cpu_load_1");
    fixture.case("details_cpu_load_2");
    fixture.case("details_mem_load_1");
    // A third case whose graph lacks the gateway, and has a row of unknown kind.
    fixture.file(
        "details_mem_load_1",
        "graph.csv",
        &format!(
            "destination,source,timestamp\ndetails-v1,productpage-v1,{0}\nnode-a,ghost-v1,{0}\n",
            ts(0)
        ),
    );
    let cases = load_ok(fixture.root());
    let first = cases[0].topology.as_ref().expect("topology");
    let second = cases[1].topology.as_ref().expect("topology");
    assert!(
        Arc::ptr_eq(first, second),
        "equal graphs share one topology"
    );
    let names: Vec<(&str, ServiceKind)> = first
        .services()
        .map(|s| (s.name.as_str(), s.kind))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&("istio-ingressgateway", ServiceKind::Gateway)));
    assert!(names.contains(&("reviews-v2", ServiceKind::Service)));
    let mut edges: Vec<(String, String)> = first
        .dependencies()
        .map(|d| (d.caller.clone(), d.callee.clone()))
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            ("istio-ingressgateway", "productpage-v1"),
            ("productpage-v1", "details-v1"),
            ("productpage-v1", "reviews-v2")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // No node, no pod, no `unknown`.
    assert!(first.service("izbp16node").is_none() && first.service("unknown").is_none());
    assert!(notes(&cases[0]).is_empty(), "{}", notes(&cases[0]));

    let third = cases[2].topology.as_ref().expect("topology");
    assert!(!Arc::ptr_eq(first, third));
    assert_eq!(third.dependency_count(), 1);
    assert!(third.service("istio-ingressgateway").is_none());
    assert_notes(
        &cases[2],
        &[
            "1 rows naming neither two workloads nor a pod's node skipped (first: ghost-v1 → node-a)",
        ],
    );
}

#[test]
fn microirc_excluded_files_are_not_read() {
    let fixture = Fixture::details_cpu_load_1();
    let case = "details_cpu_load_1";
    // Each would add a series, a candidate or a note if it were read.
    fixture.file(
        case,
        "svc_metric.csv",
        &format!(
            "details-v1&mem_usage,extra-v1&cpu_usage,timestamp\n1,2,{}\n0,,oops\n",
            ts(0)
        ),
    );
    fixture.file(
        case,
        "instances_num.csv",
        &format!("details-v1&count,extra-v1&count,timestamp\n1,1,{}\n", ts(0)),
    );
    fixture.file(
        case,
        "resource.csv",
        &format!("timestamp,vCPU,memory\n{},1,2,3\n", ts(0)),
    );
    let node = fixture.root().join("data").join(case).join("node");
    std::fs::create_dir_all(&node).expect("node dir");
    std::fs::write(node.join("node.csv"), "\u{0}not a csv\n").expect("node.csv");
    let loaded = &load_ok(fixture.root())[0];
    assert!(loaded.notes.is_empty(), "{}", notes(loaded));
    assert!(!loaded.candidates.iter().any(|c| c == "extra-v1"));
    for s in &loaded.series {
        for word in ["count", "mem_usage", "vCPU", "node"] {
            assert!(!s.name.contains(word), "{}", s.name);
        }
    }
}

#[test]
fn microirc_the_data_folder_itself_and_broken_datasets() {
    let fixture = Fixture::details_cpu_load_1();
    fixture.case("details_cpu_load_2");
    // A folder that is no case name, and a case with nothing readable.
    std::fs::create_dir_all(fixture.root().join("data/scripts")).expect("dir");
    std::fs::create_dir_all(fixture.root().join("data/ratings_cpu_load_1/bookinfo")).expect("dir");
    let from_data = load_ok(&fixture.root().join("data"));
    let loaded = load_all(fixture.root()).expect("loads");
    assert_eq!(from_data.len(), 2);
    assert_eq!(loaded.cases.len(), 2);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].0, "ratings_cpu_load_1");
    assert!(
        loaded.skipped[0].1.to_string().contains("latency.csv"),
        "{}",
        loaded.skipped[0].1
    );
    // A readable case missing some files keeps loading, with notes.
    std::fs::remove_file(
        fixture
            .root()
            .join("data/details_cpu_load_2/bookinfo/call.csv"),
    )
    .expect("rm");
    std::fs::remove_file(
        fixture
            .root()
            .join("data/details_cpu_load_2/bookinfo/graph.csv"),
    )
    .expect("rm");
    let cases = load_ok(fixture.root());
    assert!(cases[1].edges.is_empty() && cases[1].topology.is_none());
    assert_notes(&cases[1], &["call.csv not read", "graph.csv not read"]);

    let empty = tempfile::tempdir().expect("tempdir");
    let error = load(empty.path()).expect_err("no label.txt");
    assert!(error.to_string().contains("label.txt"), "{error}");
    let error = load(&empty.path().join("nowhere")).expect_err("no root");
    assert!(error.to_string().contains("nowhere"), "{error}");
    std::fs::write(empty.path().join("label.txt"), "").expect("label.txt");
    let error = load(empty.path()).expect_err("no cases");
    assert!(error.to_string().contains("no case folder"), "{error}");
    std::fs::create_dir_all(empty.path().join("details_cpu_load_1")).expect("dir");
    let error = load(empty.path()).expect_err("nothing readable");
    assert!(
        error.to_string().contains("none of the 1 case folders"),
        "{error}"
    );
}

/// The shared copy of the real dataset, if this checkout sits beside it (see
/// [`crate::test_support::real_data_or_skip`]).
fn real_data_or_skip(test: &str) -> Option<PathBuf> {
    crate::test_support::real_data_or_skip(test, "MicroIRC", "microirc-bookinfo", |p| {
        p.join("data/label.txt").is_file()
    })
}

#[test]
fn microirc_real_dataset_loads_all_185_cases() {
    let Some(root) = real_data_or_skip("microirc_real_dataset_loads_all_185_cases") else {
        return;
    };
    let started = Instant::now();
    let cases = load(&root).expect("the shared dataset loads");
    let elapsed = started.elapsed();
    let labelled = cases.iter().filter(|c| c.label.is_some()).count();
    let series: usize = cases.iter().map(|c| c.series.len()).sum();
    let edges: usize = cases.iter().map(|c| c.edges.len()).sum();
    let noted = cases.iter().filter(|c| !c.notes.is_empty()).count();
    let message = format!(
        "\nMicroIRC: {} cases, {labelled} labelled, {series} series, {edges} edge series, \
         {noted} cases with notes, loaded in {:.3} s\n",
        cases.len(),
        elapsed.as_secs_f64()
    );
    let _ = std::io::stderr().write_all(message.as_bytes());

    assert_eq!(cases.len(), 185);
    assert_eq!(labelled, 184);
    for case in &cases {
        assert_eq!(
            case.candidates.len(),
            6,
            "{}: {:?}",
            case.id,
            case.candidates
        );
        if let Some(label) = &case.label {
            assert!(case.candidates.contains(&label.root_cause), "{}", case.id);
        }
        assert!(case.topology.is_some(), "{}", case.id);
    }
    let first = cases[0].topology.as_ref().expect("topology");
    assert!(
        cases
            .iter()
            .all(|c| c.topology.as_ref().is_some_and(|t| Arc::ptr_eq(t, first)))
    );
    let case = |id: &str| cases.iter().find(|c| c.id == id).expect(id);
    assert_eq!(case("details_cpu_load_1").anchor, 1_709_624_232);
    let ragged = notes(case("reviews-v3_mem_load_1"));
    assert!(
        ragged.contains("instance.csv: 60 rows with a field count"),
        "{ragged}"
    );
    assert!(case("reviews-v2_cpu_load_1").label.is_none());
}
