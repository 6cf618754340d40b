//! The console's pages through the real router, without a browser (the end-to-end suite drives
//! them in Chromium): what they show, what they refuse, how they answer without a session.

use axum::http::StatusCode;
use serde_json::json;

use super::tests::{app, app_with_tokens};

const HTML: (&str, &str) = ("accept", "text/html");

#[tokio::test]
async fn an_incident_renders_with_its_ranking_and_hostile_labels_as_text() {
    let app = app().await;
    let (id, _) = app.cache_failure("<img src=x onerror=alert(1)>").await;

    let page = app.get_with(&format!("/incidents/{id}"), &[HTML]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let timing = page.headers["server-timing"].to_str().unwrap();
    assert!(timing.starts_with("render;dur="), "{timing}");
    assert!(
        page.text
            .contains("class=\"hypothesis top\" data-service=\"redis-cart\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-service=\"redis-cart\""));
    assert!(
        page.text
            .contains(&format!("data-post=\"/api/v1/incidents/{id}/feedback\""))
    );
    assert!(
        !page.text.contains("<img src=x"),
        "a label reached the page unescaped"
    );
    assert!(page.text.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The list shows it with its top hypothesis.
    let list = app.get_with("/", &[HTML]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.text
            .contains(&format!("data-href=\"/incidents/{id}\"")),
        "{}",
        list.text
    );
    assert!(
        list.text
            .contains("<strong class=\"service\">redis-cart</strong>")
    );
    // Filters: a service the incident does not touch empties the list; a bad status is a 400.
    let filtered = app.get_with("/?service=emailservice", &[HTML]).await;
    assert!(!filtered.text.contains("data-href"), "{}", filtered.text);
    assert_eq!(
        app.get_with("/?status=burning", &[HTML]).await.status,
        StatusCode::BAD_REQUEST
    );
    // Teams come from the topology: the cache's team sees the incident, another team does not.
    let put = app
        .put_json(
            "/api/v1/services/redis-cart",
            &json!({"name": "redis-cart", "kind": "cache", "team": "data"}),
        )
        .await;
    assert!(put.status.is_success(), "{}", put.text);
    let data = app.get_with("/?team=data", &[HTML]).await;
    assert!(
        data.text
            .contains(&format!("data-href=\"/incidents/{id}\"")),
        "{}",
        data.text
    );
    let web = app.get_with("/?team=web", &[HTML]).await;
    assert!(!web.text.contains("data-href"), "{}", web.text);
}

#[tokio::test]
async fn missing_pages_are_html_404s_and_the_assets_are_served() {
    let app = app().await;
    for path in [
        "/incidents/999",
        "/incidents/-1",
        "/incidents/x",
        "/console/assets/nope.js",
    ] {
        let page = app.get_with(path, &[HTML]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.text.starts_with("<!DOCTYPE html>"),
            "{path}: {}",
            page.text
        );
    }
    assert_eq!(
        app.get_with("/topology?service=no-such", &[HTML])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let script = app.get("/console/assets/console.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn without_a_session_a_browser_is_sent_to_sign_in_and_an_api_client_gets_401() {
    let (app, secrets) = app_with_tokens(&[("reader", "read")]).await;
    let page = app.get_with("/incidents/3?all=1", &[HTML]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers["location"],
        "/login?next=/incidents/3%3Fall%3D1"
    );
    // Not a browser opening a page: the API's answer.
    let plain = app.get("/").await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);
    assert_eq!(plain.json()["code"], "unauthorized");
    // The sign-in page and the assets need nothing; the sign-in page never sends anyone away.
    let login = app.get_with("/login?next=//evil.example/x", &[HTML]).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains("data-next=\"/\""), "{}", login.text);
    assert_eq!(
        app.get("/console/assets/console.css").await.status,
        StatusCode::OK
    );
    // With the reader's token the pages answer.
    let bearer = format!("Bearer {}", secrets["reader"]);
    for path in ["/", "/topology", "/models", "/risks", "/reports"] {
        let page = app
            .get_with(path, &[HTML, ("authorization", &bearer)])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    // The topology overview lists the structural risks, the front end first.
    let overview = app
        .get_with("/topology", &[HTML, ("authorization", &bearer)])
        .await;
    let risks = overview
        .text
        .split("class=\"risks\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        risks.contains("single point of failure"),
        "{}",
        overview.text
    );
    assert!(
        risks.find("frontend").unwrap_or(usize::MAX) < risks.find("blast radius").unwrap_or(0),
        "{risks}"
    );
}

#[tokio::test]
async fn a_merged_incident_leads_to_its_survivor() {
    let app = app().await;
    let fire = async |service: &str| {
        let answer = app
            .post_json(
                "/api/v1/alerts",
                &json!({"alerts": [{"service": service, "alertname": "Down"}]}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        answer.json()["incidents"][0].as_i64().unwrap()
    };
    // Three calls apart, then joined by the service between them.
    let first = fire("redis-cart").await;
    let second = fire("emailservice").await;
    assert_ne!(first, second, "far apart: two incidents");
    assert_eq!(fire("checkoutservice").await, first);
    let page = app.get_with(&format!("/incidents/{second}"), &[HTML]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert_eq!(
        page.headers["location"],
        format!("/incidents/{first}").as_str()
    );
}

#[tokio::test]
async fn the_report_page_charts_a_resolved_incident_and_the_risks_page_lists_scores() {
    let app = app().await;
    let (id, ranking) = app.cache_failure("HighLatency").await;
    let top = ranking["hypotheses"][0]["service"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolved = app
        .post_json(
            &format!("/api/v1/incidents/{id}/resolution"),
            &json!({"root_cause": top, "fault_type": "memory", "action": "restart",
                    "worked": true, "time_to_mitigate_s": 600.0}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::CREATED, "{}", resolved.text);
    let report = app.get_with("/reports?days=7", &[HTML]).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert!(
        report.text.contains("10.0 min mean"),
        "MTTR: {}",
        report.text
    );
    assert!(
        report.text.contains("Incidents per day: 1 in all"),
        "{}",
        report.text
    );
    // A bar per service of the incident; the cache's is there.
    assert!(
        report.text.contains("<th scope=\"row\">redis-cart</th>"),
        "{}",
        report.text
    );
    for bad in ["/reports?days=0", "/reports?days=week"] {
        assert_eq!(
            app.get_with(bad, &[HTML]).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let risks = app.get_with("/risks", &[HTML]).await;
    assert_eq!(risks.status, StatusCode::OK, "{}", risks.text);
    // The front end is the bundled topology's single point of failure: the top score.
    let table = risks.text.split("risk-parts").nth(1).unwrap_or_default();
    assert!(table.contains("frontend"), "{}", risks.text);
    assert!(risks.text.contains("No business calendar is configured"));
    // A service's page shows its score with its parts.
    let frontend = app.get_with("/topology?service=frontend", &[HTML]).await;
    assert!(frontend.text.contains("Risk score"), "{}", frontend.text);
    assert!(
        frontend.text.contains("is a single point of failure"),
        "{}",
        frontend.text
    );
}
