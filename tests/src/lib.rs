//! Harness for the end-to-end tests: builds the real `rootcause` binary, starts it on a free port
//! with its own data directory, and talks to it over HTTP.
//!
//! The binary is built with `cargo build` the first time a test needs it (a no-op when it is up to
//! date), so the tests never run against a stale build. `ROOTCAUSE_BIN` points them at a binary
//! built another way.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

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
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "rootcause", "--bin", "rootcause"])
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
        let (data_dir, temporary_dir) = match options.data_dir {
            Some(dir) => (dir, None),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                (dir.path().to_path_buf(), Some(dir))
            }
        };
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
