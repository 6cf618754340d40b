//! The console in headless Chromium (Debian's `chromium` and `chromium-driver`): a simulated
//! alert storm posted to the real binary, then a responder's path through the pages, with
//! screenshots at 1280 px and 390 px under the test's output directory
//! (`target/tmp/console-screenshots/`). Without Chromium the tests skip loudly, or fail under
//! `ROOTCAUSE_REQUIRE_E2E=1` (as in CI).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rootcause_datasets::simulator::{self, Fault, Options};
use rootcause_e2e::webdriver::Browser;
use rootcause_e2e::{Server, ServerOptions, run_cli};
use rootcause_models::case::Source;
use rootcause_topology::{Format, Topology};
use serde_json::{Value, json};

/// What a page gets wrong for keyboard and screen-reader users, and text whose contrast with
/// its background is below WCAG AA (4.5:1), as a list of sentences (empty when none). Our own
/// checks, not a full audit: labels, names, tab order, described images, contrast of HTML text.
const ACCESSIBILITY: &str = r#"
const problems = [];
for (const c of document.querySelectorAll("input, select, textarea")) {
  if (c.type === "hidden") continue;
  const labelled = c.closest("label") || c.getAttribute("aria-label") || (c.id && document.querySelector(`label[for="${c.id}"]`));
  if (!labelled) problems.push(`no label: ${c.outerHTML.slice(0, 80)}`);
}
for (const b of document.querySelectorAll("button, a[href]")) {
  if (!(b.textContent.trim() || b.getAttribute("aria-label"))) problems.push(`no name: ${b.outerHTML.slice(0, 80)}`);
}
for (const e of document.querySelectorAll("[tabindex]")) {
  if (Number(e.getAttribute("tabindex")) > 0) problems.push(`tabindex above 0: ${e.outerHTML.slice(0, 80)}`);
}
for (const g of document.querySelectorAll("svg[role=img]")) {
  if (!g.getAttribute("aria-label")) problems.push("an image without a description");
}
const channels = (css) => (css.match(/[\d.]+/g) || []).map(Number);
const luminance = ([r, g, b]) => {
  const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (element) => {
  for (let e = element; e; e = e.parentElement) {
    const c = channels(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
  }
  return channels(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
};
for (const e of document.querySelectorAll("main *, header *")) {
  if (e.closest("svg") || !e.checkVisibility()) continue;
  const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const [a, b] = [luminance(channels(getComputedStyle(e).color)), luminance(background(e))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}: "${e.textContent.trim().slice(0, 40)}" (${e.className})`);
}
return [...new Set(problems)];
"#;

/// An alert name a hostile or careless sender might use: it must render as text.
const HOSTILE: &str = "<script>window.__injected=1</script>";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

async fn browser() -> Option<Browser> {
    match Browser::start().await {
        Ok(browser) => Some(browser),
        Err(why) => {
            rootcause::testing::missing_component("Chromium and ChromeDriver", &why);
            None
        }
    }
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Posts one simulated CPU fault on the served topology (its alert storm through the
/// Alertmanager API, its metric windows to the incident) plus an alert with a hostile name;
/// returns the incident and the root cause.
async fn storm(server: &Server) -> (i64, String) {
    let document = server.get("/api/v1/topology").await.text().await.unwrap();
    let topology = Topology::parse(&document, Format::Json).expect("the served topology");
    let now = Utc::now().timestamp();
    let options = Options {
        cases: 1,
        seed: 5,
        start: now - 40 * 60,
        fault_mix: vec![(Fault::Cpu, 1.0)],
        silent_root: 0.0,
        missing_symptom: 0.0,
        noise_alerts: 0.0,
        noise_changes: 0.0,
        flapping: 0.0,
        ..Options::default()
    };
    let case = simulator::simulate(&topology, "online-boutique", &options).remove(0);
    let shift = now - 60 - case.anchor; // the onset a minute ago
    let mut alerts: Vec<Value> = case
        .alerts
        .iter()
        .map(|a| {
            json!({"labels": a.labels, "annotations": a.annotations,
                        "startsAt": rfc3339(a.starts_at + shift)})
        })
        .collect();
    alerts.push(
        json!({"labels": {"alertname": HOSTILE, "service": case.root_cause, "severity": "warning"},
                       "startsAt": rfc3339(now - 30)}),
    );
    let response = server.post("/api/v2/alerts", &Value::Array(alerts)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let incident = wait_for_incident(server, &case.root_cause).await;
    let series: Vec<Value> = case
        .series
        .iter()
        .filter(|s| s.source == Source::Metric)
        .map(|s| {
            let points: Vec<Value> = s
                .times
                .iter()
                .zip(&s.values)
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| json!([t + shift, v]))
                .collect();
            json!({"service": s.service, "name": s.name, "points": points})
        })
        .collect();
    let response = server
        .post(
            &format!("/api/v1/incidents/{incident}/metrics"),
            &json!({"series": series}),
        )
        .await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    (incident, case.root_cause)
}

async fn wait_for_incident(server: &Server, service: &str) -> i64 {
    let started = Instant::now();
    loop {
        let list: Value = server
            .get(&format!("/api/v1/incidents?status=open&service={service}"))
            .await
            .json()
            .await
            .unwrap();
        if let Some(id) = list["items"][0]["id"].as_i64() {
            return id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no incident on {service}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_responder_goes_from_an_alert_storm_to_an_approved_action_and_a_resolution() {
    let Some(browser) = browser().await else {
        return;
    };
    let server = Server::start(ServerOptions::default()).await;
    let (incident, root) = storm(&server).await;
    let shots = screenshots();

    // The list shows the incident live; open it from there.
    browser.goto(&format!("{}/", server.url)).await;
    let row = format!("tr[data-href='/incidents/{incident}'] a");
    browser.click(&browser.wait_for(&row).await).await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/incidents/{incident}"))
    );

    // The expected top hypothesis (the page follows the ranking live as the metrics land).
    let top = browser
        .wait_for_text("li.hypothesis.top .service", |t| t == root)
        .await;
    assert_eq!(top, root);
    // Its node highlighted on the map, and the calls of its propagation path.
    browser
        .wait_for(&format!("g.node.top[data-service='{root}']"))
        .await;
    // The root's callers alert, so the top hypothesis has a propagation path to them.
    browser.wait_for("li.hypothesis.top .path").await;
    assert!(
        !browser.find_all("polyline.call.on-path").await.is_empty(),
        "a path with no highlighted call"
    );
    // An evidence chart of the top hypothesis, its baseline shaded.
    browser
        .wait_for("li.hypothesis.top figure.chart polyline.series")
        .await;
    browser
        .wait_for("li.hypothesis.top figure.chart rect.baseline")
        .await;
    // The hostile alert name is text on the page, not a script that ran.
    let labels = browser
        .wait_for_text("code.label", |t| t.contains("<script>"))
        .await;
    assert!(labels.contains(HOSTILE), "{labels}");
    assert_eq!(
        browser
            .script("return window.__injected === undefined", json!([]))
            .await,
        json!(true)
    );
    browser
        .full_page_screenshot(&shots.join("incident-1280.png"), 1280)
        .await;
    // Usable without a mouse and legible, in the light scheme and the dark one.
    for dark in [false, true] {
        browser.prefer_dark(dark).await;
        let problems = browser.script(ACCESSIBILITY, json!([])).await;
        assert_eq!(problems, json!([]), "accessibility (dark: {dark})");
    }
    browser
        .screenshot(&shots.join("incident-1280-dark.png"))
        .await;
    browser.prefer_dark(false).await;
    // The check itself sees what it looks for.
    let planted = browser
        .script(
            &format!(
                "const p = document.createElement('p'); p.textContent = 'faint'; p.style.color = '#d0d0d0';\n\
                 document.querySelector('main').append(p, document.createElement('input'));\n{ACCESSIBILITY}"
            ),
            json!([]),
        )
        .await;
    let planted = planted.to_string();
    assert!(
        planted.contains("contrast") && planted.contains("faint") && planted.contains("no label"),
        "{planted}"
    );

    // Approve the first suggested action of the top hypothesis; the audit trail records it.
    let approve = browser
        .wait_for("li.hypothesis.top li.action button[data-post$='/approve']")
        .await;
    browser.click(&approve).await;
    let audited = browser
        .wait_for_text("#audit tr[data-kind='action_approved']", |t| {
            t.contains(&root)
        })
        .await;
    assert!(audited.contains("action_approved"), "{audited}");

    // Record the resolution (the form defaults to the top hypothesis and its fault type).
    let submit = browser
        .wait_for("#resolution form button[type=submit]")
        .await;
    browser.click(&submit).await;
    let recorded = browser
        .wait_for_text("#resolution p.resolved", |t| t.contains(&root))
        .await;
    assert!(recorded.contains("cpu"), "{recorded}");
    let stored: Value = server
        .get(&format!("/api/v1/incidents/{incident}/resolution"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["resolution"]["root_cause"],
        root.as_str(),
        "{stored}"
    );

    // The model page: the bundled model, active, with its figures and the learning curve.
    browser.goto(&format!("{}/models", server.url)).await;
    browser
        .wait_for("table.models tr[data-model] .badge.active")
        .await;
    browser.wait_for("figure.curve svg").await;
    browser.screenshot(&shots.join("models-1280.png")).await;

    // The stability report counts the incident just resolved, with its charts; the risks page
    // lists the estate's risks and scores. Both legible and labelled.
    browser.goto(&format!("{}/reports", server.url)).await;
    let figures = browser
        .wait_for_text("dl.report", |t| t.contains("AC@1"))
        .await;
    assert!(figures.contains("1 resolutions judged"), "{figures}");
    browser.wait_for("figure.daily svg rect").await;
    browser.wait_for("figure.bars td.bar svg rect").await;
    browser.screenshot(&shots.join("report-1280.png")).await;
    let problems = browser.script(ACCESSIBILITY, json!([])).await;
    assert_eq!(problems, json!([]), "accessibility of the report");
    browser.goto(&format!("{}/risks", server.url)).await;
    browser.wait_for("table.risk-parts tbody tr").await;
    browser.screenshot(&shots.join("risks-1280.png")).await;
    let problems = browser.script(ACCESSIBILITY, json!([])).await;
    assert_eq!(problems, json!([]), "accessibility of the risks page");

    // The topology page of the root cause, and the list, at 1280 px.
    browser
        .goto(&format!("{}/topology?service={root}", server.url))
        .await;
    browser
        .wait_for(&format!("g.node.top[data-service='{root}']"))
        .await;
    browser.screenshot(&shots.join("topology-1280.png")).await;
    browser.goto(&format!("{}/?status=any", server.url)).await;
    browser.wait_for(&row).await;
    browser.screenshot(&shots.join("incidents-1280.png")).await;

    // At phone width every page still reads: nothing wider than the screen but the map.
    browser.resize(390, 844).await;
    for (page, name) in [
        (format!("/incidents/{incident}"), "incident-390.png"),
        ("/?status=any".to_owned(), "incidents-390.png"),
    ] {
        browser.goto(&format!("{}{page}", server.url)).await;
        browser.wait_for("main h1").await;
        let overflow = browser
            .script(
                "return document.documentElement.scrollWidth - window.innerWidth",
                json!([]),
            )
            .await;
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{page} is {overflow} px wider than the screen"
        );
        browser.full_page_screenshot(&shots.join(name), 390).await;
    }
    browser.quit().await;
}

#[tokio::test]
async fn with_authentication_on_the_console_asks_for_a_token_once() {
    let Some(browser) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) = run_cli(&[
        "tokens",
        "create",
        "oncall",
        "--scopes",
        "read",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(status.success(), "{stderr}");
    let token = stdout.trim().to_owned();
    let server = Server::start(ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        env: vec![("ROOTCAUSE_AUTH__MODE".into(), "always".into())],
        ..ServerOptions::default()
    })
    .await;
    // Without a session: sent to sign in, and back to the page asked for afterwards.
    browser.goto(&format!("{}/models", server.url)).await;
    let field = browser.wait_for("#login #token").await;
    assert!(
        browser.url().await.contains("/login?next=/models"),
        "{}",
        browser.url().await
    );
    browser.type_into(&field, "rc_wrong").await;
    browser
        .click(&browser.wait_for("#login button[type=submit]").await)
        .await;
    browser
        .wait_for_text("#notice", |t| t.contains("401"))
        .await;
    browser
        .goto(&format!("{}/login?next=/models", server.url))
        .await;
    let field = browser.wait_for("#login #token").await;
    browser.type_into(&field, &token).await;
    browser
        .click(&browser.wait_for("#login button[type=submit]").await)
        .await;
    browser.wait_for_text("main h1", |t| t == "Models").await;
    // The session holds: other pages open without asking again; the token is not kept.
    browser.goto(&format!("{}/", server.url)).await;
    browser.wait_for_text("main h1", |t| t == "Incidents").await;
    let stored = browser
        .script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie", json!([]))
        .await;
    assert!(
        !stored.as_str().unwrap_or_default().contains(&token),
        "{stored}"
    );
    browser.quit().await;
}
