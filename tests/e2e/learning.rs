//! Learning end to end: simulated history imported with the CLI into a running server, a model
//! trained by a job started from the CLI, promoted, and still the active model (and the one
//! hypotheses name) after the server is killed and started again, on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rootcause_e2e::{Server, ServerOptions, TestDatabase, cli_ok, json_of};
use serde_json::{Value, json};

fn active(models: &Value) -> Value {
    models["models"]
        .as_array()
        .expect("a model list")
        .iter()
        .find(|m| m["status"] == "active")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Fires one alert now and returns the incident's hypotheses once ranked by `model`.
async fn hypotheses_by(server: &Server, service: &str, model: &str) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let answer = server
        .post(
            "/api/v1/alerts",
            &json!({"alerts": [{"service": service, "alertname": "HighLatency",
                                 "starts_at": now}]}),
        )
        .await;
    assert_eq!(answer.status(), 202);
    let receipt = json_of(answer).await;
    let id = receipt["incidents"][0].as_i64().expect("an incident");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = json_of(
            server
                .get(&format!("/api/v1/incidents/{id}/hypotheses"))
                .await,
        )
        .await;
        if body["model"] == model {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "hypotheses never by {model}: {body}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn history_training_and_restart(options: ServerOptions) {
    let server = Server::start(options.clone()).await;
    let bundled = active(&json_of(server.get("/api/v1/models").await).await);
    assert_eq!(bundled["source"], "bundled", "{bundled}");

    let sim = tempfile::tempdir().unwrap();
    let out = sim.path().join("cases");
    let out = out.to_str().unwrap().to_owned();
    cli_ok(vec![
        "simulate".into(),
        "--cases".into(),
        "120".into(),
        "--seed".into(),
        "7".into(),
        "--out".into(),
        out.clone(),
    ])
    .await;
    let imported = cli_ok(vec![
        "history".into(),
        "import".into(),
        "--format".into(),
        "sim".into(),
        out,
        "--url".into(),
        server.url.clone(),
    ])
    .await;
    assert!(imported.contains("120 new"), "{imported}");
    let history = json_of(server.get("/api/v1/history").await).await;
    assert_eq!(history["total"], 120, "{history}");

    // Forced, so that the test does not depend on how the bundled model does on these cases.
    let trained = cli_ok(vec![
        "train".into(),
        "--force".into(),
        "--url".into(),
        server.url.clone(),
    ])
    .await;
    assert!(trained.contains("promoted"), "{trained}");
    assert!(
        trained.contains("cross-validation by case: AC@1"),
        "{trained}"
    );
    let models = json_of(server.get("/api/v1/models").await).await;
    let model = active(&models);
    assert!(
        model["source"].as_str().unwrap().starts_with("job:"),
        "{models}"
    );
    assert!(model["figures"]["cross_validation"]["overall"]["ac1"].is_number());
    let listed = cli_ok(vec![
        "models".into(),
        "list".into(),
        "--url".into(),
        server.url.clone(),
    ])
    .await;
    assert!(
        listed.contains("active") && listed.contains("retired"),
        "{listed}"
    );

    let version = model["version"].as_str().unwrap();
    let by_new = format!("learned@{version}");
    hypotheses_by(&server, "frontend", &by_new).await;

    // Killed without warning and started again: the registry and its active model remain.
    let killed = server.kill_9();
    let server = killed.restart(options).await;
    let models = json_of(server.get("/api/v1/models").await).await;
    assert_eq!(active(&models)["id"], model["id"], "{models}");
    hypotheses_by(&server, "cartservice", &by_new).await;

    // Rollback from the CLI: the bundled model again.
    cli_ok(vec![
        "models".into(),
        "activate".into(),
        bundled["id"].to_string(),
        "--reason".into(),
        "rollback".into(),
        "--url".into(),
        server.url.clone(),
    ])
    .await;
    let models = json_of(server.get("/api/v1/models").await).await;
    assert_eq!(active(&models)["id"], bundled["id"], "{models}");
    let bundled_name = format!("learned@{}", bundled["version"].as_str().unwrap());
    hypotheses_by(&server, "checkoutservice", &bundled_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trained_model_stays_active_after_a_restart_on_sqlite() {
    history_training_and_restart(ServerOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trained_model_stays_active_after_a_restart_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return; // TestDatabase::create said so loudly, or failed under ROOTCAUSE_REQUIRE_E2E=1.
    };
    history_training_and_restart(ServerOptions {
        args: vec!["--database-url".into(), database.url.clone()],
        ..ServerOptions::default()
    })
    .await;
    database.drop().await;
}
