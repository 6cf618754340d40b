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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::builder::RangedU64ValueParser;
use rootcause_topology::bundled;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;

use rootcause::config::redact_url;

/// Load before the measured window, not counted.
const WARM_UP: Duration = Duration::from_secs(2);
/// Longest a target may take to become ready (rootcause stores a 10,000-service topology first).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The ingest target of the design: alerts per second on SQLite on a 2-core machine.
const TARGET_ALERTS_PER_SEC: u64 = 50_000;

/// How long a new firing alert says it fires (`endsAt`), as Prometheus sends it.
const FIRING_FOR: TimeDelta = TimeDelta::minutes(5);
/// One alert in this many names a service the topology does not know.
const UNMAPPED_EVERY: usize = 20;
/// The service label of unmapped alerts.
const UNKNOWN_SERVICE: &str = "bench-unknown-service";
/// Alert names, mixed over each batch.
const ALERT_NAMES: [&str; 5] = [
    "HighErrorRate",
    "HighLatency",
    "PodCrashLooping",
    "CPUThrottlingHigh",
    "KubePodNotReady",
];
/// Names the Alertmanager binary has on PATH (Debian's package, upstream's tarball).
const ALERTMANAGER_NAMES: [&str; 2] = ["prometheus-alertmanager", "alertmanager"];
/// Alertmanager configuration: every alert goes to a receiver without notifications.
const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n";
/// Prefix of the scratch PostgreSQL databases.
const DATABASE_PREFIX: &str = "rc_bench_";
/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

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

/// What was measured, and under which conditions.
#[derive(Debug, Serialize)]
struct Report {
    cores: usize,
    duration_secs: u64,
    warm_up_secs: u64,
    concurrency: usize,
    alerts_per_request: usize,
    durability: Vec<String>,
    targets: Vec<TargetReport>,
    ratios: Vec<Ratio>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct TargetReport {
    target: String,
    status: Status,
    /// Why the target was not run, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measurement: Option<Measurement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ran,
    NotRun,
    Failed,
}

impl TargetReport {
    fn from_result(target: String, result: anyhow::Result<Measurement>) -> TargetReport {
        match result {
            Ok(measurement) => TargetReport {
                target,
                status: Status::Ran,
                note: None,
                measurement: Some(measurement),
            },
            Err(error) => {
                eprintln!("*** {target}: FAILED: {error:#}");
                TargetReport {
                    target,
                    status: Status::Failed,
                    note: Some(format!("failed: {error:#}")),
                    measurement: None,
                }
            }
        }
    }

    fn not_run(target: &str, why: &str) -> TargetReport {
        eprintln!("*** {target}: NOT RUN: {why}");
        TargetReport {
            target: target.to_owned(),
            status: Status::NotRun,
            note: Some(format!("not run: {why}")),
            measurement: None,
        }
    }

    fn alerts_per_sec(&self) -> Option<f64> {
        self.measurement.as_ref().map(|m| m.alerts_per_sec)
    }
}

/// A rootcause target's throughput over Alertmanager's.
#[derive(Debug, Serialize)]
struct Ratio {
    target: String,
    baseline: String,
    /// Absent when either side was not measured.
    ratio: Option<f64>,
}

/// The numbers of one target over the measured window.
#[derive(Debug, Clone, Serialize)]
struct Measurement {
    acknowledged_alerts: u64,
    duration_secs: f64,
    alerts_per_sec: f64,
    requests: u64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
    /// CPU the target's process used, in cores (Linux only).
    server_cpu_cores: Option<f64>,
    /// The same by thread name (`sqlx-sqlite-wor`, `tokio-runtime-w`, ...), busiest first.
    server_threads: Vec<ThreadCpu>,
    /// CPU this load generator used, in cores (Linux only).
    generator_cpu_cores: Option<f64>,
    /// CPU the whole machine used, every process included, in cores (Linux only).
    machine_busy_cores: Option<f64>,
    /// CPU time the machine spent idle waiting for disk I/O, in cores (Linux only).
    machine_iowait_cores: Option<f64>,
    /// rootcause's own view, from `/metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest: Option<IngestStats>,
}

/// CPU of the threads of one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ThreadCpu {
    thread: String,
    cores: f64,
}

/// The group-commit writer over the measured window, from rootcause's `/metrics`.
#[derive(Debug, Clone, Serialize)]
struct IngestStats {
    group_commits_per_sec: f64,
    mean_alerts_per_commit: f64,
    mean_commit_ms: f64,
    mean_correlation_ms: f64,
    /// Share of the window the database spent committing groups (1.0: a commit always runs).
    writer_busy: f64,
}

/// The load every target gets.
#[derive(Debug, Clone)]
struct Load {
    duration: Duration,
    concurrency: usize,
    batch: usize,
    services: Arc<[String]>,
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

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/// This program's `serve` on `address` with its data in `data_dir`, JSON logs at `warn`, and
/// server defaults only: no configuration from this shell's environment leaks in.
pub(crate) fn serve_command(address: SocketAddr, data_dir: &Path) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .arg("--listen")
        .arg(address.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-format", "json"]);
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .starts_with(rootcause::config::ENV_PREFIX)
        {
            command.env_remove(key);
        }
    }
    command.env("ROOTCAUSE_LOG_FILTER", "warn");
    Ok(command)
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

/// The Alertmanager binary: the one given (which must exist), else one found on PATH.
fn alertmanager_binary(given: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("--alertmanager {}: no such file", path.display());
        }
        return Ok(Some(path.to_owned()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::split_paths(&path)
        .flat_map(|dir| ALERTMANAGER_NAMES.map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file()))
}

/// `Alertmanager 0.25.0`, from `--version`; just `Alertmanager` if it does not say.
fn alertmanager_name(binary: &Path) -> String {
    let output = Command::new(binary).arg("--version").output();
    let text = output
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    match text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
    {
        Some(version) => format!("Alertmanager {version}"),
        None => "Alertmanager".to_owned(),
    }
}

fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("rootcause-bench-")
        .tempdir()
        .context("cannot create a temporary directory")
}

/// A free port on the loopback interface (free when asked; taken right after).
pub(crate) fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(listener.local_addr()?)
}

/// A target process, killed when dropped (on success and on error alike).
pub(crate) struct Server {
    child: Child,
    /// `http://address`.
    pub(crate) base_url: String,
}

impl Server {
    /// Spawns `command` (stderr to `DIR/server.log`) and waits until `ready_path` answers 200.
    pub(crate) async fn start(
        client: &reqwest::Client,
        name: &str,
        mut command: Command,
        dir: &Path,
        address: SocketAddr,
        ready_path: &str,
    ) -> anyhow::Result<Server> {
        eprintln!("==> {name}: starting on {address}");
        let log_path = dir.join("server.log");
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {:?}", command.get_program()))?;
        let mut server = Server {
            child,
            base_url: format!("http://{address}"),
        };
        let started = Instant::now();
        let url = format!("{}{ready_path}", server.base_url);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{name} exited ({status}) before it was ready; its last log lines:\n{}",
                    log_tail(&log_path)
                );
            }
            let ready = client.get(&url).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                eprintln!("    ready in {:.1} s", started.elapsed().as_secs_f64());
                return Ok(server);
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{name} was not ready within {} s (GET {url}); its last log lines:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, indented.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines = text.lines().collect::<Vec<_>>();
    lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|line| format!("    {line}\n"))
        .collect()
}

/// A database created for one run on the given PostgreSQL server.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
    /// The server's durability settings, as `synchronous_commit=on, fsync=on`.
    settings: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<ScratchDatabase> {
        let shown = redact_url(admin_url);
        let mut admin =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(admin_url))
                .await
                .with_context(|| format!("PostgreSQL at {shown}: no answer in 10 s"))?
                .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
        let mut settings = Vec::new();
        for setting in ["synchronous_commit", "fsync"] {
            let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                .fetch_one(&mut admin)
                .await
                .with_context(|| format!("SHOW {setting}"))?;
            settings.push(format!("{setting}={value}"));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("{DATABASE_PREFIX}{}_{nanos:08x}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create database {name} on {shown}"))?;
        let _ = admin.close().await;
        eprintln!("==> created database {name} on {shown}");
        Ok(ScratchDatabase {
            url: replace_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
            settings: settings.join(", "),
        })
    }

    /// Drops the database; a failure is reported, not fatal.
    async fn drop(self) {
        let result = async {
            let mut admin = PgConnection::connect(&self.admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await
        }
        .await;
        match result {
            Ok(()) => eprintln!("==> dropped database {}", self.name),
            Err(error) => eprintln!("*** could not drop database {}: {error}", self.name),
        }
    }
}

/// `postgres://u@h:5432/test?x=y` with the database name replaced.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// Loads a ready target: warm-up, then the measured window.
async fn drive(
    client: &reqwest::Client,
    server: &Server,
    load: &Load,
    rootcause: bool,
) -> anyhow::Result<Measurement> {
    eprintln!(
        "    warming up {} s, then measuring {} s ({} tasks x {} alerts per request)",
        WARM_UP.as_secs(),
        load.duration.as_secs(),
        load.concurrency,
        load.batch
    );
    let url = format!("{}/api/v2/alerts", server.base_url);
    let metrics_url = rootcause.then(|| format!("{}/metrics", server.base_url));
    let measure_from = Instant::now() + WARM_UP;
    let until = measure_from + load.duration;
    let workers: Vec<JoinHandle<WorkerStats>> = (0..load.concurrency)
        .map(|worker| {
            let bodies = BodyBuilder::new(worker, load.batch, load.services.clone());
            tokio::spawn(run_worker(
                client.clone(),
                url.clone(),
                bodies,
                measure_from,
                until,
            ))
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let before = Snapshot::take(client, server.pid(), metrics_url.as_deref()).await;
    tokio::time::sleep_until(until.into()).await;
    let after = Snapshot::take(client, server.pid(), metrics_url.as_deref()).await;
    let mut stats = WorkerStats::default();
    for worker in workers {
        stats.merge(worker.await.context("a load task failed")?);
    }
    let measurement = stats.measurement(load.duration, &before, &after);
    eprintln!(
        "    {:.0} alerts/s, {} errors",
        measurement.alerts_per_sec, measurement.errors
    );
    Ok(measurement)
}

/// One load task: sends a batch, waits for the answer, repeats until `until`. Only answers that
/// arrive between `measure_from` and `until` are counted: before is the warm-up, and an answer
/// after `until` belongs to no window.
async fn run_worker(
    client: reqwest::Client,
    url: String,
    mut bodies: BodyBuilder,
    measure_from: Instant,
    until: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    while Instant::now() < until {
        let (body, alerts) = bodies.next_body(Utc::now());
        let sent = Instant::now();
        let outcome = post(&client, &url, body).await;
        let done = Instant::now();
        if outcome.is_err() {
            // Do not spin on a target that refuses connections.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if (measure_from..=until).contains(&done) {
            stats.record(outcome, alerts, done - sent);
        }
    }
    stats
}

/// POSTs one body; `Err` with a short description unless the answer is 2xx.
async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
    let status = response.status();
    // Read the whole answer so that the connection can be reused.
    let answer = response
        .bytes()
        .await
        .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
    if status.is_success() {
        return Ok(());
    }
    let answer = String::from_utf8_lossy(&answer);
    let answer = answer.chars().take(300).collect::<String>();
    Err(format!("HTTP {status}: {}", answer.trim()))
}

/// What load tasks saw in the measured window.
#[derive(Debug, Default)]
struct WorkerStats {
    acknowledged: u64,
    requests: u64,
    errors: u64,
    /// Latency of each 2xx request, in microseconds.
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl WorkerStats {
    fn record(&mut self, outcome: Result<(), String>, alerts: usize, latency: Duration) {
        self.requests += 1;
        match outcome {
            Ok(()) => {
                self.acknowledged += alerts as u64;
                let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
                self.latencies_us.push(micros);
            }
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: WorkerStats) {
        self.acknowledged += other.acknowledged;
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The numbers over the measured window, with CPU and metrics between two snapshots.
    fn measurement(mut self, window: Duration, before: &Snapshot, after: &Snapshot) -> Measurement {
        self.latencies_us.sort_unstable();
        let window = window.as_secs_f64();
        let rate = |amount: f64| if window > 0.0 { amount / window } else { 0.0 };
        let snapshot_secs = after.at.duration_since(before.at).as_secs_f64();
        let cores = |b: Option<f64>, a: Option<f64>| {
            a.zip(b)
                .filter(|_| snapshot_secs > 0.0)
                .map(|(a, b)| (a - b) / snapshot_secs)
        };
        Measurement {
            acknowledged_alerts: self.acknowledged,
            duration_secs: window,
            alerts_per_sec: rate(self.acknowledged as f64),
            requests: self.requests,
            p50_ms: percentile_ms(&self.latencies_us, 0.50),
            p99_ms: percentile_ms(&self.latencies_us, 0.99),
            errors: self.errors,
            first_error: self.first_error,
            server_cpu_cores: cores(before.server_cpu_secs, after.server_cpu_secs),
            server_threads: thread_cores(
                &before.server_threads,
                &after.server_threads,
                snapshot_secs,
            ),
            generator_cpu_cores: cores(before.own_cpu_secs, after.own_cpu_secs),
            machine_busy_cores: cores(before.machine.map(|m| m.0), after.machine.map(|m| m.0)),
            machine_iowait_cores: cores(before.machine.map(|m| m.1), after.machine.map(|m| m.1)),
            ingest: before
                .metrics
                .as_ref()
                .zip(after.metrics.as_ref())
                .map(|(b, a)| a.since(b, snapshot_secs)),
        }
    }
}

/// The `q` quantile (nearest rank) of sorted microseconds, in milliseconds; 0 when empty.
fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[index]) / 1000.0
}

/// Builds the request bodies of one load task: pre-formatted JSON text, no serializer.
#[derive(Debug)]
struct BodyBuilder {
    worker: usize,
    /// Requests built so far.
    seq: u64,
    /// New firing alerts per request (half of the batch).
    firing: usize,
    services: Arc<[String]>,
    /// The firing alerts of the previous request, up to their `startsAt` (without the closing
    /// fields), to be resolved by the next one.
    pending: Vec<String>,
    /// Body size of the previous request, to allocate once.
    capacity: usize,
}

impl BodyBuilder {
    fn new(worker: usize, batch: usize, services: Arc<[String]>) -> BodyBuilder {
        BodyBuilder {
            worker,
            seq: 0,
            firing: (batch / 2).max(1),
            services,
            pending: Vec::new(),
            capacity: 0,
        }
    }

    /// The next JSON array of `PostableAlert`s sent at `now`, and how many alerts it holds:
    /// new firing alerts (ending in five minutes unless sent again) and the resolution
    /// (`endsAt` now) of the previous request's firing alerts.
    fn next_body(&mut self, now: DateTime<Utc>) -> (String, usize) {
        let now_text = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let ends_text = (now + FIRING_FOR).to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut body = String::with_capacity(self.capacity + 64);
        body.push('[');
        let resolving = std::mem::take(&mut self.pending);
        for alert in &resolving {
            push_alert(&mut body, alert, &now_text);
        }
        for index in 0..self.firing {
            let alert = self.firing_alert(index, &now_text);
            push_alert(&mut body, &alert, &ends_text);
            self.pending.push(alert);
        }
        body.push(']');
        self.seq += 1;
        self.capacity = body.len();
        (body, resolving.len() + self.firing)
    }

    /// A new alert's labels, annotations and `startsAt`: `{"labels":{...},...,"startsAt":"T"`.
    fn firing_alert(&self, index: usize, starts_at: &str) -> String {
        let number = self.seq as usize * self.firing + index;
        let service = if number % UNMAPPED_EVERY == UNMAPPED_EVERY - 1 {
            UNKNOWN_SERVICE
        } else {
            let spread = self.worker + index + self.seq as usize;
            &self.services[spread % self.services.len()]
        };
        let alert_name = ALERT_NAMES[(self.worker + index) % ALERT_NAMES.len()];
        let severity = if index.is_multiple_of(4) {
            "critical"
        } else {
            "warning"
        };
        let mut alert = String::with_capacity(256);
        let _ = write!(
            alert,
            r#"{{"labels":{{"alertname":"{alert_name}","instance":"w{}-{}-{index}","service":"{service}","severity":"{severity}"}},"annotations":{{"summary":"{alert_name} on {service}"}},"generatorURL":"http://prometheus.bench/graph","startsAt":"{starts_at}""#,
            self.worker, self.seq
        );
        alert
    }
}

/// Appends `alert` (open, up to `startsAt`) closed with `endsAt`, comma-separated.
fn push_alert(body: &mut String, alert: &str, ends_at: &str) {
    if body.len() > 1 {
        body.push(',');
    }
    body.push_str(alert);
    body.push_str(r#","endsAt":""#);
    body.push_str(ends_at);
    body.push_str("\"}");
}

// ---------------------------------------------------------------------------------------------
// Where the time went
// ---------------------------------------------------------------------------------------------

/// CPU times and rootcause's ingest metrics at one instant.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    server_cpu_secs: Option<f64>,
    /// The server's CPU seconds by thread name.
    server_threads: BTreeMap<String, f64>,
    own_cpu_secs: Option<f64>,
    /// Machine-wide busy and I/O-wait CPU seconds.
    machine: Option<(f64, f64)>,
    metrics: Option<IngestTotals>,
}

impl Snapshot {
    async fn take(
        client: &reqwest::Client,
        server_pid: u32,
        metrics_url: Option<&str>,
    ) -> Snapshot {
        let metrics = match metrics_url {
            Some(url) => IngestTotals::fetch(client, url).await,
            None => None,
        };
        Snapshot {
            at: Instant::now(),
            server_cpu_secs: process_cpu_secs(&format!("/proc/{server_pid}/stat")),
            server_threads: thread_cpu_secs(server_pid),
            own_cpu_secs: process_cpu_secs("/proc/self/stat"),
            machine: machine_cpu_secs(),
            metrics,
        }
    }
}

/// User plus system CPU seconds of a process, from its `/proc/PID/stat`.
fn process_cpu_secs(stat_path: &str) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(stat_path).ok()?)
}

/// CPU seconds of a process's threads, summed by thread name, from `/proc/PID/task/*/stat`.
fn thread_cpu_secs(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name.to_owned());
        if let (Some(name), Some(secs)) = (name, stat_cpu_secs(&stat)) {
            *by_name.entry(name).or_default() += secs;
        }
    }
    by_name
}

/// Cores used per thread name between two readings, busiest first; idle names left out.
fn thread_cores(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    secs: f64,
) -> Vec<ThreadCpu> {
    if secs <= 0.0 {
        return Vec::new();
    }
    let mut cores = after
        .iter()
        .map(|(name, end)| ThreadCpu {
            thread: name.clone(),
            cores: (end - before.get(name).copied().unwrap_or(0.0)) / secs,
        })
        .filter(|t| t.cores >= 0.01)
        .collect::<Vec<_>>();
    cores.sort_by(|a, b| b.cores.total_cmp(&a.cores));
    cores
}

/// User plus system CPU seconds in the text of a `stat` file.
fn stat_cpu_secs(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .collect::<Vec<_>>();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / CLOCK_TICKS_PER_SEC)
}

/// Busy and I/O-wait CPU seconds of the whole machine, from `/proc/stat`.
fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse::<f64>().ok())
        .collect::<Option<Vec<_>>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| ticks.get(i))
        .sum::<Option<f64>>()?;
    let iowait = *ticks.get(4)?;
    Some((busy / CLOCK_TICKS_PER_SEC, iowait / CLOCK_TICKS_PER_SEC))
}

/// Cumulative ingest histograms of rootcause's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
struct IngestTotals {
    commits: f64,
    committed_alerts: f64,
    commit_secs: f64,
    commit_count: f64,
    correlation_secs: f64,
    correlation_count: f64,
}

impl IngestTotals {
    async fn fetch(client: &reqwest::Client, url: &str) -> Option<IngestTotals> {
        let text = client.get(url).send().await.ok()?.text().await.ok()?;
        Some(IngestTotals::parse(&text))
    }

    fn parse(text: &str) -> IngestTotals {
        use rootcause::telemetry::names::{
            CORRELATION_SECONDS, INGEST_BATCH_ALERTS, INGEST_COMMIT_SECONDS,
        };
        let total = |metric: &str, suffix: &str| series_total(text, &format!("{metric}{suffix}"));
        IngestTotals {
            commits: total(INGEST_BATCH_ALERTS, "_count"),
            committed_alerts: total(INGEST_BATCH_ALERTS, "_sum"),
            commit_secs: total(INGEST_COMMIT_SECONDS, "_sum"),
            commit_count: total(INGEST_COMMIT_SECONDS, "_count"),
            correlation_secs: total(CORRELATION_SECONDS, "_sum"),
            correlation_count: total(CORRELATION_SECONDS, "_count"),
        }
    }

    /// What happened between `earlier` and these totals, over `secs` seconds.
    fn since(&self, earlier: &IngestTotals, secs: f64) -> IngestStats {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let commits = self.commits - earlier.commits;
        IngestStats {
            group_commits_per_sec: ratio(commits, secs),
            mean_alerts_per_commit: ratio(
                self.committed_alerts - earlier.committed_alerts,
                commits,
            ),
            mean_commit_ms: 1000.0
                * ratio(
                    self.commit_secs - earlier.commit_secs,
                    self.commit_count - earlier.commit_count,
                ),
            mean_correlation_ms: 1000.0
                * ratio(
                    self.correlation_secs - earlier.correlation_secs,
                    self.correlation_count - earlier.correlation_count,
                ),
            writer_busy: ratio(self.commit_secs - earlier.commit_secs, secs),
        }
    }
}

/// The sum of every sample of `series` (over all its label sets) in Prometheus text format.
fn series_total(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(series)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None => rest,
            };
            // A longer name with the same prefix is another series.
            let value = rest.strip_prefix(' ')?.split_whitespace().next()?;
            value.parse::<f64>().ok()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// The report as text: conditions, the table, ratios, and where the time went.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrootcause bench ingest: POST /api/v2/alerts, {} s per target after a {} s warm-up, \
         {} tasks x {} alerts per request (half new firing, half resolving)",
        report.duration_secs, report.warm_up_secs, report.concurrency, report.alerts_per_request
    );
    let _ = writeln!(
        out,
        "machine: {} cores, shared by the target and this load generator",
        report.cores
    );
    out.push_str("durability:\n");
    for line in &report.durability {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    render_table(&mut out, &report.targets);
    if !report.ratios.is_empty() {
        out.push('\n');
    }
    for ratio in &report.ratios {
        let value = ratio
            .ratio
            .map_or_else(|| "n/a (not measured)".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            out,
            "{} / {} alerts/s: {value}",
            ratio.target, ratio.baseline
        );
    }
    render_targets(&mut out, report);
    render_details(&mut out, &report.targets);
    out
}

/// The ingest targets of the design (DESIGN §11), met or not, for the SQLite default.
fn render_targets(out: &mut String, report: &Report) {
    let Some(sqlite) = report
        .targets
        .iter()
        .find(|t| t.target == "rootcause (SQLite)")
    else {
        return;
    };
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    out.push_str("\ntargets:\n");
    match sqlite.alerts_per_sec() {
        Some(rate) => {
            let _ = writeln!(
                out,
                "  rootcause (SQLite) >= {TARGET_ALERTS_PER_SEC} alerts/s: {} ({rate:.0})",
                verdict(rate >= TARGET_ALERTS_PER_SEC as f64)
            );
        }
        None => out.push_str("  rootcause (SQLite): not measured\n"),
    }
    let ratio = report
        .ratios
        .iter()
        .find(|r| r.target == sqlite.target)
        .and_then(|r| r.ratio);
    match ratio {
        Some(ratio) => {
            let _ = writeln!(
                out,
                "  rootcause (SQLite) >= Alertmanager's rate: {} ({ratio:.2}x)",
                verdict(ratio >= 1.0)
            );
        }
        None => out.push_str("  rootcause (SQLite) >= Alertmanager's rate: not measured\n"),
    }
}

fn render_table(out: &mut String, targets: &[TargetReport]) {
    let width = targets
        .iter()
        .map(|t| t.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:>13}  {:>8}  {:>10}  {:>8}  {:>8}  {:>8}  {:>6}",
        "TARGET", "ALERTS ACKED", "DURATION", "ALERTS/S", "REQUESTS", "P50 MS", "P99 MS", "ERRORS"
    );
    for target in targets {
        match (&target.measurement, &target.note) {
            (Some(m), _) => {
                let _ = writeln!(
                    out,
                    "{:<width$}  {:>13}  {:>6.1} s  {:>10}  {:>8}  {:>8.1}  {:>8.1}  {:>6}",
                    target.target,
                    thousands(m.acknowledged_alerts),
                    m.duration_secs,
                    thousands(m.alerts_per_sec.round() as u64),
                    thousands(m.requests),
                    m.p50_ms,
                    m.p99_ms,
                    thousands(m.errors),
                );
            }
            (None, note) => {
                let note = note.as_deref().unwrap_or("not run");
                let first_line = note.lines().next().unwrap_or(note);
                let _ = writeln!(out, "{:<width$}  {first_line}", target.target);
            }
        }
    }
}

fn render_details(out: &mut String, targets: &[TargetReport]) {
    out.push_str("\nwhere the time went (measured window):\n");
    for target in targets {
        let Some(m) = &target.measurement else {
            continue;
        };
        let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
        let _ = write!(
            out,
            "  {}: CPU in cores: server {}, load generator {}, whole machine {} (+ {} I/O wait)",
            target.target,
            cores(m.server_cpu_cores),
            cores(m.generator_cpu_cores),
            cores(m.machine_busy_cores),
            cores(m.machine_iowait_cores),
        );
        if let Some(i) = &m.ingest {
            let _ = write!(
                out,
                "; {:.0} group commits/s of {:.0} alerts, {:.1} ms each in the database \
                 (correlation {:.1} ms, beside it), database busy committing {:.0}%",
                i.group_commits_per_sec,
                i.mean_alerts_per_commit,
                i.mean_commit_ms,
                i.mean_correlation_ms,
                i.writer_busy * 100.0
            );
        }
        out.push('\n');
        if m.server_threads.len() > 1 {
            let threads = m
                .server_threads
                .iter()
                .map(|t| format!("{} {:.2}", t.thread, t.cores))
                .collect::<Vec<_>>();
            let _ = writeln!(out, "    server threads: {}", threads.join(", "));
        }
        if let Some(error) = &m.first_error {
            let _ = writeln!(out, "    {} errors; the first: {error}", m.errors);
        }
    }
    for target in targets.iter().filter(|t| t.status == Status::Failed) {
        if let Some(note) = &target.note {
            let _ = writeln!(out, "  {}: {note}", target.target);
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rootcause_correlation::{AlertStatus, Fingerprint};

    use super::*;
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
        let second = alertmanager_api(second, now, 300_000).unwrap();
        let first = alertmanager_api(first, now, 300_000).unwrap();
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
