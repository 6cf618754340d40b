use std::net::TcpListener;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;

use std::collections::BTreeMap;

use rootcause_models::case::{Family, Source};

use super::parse::*;
use super::template::*;
use super::*;

fn shared(name: &str) -> QueryName {
    QueryName {
        name: name.to_owned(),
        service: None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn config(url: &str, queries: &[(&str, &str)]) -> PrometheusConfig {
    PrometheusConfig {
        url: Some(url.to_owned()),
        queries: queries
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
        ..PrometheusConfig::default()
    }
}

#[test]
fn per_service_templates_escape_for_a_promql_string() {
    let query = expand(
        r#"rate(x{service="{{service}}"}[1m])"#,
        Some(r#"we"ird\name"#),
        &strings(&[r#"we"ird\name"#]),
    );
    assert_eq!(query, r#"rate(x{service="we\"ird\\name"}[1m])"#);
    assert_eq!(promql_string_escape("a'b\nc\u{1}"), r"a'b\nc\x01");
}

#[test]
fn shared_templates_get_a_regex_alternation_escaped_twice() {
    let query = expand(
        r#"avg by (service) (x{service=~"{{services}}"})"#,
        None,
        &strings(&["cart", "pay.v2", "a|b"]),
    );
    // Regex `cart|pay\.v2|a\|b`, written inside a PromQL string.
    assert_eq!(
        query,
        r#"avg by (service) (x{service=~"cart|pay\\.v2|a\\|b"})"#
    );
    assert_eq!(
        regex_escape(r"a.b*c(d)[e]{f}^$+?\"),
        r"a\.b\*c\(d\)\[e\]\{f\}\^\$\+\?\\"
    );
}

#[test]
fn templates_become_one_job_or_one_per_service() {
    let queries: BTreeMap<String, String> = [
        ("cpu", r#"x{service=~"{{services}}"}"#),
        ("lat", r#"y{svc="{{service}}", also=~"{{services}}"}"#),
        ("up", "up"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.to_owned()))
    .collect();
    let jobs = jobs(&queries, &strings(&["a", "b"]));
    let described: Vec<(String, Option<String>, String)> = jobs
        .into_iter()
        .map(|j| (j.name.name, j.name.service, j.query))
        .collect();
    assert_eq!(
        described,
        vec![
            ("cpu".into(), None, r#"x{service=~"a|b"}"#.into()),
            (
                "lat".into(),
                Some("a".into()),
                r#"y{svc="a", also=~"a"}"#.into()
            ),
            (
                "lat".into(),
                Some("b".into()),
                r#"y{svc="b", also=~"b"}"#.into()
            ),
            ("up".into(), None, "up".into()),
        ]
    );
}

const MATRIX: &str = r#"{
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {"metric": {"service": "cart", "pod": "cart-1"},
             "values": [[1700000000, "0.5"], [1700000060.0, "NaN"], [1700000120, "+Inf"]]},
            {"metric": {"service": "cart", "pod": "cart-2"},
             "values": [[1700000000, "1.5"], [1700000060, "2"], [1700000120, "-Inf"]]},
            {"metric": {"service": "payment"},
             "values": [[1700000060, "1e+03"]]},
            {"metric": {"service": "ads"}, "values": [[1700000000, "9"]]},
            {"metric": {"job": "no-service-label"}, "values": [[1700000000, "9"]]}
        ]
    },
    "warnings": ["PromQL info: ignored"]
}"#;

#[test]
fn a_matrix_answer_is_read_with_nan_and_infinities() {
    let series = parse_response(&shared("cpu"), 200, MATRIX).unwrap();
    assert_eq!(series.len(), 5);
    assert_eq!(series[0].labels["pod"], "cart-1");
    let times: Vec<i64> = series[0].samples.iter().map(|s| s.0).collect();
    assert_eq!(times, [1_700_000_000, 1_700_000_060, 1_700_000_120]);
    assert_eq!(series[0].samples[0].1, 0.5);
    assert!(series[0].samples[1].1.is_nan());
    assert_eq!(series[0].samples[2].1, f64::INFINITY);
    assert_eq!(series[1].samples[2].1, f64::NEG_INFINITY);
    assert_eq!(series[2].samples[0].1, 1000.0);
}

#[test]
fn shared_answers_are_attributed_by_label_and_averaged() {
    let mut merger = Merger::default();
    let job = Job {
        name: shared("cpu_usage"),
        query: String::new(),
    };
    let requested: BTreeSet<String> = strings(&["cart", "payment"]).into_iter().collect();
    let raw = parse_response(&job.name, 200, MATRIX).unwrap();
    merger.add(&job, raw, "service", &requested);
    let series = merger.finish();
    // `ads` was not asked for; the unlabelled series belongs to nobody.
    let services: Vec<&str> = series.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["cart", "payment"]);
    let cart = &series[0];
    assert_eq!(cart.name, "cpu_usage");
    assert_eq!(cart.family, Family::Cpu);
    assert_eq!(cart.source, Source::Metric);
    assert_eq!(cart.times, [1_700_000_000, 1_700_000_060, 1_700_000_120]);
    // Mean of 0.5 and 1.5; NaN is ignored next to 2; +Inf and -Inf make NaN.
    assert_eq!(cart.values[0], 1.0);
    assert_eq!(cart.values[1], 2.0);
    assert!(cart.values[2].is_nan());
    assert_eq!(series[1].times, [1_700_000_060]);
    assert_eq!(series[1].values, [1000.0]);
}

#[test]
fn per_service_answers_belong_to_their_service_whatever_the_labels() {
    let mut merger = Merger::default();
    let job = Job {
        name: QueryName {
            name: "latency_p99".into(),
            service: Some("checkout".into()),
        },
        query: String::new(),
    };
    let raw = parse_response(&job.name, 200, MATRIX).unwrap();
    merger.add(&job, raw, "service", &BTreeSet::new());
    let series = merger.finish();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].service, "checkout");
    assert_eq!(series[0].family, Family::Latency);
    // (0.5 + 1.5 + 9 + 9) / 4 at the first time (payment has no sample there).
    assert_eq!(series[0].values[0], 5.0);
}

#[test]
fn times_come_out_sorted_and_distinct() {
    let mut merger = Merger::default();
    let job = Job {
        name: shared("m"),
        query: String::new(),
    };
    let requested: BTreeSet<String> = strings(&["a"]).into_iter().collect();
    let labels: BTreeMap<String, String> = [("service".to_owned(), "a".to_owned())].into();
    merger.add(
        &job,
        vec![
            RawSeries {
                labels: labels.clone(),
                samples: vec![(120, 1.0), (180, 1.0)],
            },
            RawSeries {
                labels,
                samples: vec![(60, f64::NAN), (120, 3.0)],
            },
        ],
        "service",
        &requested,
    );
    let series = merger.finish();
    assert_eq!(series[0].times, [60, 120, 180]);
    assert!(series[0].values[0].is_nan());
    assert_eq!(series[0].values[1..], [2.0, 1.0]);
}

#[test]
fn error_answers_name_the_query_and_say_why() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"1:8: parse error: unclosed left parenthesis"}"#;
    let query = QueryName {
        name: "cpu_usage".into(),
        service: Some("cart".into()),
    };
    let error = parse_response(&query, 400, body).unwrap_err();
    assert!(
        matches!(&error, PrometheusError::Rejected { error_type, .. } if error_type == "bad_data")
    );
    assert_eq!(error.query(), Some(&query));
    assert_eq!(
        error.to_string(),
        "Prometheus query \"cpu_usage\" (service \"cart\") failed: bad_data: 1:8: parse \
         error: unclosed left parenthesis"
    );

    let proxy =
        parse_response(&shared("m"), 502, "<html>\n<b>Bad   Gateway</b></html>").unwrap_err();
    assert_eq!(
        proxy.to_string(),
        "Prometheus query \"m\": HTTP 502: <html> <b>Bad Gateway</b></html>"
    );

    let vector = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let error = parse_response(&shared("m"), 200, vector).unwrap_err();
    assert!(
        error.to_string().contains("a vector instead of a matrix"),
        "{error}"
    );

    let junk = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#;
    let error = parse_response(&shared("m"), 200, junk).unwrap_err();
    assert!(error.to_string().contains(r#"sample value "x""#), "{error}");
}

#[test]
fn validation_names_every_problem() {
    assert_eq!(PrometheusConfig::default().validate(), Ok(()));
    assert_eq!(
        config("http://127.0.0.1:9090/", &[("cpu", "up")]).validate(),
        Ok(())
    );
    let mut bad = config("ftp://x", &[("cpu", " "), ("", "up")]);
    bad.step_s = 0;
    let problems = bad.validate().unwrap_err();
    for expected in [
        "scheme \"ftp\"",
        "step_s must be at least 1",
        "prometheus.queries.cpu: the template is empty",
        "a query name is empty",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in {problems:?}"
        );
    }
    let problems = config("not a url", &[]).validate().unwrap_err();
    assert!(problems.contains("prometheus.url"), "{problems}");
    let problems = config("https://user:secret@prom", &[])
        .validate()
        .unwrap_err();
    assert!(problems.contains("https is not supported"), "{problems}");
    assert!(!problems.contains("secret"), "{problems}");
    let mut long = config("http://prom", &[]);
    long.before_s = 86_400 * 30;
    assert!(long.validate().unwrap_err().contains("at most 11000"));
}

#[test]
fn configuration_reads_from_toml_with_defaults_and_refuses_typos() {
    let parsed: PrometheusConfig = toml::from_str(
        r#"
        url = "http://prom:9090"
        step_s = 30
        [queries]
        cpu_usage = 'avg by (service) (rate(cpu{service=~"{{services}}"}[1m]))'
        "#,
    )
    .unwrap();
    assert_eq!(parsed.step_s, 30);
    assert_eq!(parsed.before_s, 1800);
    assert_eq!(parsed.service_label, "service");
    assert!(parsed.queries["cpu_usage"].contains("{{services}}"));
    let typo = toml::from_str::<PrometheusConfig>("step = 30").unwrap_err();
    assert!(typo.to_string().contains("unknown field"), "{typo}");
    let debug = format!("{:?}", config("http://u:hunter2@prom", &[]));
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn windows_align_to_the_step_and_stop_at_now() {
    let config = PrometheusConfig::default();
    assert_eq!(config.window(10_030, 100_000), (8_220, 10_620));
    assert_eq!(config.window(10_030, 10_100), (8_220, 10_080));
    assert!(PrometheusSource::new(PrometheusConfig::default()).is_none());
}

#[test]
fn endpoints_keep_a_path_prefix() {
    assert_eq!(
        query_range_endpoint("http://proxy:8080/prometheus/")
            .unwrap()
            .as_str(),
        "http://proxy:8080/prometheus/api/v1/query_range"
    );
    assert_eq!(
        query_range_endpoint("http://prom:9090").unwrap().as_str(),
        "http://prom:9090/api/v1/query_range"
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = PrometheusSource::new(config(
        &format!("http://127.0.0.1:{port}"),
        &[("cpu", "up"), ("lat", r#"x{s="{{service}}"}"#)],
    ))
    .unwrap();
    let error = source
        .fetch(&strings(&["a", "b"]), 0, 600)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PrometheusError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("onnection refused"), "{error}");
}

#[tokio::test]
async fn bad_ranges_are_refused_before_asking() {
    let source = PrometheusSource::new(config("http://127.0.0.1:9", &[("m", "up")])).unwrap();
    let services = strings(&["a"]);
    assert!(matches!(
        source.fetch(&services, 100, 0).await,
        Err(PrometheusError::InvalidRange { .. })
    ));
    assert!(matches!(
        source.fetch(&services, 0, 60 * MAX_POINTS).await,
        Err(PrometheusError::InvalidRange { .. })
    ));
    let broken = PrometheusSource::new(config("ftp://x", &[("m", "up")])).unwrap();
    assert!(matches!(
        broken.fetch(&services, 0, 60).await,
        Err(PrometheusError::InvalidUrl(_))
    ));
}

/// A stand-in Prometheus: `slow` never answers in time, `broken` is refused, anything else
/// gets one series per service the query's regex names.
async fn fake_prometheus() -> String {
    async fn query_range(Query(params): Query<HashMap<String, String>>) -> (StatusCode, String) {
        let query = &params["query"];
        assert_eq!(params["step"], "60");
        assert_eq!(params["timeout"], "500ms");
        if query.contains("slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if query.contains("broken") {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into(),
            );
        }
        let start: i64 = params["start"].parse().unwrap();
        // The regex between the quotes of `=~"..."`, un-escaped once as PromQL would.
        let services = query
            .split_once("=~\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(regex, _)| regex.replace("\\\\", "\\"))
            .unwrap_or_default();
        let result: Vec<serde_json::Value> = services
            .split('|')
            .map(|s| {
                serde_json::json!({
                    "metric": {"service": s.replace('\\', "")},
                    "values": [[start, "1"], [start + 60, "2"]],
                })
            })
            .collect();
        let body = serde_json::json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": result},
        });
        (StatusCode::OK, body.to_string())
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/api/v1/query_range", get(query_range));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn failing_and_slow_queries_do_not_lose_the_others() {
    let url = fake_prometheus().await;
    let mut config = config(
        &url,
        &[
            ("cpu_usage", r#"cpu{service=~"{{services}}"}"#),
            ("broken", r#"broken{service=~"{{services}}"}"#),
            ("slow", r#"slow{service=~"{{services}}"}"#),
            ("mem", r#"mem{service=~"{{services}}", s="{{service}}"}"#),
        ],
    );
    config.timeout_ms = 500;
    let source = PrometheusSource::new(config).unwrap();
    let started = std::time::Instant::now();
    let fetched = source
        .fetch(&strings(&["pay.v2", "cart", "cart"]), 600, 660)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let got: Vec<(&str, &str, &[f64])> = fetched
        .series
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str(), s.values.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("cart", "cpu_usage", &[1.0, 2.0][..]),
            ("cart", "mem", &[1.0, 2.0][..]),
            ("pay.v2", "cpu_usage", &[1.0, 2.0][..]),
            ("pay.v2", "mem", &[1.0, 2.0][..]),
        ]
    );
    assert_eq!(fetched.series[0].times, [600, 660]);
    let errors: Vec<String> = fetched.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "Prometheus query \"broken\" failed: bad_data: parse error",
            "Prometheus query \"slow\": no answer within 500 ms",
        ]
    );
}
