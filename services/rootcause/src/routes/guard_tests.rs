//! The hardening findings, each as a test that failed before the guard and the limits existed:
//! no access control, cross-site and rebinding requests, oversized or unstorable input, an empty
//! topology wiping the graph.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::tests::{TestApp, app, app_with, app_with_tokens};
use crate::auth::{Access, required_access};
use crate::config::HttpConfig;

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[tokio::test]
async fn every_route_declares_its_scope() {
    // Walks the API document (every handler is in it) and the table of scopes together: a new
    // route without a declared scope fails here, and is refused to everyone until it has one.
    let app = app().await;
    let spec = app.get("/api/v1/openapi.json").await.json();
    let mut missing = Vec::new();
    let mut count = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            count += 1;
            let method: Method = method.to_uppercase().parse().unwrap();
            if required_access(&method, path).is_none() {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(count > 40, "only {count} routes in the document");
    assert!(missing.is_empty(), "routes without a scope: {missing:?}");
    assert_eq!(
        required_access(&Method::GET, "/api/v1/openapi.json"),
        Some(Access::Public)
    );
}

#[tokio::test]
async fn without_a_token_nothing_but_health_answers_and_scopes_are_enforced() {
    let (app, secrets) = app_with_tokens(&[
        ("alertmanager", "ingest"),
        ("oncall", "respond"),
        ("ops-admin", "admin"),
    ])
    .await;
    let ingest = bearer(&secrets["alertmanager"]);
    let respond = bearer(&secrets["oncall"]);
    let admin = bearer(&secrets["ops-admin"]);

    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let anonymous = app.get("/api/v1/incidents").await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    assert_eq!(anonymous.json()["code"], "unauthorized");
    assert!(anonymous.headers.contains_key("www-authenticate"));
    let forged = app
        .get_with(
            "/api/v1/incidents",
            &[("authorization", "Bearer rc_not-a-token")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Replacing the runbooks without credentials was possible before.
    let replaced = app
        .put_as("/api/v1/runbooks", "application/yaml", "runbooks: []")
        .await;
    assert_eq!(replaced.status, StatusCode::UNAUTHORIZED);

    // An ingest token sends alerts but reads nothing.
    let alerts = json!([{"labels": {"alertname": "Down", "service": "cartservice"}}]);
    let sent = app
        .send(
            Method::POST,
            "/api/v2/alerts",
            &[
                ("content-type", "application/json"),
                ("authorization", &ingest),
            ],
            &alerts.to_string(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let read = app
        .get_with("/api/v1/incidents", &[("authorization", &ingest)])
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    assert_eq!(read.json()["code"], "insufficient_scope");

    // A responder reads and decides, but does not change the topology.
    let read = app
        .get_with("/api/v1/incidents", &[("authorization", &respond)])
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let emptied = app
        .send(
            Method::PUT,
            "/api/v1/topology?allow_empty=true",
            &[
                ("content-type", "application/json"),
                ("authorization", &respond),
            ],
            r#"{"services": []}"#,
        )
        .await;
    assert_eq!(emptied.status, StatusCode::FORBIDDEN);

    // Admins manage tokens; a revoked token stops working at once.
    let created = app
        .send(
            Method::POST,
            "/api/v1/tokens",
            &[
                ("content-type", "application/json"),
                ("authorization", &admin),
            ],
            r#"{"name": "dashboard", "scopes": ["read"]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let dashboard = bearer(created.json()["secret"].as_str().unwrap());
    let listed = app
        .get_with("/api/v1/tokens", &[("authorization", &admin)])
        .await;
    assert!(
        !listed.text.contains(&dashboard[7..]),
        "a listing shows no secret"
    );
    assert_eq!(listed.json().as_array().unwrap().len(), 4);
    assert_eq!(status_with(&app, &dashboard).await, StatusCode::OK);
    let revoked = app
        .send(
            Method::DELETE,
            "/api/v1/tokens/dashboard",
            &[("authorization", &admin)],
            "",
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status_with(&app, &dashboard).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.get_with("/api/v1/topology", &[("authorization", token)])
        .await
        .status
}

#[tokio::test]
async fn the_actor_of_a_decision_is_the_token_never_what_the_client_claims() {
    let (app, secrets) = app_with_tokens(&[("ops-admin", "admin")]).await;
    let admin = bearer(&secrets["ops-admin"]);
    let replaced = app
        .send(
            Method::PUT,
            "/api/v1/runbooks?actor=ciso@bank.example",
            &[
                ("content-type", "application/yaml"),
                ("authorization", &admin),
            ],
            "runbooks:\n  - id: restart\n    title: Restart it\n    risk: low\n    steps: [restart the pods]\n",
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    let audit = app
        .get_with("/api/v1/audit", &[("authorization", &admin)])
        .await
        .json();
    let actors = crate::testing::texts(&audit["items"], "actor");
    assert!(actors.contains(&"ops-admin"), "{audit}");
    assert!(!actors.contains(&"ciso@bank.example"), "{audit}");
}

#[tokio::test]
async fn cross_site_and_rebinding_requests_are_refused() {
    let app = app().await;
    // A body-less POST with no content type is what any web page can send: it started a
    // training job before.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| vec![("content-type", c)])
            .unwrap_or_default();
        let train = app
            .send(Method::POST, "/api/v1/models/train", &headers, "")
            .await;
        assert_eq!(
            train.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {}",
            train.text
        );
    }
    let jobs = app.get("/api/v1/models/jobs").await.json();
    assert_eq!(jobs["jobs"].as_array().map_or(0, Vec::len), 0, "{jobs}");

    // DNS rebinding: the browser still says the attacker's name in Host.
    let rebound = app
        .get_with("/api/v1/incidents", &[("host", "attacker.example:8080")])
        .await;
    assert_eq!(rebound.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(rebound.json()["code"], "unknown_host");
    let local = app
        .get_with("/api/v1/incidents", &[("host", "localhost:8080")])
        .await;
    assert_eq!(local.status, StatusCode::OK);

    // A page on another origin, even with a JSON body.
    let foreign = app
        .send(
            Method::POST,
            "/api/v1/changes",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
                ("content-type", "application/json"),
            ],
            r#"{"service": "cartservice", "kind": "deploy"}"#,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(foreign.json()["code"], "foreign_origin");
    let own = app
        .send(
            Method::POST,
            "/api/v1/changes",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                ("content-type", "application/json"),
            ],
            r#"{"service": "cartservice", "kind": "deploy"}"#,
        )
        .await;
    assert_eq!(own.status, StatusCode::ACCEPTED, "{}", own.text);
}

#[tokio::test]
async fn an_empty_topology_and_nul_characters_are_refused_with_their_reason() {
    let app = app().await;
    // `{}` wiped the graph and unmapped every later alert.
    let wiped = app.put_json("/api/v1/topology", &json!({})).await;
    assert_eq!(
        wiped.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wiped.text
    );
    assert_eq!(wiped.json()["code"], "empty_topology");
    let services = app.get("/api/v1/services").await.json();
    assert!(
        !services["items"].as_array().unwrap().is_empty(),
        "{services}"
    );
    let meant = app
        .put_json("/api/v1/topology?allow_empty=true", &json!({}))
        .await;
    assert_eq!(meant.status, StatusCode::CREATED, "{}", meant.text);

    // NUL in a change's description was a 500 on PostgreSQL.
    let nul = app
        .post_json(
            "/api/v1/changes",
            &json!({"service": "cartservice", "kind": "deploy", "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(nul.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", nul.text);
    assert_eq!(nul.problem_paths(), ["description"]);
}

#[tokio::test]
async fn responses_are_capped_in_bytes_and_page_on() {
    // Before: `GET /api/v1/incidents/1` returned 629 MB, capped by rows, not bytes.
    let app = app_with(HttpConfig {
        max_response_bytes: 40_000,
        ..HttpConfig::default()
    })
    .await;
    let alerts: Vec<_> = (0..20)
        .map(|i| {
            json!({"labels": {"alertname": format!("Big{i}"), "service": "cartservice"},
                   "annotations": {"description": "d".repeat(10_000)}})
        })
        .collect();
    let sent = app.post_json("/api/v2/alerts", &json!(alerts)).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);

    let mut seen = 0;
    let mut pages = 0;
    let mut uri = "/api/v1/alerts?limit=1000".to_owned();
    loop {
        let page = app.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.text.len() < 60_000,
            "a page of {} bytes",
            page.text.len()
        );
        let body = page.json();
        seen += body["items"].as_array().unwrap().len();
        pages += 1;
        match body["next_before"].as_i64() {
            Some(before) => uri = format!("/api/v1/alerts?limit=1000&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, 20, "every alert on some page");
    assert!(pages >= 5, "{pages} pages");

    let incident = app.get("/api/v1/incidents/1").await;
    assert!(
        incident.text.len() < 60_000,
        "{} bytes",
        incident.text.len()
    );
    assert_eq!(incident.json()["alerts_truncated"], true);
}

/// The `rootcause_session=…` pair of an answer's `Set-Cookie`, to send back as a browser would.
fn session_of(answer: &super::tests::Answer) -> String {
    let set = answer.headers["set-cookie"].to_str().unwrap();
    let pair = set.split(';').next().unwrap();
    assert!(pair.starts_with("rootcause_session="), "{set}");
    pair.to_owned()
}

#[tokio::test]
async fn a_browser_trades_its_token_for_a_same_site_session_cookie_once() {
    let (app, secrets) = app_with_tokens(&[
        ("console-reader", "read"),
        ("oncall", "respond"),
        ("alertmanager", "ingest"),
        ("ops-admin", "admin"),
    ])
    .await;
    // Opens a session with the credential `(header, value)` sends.
    let open = |(header, value): (&'static str, String)| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/session",
                &[(header, &value), ("content-type", "application/json")],
                "",
            )
            .await
        }
    };
    let as_token = |secret: &str| ("authorization", bearer(secret));

    let opened = open(as_token(&secrets["console-reader"])).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    assert_eq!(opened.json()["name"], "console-reader");
    let set = opened.headers["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains(&secrets["console-reader"]),
        "the token is not the cookie"
    );
    let cookie = format!("theme=dark; {}", session_of(&opened));

    // The cookie stands for the token: it reads, and only what the token may.
    let read = app
        .get_with("/api/v1/incidents", &[("cookie", &cookie)])
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let admin_only = app.get_with("/api/v1/tokens", &[("cookie", &cookie)]).await;
    assert_eq!(admin_only.status, StatusCode::FORBIDDEN);
    // A form posted from another site carries no content type a browser would preflight: refused
    // even with a responder's cookie (which SameSite=Strict keeps from such a request anyway).
    let responder = session_of(&open(as_token(&secrets["oncall"])).await);
    let form = app
        .send(
            Method::POST,
            "/api/v1/incidents/1/actions/restart/approve",
            &[("cookie", &responder), ("content-type", "text/plain")],
            "",
        )
        .await;
    assert_eq!(
        form.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        form.text
    );

    // A session cannot open another; an ingest token cannot open one; a forged one is refused.
    let from_cookie = open(("cookie", cookie.clone())).await;
    assert_eq!(
        from_cookie.status,
        StatusCode::BAD_REQUEST,
        "{}",
        from_cookie.text
    );
    assert_eq!(from_cookie.json()["code"], "bearer_required");
    let ingest = open(as_token(&secrets["alertmanager"])).await;
    assert_eq!(ingest.status, StatusCode::FORBIDDEN, "{}", ingest.text);
    let forged = app
        .get_with(
            "/api/v1/incidents",
            &[("cookie", "rootcause_session=rc_forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Closing the session ends it and clears the cookie.
    let closed = app
        .send(
            Method::DELETE,
            "/api/v1/session",
            &[("cookie", &cookie)],
            "",
        )
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT);
    assert!(
        closed.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = app
        .get_with("/api/v1/incidents", &[("cookie", &cookie)])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);

    // Revoking the token ends every session it opened.
    let cookie = session_of(&open(as_token(&secrets["console-reader"])).await);
    let admin = bearer(&secrets["ops-admin"]);
    let revoked = app
        .send(
            Method::DELETE,
            "/api/v1/tokens/console-reader",
            &[("authorization", &admin)],
            "",
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let after = app
        .get_with("/api/v1/incidents", &[("cookie", &cookie)])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
}

#[tokio::test]
async fn without_authentication_there_is_no_session_to_open() {
    let app = app().await;
    let opened = app
        .send(
            Method::POST,
            "/api/v1/session",
            &[
                ("authorization", "Bearer rc_anything"),
                ("content-type", "application/json"),
            ],
            "",
        )
        .await;
    assert_eq!(opened.status, StatusCode::CONFLICT, "{}", opened.text);
    assert_eq!(opened.json()["code"], "auth_off");
}
