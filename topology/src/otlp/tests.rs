//! Tests of calls learned from OTLP/JSON traces: edges, failed calls and named peers from
//! spans, traces split over requests, malformed input named by its path, and JSON lines read
//! one request at a time.

use serde_json::{Value, json};

use super::*;
use crate::model::DependencySource;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn resource(service: &str, spans: Vec<Value>) -> Value {
    json!({
        "resource": {"attributes": [attribute("service.name", service),
                                    {"key": "host.cores", "value": {"intValue": "8"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}]
    })
}

fn span(id: &str, parent: &str, kind: u8, start_ms: u64, end_ms: u64) -> Value {
    json!({
        "traceId": TRACE, "spanId": id, "parentSpanId": parent, "name": "op",
        "kind": kind,
        "startTimeUnixNano": format!("{}", 1_700_000_000_000u64 + start_ms) + "000000",
        "endTimeUnixNano": format!("{}", 1_700_000_000_000u64 + end_ms) + "000000",
    })
}

fn learn(request: &Value) -> (ObservedCalls, TraceSummary) {
    let request = parse(request.to_string().as_bytes()).expect("valid OTLP/JSON");
    let mut reader = TraceReader::new();
    reader.add(&request).expect("valid names");
    let mut calls = ObservedCalls::new();
    let summary = reader.learn(&mut calls);
    (calls, summary)
}

fn edges(calls: &ObservedCalls) -> Vec<(String, String)> {
    calls
        .dependencies()
        .into_iter()
        .map(|d| (d.caller, d.callee))
        .collect()
}

fn pair(caller: &str, callee: &str) -> (String, String) {
    (caller.to_owned(), callee.to_owned())
}

/// frontend (server, client) → cart (server, client with `db.system: redis`).
fn three_services() -> Value {
    let mut redis = span("00000000000000c2", "00000000000000c1", 3, 20, 22);
    redis["attributes"] = json!([attribute("db.system", "redis")]);
    json!({"resourceSpans": [
        resource("frontend", vec![
            span("00000000000000f1", "", 2, 0, 100),
            span("00000000000000f2", "00000000000000f1", 3, 10, 60),
        ]),
        resource("cart", vec![
            span("00000000000000c1", "00000000000000f2", 2, 15, 55),
            redis,
        ]),
    ]})
}

#[test]
fn a_three_service_trace_gives_two_edges_and_a_cache() {
    let (calls, summary) = learn(&three_services());
    assert_eq!(
        summary,
        TraceSummary {
            spans: 4,
            calls: 2,
            orphans: 0,
            unnamed: 0
        }
    );
    assert_eq!(
        edges(&calls),
        [pair("cart", "redis"), pair("frontend", "cart")]
    );
    let dependencies = calls.dependencies();
    let frontend_cart = &dependencies[1];
    assert_eq!(frontend_cart.source, DependencySource::Traces);
    assert_eq!(frontend_cart.error_rate, Some(0.0));
    // The callee's server span took 40 ms; buckets are within 5 %.
    let latency = frontend_cart.latency_ms.unwrap();
    assert!((38.0..=42.0).contains(&latency), "{latency}");
    assert_eq!(
        frontend_cart.first_seen.unwrap().timestamp_millis(),
        1_700_000_000_015
    );
    let document = calls.to_document(None);
    let redis = document.services.iter().find(|s| s.name == "redis");
    assert_eq!(redis.unwrap().kind, ServiceKind::Cache);
    let cart = document.services.iter().find(|s| s.name == "cart");
    assert_eq!(cart.unwrap().kind, ServiceKind::Service);
    Topology::from_document(document).expect("a valid topology");
}

#[test]
fn an_error_status_makes_a_failed_call_by_number_or_name() {
    let mut request = three_services();
    request["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["status"] =
        json!({"code": 2, "message": "boom"});
    request["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["status"] =
        json!({"code": "STATUS_CODE_ERROR"});
    let (calls, _) = learn(&request);
    let rates: Vec<Option<f64>> = calls.dependencies().iter().map(|d| d.error_rate).collect();
    assert_eq!(rates, [Some(1.0), Some(1.0)]);

    request["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["status"] = json!({"code": 1});
    request["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["status"] = json!({});
    let (calls, _) = learn(&request);
    let rates: Vec<Option<f64>> = calls.dependencies().iter().map(|d| d.error_rate).collect();
    assert_eq!(rates, [Some(0.0), Some(0.0)], "OK and unset are not errors");
}

#[test]
fn times_may_be_strings_or_numbers_and_kinds_names() {
    let mut request = three_services();
    let child = &mut request["resourceSpans"][1]["scopeSpans"][0]["spans"][0];
    child["startTimeUnixNano"] = json!(1_700_000_000_015_000_000u64);
    child["endTimeUnixNano"] = json!(1_700_000_000_035_000_000u64);
    child["kind"] = json!("SPAN_KIND_SERVER");
    request["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["kind"] = json!("CLIENT");
    let (calls, summary) = learn(&request);
    assert_eq!(summary.calls, 2);
    let latency = calls.dependencies()[1].latency_ms.unwrap();
    assert!((19.0..=21.0).contains(&latency), "{latency}");
}

#[test]
fn orphans_still_name_their_service_and_are_counted() {
    let request = json!({"resourceSpans": [
        resource("checkout", vec![span("00000000000000a1", "00000000000000ff", 2, 0, 5)]),
        resource("email", vec![span("00000000000000b1", "", 2, 0, 5)]),
        {"resource": {"attributes": []},
         "scopeSpans": [{"spans": [span("00000000000000d1", "00000000000000b1", 2, 1, 2)]}]},
    ]});
    let (calls, summary) = learn(&request);
    assert_eq!(
        summary,
        TraceSummary {
            spans: 3,
            calls: 0,
            orphans: 1,
            unnamed: 1
        }
    );
    assert_eq!(calls.services().collect::<Vec<_>>(), ["checkout", "email"]);
    assert_eq!(calls.edge_count(), 0);
}

#[test]
fn a_trace_split_over_two_requests_is_matched_in_one_reader() {
    let request = three_services();
    let front = json!({"resourceSpans": [request["resourceSpans"][0]]});
    let back = json!({"resourceSpans": [request["resourceSpans"][1]]});
    let mut reader = TraceReader::new();
    for part in [&front, &back] {
        let part = parse(part.to_string().as_bytes()).unwrap();
        reader.add(&part).unwrap();
    }
    let mut calls = ObservedCalls::new();
    assert_eq!(reader.learn(&mut calls).calls, 2);
    assert_eq!(calls.edge_count(), 2);
}

#[test]
fn client_spans_name_their_peers_in_the_documented_order() {
    let client = |attributes: Vec<Value>| {
        let mut client = span("00000000000000e1", "", 3, 0, 1);
        client["attributes"] = json!(attributes);
        client
    };
    let cases = [
        (
            vec![
                attribute("db.system", "postgresql"),
                attribute("peer.service", "orders-db"),
            ],
            "orders-db",
            ServiceKind::Database,
        ),
        (
            vec![
                attribute("db.system", "postgresql"),
                attribute("db.name", "orders"),
                attribute("server.address", "pg-1"),
            ],
            "postgresql:orders",
            ServiceKind::Database,
        ),
        (
            vec![
                attribute("messaging.system", "kafka"),
                attribute("messaging.destination.name", "orders"),
            ],
            "kafka:orders",
            ServiceKind::Queue,
        ),
        (
            vec![
                attribute("net.peer.name", "old-name"),
                attribute("server.address", "api.stripe.com"),
            ],
            "api.stripe.com",
            ServiceKind::Service,
        ),
    ];
    for (attributes, peer, kind) in cases {
        let request = json!({"resourceSpans": [resource("shop", vec![client(attributes)])]});
        let (calls, summary) = learn(&request);
        assert_eq!(summary.calls, 1, "{peer}");
        assert_eq!(edges(&calls), [pair("shop", peer)]);
        let document = calls.to_document(None);
        let learned = document.services.iter().find(|s| s.name == peer).unwrap();
        assert_eq!(learned.kind, kind, "{peer}");
    }
    // An internal span with peer attributes is not a call, nor is a client span naming none.
    let mut internal = client(vec![attribute("peer.service", "x")]);
    internal["kind"] = json!(1);
    let request = json!({"resourceSpans": [resource("shop", vec![internal])]});
    assert_eq!(learn(&request).1.calls, 0);
    let request = json!({"resourceSpans": [resource("shop", vec![client(vec![])])]});
    assert_eq!(learn(&request).1.calls, 0);
}

#[test]
fn nested_client_spans_of_one_service_are_one_call() {
    let mut outer = span("0000000000000001", "", 3, 0, 10);
    outer["attributes"] = json!([attribute("peer.service", "payments")]);
    let mut inner = span("0000000000000002", "0000000000000001", 3, 1, 9);
    inner["attributes"] = json!([attribute("server.address", "payments")]);
    let request = json!({"resourceSpans": [resource("checkout", vec![outer, inner])]});
    let (calls, summary) = learn(&request);
    assert_eq!(summary.calls, 1);
    assert_eq!(calls.call_count(), 1);
}

#[test]
fn instrumentation_library_spans_are_read_like_scope_spans() {
    let request = three_services();
    let mut old = request.clone();
    for resource in old["resourceSpans"].as_array_mut().unwrap() {
        let scopes = resource
            .as_object_mut()
            .unwrap()
            .remove("scopeSpans")
            .unwrap();
        resource["instrumentationLibrarySpans"] = scopes;
    }
    assert_eq!(edges(&learn(&old).0), edges(&learn(&request).0));
}

fn problem(text: &str) -> TraceError {
    parse(text.as_bytes()).expect_err("refused")
}

#[test]
fn malformed_input_names_its_path() {
    let mut request = three_services();
    request["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["traceId"] = json!("xyz");
    let error = problem(&request.to_string());
    assert!(!error.syntax);
    assert_eq!(
        error.problem.path,
        "resourceSpans[1].scopeSpans[0].spans[1].traceId"
    );
    assert!(error.problem.message.contains("32 hex digits"), "{error}");

    let mut request = three_services();
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] =
        json!("yesterday");
    let error = problem(&request.to_string());
    assert_eq!(
        error.problem.path,
        "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"
    );
    assert!(error.to_string().contains("\"yesterday\""), "{error}");

    let mut request = three_services();
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["kind"] = json!(9);
    let error = problem(&request.to_string());
    assert_eq!(
        error.problem.path,
        "resourceSpans[0].scopeSpans[0].spans[1].kind"
    );
    assert!(
        error.problem.message.contains("SPAN_KIND_CLIENT"),
        "{error}"
    );

    let mut request = three_services();
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["parentSpanId"] =
        json!("AAAAAAAAAAE=");
    let error = problem(&request.to_string());
    assert!(error.problem.message.contains("base64"), "{error}");

    let error = problem(
        r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "0000000000000001"}]}]}]}"#,
    );
    assert_eq!(
        error.problem.path,
        "resourceSpans[0].scopeSpans[0].spans[0]"
    );
    assert!(error.problem.message.contains("traceId"), "{error}");
    assert_eq!(
        problem(r#"{"resourceSpans": {}}"#).problem.path,
        "resourceSpans"
    );
    for (time, expected) in [
        ("-1", "negative"),
        ("1.5", "integer"),
        ("18446744073709551615", "2262"),
    ] {
        let span = format!(
            r#"{{"traceId":"{TRACE}","spanId":"0000000000000001","endTimeUnixNano":{time}}}"#
        );
        let text = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
        let error = problem(&text);
        assert!(error.problem.message.contains(expected), "{time}: {error}");
        assert!(error.problem.path.ends_with("endTimeUnixNano"), "{error}");
    }

    let error = problem("{\"resourceSpans\": [");
    assert!(error.syntax);
    assert_eq!(error.problem.line, Some(1));
    assert!(problem("{} {}").problem.message.contains("trailing"));
}

#[test]
fn names_the_topology_would_refuse_are_errors_with_their_path() {
    let request = json!({"resourceSpans": [resource(" padded ", vec![])]});
    let request = parse(request.to_string().as_bytes()).unwrap();
    let mut reader = TraceReader::new();
    let error = reader.add(&request).expect_err("refused");
    assert_eq!(
        error.problem.path,
        "resourceSpans[0].resource.attributes[0].value.stringValue"
    );
    assert!(error.problem.message.contains("padded"), "{error}");

    let mut client = span("0000000000000001", "", 3, 0, 1);
    client["attributes"] = json!([attribute("peer.service", &"x".repeat(300))]);
    let server = span("0000000000000002", "", 2, 0, 1);
    let request = json!({"resourceSpans": [resource("ok", vec![server]),
                                           resource("shop", vec![client])]});
    let request = parse(request.to_string().as_bytes()).unwrap();
    let error = reader.add(&request).expect_err("refused");
    assert_eq!(
        error.problem.path,
        "resourceSpans[1].scopeSpans[0].spans[0].attributes[0].value.stringValue"
    );
    assert_eq!(
        reader.span_count(),
        0,
        "nothing of a refused request is kept"
    );
}

#[test]
fn json_lines_are_read_one_request_at_a_time() {
    let request = three_services().to_string();
    let text = format!("{request}\n\n{request}\n");
    let requests: Vec<_> = parse_each(text.as_bytes()).collect();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(Result::is_ok));
    let pretty = serde_json::to_string_pretty(&three_services()).unwrap();
    assert_eq!(parse_each(pretty.as_bytes()).count(), 1);
    assert_eq!(parse_each(b"  \n").count(), 0);

    let text = format!("{request}\n{{\"resourceSpans\": 3}}\n{request}\n");
    let results: Vec<_> = parse_each(text.as_bytes()).collect();
    assert_eq!(results.len(), 2, "the first error ends the sequence");
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.problem.path, "resourceSpans");
    assert_eq!(error.problem.line, Some(2), "{error}");
    assert_eq!(error.problem.column, Some(19), "{error}");

    let text = format!("{request}\nnot json\n");
    let results: Vec<_> = parse_each(text.as_bytes()).collect();
    let error = results[1].as_ref().unwrap_err();
    assert!(error.syntax);
    assert_eq!(error.problem.line, Some(2), "{error}");
}
