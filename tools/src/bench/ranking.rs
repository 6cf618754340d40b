//! `rootcause bench ranking`: how long after an alert is acknowledged its incident's ranked
//! hypotheses reflect it.
//!
//! For each topology size, a generated topology ([`rootcause_datasets::synthetic`], the shape
//! `rootcause simulate --topology generated:N` uses) is served by a child `rootcause serve` of
//! this very binary on a fresh SQLite store, with the default ranking settings. An alert storm
//! then arrives the way a failing database causes one: the database alerts first, then its
//! callers, then their callers (breadth first, so every alert joins the one incident). Alerts
//! are sent one per request, each after the previous one's 202. A listener on the incident's
//! event stream notes when each `hypotheses` event arrives and which `alert_count` it covers;
//! an alert's latency is the time from its 202 to the first event covering it (0 when that event
//! came first: ranking starts when the alert is committed, before the answer is sent).
//!
//! This is repeated for `--rounds` rounds, each size on a fresh server in every round (a new
//! incident, as the first one was) and the sizes' order rotated every round (the `rounds`
//! module says why); the report gives each figure's median over the rounds with its spread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ranking_report::{RankingReport, RankingSettings, Row, SizeReport, render};
use super::rounds::schedule;
use super::targets::{Server, free_address, serve_command};
use anyhow::{Context, bail};
use clap::builder::RangedU64ValueParser;
use rootcause_datasets::synthetic::{self, Shape};
use rootcause_topology::{ServiceKind, Topology, to_json};
use serde_json::json;

/// Longest the last alert's hypotheses may take before the run counts as failed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of an event read for its name and the envelope's fields (`alert_count`, `ranked_at`),
/// which come before its hypotheses.
const EVENT_HEAD: usize = 1024;
/// Seed of the generated topologies.
const SEED: u64 = 7;
/// Alert names of the storm: the database's own, then its callers'.
const ROOT_ALERT: &str = "DatabaseDown";
const CALLER_ALERTS: [&str; 3] = ["HighLatency", "HighErrorRate", "RequestQueueSaturated"];

/// Options of `rootcause bench ranking`.
#[derive(Debug, Clone, clap::Args)]
pub struct RankingOptions {
    /// Topology sizes to measure, comma-separated.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_values_t = [1000, 10000])]
    pub services: Vec<usize>,
    /// Alerts in the storm (sent one per request).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub alerts: usize,
    /// Pause between an alert's 202 and the next alert (0: back to back).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub interval_ms: u64,
    /// Rounds: in each, every size is measured once on a fresh server, the order rotated by
    /// one size every round.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100))]
    pub rounds: usize,
    /// Alerts that join the storm's incident before the storm (distinct occurrences of the
    /// storm's alert names on its services, posted in batches): time to hypothesis for an
    /// incident that already holds this many.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=10_000_000))]
    pub preload: usize,
    /// Exit non-zero when the median over the rounds of any size's p99 latency exceeds this.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// Where the report goes.
    #[command(flatten)]
    pub output: super::report::ReportOutput,
}

/// Runs `rootcause bench ranking`: every round, every size in turn (progress on stderr), then
/// the report on stdout and in `--json-out`. Fails after the report when `--max-p99-ms` is
/// exceeded.
pub fn ranking(options: &RankingOptions) -> anyhow::Result<()> {
    if options.services.iter().any(|&n| n < 8) {
        bail!("--services: a generated topology needs at least 8 services");
    }
    let runtime = super::report::runtime()?;
    let order = schedule(options.services.len(), options.rounds);
    let mut rounds = vec![Vec::new(); options.services.len()];
    let mut latencies = vec![Vec::new(); options.services.len()];
    for (round, sizes) in order.iter().enumerate() {
        eprintln!("==> round {}/{}", round + 1, options.rounds);
        for (position, &index) in sizes.iter().enumerate() {
            let services = options.services[index];
            eprintln!("==> {services} services, {} alerts", options.alerts);
            let row = runtime.block_on(measure(services, options))?;
            let figures = row.figures(round, position);
            eprintln!(
                "    p50 {:.2} ms, p99 {:.2} ms",
                figures.p50_ms, figures.p99_ms
            );
            rounds[index].push(figures);
            latencies[index].extend(row.latencies_ms);
        }
    }
    let sizes = options
        .services
        .iter()
        .zip(rounds)
        .zip(&latencies)
        .map(|((&services, rounds), latencies)| {
            SizeReport::new(services, options.alerts, rounds, latencies)
        })
        .collect();
    let report = RankingReport {
        bench: "ranking",
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        settings: RankingSettings {
            rounds: options.rounds,
            alerts: options.alerts,
            interval_ms: options.interval_ms,
            services: options.services.clone(),
            preload: options.preload,
            max_p99_ms: options.max_p99_ms,
        },
        order: order
            .iter()
            .map(|sizes| sizes.iter().map(|&i| options.services[i]).collect())
            .collect(),
        sizes,
    };
    super::report::emit(&report, || render(&report), &options.output)?;
    if let Some(limit) = options.max_p99_ms {
        let over = report
            .over(limit)
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>();
        if !over.is_empty() {
            bail!(
                "median p99 above {limit} ms (--max-p99-ms) at {} services",
                over.join(", ")
            );
        }
    }
    Ok(())
}

/// A child `rootcause serve` of this binary on a fresh SQLite store in a temporary directory,
/// serving a generated topology of `size` services; the directory lives as long as it is held.
pub(super) struct GeneratedEstate {
    /// The served topology.
    pub(super) topology: Topology,
    /// The server (stopped when dropped).
    pub(super) server: Server,
    _dir: tempfile::TempDir,
}

impl GeneratedEstate {
    /// Generates the topology (seed [`SEED`]) and starts the server on it, with the server's
    /// defaults.
    pub(super) async fn start(size: usize, client: &reqwest::Client) -> anyhow::Result<Self> {
        Self::start_with(size, client, &[]).await
    }

    /// As [`GeneratedEstate::start`], with `settings` (`ROOTCAUSE_*` variables) for the server.
    pub(super) async fn start_with(
        size: usize,
        client: &reqwest::Client,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("rootcause-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let document = synthetic::generate(&Shape::with_services(size, SEED));
        let topology_path = dir.path().join("topology.json");
        std::fs::write(&topology_path, to_json(&document))?;
        let topology =
            Topology::from_document(document).context("generated topology is invalid")?;
        let address = free_address()?;
        let mut command = serve_command(address, &dir.path().join("data"))?;
        command.arg("--topology").arg(&topology_path);
        command.envs(settings.iter().map(|(key, value)| (key, value)));
        let server =
            Server::start(client, "rootcause", command, dir.path(), address, "/readyz").await?;
        Ok(GeneratedEstate {
            topology,
            server,
            _dir: dir,
        })
    }
}

async fn measure(size: usize, options: &RankingOptions) -> anyhow::Result<Row> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let estate = GeneratedEstate::start(size, &client).await?;
    let storm = storm(&estate.topology, options.alerts);
    eprintln!(
        "    root {} with {} alerting services",
        storm[0].0,
        storm
            .iter()
            .map(|(s, _)| s)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let base = estate.server.base_url.clone();
    let preloaded = match options.preload {
        0 => None,
        n => Some(preload(&client, &base, &storm, n).await?),
    };
    // Event counts include the preloaded alerts: the storm's alert i is covered by an event
    // counting more than `offset + i`.
    let offset = preloaded.map_or(0, |(_, count)| count);

    let events: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut listener = None;
    let mut acked = Vec::with_capacity(storm.len());
    let mut acks_ms = Vec::with_capacity(storm.len());
    let mut incident = None;
    for (i, (service, name)) in storm.iter().enumerate() {
        let body = json!({"alerts": [{"service": service, "alertname": name,
                                      "severity": "critical", "bench": i.to_string()}]});
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/alerts"))
            .json(&body)
            .send()
            .await
            .context("alert post failed")?;
        let at = Instant::now();
        let wall = chrono::Utc::now();
        let status = response.status();
        let receipt: serde_json::Value = response.json().await.unwrap_or_default();
        if status.as_u16() != 202 {
            bail!("alert {i} answered {status}: {receipt}");
        }
        let id = receipt["incidents"][0]
            .as_u64()
            .context("the alert is in no incident")?;
        match incident.or(preloaded.map(|(id, _)| id)) {
            None => {
                incident = Some(id);
                listener = Some(tokio::spawn(listen(
                    client.clone(),
                    format!("{base}/api/v1/incidents/{id}/events"),
                    events.clone(),
                )));
            }
            Some(first) if first != id => {
                bail!("alert {i} ({service}) joined incident {id}, not {first}")
            }
            Some(first) if listener.is_none() => {
                incident = Some(first);
                listener = Some(tokio::spawn(listen(
                    client.clone(),
                    format!("{base}/api/v1/incidents/{first}/events"),
                    events.clone(),
                )));
            }
            Some(_) => {}
        }
        acked.push((at, wall));
        acks_ms.push((at - sent).as_secs_f64() * 1e3);
        if options.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(options.interval_ms)).await;
        }
    }
    let wanted = offset + storm.len() as u64;
    let started = Instant::now();
    while events
        .lock()
        .unwrap()
        .last()
        .is_none_or(|e| e.count < wanted)
    {
        if started.elapsed() > SETTLE_TIMEOUT {
            bail!("no ranking covered all {wanted} alerts within {SETTLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(listener) = listener {
        listener.abort();
    }
    let events = events.lock().unwrap().clone();
    let covering = |i: usize| {
        events
            .iter()
            .find(|e| e.count > offset + i as u64)
            .expect("the last event covers every alert")
    };
    let latencies_ms = acked
        .iter()
        .enumerate()
        .map(|(i, (at, _))| {
            covering(i)
                .arrived
                .saturating_duration_since(*at)
                .as_secs_f64()
                * 1e3
        })
        .collect();
    let published_ms = acked
        .iter()
        .enumerate()
        .filter_map(|(i, (_, wall))| {
            let ranked_at = covering(i).ranked_at?;
            Some(((ranked_at - *wall).num_microseconds()? as f64 / 1e3).max(0.0))
        })
        .collect();

    let hypotheses: serde_json::Value = client
        .get(format!(
            "{base}/api/v1/incidents/{}/hypotheses",
            incident.unwrap_or(1)
        ))
        .send()
        .await?
        .json()
        .await?;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let total = |name: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>()
    };
    let rankings = total("rootcause_rankings_total");
    let seconds = total("rootcause_ranking_seconds_sum");
    drop(estate);
    Ok(Row {
        latencies_ms,
        published_ms,
        acks_ms,
        rankings,
        ranking_mean_ms: if rankings > 0.0 {
            seconds / rankings * 1e3
        } else {
            0.0
        },
        candidates: hypotheses["candidates"]
            .as_u64()
            .context("the final ranking has no `candidates` count")? as usize,
    })
}

/// Alerts per request while preloading.
const PRELOAD_BATCH: usize = 5_000;

/// Posts `n` distinct alerts on the storm's services (in storm order, so the root comes first
/// and every service joins the incident its neighbours are in) and waits until the server has
/// ranked them; the incident they joined and its alert count.
async fn preload(
    client: &reqwest::Client,
    base: &str,
    storm: &[(String, String)],
    n: usize,
) -> anyhow::Result<(u64, u64)> {
    let started = Instant::now();
    let mut incidents = std::collections::BTreeSet::new();
    for from in (0..n).step_by(PRELOAD_BATCH) {
        let alerts: Vec<serde_json::Value> = (from..(from + PRELOAD_BATCH).min(n))
            .map(|i| {
                let (service, name) = &storm[i % storm.len()];
                json!({"service": service, "alertname": name, "severity": "critical",
                       "labels": {"preload": i.to_string()}})
            })
            .collect();
        let response = client
            .post(format!("{base}/api/v1/alerts"))
            .json(&json!({ "alerts": alerts }))
            .send()
            .await
            .context("a preload post failed")?;
        let status = response.status();
        let receipt: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("preload alerts from {from} answered {status}: {receipt}");
        }
        incidents.extend(
            receipt["incidents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_u64),
        );
    }
    let [id] = incidents.iter().copied().collect::<Vec<_>>()[..] else {
        bail!(
            "the preloaded alerts joined {} incidents, not one",
            incidents.len()
        );
    };
    super::targets::settle(client, base).await?;
    let incident: serde_json::Value = client
        .get(format!("{base}/api/v1/incidents/{id}"))
        .send()
        .await?
        .json()
        .await?;
    let count = incident["alert_count"]
        .as_u64()
        .context("the incident has no alert_count")?;
    eprintln!(
        "    preloaded {n} alerts into incident {id} ({count} alerts) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((id, count))
}

/// A `hypotheses` event as the listener saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The alert occurrences it covers.
    count: u64,
    /// When its last byte arrived.
    arrived: Instant,
    /// When the server published it.
    ranked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Notes every `hypotheses` event of an incident's stream.
async fn listen(client: reqwest::Client, url: String, events: Arc<Mutex<Vec<Seen>>>) {
    let Ok(mut response) = client.get(&url).send().await else {
        return;
    };
    let mut buffer: Vec<u8> = Vec::new();
    // Where the search for the end of an event resumes: an event of a large incident spans
    // many chunks, and scanning it from its start at every chunk would cost more than the
    // event itself.
    let mut scanned = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        let arrived = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(offset) = buffer[scanned..].windows(2).position(|w| w == b"\n\n") {
            let end = scanned + offset;
            // Read only the event's head (its name and the envelope's fields before the
            // hypotheses): this listener shares the machine with the server, and reading every
            // event whole would take CPU from what is measured.
            let head = String::from_utf8_lossy(&buffer[..end.min(EVENT_HEAD)]).into_owned();
            buffer.drain(..end + 2);
            scanned = 0;
            if !head.lines().any(|l| l == "event: hypotheses") {
                continue;
            }
            let field = |name: &str| head.split_once(name).map(|(_, rest)| rest);
            let count = field("\"alert_count\":").and_then(|rest| {
                let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
                digits.parse::<u64>().ok()
            });
            let ranked_at = field("\"ranked_at\":\"")
                .and_then(|rest| rest.split('"').next())
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                .map(|time| time.with_timezone(&chrono::Utc));
            if let Some(count) = count {
                events.lock().unwrap().push(Seen {
                    count,
                    arrived,
                    ranked_at,
                });
            }
        }
        scanned = buffer.len().saturating_sub(1);
    }
}

/// The storm: a datastore first, then its callers and their callers, breadth first, one alert
/// each; names repeat over the same services when the graph has fewer callers than alerts.
pub(super) fn storm(topology: &Topology, alerts: usize) -> Vec<(String, String)> {
    let callers = |name: &str| {
        let mut reach = topology
            .callers(name, 3)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.hops, r.service.to_owned()))
            .collect::<Vec<_>>();
        reach.sort();
        reach
    };
    // A realistic root: a datastore whose direct callers are a handful, so that their callers
    // alert too; else the datastore with the most callers.
    let datastores = topology
        .services()
        .filter(|s| matches!(s.kind, ServiceKind::Database | ServiceKind::Cache))
        .map(|s| s.name.clone())
        .collect::<Vec<_>>();
    let scored = datastores
        .iter()
        .map(|name| {
            let reach = callers(name);
            let direct = reach.iter().filter(|(hops, _)| *hops == 1).count();
            (name.clone(), direct, reach)
        })
        .collect::<Vec<_>>();
    let (root, _, reach) = scored
        .iter()
        .filter(|(_, direct, reach)| *direct >= 3 && reach.len() + 1 >= alerts)
        .min_by_key(|(name, direct, _)| (*direct, name.clone()))
        .or_else(|| scored.iter().max_by_key(|(_, _, reach)| reach.len()))
        .cloned()
        .expect("a generated topology has datastores");
    let mut services = vec![root];
    services.extend(reach.into_iter().map(|(_, s)| s));
    (0..alerts)
        .map(|i| {
            let service = services[i % services.len()].clone();
            let name = if i == 0 {
                ROOT_ALERT.to_owned()
            } else if i < services.len() {
                CALLER_ALERTS[i % CALLER_ALERTS.len()].to_owned()
            } else {
                format!(
                    "{}{}",
                    CALLER_ALERTS[i % CALLER_ALERTS.len()],
                    i / services.len()
                )
            };
            (service, name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_storm_starts_at_a_datastore_and_spreads_to_its_callers_breadth_first() {
        let topology = synthetic::topology(&Shape::with_services(1000, SEED));
        let storm = storm(&topology, 200);
        assert_eq!(storm.len(), 200);
        let root = &storm[0].0;
        assert!(matches!(
            topology.service(root).unwrap().kind,
            ServiceKind::Database | ServiceKind::Cache
        ));
        assert_eq!(storm[0].1, ROOT_ALERT);
        let hops: BTreeMap<String, usize> = topology
            .callers(root, 3)
            .unwrap()
            .into_iter()
            .map(|r| (r.service.to_owned(), r.hops))
            .collect();
        let order = storm[1..]
            .iter()
            .map(|(service, _)| hops[service])
            .collect::<Vec<_>>();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "breadth first");
        assert!(
            order.contains(&1) && order.contains(&2),
            "callers and theirs"
        );
    }
}
