//! Proactive risks through the binary: a simulated fault history with planted risks imported
//! into a running service on Train Ticket with the example trading calendar; the risks, the
//! per-service scores, a risky change flagged when it arrives, raised priority inside a
//! critical window, and the stability report; on SQLite and on PostgreSQL.

use chrono::{SecondsFormat, Utc};
use rootcause_e2e::{Server, ServerOptions, TestDatabase, cli_ok, json_of};
use serde_json::{Value, json};

fn calendar_file() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/trading-calendar.toml");
    path.to_str().unwrap().to_owned()
}

/// A calendar with one window open all day, every day, concerning `service` only.
fn all_day_window(dir: &std::path::Path, service: &str) -> String {
    let path = dir.join("all-day.toml");
    std::fs::write(
        &path,
        format!(
            "[calendar]\ntime_zone = \"America/New_York\"\n[[calendar.windows]]\n\
             name = \"round the clock\"\nkind = \"session\"\nstart = \"00:00\"\nend = \"00:00\"\n\
             days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n\
             services = [\"{service}\"]\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

async fn planted_risks_found_and_flagged(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("history");
    let out = out.to_str().unwrap().to_owned();
    let written = cli_ok(
        [
            "history",
            "simulate",
            "--topology",
            "train-ticket",
            "--days",
            "90",
            "--seed",
            "7",
            "--rising",
            "ts-order-service",
            "--risky-changes",
            "ts-payment-service",
            "--failing-action",
            "restart",
            "--out",
            &out,
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert!(written.is_empty(), "the summary goes to stderr: {written}");

    // Offline, with the example calendar: the same risks the service will serve.
    let offline = cli_ok(
        [
            "risks",
            "--topology",
            "train-ticket",
            "--history",
            &format!("{out}/history.jsonl"),
            "--changes",
            &format!("{out}/changes.json"),
            "--config",
            &calendar_file(),
            "--json",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    let offline: Value = serde_json::from_str(&offline).unwrap();
    assert!(
        offline["next_window"]["window"]["name"].is_string(),
        "{offline:#}"
    );

    let mut args = vec![
        "--topology".to_owned(),
        "train-ticket".to_owned(),
        "--config".to_owned(),
        all_day_window(dir.path(), "ts-order-service"),
    ];
    if let Some(url) = database_url {
        args.extend(["--database-url".to_owned(), url]);
    }
    let server = Server::start(ServerOptions {
        args,
        ..ServerOptions::default()
    })
    .await;
    let changes: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}/changes.json")).unwrap())
            .unwrap();
    for chunk in changes.as_array().unwrap().chunks(500) {
        let answer = server.post("/api/v1/changes", &json!(chunk)).await;
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    }
    let imported = cli_ok(
        [
            "history",
            "import",
            "--format",
            "jsonl",
            &format!("{out}/history.jsonl"),
            "--url",
            &server.url,
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert!(imported.contains("new"), "{imported}");

    let risks = json_of(server.get("/api/v1/risks").await).await;
    let kinds = |kind: &str| -> Vec<String> {
        risks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["services"][0].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        kinds("rising_fault_rate"),
        ["ts-order-service"],
        "{risks:#}"
    );
    assert!(
        kinds("risky_changes").contains(&"ts-payment-service".to_owned()),
        "{risks:#}"
    );
    assert!(kinds("single_point_of_failure").contains(&"ts-gateway-service".to_owned()));
    assert_eq!(
        risks["services"][0]["service"], "ts-order-service",
        "{risks:#}"
    );
    assert_eq!(risks["open_windows"][0]["name"], "round the clock");
    // The served risks match what the CLI computes offline from the same files.
    let served: Vec<&Value> = risks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["kind"])
        .collect();
    let computed: Vec<&Value> = offline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["kind"])
        .collect();
    assert_eq!(served.len(), computed.len());

    // The CLI against the service prints the table.
    let table = cli_ok(
        ["risks", "--url", &server.url, "--limit", "5"]
            .map(str::to_owned)
            .to_vec(),
    )
    .await;
    assert!(table.contains("rising_fault_rate"), "{table}");
    assert!(table.contains("Next window: round the clock"), "{table}");

    // A deploy to the risky service is flagged when it arrives.
    let answer = json_of(
        server
            .post(
                "/api/v1/changes",
                &json!({"service": "ts-payment-service", "kind": "deploy", "version": "v2"}),
            )
            .await,
    )
    .await;
    assert!(
        answer["items"][0]["risk"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("ts-payment-service's changes")),
        "{answer:#}"
    );
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("rootcause_risky_changes_total{service=\"ts-payment-service\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rootcause_service_risk_score{service=\"ts-order-service\"}"));

    // An incident on the service the window concerns is raised and names the window.
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let receipt = json_of(
        server
            .post(
                "/api/v1/alerts",
                &json!({"alerts": [{"service": "ts-order-service", "alertname": "HighLatency",
                                     "starts_at": now}]}),
            )
            .await,
    )
    .await;
    let id = receipt["incidents"][0].as_i64().expect("an incident");
    let incident = json_of(server.get(&format!("/api/v1/incidents/{id}")).await).await;
    assert_eq!(
        incident["priority"]["window"]["name"], "round the clock",
        "{incident:#}"
    );
    let base = incident["priority"]["base"].as_u64().unwrap();
    assert_eq!(
        incident["priority"]["level"].as_u64().unwrap(),
        base.saturating_sub(1).max(1)
    );

    // And the stability report of the period.
    let report = cli_ok(["report", "--url", &server.url].map(str::to_owned).to_vec()).await;
    assert!(report.contains("incidents"), "{report}");
}

#[tokio::test]
async fn planted_risks_are_found_and_a_risky_change_is_flagged_on_sqlite() {
    planted_risks_found_and_flagged(None).await;
}

#[tokio::test]
async fn planted_risks_are_found_and_a_risky_change_is_flagged_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return; // TestDatabase::create said so loudly, or failed under ROOTCAUSE_REQUIRE_E2E=1.
    };
    planted_risks_found_and_flagged(Some(database.url.clone())).await;
    database.drop().await;
}
