//! Alert intake: validated alerts are mapped to services, handed to one writer task that
//! correlates them and commits them in groups, and acknowledged only after their commit.
//!
//! The writer owns the correlation engine. It takes every request waiting in its queue (up to
//! `ingest.max_batch_alerts` alerts), runs the engine over them, and writes the alert rows and
//! the incident changes in one transaction; then it answers each request. Many small requests
//! thus share one fsync (group commit), and an acknowledged alert is always on disk. Commits are
//! pipelined: the next group is correlated while the previous one commits, one commit at a time
//! and in the engine's order. If a commit fails, nothing of that group or of the group correlated
//! after it was stored: the engine is rebuilt from the store, so memory never runs ahead of the
//! database, and each of their requests is told its group failed ([`IngestError::GroupFailed`]).
//! The handler then sends its request again *alone* ([`Grouping::Alone`]): the writer commits it
//! in a group of its own, after the commit in flight, so one bad request fails only itself.

pub mod payload;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rootcause_correlation::engine::Graph;
use rootcause_correlation::{
    AlertEvent, AlertKey, AlertStatus, Engine, Millis, Outcome, ServiceMapper, Settings, Signal,
    Subject,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::live_topology::LiveTopology;
use crate::ranking::{Committed, CommittedAlert, Ranking};
use crate::store::{AlertWrite, EncodedBatch, IngestBatch, Store, StoreError};
use crate::telemetry::names;
use crate::workers::Spawner;
pub use payload::{IncomingAlert, Source};

/// How often the engine's clock advances without alerts (expiries, resolutions).
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// What one request's alerts did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Receipt {
    /// Alerts in the request.
    pub received: usize,
    /// New occurrences (a first firing delivery, or a resolved one never seen firing).
    pub new: usize,
    /// Occurrences that changed: resolved, or their expiry moved.
    pub updated: usize,
    /// Repeats that changed nothing (a second delivery by an HA pair, a retry).
    pub duplicates: usize,
    /// Deliveries older than what is stored (a late firing of an alert already resolved).
    pub stale: usize,
    /// Alerts no service of the topology was found for (kept, correlated by labels).
    pub unmapped: usize,
    /// Incidents the alerts are in.
    pub incidents: Vec<u64>,
}

/// Why alerts were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The commit failed; nothing of the request was stored.
    #[error("alerts could not be stored: {0}")]
    NotStored(String),
    /// The group commit the request shared with others failed (perhaps because of another
    /// request); nothing of it was stored. Sent again [`Grouping::Alone`], only its own fault
    /// can fail it.
    #[error("the group commit failed: {0}")]
    GroupFailed(String),
    /// The service is shutting down.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The queue to the writer stayed full for `ingest.queue_wait_ms`; nothing was stored.
    #[error("the ingest queue is full")]
    Busy,
}

/// Alerts mapped to services and ready for the writer (see [`Ingest::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    events: Vec<AlertEvent>,
    rows: Vec<AlertWrite>,
    /// Each row's `alertname`, for ranking.
    names: Vec<String>,
}

/// Whether a request may share its group commit with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Committed together with whatever else is waiting (the fast path).
    Shared,
    /// Committed in a group of its own, after the commit in flight: for a request whose shared
    /// group failed, so that its own fault alone decides.
    Alone,
}

/// Why the writer did not store a request.
#[derive(Debug)]
struct Failure {
    why: String,
    /// It shared a failed group (or was correlated after one): sending it again alone may
    /// succeed.
    shared: bool,
}

type Reply = oneshot::Sender<Result<Receipt, Failure>>;

/// One request's alerts, ready for the writer: what the engine reads and what the store writes,
/// side by side.
struct Job {
    events: Vec<AlertEvent>,
    rows: Vec<AlertWrite>,
    /// Each row's `alertname`, for ranking.
    names: Vec<String>,
    grouping: Grouping,
    reply: Reply,
}

/// The intake handle: cheap to clone, shared by the handlers.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Job>,
    topology: Arc<LiveTopology>,
    config: Arc<IngestConfig>,
    settings: Arc<Settings>,
    mapper: Arc<MapperCache>,
}

/// The mapper of the last topology version seen, with that version's id.
type MapperCache = Mutex<Option<(i64, Arc<ServiceMapper>)>>;

impl Ingest {
    /// Rebuilds the engine from the store (open incidents, their alerts, alerts in no incident)
    /// and starts the writer. Every commit is then handed to `ranking`, which is first told
    /// which incidents the rebuilt engine holds.
    pub async fn start(
        store: Store,
        topology: Arc<LiveTopology>,
        config: IngestConfig,
        settings: Settings,
        ranking: Ranking,
        clock: Clock,
        spawner: &Spawner,
    ) -> Result<Ingest, StoreError> {
        let now = clock.now_millis();
        let engine = rebuild(&store, &topology, &settings, now).await?;
        tracing::info!(
            open_incidents = engine.open_incidents(),
            firing_alerts = engine.firing_alerts(),
            "correlation engine rebuilt from the store"
        );
        // Before the writer starts, so that ranking sees the restored state before any commit.
        ranking.resync(engine.incidents());
        let (queue, jobs) = mpsc::channel(config.queue_capacity.max(1));
        // Not cancelled at shutdown: the writer stops once the last intake handle is dropped,
        // after committing everything it was given.
        spawner.spawn(write_loop(
            jobs,
            store,
            topology.clone(),
            engine,
            config.max_batch_alerts.max(1),
            ranking,
            clock,
        ));
        let ingest = Ingest {
            queue,
            topology,
            config: Arc::new(config),
            settings: Arc::new(settings),
            mapper: Arc::new(Mutex::new(None)),
        };
        Ok(ingest)
    }

    /// The intake limits and mapping rules.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Maps `alerts` to services and readies them for the writer. CPU work that grows with the
    /// request: handlers run it off the async workers, with the parsing.
    pub fn prepare(&self, alerts: Vec<IncomingAlert>) -> Prepared {
        let mapper = self.mapper();
        let mut prepared = Prepared {
            events: Vec::with_capacity(alerts.len()),
            rows: Vec::with_capacity(alerts.len()),
            names: Vec::with_capacity(alerts.len()),
        };
        for alert in alerts {
            let (event, row, name) = prepare(alert, &mapper, &self.settings);
            prepared.events.push(event);
            prepared.rows.push(row);
            prepared.names.push(name);
        }
        prepared
    }

    /// Correlates and durably stores prepared alerts; returns once they are committed.
    pub async fn submit(
        &self,
        prepared: Prepared,
        grouping: Grouping,
    ) -> Result<Receipt, IngestError> {
        let (reply, answer) = oneshot::channel();
        metrics::gauge!(names::INGEST_QUEUE_DEPTH)
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        let job = Job {
            events: prepared.events,
            rows: prepared.rows,
            names: prepared.names,
            grouping,
            reply,
        };
        // A full queue means the database is behind: wait a moment for room, then tell the
        // sender to come back rather than hold its connection (and memory) indefinitely.
        let wait = Duration::from_millis(self.config.queue_wait_ms);
        match self.queue.send_timeout(job, wait).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                metrics::counter!(names::REJECTED, "limit" => "ingest.queue_capacity").increment(1);
                return Err(IngestError::Busy);
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(IngestError::ShuttingDown),
        }
        match answer.await {
            Ok(Ok(receipt)) => Ok(receipt),
            Ok(Err(Failure { why, shared: true })) => Err(IngestError::GroupFailed(why)),
            Ok(Err(Failure { why, shared: false })) => Err(IngestError::NotStored(why)),
            Err(_) => Err(IngestError::ShuttingDown),
        }
    }

    /// A mapper for the current topology version (built once per version).
    fn mapper(&self) -> Arc<ServiceMapper> {
        let current = self.topology.current();
        let mut cached = self.mapper.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((version, mapper)) if *version == current.version.id => mapper.clone(),
            _ => {
                let mapper = Arc::new(ServiceMapper::new(
                    &current.topology,
                    &self.config.service_label_keys,
                ));
                *cached = Some((current.version.id, mapper.clone()));
                mapper
            }
        }
    }
}

fn prepare(
    alert: IncomingAlert,
    mapper: &ServiceMapper,
    settings: &Settings,
) -> (AlertEvent, AlertWrite, String) {
    let service = mapper.map(&alert.labels).map(str::to_owned);
    let name = alert.labels.get("alertname").cloned().unwrap_or_default();
    let subject = match &service {
        Some(service) => Subject::Service(service.clone()),
        None => settings.unmapped_subject(&alert.labels),
    };
    let signal = Signal::classify(&alert.labels);
    let row = AlertWrite {
        fingerprint: alert.fingerprint.to_i64(),
        starts_at: 0, // set from the engine's answer: the occurrence's own start
        ends_at: alert.ends_at,
        status: alert.status.as_str(),
        service,
        incident: None,
        source: alert.source.as_str(),
        severity: alert.labels.get("severity").cloned(),
        signal: signal.as_str(),
        labels: serde_json::to_string(&alert.labels).unwrap_or_else(|_| "{}".to_owned()),
        annotations: serde_json::to_string(&alert.annotations).unwrap_or_else(|_| "{}".to_owned()),
        generator_url: alert.generator_url,
    };
    let event = AlertEvent {
        fingerprint: alert.fingerprint,
        status: alert.status,
        starts_at: alert.starts_at,
        ends_at: alert.ends_at,
        subject,
    };
    (event, row, name)
}

async fn rebuild(
    store: &Store,
    topology: &LiveTopology,
    settings: &Settings,
    now: Millis,
) -> Result<Engine, StoreError> {
    let keep = Millis::try_from(settings.reopen_within_secs.saturating_mul(1000)).unwrap_or(0);
    let state = store.load_engine_state(now.saturating_sub(keep)).await?;
    let mut engine = Engine::restore(
        settings.clone(),
        state.incidents,
        state.alerts,
        state.next_id,
    );
    if !state.unassigned.is_empty() {
        // Firing alerts in no incident: correlate them now, as if they had just arrived.
        tracing::warn!(
            alerts = state.unassigned.len(),
            "firing alerts in no incident found; correlating them"
        );
        let current = topology.current();
        let graph = Graph {
            version: Some(current.version.id),
            topology: &current.topology,
        };
        let mut rows = Vec::new();
        let events = state
            .unassigned
            .into_iter()
            .map(|stored| {
                let labels: rootcause_correlation::Labels =
                    serde_json::from_str(&stored.labels).unwrap_or_default();
                let subject = match &stored.service {
                    Some(service) => Subject::Service(service.clone()),
                    None => settings.unmapped_subject(&labels),
                };
                rows.push(stored.clone());
                AlertEvent {
                    fingerprint: rootcause_correlation::Fingerprint::from_i64(stored.fingerprint),
                    status: AlertStatus::Firing,
                    starts_at: Some(stored.starts_at),
                    ends_at: stored.ends_at,
                    subject,
                }
            })
            .collect::<Vec<_>>();
        let observations = engine.observe(graph, &events, now);
        let alerts = rows
            .into_iter()
            .zip(observations)
            .map(|(stored, seen)| AlertWrite {
                fingerprint: stored.fingerprint,
                starts_at: stored.starts_at,
                ends_at: stored.ends_at,
                status: "firing",
                service: stored.service,
                incident: seen.incident.map(|id| id as i64),
                source: source_named(&stored.source),
                severity: stored.severity,
                signal: Signal::from_name(&stored.signal)
                    .unwrap_or(Signal::Custom)
                    .as_str(),
                labels: stored.labels,
                annotations: stored.annotations,
                generator_url: stored.generator_url,
            })
            .collect();
        store
            .write_ingest(
                &IngestBatch {
                    alerts,
                    change: engine.take_changes(),
                    now,
                }
                .encode(store.engine())?,
            )
            .await?;
    } else {
        engine.take_changes();
    }
    Ok(engine)
}

/// The [`Source`] name equal to a stored one (the writer's rows hold static names).
fn source_named(source: &str) -> &'static str {
    [Source::Webhook, Source::AlertmanagerApi, Source::Plain]
        .into_iter()
        .map(Source::as_str)
        .find(|name| *name == source)
        .unwrap_or("api")
}

/// A correlated group on its way to the database.
struct Pending {
    /// Each request's reply channel and receipt.
    replies: Vec<(Reply, Receipt)>,
    /// (source, outcome) → alerts, for the metrics once committed.
    counts: HashMap<(&'static str, &'static str), u64>,
    alerts: usize,
    correlation: Duration,
    /// How long the database took to commit the group.
    commit: Duration,
    /// What ranking learns once the group is committed.
    committed: Committed,
}

type Commit = JoinHandle<(Pending, Result<(), StoreError>)>;

/// The writer. Commits are pipelined: while one group is being committed the next is
/// gathered and correlated, so the engine and the database work at the same time; commits
/// still happen one at a time and in the engine's order, and a group is acknowledged only
/// after its own commit.
async fn write_loop(
    mut jobs: mpsc::Receiver<Job>,
    store: Store,
    topology: Arc<LiveTopology>,
    mut engine: Engine,
    max_batch: usize,
    ranking: Ranking,
    clock: Clock,
) {
    let mut ticker = tokio::time::interval(TICK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight: Option<Commit> = None;
    // A job to commit alone, met while gathering a shared group: it is the next group.
    let mut held: Option<Job> = None;
    loop {
        let group = match held.take() {
            Some(job) => vec![job],
            None => tokio::select! {
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    if !acknowledge(done, &ranking) {
                        engine = rebuilt(&store, &topology, engine, &ranking, &clock).await;
                    }
                    continue;
                }
                job = jobs.recv() => match job {
                    Some(job) => gather(job, &mut jobs, max_batch, &mut held),
                    None => break,
                },
                _ = ticker.tick() => Vec::new(),
            },
        };
        let alone = group.iter().any(|job| job.grouping == Grouping::Alone);
        if alone && let Some(previous) = in_flight.take() {
            // Not on top of a commit that may fail: then only its own fault can fail it.
            if !acknowledge(previous.await, &ranking) {
                engine = rebuilt(&store, &topology, engine, &ranking, &clock).await;
            }
        }
        let next = correlate(
            &topology,
            &mut engine,
            group,
            clock.now_millis(),
            store.engine(),
        );
        if let Some(previous) = in_flight.take()
            && !acknowledge(previous.await, &ranking)
        {
            // `next` was correlated on top of the failed group: it cannot be stored either.
            fail(next.1, "an earlier group commit failed", true);
            engine = rebuilt(&store, &topology, engine, &ranking, &clock).await;
            continue;
        }
        let (batch, pending) = next;
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot encode a group for the store");
                let shared = pending.replies.len() > 1;
                fail(pending, &error.to_string(), shared);
                engine = rebuilt(&store, &topology, engine, &ranking, &clock).await;
                continue;
            }
        };
        let store = store.clone();
        let span = tracing::debug_span!(
            "group_commit",
            alerts = pending.alerts,
            requests = pending.replies.len()
        );
        in_flight = Some(tokio::spawn(
            async move {
                let mut pending = pending;
                let started = Instant::now();
                let result = store.write_ingest(&batch).await;
                pending.commit = started.elapsed();
                tracing::debug!(elapsed = ?pending.commit, ok = result.is_ok(), "committed");
                (pending, result)
            }
            .instrument(span),
        ));
        // Let the commit start before correlating the next group: a task spawned from a worker
        // waits in that worker's LIFO slot, which other workers cannot steal from.
        tokio::task::yield_now().await;
        metrics::gauge!(names::INCIDENTS_OPEN).set(engine.open_incidents() as f64);
        metrics::gauge!(names::ALERTS_FIRING).set(engine.firing_alerts() as f64);
        metrics::gauge!(names::ALERTS_ENDED_REMEMBERED)
            .set(engine.remembered_ended_alerts() as f64);
        // Also set by each sender; set here too, or it would keep the last sender's reading
        // once the traffic stops.
        metrics::gauge!(names::INGEST_QUEUE_DEPTH).set(jobs.len() as f64);
    }
    if let Some(last) = in_flight.take() {
        acknowledge(last.await, &ranking);
    }
    tracing::info!("ingest writer stopped; every accepted alert is committed");
}

/// `first` and whatever else is waiting, up to `max_batch` alerts; a job to commit alone is
/// never gathered with others (met after the first, it is `held` for the next group).
fn gather(
    first: Job,
    jobs: &mut mpsc::Receiver<Job>,
    max_batch: usize,
    held: &mut Option<Job>,
) -> Vec<Job> {
    let mut size = first.rows.len();
    let alone = first.grouping == Grouping::Alone;
    let mut group = vec![first];
    while size < max_batch && !alone {
        match jobs.try_recv() {
            Ok(job) if job.grouping == Grouping::Alone => {
                *held = Some(job);
                break;
            }
            Ok(job) => {
                size += job.rows.len();
                group.push(job);
            }
            Err(_) => break,
        }
    }
    group
}

/// Answers the requests of a finished commit and hands what it changed to ranking; false if it
/// failed.
fn acknowledge(
    done: Result<(Pending, Result<(), StoreError>), tokio::task::JoinError>,
    ranking: &Ranking,
) -> bool {
    let (pending, result) = match done {
        Ok(done) => done,
        Err(error) => {
            // The commit task panicked or was cancelled: its requests see their reply channel
            // closed and get an error.
            tracing::error!(%error, "a group commit task failed");
            return false;
        }
    };
    match result {
        Ok(()) => {
            // Ranking starts before the senders hear back: the answer and the new hypotheses
            // race, and the hypotheses should not lose by the time it takes to answer.
            ranking.committed(pending.committed);
            for ((source, outcome), count) in &pending.counts {
                metrics::counter!(names::ALERTS_RECEIVED, "source" => *source, "outcome" => *outcome)
                    .increment(*count);
            }
            if pending.alerts > 0 {
                metrics::histogram!(names::INGEST_BATCH_ALERTS).record(pending.alerts as f64);
                metrics::histogram!(names::CORRELATION_SECONDS)
                    .record(pending.correlation.as_secs_f64());
                metrics::histogram!(names::INGEST_COMMIT_SECONDS)
                    .record(pending.commit.as_secs_f64());
            }
            for (reply, receipt) in pending.replies {
                let _ = reply.send(Ok(receipt));
            }
            true
        }
        Err(error) => {
            let requests = pending.replies.len();
            tracing::error!(%error, requests, "group commit failed; rebuilding the engine from the store");
            fail(pending, &error.to_string(), requests > 1);
            false
        }
    }
}

/// Tells each request of `pending` that nothing of it was stored; `shared`: because of a group
/// it shared, so that it may be sent again alone.
fn fail(pending: Pending, why: &str, shared: bool) {
    for (reply, _) in pending.replies {
        let _ = reply.send(Err(Failure {
            why: why.to_owned(),
            shared,
        }));
    }
}

/// The engine as the store has it, after a failed commit (the old one if even that fails);
/// ranking reloads what the rebuilt engine holds.
async fn rebuilt(
    store: &Store,
    topology: &LiveTopology,
    engine: Engine,
    ranking: &Ranking,
    clock: &Clock,
) -> Engine {
    match rebuild(store, topology, engine.settings(), clock.now_millis()).await {
        Ok(rebuilt) => {
            ranking.resync(rebuilt.incidents());
            rebuilt
        }
        Err(error) => {
            tracing::error!(%error, "cannot rebuild the engine; keeping the old state");
            engine
        }
    }
}

/// Correlates a group of requests: the batch to store and one receipt per request.
fn correlate(
    topology: &LiveTopology,
    engine: &mut Engine,
    mut group: Vec<Job>,
    now: Millis,
    engine_kind: crate::store::Engine,
) -> (Result<EncodedBatch, StoreError>, Pending) {
    let started = Instant::now();
    let current = topology.current();
    let graph = Graph {
        version: Some(current.version.id),
        topology: &current.topology,
    };
    let events = group
        .iter_mut()
        .flat_map(|job| std::mem::take(&mut job.events))
        .collect::<Vec<_>>();
    let observations = if events.is_empty() {
        engine.tick(now);
        Vec::new()
    } else {
        engine.observe(graph, &events, now)
    };
    let correlation = started.elapsed();
    let mut rows: Vec<AlertWrite> = Vec::new();
    // Beside each row: whether this group opened its occurrence, and its alert name.
    let mut opened_and_name: Vec<(bool, String)> = Vec::new();
    let mut row_of: HashMap<AlertKey, usize> = HashMap::new();
    let mut replies = Vec::with_capacity(group.len());
    let mut seen = observations.into_iter();
    let mut counts: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    for job in group {
        let mut receipt = Receipt {
            received: job.rows.len(),
            ..Receipt::default()
        };
        let mut incidents = BTreeSet::new();
        for (mut row, name) in job.rows.into_iter().zip(job.names) {
            let observation = seen.next().expect("one observation per alert");
            if row.service.is_none() {
                receipt.unmapped += 1;
            }
            if let Some(id) = observation.incident {
                incidents.insert(id);
            }
            let outcome = match observation.outcome {
                Outcome::Opened | Outcome::Unassigned => {
                    receipt.new += 1;
                    "new"
                }
                Outcome::Refreshed | Outcome::Resolved => {
                    receipt.updated += 1;
                    "updated"
                }
                Outcome::Duplicate => {
                    receipt.duplicates += 1;
                    "duplicate"
                }
                Outcome::Stale => {
                    receipt.stale += 1;
                    "stale"
                }
            };
            *counts.entry((row.source, outcome)).or_default() += 1;
            if matches!(observation.outcome, Outcome::Duplicate | Outcome::Stale) {
                continue;
            }
            row.starts_at = observation.key.starts_at;
            row.ends_at = observation.ends_at;
            row.status = match observation.outcome {
                Outcome::Opened | Outcome::Refreshed => AlertStatus::Firing.as_str(),
                _ => AlertStatus::Resolved.as_str(),
            };
            match row_of.get(&observation.key) {
                Some(&index) => {
                    // Later deliveries of one occurrence in one batch: the last state wins, the
                    // incident is kept.
                    row.incident = observation
                        .incident
                        .map(|id| id as i64)
                        .or(rows[index].incident);
                    rows[index] = row;
                    opened_and_name[index].0 |= observation.outcome == Outcome::Opened;
                }
                None => {
                    row.incident = observation.incident.map(|id| id as i64);
                    row_of.insert(observation.key, rows.len());
                    rows.push(row);
                    opened_and_name.push((observation.outcome == Outcome::Opened, name));
                }
            }
        }
        receipt.incidents = incidents.into_iter().collect();
        replies.push((job.reply, receipt));
    }
    let change = engine.take_changes();
    let committed = Committed {
        alerts: rows
            .iter()
            .zip(opened_and_name)
            .filter_map(|(row, (opened, name))| {
                Some(CommittedAlert {
                    incident: u64::try_from(row.incident?).ok()?,
                    key: AlertKey {
                        fingerprint: rootcause_correlation::Fingerprint::from_i64(row.fingerprint),
                        starts_at: row.starts_at,
                    },
                    opened,
                    service: row.service.clone(),
                    signal: row.signal,
                    severity: row.severity.clone(),
                    name,
                })
            })
            .collect(),
        incidents: change.incidents.clone(),
        merges: change.merges.clone(),
    };
    let batch = IngestBatch {
        alerts: rows,
        change,
        now,
    };
    let pending = Pending {
        replies,
        counts,
        alerts: events.len(),
        correlation,
        commit: Duration::ZERO,
        committed,
    };
    (batch.encode(engine_kind), pending)
}
