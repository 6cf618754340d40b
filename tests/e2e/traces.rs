//! `POST /api/v1/traces` against the real binary on SQLite: a trace with a new edge stores a
//! version that serves the edge as `source: traces`, the same trace again stores nothing, and
//! a malformed body is refused with the JSON path of the problem.

use rootcause_e2e::{Server, ServerOptions, json_of};
use serde_json::{Value, json};

/// One trace: `checkoutservice` (client span) calls `fraud-check` (server span), which the
/// bundled Online Boutique topology does not have.
fn trace() -> Value {
    let resource = |service: &str, span: Value| {
        let name = json!({"key": "service.name", "value": {"stringValue": service}});
        json!({"resource": {"attributes": [name]},
               "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [span]}]})
    };
    let span = |id: &str, parent: &str, kind: u8| {
        json!({"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": id, "parentSpanId": parent,
               "name": "Check", "kind": kind,
               "startTimeUnixNano": "1790000000000000000", "endTimeUnixNano": "1790000000025000000",
               "status": {"code": 2}})
    };
    json!({"resourceSpans": [
        resource("checkoutservice", span("00f067aa0ba902b7", "", 3)),
        resource("fraud-check", span("00f067aa0ba902b8", "00f067aa0ba902b7", 2)),
    ]})
}

#[tokio::test]
async fn traces_add_new_edges_once_on_sqlite() {
    let server = Server::start(ServerOptions::default()).await;

    let learned = server.post("/api/v1/traces", &trace()).await;
    assert_eq!(learned.status(), 200);
    assert_eq!(learned.headers()["etag"], "\"2\"");
    let learned = json_of(learned).await;
    assert_eq!(learned["changed"], true, "{learned}");
    assert_eq!(learned["version"], 2);
    assert_eq!(learned["calls"], 1);
    assert_eq!(learned["services_added"], json!(["fraud-check"]));
    assert_eq!(
        learned["dependencies_added"],
        json!([{"caller": "checkoutservice", "callee": "fraud-check"}])
    );

    let topology = server.get("/api/v1/topology").await;
    assert_eq!(topology.headers()["etag"], "\"2\"");
    let topology = json_of(topology).await;
    let edge = topology["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["caller"] == "checkoutservice" && d["callee"] == "fraud-check")
        .expect("the learned edge is served");
    assert_eq!(edge["source"], "traces");
    assert_eq!(edge["error_rate"], 1.0);

    // The same trace again refreshes the edge's attributes at most: no new version.
    let again = json_of(server.post("/api/v1/traces", &trace()).await).await;
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["version"], 2);
    let versions = json_of(server.get("/api/v1/topology/versions").await).await;
    let versions = versions["items"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["source"], "traces");

    // A bad span id: 422 naming where it is; nothing stored.
    let mut malformed = trace();
    malformed["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["spanId"] = json!("not-hex");
    let refused = server.post("/api/v1/traces", &malformed).await;
    assert_eq!(refused.status(), 422);
    let error = json_of(refused).await;
    assert_eq!(
        error["problems"][0]["path"],
        "resourceSpans[1].scopeSpans[0].spans[0].spanId"
    );
    assert!(
        error["message"].as_str().unwrap().contains("spanId"),
        "{error}"
    );

    // OTLP/protobuf: 415 with a JSON error that says what is accepted.
    let protobuf = server
        .http
        .post(format!("{}/api/v1/traces", server.url))
        .header("content-type", "application/x-protobuf")
        .body(vec![0x0a, 0x00])
        .send()
        .await
        .expect("the server answers");
    assert_eq!(protobuf.status(), 415);
    let error = json_of(protobuf).await;
    assert!(
        error["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{error}"
    );

    let versions = json_of(server.get("/api/v1/topology/versions").await).await;
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        2,
        "nothing stored"
    );
}
