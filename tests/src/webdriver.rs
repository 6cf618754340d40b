//! A small WebDriver client for the console's browser tests: Debian's `chromedriver` driving
//! headless `chromium`, over the W3C WebDriver protocol (JSON over HTTP, spoken with the
//! suite's own reqwest client). Only what the tests use: open a page, find elements by CSS,
//! click, type, read text and attributes, run a script, resize, take screenshots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::{find_binary, free_port};

/// The key W3C WebDriver gives element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for an element lasts.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A headless Chromium session. The driver and browser are stopped when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280 × 900. Returns `Err` with the
    /// reason when either is not installed.
    pub async fn start() -> Result<Browser, String> {
        let driver_bin = find_binary(
            "ROOTCAUSE_TEST_CHROMEDRIVER",
            &["chromedriver"],
            "apt-get install chromium-driver",
        )?;
        let chromium = find_binary(
            "ROOTCAUSE_TEST_CHROMIUM",
            &["chromium", "chromium-browser"],
            "apt-get install chromium",
        )?;
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{} did not start: {e}", driver_bin.display()))?;
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        while browser.call("GET", "/status", None).await.is_err() {
            if started.elapsed() > PATIENCE {
                return Err("chromedriver did not answer within 20 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-background-networking"],
            },
        }}});
        let session = browser.call("POST", "/session", Some(capabilities)).await?;
        let id = session["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {session}"))?;
        browser.base = format!("{}/session/{id}", browser.base);
        Ok(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {}", value["value"]))
        }
    }

    async fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The current page's address.
    pub async fn url(&self) -> String {
        self.must("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching `css`, now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .must(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to [`PATIENCE`] for it; panics with the
    /// page's text when none appears.
    pub async fn wait_for(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(first) = self.find_all(css).await.into_iter().next() {
                return first;
            }
            if started.elapsed() > PATIENCE {
                let text = self
                    .script("return document.body.innerText", json!([]))
                    .await;
                panic!(
                    "no element matches {css:?} at {} after {PATIENCE:?}; the page says:\n{text}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until the first element matching `css` has text for which `accept` holds; returns
    /// that text.
    pub async fn wait_for_text(&self, css: &str, accept: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            for element in self.find_all(css).await {
                if let Ok(text) = self
                    .call("GET", &format!("/element/{}/text", element.0), None)
                    .await
                {
                    let text = text.as_str().unwrap_or_default().to_owned();
                    if accept(&text) {
                        return text;
                    }
                }
            }
            if started.elapsed() > PATIENCE {
                let text = self
                    .script("return document.body.innerText", json!([]))
                    .await;
                panic!(
                    "no {css:?} with the expected text after {PATIENCE:?}; the page says:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks an element.
    pub async fn click(&self, element: &Element) {
        self.must("POST", &format!("/element/{}/click", element.0), None)
            .await;
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.must(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        let text = self
            .must("GET", &format!("/element/{}/text", element.0), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// An element's attribute (or property).
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .must(
                "GET",
                &format!("/element/{}/attribute/{name}", element.0),
                None,
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.must(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light), through Chromium's DevTools
    /// protocol (ChromeDriver's `goog/cdp/execute`).
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.must(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia",
                        "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}})),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) -> PathBuf {
        let data = self.must("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
        path.to_path_buf()
    }

    /// Saves a PNG of the whole page (not only the viewport), by growing the window to the
    /// page's height first, then restoring it.
    pub async fn full_page_screenshot(&self, path: &Path, width: u32) -> PathBuf {
        let height = self
            .script(
                "return Math.ceil(document.documentElement.scrollHeight)",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(400, 8000) as u32;
        self.resize(width, height + 120).await;
        let saved = self.screenshot(path).await;
        self.resize(width, 900).await;
        saved
    }
}

impl Browser {
    /// Ends the session, which closes Chromium, then the driver.
    pub async fn quit(self) {
        let _ = self.call("DELETE", "", None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After `quit`, or a panic mid-test (then Chromium may outlive the driver briefly; it
        // exits when its DevTools pipe closes).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
