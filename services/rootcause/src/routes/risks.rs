//! `GET /api/v1/risks`: the risks of the estate before anything fails: structural ones from the
//! current topology (`rootcause_topology::risks`), historical ones from the fault history
//! ([`crate::risk::history`]), the per-service risk scores, the critical windows open now and
//! what the next one exposes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{blocking, check_range, millis_of};
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::risk::overview::{RiskOverview, overview};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_risks))
}

/// What to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RiskQuery {
    /// RFC 3339 time the windows are read at (default: now): which are open, which is next.
    at: Option<String>,
    /// Most per-service scores listed, highest first (1 to 10,000, default 100).
    limit: Option<usize>,
}

/// Every risk of the estate, highest first: structural (single points of failure, critical
/// services and datastores with one replica and no fallback, the largest criticality-weighted
/// blast radii, dependency cycles, fan-in hot spots; once per topology version) and historical
/// (rising fault rates by the Laplace trend test with the Benjamini-Hochberg correction,
/// recurring root causes, actions that often failed, services whose changes often fail; read
/// from the store every `risk.refresh_secs` and after each resolution or import), each with a
/// score (0 to 1), a severity, the services concerned and why; the per-service risk score with
/// its parts; the business calendar's open windows and what the next one exposes.
#[utoipa::path(get, path = "/risks", tag = "topology", params(RiskQuery),
    responses((status = 200, description = "Highest first", body = RiskOverview),
              (status = 400, description = "Bad time or limit", body = ErrorBody)))]
async fn list_risks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RiskQuery>,
) -> Result<Json<RiskOverview>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    check_range("limit", limit, 1..=10_000)?;
    let at = millis_of("at", query.at.as_deref())?.unwrap_or_else(|| state.clock.now_millis());
    let current = state.topology.current();
    let risks = state.risks.clone();
    let list = blocking(move || {
        overview(
            current.version.id,
            current.structural_risks(),
            &risks.history(),
            risks.calendar(),
            at,
            limit,
        )
    })
    .await?;
    Ok(Json(list))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use rootcause_datasets::simulator::history::{HistoryPlan, generate};
    use serde_json::{Value, json};

    use super::super::tests::{app, app_config};
    use crate::config::{CalendarConfig, Config};

    #[tokio::test]
    async fn the_bundled_topology_has_its_front_end_as_the_first_structural_risk() {
        let app = app().await;
        let answer = app.get("/api/v1/risks").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let body = answer.json();
        assert_eq!(body["topology_version"], 1);
        let first = &body["items"][0];
        assert_eq!(first["kind"], "single_point_of_failure", "{body:#}");
        assert_eq!(first["services"][0], "frontend");
        assert_eq!(first["severity"], "critical");
        assert!(first["why"].as_str().unwrap().contains("only through it"));
        let kinds: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"blast_radius"), "{kinds:?}");
    }

    /// 90 days of simulated history on the bundled topology ending now: `cartservice`'s fault
    /// rate rising, `checkoutservice`'s changes risky, `restart` mostly failing.
    fn planted_history() -> (String, Value) {
        let topology = rootcause_topology::bundled::find("online-boutique")
            .unwrap()
            .topology();
        let history = generate(
            &topology,
            &HistoryPlan {
                days: 90,
                end: chrono::Utc::now().timestamp() - 3600,
                seed: 3,
                faults_per_week: 0.3,
                changes_per_week: 1.0,
                rising: vec!["cartservice".into()],
                risky_changes: vec!["checkoutservice".into()],
                failing_action: Some("restart".into()),
            },
        );
        let lines: Vec<String> = history
            .records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let changes: Vec<Value> = history
            .changes
            .iter()
            .map(|c| {
                json!({"service": c.service, "kind": c.kind, "description": c.description,
                       "at": super::super::tests::rfc3339(c.at)})
            })
            .collect();
        (lines.join("\n"), Value::Array(changes))
    }

    #[tokio::test]
    async fn planted_history_risks_are_listed_scored_and_a_risky_change_is_flagged_on_arrival() {
        let app = app().await;
        let (records, changes) = planted_history();
        let stored = app.post_json("/api/v1/changes", &changes).await;
        assert_eq!(stored.status, StatusCode::ACCEPTED, "{}", stored.text);
        let imported = app
            .post_as(
                "/api/v1/history?source=sim",
                "application/x-ndjson",
                &records,
            )
            .await;
        assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
        // The import re-read the history before answering.
        let body = app.get("/api/v1/risks").await.json();
        assert!(body["history_read_at"].is_string(), "{body:#}");
        let history: Vec<&Value> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["source"] == "history")
            .collect();
        let find = |kind: &str| -> Vec<String> {
            history
                .iter()
                .filter(|r| r["kind"] == kind)
                .map(|r| r["services"][0].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(find("rising_fault_rate"), ["cartservice"], "{body:#}");
        assert_eq!(find("risky_changes"), ["checkoutservice"], "{body:#}");
        let failing: Vec<&&Value> = history
            .iter()
            .filter(|r| r["kind"] == "failing_action")
            .collect();
        assert!(
            failing
                .iter()
                .any(|r| r["why"].as_str().unwrap().starts_with("restart")),
            "{body:#}"
        );
        let rising = history
            .iter()
            .find(|r| r["kind"] == "rising_fault_rate")
            .unwrap();
        assert!(rising["figures"]["q_value"].as_f64().unwrap() <= 0.05);
        // Scores with their parts.
        let cart = body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "cartservice")
            .unwrap();
        assert!(
            cart["parts"]["fault_trend"].as_f64().unwrap() > 0.0,
            "{cart:#}"
        );
        // A deploy to the risky service is flagged when it arrives; one to another is not.
        let answer = app
            .post_json(
                "/api/v1/changes",
                &json!([{"service": "checkoutservice", "kind": "deploy", "version": "v99"},
                        {"service": "adservice", "kind": "deploy", "version": "v99"}]),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        let items = &answer.json()["items"];
        assert_eq!(items[0]["risk"]["service"], "checkoutservice", "{items:#}");
        assert!(items[0]["risk"]["change_failure_rate"].as_f64().unwrap() >= 0.3);
        assert!(items[1].get("risk").is_none(), "{items:#}");
        // Exported on /metrics.
        let metrics = app.get("/metrics").await.text;
        assert!(
            metrics.contains("rootcause_service_risk_score{service=\"cartservice\"}"),
            "{metrics}"
        );
        assert!(app.get("/api/v1/risks?limit=0").await.status == StatusCode::BAD_REQUEST);
        assert!(app.get("/api/v1/risks?at=noon").await.status == StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn an_incident_inside_a_critical_window_has_its_priority_raised_and_the_window_named() {
        // A window open all day every day, concerning the cache only.
        let calendar: CalendarConfig = toml::from_str(
            r#"
            time_zone = "Asia/Shanghai"
            [[windows]]
            name = "all-day session"
            kind = "session"
            start = "00:00"
            end = "00:00"
            days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            services = ["redis-cart"]
            raise_priority = 2
            "#,
        )
        .unwrap();
        let app = app_config(Config {
            calendar,
            ..Config::default()
        })
        .await;
        let (id, ranking) = app.cache_failure("HighLatency").await;
        let incident = app.get(&format!("/api/v1/incidents/{id}")).await.json();
        let priority = &incident["priority"];
        assert_eq!(
            priority["window"]["name"], "all-day session",
            "{priority:#}"
        );
        assert_eq!(
            priority["level"].as_u64().unwrap(),
            priority["base"].as_u64().unwrap().saturating_sub(2).max(1)
        );
        assert_eq!(
            ranking["priority"], *priority,
            "the hypotheses carry it too"
        );
        let page = app
            .get_with(&format!("/incidents/{id}"), &[("accept", "text/html")])
            .await;
        assert!(
            page.text.contains("Raised from P") || page.text.contains("Already P1"),
            "{}",
            page.text
        );
        assert!(
            page.text.contains("during the all-day session"),
            "{}",
            page.text
        );
        let risks = app.get("/api/v1/risks").await.json();
        assert_eq!(risks["open_windows"][0]["name"], "all-day session");
        assert_eq!(risks["next_window"]["window"]["name"], "all-day session");
    }
}
