//! `rootcause bench console`: the server's time to render the console's pages for a large
//! incident.
//!
//! A generated topology of `--services` services (the shape `simulate --topology generated:N`
//! uses) is served by a child `rootcause serve` of this very binary on a fresh SQLite store. An
//! alert storm of `--alerts` distinct alerts over a datastore and its callers (the storm of
//! `bench ranking`) is posted in batches and joins one incident; once its ranking covers every
//! alert, each page is fetched `--requests` times after two warm-up fetches. The server's own
//! time comes from the `Server-Timing: render;dur=` header every console page carries (reading
//! the store, the ranking and the case, and rendering); the round trip is measured beside it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::ranking::{GeneratedEstate, storm};
use super::ranking_report::percentile;

/// Alerts per request of the storm.
const BATCH: usize = 500;
/// Longest the ranking may take to cover the storm.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The target for the incident page: server time at the 99th percentile.
const TARGET_MS: f64 = 300.0;

/// Options of `rootcause bench console`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleOptions {
    /// Services of the generated topology (at 100 the storm's incident spans 82 of them: more
    /// than the 50 the console's target names).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub services: usize,
    /// Distinct alerts in the incident.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub alerts: usize,
    /// Measured fetches of each page.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub requests: usize,
}

/// Runs the bench and prints its table.
pub fn console(options: &ConsoleOptions) -> anyhow::Result<()> {
    if options.services < 8 {
        bail!("--services: a generated topology needs at least 8 services");
    }
    super::report::runtime()?.block_on(measure(options))
}

async fn measure(options: &ConsoleOptions) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let estate = GeneratedEstate::start(options.services, &client).await?;
    let storm = storm(&estate.topology, options.alerts);
    let base = estate.server.base_url.clone();

    eprintln!("==> posting {} alerts in batches of {BATCH}", storm.len());
    let mut incident = None;
    for (b, batch) in storm.chunks(BATCH).enumerate() {
        let alerts: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, (service, name))| {
                json!({"service": service, "alertname": name, "severity": "critical",
                       "bench": (b * BATCH + i).to_string()})
            })
            .collect();
        let response = client
            .post(format!("{base}/api/v1/alerts"))
            .json(&json!({ "alerts": alerts }))
            .send()
            .await?;
        let status = response.status();
        let receipt: serde_json::Value = response.json().await.unwrap_or_default();
        if status.as_u16() != 202 {
            bail!("batch {b} answered {status}: {receipt}");
        }
        incident = incident.or(receipt["incidents"][0].as_u64());
    }
    let incident = incident.context("the storm made no incident")?;
    let started = Instant::now();
    let (alerts, services) = loop {
        let ranked: serde_json::Value = client
            .get(format!("{base}/api/v1/incidents/{incident}/hypotheses"))
            .send()
            .await?
            .json()
            .await?;
        let detail: serde_json::Value = client
            .get(format!("{base}/api/v1/incidents/{incident}"))
            .send()
            .await?
            .json()
            .await?;
        let covered = ranked["alert_count"].as_u64().unwrap_or(0);
        if covered as usize >= storm.len() {
            break (covered, detail["services"].as_array().map_or(0, Vec::len));
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            bail!(
                "the ranking covered {covered} of {} alerts after {SETTLE_TIMEOUT:?}",
                storm.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("    incident {incident}: {alerts} alerts over {services} services, ranked");

    let pages = [
        ("incident page", format!("/incidents/{incident}")),
        ("incident list", "/?status=any".to_owned()),
        ("topology", format!("/topology?service={}", storm[0].0)),
        ("models", "/models".to_owned()),
    ];
    let mut out = format!(
        "\nconsole pages, {} services, one incident of {alerts} alerts over {services} services ({} fetches each)\n\n{:<14}  {:>9}  {:>9}  {:>9}  {:>10}  {:>9}\n",
        options.services, options.requests, "PAGE", "SERVER P50", "P99", "MAX", "ROUND P50", "KB"
    );
    let mut incident_p99 = 0.0;
    for (name, path) in &pages {
        let mut server_ms = Vec::new();
        let mut round_ms = Vec::new();
        let mut bytes = 0;
        for i in 0..options.requests + 2 {
            let sent = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header("accept", "text/html")
                .send()
                .await?;
            let status = response.status();
            let timing = response
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("dur=").nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .context("a console page without Server-Timing")?;
            let body = response.bytes().await?;
            if !status.is_success() {
                bail!("{path} answered {status}");
            }
            if i >= 2 {
                server_ms.push(timing);
                round_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                bytes = body.len();
            }
        }
        let p99 = percentile(&server_ms, 0.99);
        if *name == "incident page" {
            incident_p99 = p99;
        }
        out.push_str(&format!(
            "{name:<14}  {:>9.1}  {:>9.1}  {:>9.1}  {:>10.1}  {:>9.0}\n",
            percentile(&server_ms, 0.5),
            p99,
            percentile(&server_ms, 1.0),
            percentile(&round_ms, 0.5),
            bytes as f64 / 1024.0
        ));
    }
    out.push_str(&format!(
        "\nSERVER: the page's Server-Timing (ms); ROUND: the client's round trip (ms).\n\
         target: incident page server p99 <= {TARGET_MS} ms: {} ({incident_p99:.1} ms)\n",
        if incident_p99 <= TARGET_MS {
            "met"
        } else {
            "NOT met"
        }
    ));
    print!("{out}");
    drop(estate);
    Ok(())
}
