//! `[prometheus]`: where and what to read from a Prometheus server, and the window of an
//! incident to read.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::every_problem;
use super::secrets::redact_url;

/// Prometheus refuses a range query with more points per series than this.
pub const MAX_POINTS: i64 = 11_000;

/// Where and what to read from Prometheus (`[prometheus]` in the configuration file). The
/// default has no URL: nothing is pulled until a deployment says where its Prometheus is.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Base URL of the server (`http://prometheus:9090`, or with a path prefix when it sits
    /// behind a proxy). Unset: pulling is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds between samples: the `step` of `query_range`, and the grid [`Self::window`]
    /// aligns to.
    pub step_s: u64,
    /// Seconds before the incident's first alert to read: the baseline anomalies are measured
    /// against.
    pub before_s: u64,
    /// Seconds after the first alert to read (never past now).
    pub after_s: u64,
    /// Budget for a whole [`PrometheusSource::fetch`](crate::prometheus::PrometheusSource::fetch), every query included: evidence that
    /// comes late must not hold up the diagnosis.
    pub timeout_ms: u64,
    /// Label that names the service in the results of a template asked once for all services.
    pub service_label: String,
    /// Metric name → PromQL template. The name becomes the series' name (and so its
    /// [`Family`](rootcause_models::case::Family)); see the module documentation for the placeholders.
    pub queries: BTreeMap<String, String>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: None,
            step_s: 60,
            before_s: 1800,
            after_s: 600,
            timeout_ms: 2000,
            service_label: "service".to_owned(),
            queries: BTreeMap::new(),
        }
    }
}

// By hand so that a password in the URL never reaches a log line.
impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("step_s", &self.step_s)
            .field("before_s", &self.before_s)
            .field("after_s", &self.after_s)
            .field("timeout_ms", &self.timeout_ms)
            .field("service_label", &self.service_label)
            .field("queries", &self.queries)
            .finish()
    }
}

impl PrometheusConfig {
    /// Checks what would otherwise only fail at the first incident, hours after start-up: every
    /// problem, joined by `; `.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.url
            && let Err(why) = query_range_endpoint(url)
        {
            problems.push(why);
        }
        match self
            .before_s
            .saturating_add(self.after_s)
            .checked_div(self.step_s)
        {
            None => problems.push("prometheus.step_s must be at least 1".to_owned()),
            Some(steps) if steps.saturating_add(1) > MAX_POINTS as u64 => {
                problems.push(format!(
                    "prometheus.before_s + after_s make {} samples at {} s; Prometheus \
                     answers at most {MAX_POINTS} points per series",
                    steps.saturating_add(1),
                    self.step_s
                ));
            }
            Some(_) => {}
        }
        if self.timeout_ms == 0 {
            problems.push("prometheus.timeout_ms must be at least 1".to_owned());
        }
        if self.service_label.trim().is_empty() {
            problems.push("prometheus.service_label must not be empty".to_owned());
        }
        for (name, template) in &self.queries {
            if name.trim().is_empty() {
                problems.push("prometheus.queries: a query name is empty".to_owned());
            }
            if template.trim().is_empty() {
                problems.push(format!("prometheus.queries.{name}: the template is empty"));
            }
        }
        every_problem(problems)
    }

    /// The `[from, to]` to fetch for an incident whose first alert came at `first_alert` (unix
    /// seconds), never past `now`.
    ///
    /// Both ends are floored to a multiple of `step_s`, so that every fetch of any incident
    /// samples the same grid: series of different queries and of repeated fetches line up
    /// sample for sample, and minute-aligned windows match the project's per-minute series.
    pub fn window(&self, first_alert: i64, now: i64) -> (i64, i64) {
        let step = i64::try_from(self.step_s.max(1)).unwrap_or(i64::MAX);
        let before = i64::try_from(self.before_s).unwrap_or(i64::MAX);
        let after = i64::try_from(self.after_s).unwrap_or(i64::MAX);
        let from = first_alert.saturating_sub(before).div_euclid(step) * step;
        let to = first_alert.saturating_add(after).min(now).div_euclid(step) * step;
        (from, to.max(from))
    }
}

/// The `query_range` endpoint under a base URL, or why the base URL is unusable.
pub fn query_range_endpoint(base: &str) -> Result<Url, String> {
    let shown = redact_url(base);
    let url = Url::parse(base).map_err(|e| format!("prometheus.url {shown:?}: {e}"))?;
    match url.scheme() {
        "http" => {}
        // reqwest is built without TLS here (no TLS feature in the workspace): better refused at
        // start-up than failing at every incident.
        "https" => {
            return Err(format!(
                "prometheus.url {shown:?}: https is not supported by this build (no TLS); use \
                 http, or a local TLS-terminating proxy"
            ));
        }
        other => {
            return Err(format!(
                "prometheus.url {shown:?}: scheme {other:?} is not http"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("prometheus.url {shown:?}: no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "prometheus.url {shown:?}: a base URL takes no query or fragment"
        ));
    }
    let path = format!("{}/api/v1/query_range", url.path().trim_end_matches('/'));
    let mut url = url;
    url.set_path(&path);
    Ok(url)
}
