//! The loader on a tiny handwritten Nezha-shaped directory, and on the real shared data when it
//! is present.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use rootcause_models::case::{Case, EdgeSeries, Family, Series, Source};

use super::*;

/// 2023-01-29 00:00:00 UTC.
const DAY: i64 = 1_674_950_400;

fn at(hours: i64, minutes: i64, seconds: i64) -> i64 {
    DAY + hours * 3600 + minutes * 60 + seconds
}

fn ns(hours: i64, minutes: i64, seconds: i64, millis: i64) -> i64 {
    at(hours, minutes, seconds) * 1_000_000_000 + millis * 1_000_000
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("fixture paths have a parent"))
        .expect("create fixture dir");
    std::fs::write(path, content).expect("write fixture");
}

fn write_gz(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("fixture paths have a parent"))
        .expect("create fixture dir");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(content.as_bytes())
        .expect("compress fixture");
    std::fs::write(path, encoder.finish().expect("compress fixture")).expect("write fixture");
}

const TRACE_HEADER: &str =
    "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n";
const LOG_HEADER: &str = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log\n";
const METRIC_HEADER: &str = "Time,TimeStamp,PodName,CpuUsageRate(%),PodServerLatencyP90(s)\n";
const POD_A1: &str = "ts-a-service-5f55b6cf68-aaaaa";
const POD_A2: &str = "ts-a-service-5f55b6cf68-zzzzz";
const POD_B: &str = "ts-b-service-84cbf6c798-bbbbb";
const POD_C: &str = "ts-c-service-59b758674f-ccccc";
const POD_D: &str = "ts-d-service-786f864768-ddddd";
/// A `TimeUnixNano` that decodes to the year 1754, as in the real data.
const YEAR_1754: &str = "-6795364578871345152";

fn span(trace: &str, id: &str, parent: &str, pod: &str, start_ns: i64, ms: i64) -> String {
    let end = start_ns + ms * 1_000_000;
    format!(
        "{trace},{id},{parent},{pod},op,{start_ns},{end},{}\n",
        ms * 1000
    )
}

fn log(pod: &str, span: &str, time_ns: i64, message: &str) -> String {
    let seconds = time_ns.div_euclid(1_000_000_000);
    let stamp = DateTime::from_timestamp(seconds, (time_ns.rem_euclid(1_000_000_000)) as u32)
        .expect("fixture time")
        .format("%Y-%m-%dT%H:%M:%S%.9fZ");
    let docker = serde_json::json!({"log": format!("{message}\n"), "stream": "stdout", "time": stamp.to_string()});
    let field = docker.to_string().replace('"', "\"\"");
    format!("{stamp},{time_ns},10.0.0.1,{pod},server,t,{span},\"{field}\"\n")
}

fn metric_row(pod: &str, time: i64, cpu: &str, latency: &str) -> String {
    format!("2023-01-29 x +0000 UTC,{time},{pod},{cpu},{latency}\n")
}

const A1: &str = "00000000000000a1";
const A2: &str = "00000000000000a2";
const A3: &str = "00000000000000a3";
const A4: &str = "00000000000000a4";
const A5: &str = "00000000000000a5";
const B1: &str = "00000000000000b1";
const B3: &str = "00000000000000b3";

/// A tiny dataset: services a (two pods), b, c (spans only in a neighbouring fault's minute)
/// and d (metrics only); two faults on 2023-01-29, listed out of order, the first with a
/// `inject_timestamp` 8 h early; a reference minute at 09:50.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("nezha-fixture")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    let day = root.join("rca_data/2023-01-29");
    let first = at(10, 2, 30);
    write(
        &day.join("2023-01-29-fault_list.json"),
        &format!(
            r#"{{"10": [
                {{"inject_time": "2023-01-29 10:05:30", "inject_timestamp": "{}", "inject_pod": "{POD_A1}", "inject_type": "cpu_contention"}},
                {{"inject_time": "2023-01-29 10:02:30", "inject_timestamp": "{}", "inject_pod": "{POD_B}", "inject_type": "network_delay"}}
            ]}}"#,
            at(10, 5, 30),
            first - 8 * 3600
        ),
    );

    let metric = day.join("metric");
    let mut a1 = String::from(METRIC_HEADER);
    let mut a2 = String::from(METRIC_HEADER);
    let mut b = String::from(METRIC_HEADER);
    let mut c = String::from(METRIC_HEADER);
    let mut d = String::from(METRIC_HEADER);
    for minute in 0..8 {
        let time = at(10, minute, 9);
        a1.push_str(&metric_row(POD_A1, time, "10", "0.2"));
        a2.push_str(&metric_row(POD_A2, time, "20", "0.4"));
        let latency = if minute == 1 { "0" } else { "0.1" };
        b.push_str(&metric_row(POD_B, time, "5", latency));
        c.push_str(&metric_row(POD_C, time, "1", "NaN"));
        d.push_str(&metric_row(POD_D, time, "2", ""));
    }
    // Before the metric window (anchor − 1800 s = 09:32:30).
    a1.push_str(&metric_row(POD_A1, at(9, 0, 9), "99", "9"));
    b.push_str("only,three,fields\n");
    write(&metric.join(format!("{POD_A1}_metric.csv")), &a1);
    write(&metric.join(format!("{POD_A2}_metric.csv")), &a2);
    write(&metric.join(format!("{POD_B}_metric.csv")), &b);
    write_gz(&metric.join(format!("{POD_C}_metric.csv.gz")), &c);
    write(&metric.join(format!("{POD_D}_metric.csv")), &d);
    write(
        &metric.join("front_service.csv"),
        "Time,TimeStamp,ServiceName,SuccessRate(%)\nx,1674986409,Frontend,0\n",
    );

    // Minute 10:01 (file 10_02, gzipped) and 10:02 (file 10_03, plain); A2 is in both.
    let mut t02 = String::from(TRACE_HEADER);
    t02 += &span("t1", A1, "root", POD_A1, ns(10, 1, 0, 0), 100);
    t02 += &span("t1", B1, A1, POD_B, ns(10, 1, 0, 10), 60);
    t02 += &span("t2", A2, "root", POD_A2, ns(10, 1, 59, 0), 10);
    write_gz(&day.join("trace/10_02_trace.csv.gz"), &t02);
    let mut t03 = String::from(TRACE_HEADER);
    t03 += &span("t2", A2, "root", POD_A2, ns(10, 1, 59, 0), 10);
    t03 += &span("t3", A3, "root", POD_A1, ns(10, 2, 0, 0), 50);
    t03 += &span("t3", B3, A3, POD_B, ns(10, 2, 0, 5), 20);
    t03 += &span("t3", A4, A3, POD_A1, ns(10, 2, 0, 30), 10);
    t03 += &span("t4", A5, "root", POD_A1, ns(10, 2, 59, 0), 5);
    write(&day.join("trace/10_03_trace.csv"), &t03);
    // The second fault's minute: must not reach the first case.
    let mut t05 = String::from(TRACE_HEADER);
    t05 += &span("t5", "00000000000000c1", "root", POD_C, ns(10, 4, 10, 0), 7);
    t05 += &span("t6", "00000000000000c2", "root", POD_C, ns(10, 4, 50, 0), 7);
    // A call seen in no reference minute.
    t05 += &span(
        "t6",
        "00000000000000d2",
        "00000000000000c2",
        POD_D,
        ns(10, 4, 50, 1),
        3,
    );
    write_gz(&day.join("trace/10_05_trace.csv.gz"), &t05);

    let mut l02 = String::from(LOG_HEADER);
    l02 += &log(
        POD_A1,
        A1,
        ns(10, 1, 0, 0),
        "10:01:00.000 INFO  x.y.AController#12 TraceID: t1 SpanID: a1 [get][ok]",
    );
    l02 += &log(
        POD_B,
        B1,
        ns(10, 1, 0, 20),
        "10:01:00.020 ERROR x.y.BServiceImpl#34 TraceID: t1 failed: java.lang.IllegalStateException: boom",
    );
    // TimeUnixNano in 1754 beside a sound Timestamp: kept, timed by the Timestamp.
    l02 += &format!(
        "2023-01-29T10:01:30.000,{YEAR_1754},10.0.0.1,{POD_B},server,t,{B1},\"{{\"\"log\"\":\"\"10:01:30.000 WARN  x.y.BServiceImpl#40 slow\\n\"\"}}\"\n"
    );
    // Neither time usable: rejected.
    l02 += &format!("garbage,{YEAR_1754},10.0.0.1,{POD_B},server,t,{B1},not json\n");
    // Malformed: too many fields.
    l02 +=
        &format!("2023-01-29T10:01:40Z,1674986500000000000,10.0.0.1,{POD_B},server,t,{B1},a,b,c\n");
    l02 += &log(
        POD_A2,
        A2,
        ns(10, 1, 59, 900),
        "10:01:59.900 INFO  x.y.AController#12 TraceID: t2 SpanID: a2 [get][ok]",
    );
    write(&day.join("log/10_02_log.csv"), &l02);
    let mut l03 = String::from(LOG_HEADER);
    l03 += &log(
        POD_A2,
        A2,
        ns(10, 1, 59, 900),
        "10:01:59.900 INFO  x.y.AController#12 TraceID: t2 SpanID: a2 [get][ok]",
    );
    l03 += &log(
        POD_A1,
        A3,
        ns(10, 2, 0, 100),
        "10:02:00.100 INFO  x.y.AController#12 TraceID: t3 SpanID: a3 [get][ok]",
    );
    l03 += &log(
        POD_A1,
        A5,
        ns(10, 2, 59, 0),
        "10:02:59.000 INFO plain message without location 42",
    );
    write_gz(&day.join("log/10_03_log.csv.gz"), &l03);

    let reference = root.join("construct_data/2023-01-29");
    let mut rt = String::from(TRACE_HEADER);
    rt += &span(
        "r1",
        "00000000000000e1",
        "root",
        POD_A1,
        ns(9, 49, 0, 0),
        30,
    );
    rt += &span(
        "r1",
        "00000000000000e2",
        "00000000000000e1",
        POD_B,
        ns(9, 49, 0, 1),
        25,
    );
    rt += &span(
        "r2",
        "00000000000000e3",
        "root",
        POD_A1,
        ns(9, 49, 59, 0),
        10,
    );
    write_gz(&reference.join("trace/09_50_trace.csv.gz"), &rt);
    let mut rl = String::from(LOG_HEADER);
    rl += &log(
        POD_A1,
        "00000000000000e1",
        ns(9, 49, 0, 0),
        "09:49:00.000 INFO  x.y.AController#12 TraceID: r1 [get][ok]",
    );
    rl += &log(
        POD_A1,
        "00000000000000e3",
        ns(9, 49, 59, 0),
        "09:49:59.000 INFO  x.y.AController#12 TraceID: r2 [get][ok]",
    );
    write_gz(&reference.join("log/09_50_log.csv.gz"), &rl);
    dir
}

fn load_fixture() -> (tempfile::TempDir, Vec<Case>) {
    let dir = fixture();
    let cases = load(dir.path(), &Options::default()).expect("fixture loads");
    (dir, cases)
}

fn series<'a>(case: &'a Case, service: &str, source: Source, name: &str) -> &'a Series {
    case.series
        .iter()
        .find(|s| s.service == service && s.source == source && s.name == name)
        .unwrap_or_else(|| panic!("no {source:?} series {name} for {service}"))
}

fn value_at(series: &Series, time: i64) -> f64 {
    sample(&series.name, &series.times, &series.values, time)
}

/// The value at `time` of the series or edge series `name`, which must have a sample then.
fn sample(name: &str, times: &[i64], values: &[f64], time: i64) -> f64 {
    let i = times
        .iter()
        .position(|&t| t == time)
        .unwrap_or_else(|| panic!("{name} has no sample at {time}"));
    values[i]
}

fn edge<'a>(case: &'a Case, caller: &str, callee: &str, name: &str) -> &'a EdgeSeries {
    case.edges
        .iter()
        .find(|e| e.caller == caller && e.callee == callee && e.name == name)
        .unwrap_or_else(|| panic!("no edge {caller} -> {callee} {name}"))
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn nezha_cases_are_numbered_by_injection_time_and_anchored_on_inject_time() {
    let (_dir, cases) = load_fixture();
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["2023-01-29#00", "2023-01-29#01"]);
    assert_eq!(
        cases[0].anchor,
        at(10, 2, 30),
        "inject_time, not inject_timestamp"
    );
    assert_eq!(cases[1].anchor, at(10, 5, 30));
    let label = cases[0].label.as_ref().expect("labelled");
    assert_eq!(label.root_cause, "ts-b-service");
    assert_eq!(label.fault_type, "network_delay");
    assert_eq!(label.action, None);
    // The temp dir is `nezha-fixture<random>`: the system is what follows `nezha-`.
    assert!(
        cases[0].system.starts_with("fixture"),
        "{}",
        cases[0].system
    );
}

#[test]
fn nezha_candidates_are_the_services_with_metric_files() {
    let (_dir, cases) = load_fixture();
    assert_eq!(
        cases[0].candidates,
        [
            "ts-a-service",
            "ts-b-service",
            "ts-c-service",
            "ts-d-service"
        ]
    );
    assert!(
        !cases[0].series.iter().any(|s| s.service.contains("front")),
        "the frontend SLI is no service"
    );
}

#[test]
fn nezha_metrics_average_pods_window_the_anchor_and_blank_idle_latency() {
    let (_dir, cases) = load_fixture();
    let case = &cases[0];
    let cpu = series(case, "ts-a-service", Source::Metric, "CpuUsageRate(%)");
    assert_eq!(cpu.family, Family::Cpu);
    assert!(
        close(value_at(cpu, at(10, 0, 9)), 15.0),
        "mean of 10 and 20"
    );
    assert!(
        !cpu.times.contains(&at(9, 0, 9)),
        "samples before anchor − 1800 s are left out"
    );
    // 10:00:09 to 10:05:09: the window ends at the next fault (10:05:30), not at 10:12:30.
    assert_eq!(cpu.times.len(), 6);
    let latency = series(
        case,
        "ts-b-service",
        Source::Metric,
        "PodServerLatencyP90(s)",
    );
    assert_eq!(latency.family, Family::Latency);
    assert!(
        value_at(latency, at(10, 1, 9)).is_nan(),
        "0 means no requests"
    );
    assert!(close(value_at(latency, at(10, 2, 9)), 0.1));
    assert!(
        !case
            .series
            .iter()
            .any(|s| s.name == "Time" || s.name == "PodName"),
        "text columns are no metrics"
    );
    assert!(
        case.notes
            .iter()
            .any(|n| n.contains(POD_B) && n.contains("1 malformed")),
        "{:?}",
        case.notes
    );
}

#[test]
fn nezha_span_statistics_deduplicate_and_bin_by_start_time() {
    let (_dir, cases) = load_fixture();
    let case = &cases[0];
    let count = series(case, "ts-a-service", Source::Trace, "span_count");
    assert_eq!(count.family, Family::Traffic);
    // Reference minute 09:49, then 10:01 and 10:02, each stamped at its end.
    assert_eq!(count.times, [at(9, 50, 0), at(10, 2, 0), at(10, 3, 0)]);
    assert!(close(value_at(count, at(10, 2, 0)), 2.0), "A2 counted once");
    assert!(close(value_at(count, at(10, 3, 0)), 3.0));
    let self_ms = series(case, "ts-a-service", Source::Trace, "self_ms_mean");
    assert!(close(value_at(self_ms, at(10, 2, 0)), (40.0 + 10.0) / 2.0));
    assert!(close(
        value_at(self_ms, at(10, 3, 0)),
        (20.0 + 10.0 + 5.0) / 3.0
    ));
    let p50 = series(case, "ts-b-service", Source::Trace, "duration_p50_ms");
    assert_eq!(p50.family, Family::Latency);
    assert!(close(value_at(p50, at(10, 2, 0)), 60.0));
    let errors = series(case, "ts-b-service", Source::Trace, "error_spans");
    assert_eq!(errors.family, Family::Errors);
    assert!(
        close(value_at(errors, at(10, 2, 0)), 1.0),
        "B1 has an ERROR line"
    );
    assert!(close(value_at(errors, at(10, 3, 0)), 0.0));
    assert!(
        case.series_of("ts-c-service")
            .all(|s| s.source == Source::Metric),
        "the neighbouring fault's minute file is not read"
    );
    assert!(
        cases[1]
            .series
            .iter()
            .any(|s| s.service == "ts-c-service" && s.source == Source::Trace),
        "but it is the second fault's"
    );
}

#[test]
fn nezha_edges_measure_calls_network_time_and_errors() {
    let (_dir, cases) = load_fixture();
    let case = &cases[0];
    let network = edge(case, "ts-a-service", "ts-b-service", "network_ms");
    assert!(close(value_at_edge(network, at(9, 50, 0)), 5.0));
    assert!(close(value_at_edge(network, at(10, 2, 0)), 40.0));
    assert!(close(value_at_edge(network, at(10, 3, 0)), 30.0));
    let calls = edge(case, "ts-a-service", "ts-b-service", "calls");
    assert!(close(value_at_edge(calls, at(10, 2, 0)), 1.0));
    let callee = edge(case, "ts-a-service", "ts-b-service", "callee_ms");
    assert!(close(value_at_edge(callee, at(10, 3, 0)), 20.0));
    let errors = edge(case, "ts-a-service", "ts-b-service", "errors");
    assert!(close(value_at_edge(errors, at(10, 2, 0)), 1.0));
    assert!(
        !case.edges.iter().any(|e| e.caller == e.callee),
        "A3 → A4 stays inside one service"
    );
}

fn value_at_edge(edge: &EdgeSeries, time: i64) -> f64 {
    sample(&edge.name, &edge.times, &edge.values, time)
}

#[test]
fn nezha_log_statistics_count_levels_exceptions_and_templates() {
    let (_dir, cases) = load_fixture();
    let case = &cases[0];
    let template = series(
        case,
        "ts-a-service",
        Source::Log,
        "template:INFO x.y.AController#12",
    );
    assert_eq!(template.family, Family::Template);
    assert!(close(value_at(template, at(9, 50, 0)), 2.0));
    assert!(
        close(value_at(template, at(10, 2, 0)), 2.0),
        "the repeated row counts once"
    );
    assert!(close(value_at(template, at(10, 3, 0)), 1.0));
    let plain = series(
        case,
        "ts-a-service",
        Source::Log,
        "template:INFO plain message without location <*>",
    );
    assert!(close(value_at(plain, at(10, 3, 0)), 1.0));
    assert!(close(value_at(plain, at(10, 2, 0)), 0.0));
    let error = series(case, "ts-b-service", Source::Log, "log_error");
    assert!(close(value_at(error, at(10, 2, 0)), 1.0));
    let warn = series(case, "ts-b-service", Source::Log, "log_warn");
    assert!(
        close(value_at(warn, at(10, 2, 0)), 1.0),
        "the 1754 row is timed by its Timestamp"
    );
    let exception = series(case, "ts-b-service", Source::Log, "log_exception");
    assert!(close(value_at(exception, at(10, 2, 0)), 1.0));
    let lines = series(case, "ts-b-service", Source::Log, "log_lines");
    assert!(
        close(value_at(lines, at(10, 2, 0)), 2.0),
        "bad rows are not counted"
    );
}

#[test]
fn nezha_notes_report_bad_rows_duplicates_and_missing_minutes() {
    let (_dir, cases) = load_fixture();
    let notes = &cases[0].notes;
    let has = |needle: &str| notes.iter().any(|n| n.contains(needle));
    assert!(has("no trace file for minute 10_04"), "{notes:?}");
    assert!(has("no log file for minute 10_04"), "{notes:?}");
    assert!(!has("minute 10_02") && !has("minute 10_03"), "{notes:?}");
    assert!(
        has("1 malformed rows and 1 rows without a usable time skipped"),
        "{notes:?}"
    );
    assert!(has("1 rows with an implausible TimeUnixNano"), "{notes:?}");
    assert!(
        has("1 duplicate spans (same SpanID) and 1 duplicate log rows"),
        "{notes:?}"
    );
    assert!(
        cases[1]
            .notes
            .iter()
            .any(|n| n.contains("no log file for minute 10_05")),
        "{:?}",
        cases[1].notes
    );
}

#[test]
fn nezha_statistics_are_stamped_at_the_end_of_their_minute() {
    let (_dir, cases) = load_fixture();
    let case = &cases[0];
    let anchor = case.anchor; // 10:02:30
    let count = series(case, "ts-b-service", Source::Trace, "span_count");
    let lines = series(case, "ts-b-service", Source::Log, "log_lines");
    let calls = edge(case, "ts-a-service", "ts-b-service", "calls");
    for times in [&count.times, &lines.times, &calls.times] {
        // The minute before the anchor's ends at 10:02, before the anchor; the anchor's own
        // minute ends at 10:03, after it.
        assert!(times.contains(&at(10, 2, 0)) && !times.contains(&at(10, 1, 0)));
        let before: Vec<i64> = times.iter().copied().filter(|&t| t < anchor).collect();
        assert_eq!(before, [at(9, 50, 0), at(10, 2, 0)]);
    }
    // B1 (10:01:00) is in the last sample before the anchor; B3 (10:02:00) after it.
    assert!(close(value_at(count, at(10, 2, 0)), 1.0));
    assert!(close(value_at(count, at(10, 3, 0)), 1.0));
}

#[test]
fn nezha_normal_windows_hold_the_reference_minutes_sample_times() {
    let (_dir, cases) = load_fixture();
    for case in &cases {
        // The reference minute 09:49 gives the sample times (09:49:00, 09:50:00].
        assert_eq!(case.normal_windows, [(at(9, 49, 1), at(9, 50, 1))]);
        let count = series(case, "ts-a-service", Source::Trace, "span_count");
        let (from, to) = case.normal_windows[0];
        assert_eq!(count.window(from, to), [2.0]);
    }
}

#[test]
fn nezha_case_data_ends_before_the_next_fault() {
    let dir = fixture();
    let day = dir.path().join("rca_data/2023-01-29");
    // The second fault moved to 10:04:00, a minute boundary.
    write(
        &day.join("2023-01-29-fault_list.json"),
        &format!(
            r#"{{"10": [
                {{"inject_time": "2023-01-29 10:02:30", "inject_pod": "{POD_B}", "inject_type": "network_delay"}},
                {{"inject_time": "2023-01-29 10:04:00", "inject_pod": "{POD_A1}", "inject_type": "cpu_contention"}}
            ]}}"#
        ),
    );
    // The first fault's last file runs 41 s into minute 10:03, which ends at the next anchor.
    let trace = day.join("trace/10_03_trace.csv");
    let mut text = std::fs::read_to_string(&trace).expect("fixture trace");
    for (i, second) in [0, 10, 20, 30, 40].into_iter().enumerate() {
        let id = format!("00000000000000f{i}");
        text += &span(
            &format!("t9{i}"),
            &id,
            "root",
            POD_A1,
            ns(10, 3, second, 0),
            1,
        );
    }
    write(&trace, &text);
    let cases = load(dir.path(), &Options::default()).expect("fixture loads");
    let (first, second) = (&cases[0], &cases[1]);
    let next = second.anchor;
    for s in first.series.iter() {
        let own = s.times.iter().filter(|&&t| t >= first.anchor - 1800);
        assert!(own.clone().all(|&t| t < next), "{} {:?}", s.name, s.times);
    }
    assert!(
        first
            .edges
            .iter()
            .all(|e| e.times.iter().all(|&t| t < next))
    );
    let cpu = series(first, "ts-a-service", Source::Metric, "CpuUsageRate(%)");
    assert_eq!(cpu.times.last(), Some(&at(10, 3, 9)));
    let count = series(first, "ts-a-service", Source::Trace, "span_count");
    assert_eq!(count.times, [at(9, 50, 0), at(10, 2, 0), at(10, 3, 0)]);
    let has = |case: &Case, needle: &str| case.notes.iter().any(|n| n.contains(needle));
    assert!(
        has(
            first,
            "metric window cut at the next fault 2023-01-29#01 (90 s"
        ),
        "{:?}",
        first.notes
    );
    assert!(
        has(
            first,
            "1 trace or log minutes ending at or after the next fault"
        ),
        "{:?}",
        first.notes
    );
    // The last fault runs its full 10 minutes, up to the end of the metric files.
    assert!(!has(second, "cut"), "{:?}", second.notes);
    let cpu = series(second, "ts-a-service", Source::Metric, "CpuUsageRate(%)");
    assert_eq!(cpu.times.last(), Some(&at(10, 7, 9)));
}

#[test]
fn nezha_topology_is_learned_from_all_spans_and_lists_every_candidate() {
    let (dir, cases) = load_fixture();
    let topology = cases[0].topology.as_ref().expect("topology");
    assert!(Arc::ptr_eq(
        topology,
        cases[1].topology.as_ref().expect("topology")
    ));
    let services: Vec<&str> = topology.services().map(|s| s.name.as_str()).collect();
    assert_eq!(
        services,
        [
            "ts-a-service",
            "ts-b-service",
            "ts-c-service",
            "ts-d-service"
        ]
    );
    let edges: Vec<(&str, &str)> = topology
        .dependencies()
        .map(|d| (d.caller.as_str(), d.callee.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("ts-a-service", "ts-b-service"),
            ("ts-c-service", "ts-d-service")
        ]
    );
    let document = learned_topology(dir.path());
    assert_eq!(document.services.len(), 4);
    assert_eq!(document.dependencies.len(), 2);
}

#[test]
fn nezha_topology_attributes_come_from_the_reference_minutes_alone() {
    let dir = fixture();
    let document = learned_topology(dir.path());
    // a → b: three calls, one (B1, in a fault minute) with an ERROR line; the reference minute
    // holds one sound call of 25 ms in 60 s of traces.
    let ab = &document.dependencies[0];
    assert_eq!(
        (ab.caller.as_str(), ab.callee.as_str()),
        ("ts-a-service", "ts-b-service")
    );
    assert_eq!(
        ab.error_rate,
        Some(0.0),
        "the fault minutes' error is not seen"
    );
    assert!(close(ab.latency_ms.unwrap_or(f64::NAN), 25.0));
    assert!(close(ab.call_rate.unwrap_or(f64::NAN), 1.0 / 60.0));
    let first = ab.first_seen.expect("seen in the reference minute");
    assert_eq!(first.timestamp_nanos_opt(), Some(ns(9, 49, 0, 1)));
    // c → d only ever ran in a fault minute: an edge without attributes.
    let cd = &document.dependencies[1];
    assert_eq!(
        (cd.caller.as_str(), cd.callee.as_str()),
        ("ts-c-service", "ts-d-service")
    );
    assert_eq!(
        (
            cd.call_rate,
            cd.error_rate,
            cd.latency_ms,
            cd.first_seen,
            cd.last_seen
        ),
        (None, None, None, None, None)
    );
}

#[test]
fn nezha_missing_fault_list_or_directory_is_an_error_naming_the_path() {
    let dir = fixture();
    let list = dir
        .path()
        .join("rca_data/2023-01-29/2023-01-29-fault_list.json");
    std::fs::remove_file(&list).expect("remove fault list");
    let error = load(dir.path(), &Options::default()).expect_err("no fault list");
    assert!(error.to_string().contains("fault_list.json"), "{error}");

    let dir = fixture();
    std::fs::remove_dir_all(dir.path().join("rca_data/2023-01-29/log")).expect("remove logs");
    let error = load(dir.path(), &Options::default()).expect_err("no log dir");
    assert!(error.to_string().contains("2023-01-29/log"), "{error}");

    let error = load(&dir.path().join("nowhere"), &Options::default()).expect_err("no root");
    assert!(error.to_string().contains("nowhere"), "{error}");
}

#[test]
fn nezha_system_name_comes_from_the_directory() {
    assert_eq!(
        system_name(Path::new("/data/nezha-train-ticket")),
        "train-ticket"
    );
    assert_eq!(system_name(Path::new("/data/nezha")), "nezha");
    assert_eq!(system_name(Path::new("/")), "nezha");
}

/// The shared copy of the real dataset, if this checkout sits beside it (see
/// [`crate::test_support::real_data_or_skip`]).
fn real_data_or_skip(test: &str) -> Option<PathBuf> {
    crate::test_support::real_data_or_skip(test, "Nezha", "nezha-train-ticket", |p| {
        p.join("rca_data").is_dir()
    })
}

/// `case_id` of every row of `cases.csv`.
fn published_case_ids(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("cases.csv")).expect("cases.csv");
    text.lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn nezha_real_dataset_loads_all_45_labelled_cases() {
    let Some(root) = real_data_or_skip("nezha_real_dataset_loads_all_45_labelled_cases") else {
        return;
    };
    let cases = load(&root, &Options::default()).expect("the shared dataset loads");
    assert_eq!(cases.len(), 45);
    let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, published_case_ids(&root));
    let mut causes = BTreeSet::new();
    let mut types: std::collections::BTreeMap<String, usize> = Default::default();
    for case in &cases {
        let label = case.label.as_ref().expect("every case is labelled");
        assert!(
            case.candidates.contains(&label.root_cause),
            "{}: {} not a candidate",
            case.id,
            label.root_cause
        );
        causes.insert(label.root_cause.clone());
        *types.entry(label.fault_type.clone()).or_default() += 1;
        assert_eq!(case.system, "train-ticket");
        assert!(!case.normal_windows.is_empty(), "{}", case.id);
        assert!(
            case.series.iter().any(|s| s.source == Source::Trace)
                && case.series.iter().any(|s| s.source == Source::Log)
                && !case.edges.is_empty(),
            "{} has trace, log and edge statistics",
            case.id
        );
        for s in &case.series {
            assert!(
                s.times.windows(2).all(|w| w[0] < w[1]),
                "{} {}",
                case.id,
                s.name
            );
            assert_eq!(s.times.len(), s.values.len());
        }
    }
    assert_eq!(causes.len(), 10);
    let expected = [
        ("cpu_contention", 7),
        ("exception", 13),
        ("network_delay", 14),
        ("return", 11),
    ];
    assert_eq!(
        types
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(cases[0].anchor, 1_674_981_784, "2023-01-29 08:43:04 UTC");
    assert!(cases[0].candidates.len() >= 40);
    // Outside the reference minutes, no sample ends at or after the next fault of the date.
    for (case, next) in cases.iter().zip(next_anchors(&cases)) {
        let Some(next) = next else { continue };
        let normal = |t: i64| {
            case.normal_windows
                .iter()
                .any(|&(a, b)| (a..b).contains(&t))
        };
        let times = case
            .series
            .iter()
            .map(|s| (&s.name, &s.times))
            .chain(case.edges.iter().map(|e| (&e.name, &e.times)));
        for (name, times) in times {
            assert!(
                times.iter().all(|&t| t < next || normal(t)),
                "{} {name} runs past the next fault",
                case.id
            );
        }
    }
    assert!(cut_cases(&cases) > 0);
    let topology = cases[0].topology.as_ref().expect("topology");
    assert!(
        topology.dependencies().any(|d| d.error_rate.is_some())
            && topology.dependencies().any(|d| d.error_rate.is_none()),
        "attributes on the edges the reference minutes show, and only on them"
    );
}

/// The anchor of the next fault on the same date, per case.
fn next_anchors(cases: &[Case]) -> Vec<Option<i64>> {
    let date = |c: &Case| c.id.split('#').next().unwrap_or_default().to_string();
    cases
        .iter()
        .map(|case| {
            cases
                .iter()
                .filter(|c| date(c) == date(case) && c.anchor > case.anchor)
                .map(|c| c.anchor)
                .min()
        })
        .collect()
}

/// How many cases had their metric window cut at the next fault.
fn cut_cases(cases: &[Case]) -> usize {
    cases
        .iter()
        .filter(|c| c.notes.iter().any(|n| n.starts_with("metric window cut")))
        .count()
}

/// The graph every case of the dataset at `root` shares, as a document.
fn learned_topology(root: &Path) -> TopologyDocument {
    let cases = load(root, &Options::default()).expect("loads");
    cases[0]
        .topology
        .as_ref()
        .expect("a learned graph")
        .to_document()
}
