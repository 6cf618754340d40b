//! `rootcause bench memory`: the server's resident memory as it retains firing alerts, and after
//! they resolve.
//!
//! A child `rootcause serve` of this binary serves a generated topology (the one `bench ranking`
//! uses) on a fresh SQLite store. Firing alerts (distinct label sets over every service, five
//! alert names, expiring in two hours so none ends by itself) are posted in batches to
//! `/api/v2/alerts` until each checkpoint is reached; then every one of them is resolved. At
//! each point, once the server has correlated and ranked everything it was sent (its ingest and
//! ranking queues are empty and stay so), its RSS is read from `/proc/<pid>/status`, with the
//! firing alerts it reports on `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta, Utc};
use clap::builder::RangedU64ValueParser;
use serde::Serialize;

use super::load::ALERT_NAMES;
use super::profile::series_total;
use super::ranking::GeneratedEstate;
use super::targets::{metrics, settle};

/// Parallel posts while filling.
const POSTERS: usize = 4;

/// Options of `rootcause bench memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct MemoryOptions {
    /// Services of the generated topology.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = RangedU64ValueParser::<usize>::new().range(8..=100_000))]
    pub services: usize,
    /// Retained firing alerts at which RSS is read, comma-separated, increasing.
    #[arg(long, value_name = "N,...", value_delimiter = ',',
          default_values_t = [100_000, 1_000_000])]
    pub alerts: Vec<usize>,
    /// Alerts per request.
    #[arg(long, value_name = "N", default_value_t = 5_000,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub batch: usize,
    /// Where the report goes.
    #[command(flatten)]
    pub output: super::report::ReportOutput,
}

/// One reading.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    /// What the server holds at that point.
    pub state: String,
    /// Firing alerts the server reports (`rootcause_alerts_firing`).
    pub firing: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Of it, anonymous memory (the heap), bytes.
    pub anon_bytes: u64,
    /// Of it, pages of files mapped into memory (SQLite maps its database file), bytes: page
    /// cache the kernel reclaims under pressure.
    pub file_bytes: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Services of the topology.
    pub services: usize,
    /// Readings in order: empty, each checkpoint, after resolution.
    pub readings: Vec<Reading>,
    /// Targets and whether each was met.
    pub targets: Vec<(String, bool)>,
}

/// Runs `rootcause bench memory` and prints the table (or JSON).
pub fn memory(options: &MemoryOptions) -> anyhow::Result<()> {
    if options.alerts.is_empty() || options.alerts.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--alerts: give one or more increasing counts");
    }
    let runtime = super::report::runtime()?;
    let report = runtime.block_on(run(options))?;
    super::report::emit(&report, || render(&report), &options.output)
}

async fn run(options: &MemoryOptions) -> anyhow::Result<MemoryReport> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(POSTERS)
        .timeout(Duration::from_secs(120))
        .build()?;
    eprintln!("==> {} services", options.services);
    let estate = GeneratedEstate::start(options.services, &client).await?;
    let services: Vec<String> = {
        let mut names: Vec<String> = estate.topology.services().map(|s| s.name.clone()).collect();
        names.sort();
        names
    };
    let base = estate.server.base_url.clone();
    let pid = estate.server.pid();
    let mut readings = Vec::new();
    settle(&client, &base).await?;
    readings.push(read(&client, &base, pid, "empty").await?);

    let starts_at = Utc::now();
    let mut sent = 0;
    for &checkpoint in &options.alerts {
        eprintln!("    posting firing alerts up to {checkpoint}");
        let started = Instant::now();
        post_range(&client, &base, sent..checkpoint, options.batch, &|i| {
            alert(&services, i, starts_at, starts_at + TimeDelta::hours(2))
        })
        .await?;
        eprintln!(
            "    {} alerts in {:.1} s",
            checkpoint - sent,
            started.elapsed().as_secs_f64()
        );
        sent = checkpoint;
        settle(&client, &base).await?;
        readings.push(read(&client, &base, pid, &format!("{checkpoint} firing")).await?);
    }
    eprintln!("    resolving all {sent}");
    let ended_at = Utc::now();
    post_range(&client, &base, 0..sent, options.batch, &|i| {
        alert(&services, i, starts_at, ended_at)
    })
    .await?;
    settle(&client, &base).await?;
    readings.push(read(&client, &base, pid, "all resolved").await?);

    let targets = targets(&readings, &options.alerts);
    Ok(MemoryReport {
        services: options.services,
        readings,
        targets,
    })
}

/// The targets, judged on the readings: ≤ 300 MB with 100,000 retained alerts, ≤ 300
/// bytes per retained alert beyond the first checkpoint, and back within 25 % (above the empty
/// server) of the first checkpoint's growth after resolution.
fn targets(readings: &[Reading], checkpoints: &[usize]) -> Vec<(String, bool)> {
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let mut out = Vec::new();
    let empty = readings[0].rss_bytes;
    if let Some(i) = checkpoints.iter().position(|&c| c == 100_000) {
        let rss = readings[1 + i].rss_bytes;
        out.push((
            format!(
                "RSS with 100,000 retained alerts <= 300 MB: {:.0} MB",
                mb(rss)
            ),
            mb(rss) <= 300.0,
        ));
    }
    if checkpoints.len() >= 2 {
        let (first, last) = (checkpoints[0], checkpoints[checkpoints.len() - 1]);
        let grew = readings[checkpoints.len()].rss_bytes as f64 - readings[1].rss_bytes as f64;
        let per_alert = grew / (last - first) as f64;
        out.push((
            format!("bytes per retained alert from {first} to {last} <= 300: {per_alert:.0}"),
            per_alert <= 300.0,
        ));
    }
    let after = readings[readings.len() - 1].rss_bytes;
    let first_growth = readings[1].rss_bytes.saturating_sub(empty);
    let left = after.saturating_sub(empty);
    out.push((
        format!(
            "after resolution, RSS back near the empty server's: {:.0} MB ({:.0} MB above it; \
             the first checkpoint added {:.0} MB)",
            mb(after),
            mb(left),
            mb(first_growth)
        ),
        left as f64 <= 0.25 * first_growth as f64 + 20e6,
    ));
    out
}

fn render(report: &MemoryReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let empty = report.readings[0].rss_bytes;
    let _ = writeln!(
        out,
        "\nrootcause bench memory: {} services (generated topology), SQLite, server defaults; \
         RSS from /proc/<pid>/status once the ingest and ranking queues are empty",
        report.services
    );
    let _ = writeln!(
        out,
        "\n{:<22} {:>12} {:>10} {:>16} {:>10} {:>10}",
        "STATE", "FIRING", "RSS MB", "ABOVE EMPTY MB", "ANON MB", "FILE MB"
    );
    for r in &report.readings {
        let _ = writeln!(
            out,
            "{:<22} {:>12} {:>10.1} {:>16.1} {:>10.1} {:>10.1}",
            r.state,
            r.firing,
            r.rss_bytes as f64 / 1e6,
            (r.rss_bytes as f64 - empty as f64) / 1e6,
            r.anon_bytes as f64 / 1e6,
            r.file_bytes as f64 / 1e6
        );
    }
    let _ = writeln!(out, "\ntargets:");
    for (text, met) in &report.targets {
        let _ = writeln!(out, "  {text}: {}", if *met { "met" } else { "NOT met" });
    }
    out
}

/// The labels of alert `i`: a service of the estate (every one in turn), one of five names, and
/// a label that makes the set distinct.
fn labels(services: &[String], i: usize) -> serde_json::Value {
    serde_json::json!({
        "alertname": ALERT_NAMES[i % ALERT_NAMES.len()],
        "service": services[i % services.len()],
        "severity": if i.is_multiple_of(7) { "critical" } else { "warning" },
        "instance": format!("pod-{i}"),
    })
}

/// Alert `i` as Alertmanager's API takes it, started at `starts_at`, ending at `ends_at` (in
/// the past: resolved; in the future: firing until then).
fn alert(
    services: &[String],
    i: usize,
    starts_at: chrono::DateTime<Utc>,
    ends_at: chrono::DateTime<Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "labels": labels(services, i),
        "annotations": {"summary": "memory bench"},
        "startsAt": starts_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "endsAt": ends_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// Posts alerts `range` (made by `alert`) in batches, [`POSTERS`] requests at a time.
async fn post_range(
    client: &reqwest::Client,
    base: &str,
    range: std::ops::Range<usize>,
    batch: usize,
    alert: &(dyn Fn(usize) -> serde_json::Value + Sync),
) -> anyhow::Result<()> {
    let url = format!("{base}/api/v2/alerts");
    let starts: Vec<usize> = range.clone().step_by(batch).collect();
    for group in starts.chunks(POSTERS) {
        let posts: Vec<_> = group
            .iter()
            .map(|&from| {
                let to = (from + batch).min(range.end);
                let body = serde_json::Value::Array((from..to).map(alert).collect()).to_string();
                tokio::spawn(post(client.clone(), url.clone(), body, from..to))
            })
            .collect();
        for post in posts {
            post.await.context("a post task failed")??;
        }
    }
    Ok(())
}

async fn post(
    client: reqwest::Client,
    url: String,
    body: String,
    alerts: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .context("a post failed")?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("alerts {alerts:?} answered {status}: {text}");
    }
    Ok(())
}

async fn read(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    state: &str,
) -> anyhow::Result<Reading> {
    let text = metrics(client, base).await?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    let reading = Reading {
        state: state.to_owned(),
        firing: series_total(&text, "rootcause_alerts_firing") as u64,
        rss_bytes: field("VmRSS:")?,
        anon_bytes: field("RssAnon:")?,
        file_bytes: field("RssFile:")? + field("RssShmem:")?,
    };
    eprintln!(
        "    {state}: {} firing, RSS {:.1} MB ({:.1} MB anonymous)",
        reading.firing,
        reading.rss_bytes as f64 / 1e6,
        reading.anon_bytes as f64 / 1e6
    );
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(state: &str, mb: u64) -> Reading {
        Reading {
            state: state.to_owned(),
            firing: 0,
            rss_bytes: mb * 1_000_000,
            anon_bytes: mb * 1_000_000,
            file_bytes: 0,
        }
    }

    #[test]
    fn targets_are_judged_from_the_readings() {
        // 60 MB empty, 200 at 100k, 380 at 1M (200 bytes per alert), 80 after resolution.
        let readings = [
            reading("empty", 60),
            reading("100000 firing", 200),
            reading("1000000 firing", 380),
            reading("all resolved", 80),
        ];
        let judged = targets(&readings, &[100_000, 1_000_000]);
        assert_eq!(judged.len(), 3);
        assert!(judged.iter().all(|(_, met)| *met), "{judged:?}");
        assert!(judged[1].0.ends_with(": 200"), "{}", judged[1].0);
        // 700 bytes per alert and memory kept after resolution.
        let readings = [
            reading("empty", 60),
            reading("100000 firing", 320),
            reading("1000000 firing", 950),
            reading("all resolved", 900),
        ];
        let judged = targets(&readings, &[100_000, 1_000_000]);
        assert!(judged.iter().all(|(_, met)| !*met), "{judged:?}");
    }

    #[test]
    fn alerts_are_distinct_and_cover_every_service() {
        let services: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        let all: std::collections::HashSet<String> =
            (0..100).map(|i| labels(&services, i).to_string()).collect();
        assert_eq!(all.len(), 100);
        let covered: std::collections::HashSet<String> = (0..100)
            .map(|i| labels(&services, i)["service"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(covered.len(), 10);
    }
}
