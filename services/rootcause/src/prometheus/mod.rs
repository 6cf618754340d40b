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

mod parse;
mod template;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rootcause_models::case::Series;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{MAX_POINTS, PrometheusConfig, query_range_endpoint, redact_url};
use crate::outgoing::error_chain;
use parse::{Merger, RawSeries, parse_response};
use template::jobs;
pub use template::{SERVICE_PLACEHOLDER, SERVICES_PLACEHOLDER};

/// Requests in flight at once: enough to hide the latency of one-request-per-service templates,
/// few enough not to load a Prometheus that also serves dashboards and rule evaluation.
const MAX_IN_FLIGHT: usize = 8;

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
        let endpoint = query_range_endpoint(config.url.as_deref()?);
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

#[cfg(test)]
mod tests;
