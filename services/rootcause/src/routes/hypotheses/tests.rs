//! Route tests of ranking: hypotheses, posted metrics and the event stream, on the real router
//! over a temporary SQLite store.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::{HttpConfig, IngestConfig, RankingConfig};
use crate::routes::tests::{TestApp, app_ranking, deliver_alerts};

/// web → api → db, and web → search → index: db is the database behind api.
fn topology() -> Value {
    json!({
        "services": [
            {"name": "web", "kind": "gateway"}, {"name": "api", "kind": "service"},
            {"name": "db", "kind": "database", "aliases": ["db-primary"]},
            {"name": "search", "kind": "service"}, {"name": "index", "kind": "service"},
        ],
        "dependencies": [
            {"caller": "web", "callee": "api"}, {"caller": "api", "callee": "db"},
            {"caller": "web", "callee": "search"}, {"caller": "search", "callee": "index"},
        ]
    })
}

/// A chain a – b – c – d – e: a and e are 4 hops apart (two incidents), c joins both.
fn chain() -> Value {
    let services = ["a", "b", "c", "d", "e"].map(|n| json!({"name": n, "kind": "service"}));
    json!({
        "services": services,
        "dependencies": [
            {"caller": "a", "callee": "b"}, {"caller": "b", "callee": "c"},
            {"caller": "c", "callee": "d"}, {"caller": "d", "callee": "e"},
        ]
    })
}

/// The routes on `topology`, ranked by the cold-start scorer: its hand-set weights make what
/// these tests expect of a ranking independent of whichever model file is bundled.
async fn app_on(topology: &Value) -> TestApp {
    let ranking = RankingConfig {
        model: "cold-start".to_owned(),
        ..RankingConfig::default()
    };
    let app = app_ranking(HttpConfig::default(), IngestConfig::default(), ranking).await;
    let answer = app.put_json("/api/v1/topology", topology).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    app
}

/// Posts firing alerts `(service, alertname, unix start)`; returns the receipt.
async fn fire(app: &TestApp, alerts: &[(&str, &str, i64)]) -> Value {
    deliver_alerts(app, alerts, None).await
}

fn services_in_order(hypotheses: &Value) -> Vec<String> {
    hypotheses["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["service"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_root_whose_callers_alert_ranks_first_as_origin_with_its_path() {
    let app = app_on(&topology()).await;
    let t0 = Utc::now().timestamp() - 300;
    let receipt = fire(
        &app,
        &[
            ("db", "DatabaseDown", t0),
            ("api", "HighLatency", t0 + 30),
            ("web", "Http5xxRate", t0 + 60),
        ],
    )
    .await;
    assert_eq!(receipt["incidents"], json!([1]));
    let body = app.hypotheses_covering(1, 3).await;
    assert_eq!(body["incident"], 1);
    assert!(body["revision"].as_u64().unwrap() >= 1);
    assert_eq!(body["alert_count"], 3);
    assert!(body["ranked_at"].as_str().unwrap().ends_with('Z'));
    assert!(!body["model"].as_str().unwrap().is_empty());
    let order = services_in_order(&body);
    assert_eq!(order[0], "db", "{body:#}");
    // Candidates: the alerting services and their callees (search and index via web).
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ["api", "db", "index", "search", "web"]);
    let top = &body["hypotheses"][0];
    assert_eq!(top["rank"], 1);
    assert_eq!(top["role"], "origin", "{top:#}");
    assert!(!top["evidence"].as_array().unwrap().is_empty(), "{top:#}");
    let paths = top["paths"].as_array().unwrap();
    assert!(
        paths
            .iter()
            .any(|p| p[0] == "db" && p.as_array().unwrap().contains(&json!("api"))),
        "a path from db through its caller: {paths:?}"
    );
    assert!(top["score"].is_number());
    assert_eq!(body["hypotheses"][1]["rank"], 2);
}

#[tokio::test]
async fn unknown_and_merged_incidents_answer_404_with_where_to_look() {
    let app = app_on(&chain()).await;
    for uri in [
        "/api/v1/incidents/42/hypotheses",
        "/api/v1/incidents/-1/hypotheses",
        "/api/v1/incidents/42/events",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json()["code"], "not_found", "{uri}");
    }
    let bad = app.get("/api/v1/incidents/x/hypotheses").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let now = Utc::now().timestamp();
    assert_eq!(
        fire(&app, &[("a", "Down", now)]).await["incidents"],
        json!([1])
    );
    assert_eq!(
        fire(&app, &[("e", "Down", now)]).await["incidents"],
        json!([2])
    );
    // Incident 2 ranked before the merge: its hypotheses exist, then it is absorbed.
    assert_eq!(
        app.get("/api/v1/incidents/2/hypotheses").await.status,
        StatusCode::OK
    );
    assert_eq!(
        fire(&app, &[("c", "Down", now)]).await["incidents"],
        json!([1])
    );
    let merged = app
        .hypotheses_when(2, |answer| answer.status == StatusCode::NOT_FOUND)
        .await;
    assert_eq!(merged.status, StatusCode::NOT_FOUND, "{}", merged.text);
    assert_eq!(merged.json()["code"], "merged");
    assert_eq!(
        merged.headers[header::LOCATION],
        "/api/v1/incidents/1/hypotheses"
    );
    assert!(
        merged.json()["message"]
            .as_str()
            .unwrap()
            .contains("incident 1")
    );
    let survivor = app.hypotheses_covering(1, 3).await;
    let mut services = services_in_order(&survivor);
    services.sort();
    assert_eq!(services, ["a", "b", "c", "d", "e"], "{survivor:#}");
    let events = app.get("/api/v1/incidents/2/events").await;
    assert_eq!(events.json()["code"], "merged");
}

/// CPU samples of one service: flat at 0.2 for half an hour before `anchor`, 0.95 after.
fn cpu_spike(service: &str, anchor: i64) -> Value {
    let points = (-30..=5)
        .map(|minute| {
            let t = anchor + minute * 60;
            let value = if minute < 0 {
                0.2 + 0.01 * f64::from((minute % 3) as i32)
            } else {
                0.95
            };
            json!([t, value])
        })
        .collect::<Vec<_>>();
    json!({"service": service, "name": "cpu_usage", "points": points})
}

#[tokio::test]
async fn a_cpu_spike_posted_for_a_silent_callee_makes_it_the_top_hypothesis() {
    let app = app_on(&topology()).await;
    let t0 = Utc::now().timestamp() - 300;
    fire(
        &app,
        &[("api", "HighLatency", t0), ("web", "HighLatency", t0 + 20)],
    )
    .await;
    let before = app.hypotheses_covering(1, 2).await;
    assert_ne!(services_in_order(&before)[0], "db", "{before:#}");
    let revision = before["revision"].as_u64().unwrap();

    let answer = app
        .post_json(
            "/api/v1/incidents/1/metrics",
            &json!({"series": [cpu_spike("db-primary", t0)]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({"accepted_series": 1, "accepted_points": 36})
    );
    let after = app
        .hypotheses_when(1, |answer| {
            answer.json()["revision"].as_u64().unwrap() > revision
        })
        .await
        .json();
    assert_eq!(services_in_order(&after)[0], "db", "{after:#}");
    let top = &after["hypotheses"][0];
    assert_eq!(top["fault_type"], "cpu", "{top:#}");
    assert!(
        top["evidence"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("cpu")),
        "{top:#}"
    );
}

#[tokio::test]
async fn posted_metrics_are_validated_with_where_each_problem_is() {
    let app = app_on(&topology()).await;
    let now = Utc::now().timestamp();
    let missing = app
        .post_json(
            "/api/v1/incidents/7/metrics",
            &json!({"series": [cpu_spike("db", now)]}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["code"], "not_found");
    fire(&app, &[("api", "HighLatency", now)]).await;

    let bad = app
        .post_json(
            "/api/v1/incidents/1/metrics",
            &json!({"series": [
                {"service": "db", "name": "cpu", "points": [[now, 1], [now + 60, "x"], ["soon", 2]]},
                {"service": "nope", "name": "cpu", "points": []},
                {"service": "api", "name": "", "points": [[now, "+Inf"], [1e300, 1], [now]]},
                {"service": "web", "nmae": "cpu", "points": 5},
            ]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.json()["code"], "invalid_metrics");
    let paths = bad.problem_paths();
    for expected in [
        "series[0].points[1][1]",
        "series[0].points[2][0]",
        "series[1].service",
        "series[2].name",
        "series[2].points[0][1]",
        "series[2].points[1][0]",
        "series[2].points[2]",
        "series[3].nmae",
        "series[3].name",
        "series[3].points",
    ] {
        assert!(
            paths.contains(&expected.to_owned()),
            "{expected} in {paths:?}"
        );
    }
    assert!(
        bad.text.contains("\\\"nope\\\""),
        "names the service: {}",
        bad.text
    );
    // Nothing of a refused request is stored.
    let hypotheses = app.hypotheses_covering(1, 1).await;
    assert!(
        !hypotheses.to_string().contains("cpu"),
        "no CPU evidence stored: {hypotheses}"
    );

    // Unsorted and duplicate points are sorted and deduplicated; NaN and null are "no data".
    let messy = app
        .post_json(
            "/api/v1/incidents/1/metrics",
            &json!({"series": [{"service": "db", "name": "latency_ms",
                "points": [[now + 120, 3], [now, 1], [now + 60, null], [now, 2], [now as f64 + 60.5, "NaN"]]}]}),
        )
        .await;
    assert_eq!(messy.status, StatusCode::ACCEPTED, "{}", messy.text);
    assert_eq!(messy.json()["accepted_points"], 3);

    // Prometheus's query_range answer, whole or its `data`, service from a chosen label.
    let prometheus = json!({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "process_cpu_seconds", "app": "db"},
         "values": [[now, "0.5"], [now + 60, "0.7"]]},
        {"metric": {"app": "api"}, "values": [[now, "1"]]},
    ]}});
    let answer = app
        .post_json(
            "/api/v1/incidents/1/metrics?service_label=app&name=requests_per_s",
            &prometheus,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({"accepted_series": 2, "accepted_points": 3})
    );
    let no_name = app
        .post_json(
            "/api/v1/incidents/1/metrics?service_label=app",
            &prometheus["data"],
        )
        .await;
    assert_eq!(no_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_name.problem_paths(), ["result[1].metric.__name__"]);
    let vector = app
        .post_json(
            "/api/v1/incidents/1/metrics",
            &json!({"resultType": "vector", "result": []}),
        )
        .await;
    assert_eq!(vector.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(vector.problem_paths(), ["resultType"]);

    // Limits: series per request (413), points per series (422 at the series).
    let many = (0..=crate::routes::incident_metrics::MAX_SERIES_PER_REQUEST)
        .map(|i| json!({"service": "db", "name": format!("m{i}"), "points": []}))
        .collect::<Vec<_>>();
    let too_many = app
        .post_json("/api/v1/incidents/1/metrics", &json!({"series": many}))
        .await;
    assert_eq!(too_many.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_many.json()["code"], "too_many_series");
    let long = (0..=crate::routes::incident_metrics::MAX_POINTS_PER_SERIES as i64)
        .map(|i| json!([now + i, 1.0]))
        .collect::<Vec<_>>();
    let too_long = app
        .post_json(
            "/api/v1/incidents/1/metrics",
            &json!({"series": [{"service": "db", "name": "cpu", "points": long}]}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.problem_paths(), ["series[0].points"]);

    let not_json = app
        .post_as("/api/v1/incidents/1/metrics", "application/json", "{")
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let no_type = app
        .send(Method::POST, "/api/v1/incidents/1/metrics", &[], "{}")
        .await;
    assert_eq!(no_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// An incident's server-sent event stream, read event by event.
struct EventStream {
    status: StatusCode,
    content_type: Option<header::HeaderValue>,
    body: Body,
    buffer: String,
}

impl EventStream {
    /// Opens `GET /api/v1/incidents/{id}/events`.
    async fn open(app: &TestApp, id: u64) -> EventStream {
        let response = app
            .router()
            .oneshot(
                Request::builder()
                    .uri(format!("/api/v1/incidents/{id}/events"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        EventStream {
            status: response.status(),
            content_type: response.headers().get(header::CONTENT_TYPE).cloned(),
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event: its name and its data as JSON.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let frame = self
                .body
                .frame()
                .await
                .expect("the stream goes on")
                .expect("a readable frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// Whether the stream has closed.
    async fn closed(&mut self) -> bool {
        self.body.frame().await.is_none()
    }
}

#[tokio::test]
async fn the_event_stream_sends_hypotheses_then_every_new_ranking_and_ends_on_merge() {
    let app = app_on(&chain()).await;
    let now = Utc::now().timestamp();
    fire(&app, &[("a", "HighLatency", now - 60)]).await;
    let mut events = EventStream::open(&app, 1).await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.content_type.as_ref().unwrap(), "text/event-stream");
    let (name, first) = events.next().await;
    assert_eq!(name, "hypotheses");
    assert_eq!(first["incident"], 1);
    let revision = first["revision"].as_u64().unwrap();

    fire(&app, &[("b", "HighLatency", now)]).await;
    let found = tokio::time::timeout(Duration::from_secs(1), async {
        let mut incident = None;
        loop {
            let (name, data) = events.next().await;
            match name.as_str() {
                "incident" => incident = Some(data),
                "hypotheses" if data["alert_count"] == 2 => return (data, incident),
                _ => {}
            }
        }
    })
    .await
    .expect("a new ranking within a second of the alert's 202");
    let (hypotheses, incident) = found;
    assert!(hypotheses["revision"].as_u64().unwrap() > revision);
    let incident = incident.expect("an incident event before the ranking it caused");
    assert_eq!(incident["alert_count"], 2);
    assert_eq!(incident["services"].as_array().unwrap().len(), 2);

    // Another incident far away, then an alert that joins both: incident 2 merges into 1,
    // and a stream of incident 2 ends.
    fire(&app, &[("e", "HighLatency", now)]).await;
    let mut second = EventStream::open(&app, 2).await;
    assert_eq!(second.next().await.0, "hypotheses");
    fire(&app, &[("d", "HighLatency", now)]).await;
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let (name, data) = second.next().await;
            if name == "end" {
                return data;
            }
        }
    })
    .await
    .expect("an end event");
    assert_eq!(end, json!({"incident": 2, "merged_into": 1}));
    assert!(second.closed().await, "the stream closes after end");
}

#[tokio::test]
async fn rankings_are_counted_timed_and_queued_in_the_metrics() {
    let app = app_on(&topology()).await;
    fire(&app, &[("api", "HighLatency", Utc::now().timestamp())]).await;
    app.hypotheses_covering(1, 1).await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("# TYPE rootcause_ranking_seconds histogram"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE rootcause_rankings_total counter"));
    assert!(metrics.contains("# TYPE rootcause_ranking_queue_depth gauge"));
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_gets_the_latest_state_not_an_error() {
    let app = app_on(&chain()).await;
    let now = Utc::now().timestamp();
    fire(&app, &[("a", "A0", now)]).await;
    let mut events = EventStream::open(&app, 1).await;
    assert_eq!(events.next().await.0, "hypotheses");
    // Far more changes than a subscriber may fall behind by, none of them read meanwhile.
    let alerts = 100;
    for i in 1..alerts {
        let name = format!("A{i}");
        fire(&app, &[("a", name.as_str(), now)]).await;
    }
    app.hypotheses_covering(1, alerts).await;
    let latest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut seen = 0;
        loop {
            let (name, data) = events.next().await;
            seen += 1;
            if name == "hypotheses" && data["alert_count"] == alerts {
                return seen;
            }
        }
    })
    .await
    .expect("the latest ranking arrives");
    assert!(
        latest < 64,
        "caught up with the latest state ({latest} events) instead of replaying every change"
    );
}
