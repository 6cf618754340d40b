//! `rootcause bench memory`: the server's resident memory as it retains firing alerts, and after
//! they resolve.
//!
//! A child `rootcause serve` of this binary serves a generated topology (the one `bench ranking`
//! uses) on a fresh SQLite store. Firing alerts (distinct label sets over every service, five
//! alert names, expiring in two hours so none ends by itself) are posted in batches to
//! `/api/v2/alerts` until each checkpoint is reached; then every one of them is resolved, and
//! the bench waits until the server has forgotten them: its engine remembers ended alerts for
//! `correlation.reopen_within_secs` and its ranking holds resolved incidents for
//! `ranking.hold_resolved_secs` (1,800 by default; 60 here, `--reopen-within-secs`), and this
//! server resolves quiet incidents after 10 s instead of 300. At each point, once the
//! server has correlated and ranked everything it was sent (its ingest and ranking queues are
//! empty and stay so) and its RSS has stopped falling, RSS is read from `/proc/<pid>/status`,
//! with the firing and remembered ended alerts it reports on `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta, Utc};
use clap::builder::RangedU64ValueParser;
use rootcause::telemetry::names;
use serde::Serialize;

use super::load::ALERT_NAMES;
use super::profile::series_total;
use super::ranking::GeneratedEstate;
use super::targets::{metrics, settle};

/// Parallel posts while filling.
const POSTERS: usize = 4;

/// The server's `correlation.resolve_after_secs` in this bench (default 300): its incidents
/// resolve, and can stop reopening, within minutes.
const RESOLVE_AFTER_SECS: u64 = 10;

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
    /// The server's `correlation.reopen_within_secs` and `ranking.hold_resolved_secs` (both
    /// 1,800 by default): how long its engine remembers ended alerts and its ranking holds
    /// resolved incidents, after which the bench reads RSS once more ("forgotten").
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=3_600))]
    pub reopen_within_secs: u64,
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
    /// Ended alerts its correlation engine remembers (`rootcause_alerts_ended_remembered`).
    pub remembered: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Of it, anonymous memory (the heap), bytes.
    pub anon_bytes: u64,
    /// Of it, pages of files mapped into memory (SQLite maps its database file), bytes: page
    /// cache the kernel reclaims under pressure.
    pub file_bytes: u64,
    /// Bytes in live heap allocations, as the server's allocator counts them
    /// (`rootcause_heap_allocated_bytes`).
    pub heap_allocated_bytes: u64,
    /// Bytes of physical memory the allocator holds (`rootcause_heap_resident_bytes`): the
    /// live allocations and what it keeps around them.
    pub heap_resident_bytes: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Services of the topology.
    pub services: usize,
    /// The server's `correlation.reopen_within_secs`.
    pub reopen_within_secs: u64,
    /// Readings in order: empty, each checkpoint, all resolved (ended alerts remembered), and
    /// forgotten (past the reopen window).
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
        // Below the server's idle timeout (http.header_read_timeout_secs, 30): a connection
        // reused as the server closes it would fail the request.
        .pool_idle_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()?;
    eprintln!("==> {} services", options.services);
    let settings = [
        (
            "ROOTCAUSE_CORRELATION__REOPEN_WITHIN_SECS",
            options.reopen_within_secs.to_string(),
        ),
        (
            "ROOTCAUSE_RANKING__HOLD_RESOLVED_SECS",
            options.reopen_within_secs.to_string(),
        ),
        (
            "ROOTCAUSE_CORRELATION__RESOLVE_AFTER_SECS",
            RESOLVE_AFTER_SECS.to_string(),
        ),
    ];
    let estate = GeneratedEstate::start_with(options.services, &client, &settings).await?;
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
    eprintln!(
        "    waiting for the server to forget them (reopen_within_secs and hold_resolved_secs = {})",
        options.reopen_within_secs
    );
    forgotten(&client, &base, options).await?;
    readings.push(read(&client, &base, pid, "forgotten").await?);

    let targets = targets(&readings, &options.alerts);
    Ok(MemoryReport {
        services: options.services,
        reopen_within_secs: options.reopen_within_secs,
        readings,
        targets,
    })
}

/// The targets, judged on the readings: ≤ 300 MB with 100,000 retained alerts, ≤ 300
/// bytes per retained alert beyond the first checkpoint, and, after resolution, back within
/// 25 % (above the empty server) of the first checkpoint's growth, plus 20 MB, once the server
/// has forgotten the resolved incidents (the last reading; until then it keeps them by design,
/// see [`remembered_cost`]).
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
            "after resolution, once the ended alerts are forgotten, RSS back near the empty \
             server's: {:.0} MB ({:.0} MB above it; the first checkpoint added {:.0} MB)",
            mb(after),
            mb(left),
            mb(first_growth)
        ),
        left as f64 <= 0.25 * first_growth as f64 + 20e6,
    ));
    out
}

/// What keeping resolved incidents for their windows costs (ended alerts remembered, incidents
/// held for ranking): RSS of the reading that remembers the most ended alerts above the last
/// (forgotten) reading, per remembered alert; `None` without such a reading.
fn remembered_cost(readings: &[Reading]) -> Option<(u64, f64)> {
    let last = readings.last()?;
    let most = readings.iter().max_by_key(|r| r.remembered)?;
    (most.remembered > 0 && last.remembered == 0).then(|| {
        let held = most.rss_bytes as f64 - last.rss_bytes as f64;
        (most.remembered, held / most.remembered as f64)
    })
}

fn render(report: &MemoryReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let empty = report.readings[0].rss_bytes;
    let _ = writeln!(
        out,
        "\nrootcause bench memory: {} services (generated topology), SQLite, server defaults but \
         correlation.reopen_within_secs and ranking.hold_resolved_secs = {} and \
         correlation.resolve_after_secs = {RESOLVE_AFTER_SECS}; RSS \
         from /proc/<pid>/status once the ingest and ranking queues are empty and RSS stopped \
         falling",
        report.services, report.reopen_within_secs
    );
    let _ = writeln!(
        out,
        "\n{:<16} {:>10} {:>12} {:>10} {:>16} {:>10} {:>10} {:>12} {:>12}",
        "STATE",
        "FIRING",
        "REMEMBERED",
        "RSS MB",
        "ABOVE EMPTY MB",
        "ANON MB",
        "FILE MB",
        "HEAP LIVE MB",
        "HEAP HELD MB"
    );
    for r in &report.readings {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>12} {:>10.1} {:>16.1} {:>10.1} {:>10.1} {:>12.1} {:>12.1}",
            r.state,
            r.firing,
            r.remembered,
            r.rss_bytes as f64 / 1e6,
            (r.rss_bytes as f64 - empty as f64) / 1e6,
            r.anon_bytes as f64 / 1e6,
            r.file_bytes as f64 / 1e6,
            r.heap_allocated_bytes as f64 / 1e6,
            r.heap_resident_bytes as f64 / 1e6
        );
    }
    if let Some((remembered, bytes)) = remembered_cost(&report.readings) {
        let cap = rootcause_correlation::Settings::default().max_remembered_ended;
        let _ = writeln!(
            out,
            "\nwhat resolved incidents keep for their windows: {remembered} ended alerts \
             remembered (at most correlation.max_remembered_ended, {cap}, for \
             correlation.reopen_within_secs, to recognise late deliveries and reopen resolved \
             incidents) and the incidents ranking holds (for ranking.hold_resolved_secs): \
             {bytes:.0} bytes per remembered alert"
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

/// Waits until the server's engine remembers no ended alert and its ranking holds no incident:
/// its incidents resolved (after [`RESOLVE_AFTER_SECS`] of quiet) and both windows passed.
async fn forgotten(
    client: &reqwest::Client,
    base: &str,
    options: &MemoryOptions,
) -> anyhow::Result<()> {
    let limit = Duration::from_secs(options.reopen_within_secs + RESOLVE_AFTER_SECS + 300);
    let started = Instant::now();
    loop {
        let text = metrics(client, base).await?;
        let remembered = series_total(&text, names::ALERTS_ENDED_REMEMBERED);
        let held = series_total(&text, names::RANKING_INCIDENTS_HELD);
        if remembered == 0.0 && held == 0.0 {
            eprintln!(
                "    forgotten after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!(
                "the server still remembers {remembered} ended alerts and holds {held} \
                 incidents for ranking {} s after they resolved",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Waits (at most a minute) until RSS holds still, moving less than 1 MB in 5 s: the allocator
/// gives freed memory back over a second or so (jemalloc's decay), and a server just started
/// is still computing its topology's structural risks (seconds at 10,000 services); a reading
/// taken at once would count the one and miss the other.
async fn settle_rss(pid: u32) -> anyhow::Result<()> {
    let mut last = status_bytes(pid, "VmRSS:")?;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = status_bytes(pid, "VmRSS:")?;
        if now.abs_diff(last) < 1_000_000 {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

async fn read(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    state: &str,
) -> anyhow::Result<Reading> {
    settle_rss(pid).await?;
    let text = metrics(client, base).await?;
    let field = |name: &str| status_bytes(pid, name);
    let reading = Reading {
        state: state.to_owned(),
        firing: series_total(&text, names::ALERTS_FIRING) as u64,
        remembered: series_total(&text, names::ALERTS_ENDED_REMEMBERED) as u64,
        rss_bytes: field("VmRSS:")?,
        anon_bytes: field("RssAnon:")?,
        file_bytes: field("RssFile:")? + field("RssShmem:")?,
        heap_allocated_bytes: series_total(&text, names::HEAP_ALLOCATED) as u64,
        heap_resident_bytes: series_total(&text, names::HEAP_RESIDENT) as u64,
    };
    eprintln!(
        "    {state}: {} firing, {} ended remembered, RSS {:.1} MB ({:.1} MB anonymous, heap \
         {:.1} MB live of {:.1} MB resident)",
        reading.firing,
        reading.remembered,
        reading.rss_bytes as f64 / 1e6,
        reading.anon_bytes as f64 / 1e6,
        reading.heap_allocated_bytes as f64 / 1e6,
        reading.heap_resident_bytes as f64 / 1e6
    );
    Ok(reading)
}

/// A field of `/proc/<pid>/status` given in kB, in bytes.
fn status_bytes(pid: u32, name: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .with_context(|| format!("no {name} in /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(state: &str, mb: u64) -> Reading {
        remembering(state, mb, 0)
    }

    fn remembering(state: &str, mb: u64, remembered: u64) -> Reading {
        Reading {
            state: state.to_owned(),
            firing: 0,
            remembered,
            rss_bytes: mb * 1_000_000,
            anon_bytes: mb * 1_000_000,
            file_bytes: 0,
            heap_allocated_bytes: mb * 1_000_000,
            heap_resident_bytes: mb * 1_000_000,
        }
    }

    #[test]
    fn targets_are_judged_from_the_readings() {
        // 60 MB empty, 200 at 100k, 380 at 1M (200 bytes per alert), 80 once forgotten.
        let readings = [
            reading("empty", 60),
            reading("100000 firing", 200),
            reading("1000000 firing", 380),
            remembering("all resolved", 300, 1_000_000),
            reading("forgotten", 80),
        ];
        let judged = targets(&readings, &[100_000, 1_000_000]);
        assert_eq!(judged.len(), 3);
        assert!(judged.iter().all(|(_, met)| *met), "{judged:?}");
        assert!(judged[1].0.ends_with(": 200"), "{}", judged[1].0);
        // Judged on the forgotten reading, not on the one that remembers by design: 80 - 60 =
        // 20 MB is within 25 % of the 140 MB the first checkpoint added plus 20 MB (55 MB);
        // 130 (70 MB above) is not.
        let mut kept = readings.clone();
        kept[4] = reading("forgotten", 130);
        assert!(!targets(&kept, &[100_000, 1_000_000])[2].1);
        // 700 bytes per alert and memory kept after resolution.
        let readings = [
            reading("empty", 60),
            reading("100000 firing", 320),
            reading("1000000 firing", 950),
            remembering("all resolved", 950, 1_000_000),
            reading("forgotten", 900),
        ];
        let judged = targets(&readings, &[100_000, 1_000_000]);
        assert!(judged.iter().all(|(_, met)| !*met), "{judged:?}");
    }

    #[test]
    fn the_cost_of_remembering_is_per_remembered_alert() {
        let readings = [
            reading("empty", 60),
            reading("100000 firing", 200),
            remembering("all resolved", 150, 1_000_000),
            reading("forgotten", 90),
        ];
        let (remembered, bytes) = remembered_cost(&readings).unwrap();
        assert_eq!(remembered, 1_000_000);
        assert!((bytes - 60.0).abs() < 1e-9, "{bytes}");
        // Nothing forgotten (the last reading still remembers): no figure.
        assert_eq!(remembered_cost(&readings[..3]), None);
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
