//! `rootcause bench ingest`: alert-intake throughput of rootcause (on SQLite and on PostgreSQL)
//! next to a real Alertmanager, under the same load.
//!
//! Each target runs as a child process on a free local port: rootcause as `serve` of this very
//! binary (server defaults, a fresh data directory or a fresh PostgreSQL database), Alertmanager
//! with a route to a receiver that notifies nobody. `--concurrency` tasks then POST `--batch`
//! alerts in Alertmanager's API v2 shape to `/api/v2/alerts`, the same path and the same bodies
//! for every target, for `--duration-secs` after a warm-up that is not counted.
//!
//! Every request carries new alerts: half of a batch are new firing alerts (distinct label sets,
//! services of the bundled default topology, one in twenty with a service the topology does not
//! know), the other half resolve the firing alerts of the task's previous batch. Only alerts of
//! 2xx answers count as acknowledged; rootcause answers after the commit, so they are durable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use clap::builder::RangedU64ValueParser;
use rootcause_topology::bundled;

use super::load::WARM_UP;
use super::load::drive;
use super::report::{Load, Measurement, Ratio, Report, Status, TargetReport, render};
use super::targets::{
    ALERTMANAGER_CONFIG, ALERTMANAGER_NAMES, ScratchDatabase, Server, alertmanager_binary,
    alertmanager_name, free_address, scratch_dir, serve_command,
};
use std::path::Path;
use std::process::Command;

/// Longest one request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `rootcause bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestOptions {
    /// Seconds of measured load per target, after a 2 s warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=3600))]
    pub duration_secs: u64,
    /// Concurrent load tasks, each sending one request at a time.
    #[arg(long, value_name = "TASKS", default_value_t = 8,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
    /// Alerts per request: half new firing alerts, half resolving the task's previous batch
    /// (an odd number is rounded down).
    #[arg(long, value_name = "ALERTS", default_value_t = 500,
          value_parser = RangedU64ValueParser::<usize>::new().range(2..=10_000))]
    pub batch: usize,
    /// Also measure rootcause on PostgreSQL: a server URL (postgres://USER@HOST:PORT/DB) on
    /// which a scratch database is created and dropped afterwards.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// Alertmanager binary to compare with [default: prometheus-alertmanager or alertmanager on
    /// PATH].
    #[arg(long, value_name = "PATH")]
    pub alertmanager: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `rootcause bench ingest`: every target in turn (progress on stderr), then the report on
/// stdout. Fails, after the report, if a target that was asked for could not be measured.
pub fn ingest(options: &IngestOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(run(options))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    let failed = report
        .targets
        .iter()
        .filter(|t| t.status == Status::Failed)
        .map(|t| t.target.as_str())
        .collect::<Vec<_>>();
    if !failed.is_empty() {
        bail!("could not measure {}", failed.join(", "));
    }
    Ok(())
}

async fn run(options: &IngestOptions) -> anyhow::Result<Report> {
    let load = Load {
        duration: Duration::from_secs(options.duration_secs),
        concurrency: options.concurrency,
        batch: options.batch / 2 * 2,
        services: topology_services(),
    };
    let client = http_client(load.concurrency)?;
    let mut targets = Vec::new();
    let mut durability = vec![
        "rootcause (SQLite): synchronous=FULL, WAL (server default): an acknowledged alert is \
         fsynced"
            .to_owned(),
    ];

    let name = "rootcause (SQLite)".to_owned();
    let result = bench_rootcause(&client, &load, &name, None).await;
    targets.push(TargetReport::from_result(name, result));

    let name = "rootcause (PostgreSQL)";
    match &options.postgres_url {
        None => targets.push(TargetReport::not_run(name, "no --postgres-url given")),
        Some(admin_url) => {
            let result = bench_postgres(&client, &load, name, admin_url, &mut durability).await;
            targets.push(TargetReport::from_result(name.to_owned(), result));
        }
    }

    match alertmanager_binary(options.alertmanager.as_deref()) {
        Ok(Some(binary)) => {
            let name = alertmanager_name(&binary);
            durability.push(format!(
                "{name}: alerts held in memory only (no disk write per alert)"
            ));
            let result = bench_alertmanager(&client, &load, &name, &binary).await;
            targets.push(TargetReport::from_result(name, result));
        }
        Ok(None) => targets.push(TargetReport::not_run(
            "Alertmanager",
            &format!(
                "Alertmanager not found (no {} on PATH; pass --alertmanager PATH)",
                ALERTMANAGER_NAMES.join(" or ")
            ),
        )),
        Err(error) => targets.push(TargetReport::from_result(
            "Alertmanager".to_owned(),
            Err(error),
        )),
    }

    let ratios = ratios(&targets);
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        duration_secs: options.duration_secs,
        warm_up_secs: WARM_UP.as_secs(),
        concurrency: load.concurrency,
        alerts_per_request: load.batch,
        durability,
        targets,
        ratios,
    })
}

/// Each rootcause target's alerts/s over Alertmanager's.
fn ratios(targets: &[TargetReport]) -> Vec<Ratio> {
    let Some(baseline) = targets
        .iter()
        .find(|t| t.target.starts_with("Alertmanager"))
    else {
        return Vec::new();
    };
    targets
        .iter()
        .filter(|t| t.target.starts_with("rootcause"))
        .map(|t| Ratio {
            target: t.target.clone(),
            baseline: baseline.target.clone(),
            ratio: t
                .alerts_per_sec()
                .zip(baseline.alerts_per_sec())
                .filter(|(_, base)| *base > 0.0)
                .map(|(rate, base)| rate / base),
        })
        .collect()
}

/// Service names of the topology `serve` loads by default.
fn topology_services() -> Arc<[String]> {
    let example = bundled::find(bundled::DEFAULT).expect("the default example is bundled");
    let mut names = example
        .topology()
        .services()
        .map(|s| s.name.clone())
        .collect::<Vec<_>>();
    names.sort();
    names.into()
}

fn http_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

/// Starts rootcause (`serve`, server defaults) on a fresh data directory and loads it.
async fn bench_rootcause(
    client: &reqwest::Client,
    load: &Load,
    name: &str,
    database_url: Option<&str>,
) -> anyhow::Result<Measurement> {
    let dir = scratch_dir()?;
    let address = free_address()?;
    let mut command = serve_command(address, &dir.path().join("data"))?;
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    let server = Server::start(client, name, command, dir.path(), address, "/readyz").await?;
    drive(client, &server, load, true).await
}

/// Creates a scratch database on the PostgreSQL server, loads rootcause on it, drops it.
async fn bench_postgres(
    client: &reqwest::Client,
    load: &Load,
    name: &str,
    admin_url: &str,
    durability: &mut Vec<String>,
) -> anyhow::Result<Measurement> {
    let database = ScratchDatabase::create(admin_url).await?;
    durability.push(format!("{name}: {} (server settings)", database.settings));
    let result = bench_rootcause(client, load, name, Some(&database.url)).await;
    database.drop().await;
    result
}

/// Starts Alertmanager with a receiver that notifies nobody and loads it.
async fn bench_alertmanager(
    client: &reqwest::Client,
    load: &Load,
    name: &str,
    binary: &Path,
) -> anyhow::Result<Measurement> {
    let dir = scratch_dir()?;
    let config = dir.path().join("am.yml");
    std::fs::write(&config, ALERTMANAGER_CONFIG)
        .with_context(|| format!("cannot write {}", config.display()))?;
    let address = free_address()?;
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn");
    let server = Server::start(client, name, command, dir.path(), address, "/-/ready").await?;
    drive(client, &server, load, false).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rootcause_correlation::{AlertStatus, Fingerprint};

    use super::*;
    use std::collections::BTreeMap;

    use chrono::{TimeDelta, Utc};

    use crate::bench::load::*;
    use crate::bench::profile::*;
    use crate::bench::report::thousands;
    use crate::bench::targets::replace_database;
    use rootcause::config::IngestConfig;
    use rootcause::ingest::payload::{PostableAlert, alertmanager_api};

    fn builder(worker: usize, batch: usize) -> BodyBuilder {
        BodyBuilder::new(worker, batch, topology_services())
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted = (1..=100).map(|ms| ms * 1000).collect::<Vec<u32>>();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&sorted, 1.0), 100.0);
        assert_eq!(percentile_ms(&[1500], 0.99), 1.5);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn bodies_are_valid_api_v2_alerts_that_fire_then_resolve() {
        let mut bodies = builder(3, 40);
        let first_at = Utc::now();
        let (first, count) = bodies.next_body(first_at);
        assert_eq!(count, 20, "the first request has nothing to resolve yet");
        let (second, count) = bodies.next_body(first_at + TimeDelta::seconds(1));
        assert_eq!(count, 40);

        let now = (first_at + TimeDelta::seconds(2)).timestamp_millis();
        let first: Vec<PostableAlert> = serde_json::from_str(&first).unwrap();
        let second: Vec<PostableAlert> = serde_json::from_str(&second).unwrap();
        let second = alertmanager_api(second, &IngestConfig::default(), now).unwrap();
        let first = alertmanager_api(first, &IngestConfig::default(), now).unwrap();
        let resolved = second
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
            .map(|a| (a.fingerprint, a.starts_at))
            .collect::<HashSet<_>>();
        let fired = first
            .iter()
            .map(|a| {
                assert_eq!(a.status, AlertStatus::Firing);
                (a.fingerprint, a.starts_at)
            })
            .collect::<HashSet<_>>();
        assert_eq!(
            resolved, fired,
            "the second request resolves the first's alerts"
        );
        assert_eq!(
            second
                .iter()
                .filter(|a| a.status == AlertStatus::Firing)
                .count(),
            20
        );
    }

    #[test]
    fn every_new_alert_is_a_distinct_label_set_and_some_are_unmapped() {
        let services = topology_services();
        let mut fingerprints = HashSet::new();
        let mut unmapped = 0;
        let mut mapped_services = HashSet::new();
        for worker in 0..3 {
            let mut bodies = builder(worker, 100);
            for _ in 0..5 {
                let (body, _) = bodies.next_body(Utc::now());
                let alerts: Vec<PostableAlert> = serde_json::from_str(&body).unwrap();
                // The last 50 alerts of each body are the new firing ones.
                for alert in &alerts[alerts.len() - 50..] {
                    assert!(fingerprints.insert(Fingerprint::of(&alert.labels)));
                    let service = alert.labels["service"].as_str();
                    if service == UNKNOWN_SERVICE {
                        unmapped += 1;
                    } else {
                        assert!(services.iter().any(|s| s == service), "{service}");
                        mapped_services.insert(service.to_owned());
                    }
                }
            }
        }
        assert_eq!(fingerprints.len(), 3 * 5 * 50);
        // One in twenty, give or take the rounding of 250 alerts per task.
        assert!((35..=38).contains(&unmapped), "{unmapped}");
        assert_eq!(
            mapped_services.len(),
            services.len(),
            "every service gets alerts"
        );
    }

    #[test]
    fn metric_totals_sum_label_sets_and_skip_longer_names() {
        let text = "# TYPE rootcause_ingest_commit_seconds histogram\n\
                    rootcause_ingest_commit_seconds_bucket{le=\"0.1\"} 3\n\
                    rootcause_ingest_commit_seconds_sum 1.5\n\
                    rootcause_ingest_commit_seconds_count 3\n\
                    rootcause_ingest_commit_seconds_count_other 99\n\
                    rootcause_ingest_batch_alerts_sum{source=\"a\"} 100\n\
                    rootcause_ingest_batch_alerts_sum{source=\"b\"} 200\n";
        assert_eq!(
            series_total(text, "rootcause_ingest_commit_seconds_sum"),
            1.5
        );
        assert_eq!(
            series_total(text, "rootcause_ingest_commit_seconds_count"),
            3.0
        );
        assert_eq!(
            series_total(text, "rootcause_ingest_batch_alerts_sum"),
            300.0
        );
        let totals = IngestTotals::parse(text);
        let stats = totals.since(&IngestTotals::default(), 3.0);
        assert_eq!(stats.mean_commit_ms, 500.0);
        assert_eq!(stats.writer_busy, 0.5);
    }

    #[test]
    fn thread_cpu_is_per_name_busiest_first_and_idle_names_are_left_out() {
        let before = BTreeMap::from([("a".to_owned(), 1.0), ("b".to_owned(), 5.0)]);
        let after = BTreeMap::from([
            ("a".to_owned(), 2.0),
            ("b".to_owned(), 5.0),
            ("c".to_owned(), 4.0),
        ]);
        let cores = thread_cores(&before, &after, 2.0);
        let names = cores
            .iter()
            .map(|t| (t.thread.as_str(), t.cores))
            .collect::<Vec<_>>();
        assert_eq!(names, [("c", 2.0), ("a", 0.5)]);
    }

    #[test]
    fn numbers_and_urls_are_shown_as_expected() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            replace_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
    }
}
