//! Metric evidence from a real Prometheus: a TSDB backfilled by `promtool` from an OpenMetrics
//! file, served by `prometheus`, read through `rootcause::prometheus::PrometheusSource` with a
//! template asked once for all services, one asked per service, one without placeholder, and a
//! malformed one that must fail alone.
//!
//! Needs `prometheus` and `promtool` (Debian package `prometheus`) on `PATH`, or
//! `ROOTCAUSE_TEST_PROMETHEUS` naming the `prometheus` binary with `promtool` next to it. When
//! they are missing the test skips loudly, or fails under `ROOTCAUSE_REQUIRE_E2E=1`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rootcause::config::PrometheusConfig;
use rootcause::prometheus::{PrometheusError, PrometheusSource};
use rootcause_e2e::{ReadyServer, find_binary};

/// Names the `prometheus` binary to run (`promtool` is looked up next to it).
const PROMETHEUS_BIN_VAR: &str = "ROOTCAUSE_TEST_PROMETHEUS";

/// How long Prometheus may take to load the backfilled blocks and become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const STEP: i64 = 60;

/// Samples per series: two hours at one a minute, both ends included.
const POINTS: i64 = 121;

/// Samples of cart's CPU step, at the end of the data.
const STEP_POINTS: i64 = 20;

/// The services asked about. The dot checks that names reach Prometheus regex-escaped inside a
/// PromQL string (`payment\\.v2`): unescaped twice, Prometheus refuses the query.
const SERVICES: [&str; 3] = ["cart", "frontend", "payment.v2"];

/// `prometheus` and `promtool`, or why they are not there.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let prometheus = find_binary(
        PROMETHEUS_BIN_VAR,
        &["prometheus"],
        "apt-get install prometheus",
    )?;
    let promtool = prometheus.with_file_name("promtool");
    if promtool.is_file() {
        Ok((prometheus, promtool))
    } else {
        Err(format!(
            "{} has no promtool beside it (install both with `apt-get install prometheus`)",
            prometheus.display()
        ))
    }
}

/// Cart's CPU at sample `i` (0 = oldest): a little noise, then a step for the last samples.
fn cart_cpu(i: i64) -> f64 {
    if i >= POINTS - STEP_POINTS {
        0.9
    } else {
        [0.20, 0.21, 0.22][(i % 3) as usize]
    }
}

/// Frontend's CPU, with one NaN sample that must come back as NaN.
fn frontend_cpu(i: i64) -> f64 {
    if i == 10 { f64::NAN } else { 0.3 }
}

/// Cart's two pods; the per-service result is their mean (0.2, then 0.6 during the step).
fn cart_latency(pod: usize, i: i64) -> f64 {
    let stepped = i >= POINTS - STEP_POINTS;
    match (pod, stepped) {
        (1, false) => 0.1,
        (2, false) => 0.3,
        (1, true) => 0.5,
        (_, _) => 0.7,
    }
}

/// The OpenMetrics text for samples at `first + i * STEP`, `i` in `0..POINTS`. Every sample of a
/// family is together and each series' samples are in time order, as `promtool` requires.
fn openmetrics(first: i64) -> String {
    type Value = Box<dyn Fn(i64) -> f64>;
    let families: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            "cpu_usage",
            vec![
                (r#"service="cart""#, Box::new(cart_cpu)),
                (r#"service="frontend""#, Box::new(frontend_cpu)),
                (r#"service="payment.v2""#, Box::new(|_| 0.5)),
                // Would be matched by an unescaped `payment.v2`.
                (r#"service="paymentXv2""#, Box::new(|_| 7.0)),
                // Not asked about: a template without placeholder returns it, and it is dropped.
                (r#"service="ads""#, Box::new(|_| 0.4)),
            ],
        ),
        (
            "latency_p99_seconds",
            vec![
                (
                    r#"service="cart",pod="cart-1""#,
                    Box::new(|i| cart_latency(1, i)),
                ),
                (
                    r#"service="cart",pod="cart-2""#,
                    Box::new(|i| cart_latency(2, i)),
                ),
                (r#"service="payment.v2",pod="p-1""#, Box::new(|_| 0.05)),
            ],
        ),
    ];
    let mut text = String::new();
    for (family, series) in &families {
        writeln!(text, "# TYPE {family} gauge").unwrap();
        for (labels, value) in series {
            for i in 0..POINTS {
                let value = value(i);
                let value = if value.is_nan() {
                    "NaN".to_owned()
                } else {
                    value.to_string()
                };
                writeln!(text, "{family}{{{labels}}} {value} {}", first + i * STEP).unwrap();
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Starts Prometheus on `data_dir` with no scrape targets and waits until `/-/ready` answers
/// 200; killed when dropped.
async fn start_prometheus(binary: &Path, data_dir: &Path, config: &Path) -> ReadyServer {
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data_dir.display()),
        "--storage.tsdb.retention.time=30d".to_owned(),
    ];
    ReadyServer::start("Prometheus", binary, &args, READY_TIMEOUT).await
}

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: sample count");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let same = (a.is_nan() && e.is_nan()) || (a - e).abs() < 1e-9;
        assert!(
            same,
            "{what}: sample {i} is {a}, expected {e}\nall: {actual:?}"
        );
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[tokio::test]
async fn evidence_is_read_from_a_real_prometheus() {
    let (prometheus_bin, promtool) = match binaries() {
        Ok(binaries) => binaries,
        Err(why) => {
            rootcause::testing::missing_component("Prometheus", &why);
            return;
        }
    };

    // Two hours of minutes ending 3 h ago: well inside retention, and clear of the time range of
    // the head block, which backfilled blocks must not overlap.
    let now = chrono::Utc::now().timestamp();
    let last = now.div_euclid(STEP) * STEP - 3 * 3600;
    let first = last - (POINTS - 1) * STEP;
    let step_at = first + (POINTS - STEP_POINTS) * STEP;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let input = dir.path().join("metrics.om");
    std::fs::write(&input, openmetrics(first)).expect("write the OpenMetrics file");
    let backfill = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data_dir)
        .output()
        .expect("promtool runs");
    assert!(
        backfill.status.success(),
        "promtool failed: {}\n{}",
        String::from_utf8_lossy(&backfill.stdout),
        String::from_utf8_lossy(&backfill.stderr)
    );
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_file,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )
    .expect("write the Prometheus configuration");
    let prometheus = start_prometheus(&prometheus_bin, &data_dir, &config_file).await;

    let config = PrometheusConfig {
        url: Some(prometheus.url.clone()),
        step_s: STEP as u64,
        before_s: ((POINTS - STEP_POINTS) * STEP) as u64,
        after_s: ((STEP_POINTS - 1) * STEP) as u64,
        timeout_ms: 10_000,
        queries: [
            (
                "cpu_usage",
                r#"avg by (service) (cpu_usage{service=~"{{services}}"})"#,
            ),
            ("cpu_max", "max by (service) (cpu_usage)"),
            (
                "latency_p99_seconds",
                r#"latency_p99_seconds{service="{{service}}"}"#,
            ),
            ("broken", r#"sum(cpu_usage{service=~"{{services}}"}"#),
        ]
        .into_iter()
        .map(|(name, template)| (name.to_owned(), template.to_owned()))
        .collect(),
        ..PrometheusConfig::default()
    };
    config.validate().expect("a valid configuration");
    // The incident starts with cart's step; the window is exactly the backfilled two hours.
    let (from, to) = config.window(step_at, now);
    assert_eq!((from, to), (first, last));
    let source = PrometheusSource::new(config).expect("a URL is configured");
    let services: Vec<String> = SERVICES.iter().map(|s| (*s).to_owned()).collect();
    let fetched = source
        .fetch(&services, from, to)
        .await
        .unwrap_or_else(|e| panic!("{e}; Prometheus's log:\n{}", prometheus.log()));

    // The malformed template fails alone, named, with Prometheus's reason.
    assert_eq!(fetched.errors.len(), 1, "{:?}", fetched.errors);
    let error = &fetched.errors[0];
    assert!(
        matches!(error, PrometheusError::Rejected { error_type, .. } if error_type == "bad_data"),
        "{error}"
    );
    assert_eq!(error.query().map(|q| q.name.as_str()), Some("broken"));
    assert!(error.to_string().contains("\"broken\""), "{error}");

    let found: BTreeSet<(&str, &str)> = fetched
        .series
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    let expected: BTreeSet<(&str, &str)> = [
        ("cart", "cpu_usage"),
        ("frontend", "cpu_usage"),
        ("payment.v2", "cpu_usage"),
        ("cart", "cpu_max"),
        ("frontend", "cpu_max"),
        ("payment.v2", "cpu_max"),
        ("cart", "latency_p99_seconds"),
        ("payment.v2", "latency_p99_seconds"),
    ]
    .into();
    assert_eq!(found, expected, "ads and paymentXv2 are not asked about");

    let grid: Vec<i64> = (0..POINTS).map(|i| first + i * STEP).collect();
    let series = |service: &str, name: &str| {
        let series = fetched
            .series
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {name} for {service}"));
        assert_eq!(series.times, grid, "{name} of {service}: the sample times");
        series
    };
    let expect = |value: &dyn Fn(i64) -> f64| (0..POINTS).map(value).collect::<Vec<f64>>();

    for name in ["cpu_usage", "cpu_max"] {
        let cart = series("cart", name);
        assert_eq!(format!("{:?}", cart.family), "Cpu");
        assert_eq!(format!("{:?}", cart.source), "Metric");
        assert_close(&cart.values, &expect(&cart_cpu), name);
        assert_close(&series("payment.v2", name).values, &expect(&|_| 0.5), name);
        assert_close(
            &series("frontend", name).values,
            &expect(&frontend_cpu),
            name,
        );
    }
    let latency = series("cart", "latency_p99_seconds");
    assert_eq!(format!("{:?}", latency.family), "Latency");
    // The mean of the two pods.
    let two_pods = |i| (cart_latency(1, i) + cart_latency(2, i)) / 2.0;
    assert_close(&latency.values, &expect(&two_pods), "cart latency");
    assert_close(
        &series("payment.v2", "latency_p99_seconds").values,
        &expect(&|_| 0.05),
        "payment latency",
    );

    // The step is where the data put it: the first sample stamped at or after the incident.
    let cpu = &series("cart", "cpu_usage").values;
    let at = (POINTS - STEP_POINTS) as usize;
    let (before, after) = (mean(&cpu[..at]), mean(&cpu[at..]));
    assert!(
        after > 4.0 * before,
        "cart's CPU step: {before} before, {after} after"
    );
    assert_eq!(series("cart", "cpu_usage").times[at], step_at);
}
