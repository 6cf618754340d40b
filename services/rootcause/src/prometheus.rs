//! Metric evidence pulled from a Prometheus server: `query_range` over the minutes around an
//! incident.
//!
//! Deployments already keep their metrics in Prometheus; reading the window around an incident
//! from there spares them posting metric windows themselves. Which metrics to read is
//! configuration, one PromQL template per metric name, expanded with the services under
//! suspicion:
//!
//! - a template with `{{services}}` (or no placeholder) is asked **once** for all services and
//!   each result series is attributed by its service label: one request instead of hundreds
//!   when an incident spans many services;
//! - a template with `{{service}}` is asked once per service, for metrics that cannot be grouped
//!   by a service label (the service is then known from the request, not from the labels).
//!
//! Evidence is best effort: a query that fails is logged and reported in [`Fetched::errors`]
//! while the others still count, so one typo in one template cannot blind the ranker. Only a
//! server that answers nothing at all makes [`PrometheusSource::fetch`] fail.
//!
//! Placeholders must stand inside **double-quoted** PromQL strings (`service="{{service}}"`,
//! `service=~"{{services}}"`): the escaping is that of a double-quoted string, which is not
//! valid inside single quotes or backticks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rootcause_models::case::{Family, Series, Source};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::store::redact_url;

/// Replaced by one service's name, escaped for a double-quoted PromQL string; the template then
/// runs once per service.
pub const SERVICE_PLACEHOLDER: &str = "{{service}}";

/// Replaced by `a|b|c`, every requested service regex-escaped, for a `=~"..."` matcher (which
/// Prometheus anchors at both ends, so `cart` never matches `cart-db`).
pub const SERVICES_PLACEHOLDER: &str = "{{services}}";

/// Prometheus refuses a range query with more points per series than this.
pub const MAX_POINTS: i64 = 11_000;

/// Requests in flight at once: enough to hide the latency of one-request-per-service templates,
/// few enough not to load a Prometheus that also serves dashboards and rule evaluation.
const MAX_IN_FLIGHT: usize = 8;

/// Bodies quoted in error messages are cut here: a proxy's HTML error page says nothing useful
/// after its first lines, and a log line should stay a line.
const MAX_BODY_IN_ERROR: usize = 300;

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
    /// Budget for a whole [`PrometheusSource::fetch`], every query included: evidence that
    /// comes late must not hold up the diagnosis.
    pub timeout_ms: u64,
    /// Label that names the service in the results of a template asked once for all services.
    pub service_label: String,
    /// Metric name → PromQL template. The name becomes the series' name (and so its
    /// [`Family`]); see the module documentation for the placeholders.
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
            && let Err(why) = endpoint(url)
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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
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
fn endpoint(base: &str) -> Result<Url, String> {
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

/// What one [`PrometheusSource::fetch`] brought back: the series of every query that answered,
/// and why the others did not (each error names its query, and its service for a per-service
/// template).
#[derive(Debug, Default)]
pub struct Fetched {
    /// One series per (service, query name), sorted by service then name.
    pub series: Vec<Series>,
    /// The queries that failed; each was also logged as a warning.
    pub errors: Vec<PrometheusError>,
}

/// Names one request: the query's name, and the service for a per-service template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryName {
    /// The key of the template in `prometheus.queries`.
    pub name: String,
    /// The service it was expanded for; `None` for a template asked once for all services.
    pub service: Option<String>,
}

impl fmt::Display for QueryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(service) => write!(f, "{:?} (service {service:?})", self.name),
            None => write!(f, "{:?}", self.name),
        }
    }
}

/// Why Prometheus evidence is missing.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// Prometheus evaluated nothing: every request failed before an answer (connection refused,
    /// unknown host, no answer in time). The only error [`PrometheusSource::fetch`] returns.
    #[error("Prometheus at {url} is unreachable: {reason}")]
    Unreachable {
        /// The base URL, password redacted.
        url: String,
        /// The first failure, as the network stack put it.
        reason: String,
    },
    /// The base URL cannot be used (see [`PrometheusConfig::validate`]).
    #[error("{0}")]
    InvalidUrl(String),
    /// The time range cannot be asked for.
    #[error("invalid Prometheus time range [{from}, {to}]: {reason}")]
    InvalidRange {
        /// Start, unix seconds.
        from: i64,
        /// End, unix seconds.
        to: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// Prometheus answered `status: "error"`: usually a PromQL syntax error (`bad_data`) or an
    /// evaluation failure (`execution`, `timeout`).
    #[error("Prometheus query {query} failed: {error_type}: {message}")]
    Rejected {
        /// The query.
        query: QueryName,
        /// Prometheus's `errorType`.
        error_type: String,
        /// Prometheus's `error`.
        message: String,
    },
    /// An HTTP error without Prometheus's JSON envelope (a proxy in between, a wrong path).
    #[error("Prometheus query {query}: HTTP {status}: {body}")]
    Http {
        /// The query.
        query: QueryName,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A successful answer in a shape this module does not read (not a matrix, unparsable
    /// sample).
    #[error("Prometheus query {query}: unexpected answer: {reason}")]
    BadResponse {
        /// The query.
        query: QueryName,
        /// What was unexpected.
        reason: String,
    },
    /// No answer within `timeout_ms` (counting from the start of the fetch).
    #[error("Prometheus query {query}: no answer within {timeout_ms} ms")]
    Timeout {
        /// The query.
        query: QueryName,
        /// The budget it exceeded.
        timeout_ms: u64,
    },
    /// The request failed before any answer (connection refused, reset, DNS).
    #[error("Prometheus query {query}: {reason}")]
    Transport {
        /// The query.
        query: QueryName,
        /// The network failure.
        reason: String,
    },
}

impl PrometheusError {
    /// The query this error is about; `None` for errors of the whole fetch.
    pub fn query(&self) -> Option<&QueryName> {
        match self {
            PrometheusError::Rejected { query, .. }
            | PrometheusError::Http { query, .. }
            | PrometheusError::BadResponse { query, .. }
            | PrometheusError::Timeout { query, .. }
            | PrometheusError::Transport { query, .. } => Some(query),
            PrometheusError::Unreachable { .. }
            | PrometheusError::InvalidUrl(_)
            | PrometheusError::InvalidRange { .. } => None,
        }
    }

    /// Whether the request never got an answer: when every query fails this way the server as a
    /// whole is unreachable.
    fn is_transport(&self) -> bool {
        matches!(
            self,
            PrometheusError::Transport { .. } | PrometheusError::Timeout { .. }
        )
    }
}

/// Reads metric windows from one Prometheus server. Cheap to clone (the HTTP client's
/// connection pool is shared).
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    http: reqwest::Client,
    config: Arc<PrometheusConfig>,
    /// The `query_range` URL, or why the configured base URL is unusable: kept rather than
    /// refused so that a misconfiguration shows up in every fetch's error instead of silently
    /// disabling the source.
    endpoint: Result<Url, String>,
}

impl PrometheusSource {
    /// A source for `config`, or `None` when no URL is configured (pulling disabled). Call
    /// [`PrometheusConfig::validate`] first: an unusable URL makes every fetch fail with
    /// [`PrometheusError::InvalidUrl`].
    pub fn new(config: PrometheusConfig) -> Option<PrometheusSource> {
        let endpoint = endpoint(config.url.as_deref()?);
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            // Building fails only when the TLS backend cannot start, and there is none.
            .unwrap_or_default();
        Some(PrometheusSource {
            http,
            config: Arc::new(config),
            endpoint,
        })
    }

    /// The configuration this source was made with.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// Fetches every configured query for `services` over `[from, to]` (unix seconds, both
    /// ends included, one sample every `step_s`), and returns one series per (service, query
    /// name) that has data.
    ///
    /// Sample times are Prometheus's evaluation times, kept as they are: a `rate(...[1m])` or a
    /// gauge read at `t` describes the time up to `t`, which is the project's convention (a
    /// sample's time is the end of the period it covers). Several series for one (service,
    /// name), say one per pod, are averaged per timestamp, ignoring NaN. `+Inf`/`-Inf` (a
    /// `histogram_quantile` past its last bucket) are kept as infinities.
    ///
    /// Queries run concurrently, at most 8 at a time, and the whole fetch takes at most
    /// `timeout_ms`. A failed query is logged (`warn`) and listed in [`Fetched::errors`]; the
    /// others' series are still returned. `Err` only when the range is invalid, the URL
    /// unusable, or the server unreachable (every request failed without an answer).
    pub async fn fetch(
        &self,
        services: &[String],
        from: i64,
        to: i64,
    ) -> Result<Fetched, PrometheusError> {
        let endpoint = self.endpoint.clone().map_err(PrometheusError::InvalidUrl)?;
        let step = i64::try_from(self.config.step_s.max(1)).unwrap_or(i64::MAX);
        if to < from {
            return Err(PrometheusError::InvalidRange {
                from,
                to,
                reason: "it ends before it starts".to_owned(),
            });
        }
        let points = to.saturating_sub(from) / step + 1;
        if points > MAX_POINTS {
            return Err(PrometheusError::InvalidRange {
                from,
                to,
                reason: format!(
                    "{points} points of {step} s; Prometheus answers at most {MAX_POINTS}"
                ),
            });
        }
        let requested: BTreeSet<String> = services.iter().cloned().collect();
        if requested.is_empty() || self.config.queries.is_empty() {
            return Ok(Fetched::default());
        }
        let all: Vec<String> = requested.iter().cloned().collect();
        let jobs = jobs(&self.config.queries, &all);

        let timeout_ms = self.config.timeout_ms.max(1);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut running = JoinSet::new();
        let mut task_of = HashMap::new();
        for (index, job) in jobs.iter().enumerate() {
            let request = Request {
                http: self.http.clone(),
                url: endpoint.clone(),
                query: job.query.clone(),
                from,
                to,
                step,
                timeout_ms,
            };
            let name = job.name.clone();
            let permits = permits.clone();
            let handle = running.spawn(async move {
                // Never closed, so acquiring cannot fail; the permit lives until the answer.
                let _permit = permits.acquire_owned().await;
                (index, request.run(&name).await)
            });
            task_of.insert(handle.id(), index);
        }

        let mut outcomes: Vec<Option<Result<Vec<RawSeries>, PrometheusError>>> =
            jobs.iter().map(|_| None).collect();
        loop {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(Some(Ok((index, outcome)))) => outcomes[index] = Some(outcome),
                Ok(Some(Err(failed))) => {
                    if let Some(&index) = task_of.get(&failed.id()) {
                        outcomes[index] = Some(Err(PrometheusError::BadResponse {
                            query: jobs[index].name.clone(),
                            reason: format!("the request task failed: {failed}"),
                        }));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    running.abort_all();
                    break;
                }
            }
        }

        let mut merged = Merger::default();
        let mut errors = Vec::new();
        let mut answered = false;
        for (job, outcome) in jobs.iter().zip(outcomes) {
            let outcome = outcome.unwrap_or_else(|| {
                Err(PrometheusError::Timeout {
                    query: job.name.clone(),
                    timeout_ms,
                })
            });
            match outcome {
                Ok(series) => {
                    answered = true;
                    merged.add(job, series, &self.config.service_label, &requested);
                }
                Err(error) => {
                    answered |= !error.is_transport();
                    errors.push(error);
                }
            }
        }
        if !answered && let Some(first) = errors.first() {
            let reason = match first {
                PrometheusError::Transport { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            return Err(PrometheusError::Unreachable {
                url: redact_url(self.config.url.as_deref().unwrap_or_default()),
                reason,
            });
        }
        for error in &errors {
            tracing::warn!(%error, "a Prometheus query failed; its metric is left out of the evidence");
        }
        Ok(Fetched {
            series: merged.finish(),
            errors,
        })
    }
}

/// One request to make: a template expanded for all services or for one.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    name: QueryName,
    query: String,
}

/// The requests for `services` (sorted, distinct): one per shared template, one per service for
/// each per-service template.
fn jobs(queries: &BTreeMap<String, String>, services: &[String]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (name, template) in queries {
        if template.contains(SERVICE_PLACEHOLDER) {
            for service in services {
                jobs.push(Job {
                    name: QueryName {
                        name: name.clone(),
                        service: Some(service.clone()),
                    },
                    query: expand(template, Some(service), std::slice::from_ref(service)),
                });
            }
        } else {
            jobs.push(Job {
                name: QueryName {
                    name: name.clone(),
                    service: None,
                },
                query: expand(template, None, services),
            });
        }
    }
    jobs
}

/// `template` with its placeholders replaced. In a per-service expansion `{{services}}` stands
/// for that one service, so a template may use either form of matcher.
fn expand(template: &str, service: Option<&str>, services: &[String]) -> String {
    let mut query = template.to_owned();
    if let Some(service) = service {
        query = query.replace(SERVICE_PLACEHOLDER, &promql_string_escape(service));
    }
    if query.contains(SERVICES_PLACEHOLDER) {
        let alternation = services
            .iter()
            .map(|s| regex_escape(s))
            .collect::<Vec<_>>()
            .join("|");
        // The regex is itself written inside a PromQL string, so its backslashes are escaped a
        // second time: `a.b` → regex `a\.b` → PromQL source `a\\.b`.
        query = query.replace(SERVICES_PLACEHOLDER, &promql_string_escape(&alternation));
    }
    query
}

/// `text` as the inside of a double-quoted PromQL string. PromQL accepts only the escapes of the
/// enclosing quote, so `'` stays as it is; a raw newline would end the string.
fn promql_string_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_ascii_control() => escaped.push_str(&format!("\\x{:02x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` matched literally by a Prometheus (RE2) regex: the characters Go's
/// `regexp.QuoteMeta` escapes.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One `query_range` call and what it needs, owned so it can run on its own task.
struct Request {
    http: reqwest::Client,
    url: Url,
    query: String,
    from: i64,
    to: i64,
    step: i64,
    timeout_ms: u64,
}

impl Request {
    async fn run(self, name: &QueryName) -> Result<Vec<RawSeries>, PrometheusError> {
        let mut url = self.url;
        url.query_pairs_mut()
            .append_pair("query", &self.query)
            .append_pair("start", &self.from.to_string())
            .append_pair("end", &self.to.to_string())
            .append_pair("step", &self.step.to_string())
            // Lets Prometheus stop evaluating what nobody waits for any more.
            .append_pair("timeout", &format!("{}ms", self.timeout_ms));
        let transport = |error: reqwest::Error| {
            if error.is_timeout() {
                PrometheusError::Timeout {
                    query: name.clone(),
                    timeout_ms: self.timeout_ms,
                }
            } else {
                PrometheusError::Transport {
                    query: name.clone(),
                    reason: error_chain(&error.without_url()),
                }
            }
        };
        let response = self.http.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        parse_response(name, status, &body)
    }
}

/// An error and its causes on one line: reqwest's own message ("error sending request") says
/// nothing until its sources ("Connection refused") are added.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A series as Prometheus returned it: its labels and (time, value) samples.
#[derive(Debug, Clone, PartialEq)]
struct RawSeries {
    labels: BTreeMap<String, String>,
    samples: Vec<(i64, f64)>,
}

/// Prometheus's response envelope (`/api/v1/*`).
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    // Absent for native histograms (`histograms`), which carry no float samples to read.
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Reads a `query_range` answer. Prometheus puts its JSON error envelope on 4xx/5xx answers
/// too, so the envelope is tried before the HTTP status is.
fn parse_response(
    name: &QueryName,
    status: u16,
    body: &str,
) -> Result<Vec<RawSeries>, PrometheusError> {
    let bad = |reason: String| PrometheusError::BadResponse {
        query: name.clone(),
        reason,
    };
    let envelope: Envelope = match serde_json::from_str(body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Err(if (200..300).contains(&status) {
                bad(format!(
                    "not Prometheus's JSON ({error}): {}",
                    excerpt(body)
                ))
            } else {
                PrometheusError::Http {
                    query: name.clone(),
                    status,
                    body: excerpt(body),
                }
            });
        }
    };
    if envelope.status != "success" {
        return Err(PrometheusError::Rejected {
            query: name.clone(),
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
            message: envelope
                .error
                .unwrap_or_else(|| format!("status {:?}, HTTP {status}", envelope.status)),
        });
    }
    if !envelope.warnings.is_empty() {
        tracing::debug!(query = %name, warnings = ?envelope.warnings, "Prometheus warned");
    }
    let data = envelope
        .data
        .ok_or_else(|| bad("status success without data".to_owned()))?;
    if data.result_type != "matrix" {
        return Err(bad(format!(
            "a {} instead of a matrix (a range query of a scalar or string expression?)",
            data.result_type
        )));
    }
    let matrix: Vec<MatrixSeries> =
        serde_json::from_value(data.result).map_err(|e| bad(format!("matrix: {e}")))?;
    matrix
        .into_iter()
        .map(|series| {
            let samples = series
                .values
                .iter()
                .map(|(time, value)| {
                    let sample = parse_sample(value)
                        .ok_or_else(|| bad(format!("sample value {value:?} is not a number")))?;
                    if !time.is_finite() {
                        return Err(bad(format!("sample time {time} is not a number")));
                    }
                    // Evaluation times are whole seconds for whole-second start and step.
                    Ok((time.round() as i64, sample))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RawSeries {
                labels: series.metric,
                samples,
            })
        })
        .collect()
}

/// A sample value as Prometheus writes it (Go's `FormatFloat`: `1.5`, `1e+06`, `NaN`, `+Inf`,
/// `-Inf`).
fn parse_sample(value: &str) -> Option<f64> {
    match value {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The start of a body for an error message, on one line.
fn excerpt(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_BODY_IN_ERROR) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Per (service, name): per time, the sum and count of the non-NaN samples, and whether any
/// sample (NaN included) was seen, so a series of only NaN stays a series of NaN.
#[derive(Default)]
struct Merger {
    sums: BTreeMap<(String, String), BTreeMap<i64, (f64, u32)>>,
}

impl Merger {
    /// Attributes the series of one answer: to the job's service for a per-service template,
    /// otherwise to the requested service named by `service_label` (other series are dropped:
    /// a broad template may match services nobody asked about).
    fn add(
        &mut self,
        job: &Job,
        series: Vec<RawSeries>,
        service_label: &str,
        requested: &BTreeSet<String>,
    ) {
        for raw in series {
            let service = match &job.name.service {
                Some(service) => service.clone(),
                None => match raw.labels.get(service_label) {
                    Some(service) if requested.contains(service) => service.clone(),
                    _ => continue,
                },
            };
            let points = self
                .sums
                .entry((service, job.name.name.clone()))
                .or_default();
            for (time, value) in raw.samples {
                let (sum, count) = points.entry(time).or_insert((0.0, 0));
                if !value.is_nan() {
                    *sum += value;
                    *count += 1;
                }
            }
        }
    }

    fn finish(self) -> Vec<Series> {
        self.sums
            .into_iter()
            .filter(|(_, points)| !points.is_empty())
            .map(|((service, name), points)| {
                let (times, values) = points
                    .into_iter()
                    .map(|(time, (sum, count))| {
                        let mean = if count == 0 {
                            f64::NAN
                        } else {
                            sum / f64::from(count)
                        };
                        (time, mean)
                    })
                    .unzip();
                Series {
                    service,
                    source: Source::Metric,
                    family: Family::classify(&name),
                    name,
                    times,
                    values,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use axum::Router;
    use axum::extract::Query;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    fn shared(name: &str) -> QueryName {
        QueryName {
            name: name.to_owned(),
            service: None,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn config(url: &str, queries: &[(&str, &str)]) -> PrometheusConfig {
        PrometheusConfig {
            url: Some(url.to_owned()),
            queries: queries
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            ..PrometheusConfig::default()
        }
    }

    #[test]
    fn per_service_templates_escape_for_a_promql_string() {
        let query = expand(
            r#"rate(x{service="{{service}}"}[1m])"#,
            Some(r#"we"ird\name"#),
            &strings(&[r#"we"ird\name"#]),
        );
        assert_eq!(query, r#"rate(x{service="we\"ird\\name"}[1m])"#);
        assert_eq!(promql_string_escape("a'b\nc\u{1}"), r"a'b\nc\x01");
    }

    #[test]
    fn shared_templates_get_a_regex_alternation_escaped_twice() {
        let query = expand(
            r#"avg by (service) (x{service=~"{{services}}"})"#,
            None,
            &strings(&["cart", "pay.v2", "a|b"]),
        );
        // Regex `cart|pay\.v2|a\|b`, written inside a PromQL string.
        assert_eq!(
            query,
            r#"avg by (service) (x{service=~"cart|pay\\.v2|a\\|b"})"#
        );
        assert_eq!(
            regex_escape(r"a.b*c(d)[e]{f}^$+?\"),
            r"a\.b\*c\(d\)\[e\]\{f\}\^\$\+\?\\"
        );
    }

    #[test]
    fn templates_become_one_job_or_one_per_service() {
        let queries: BTreeMap<String, String> = [
            ("cpu", r#"x{service=~"{{services}}"}"#),
            ("lat", r#"y{svc="{{service}}", also=~"{{services}}"}"#),
            ("up", "up"),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
        let jobs = jobs(&queries, &strings(&["a", "b"]));
        let described: Vec<(String, Option<String>, String)> = jobs
            .into_iter()
            .map(|j| (j.name.name, j.name.service, j.query))
            .collect();
        assert_eq!(
            described,
            vec![
                ("cpu".into(), None, r#"x{service=~"a|b"}"#.into()),
                (
                    "lat".into(),
                    Some("a".into()),
                    r#"y{svc="a", also=~"a"}"#.into()
                ),
                (
                    "lat".into(),
                    Some("b".into()),
                    r#"y{svc="b", also=~"b"}"#.into()
                ),
                ("up".into(), None, "up".into()),
            ]
        );
    }

    const MATRIX: &str = r#"{
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"service": "cart", "pod": "cart-1"},
                 "values": [[1700000000, "0.5"], [1700000060.0, "NaN"], [1700000120, "+Inf"]]},
                {"metric": {"service": "cart", "pod": "cart-2"},
                 "values": [[1700000000, "1.5"], [1700000060, "2"], [1700000120, "-Inf"]]},
                {"metric": {"service": "payment"},
                 "values": [[1700000060, "1e+03"]]},
                {"metric": {"service": "ads"}, "values": [[1700000000, "9"]]},
                {"metric": {"job": "no-service-label"}, "values": [[1700000000, "9"]]}
            ]
        },
        "warnings": ["PromQL info: ignored"]
    }"#;

    #[test]
    fn a_matrix_answer_is_read_with_nan_and_infinities() {
        let series = parse_response(&shared("cpu"), 200, MATRIX).unwrap();
        assert_eq!(series.len(), 5);
        assert_eq!(series[0].labels["pod"], "cart-1");
        let times: Vec<i64> = series[0].samples.iter().map(|s| s.0).collect();
        assert_eq!(times, [1_700_000_000, 1_700_000_060, 1_700_000_120]);
        assert_eq!(series[0].samples[0].1, 0.5);
        assert!(series[0].samples[1].1.is_nan());
        assert_eq!(series[0].samples[2].1, f64::INFINITY);
        assert_eq!(series[1].samples[2].1, f64::NEG_INFINITY);
        assert_eq!(series[2].samples[0].1, 1000.0);
    }

    #[test]
    fn shared_answers_are_attributed_by_label_and_averaged() {
        let mut merger = Merger::default();
        let job = Job {
            name: shared("cpu_usage"),
            query: String::new(),
        };
        let requested: BTreeSet<String> = strings(&["cart", "payment"]).into_iter().collect();
        let raw = parse_response(&job.name, 200, MATRIX).unwrap();
        merger.add(&job, raw, "service", &requested);
        let series = merger.finish();
        // `ads` was not asked for; the unlabelled series belongs to nobody.
        let services: Vec<&str> = series.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(services, ["cart", "payment"]);
        let cart = &series[0];
        assert_eq!(cart.name, "cpu_usage");
        assert_eq!(cart.family, Family::Cpu);
        assert_eq!(cart.source, Source::Metric);
        assert_eq!(cart.times, [1_700_000_000, 1_700_000_060, 1_700_000_120]);
        // Mean of 0.5 and 1.5; NaN is ignored next to 2; +Inf and -Inf make NaN.
        assert_eq!(cart.values[0], 1.0);
        assert_eq!(cart.values[1], 2.0);
        assert!(cart.values[2].is_nan());
        assert_eq!(series[1].times, [1_700_000_060]);
        assert_eq!(series[1].values, [1000.0]);
    }

    #[test]
    fn per_service_answers_belong_to_their_service_whatever_the_labels() {
        let mut merger = Merger::default();
        let job = Job {
            name: QueryName {
                name: "latency_p99".into(),
                service: Some("checkout".into()),
            },
            query: String::new(),
        };
        let raw = parse_response(&job.name, 200, MATRIX).unwrap();
        merger.add(&job, raw, "service", &BTreeSet::new());
        let series = merger.finish();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].service, "checkout");
        assert_eq!(series[0].family, Family::Latency);
        // (0.5 + 1.5 + 9 + 9) / 4 at the first time (payment has no sample there).
        assert_eq!(series[0].values[0], 5.0);
    }

    #[test]
    fn times_come_out_sorted_and_distinct() {
        let mut merger = Merger::default();
        let job = Job {
            name: shared("m"),
            query: String::new(),
        };
        let requested: BTreeSet<String> = strings(&["a"]).into_iter().collect();
        let labels: BTreeMap<String, String> = [("service".to_owned(), "a".to_owned())].into();
        merger.add(
            &job,
            vec![
                RawSeries {
                    labels: labels.clone(),
                    samples: vec![(120, 1.0), (180, 1.0)],
                },
                RawSeries {
                    labels,
                    samples: vec![(60, f64::NAN), (120, 3.0)],
                },
            ],
            "service",
            &requested,
        );
        let series = merger.finish();
        assert_eq!(series[0].times, [60, 120, 180]);
        assert!(series[0].values[0].is_nan());
        assert_eq!(series[0].values[1..], [2.0, 1.0]);
    }

    #[test]
    fn error_answers_name_the_query_and_say_why() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:8: parse error: unclosed left parenthesis"}"#;
        let query = QueryName {
            name: "cpu_usage".into(),
            service: Some("cart".into()),
        };
        let error = parse_response(&query, 400, body).unwrap_err();
        assert!(
            matches!(&error, PrometheusError::Rejected { error_type, .. } if error_type == "bad_data")
        );
        assert_eq!(error.query(), Some(&query));
        assert_eq!(
            error.to_string(),
            "Prometheus query \"cpu_usage\" (service \"cart\") failed: bad_data: 1:8: parse \
             error: unclosed left parenthesis"
        );

        let proxy =
            parse_response(&shared("m"), 502, "<html>\n<b>Bad   Gateway</b></html>").unwrap_err();
        assert_eq!(
            proxy.to_string(),
            "Prometheus query \"m\": HTTP 502: <html> <b>Bad Gateway</b></html>"
        );

        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let error = parse_response(&shared("m"), 200, vector).unwrap_err();
        assert!(
            error.to_string().contains("a vector instead of a matrix"),
            "{error}"
        );

        let junk = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#;
        let error = parse_response(&shared("m"), 200, junk).unwrap_err();
        assert!(error.to_string().contains(r#"sample value "x""#), "{error}");
    }

    #[test]
    fn validation_names_every_problem() {
        assert_eq!(PrometheusConfig::default().validate(), Ok(()));
        assert_eq!(
            config("http://127.0.0.1:9090/", &[("cpu", "up")]).validate(),
            Ok(())
        );
        let mut bad = config("ftp://x", &[("cpu", " "), ("", "up")]);
        bad.step_s = 0;
        let problems = bad.validate().unwrap_err();
        for expected in [
            "scheme \"ftp\"",
            "step_s must be at least 1",
            "prometheus.queries.cpu: the template is empty",
            "a query name is empty",
        ] {
            assert!(
                problems.contains(expected),
                "{expected:?} not in {problems:?}"
            );
        }
        let problems = config("not a url", &[]).validate().unwrap_err();
        assert!(problems.contains("prometheus.url"), "{problems}");
        let problems = config("https://user:secret@prom", &[])
            .validate()
            .unwrap_err();
        assert!(problems.contains("https is not supported"), "{problems}");
        assert!(!problems.contains("secret"), "{problems}");
        let mut long = config("http://prom", &[]);
        long.before_s = 86_400 * 30;
        assert!(long.validate().unwrap_err().contains("at most 11000"));
    }

    #[test]
    fn configuration_reads_from_toml_with_defaults_and_refuses_typos() {
        let parsed: PrometheusConfig = toml::from_str(
            r#"
            url = "http://prom:9090"
            step_s = 30
            [queries]
            cpu_usage = 'avg by (service) (rate(cpu{service=~"{{services}}"}[1m]))'
            "#,
        )
        .unwrap();
        assert_eq!(parsed.step_s, 30);
        assert_eq!(parsed.before_s, 1800);
        assert_eq!(parsed.service_label, "service");
        assert!(parsed.queries["cpu_usage"].contains("{{services}}"));
        let typo = toml::from_str::<PrometheusConfig>("step = 30").unwrap_err();
        assert!(typo.to_string().contains("unknown field"), "{typo}");
        let debug = format!("{:?}", config("http://u:hunter2@prom", &[]));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn windows_align_to_the_step_and_stop_at_now() {
        let config = PrometheusConfig::default();
        assert_eq!(config.window(10_030, 100_000), (8_220, 10_620));
        assert_eq!(config.window(10_030, 10_100), (8_220, 10_080));
        assert!(PrometheusSource::new(PrometheusConfig::default()).is_none());
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        assert_eq!(
            endpoint("http://proxy:8080/prometheus/").unwrap().as_str(),
            "http://proxy:8080/prometheus/api/v1/query_range"
        );
        assert_eq!(
            endpoint("http://prom:9090").unwrap().as_str(),
            "http://prom:9090/api/v1/query_range"
        );
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let source = PrometheusSource::new(config(
            &format!("http://127.0.0.1:{port}"),
            &[("cpu", "up"), ("lat", r#"x{s="{{service}}"}"#)],
        ))
        .unwrap();
        let error = source
            .fetch(&strings(&["a", "b"]), 0, 600)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PrometheusError::Unreachable { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("onnection refused"), "{error}");
    }

    #[tokio::test]
    async fn bad_ranges_are_refused_before_asking() {
        let source = PrometheusSource::new(config("http://127.0.0.1:9", &[("m", "up")])).unwrap();
        let services = strings(&["a"]);
        assert!(matches!(
            source.fetch(&services, 100, 0).await,
            Err(PrometheusError::InvalidRange { .. })
        ));
        assert!(matches!(
            source.fetch(&services, 0, 60 * MAX_POINTS).await,
            Err(PrometheusError::InvalidRange { .. })
        ));
        let broken = PrometheusSource::new(config("ftp://x", &[("m", "up")])).unwrap();
        assert!(matches!(
            broken.fetch(&services, 0, 60).await,
            Err(PrometheusError::InvalidUrl(_))
        ));
    }

    /// A stand-in Prometheus: `slow` never answers in time, `broken` is refused, anything else
    /// gets one series per service the query's regex names.
    async fn fake_prometheus() -> String {
        async fn query_range(
            Query(params): Query<HashMap<String, String>>,
        ) -> (StatusCode, String) {
            let query = &params["query"];
            assert_eq!(params["step"], "60");
            assert_eq!(params["timeout"], "500ms");
            if query.contains("slow") {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            if query.contains("broken") {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into(),
                );
            }
            let start: i64 = params["start"].parse().unwrap();
            // The regex between the quotes of `=~"..."`, un-escaped once as PromQL would.
            let services = query
                .split_once("=~\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(regex, _)| regex.replace("\\\\", "\\"))
                .unwrap_or_default();
            let result: Vec<serde_json::Value> = services
                .split('|')
                .map(|s| {
                    serde_json::json!({
                        "metric": {"service": s.replace('\\', "")},
                        "values": [[start, "1"], [start + 60, "2"]],
                    })
                })
                .collect();
            let body = serde_json::json!({
                "status": "success",
                "data": {"resultType": "matrix", "result": result},
            });
            (StatusCode::OK, body.to_string())
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().route("/api/v1/query_range", get(query_range));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn failing_and_slow_queries_do_not_lose_the_others() {
        let url = fake_prometheus().await;
        let mut config = config(
            &url,
            &[
                ("cpu_usage", r#"cpu{service=~"{{services}}"}"#),
                ("broken", r#"broken{service=~"{{services}}"}"#),
                ("slow", r#"slow{service=~"{{services}}"}"#),
                ("mem", r#"mem{service=~"{{services}}", s="{{service}}"}"#),
            ],
        );
        config.timeout_ms = 500;
        let source = PrometheusSource::new(config).unwrap();
        let started = std::time::Instant::now();
        let fetched = source
            .fetch(&strings(&["pay.v2", "cart", "cart"]), 600, 660)
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        let got: Vec<(&str, &str, &[f64])> = fetched
            .series
            .iter()
            .map(|s| (s.service.as_str(), s.name.as_str(), s.values.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("cart", "cpu_usage", &[1.0, 2.0][..]),
                ("cart", "mem", &[1.0, 2.0][..]),
                ("pay.v2", "cpu_usage", &[1.0, 2.0][..]),
                ("pay.v2", "mem", &[1.0, 2.0][..]),
            ]
        );
        assert_eq!(fetched.series[0].times, [600, 660]);
        let errors: Vec<String> = fetched.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "Prometheus query \"broken\" failed: bad_data: parse error",
                "Prometheus query \"slow\": no answer within 500 ms",
            ]
        );
    }
}
