//! Route tests of emergency actions: the runbook catalogue, suggestions on hypotheses,
//! approval and rejection with their automation runs, similar past incidents and the audit
//! log, on the real router over a temporary SQLite store and the bundled topology
//! (online-boutique: frontend → cartservice → redis-cart, checkoutservice → cartservice, ...).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, header};
use chrono::{SecondsFormat, Utc};
use rootcause_models::actions::Catalogue;
use serde_json::{Value, json};

use crate::config::{ActionsConfig, HttpConfig, IngestConfig, RankingConfig};
use crate::routes::tests::{Answer, TestApp, app, app_full, deliver_alerts};

/// The bundled runbooks' ids, in catalogue order (the models crate's tests pin the list).
fn bundled_ids() -> Vec<String> {
    Catalogue::bundled()
        .runbooks
        .into_iter()
        .map(|runbook| runbook.id)
        .collect()
}

/// A memory leak in cartservice, showing as latency at its callers.
const LEAK: [(&str, &str); 3] = [
    ("cartservice", "HighMemoryUsage"),
    ("frontend", "HighLatency"),
    ("checkoutservice", "HighLatency"),
];

/// A valid catalogue of two runbooks.
const TWO_RUNBOOKS: &str = "\
runbooks:
  - id: drain
    title: Drain the node
    risk: low
    steps: [Cordon the node, Drain it]
  - id: page_owner
    title: Page the owning team
    risk: medium
    applies:
      signals: [latency]
    steps: [Page the owner]
";

/// A catalogue of one runbook that applies everywhere.
const ONLY_THIS: &str = "\
runbooks:
  - id: only_this
    title: The only thing to do
    risk: low
    steps: [Do it]
";

/// A catalogue whose one runbook calls `url` once approved (200 ms per attempt, 2 attempts).
fn automated(url: &str) -> String {
    format!(
        "runbooks:
  - id: hook
    title: Call the hook
    risk: low
    steps: [Call it]
    automation:
      url: {url}
      timeout_ms: 200
      retries: 1
"
    )
}

/// The routes on the bundled topology with the given actions settings.
async fn app_actions(actions: ActionsConfig) -> TestApp {
    app_full(
        HttpConfig::default(),
        IngestConfig::default(),
        RankingConfig::default(),
        actions,
    )
    .await
}

/// Actions that may call 127.0.0.1.
fn local_hooks() -> ActionsConfig {
    ActionsConfig {
        allowed_hosts: vec!["127.0.0.1".into()],
        ..ActionsConfig::default()
    }
}

/// Posts `alerts` (service, alertname) firing since `starts` (unix seconds), or resolved at
/// `ends`; returns the receipt.
async fn deliver(app: &TestApp, alerts: &[(&str, &str)], starts: i64, ends: Option<i64>) -> Value {
    let alerts: Vec<_> = alerts.iter().map(|&(s, n)| (s, n, starts)).collect();
    deliver_alerts(app, &alerts, ends).await
}

/// Fires `alerts` now and returns the one incident they make.
async fn fire_now(app: &TestApp, alerts: &[(&str, &str)]) -> i64 {
    let receipt = deliver(app, alerts, Utc::now().timestamp() - 60, None).await;
    let incidents = receipt["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{receipt}");
    incidents[0].as_i64().unwrap()
}

async fn put_yaml(app: &TestApp, uri: &str, yaml: &str) -> Answer {
    app.put_as(uri, "application/yaml", yaml).await
}

fn ids(catalogue: &Value) -> Vec<String> {
    catalogue["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The audit entries a query selects, every page of them.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let answer = app.get(&format!("/api/v1/audit?limit=1000&{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let page = answer.json();
    assert!(page["next_after"].is_null(), "more than a page: {page}");
    page["items"].as_array().unwrap().clone()
}

/// The string fields `keys` of each row, in order.
fn fields<'a>(rows: impl IntoIterator<Item = &'a Value>, keys: &[&str]) -> Vec<Vec<&'a str>> {
    rows.into_iter()
        .map(|row| keys.iter().map(|k| row[*k].as_str().unwrap()).collect())
        .collect()
}

fn kinds(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

/// Waits until `check` holds for the audit entries `query` selects; returns them.
async fn audit_until(app: &TestApp, query: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = audit(app, query).await;
        if check(&entries) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log never got there ({query}): {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A POST without a body, as a client sends one: saying it is JSON, which a cross-site form
/// cannot.
async fn post_empty(app: &TestApp, uri: &str) -> Answer {
    app.post_as(uri, "application/json", "").await
}

// ---- the catalogue ------------------------------------------------------------------------

#[tokio::test]
async fn a_catalogue_that_is_not_yaml_or_json_at_all_is_400_and_the_wrong_shape_422() {
    let app = app().await;
    for (content_type, body) in [
        ("application/json", r#"{"runbooks": [{"id"#),
        (
            "application/yaml",
            "runbooks:\n  - {id: drain, title: \"Drain",
        ),
    ] {
        let answer = app.put_as("/api/v1/runbooks", content_type, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(
            answer.json()["code"],
            "malformed_document",
            "{}",
            answer.text
        );
    }
    let shape = app
        .put_as("/api/v1/runbooks", "application/json", r#"{"runbooks": 3}"#)
        .await;
    assert_eq!(
        shape.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        shape.text
    );
    assert_eq!(shape.json()["code"], "invalid_runbooks", "{}", shape.text);
}

#[tokio::test]
async fn the_bundled_catalogue_is_served_as_version_1_in_json_and_yaml() {
    let app = app().await;
    let answer = app.get("/api/v1/runbooks").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert_eq!(ids(&body), bundled_ids());
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(body["updated_by"], "bundled");
    assert_eq!(body["digest"].as_str().unwrap().len(), 16, "{body}");
    assert!(body["updated_at"].as_str().unwrap().ends_with('Z'));
    let failover = &body["runbooks"][3];
    assert_eq!(failover["risk"], "high");
    assert_eq!(failover["applies"]["services"]["kinds"][0], "database");
    assert!(body["runbooks"][0].get("automation").is_none());

    let yaml = app.get("/api/v1/runbooks?format=yaml").await;
    assert_eq!(yaml.status, StatusCode::OK);
    assert_eq!(yaml.headers[header::CONTENT_TYPE], "application/yaml");
    let parsed = Catalogue::parse(&yaml.text).unwrap();
    assert_eq!(parsed, Catalogue::bundled());
    let json_format = app.get("/api/v1/runbooks?format=json").await;
    assert_eq!(json_format.json()["version"], 1);

    let xml = app.get("/api/v1/runbooks?format=xml").await;
    assert_eq!(xml.status, StatusCode::BAD_REQUEST);
    assert_eq!(xml.json()["code"], "invalid_parameter");

    // The bundled catalogue's storing is the first audit entry.
    let replaced = audit(&app, "kind=runbooks_replaced").await;
    assert_eq!(replaced.len(), 1, "{replaced:#?}");
    assert_eq!(replaced[0]["actor"], "bundled");
    assert_eq!(replaced[0]["detail"]["runbooks"], json!(bundled_ids()));
}

#[tokio::test]
async fn a_put_catalogue_is_stored_as_a_new_version_with_its_actor_in_the_audit_log() {
    let app = app().await;
    let answer = put_yaml(&app, "/api/v1/runbooks?actor=carol", TWO_RUNBOOKS).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert_eq!(ids(&body), ["drain", "page_owner"]);
    assert_eq!(body["version"], 2);
    assert_eq!(body["updated_by"], "carol");

    let served = app.get("/api/v1/runbooks").await.json();
    assert_eq!(ids(&served), ["drain", "page_owner"]);
    assert_eq!(served["version"], 2);
    assert_eq!(served["updated_by"], "carol");
    assert_eq!(served["runbooks"][1]["risk"], "medium");
    assert_eq!(
        served["runbooks"][1]["applies"]["signals"],
        json!(["latency"])
    );
    let yaml = app.get("/api/v1/runbooks?format=yaml").await.text;
    assert_eq!(
        Catalogue::parse(&yaml).unwrap(),
        Catalogue::parse(TWO_RUNBOOKS).unwrap()
    );

    let replaced = audit(&app, "kind=runbooks_replaced").await;
    assert_eq!(kinds(&replaced), ["runbooks_replaced"; 2]);
    assert_eq!(replaced[0]["actor"], "bundled");
    assert_eq!(replaced[1]["actor"], "carol");
    assert_eq!(
        replaced[1]["detail"]["runbooks"],
        json!(["drain", "page_owner"])
    );
    assert_eq!(replaced[1]["detail"]["digest"], served["digest"]);
    assert!(replaced[1]["incident"].is_null());

    // The same as JSON, without an actor: `api`.
    let as_json = app
        .put_json(
            "/api/v1/runbooks",
            &json!({"runbooks": [{"id": "drain", "title": "Drain", "risk": "low",
                                  "steps": ["Drain it"]}]}),
        )
        .await;
    assert_eq!(as_json.status, StatusCode::OK, "{}", as_json.text);
    assert_eq!(as_json.json()["version"], 3);
    assert_eq!(as_json.json()["updated_by"], "api");
    let bad_actor = put_yaml(&app, "/api/v1/runbooks?actor=%20", TWO_RUNBOOKS).await;
    assert_eq!(bad_actor.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_actor.problem_paths(), ["actor"]);
    assert_eq!(app.get("/api/v1/runbooks").await.json()["version"], 3);
}

#[tokio::test]
async fn an_invalid_catalogue_is_refused_with_the_path_of_the_problem_and_changes_nothing() {
    let app = app().await;
    let duplicate = "\
runbooks:
  - {id: drain, title: Drain, risk: low, steps: [Drain it]}
  - {id: drain, title: Drain again, risk: low, steps: [Drain it again]}
";
    let unknown_risk = "\
runbooks:
  - {id: drain, title: Drain, risk: extreme, steps: [Drain it]}
";
    let cases = [
        (duplicate.to_owned(), "runbooks[1].id", "duplicate"),
        (unknown_risk.to_owned(), "runbooks[0].risk", "extreme"),
        (
            automated("http://hooks.example.com/restart"),
            "runbooks[0].automation.url",
            "allowed_hosts",
        ),
    ];
    for (yaml, path, word) in &cases {
        let answer = put_yaml(&app, "/api/v1/runbooks?actor=mallory", yaml).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            answer.text
        );
        assert_eq!(answer.json()["code"], "invalid_runbooks", "{}", answer.text);
        assert_eq!(answer.problem_paths(), [*path], "{}", answer.text);
        assert!(
            answer.json()["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains(word),
            "{path}: {}",
            answer.text
        );
        let served = app.get("/api/v1/runbooks").await.json();
        assert_eq!(ids(&served), bundled_ids(), "after {path}");
        assert_eq!(served["version"], 1, "after {path}");
    }

    let plain = app
        .put_as("/api/v1/runbooks", "text/plain", TWO_RUNBOOKS)
        .await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(plain.json()["code"], "unsupported_media_type");
    let untyped = app
        .send(Method::PUT, "/api/v1/runbooks", &[], TWO_RUNBOOKS)
        .await;
    assert_eq!(untyped.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let empty = put_yaml(&app, "/api/v1/runbooks", "# nothing\n").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.problem_paths(), ["runbooks"]);

    let served = app.get("/api/v1/runbooks").await.json();
    assert_eq!(ids(&served), bundled_ids());
    assert_eq!(served["version"], 1);
    assert_eq!(served["updated_by"], "bundled");
    let replaced = audit(&app, "kind=runbooks_replaced").await;
    assert_eq!(replaced.len(), 1, "no refusal is audited as a change");
}

#[tokio::test]
async fn an_automation_url_is_accepted_only_on_an_allowed_host_over_http() {
    let app = app_actions(local_hooks()).await;
    let https = put_yaml(
        &app,
        "/api/v1/runbooks",
        &automated("https://127.0.0.1/hook"),
    )
    .await;
    assert_eq!(
        https.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        https.text
    );
    assert_eq!(https.json()["code"], "invalid_runbooks");
    assert_eq!(https.problem_paths(), ["runbooks[0].automation.url"]);
    assert!(https.text.contains("http://"), "{}", https.text);
    let other_host = put_yaml(
        &app,
        "/api/v1/runbooks",
        &automated("http://127.0.0.2:9/hook"),
    )
    .await;
    assert_eq!(other_host.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other_host.problem_paths(), ["runbooks[0].automation.url"]);
    assert_eq!(
        ids(&app.get("/api/v1/runbooks").await.json()),
        bundled_ids()
    );

    let answer = put_yaml(
        &app,
        "/api/v1/runbooks?actor=ops",
        &automated("http://127.0.0.1:9/hook"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert_eq!(ids(&body), ["hook"]);
    assert_eq!(body["version"], 2);
    let automation = &body["runbooks"][0]["automation"];
    assert_eq!(automation["url"], "http://127.0.0.1:9/hook");
    assert_eq!(automation["timeout_ms"], 200);
    assert_eq!(automation["retries"], 1);
}

// ---- suggestions --------------------------------------------------------------------------

/// Checks the suggestions of every hypothesis; returns the action ids of each.
fn check_actions(hypotheses: &Value, catalogue: &[String]) -> Vec<Vec<String>> {
    let list = hypotheses["hypotheses"].as_array().unwrap();
    assert!(!list.is_empty(), "{hypotheses}");
    list.iter()
        .map(|h| {
            let actions = h["actions"]
                .as_array()
                .unwrap_or_else(|| panic!("no actions array: {h}"));
            let mut sum = 0.0;
            let ids = actions
                .iter()
                .map(|a| {
                    let id = a["action"].as_str().unwrap();
                    assert!(catalogue.iter().any(|c| c == id), "{id} is no runbook: {a}");
                    assert!(!a["title"].as_str().unwrap().is_empty(), "{a}");
                    assert!(
                        ["low", "medium", "high"].contains(&a["risk"].as_str().unwrap()),
                        "{a}"
                    );
                    let confidence = a["confidence"].as_f64().unwrap();
                    assert!((0.0..=1.0).contains(&confidence), "{a}");
                    sum += confidence;
                    assert!(!a["reason"].as_str().unwrap().trim().is_empty(), "{a}");
                    assert_eq!(a["automated"], false, "{a}");
                    id.to_owned()
                })
                .collect::<Vec<_>>();
            assert!(sum <= 1.0 + 1e-9, "confidences sum to {sum}: {h}");
            ids
        })
        .collect()
}

#[tokio::test]
async fn hypotheses_carry_actions_and_follow_a_replaced_catalogue() {
    let app = app().await;
    let id = fire_now(&app, &LEAK).await;
    let hypotheses = app.hypotheses_covering(id, 3).await;
    let suggested = check_actions(&hypotheses, &bundled_ids());
    assert!(
        !suggested[0].is_empty(),
        "the top hypothesis has actions: {hypotheses}"
    );
    assert!(
        suggested.iter().all(|ids| ids.len() <= 3),
        "at most actions.suggestions (3) each: {suggested:?}"
    );
    let cart = hypotheses["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == "cartservice")
        .expect("cartservice is a hypothesis");
    let cart_actions = crate::testing::texts(&cart["actions"], "action");
    assert!(
        cart_actions.contains(&"restart"),
        "a memory alert suggests a restart: {cart}"
    );
    // failover is for databases, caches and queues only: never for cartservice.
    assert!(!cart_actions.contains(&"failover"), "{cart}");

    let answer = put_yaml(&app, "/api/v1/runbooks?actor=ops", ONLY_THIS).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    // A ranking made before the replacement may still be served for a moment.
    let all: Vec<String> = bundled_ids()
        .into_iter()
        .chain(["only_this".to_owned()])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = app
            .get(&format!("/api/v1/incidents/{id}/hypotheses"))
            .await
            .json();
        let suggested = check_actions(&now, &all);
        if suggested.iter().all(|ids| ids == &["only_this"]) {
            assert!(now["revision"].as_u64() > hypotheses["revision"].as_u64());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hypotheses were not re-ranked with the new catalogue: {suggested:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- decisions and the audit log ----------------------------------------------------------

#[tokio::test]
async fn actions_are_approved_or_rejected_once_and_audited() {
    let app = app().await;
    let id = fire_now(&app, &LEAK).await;
    app.hypotheses_covering(id, 3).await;
    let base = format!("/api/v1/incidents/{id}/actions");

    let approved = app
        .post_json(
            &format!("{base}/restart/approve"),
            &json!({"actor": "alice", "comment": "heap grows"}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.text);
    assert_eq!(approved.headers[header::LOCATION], base.as_str());
    let body = approved.json();
    assert_eq!(body["decision"]["decision"], "approved");
    assert_eq!(body["decision"]["action"], "restart");
    assert_eq!(body["decision"]["incident"], id);
    assert_eq!(body["decision"]["actor"], "alice");
    assert_eq!(body["decision"]["comment"], "heap grows");
    assert!(body["decision"]["service"].is_string(), "{body}");
    assert!(body["run"].is_null(), "{body}");

    let again = app
        .post_json(&format!("{base}/restart/approve"), &json!({"actor": "eve"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.json()["code"], "already_decided");
    assert!(
        again.text.contains("alice"),
        "names who approved: {}",
        again.text
    );
    let reject_approved = app
        .post_json(&format!("{base}/restart/reject"), &json!({"actor": "eve"}))
        .await;
    assert_eq!(reject_approved.status, StatusCode::CONFLICT);
    assert_eq!(reject_approved.json()["code"], "already_decided");

    let rejected = app
        .post_json(
            &format!("{base}/scale_out/reject"),
            &json!({"actor": "bob", "comment": "not a load problem", "service": "cartservice"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::CREATED, "{}", rejected.text);
    assert_eq!(rejected.json()["decision"]["decision"], "rejected");
    assert_eq!(rejected.json()["decision"]["service"], "cartservice");
    assert!(rejected.json()["run"].is_null());

    let bare = post_empty(&app, &format!("{base}/rollback/approve")).await;
    assert_eq!(bare.status, StatusCode::CREATED, "{}", bare.text);
    assert_eq!(bare.json()["decision"]["actor"], "api");
    assert_eq!(bare.json()["decision"]["comment"], "");

    let unknown_field = app
        .post_json(
            &format!("{base}/circuit_breaker/approve"),
            &json!({"actor": "alice", "urgency": "high"}),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_field.json()["code"], "invalid_body");
    assert!(
        unknown_field.text.contains("urgency"),
        "{}",
        unknown_field.text
    );
    let not_json = app
        .post_as(
            &format!("{base}/circuit_breaker/approve"),
            "text/plain",
            "yes please",
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let empty_actor = app
        .post_json(
            &format!("{base}/circuit_breaker/approve"),
            &json!({"actor": ""}),
        )
        .await;
    assert_eq!(empty_actor.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty_actor.problem_paths(), ["actor"]);
    let unknown_service = app
        .post_json(
            &format!("{base}/circuit_breaker/approve"),
            &json!({"service": "no-such-service"}),
        )
        .await;
    assert_eq!(unknown_service.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_service.problem_paths(), ["service"]);

    let unknown_action = post_empty(&app, &format!("{base}/reboot_everything/approve")).await;
    assert_eq!(unknown_action.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_action.json()["code"], "unknown_action");
    assert!(
        unknown_action.text.contains("restart"),
        "lists the runbooks"
    );
    let unknown_reject = post_empty(&app, &format!("{base}/reboot_everything/reject")).await;
    assert_eq!(unknown_reject.json()["code"], "unknown_action");
    for uri in [
        "/api/v1/incidents/999/actions/restart/approve",
        "/api/v1/incidents/999/actions/restart/reject",
        "/api/v1/incidents/-3/actions/restart/approve",
    ] {
        let answer = post_empty(&app, uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json()["code"], "not_found", "{uri}");
    }
    assert_eq!(
        app.get("/api/v1/incidents/999/actions").await.status,
        StatusCode::NOT_FOUND
    );

    let listed = app.get(&base).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let listed = listed.json();
    assert_eq!(listed["incident"], id);
    let decisions = fields(
        listed["decisions"].as_array().unwrap(),
        &["action", "decision", "actor"],
    );
    assert_eq!(
        decisions,
        [
            ["restart", "approved", "alice"],
            ["scale_out", "rejected", "bob"],
            ["rollback", "approved", "api"],
        ]
    );
    assert_eq!(listed["runs"], json!([]));

    // The incident's audit: the suggestions shown (by the notifier, in the background), then
    // every decision with its actor; refusals leave no trace.
    let entries = audit_until(&app, &format!("incident={id}"), |e| {
        kinds(e).contains(&"suggested")
    })
    .await;
    assert!(entries.iter().all(|e| e["incident"] == id), "{entries:#?}");
    let suggested = entries.iter().find(|e| e["kind"] == "suggested").unwrap();
    assert_eq!(suggested["actor"], "rootcause");
    assert!(
        !suggested["detail"]["hypotheses"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{suggested}"
    );
    let decided = fields(
        entries.iter().filter(|e| e["kind"] != "suggested"),
        &["kind", "action", "actor"],
    );
    assert_eq!(
        decided,
        [
            ["action_approved", "restart", "alice"],
            ["action_rejected", "scale_out", "bob"],
            ["action_approved", "rollback", "api"],
        ]
    );
    let rejection = entries
        .iter()
        .find(|e| e["kind"] == "action_rejected")
        .unwrap();
    assert_eq!(rejection["detail"]["comment"], "not a load problem");
    assert_eq!(rejection["service"], "cartservice");
    // The audit says whether an approved action was among the suggestions: a rollback needs a
    // recent change, and none was posted.
    let approval_of = |action: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == "action_approved" && e["action"] == action)
            .unwrap()
            .clone()
    };
    assert_eq!(approval_of("restart")["detail"]["suggested"], true);
    assert_eq!(approval_of("restart")["detail"]["comment"], "heap grows");
    assert_eq!(approval_of("rollback")["detail"]["suggested"], false);
    assert!(approval_of("rollback")["detail"]["confidence"].is_null());
    let approvals = audit(&app, "kind=action_approved").await;
    assert_eq!(approvals.len(), 2);
    assert!(audit(&app, "incident=999").await.is_empty());
}

#[tokio::test]
async fn the_audit_log_pages_every_entry_exactly_once() {
    let app = app().await;
    let id = fire_now(&app, &LEAK).await;
    app.hypotheses_covering(id, 3).await;
    for (action, verdict) in [
        ("restart", "approve"),
        ("scale_out", "reject"),
        ("rollback", "reject"),
        ("free_disk", "reject"),
    ] {
        let answer = post_empty(
            &app,
            &format!("/api/v1/incidents/{id}/actions/{action}/{verdict}"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    audit_until(&app, "kind=suggested", |e| !e.is_empty()).await;

    for bad in ["limit=0", "limit=1001", "limit=-1", "after=x"] {
        let answer = app.get(&format!("/api/v1/audit?{bad}")).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            answer.text
        );
    }
    assert_eq!(
        app.get("/api/v1/audit?limit=0").await.json()["code"],
        "invalid_parameter"
    );

    let before: Vec<i64> = audit(&app, "")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    // runbooks_replaced (bundled), suggested, and four decisions at least.
    assert!(before.len() >= 6, "{before:?}");
    let mut paged = Vec::new();
    let mut after: Option<i64> = None;
    let mut pages = 0;
    loop {
        let uri = match after {
            Some(after) => format!("/api/v1/audit?limit=2&after={after}"),
            None => "/api/v1/audit?limit=2".to_owned(),
        };
        let page = app.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        pages += 1;
        match page["next_after"].as_i64() {
            Some(next) => {
                assert_eq!(Some(next), items.last().and_then(|e| e["id"].as_i64()));
                after = Some(next);
            }
            None => {
                assert!(items.len() < 2, "a full page names where to go on: {page}");
                break;
            }
        }
        assert!(pages < 100, "paging does not end: {paged:?}");
    }
    let after_paging: Vec<i64> = audit(&app, "")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(
        paged.windows(2).all(|w| w[0] < w[1]),
        "ascending, no repeats: {paged:?}"
    );
    // Entries may only have been added meanwhile (notifications), never lost or repeated.
    assert!(paged.starts_with(&before), "{paged:?} vs {before:?}");
    assert!(
        after_paging.starts_with(&paged),
        "{after_paging:?} vs {paged:?}"
    );
    assert!(pages >= 3, "{pages} pages for {} entries", paged.len());
}

// ---- automation ---------------------------------------------------------------------------

#[tokio::test]
async fn an_approved_automation_whose_target_refuses_is_retried_then_failed() {
    let app = app_actions(local_hooks()).await;
    let answer = put_yaml(
        &app,
        "/api/v1/runbooks",
        &automated("http://127.0.0.1:9/hook"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = fire_now(&app, &LEAK).await;
    let hypotheses = app.hypotheses_covering(id, 3).await;
    let top = &hypotheses["hypotheses"][0]["actions"][0];
    assert_eq!(top["action"], "hook", "{hypotheses}");
    assert_eq!(top["automated"], true, "{hypotheses}");

    let approved = app
        .post_json(
            &format!("/api/v1/incidents/{id}/actions/hook/approve"),
            &json!({"actor": "alice", "comment": "go"}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::ACCEPTED, "{}", approved.text);
    let body = approved.json();
    assert_eq!(body["decision"]["decision"], "approved");
    let run = &body["run"];
    assert_eq!(
        run["target"], "http://127.0.0.1:9",
        "the path is not shown: {body}"
    );
    assert!(run.get("url").is_none(), "{body}");
    assert_eq!(run["action"], "hook");
    assert_eq!(run["decision"], body["decision"]["id"]);
    assert_eq!(run["max_attempts"], 2);
    assert_eq!(run["timeout_ms"], 200);
    assert!(
        run.get("payload").is_none(),
        "the payload is not shown: {run}"
    );
    let run_id = run["id"].as_i64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = loop {
        let listed = app
            .get(&format!("/api/v1/incidents/{id}/actions"))
            .await
            .json();
        let run = listed["runs"][0].clone();
        if run["status"] == "failed" || run["status"] == "succeeded" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not end: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["status"], "failed", "{finished}");
    assert_eq!(finished["id"], run_id);
    assert_eq!(finished["attempts"], 2, "{finished}");
    assert!(finished["response_status"].is_null(), "{finished}");
    assert!(
        !finished["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{finished}"
    );

    let entries = audit_until(&app, &format!("incident={id}"), |e| {
        kinds(e).contains(&"automation_failed")
    })
    .await;
    let automation: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("automation_"))
        .collect();
    assert_eq!(
        automation
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["automation_retry", "automation_failed"]
    );
    for entry in &automation {
        assert_eq!(entry["incident"], id);
        assert_eq!(entry["action"], "hook");
        assert_eq!(entry["detail"]["run"], run_id);
        assert_eq!(entry["detail"]["target"], "http://127.0.0.1:9");
        assert!(entry["detail"].get("url").is_none(), "{entry}");
    }
    assert_eq!(automation[0]["detail"]["attempt"], 1);
    assert_eq!(automation[1]["detail"]["attempt"], 2);
    let approval = entries
        .iter()
        .find(|e| e["kind"] == "action_approved")
        .unwrap();
    assert_eq!(approval["actor"], "alice");
    assert_eq!(approval["detail"]["automation"], "http://127.0.0.1:9");
    assert!(approval["id"].as_i64() < automation[0]["id"].as_i64());

    // Approved once: a second approval starts no second run.
    let again = post_empty(
        &app,
        &format!("/api/v1/incidents/{id}/actions/hook/approve"),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let listed = app
        .get(&format!("/api/v1/incidents/{id}/actions"))
        .await
        .json();
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1);
}

/// A webhook target on 127.0.0.1: `/ok` answers 200, `/refused` 400; every request's path,
/// headers and JSON body are kept.
async fn hook_target() -> (String, Arc<Mutex<Vec<(String, HeaderMap, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, HeaderMap, Value)>>> = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = uri.path().to_owned();
                kept.lock().unwrap().push((path.clone(), headers, body));
                if path == "/ok" {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Waits until the run of `action` on incident `id` has ended; returns it.
async fn finished_run(app: &TestApp, id: i64, action: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = app
            .get(&format!("/api/v1/incidents/{id}/actions"))
            .await
            .json();
        let run = listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no run of {action}: {listed}"));
        if run["status"] == "failed" || run["status"] == "succeeded" {
            return run;
        }
        assert!(Instant::now() < deadline, "the run did not end: {listed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_automation_is_called_only_after_approval_and_a_4xx_is_not_retried() {
    let (url, seen) = hook_target().await;
    let app = app_actions(local_hooks()).await;
    let catalogue = format!(
        "runbooks:
  - id: hook_ok
    title: Call the hook
    risk: low
    steps: [Call it]
    automation: {{url: \"{url}/ok\", timeout_ms: 2000, retries: 2, headers: {{X-Token: secret}}}}
  - id: hook_refused
    title: Call the refusing hook
    risk: low
    steps: [Call it]
    automation: {{url: \"{url}/refused\", timeout_ms: 2000, retries: 2}}
"
    );
    let answer = put_yaml(&app, "/api/v1/runbooks", &catalogue).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = fire_now(&app, &LEAK).await;
    app.hypotheses_covering(id, 3).await;
    let rejected = post_empty(
        &app,
        &format!("/api/v1/incidents/{id}/actions/hook_ok/reject"),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::CREATED, "{}", rejected.text);
    assert!(rejected.json()["run"].is_null());
    // Suggested, ranked and rejected: nothing has called the hook.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "called before any approval"
    );

    let approved = app
        .post_json(
            &format!("/api/v1/incidents/{id}/actions/hook_ok/approve"),
            &json!({"actor": "alice", "comment": "go", "service": "cartservice"}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::ACCEPTED, "{}", approved.text);
    let run_id = approved.json()["run"]["id"].as_i64().unwrap();
    let run = finished_run(&app, id, "hook_ok").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 1);
    assert_eq!(run["response_status"], 200);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "called once");
        let (path, headers, body) = &seen[0];
        assert_eq!(path, "/ok");
        assert_eq!(
            headers["idempotency-key"],
            format!("rootcause-run-{run_id}").as_str()
        );
        assert_eq!(headers["x-rootcause-attempt"], "1");
        assert_eq!(headers["x-token"], "secret");
        assert_eq!(body["incident"], id);
        assert_eq!(body["action"], "hook_ok");
        assert_eq!(body["service"], "cartservice");
        assert_eq!(body["approved_by"], "alice");
        assert_eq!(body["comment"], "go");
    }

    let refused = post_empty(
        &app,
        &format!("/api/v1/incidents/{id}/actions/hook_refused/approve"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::ACCEPTED, "{}", refused.text);
    let run = finished_run(&app, id, "hook_refused").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempts"], 1, "a 4xx is not retried: {run}");
    assert_eq!(run["response_status"], 400);
    assert_eq!(seen.lock().unwrap().len(), 2);

    let entries = audit_until(&app, &format!("incident={id}"), |e| {
        kinds(e).contains(&"automation_failed")
    })
    .await;
    let automation: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("automation_"))
        .map(|e| (e["kind"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        automation,
        [
            ("automation_succeeded", "hook_ok"),
            ("automation_failed", "hook_refused")
        ]
    );
    assert!(
        !entries.iter().any(|e| e.to_string().contains("secret")),
        "no token in the audit"
    );
}

// ---- similar incidents --------------------------------------------------------------------

#[tokio::test]
async fn a_resolved_incident_is_listed_as_similar_to_a_later_one_but_not_to_itself() {
    let app = app().await;
    // The first leak, three hours ago and over: a later alert is far outside its window.
    let t0 = Utc::now().timestamp() - 3 * 3600;
    let first = deliver(&app, &LEAK, t0, None).await["incidents"][0]
        .as_i64()
        .unwrap();
    deliver(&app, &LEAK, t0, Some(t0 + 600)).await;
    app.hypotheses_covering(first, 3).await;
    let none_yet = app.get(&format!("/api/v1/incidents/{first}/similar")).await;
    assert_eq!(none_yet.status, StatusCode::OK, "{}", none_yet.text);
    assert_eq!(none_yet.json(), json!({"incident": first, "similar": []}));

    let resolved = app
        .post_json(
            &format!("/api/v1/incidents/{first}/resolution"),
            &json!({"root_cause": "cartservice", "fault_type": "memory", "action": "restart",
                    "worked": true, "time_to_mitigate_s": 600, "resolved_by": "oncall"}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::CREATED, "{}", resolved.text);
    // Its own resolution is never similar to itself.
    let itself = app
        .get(&format!("/api/v1/incidents/{first}/similar"))
        .await
        .json();
    assert_eq!(itself["similar"], json!([]), "{itself}");

    let second = fire_now(&app, &LEAK).await;
    assert_ne!(second, first, "a new incident");
    let hypotheses = app.hypotheses_covering(second, 3).await;
    let answer = app
        .get(&format!("/api/v1/incidents/{second}/similar"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["incident"], second);
    let similar = body["similar"].as_array().unwrap();
    assert_eq!(similar.len(), 1, "{body}");
    let past = &similar[0];
    let similarity = past["similarity"].as_f64().unwrap();
    assert!(similarity > 0.0 && similarity <= 1.0, "{past}");
    assert_eq!(past["key"], format!("incident:{first}"));
    assert_eq!(past["incident"], first);
    assert_eq!(past["root_cause"], "cartservice");
    assert_eq!(past["fault_type"], "memory");
    assert_eq!(past["action"], "restart");
    assert_eq!(past["worked"], true);
    assert_eq!(past["time_to_mitigate_s"], 600.0);
    assert_eq!(
        past["started_at"],
        chrono::DateTime::from_timestamp(t0, 0)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let resolutions = past["resolutions"].as_array().unwrap();
    assert_eq!(resolutions.len(), 1, "{past}");
    assert_eq!(resolutions[0]["root_cause"], "cartservice");
    assert_eq!(resolutions[0]["action"], "restart");
    assert_eq!(resolutions[0]["resolved_by"], "oncall");
    assert_eq!(resolutions[0]["time_to_mitigate_s"], 600.0);

    // The past resolution votes for a restart of cartservice in the new incident.
    let cart = hypotheses["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == "cartservice")
        .expect("cartservice is a hypothesis");
    let restart = cart["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "restart")
        .unwrap_or_else(|| panic!("restart is suggested: {cart}"));
    assert!(
        restart["reason"]
            .as_str()
            .unwrap()
            .contains("resolved 1 of 1 similar past incidents"),
        "{restart}"
    );

    // An imported past incident is listed too, with no incident id and no resolutions.
    let started = Utc::now().timestamp() - 30 * 86_400;
    let record = json!({"id": "T-7", "system": "shop", "started_at": started,
        "alerts": LEAK.iter().map(|(service, name)| json!({"service": service, "name": name,
            "signal": if name.contains("Memory") { "memory" } else { "latency" },
            "severity": "critical", "starts_at": started, "ends_at": started + 900,
            "labels": {"alertname": name, "service": service}})).collect::<Vec<_>>(),
        "outcome": {"root_cause": "cartservice", "fault_type": "memory", "action": "scale_out",
                    "worked": false, "time_to_mitigate_s": 1200}});
    let imported = app
        .post_as(
            "/api/v1/history?source=tickets",
            "application/x-ndjson",
            &record.to_string(),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let deadline = Instant::now() + Duration::from_secs(10);
    let both = loop {
        let body = app
            .get(&format!("/api/v1/incidents/{second}/similar"))
            .await
            .json();
        if body["similar"].as_array().unwrap().len() == 2 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the import is not searched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ticket = both["similar"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "import:tickets:T-7")
        .unwrap_or_else(|| panic!("{both}"));
    assert!(ticket["incident"].is_null(), "{ticket}");
    assert_eq!(ticket["system"], "shop");
    assert_eq!(ticket["action"], "scale_out");
    assert_eq!(ticket["worked"], false);
    assert_eq!(ticket["time_to_mitigate_s"], 1200.0);
    assert_eq!(ticket["resolutions"], json!([]));
    let similarities: Vec<f64> = both["similar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["similarity"].as_f64().unwrap())
        .collect();
    assert!(
        similarities[0] >= similarities[1],
        "most similar first: {both}"
    );

    let itself = app
        .get(&format!("/api/v1/incidents/{first}/similar"))
        .await
        .json();
    let keys = crate::testing::texts(&itself["similar"], "key");
    assert_eq!(keys, ["import:tickets:T-7"], "never itself: {itself}");
    for bad in ["limit=0", "limit=51", "limit=x"] {
        let answer = app
            .get(&format!("/api/v1/incidents/{second}/similar?{bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let one = app
        .get(&format!("/api/v1/incidents/{second}/similar?limit=1"))
        .await;
    assert_eq!(one.json()["similar"].as_array().unwrap().len(), 1);
    for uri in [
        "/api/v1/incidents/999/similar",
        "/api/v1/incidents/-1/similar",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json()["code"], "not_found");
    }
}

// ---- the API description ------------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_describes_the_actions_routes() {
    let app = app().await;
    let spec = app.get("/api/v1/openapi.json").await.json();
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/runbooks", "get"),
        ("/api/v1/runbooks", "put"),
        ("/api/v1/incidents/{id}/similar", "get"),
        ("/api/v1/incidents/{id}/actions", "get"),
        ("/api/v1/incidents/{id}/actions/{action}/approve", "post"),
        ("/api/v1/incidents/{id}/actions/{action}/reject", "post"),
        ("/api/v1/audit", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "missing {method} {path}"
        );
    }
    let approve = &paths["/api/v1/incidents/{id}/actions/{action}/approve"]["post"];
    for status in ["201", "202", "404", "409", "422"] {
        assert!(approve["responses"][status].is_object(), "approve {status}");
    }
    assert!(paths["/api/v1/runbooks"]["put"]["responses"]["422"].is_object());
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for schema in [
        "SuggestionView",
        "CatalogueView",
        "DecisionView",
        "AuditPage",
    ] {
        assert!(schemas.contains_key(schema), "missing schema {schema}");
    }
    let suggestion = &schemas["SuggestionView"]["properties"];
    for field in [
        "action",
        "title",
        "risk",
        "confidence",
        "reason",
        "automated",
    ] {
        assert!(suggestion.get(field).is_some(), "SuggestionView.{field}");
    }
}

// ---- known bugs ---------------------------------------------------------------------------

#[tokio::test]
async fn the_last_audit_page_leaves_next_after_out() {
    let app = app().await;
    let page = app.get("/api/v1/audit").await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    // "Pass as `after` for the next page; absent on the last page", like `next_before` of
    // the alert, incident and topology version pages.
    assert!(page.get("next_after").is_none(), "{page}");
}

#[tokio::test]
async fn an_actor_of_128_characters_or_fewer_is_accepted_whatever_the_script() {
    let app = app().await;
    let id = fire_now(&app, &LEAK).await;
    let actor = "é".repeat(100);
    let answer = app
        .post_json(
            &format!("/api/v1/incidents/{id}/actions/restart/approve"),
            &json!({"actor": actor}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["decision"]["actor"], actor.as_str());
}

#[tokio::test]
async fn header_values_are_never_served_and_a_masked_value_keeps_the_stored_one() {
    let app = app_actions(local_hooks()).await;
    let with_token = "runbooks:
  - id: hook
    title: Call the hook
    risk: low
    steps: [Call it]
    automation: {url: \"http://127.0.0.1:9/hook\", headers: {X-Token: s3cret}}
";
    let answer = put_yaml(&app, "/api/v1/runbooks", with_token).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(!answer.text.contains("s3cret"), "{}", answer.text);
    for uri in ["/api/v1/runbooks", "/api/v1/runbooks?format=yaml"] {
        let shown = app.get(uri).await;
        assert!(!shown.text.contains("s3cret"), "{uri}: {}", shown.text);
        assert!(shown.text.contains("***"), "{uri}: {}", shown.text);
    }
    // What GET showed, sent back with a new title: the token is kept.
    let yaml = app.get("/api/v1/runbooks?format=yaml").await.text;
    let edited = yaml.replace("Call the hook", "Call the hook now");
    let answer = put_yaml(&app, "/api/v1/runbooks", &edited).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["runbooks"][0]["title"], "Call the hook now");
    let audit = app.get("/api/v1/audit?kind=runbooks_replaced").await.json();
    let kept = &audit["items"].as_array().unwrap().last().unwrap()["detail"]["automations"][0];
    assert_eq!(kept["kept_headers"], json!(["X-Token"]), "{kept}");
    assert!(kept["previous_url"].is_null(), "{kept}");
    let (seen_url, seen) = hook_target().await;
    let retargeted = edited.replace("http://127.0.0.1:9/hook", &format!("{seen_url}/ok"));
    // A masked header of a runbook whose stored automation has no such header is refused.
    let unknown = retargeted.replace("X-Token", "X-Other");
    let refused = put_yaml(&app, "/api/v1/runbooks", &unknown).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(
        refused.problem_paths(),
        ["runbooks[0].automation.headers.X-Other"]
    );
    // Pointed elsewhere with the mask kept: refused. Before, the stored token followed the URL
    // to the new listener at the first approval.
    let redirected = put_yaml(&app, "/api/v1/runbooks", &retargeted).await;
    assert_eq!(
        redirected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        redirected.text
    );
    assert_eq!(
        redirected.problem_paths(),
        ["runbooks[0].automation.headers.X-Token"]
    );
    assert!(
        redirected.json()["message"]
            .as_str()
            .unwrap()
            .contains("URL changed")
    );
    // With the value sent again it is accepted, and the audit log says where the automation
    // now points and that no secret was carried over (never the value).
    let resent = retargeted
        .replace("\"***\"", "s3cret-2")
        .replace("'***'", "s3cret-2");
    assert!(!resent.contains("***"), "{resent}");
    let answer = put_yaml(&app, "/api/v1/runbooks", &resent).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let audit = app.get("/api/v1/audit?kind=runbooks_replaced").await;
    assert!(!audit.text.contains("s3cret"), "{}", audit.text);
    let entries = audit.json()["items"].as_array().unwrap().clone();
    let newest = entries.last().unwrap().clone();
    let automation = &newest["detail"]["automations"][0];
    assert_eq!(automation["url"], format!("{seen_url}/ok"), "{newest}");
    assert_eq!(
        automation["previous_url"], "http://127.0.0.1:9/hook",
        "{newest}"
    );
    assert_eq!(automation["kept_headers"], json!([]), "{newest}");
    let id = fire_now(&app, &LEAK).await;
    app.hypotheses_covering(id, 3).await;
    let approved = post_empty(
        &app,
        &format!("/api/v1/incidents/{id}/actions/hook/approve"),
    )
    .await;
    assert_eq!(approved.status, StatusCode::ACCEPTED, "{}", approved.text);
    finished_run(&app, id, "hook").await;
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["x-token"], "s3cret-2");
    // Neither token is in the database's files: each was sealed before it was stored, with a
    // key created owner-only beside it. Before, both sat in plain text in the catalogue rows.
    let mut files = 0;
    for entry in std::fs::read_dir(app.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cret"),
            "{} holds a token in plain text",
            path.display()
        );
        files += 1;
    }
    assert!(files >= 2, "the database and the key");
    assert!(app.data_dir().join("secret.key").exists());
}

#[tokio::test]
async fn secrets_stored_in_plain_text_before_sealing_are_sealed_at_start_up_and_still_sent() {
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::state::AppState;
    use crate::store::NewAudit;
    use crate::store::tests::sqlite_store;

    let (store, dir) = sqlite_store().await;
    // A catalogue as an earlier version stored it: the token in plain text.
    let plain = "runbooks:\n  - id: hook\n    title: Call the hook\n    risk: low\n    steps: [Call it]\n    automation: {url: \"http://127.0.0.1:9/hook\", headers: {X-Token: s3cret}}\n";
    let audit = NewAudit {
        at: 1,
        actor: "earlier".into(),
        kind: "runbooks_replaced".into(),
        incident: None,
        action: None,
        service: None,
        detail: json!({}),
    };
    store
        .save_catalogue(plain, "0000", "earlier", 1, &audit)
        .await
        .unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        actions: local_hooks(),
        ..Config::default()
    };
    let (state, workers) = AppState::start(&config, store.clone(), Clock::system())
        .await
        .unwrap();
    let versions = store.catalogue_versions().await.unwrap();
    assert_eq!(versions.len(), 1, "rewritten in place, not a new version");
    assert!(!versions[0].yaml.contains("s3cret"), "{}", versions[0].yaml);
    assert!(
        versions[0].yaml.contains("sealed:v1:"),
        "{}",
        versions[0].yaml
    );
    let (catalogue, _) = state.actions.catalogue().await;
    let automation = catalogue.runbooks[0].automation.as_ref().unwrap();
    assert_eq!(
        automation.headers["X-Token"], "s3cret",
        "opened for the webhook"
    );
    let entries = store
        .audit(&crate::store::AuditFilter {
            incident: None,
            kind: Some("secrets_sealed".into()),
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    drop(state);
    drop(workers);
    // A restart opens what was sealed, and seals nothing again.
    let (state, _workers) = AppState::start(&config, store.clone(), Clock::system())
        .await
        .unwrap();
    let (catalogue, _) = state.actions.catalogue().await;
    assert_eq!(
        catalogue.runbooks[0].automation.as_ref().unwrap().headers["X-Token"],
        "s3cret"
    );
    assert_eq!(store.catalogue_versions().await.unwrap(), versions);
}

#[tokio::test]
async fn an_automation_is_not_approved_for_a_service_its_runbook_excludes() {
    let app = app_actions(local_hooks()).await;
    let catalogue = "runbooks:
  - id: db_failover
    title: Fail the database over
    risk: high
    applies: {services: {kinds: [database, cache]}}
    steps: [Promote the standby]
    automation: {url: \"http://127.0.0.1:9/hook\"}
";
    let answer = put_yaml(&app, "/api/v1/runbooks", catalogue).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = fire_now(&app, &LEAK).await;
    app.hypotheses_covering(id, 3).await;
    let refused = app
        .post_json(
            &format!("/api/v1/incidents/{id}/actions/db_failover/approve"),
            &json!({"service": "cartservice"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.json()["code"], "not_applicable");
    let actions = app
        .get(&format!("/api/v1/incidents/{id}/actions"))
        .await
        .json();
    assert_eq!(actions["decisions"], json!([]), "nothing recorded");
    // The cache behind cartservice is one it applies to.
    let approved = app
        .post_json(
            &format!("/api/v1/incidents/{id}/actions/db_failover/approve"),
            &json!({"service": "redis-cart"}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::ACCEPTED, "{}", approved.text);
}
