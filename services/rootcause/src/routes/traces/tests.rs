//! Contract of `POST /api/v1/traces`: the real router on a temporary SQLite store, starting from
//! the bundled Online Boutique topology (version 1).

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

/// The routes over a fresh SQLite store, with request helpers of this file's own.
struct TestApp(crate::routes::tests::TestApp);

async fn app() -> TestApp {
    TestApp(crate::routes::tests::app().await)
}

impl TestApp {
    /// (status, ETag, JSON body)
    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, Option<String>, Value) {
        let answer = self.0.send_body(method, uri, headers, body.into()).await;
        let etag = answer
            .headers
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = answer.json();
        let status = answer.status;
        (status, etag, body)
    }

    /// `POST uri` with a body of `content_type`, sent as it is.
    async fn post_as(
        &self,
        uri: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, Option<String>, Value) {
        self.send(Method::POST, uri, &[("content-type", content_type)], body)
            .await
    }

    async fn post_traces(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .post_as(uri, "application/json", body.to_string())
            .await;
        (status, body)
    }

    async fn get(&self, uri: &str) -> Value {
        self.send(Method::GET, uri, &[], String::new()).await.2
    }
}

fn resource(service: &str, spans: Vec<Value>) -> Value {
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    })
}

fn span(trace: u32, id: u64, parent: Option<u64>, kind: u8) -> Value {
    json!({
        "traceId": format!("{trace:032x}"), "spanId": format!("{id:016x}"),
        "parentSpanId": parent.map(|p| format!("{p:016x}")).unwrap_or_default(),
        "kind": kind, "name": "call",
        "startTimeUnixNano": "1790000000000000000", "endTimeUnixNano": "1790000000012000000",
    })
}

/// One trace `caller` (client span) → `callee` (server span).
fn call(trace: u32, caller: &str, callee: &str) -> Value {
    json!({"resourceSpans": [
        resource(caller, vec![span(trace, 1, None, 3)]),
        resource(callee, vec![span(trace, 2, Some(1), 2)]),
    ]})
}

/// One failed call `caller` → `callee`: the callee's span has status `ERROR`.
fn failed_call(trace: u32, caller: &str, callee: &str) -> Value {
    let mut body = call(trace, caller, callee);
    body["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["status"] = json!({"code": 2});
    body
}

/// Several requests' spans as one request.
fn batch(requests: &[Value]) -> Value {
    let spans: Vec<Value> = requests
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().unwrap().clone())
        .collect();
    json!({ "resourceSpans": spans })
}

fn edge(document: &Value, caller: &str, callee: &str) -> Value {
    document["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["caller"] == caller && d["callee"] == callee)
        .unwrap_or_else(|| panic!("no edge {caller} -> {callee}"))
        .clone()
}

fn has_edge(document: &Value, caller: &str, callee: &str) -> bool {
    document["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["caller"] == caller && d["callee"] == callee)
}

#[tokio::test]
async fn a_new_edge_is_stored_once_as_a_version() {
    let app = app().await;
    let (status, learned) = app
        .post_traces(
            "/api/v1/traces?note=from+the+collector",
            &call(1, "checkoutservice", "fraud-check"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{learned}");
    assert_eq!(learned["changed"], true);
    assert_eq!(learned["version"], 2);
    assert_eq!(learned["spans"], 2);
    assert_eq!(learned["calls"], 1);
    assert_eq!(learned["orphans"], 0);
    assert_eq!(learned["services_added"], json!(["fraud-check"]));
    assert_eq!(
        learned["dependencies_added"],
        json!([{"caller": "checkoutservice", "callee": "fraud-check"}])
    );
    assert_eq!(learned["dependencies_seen"], 1);
    assert!(learned.get("document").is_none());

    let topology = app.get("/api/v1/topology").await;
    let edge = topology["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["callee"] == "fraud-check")
        .expect("the learned edge is served");
    assert_eq!(edge["source"], "traces");
    assert_eq!(edge["error_rate"], 0.0);
    let versions = app.get("/api/v1/topology/versions").await;
    assert_eq!(versions["items"][0]["source"], "traces");
    assert_eq!(versions["items"][0]["note"], "from the collector");

    // The same calls again, and calls on edges the topology has (through an alias: `redis` is
    // `redis-cart`'s), refresh attributes at most: no version.
    let (_, again) = app
        .post_traces("/api/v1/traces", &call(2, "checkoutservice", "fraud-check"))
        .await;
    assert_eq!(again["changed"], false);
    assert_eq!(again["version"], 2);
    assert_eq!(again["services_added"], json!([]));
    assert_eq!(again["dependencies_seen"], 1);
    let (_, known) = app
        .post_traces("/api/v1/traces", &call(3, "cartservice", "redis"))
        .await;
    assert_eq!(known["changed"], false, "{known}");
    assert_eq!(known["calls"], 1);
    let versions = app.get("/api/v1/topology/versions").await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_that_adds_an_edge_keeps_declared_edges_static_and_refreshes_their_observations() {
    let app = app().await;
    let before = edge(
        &app.get("/api/v1/topology").await,
        "cartservice",
        "redis-cart",
    );
    assert!(before.get("source").is_none(), "declared: {before}");
    assert!(before.get("error_rate").is_none(), "{before}");

    // A new edge, so a version is stored, and a call on a declared one (through an alias).
    let (status, learned) = app
        .post_traces(
            "/api/v1/traces",
            &batch(&[
                call(1, "checkoutservice", "fraud-check"),
                failed_call(2, "cartservice", "redis"),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{learned}");
    assert_eq!(learned["changed"], true);
    assert_eq!(learned["dependencies_seen"], 2);
    assert_eq!(
        learned["dependencies_added"],
        json!([{"caller": "checkoutservice", "callee": "fraud-check"}])
    );

    let topology = app.get("/api/v1/topology").await;
    let declared = edge(&topology, "cartservice", "redis-cart");
    assert!(
        declared.get("source").is_none(),
        "a declared edge stays static: {declared}"
    );
    assert_eq!(declared["protocol"], "redis");
    assert_eq!(declared["error_rate"], 1.0, "refreshed: {declared}");
    let latency = declared["latency_ms"].as_f64().unwrap();
    assert!((11.0..=13.0).contains(&latency), "refreshed: {declared}");
    assert!(declared["first_seen"].is_string() && declared["last_seen"].is_string());
    assert_eq!(
        edge(&topology, "checkoutservice", "fraud-check")["source"],
        "traces"
    );

    // Fresh figures for an edge the topology has, and nothing new: no version.
    let (_, refresh) = app
        .post_traces("/api/v1/traces", &call(3, "cartservice", "redis-cart"))
        .await;
    assert_eq!(refresh["changed"], false, "{refresh}");
    let stored = edge(
        &app.get("/api/v1/topology").await,
        "cartservice",
        "redis-cart",
    );
    assert_eq!(
        stored, declared,
        "refreshed attributes alone are not stored"
    );
    let versions = app.get("/api/v1/topology/versions").await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn calls_under_a_name_and_its_alias_are_summed() {
    let app = app().await;
    // `redis` is `redis-cart`'s alias: three calls on one edge, one of them failed.
    let (status, learned) = app
        .post_traces(
            "/api/v1/traces",
            &batch(&[
                call(1, "frontend", "fraud-check"),
                call(2, "cartservice", "redis-cart"),
                failed_call(3, "cartservice", "redis"),
                call(4, "cartservice", "redis"),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{learned}");
    assert_eq!(learned["changed"], true);
    assert_eq!(learned["dependencies_seen"], 2);
    let redis = edge(
        &app.get("/api/v1/topology").await,
        "cartservice",
        "redis-cart",
    );
    let error_rate = redis["error_rate"].as_f64().unwrap();
    assert!(
        (error_rate - 1.0 / 3.0).abs() < 1e-9,
        "the calls of both names count: {redis}"
    );
}

#[tokio::test]
async fn a_dry_run_answers_the_document_and_stores_nothing() {
    let app = app().await;
    let (status, learned) = app
        .post_traces(
            "/api/v1/traces?dry_run=true",
            &call(1, "frontend", "fraud-check"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(learned["changed"], false);
    assert_eq!(learned["version"], 1);
    assert_eq!(learned["services_added"], json!(["fraud-check"]));
    assert!(has_edge(&learned["document"], "frontend", "fraud-check"));
    assert!(
        has_edge(&learned["document"], "cartservice", "redis-cart"),
        "the current topology is the base"
    );
    assert!(!has_edge(
        &app.get("/api/v1/topology").await,
        "frontend",
        "fraud-check"
    ));
}

#[tokio::test]
async fn concurrent_batches_keep_each_others_edges() {
    let app = app().await;
    let post = |trace, callee| {
        let (app, body) = (&app, call(trace, "frontend", callee));
        async move { app.post_traces("/api/v1/traces", &body).await }
    };
    // Each batch is merged into the version the previous one stored, never into a stale copy.
    let answers = tokio::join!(post(1, "a"), post(2, "b"), post(3, "c"), post(4, "d"));
    for (status, learned) in [answers.0, answers.1, answers.2, answers.3] {
        assert_eq!(status, StatusCode::OK, "{learned}");
        assert_eq!(learned["changed"], true);
    }
    let topology = app.get("/api/v1/topology").await;
    for callee in ["a", "b", "c", "d"] {
        assert!(has_edge(&topology, "frontend", callee), "lost {callee}");
    }
    let versions = app.get("/api/v1/topology/versions").await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn if_match_makes_learning_conditional() {
    let app = app().await;
    let body = call(1, "frontend", "fraud-check").to_string();
    let post = |if_match: &'static str| {
        let body = body.clone();
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/traces",
                &[("content-type", "application/json"), ("if-match", if_match)],
                body,
            )
            .await
        }
    };
    let (status, _, stale) = post("\"7\"").await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale["code"], "version_mismatch");
    let (status, etag, learned) = post("\"1\"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(learned["version"], 2);
    assert_eq!(etag.as_deref(), Some("\"2\""));
}

#[tokio::test]
async fn only_otlp_json_plain_or_gzipped_is_accepted() {
    let app = app().await;
    let body = call(1, "frontend", "fraud-check").to_string();
    for headers in [
        vec![("content-type", "application/x-protobuf")],
        vec![],
        vec![
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
    ] {
        let (status, _, error) = app
            .send(Method::POST, "/api/v1/traces", &headers, body.clone())
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{headers:?}");
        assert_eq!(error["code"], "unsupported_media_type");
        // No content type at all is what a cross-site form could send: the guard refuses it
        // before the handler, saying what to send instead.
        let expected = if headers.is_empty() {
            "application/x-protobuf"
        } else {
            "OTLP/JSON"
        };
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{error}"
        );
    }
}

#[tokio::test]
async fn gzipped_bodies_are_inflated_and_bad_gzip_is_a_clear_400() {
    use std::io::Write;
    let app = app().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(call(1, "frontend", "fraud-check").to_string().as_bytes())
        .unwrap();
    let gzipped = encoder.finish().unwrap();
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let (status, _, learned) = app
        .send(Method::POST, "/api/v1/traces", &headers, gzipped)
        .await;
    assert_eq!(status, StatusCode::OK, "{learned}");
    assert_eq!(learned["changed"], true);
    assert_eq!(learned["services_added"], json!(["fraud-check"]));

    let (status, _, error) = app
        .send(Method::POST, "/api/v1/traces", &headers, "not gzip")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "malformed_gzip");
}

#[tokio::test]
async fn malformed_traces_are_refused_with_their_path() {
    let app = app().await;
    let mut bad_id = call(1, "frontend", "fraud-check");
    bad_id["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["spanId"] = json!("zz");
    let (status, error) = app.post_traces("/api/v1/traces", &bad_id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "invalid_body");
    assert_eq!(
        error["problems"][0]["path"],
        "resourceSpans[1].scopeSpans[0].spans[0].spanId"
    );

    let (status, _, error) = app
        .post_as(
            "/api/v1/traces",
            "application/json",
            "{\"resourceSpans\": [".to_owned(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "malformed_json");

    let (status, error) = app
        .post_traces("/api/v1/traces", &call(1, "frontend", "bad\tname"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "invalid_traces");
    assert_eq!(
        error["problems"][0]["path"],
        "resourceSpans[1].resource.attributes[0].value.stringValue"
    );

    let versions = app.get("/api/v1/topology/versions").await;
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_traces_endpoint() {
    let app = app().await;
    let spec = app.get("/api/v1/openapi.json").await;
    let post = &spec["paths"]["/api/v1/traces"]["post"];
    assert!(post["requestBody"]["content"]["application/json"].is_object());
    for status in ["200", "400", "412", "413", "415", "422"] {
        assert!(post["responses"][status].is_object(), "missing {status}");
    }
    assert!(spec["components"]["schemas"]["TracesLearned"].is_object());
}
