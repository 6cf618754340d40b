//! The targets of the benches as child processes: `rootcause serve` of this very binary on a
//! free port with a scratch store (SQLite directory or PostgreSQL database), and Alertmanager.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

use rootcause::config::redact_url;

use super::profile::series_total;

/// Longest a target may take to become ready (rootcause stores a 10,000-service topology first).
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Names the Alertmanager binary has on PATH (Debian's package, upstream's tarball).
pub(crate) const ALERTMANAGER_NAMES: [&str; 2] = ["prometheus-alertmanager", "alertmanager"];

/// Alertmanager configuration: every alert goes to a receiver without notifications.
pub(crate) const ALERTMANAGER_CONFIG: &str =
    "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n";

/// Prefix of the scratch PostgreSQL databases.
pub(crate) const DATABASE_PREFIX: &str = "rc_bench_";

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

/// The Alertmanager binary: the one given (which must exist), else one found on PATH.
pub(crate) fn alertmanager_binary(given: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
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
pub(crate) fn alertmanager_name(binary: &Path) -> String {
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

pub(crate) fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
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
    pub(crate) child: Child,
    /// `http://address`.
    pub(crate) base_url: String,
    /// Its stdout and stderr.
    pub(crate) log_path: PathBuf,
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
            log_path: log_path.clone(),
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

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with its exit status and last log lines if the process has exited: a target that
    /// died midway would otherwise read as one refusing connections.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "exited ({status}); its last log lines:\n{}",
                log_tail(&self.log_path)
            ),
            Err(error) => bail!("cannot check the process: {error}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, indented.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines = text.lines().collect::<Vec<_>>();
    lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|line| format!("    {line}\n"))
        .collect()
}

/// A database created for one run on the given PostgreSQL server.
pub(crate) struct ScratchDatabase {
    pub(crate) admin_url: String,
    pub(crate) name: String,
    pub(crate) url: String,
    /// The server's durability settings, as `synchronous_commit=on, fsync=on`.
    pub(crate) settings: String,
}

impl ScratchDatabase {
    pub(crate) async fn create(admin_url: &str) -> anyhow::Result<ScratchDatabase> {
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
    pub(crate) async fn drop(self) {
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
pub(crate) fn replace_database(url: &str, database: &str) -> String {
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

/// Most a server may take to drain its queues (see [`settle`]).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Waits until the ingest and ranking queues are empty at two readings a second apart.
pub(crate) async fn settle(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let (mut quiet, mut waited) = (0, 0u64);
    while quiet < 2 {
        if Instant::now() > deadline {
            bail!("the server did not drain its queues within {SETTLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let text = metrics(client, base).await?;
        let (ingest, ranking) = (
            series_total(&text, "rootcause_ingest_queue_depth"),
            series_total(&text, "rootcause_ranking_queue_depth"),
        );
        quiet = if ingest + ranking == 0.0 {
            quiet + 1
        } else {
            0
        };
        if quiet == 0 && waited % 10 == 0 {
            eprintln!(
                "    waiting: {ingest} requests queued for ingest, {ranking} incidents for \
                 ranking, {} open incidents",
                series_total(&text, "rootcause_incidents_open")
            );
        }
        waited += 1;
    }
    Ok(())
}

/// The text of the server's `/metrics`.
pub(crate) async fn metrics(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .context("GET /metrics failed")?
        .text()
        .await
        .context("GET /metrics failed")
}
