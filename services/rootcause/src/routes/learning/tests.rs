//! Route tests of learning: resolutions and feedback, history import, training jobs, promotion
//! and rollback, on the real router over a temporary SQLite store and the bundled topology.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::{HttpConfig, IngestConfig, RankingConfig};
use crate::learning::fixtures;
use crate::routes::tests::{TestApp, app_ranking, webhook};

/// The routes on the bundled topology, with `model` configured and an empty registry.
async fn app_with_model(model: &str) -> TestApp {
    let ranking = RankingConfig {
        model: model.to_owned(),
        ..RankingConfig::default()
    };
    app_ranking(HttpConfig::default(), IngestConfig::default(), ranking).await
}

/// `cases` simulated incidents on the bundled topology, as JSON lines.
fn simulated_history(cases: usize, seed: u64) -> String {
    fixtures::simulated_history(cases, seed)
        .iter()
        .map(|record| serde_json::to_string(record).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn import(app: &TestApp, lines: &str, source: &str) -> crate::routes::tests::Answer {
    app.post_as(
        &format!("/api/v1/history?source={source}"),
        "application/x-ndjson",
        lines,
    )
    .await
}

/// Starts a training job and waits for its end; returns the finished job.
async fn train(app: &TestApp, body: &Value) -> Value {
    let answer = app.post_json("/api/v1/models/train", body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let id = answer.json()["id"].as_i64().unwrap();
    for _ in 0..600 {
        let job = app.get(&format!("/api/v1/models/jobs/{id}")).await.json();
        match job["status"].as_str().unwrap() {
            "succeeded" | "failed" => return job,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("training job {id} did not finish in 60 s");
}

fn active(models: &Value) -> Value {
    models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["status"] == "active")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Fires alerts on `service` now and returns the incident's hypotheses once ranked.
async fn incident_on(app: &TestApp, service: &str) -> (i64, Value) {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let alerts = json!([{"status": "firing",
        "labels": {"alertname": "HighLatency", "service": service, "severity": "critical"},
        "startsAt": now, "endsAt": "0001-01-01T00:00:00Z"}]);
    let answer = app
        .post_json("/api/v1/alerts/alertmanager", &webhook(alerts))
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let incidents = app.get("/api/v1/incidents").await.json();
    let id = incidents["items"]
        .as_array()
        .or_else(|| incidents["incidents"].as_array())
        .and_then(|items| items.first())
        .and_then(|i| i["id"].as_i64())
        .expect("an incident");
    let hypotheses = app
        .get(&format!("/api/v1/incidents/{id}/hypotheses"))
        .await
        .json();
    (id, hypotheses)
}

#[tokio::test]
async fn a_resolution_names_a_known_service_and_joins_the_history() {
    let app = app_with_model("cold-start").await;
    let (id, _) = incident_on(&app, "frontend").await;

    let unknown = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": "no-such-service", "fault_type": "cpu"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.json()["problems"][0]["path"], "root_cause");
    let bad_type = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": "cartservice", "fault_type": "gremlins"}),
        )
        .await;
    assert_eq!(bad_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_type.json()["problems"][0]["path"], "fault_type");
    let free_text = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": "cartservice", "fault_type": "cpu",
                    "action": "Restart the pod!"}),
        )
        .await;
    assert_eq!(free_text.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(free_text.json()["problems"][0]["path"], "action");
    let missing = app
        .post_json(
            "/api/v1/incidents/999/resolution",
            &json!({"root_cause": "cartservice", "fault_type": "cpu"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let resolved = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": "cartservice", "fault_type": "cpu", "action": "restart",
                    "worked": true, "notes": "hot loop", "resolved_by": "oncall"}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::CREATED, "{}", resolved.text);
    assert_eq!(resolved.json()["root_cause"], "cartservice");
    assert!(resolved.json()["time_to_mitigate_s"].as_f64().is_some());
    let external = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": "external", "fault_type": "network"}),
        )
        .await;
    assert_eq!(external.status, StatusCode::CREATED, "{}", external.text);

    let feedback = app
        .post_json(
            &format!("/api/v1/incidents/{id}/feedback"),
            &json!({"service": "frontend", "verdict": "reject", "by": "oncall"}),
        )
        .await;
    assert_eq!(feedback.status, StatusCode::CREATED, "{}", feedback.text);
    assert_eq!(feedback.json()["model"], "cold-start");
    let bad_verdict = app
        .post_json(
            &format!("/api/v1/incidents/{id}/feedback"),
            &json!({"service": "frontend", "verdict": "maybe"}),
        )
        .await;
    assert_eq!(bad_verdict.status, StatusCode::UNPROCESSABLE_ENTITY);

    let record = app
        .get(&format!("/api/v1/incidents/{id}/resolution"))
        .await
        .json();
    assert_eq!(record["resolutions"].as_array().unwrap().len(), 2);
    assert_eq!(record["resolution"]["root_cause"], "external", "the latest");
    assert_eq!(record["feedback"][0]["verdict"], "reject");
    // One incident, one history row: the later resolution replaced it.
    let history = app.get("/api/v1/history").await.json();
    assert_eq!(history["total"], 1, "{history}");
    assert_eq!(history["by_source"]["resolution"], 1, "{history}");
}

#[tokio::test]
async fn history_imports_are_all_or_nothing_and_name_the_bad_line() {
    let app = app_with_model("cold-start").await;
    let good = simulated_history(3, 1);
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(
        1,
        r#"{"id": "x", "started_at": 1700000000, "outcome": {"root_cause": ""}}"#,
    );
    let answer = import(&app, &lines.join("\n"), "test").await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.json()["problems"][0]["line"], 2, "{}", answer.text);
    assert_eq!(app.get("/api/v1/history").await.json()["total"], 0);

    let answer = import(&app, &good, "test").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["inserted"], 3);
    let again = import(&app, &good, "test").await;
    assert_eq!(again.json()["replaced"], 3, "{}", again.text);
    assert_eq!(app.get("/api/v1/history").await.json()["total"], 3);

    let plain = app.post_as("/api/v1/history", "text/plain", &good).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_trained_model_is_promoted_when_not_worse_and_hypotheses_carry_it() {
    let app = app_with_model("cold-start").await;
    assert_eq!(
        app.get("/api/v1/models").await.json()["models"],
        json!([]),
        "cold-start is no registered model"
    );
    let answer = import(&app, &simulated_history(200, 7), "sim").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    let job = train(&app, &json!({})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"]["promoted"], true, "{job}");
    let models = app.get("/api/v1/models").await.json();
    let model = active(&models);
    assert_eq!(model["source"], format!("job:{}", job["id"]));
    let figures = &model["figures"];
    for key in ["ac1", "ac3", "ac5", "avg5"] {
        assert!(
            figures["cross_validation"]["overall"][key].is_number(),
            "{figures}"
        );
        assert!(
            figures["cross_validation"]["chance"][key].is_number(),
            "{figures}"
        );
    }
    assert!(
        figures["held_out"]["cases"].as_u64().unwrap() >= 5,
        "{figures}"
    );
    assert_eq!(figures["held_out"]["active_model"], "cold-start");
    assert!(figures["cross_validation"]["by_fault_type"].is_object());
    assert!(
        figures["training_cases"].as_u64().unwrap() > 100,
        "{figures}"
    );
    assert_eq!(
        figures["feature_schema"],
        rootcause_models::learned::FEATURE_SCHEMA
    );

    let (_, hypotheses) = incident_on(&app, "frontend").await;
    let version = model["version"].as_str().unwrap();
    assert_eq!(
        hypotheses["model"],
        format!("learned@{version}"),
        "{hypotheses}"
    );

    // A deliberately worse candidate: a penalty so large that no correction to the cold-start
    // prior survives, so it ranks as the cold-start scorer does, below what was learned.
    let worse = train(&app, &json!({"prior_alpha": 1e9})).await;
    assert_eq!(worse["status"], "succeeded", "{worse}");
    assert_eq!(worse["summary"]["promoted"], false, "{worse}");
    let models = app.get("/api/v1/models").await.json();
    assert_eq!(
        active(&models)["id"],
        model["id"],
        "the good model stays active"
    );
    let candidate = models["models"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(candidate["status"], "candidate");
    assert!(
        candidate["reason"].as_str().unwrap().contains("worse"),
        "{candidate}"
    );

    // Forced, it is promoted: the same history and settings train the same version, which
    // the registry holds already and now activates; rollback activates the first one again.
    let forced = train(&app, &json!({"prior_alpha": 1e9, "force": true})).await;
    assert_eq!(forced["summary"]["promoted"], true, "{forced}");
    assert_eq!(forced["summary"]["model"], candidate["id"], "{forced}");
    let models = app.get("/api/v1/models").await.json();
    assert_eq!(active(&models)["id"], candidate["id"]);
    let rollback = app
        .post_json(
            &format!("/api/v1/models/{}/activate", model["id"]),
            &json!({"reason": "rollback"}),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text);
    let models = app.get("/api/v1/models").await.json();
    assert_eq!(active(&models)["id"], model["id"]);
    assert_eq!(models["models"].as_array().unwrap().len(), 2);
    let missing = app
        .post_json("/api/v1/models/999/activate", &json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_second_training_request_is_refused_while_one_runs() {
    let app = app_with_model("cold-start").await;
    let answer = import(&app, &simulated_history(200, 3), "sim").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let first = app.post_json("/api/v1/models/train", &json!({})).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let second = app.post_json("/api/v1/models/train", &json!({})).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert_eq!(second.json()["code"], "job_running");
    let id = first.json()["id"].as_i64().unwrap();
    assert!(
        second.json()["message"]
            .as_str()
            .unwrap()
            .contains(&id.to_string()),
        "names the running job: {}",
        second.text
    );
    let bad = app
        .post_json("/api/v1/models/train", &json!({"folds": 1}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["problems"][0]["path"], "folds");
}

#[tokio::test]
async fn training_without_history_fails_with_the_reason() {
    let app = app_with_model("cold-start").await;
    let job = train(&app, &json!({})).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("at least 2"),
        "{job}"
    );
}

#[tokio::test]
async fn the_bundled_model_is_registered_as_active_on_an_empty_registry() {
    let app = app_with_model("default").await;
    let models = app.get("/api/v1/models").await.json();
    let model = active(&models);
    assert_eq!(model["source"], "bundled", "{models}");
    assert_eq!(
        model["version"],
        rootcause_models::rankers::bundled_model().version
    );
}
