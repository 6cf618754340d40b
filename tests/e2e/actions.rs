//! Emergency actions end to end: the real binary with a runbook catalogue whose automation and
//! notification webhooks point at a real HTTP receiver started by the test. No automation call
//! before approval, exactly one after it (and a retried one for a flaky target), the
//! notification carries the ranked hypotheses, every step is in the audit log, and the log and
//! the decisions survive a SIGKILL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{SecondsFormat, Utc};
use rootcause_e2e::{Server, ServerOptions, json_of};
use serde_json::{Value, json};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Starts the receiver on a free port; returns it and its base URL.
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let record = |path: &'static str, flaky: bool| {
            move |State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes| async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut received = receiver.received.lock().unwrap();
                let earlier = received.iter().filter(|r| r.path == path).count();
                received.push(Received {
                    path: path.to_owned(),
                    headers,
                    body,
                });
                // The flaky target fails its first call: the service must retry.
                if flaky && earlier == 0 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        };
        let app = Router::new()
            .route("/automation", post(record("/automation", false)))
            .route("/flaky", post(record("/flaky", true)))
            .route("/notify", post(record("/notify", false)))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn calls(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` got `count` calls.
    async fn wait_for(&self, path: &str, count: usize, server: &Server) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let calls = self.calls(path);
            if calls.len() >= count {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} calls, not {count}; server log:\n{}",
                calls.len(),
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn catalogue(receiver: &str) -> String {
    format!(
        r#"runbooks:
  - id: restart
    title: Restart the service
    risk: medium
    applies:
      fault_types: [memory, code]
      signals: [memory, availability, errors]
    steps: ["Restart <service> one instance at a time"]
    automation:
      url: {receiver}/automation
      timeout_ms: 2000
      retries: 2
      headers: {{Authorization: "Bearer test-token"}}
  - id: failover
    title: Fail over
    risk: high
    steps: ["Fail over <service> to its standby"]
    automation:
      url: {receiver}/flaky
      timeout_ms: 2000
      retries: 3
  - id: scale_out
    title: Scale out
    risk: low
    applies:
      fault_types: [cpu]
      signals: [cpu, saturation, latency]
    steps: ["Add instances of <service>"]
"#
    )
}

async fn audit_kinds(server: &Server, incident: i64) -> Vec<String> {
    let audit = json_of(
        server
            .get(&format!("/api/v1/audit?incident={incident}&limit=1000"))
            .await,
    )
    .await;
    audit["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for_audit(server: &Server, incident: i64, kind: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kinds = audit_kinds(server, incident).await;
        if kinds.iter().any(|k| k == kind) {
            return kinds;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} in the audit log of incident {incident}: {kinds:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn automation_runs_only_after_approval_and_every_step_is_audited() {
    let (receiver, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runbooks = dir.path().join("runbooks.yaml");
    std::fs::write(&runbooks, catalogue(&base)).unwrap();
    let config = dir.path().join("rootcause.toml");
    std::fs::write(
        &config,
        format!(
            "[actions]\nrunbooks = {:?}\nallowed_hosts = [\"127.0.0.1\"]\n\n\
             [[actions.notify]]\nurl = \"{base}/notify\"\nhypotheses = 3\n",
            runbooks.display().to_string()
        ),
    )
    .unwrap();
    let options = ServerOptions {
        args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::default()
    };
    let server = Server::start(options.clone()).await;

    // The catalogue served is the configured one.
    let served = json_of(server.get("/api/v1/runbooks").await).await;
    let ids = rootcause::testing::texts(&served["runbooks"], "id");
    assert_eq!(ids, ["restart", "failover", "scale_out"], "{served}");
    // Tokens are never served.
    assert_eq!(
        served["runbooks"][0]["automation"]["headers"]["Authorization"], "***",
        "{served}"
    );

    // A memory alert on the cart service and latency on its callers: an incident opens.
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let answer = server
        .post(
            "/api/v1/alerts",
            &json!({"alerts": [
                {"service": "cartservice", "alertname": "HighMemoryUsage", "severity": "critical",
                 "starts_at": now},
                {"service": "frontend", "alertname": "HighLatency", "starts_at": now},
                {"service": "checkoutservice", "alertname": "HighLatency", "starts_at": now}
            ]}),
        )
        .await;
    assert_eq!(answer.status(), 202);
    let incident = json_of(answer).await["incidents"][0]
        .as_i64()
        .expect("an incident");

    // The notification webhook receives the ranked hypotheses, with their actions.
    let notified = receiver.wait_for("/notify", 1, &server).await;
    let note = &notified[0].body;
    assert_eq!(note["event"], "opened", "{note}");
    assert_eq!(note["incident"], incident, "{note}");
    let sent = note["ranking"]["hypotheses"]
        .as_array()
        .expect("hypotheses");
    assert!(!sent.is_empty() && sent.len() <= 3, "{note}");
    assert!(
        sent[0]["service"].is_string() && sent[0]["actions"].is_array(),
        "{note}"
    );

    // Every hypothesis carries actions with a reason and a confidence.
    let hypotheses = json_of(
        server
            .get(&format!("/api/v1/incidents/{incident}/hypotheses"))
            .await,
    )
    .await;
    let top = &hypotheses["hypotheses"][0];
    let actions = top["actions"]
        .as_array()
        .expect("actions on the top hypothesis");
    assert!(!actions.is_empty(), "{top}");
    for action in actions {
        assert!(
            action["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{action}"
        );
        let confidence = action["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{action}");
    }
    let kinds = wait_for_audit(&server, incident, "notified").await;
    assert!(kinds.contains(&"suggested".to_owned()), "{kinds:?}");

    // Suggested and notified, but nothing approved: no automation call.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.calls("/automation").is_empty(),
        "called before approval"
    );

    // Approval: exactly one call, with the runbook's header and an idempotency key.
    let approved = server
        .post(
            &format!("/api/v1/incidents/{incident}/actions/restart/approve"),
            &json!({"actor": "alice", "comment": "memory leak, restart"}),
        )
        .await;
    assert_eq!(approved.status(), 202);
    let approved = json_of(approved).await;
    let run = approved["run"]["id"].as_i64().expect("a run");
    let calls = receiver.wait_for("/automation", 1, &server).await;
    assert_eq!(calls[0].body["incident"], incident);
    assert_eq!(calls[0].body["action"], "restart");
    assert_eq!(calls[0].body["approved_by"], "alice");
    assert_eq!(calls[0].headers["authorization"], "Bearer test-token");
    assert_eq!(
        calls[0].headers["idempotency-key"],
        format!("rootcause-run-{run}").as_str()
    );
    wait_for_audit(&server, incident, "automation_succeeded").await;
    // A second approval is refused and calls nothing.
    let again = server
        .post(
            &format!("/api/v1/incidents/{incident}/actions/restart/approve"),
            &json!({"actor": "bob"}),
        )
        .await;
    assert_eq!(again.status(), 409);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.calls("/automation").len(), 1, "exactly one call");

    // A flaky target: the first attempt gets 503, the retry succeeds.
    let failover = server
        .post(
            &format!("/api/v1/incidents/{incident}/actions/failover/approve"),
            &json!({"actor": "alice"}),
        )
        .await;
    assert_eq!(failover.status(), 202);
    let failover_run = json_of(failover).await["run"]["id"]
        .as_i64()
        .expect("a run");
    receiver.wait_for("/flaky", 2, &server).await;
    let kinds = wait_for_audit(&server, incident, "automation_retry").await;
    assert!(kinds.contains(&"action_approved".to_owned()), "{kinds:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let recorded = json_of(
            server
                .get(&format!("/api/v1/incidents/{incident}/actions"))
                .await,
        )
        .await;
        let run = recorded["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == failover_run)
            .cloned()
            .expect("the failover run is listed");
        if run["status"] == "succeeded" {
            assert_eq!(run["attempts"], 2, "{run}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failover run never succeeded: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A rejection is recorded too; an unknown runbook is a 404.
    let rejected = server
        .post(
            &format!("/api/v1/incidents/{incident}/actions/scale_out/reject"),
            &json!({"actor": "carol", "comment": "not a capacity problem"}),
        )
        .await;
    assert_eq!(rejected.status(), 201);
    let unknown = server
        .post(
            &format!("/api/v1/incidents/{incident}/actions/reboot_the_world/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(json_of(unknown).await["code"], "unknown_action");

    // A catalogue calling a host off the allow-list is refused, naming where.
    let refused = server
        .put(
            "/api/v1/runbooks",
            "application/yaml",
            catalogue("http://169.254.169.254"),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let refused = json_of(refused).await;
    assert_eq!(
        refused["problems"][0]["path"], "runbooks[0].automation.url",
        "{refused}"
    );

    // The decisions and the audit log survive a crash.
    let before = audit_kinds(&server, incident).await;
    let notes = receiver.calls("/notify").len();
    let restarted = server.kill_9().restart(options).await;
    let after = audit_kinds(&restarted, incident).await;
    assert!(after.starts_with(&before), "{before:?} then {after:?}");
    let recorded = json_of(
        restarted
            .get(&format!("/api/v1/incidents/{incident}/actions"))
            .await,
    )
    .await;
    let decisions: Vec<(&str, &str)> = recorded["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["action"].as_str().unwrap(),
                d["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("restart", "approved"),
            ("failover", "approved"),
            ("scale_out", "rejected")
        ]
    );
    assert!(
        recorded["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "succeeded"),
        "{recorded}"
    );
    // The restart re-ranks the incident with the same top hypothesis: no second notification
    // of the same answer, and still exactly one automation call. Asking for the hypotheses
    // makes sure a ranking happened after the restart; the notifier then has a moment to act.
    let reranked = json_of(
        restarted
            .get(&format!("/api/v1/incidents/{incident}/hypotheses"))
            .await,
    )
    .await;
    assert!(
        reranked["hypotheses"][0]["actions"].is_array(),
        "{reranked}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.calls("/automation").len(), 1);
    assert_eq!(
        receiver.calls("/notify").len(),
        notes,
        "the same top hypothesis is not sent again"
    );
}
