//! The load generator: workers that POST batches of new and resolving alerts in Alertmanager's
//! API v2 shape and time every answer.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::profile::{Snapshot, Usage};
use super::report::{Load, Measurement, RoundMeasurement};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use tokio::task::JoinHandle;

/// Load before each round's measured window, not counted: connections are reopened and the
/// target's caches and queues fill again after it sat idle while the others were loaded.
pub(crate) const WARM_UP: Duration = Duration::from_secs(1);

/// How long a new firing alert says it fires (`endsAt`), as Prometheus sends it.
pub(crate) const FIRING_FOR: TimeDelta = TimeDelta::minutes(5);

/// One alert in this many names a service the topology does not know.
pub(crate) const UNMAPPED_EVERY: usize = 20;

/// The service label of unmapped alerts.
pub(crate) const UNKNOWN_SERVICE: &str = "bench-unknown-service";

/// Alert names, mixed over each batch.
pub(crate) const ALERT_NAMES: [&str; 5] = [
    "HighErrorRate",
    "HighLatency",
    "PodCrashLooping",
    "CPUThrottlingHigh",
    "KubePodNotReady",
];

/// One target's load generator across rounds. The workers' body builders live as long as it
/// does, so a worker's first request of a round resolves the alerts its last request of the
/// previous round fired, as if the rounds between had not happened.
pub(crate) struct TargetLoad {
    url: String,
    metrics_url: Option<String>,
    /// One per worker; `None` only while a round runs (each worker holds its own).
    bodies: Vec<Option<BodyBuilder>>,
}

/// What one round measured on one target: the workers' answers in the window, and the CPU and
/// metrics snapshots at its ends.
pub(crate) struct Window {
    pub(crate) stats: WorkerStats,
    pub(crate) before: Snapshot,
    pub(crate) after: Snapshot,
}

impl TargetLoad {
    /// `load.concurrency` workers for the target at `base_url`; `rootcause` says whether it has
    /// rootcause's `/metrics` to scrape.
    pub(crate) fn new(base_url: &str, load: &Load, rootcause: bool) -> TargetLoad {
        TargetLoad {
            url: format!("{base_url}/api/v2/alerts"),
            metrics_url: rootcause.then(|| format!("{base_url}/metrics")),
            bodies: (0..load.concurrency)
                .map(|worker| Some(BodyBuilder::new(worker, load.batch, load.services.clone())))
                .collect(),
        }
    }

    /// Loads the target: [`WARM_UP`], then `window` measured. Returns once every worker has its
    /// last answer, so the next target's round starts on a quiet line.
    pub(crate) async fn round(
        &mut self,
        client: &reqwest::Client,
        server_pid: u32,
        window: Duration,
    ) -> anyhow::Result<Window> {
        let measure_from = Instant::now() + WARM_UP;
        let until = measure_from + window;
        let workers: Vec<JoinHandle<(WorkerStats, BodyBuilder)>> = self
            .bodies
            .iter_mut()
            .map(|slot| {
                let bodies = slot
                    .take()
                    .expect("every builder came back from the last round");
                tokio::spawn(run_worker(
                    client.clone(),
                    self.url.clone(),
                    bodies,
                    measure_from,
                    until,
                ))
            })
            .collect();
        let metrics_url = self.metrics_url.as_deref();
        tokio::time::sleep_until(measure_from.into()).await;
        let before = Snapshot::take(client, server_pid, metrics_url).await;
        tokio::time::sleep_until(until.into()).await;
        let after = Snapshot::take(client, server_pid, metrics_url).await;
        let mut stats = WorkerStats::default();
        for (slot, worker) in self.bodies.iter_mut().zip(workers) {
            let (worker_stats, bodies) = worker.await.context("a load task failed")?;
            stats.merge(worker_stats);
            *slot = Some(bodies);
        }
        Ok(Window {
            stats,
            before,
            after,
        })
    }
}

/// One load task: sends a batch, waits for the answer, repeats until `until`. Only answers that
/// arrive between `measure_from` and `until` are counted: before is the warm-up, and an answer
/// after `until` belongs to no window. Hands its body builder back for the target's next round.
pub(crate) async fn run_worker(
    client: reqwest::Client,
    url: String,
    mut bodies: BodyBuilder,
    measure_from: Instant,
    until: Instant,
) -> (WorkerStats, BodyBuilder) {
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
    (stats, bodies)
}

/// POSTs one body; `Err` with a short description unless the answer is 2xx.
pub(crate) async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
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
pub(crate) struct WorkerStats {
    pub(crate) acknowledged: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Latency of each 2xx request, in microseconds.
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) first_error: Option<String>,
}

impl WorkerStats {
    pub(crate) fn record(&mut self, outcome: Result<(), String>, alerts: usize, latency: Duration) {
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

    pub(crate) fn merge(&mut self, other: WorkerStats) {
        self.acknowledged += other.acknowledged;
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// One round's figures over its `window`; sorts the latencies (merging keeps no order).
    pub(crate) fn round(
        &mut self,
        round: usize,
        position: usize,
        window: Duration,
    ) -> RoundMeasurement {
        self.latencies_us.sort_unstable();
        RoundMeasurement {
            round: round + 1,
            position: position + 1,
            acknowledged_alerts: self.acknowledged,
            alerts_per_sec: per_sec(self.acknowledged as f64, window.as_secs_f64()),
            requests: self.requests,
            p50_ms: percentile_ms(&self.latencies_us, 0.50),
            p99_ms: percentile_ms(&self.latencies_us, 0.99),
            errors: self.errors,
        }
    }

    /// The numbers over all measured windows, `window_secs` in all, with the CPU and metrics
    /// summed over the same windows.
    pub(crate) fn measurement(mut self, window_secs: f64, usage: &Usage) -> Measurement {
        self.latencies_us.sort_unstable();
        Measurement {
            acknowledged_alerts: self.acknowledged,
            duration_secs: window_secs,
            alerts_per_sec: per_sec(self.acknowledged as f64, window_secs),
            requests: self.requests,
            p50_ms: percentile_ms(&self.latencies_us, 0.50),
            p99_ms: percentile_ms(&self.latencies_us, 0.99),
            errors: self.errors,
            first_error: self.first_error,
            server_cpu_cores: usage.cores(usage.server_cpu_secs),
            server_threads: usage.thread_cores(),
            generator_cpu_cores: usage.cores(usage.own_cpu_secs),
            machine_busy_cores: usage.cores(usage.machine_busy_secs),
            machine_iowait_cores: usage.cores(usage.machine_iowait_secs),
            ingest: usage.ingest(),
        }
    }
}

/// `amount` per second over `secs`; 0 over no time.
pub(crate) fn per_sec(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 { amount / secs } else { 0.0 }
}

/// The `q` quantile (nearest rank) of sorted microseconds, in milliseconds; 0 when empty.
pub(crate) fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[index]) / 1000.0
}

/// Builds the request bodies of one load task: pre-formatted JSON text, no serializer.
#[derive(Debug)]
pub(crate) struct BodyBuilder {
    pub(crate) worker: usize,
    /// Requests built so far.
    pub(crate) seq: u64,
    /// New firing alerts per request (half of the batch).
    pub(crate) firing: usize,
    pub(crate) services: Arc<[String]>,
    /// The firing alerts of the previous request, up to their `startsAt` (without the closing
    /// fields), to be resolved by the next one.
    pub(crate) pending: Vec<String>,
    /// Body size of the previous request, to allocate once.
    pub(crate) capacity: usize,
}

impl BodyBuilder {
    pub(crate) fn new(worker: usize, batch: usize, services: Arc<[String]>) -> BodyBuilder {
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
    pub(crate) fn next_body(&mut self, now: DateTime<Utc>) -> (String, usize) {
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
    pub(crate) fn firing_alert(&self, index: usize, starts_at: &str) -> String {
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
pub(crate) fn push_alert(body: &mut String, alert: &str, ends_at: &str) {
    if body.len() > 1 {
        body.push(',');
    }
    body.push_str(alert);
    body.push_str(r#","endsAt":""#);
    body.push_str(ends_at);
    body.push_str("\"}");
}
