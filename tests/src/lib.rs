//! Harness for the end-to-end tests: builds the real `rootcause` binary, starts it on a free port
//! with its own data directory, and talks to it over HTTP.
//!
//! The binary is built with `cargo build` the first time a test needs it (a no-op when it is up to
//! date), so the tests never run against a stale build. `ROOTCAUSE_BIN` points them at a binary
//! built another way.
//!
//! [`Alertmanager`] runs a real Prometheus Alertmanager next to the server; when its binary is
//! missing the test skips loudly, or fails under `ROOTCAUSE_REQUIRE_E2E=1`. [`webdriver`] drives
//! headless Chromium for the console's tests, under the same rule.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

pub mod webdriver;

pub use nix::sys::signal::Signal;
pub use rootcause::testing::TestDatabase;

/// How long a server may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (where `Cargo.toml` with `[workspace]` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The `rootcause` binary, built for the profile these tests were built with.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("ROOTCAUSE_BIN") {
            return PathBuf::from(path);
        }
        // This test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test executable has a path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>");
        let target_dir = profile_dir.parent().expect("<target>");
        // Built as `cargo test --workspace` resolves features (every member, with the features
        // its tests turn on), so the dependencies it just compiled are reused: `-p rootcause-cli`
        // alone resolves other features and rebuilt a good part of the tree (two minutes of the
        // suite on a 2-core machine, against seconds this way).
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the rootcause binary failed");
        profile_dir.join("rootcause")
    })
}

/// How long a command-line run may take before the test fails.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A command for the binary with none of the developer's own `ROOTCAUSE_*` settings, which must
/// not leak into what is under test.
fn rootcause_command() -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROOTCAUSE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `rootcause ARGS...` to completion and returns (exit status, stdout, stderr). Fails the
/// test if it runs longer than a minute (a `serve` that unexpectedly starts, say).
pub fn run_cli(args: &[&str]) -> (ExitStatus, String, String) {
    let child = rootcause_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = match done_rx.recv_timeout(CLI_TIMEOUT) {
        Ok(output) => output.expect("the binary's output is readable"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("rootcause {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
    };
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The JSON body of `response`; panics with its status and text when it is not JSON.
pub async fn json_of(response: reqwest::Response) -> serde_json::Value {
    let status = response.status();
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("not JSON ({error}); status {status}: {text}"))
}

/// Runs the CLI off the async workers ([`run_cli`]) and checks it succeeded; returns its stdout.
pub async fn cli_ok(args: Vec<String>) -> String {
    let shown = args.join(" ");
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args)
    })
    .await
    .expect("the CLI task ran");
    assert!(
        status.success(),
        "rootcause {shown} failed: {status}\n{stdout}\n{stderr}"
    );
    stdout
}

/// How to start a server.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// Data directory; a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
    /// Arguments after `serve` (besides `--listen`, `--data-dir` and `--log-format`).
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running `rootcause serve`. Killed (SIGKILL) when dropped, unless already stopped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The data directory in use.
    pub data_dir: PathBuf,
    _temporary_dir: Option<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
    /// HTTP client for talking to the server.
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a server and waits until `/readyz` answers 200.
    ///
    /// The server listens on port 0 (the kernel picks a free port, so parallel tests never
    /// collide) and logs JSON; its address is read from the "ready" log line.
    pub async fn start(options: ServerOptions) -> Server {
        let (data_dir, temporary_dir) = match options.data_dir.clone() {
            Some(dir) => (dir, None),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        Server::start_in(options, data_dir, temporary_dir).await
    }

    async fn start_in(
        options: ServerOptions,
        data_dir: PathBuf,
        temporary_dir: Option<tempfile::TempDir>,
    ) -> Server {
        let mut command = rootcause_command();
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&options.args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the server starts");
        let (log, address) = follow_log(&mut child);

        let address = match address.recv_timeout(START_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not report ready within {START_TIMEOUT:?}; its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let server = Server {
            child,
            url: format!("http://{address}"),
            data_dir,
            _temporary_dir: temporary_dir,
            log,
            http: reqwest::Client::new(),
        };
        let ready = server.get("/readyz").await;
        assert_eq!(ready.status(), 200, "/readyz after the ready log line");
        server
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the server answers")
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// PUT a body with a content type.
    pub async fn put(&self, path: &str, content_type: &str, body: String) -> reqwest::Response {
        self.http
            .put(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the process to exit.
    pub fn terminate(self, timeout: Duration) -> ExitStatus {
        self.send_sigterm();
        self.wait_for_exit(timeout)
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        self.send_signal(Signal::SIGTERM);
    }

    /// Sends a signal without waiting.
    pub fn send_signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("a pid fits in i32"));
        kill(pid, signal).expect("signal the server");
    }

    /// Kills the server with SIGKILL (no chance to flush or clean up: a crash, a power cut for
    /// the process) and waits for it to die. The data directory stays, temporary or not, for
    /// [`Killed::restart`].
    pub fn kill_9(mut self) -> Killed {
        self.send_signal(Signal::SIGKILL);
        let status = self.child.wait().expect("wait for the killed server");
        Killed {
            status,
            data_dir: self.data_dir.clone(),
            temporary_dir: self._temporary_dir.take(),
            log: self.log(),
        }
    }

    /// Waits (up to `timeout`) for the process to exit.
    pub fn wait_for_exit(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "the server did not exit within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server killed by [`Server::kill_9`]: its exit status, log and data directory.
pub struct Killed {
    /// How the process ended (killed by signal 9).
    pub status: ExitStatus,
    /// The data directory it used.
    pub data_dir: PathBuf,
    temporary_dir: Option<tempfile::TempDir>,
    /// Everything it logged before it died.
    pub log: String,
}

impl Killed {
    /// Starts a server again on the same data directory (`options.data_dir` is ignored; the
    /// database URL, flags and environment are `options`' own: pass the ones of the first start
    /// to restart on the same database).
    pub async fn restart(self, options: ServerOptions) -> Server {
        Server::start_in(options, self.data_dir, self.temporary_dir).await
    }
}

/// Collects the child's stderr lines in the background and reports the listening address from
/// the "rootcause is ready" line.
fn follow_log(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, mpsc::Receiver<String>) {
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (address_tx, address_rx) = mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "rootcause is ready"
                && let Some(address) = event["listen"].as_str()
            {
                let _ = address_tx.send(address.to_owned());
            }
            lines.lock().unwrap().push(line);
        }
    });
    (log, address_rx)
}

/// The value of a Prometheus metric in a text exposition: the sum of the samples of `name` whose
/// labels include every `(label, value)` of `labels` (0 when none does).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, series_labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels.iter().all(|(label, value)| {
                    series_labels
                        .split(',')
                        .any(|pair| pair == format!("{label}=\"{value}\""))
                });
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Names the Alertmanager binary the tests run; unset, `prometheus-alertmanager` (Debian's
/// package) or `alertmanager` is looked up on `PATH`.
pub const ALERTMANAGER_BIN_VAR: &str = "ROOTCAUSE_TEST_ALERTMANAGER";

/// How long an Alertmanager may take to become ready.
const ALERTMANAGER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// The Alertmanager binary, or why there is none.
pub fn alertmanager_binary() -> Result<PathBuf, String> {
    find_binary(
        ALERTMANAGER_BIN_VAR,
        &["prometheus-alertmanager", "alertmanager"],
        "apt-get install prometheus-alertmanager",
    )
}

/// A component's binary: the file `env_var` names if set, else the first of `names` on `PATH`
/// (or in `/usr/bin`), or why there is none (saying how to install it: `install`).
pub fn find_binary(env_var: &str, names: &[&str], install: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{env_var}={} is not a file", path.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    for name in names {
        if let Some(found) = dirs.iter().map(|dir| dir.join(name)).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    Err(format!(
        "{} is not on PATH (install it with `{install}`, or set {env_var})",
        names.join(" or ")
    ))
}

/// A port nobody listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A real Prometheus Alertmanager, on a free port with its own storage directory, routing every
/// alert to one webhook with `send_resolved: true`. Killed when dropped.
///
/// Alerts are grouped by `alertname`; a group is notified 1 s after its first alert and then at
/// most every second while it changes (`group_wait` and `group_interval` of 1 s), so tests see
/// deliveries quickly. Gossip is off: two instances are two independent deliverers, which is
/// exactly the double delivery of an HA pair whose members do not (yet) see each other.
pub struct Alertmanager {
    server: ReadyServer,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Starts an Alertmanager that notifies `webhook_url` and waits until `/-/ready` answers
    /// 200. Returns `None` when the binary is missing, after a loud notice (or fails the test
    /// under `ROOTCAUSE_REQUIRE_E2E=1`).
    pub async fn start(webhook_url: &str) -> Option<Alertmanager> {
        Alertmanager::start_with_token(webhook_url, None).await
    }

    /// [`Alertmanager::start`], authenticating its webhook with `token` as a bearer token read
    /// from a credentials file (its receiver's `http_config`), as an operator would configure it.
    pub async fn start_with_token(webhook_url: &str, token: Option<&str>) -> Option<Alertmanager> {
        let binary = match alertmanager_binary() {
            Ok(binary) => binary,
            Err(why) => {
                rootcause::testing::missing_component("Alertmanager", &why);
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("am.yml");
        let http_config = match token {
            None => String::new(),
            Some(token) => {
                let file = dir.path().join("rootcause-token");
                std::fs::write(&file, token).expect("write the token file");
                format!(
                    "        http_config:\n          authorization:\n            type: Bearer\n            \
                     credentials_file: '{}'\n",
                    file.display()
                )
            }
        };
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: rc\n  group_by: ['alertname']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: rc\n    \
                 webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n\
                 {http_config}"
            ),
        )
        .expect("write the Alertmanager configuration");
        let data = format!("--storage.path={}", dir.path().join("data").display());
        let args = [
            format!("--config.file={}", config.display()),
            data,
            "--cluster.listen-address=".to_owned(),
        ];
        let server =
            ReadyServer::start("Alertmanager", &binary, &args, ALERTMANAGER_START_TIMEOUT).await;
        Some(Alertmanager {
            url: server.url.clone(),
            server,
            _dir: dir,
            http: reqwest::Client::new(),
        })
    }

    /// Posts alerts in Alertmanager's API v2 shape (a JSON array) to `/api/v2/alerts`, as
    /// Prometheus does; fails the test unless Alertmanager takes them.
    pub async fn post_alerts(&self, alerts: &serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/api/v2/alerts", self.url))
            .json(alerts)
            .send()
            .await
            .expect("Alertmanager answers");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "Alertmanager refused the alerts: {body}");
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`), with its fingerprints.
    pub async fn alerts(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .await
            .expect("Alertmanager answers")
            .json()
            .await
            .expect("a JSON alert list")
    }

    /// Webhook notifications attempted so far and those that failed (from its `/metrics`).
    pub async fn webhook_notifications(&self) -> (u64, u64) {
        let metrics = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("Alertmanager answers")
            .text()
            .await
            .expect("a metrics text");
        let webhook = [("integration", "webhook")];
        let count = |name| metric_value(&metrics, name, &webhook) as u64;
        (
            count("alertmanager_notifications_total"),
            count("alertmanager_notifications_failed_total"),
        )
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A server of the Prometheus family (Alertmanager, Prometheus) on a free port of 127.0.0.1,
/// its stderr collected. Killed when dropped.
pub struct ReadyServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl ReadyServer {
    /// Starts `binary` with `args` and `--web.listen-address` on a free port, and waits until
    /// its `/-/ready` answers 200 (within `timeout`; failing early if it exits). The port is free
    /// when picked but could be taken before the server binds it: three tries.
    pub async fn start(name: &str, binary: &Path, args: &[String], timeout: Duration) -> Self {
        let http = reqwest::Client::new();
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(binary)
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
            let log = collect_lines(&mut child);
            let mut server = ReadyServer {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            match server.wait_ready(&http, timeout).await {
                Ok(()) => return server,
                Err(why) => {
                    let log = server.log();
                    drop(server);
                    if !log.contains("address already in use") {
                        panic!("{name} did not become ready: {why}; its log:\n{log}");
                    }
                    failures.push(log);
                }
            }
        }
        panic!(
            "{name} could not bind a free port in 3 tries; its logs:\n{}",
            failures.join("\n---\n")
        )
    }

    async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return Err(format!("it exited with {status}"));
            }
            if let Ok(response) = http.get(format!("{}/-/ready", self.url)).send().await
                && response.status() == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for ReadyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects the child's stderr lines in the background (and keeps the pipe drained).
pub fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    log
}
