//! `rootcause bench ingest`: alert-intake throughput of rootcause (on SQLite and on PostgreSQL)
//! next to a real Alertmanager, under the same load, interleaved in rounds.
//!
//! Each target runs as a child process on a free local port: rootcause as `serve` of this very
//! binary (server defaults, a fresh data directory or a fresh PostgreSQL database), Alertmanager
//! with a route to a receiver that notifies nobody. All of them are started first and stay up
//! to the end. Then come `--rounds` rounds: in each, every target in turn is loaded alone for a
//! warm-up that is not counted and `--round-secs` measured, the others idle, and the order is
//! rotated by one target every round (the `rounds` module says why). `--concurrency` tasks POST
//! `--batch` alerts in Alertmanager's API v2 shape to `/api/v2/alerts`, the same path and the
//! same bodies for every target.
//!
//! Every request carries new alerts: half of a batch are new firing alerts (distinct label sets,
//! services of the bundled default topology, one in twenty with a service the topology does not
//! know), the other half resolve the firing alerts of the task's previous batch, which may have
//! been sent a round earlier. Only alerts of 2xx answers count as acknowledged; rootcause answers
//! after the commit, so they are durable. The ratios to Alertmanager are taken round by round,
//! and their median and spread reported beside the ratio of the totals.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::RangedU64ValueParser;
use rootcause_topology::bundled;

use super::load::{TargetLoad, WARM_UP, WorkerStats};
use super::profile::Usage;
use super::report::{
    Load, POSTGRES, Report, RoundMeasurement, SQLITE, Settings, Status, TargetReport, goals,
    ratios, render,
};
use super::rounds::schedule;
use super::targets::{
    ALERTMANAGER_CONFIG, ALERTMANAGER_NAMES, ScratchDatabase, Server, alertmanager_binary,
    alertmanager_name, free_address, scratch_dir, serve_command,
};

/// Longest one request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `rootcause bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestOptions {
    /// Rounds: in each, every target is loaded alone for --round-secs, the order rotated by one
    /// target every round.
    #[arg(long, value_name = "N", default_value_t = 6,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub rounds: usize,
    /// Seconds of measured load per target and round, each after a 1 s warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=600))]
    pub round_secs: u64,
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
    /// Where the report goes.
    #[command(flatten)]
    pub output: super::report::ReportOutput,
}

/// Runs `rootcause bench ingest`: starts every target, runs the rounds (progress on stderr),
/// then prints the report on stdout and writes `--json-out`. Fails, after the report, if a
/// target that was asked for could not be measured.
pub fn ingest(options: &IngestOptions) -> anyhow::Result<()> {
    let runtime = super::report::runtime()?;
    let report = runtime.block_on(run(options))?;
    super::report::emit(&report, || render(&report), &options.output)?;
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
        concurrency: options.concurrency,
        batch: options.batch / 2 * 2,
        services: topology_services(),
    };
    let client = http_client(load.concurrency)?;
    let mut durability = vec![format!(
        "{SQLITE}: synchronous=FULL, WAL (server default): an acknowledged alert is fsynced"
    )];

    // Every target up before the first round, each in its slot of the report.
    let mut slots = vec![Slot::start(
        start_rootcause(&client, &load, SQLITE, None).await,
    )];
    let mut database = None;
    match &options.postgres_url {
        None => slots.push(Slot::Down(TargetReport::not_run(
            POSTGRES,
            "no --postgres-url given",
        ))),
        Some(admin_url) => match ScratchDatabase::create(admin_url).await {
            Ok(created) => {
                durability.push(format!(
                    "{POSTGRES}: {} (server settings)",
                    created.settings
                ));
                let url = created.url.clone();
                database = Some(created);
                let target = start_rootcause(&client, &load, POSTGRES, Some(&url)).await;
                slots.push(Slot::start(target));
            }
            Err(error) => slots.push(Slot::Down(TargetReport::failed(
                POSTGRES.to_owned(),
                &error,
            ))),
        },
    }
    match alertmanager_binary(options.alertmanager.as_deref()) {
        Ok(Some(binary)) => {
            let name = alertmanager_name(&binary);
            durability.push(format!(
                "{name}: alerts held in memory only (no disk write per alert)"
            ));
            let target = start_alertmanager(&client, &load, &name, &binary).await;
            slots.push(Slot::start(target));
        }
        Ok(None) => slots.push(Slot::Down(TargetReport::not_run(
            "Alertmanager",
            &format!(
                "Alertmanager not found (no {} on PATH; pass --alertmanager PATH)",
                ALERTMANAGER_NAMES.join(" or ")
            ),
        ))),
        Err(error) => slots.push(Slot::Down(TargetReport::failed(
            "Alertmanager".to_owned(),
            &error,
        ))),
    }

    let mut up = slots
        .iter_mut()
        .filter_map(|slot| match slot {
            Slot::Up(target) => Some(target),
            Slot::Down(_) => None,
        })
        .collect::<Vec<_>>();
    let order = schedule(up.len(), options.rounds);
    let window = Duration::from_secs(options.round_secs);
    for (round, targets) in order.iter().enumerate() {
        eprintln!("==> round {}/{}", round + 1, options.rounds);
        for (position, &index) in targets.iter().enumerate() {
            up[index].measure(&client, round, position, window).await;
        }
    }
    let order = order
        .iter()
        .map(|targets| targets.iter().map(|&i| up[i].name.clone()).collect())
        .collect();

    let targets = slots.into_iter().map(Slot::report).collect::<Vec<_>>();
    // The servers are stopped by now: the scratch database can go.
    if let Some(database) = database {
        database.drop().await;
    }
    let ratios = ratios(&targets, options.rounds);
    let goals = goals(&ratios);
    Ok(Report {
        bench: "ingest",
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        settings: Settings {
            rounds: options.rounds,
            round_secs: options.round_secs,
            warm_up_secs: WARM_UP.as_secs(),
            concurrency: load.concurrency,
            alerts_per_request: load.batch,
        },
        order,
        durability,
        targets,
        ratios,
        goals,
    })
}

/// A target's place in the report: up for the rounds, or already reported (not run, or failed
/// to start).
enum Slot {
    Up(Running),
    Down(TargetReport),
}

impl Slot {
    fn start(started: Result<Running, (String, anyhow::Error)>) -> Slot {
        match started {
            Ok(running) => Slot::Up(running),
            Err((name, error)) => Slot::Down(TargetReport::failed(name, &error)),
        }
    }

    /// The report of the target, its server stopped.
    fn report(self) -> TargetReport {
        match self {
            Slot::Up(running) => running.report(),
            Slot::Down(report) => report,
        }
    }
}

/// A target up for the whole run and what its rounds measured so far.
struct Running {
    name: String,
    server: Server,
    load: TargetLoad,
    /// The scratch directory of its data and log, removed when the run ends.
    _dir: tempfile::TempDir,
    rounds: Vec<RoundMeasurement>,
    /// Every round's answers together.
    stats: WorkerStats,
    usage: Usage,
    measured_secs: f64,
    /// Why it stopped being measured (its later rounds are skipped).
    failure: Option<String>,
}

impl Running {
    fn new(
        name: &str,
        server: Server,
        load: &Load,
        rootcause: bool,
        dir: tempfile::TempDir,
    ) -> Self {
        Running {
            name: name.to_owned(),
            load: TargetLoad::new(&server.base_url, load, rootcause),
            server,
            _dir: dir,
            rounds: Vec::new(),
            stats: WorkerStats::default(),
            usage: Usage::default(),
            measured_secs: 0.0,
            failure: None,
        }
    }

    /// Loads the target for one round and adds the window to its figures.
    async fn measure(
        &mut self,
        client: &reqwest::Client,
        round: usize,
        position: usize,
        window: Duration,
    ) {
        if self.failure.is_some() {
            return;
        }
        let result = self.load.round(client, self.server.pid(), window).await;
        // A target that died in the round: its figures are of refused connections.
        let result = self.server.check_alive().and(result);
        let mut measured = match result {
            Ok(measured) => measured,
            Err(error) => {
                self.failure = Some(format!("in round {}: {error:#}", round + 1));
                return;
            }
        };
        let summary = measured.stats.round(round, position, window);
        eprintln!(
            "    {}: {:.0} alerts/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            self.name, summary.alerts_per_sec, summary.p50_ms, summary.p99_ms, summary.errors
        );
        self.usage.add(&measured.before, &measured.after);
        self.stats.merge(measured.stats);
        self.rounds.push(summary);
        self.measured_secs += window.as_secs_f64();
    }

    /// Stops the server and sums the rounds up.
    fn report(self) -> TargetReport {
        let Running {
            name,
            server,
            rounds,
            stats,
            usage,
            measured_secs,
            failure,
            ..
        } = self;
        drop(server);
        let measurement = stats.measurement(measured_secs, &usage);
        TargetReport::measured(name, rounds, measurement, failure)
    }
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

/// Starts rootcause (`serve`, server defaults) on a fresh data directory, on SQLite unless a
/// database URL is given.
async fn start_rootcause(
    client: &reqwest::Client,
    load: &Load,
    name: &str,
    database_url: Option<&str>,
) -> Result<Running, (String, anyhow::Error)> {
    let started = async {
        let dir = scratch_dir()?;
        let address = free_address()?;
        let mut command = serve_command(address, &dir.path().join("data"))?;
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        let server = Server::start(client, name, command, dir.path(), address, "/readyz").await?;
        Ok(Running::new(name, server, load, true, dir))
    };
    started.await.map_err(|error| (name.to_owned(), error))
}

/// Starts Alertmanager with a receiver that notifies nobody.
async fn start_alertmanager(
    client: &reqwest::Client,
    load: &Load,
    name: &str,
    binary: &Path,
) -> Result<Running, (String, anyhow::Error)> {
    let started = async {
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
        Ok(Running::new(name, server, load, false, dir))
    };
    started.await.map_err(|error| (name.to_owned(), error))
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

    /// A stand-in target on a local port: answers every request 200 and keeps its body.
    fn fake_target(bodies: Arc<std::sync::Mutex<Vec<String>>>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let (Ok(mut socket), bodies) = (socket, bodies.clone()) else {
                    return;
                };
                std::thread::spawn(move || {
                    let mut buffer = Vec::new();
                    let mut chunk = vec![0; 1 << 16];
                    let mut head_end = None;
                    loop {
                        if head_end.is_none() {
                            head_end = buffer
                                .windows(4)
                                .position(|w| w == b"\r\n\r\n")
                                .map(|at| at + 4);
                        }
                        if let Some(end) = head_end {
                            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            if buffer.len() >= end + length {
                                let body = buffer.drain(..end + length).skip(end).collect();
                                bodies
                                    .lock()
                                    .unwrap()
                                    .push(String::from_utf8(body).unwrap());
                                socket
                                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                    .unwrap();
                                head_end = None;
                                continue;
                            }
                        }
                        match socket.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        format!("http://{address}")
    }

    /// `(worker, seq)` of an alert from its `instance` label, `w{worker}-{seq}-{index}`.
    fn origin(alert: &serde_json::Value) -> (u64, u64) {
        let instance = alert["labels"]["instance"].as_str().unwrap();
        let mut parts = instance[1..].split('-').map(|n| n.parse::<u64>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    }

    #[test]
    fn each_worker_resolves_its_previous_batch_even_a_round_later() {
        let bodies: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let base_url = fake_target(bodies.clone());
        let load = Load {
            concurrency: 3,
            batch: 10,
            services: topology_services(),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let client = http_client(load.concurrency).unwrap();
        let mut target = TargetLoad::new(&base_url, &load, false);
        let window = Duration::from_millis(200);
        let mut requests_after_round = Vec::new();
        for _ in 0..2 {
            let measured = runtime
                .block_on(target.round(&client, std::process::id(), window))
                .unwrap();
            assert!(measured.stats.requests > 0 && measured.stats.errors == 0);
            requests_after_round.push(bodies.lock().unwrap().len());
        }
        let bodies = bodies.lock().unwrap();
        // The newest batch of each worker that the target has seen.
        let mut last = BTreeMap::new();
        for (i, body) in bodies.iter().enumerate() {
            let alerts: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
            // Resolutions first, then the 5 new firing alerts.
            let (resolving, firing) = alerts.split_at(alerts.len() - 5);
            let (worker, seq) = origin(&firing[0]);
            assert!(firing.iter().all(|a| origin(a) == (worker, seq)));
            let previous = last.insert(worker, seq);
            assert_eq!(
                previous,
                seq.checked_sub(1),
                "worker {worker} skipped a batch"
            );
            // Only a worker's very first request has nothing to resolve.
            assert_eq!(resolving.len(), if seq == 0 { 0 } else { 5 }, "request {i}");
            assert!(
                resolving
                    .iter()
                    .all(|a| Some(origin(a)) == previous.map(|p| (worker, p)))
            );
        }
        assert_eq!(last.len(), 3);
        assert!(requests_after_round[1] > requests_after_round[0]);
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
