//! Ranking end to end: alerts in, hypotheses out, metrics posted with the incident, and all of
//! it still there after the server is killed and started again, on SQLite and on PostgreSQL.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use chrono::Utc;
use rootcause_e2e::{Server, ServerOptions, TestDatabase, json_of};
use serde_json::{Value, json};

/// How long a ranking may take to show up (it is usually a few milliseconds).
const PATIENCE: Duration = Duration::from_secs(20);

/// The hypotheses of incident `id` once `accept` takes them.
async fn hypotheses_where(server: &Server, id: i64, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = server
            .get(&format!("/api/v1/incidents/{id}/hypotheses"))
            .await;
        assert_eq!(response.status(), 200, "hypotheses of incident {id}");
        let body = json_of(response).await;
        if accept(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "hypotheses of incident {id} never as expected; last:\n{body:#}\nlog:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn top(hypotheses: &Value) -> (&str, &str, &Value) {
    let first = &hypotheses["hypotheses"][0];
    (
        first["service"].as_str().unwrap_or_default(),
        first["role"].as_str().unwrap_or_default(),
        &first["fault_type"],
    )
}

/// CPU of redis-cart: flat for half an hour before `anchor` (unix seconds), saturated after.
fn cpu_spike(anchor: i64) -> Value {
    let points = (-30..=5)
        .map(|minute| {
            let value = if minute < 0 {
                0.2 + 0.01 * (minute % 3) as f64
            } else {
                0.97
            };
            json!([anchor + minute * 60, value])
        })
        .collect::<Vec<_>>();
    json!({"series": [{"service": "redis-cart", "name": "container_cpu_usage", "points": points}]})
}

/// The first event of an incident's stream: its name and data.
async fn first_event(server: &Server, id: i64) -> (String, Value) {
    let mut response = server.get(&format!("/api/v1/incidents/{id}/events")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "an event stream"
    );
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .expect("a first event in time")
            .expect("a readable stream")
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let block = &text[..text.find("\n\n").unwrap()];
    let name = block
        .lines()
        .find_map(|l| l.strip_prefix("event: "))
        .unwrap_or_default()
        .to_owned();
    let data = block
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or("null");
    (name, serde_json::from_str(data).unwrap())
}

async fn hypotheses_and_metrics_survive_a_restart(options: ServerOptions) {
    let server = Server::start(options.clone()).await;
    // cartservice and its caller alert; redis-cart, the cache behind cartservice, is silent.
    let anchor = Utc::now().timestamp() - 300;
    let starts = |offset: i64| {
        chrono::DateTime::from_timestamp(anchor + offset, 0)
            .unwrap()
            .to_rfc3339()
    };
    let alerts = json!({"alerts": [
        {"service": "cartservice", "alertname": "HighLatency", "severity": "critical",
         "starts_at": starts(0)},
        {"service": "frontend", "alertname": "HighLatency", "severity": "warning",
         "starts_at": starts(30)},
    ]});
    let response = server.post("/api/v1/alerts", &alerts).await;
    assert_eq!(response.status(), 202);
    let receipt = json_of(response).await;
    let id = receipt["incidents"][0].as_i64().expect("an incident");

    let before = hypotheses_where(&server, id, |h| h["alert_count"] == 2).await;
    assert_eq!(before["incident"], id);
    let candidates = before["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["service"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert!(candidates.contains(&"redis-cart"), "{candidates:?}");
    assert_ne!(top(&before).0, "redis-cart", "{before:#}");

    // Metrics posted with the incident make the silent cache the cause.
    let response = server
        .post(
            &format!("/api/v1/incidents/{id}/metrics"),
            &cpu_spike(anchor),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        json_of(response).await,
        json!({"accepted_series": 1, "accepted_points": 36})
    );
    let after = hypotheses_where(&server, id, |h| top(h).0 == "redis-cart").await;
    assert_eq!(top(&after).1, "origin", "{after:#}");
    assert_eq!(top(&after).2, "cpu", "{after:#}");
    assert!(after["revision"].as_u64() > before["revision"].as_u64());

    // A crash: the posted metrics were acknowledged, so they are on disk.
    let killed = server.kill_9();
    assert_eq!(killed.status.signal(), Some(9));
    let server = killed.restart(options).await;
    let restored = hypotheses_where(&server, id, |h| h["alert_count"] == 2).await;
    assert_eq!(top(&restored).0, "redis-cart", "{restored:#}");
    assert_eq!(
        top(&restored).2,
        "cpu",
        "the posted metrics are back: {restored:#}"
    );
    assert!(restored["revision"].as_u64().unwrap() >= 1);
    let (name, event) = first_event(&server, id).await;
    assert_eq!(name, "hypotheses");
    assert_eq!(event["incident"], id);
    assert_eq!(top(&event).0, "redis-cart");

    let missing = server.get("/api/v1/incidents/999/hypotheses").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(json_of(missing).await["code"], "not_found");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rootcause_rankings_total"), "{metrics}");
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn hypotheses_and_posted_metrics_survive_kill_9() {
    hypotheses_and_metrics_survive_a_restart(ServerOptions::default()).await;
}

#[tokio::test]
async fn hypotheses_and_posted_metrics_survive_kill_9_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return; // TestDatabase::create said so loudly, or failed under ROOTCAUSE_REQUIRE_E2E=1.
    };
    hypotheses_and_metrics_survive_a_restart(ServerOptions {
        args: vec!["--database-url".into(), database.url.clone()],
        ..ServerOptions::default()
    })
    .await;
    database.drop().await;
}
