//! Root-cause ranking of incidents while they unfold.
//!
//! The service keeps in memory everything a ranker needs of each incident it holds (open ones,
//! recently resolved ones, and any incident someone asked about): the engine's snapshot, its
//! alerts, the metric windows posted with it, the series pulled from Prometheus, and the change
//! events of the last hours. The store stays the durable copy; ranking never waits for it.
//!
//! Every change to an incident (alerts committed by the ingest writer, a merge, a resolution, a
//! metrics post, a change event on one of its candidates) bumps the incident's *generation* and
//! queues it. One worker task ranks queued incidents at once, one at a time, on the blocking
//! pool; changes that arrive while it ranks are applied meanwhile and coalesced into the next
//! ranking of that incident (leading edge, then one more ranking for however many changes came
//! in between). `ranking.min_interval_ms` additionally spaces the rankings of one incident.
//!
//! Each published ranking has a revision that only grows per incident, and covers a generation:
//! a result computed from an older copy than the one already published is dropped, so the last
//! published ranking always reflects the last change. Subscribers get each new ranking, each
//! change of the incident, and the end of the incident when a merge absorbs it, through a
//! broadcast channel per incident.

mod case;
mod view;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use rootcause_correlation::{AlertKey, IncidentSnapshot, IncidentStatus, Millis};
use rootcause_models::actions::Suggestion;
use rootcause_models::case::{Case, CaseAlert, Series};
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::evidence;
use rootcause_models::ranker::Ranker;
use rootcause_models::rankers;
use rootcause_topology::Topology;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub use case::{CHANGES_BEFORE_S, ChangeRecord, Job, Samples};
use case::{Posted, add_stored_metrics, case_alert, series_of, stored_alert};
pub use view::{HypothesesView, HypothesisView};

use crate::advice::Advice;
use crate::clock::Clock;
use crate::config::PrometheusConfig;
use crate::config::RankingConfig;
use crate::live_topology::LiveTopology;
use crate::prometheus::PrometheusSource;
use crate::store::{ChangeFilter, MetricWrite, Store, StoreError, incident_snapshot};
use crate::telemetry::names;
use crate::workers::Spawner;

/// Most alerts of one incident loaded from the store (at start-up, or for an incident that is
/// no longer in memory).
const MAX_LOADED_ALERTS: i64 = 100_000;

/// Most change events loaded from the store at once.
const MAX_LOADED_CHANGES: i64 = 100_000;

/// Rankings the notifier may fall behind by before it loses the oldest.
const PUBLISHED_CAPACITY: usize = 1024;

/// Notices a subscriber may fall behind by; one that falls further is sent the latest state
/// instead of what it missed.
const NOTICE_CAPACITY: usize = 64;

/// A resolved incident that nobody asked about and nothing changed for this long is dropped
/// from memory; it is loaded again from the store when someone asks.
const EVICT_AFTER: Duration = Duration::from_secs(30 * 60);

/// Most points of posted series one incident may hold: a bound on the memory a client can
/// make the service hold for one incident.
pub const MAX_INCIDENT_POINTS: usize = 1_000_000;

/// What one group commit of the ingest writer changed, for ranking.
#[derive(Debug, Default)]
pub struct Committed {
    /// Alert rows that belong to an incident.
    pub alerts: Vec<CommittedAlert>,
    /// Every incident that changed, as it is now.
    pub incidents: Vec<IncidentSnapshot>,
    /// (absorbed, survivor) merges, in order.
    pub merges: Vec<(u64, u64)>,
    /// Firing alerts that expired, and when.
    pub expired: Vec<(AlertKey, Millis)>,
}

impl Committed {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.incidents.is_empty()
            && self.merges.is_empty()
            && self.expired.is_empty()
    }
}

/// One alert row of a commit.
#[derive(Debug, Clone)]
pub struct CommittedAlert {
    /// Its incident.
    pub incident: u64,
    /// The occurrence.
    pub key: AlertKey,
    /// When it resolved; `None` while it fires.
    pub resolved_at: Option<Millis>,
    /// Mapped service.
    pub service: Option<String>,
    /// Signal kind, as the correlation engine classified it.
    pub signal: &'static str,
    /// `severity` label.
    pub severity: Option<String>,
    /// Labels, JSON object text (parsed by the ranking worker, off the ingest path).
    pub labels: String,
}

/// What the ranking worker is told, in commit order.
#[derive(Debug)]
enum Update {
    /// A group commit.
    Committed(Committed),
    /// The engine was (re)built from the store: these are the incidents it holds.
    Resync(Vec<IncidentSnapshot>),
}

/// A published ranking of one incident.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// The incident.
    pub incident: u64,
    /// Grows by one with every ranking published for the incident.
    pub revision: u64,
    /// When it was published.
    pub ranked_at: DateTime<Utc>,
    /// The incident's alert occurrences the ranking covered.
    pub alert_count: u64,
    /// The ranker's answer.
    pub diagnosis: Diagnosis,
    /// The actions suggested for each hypothesis, in the diagnosis' order.
    pub actions: Vec<Vec<Suggestion>>,
    /// The [`HypothesesView`] JSON of this ranking, as every reader and subscriber gets it.
    pub json: Arc<str>,
    /// Which state it was computed from.
    generation: u64,
}

/// What subscribers of an incident are told.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A new ranking.
    Hypotheses(Arc<Ranked>),
    /// The incident changed (alerts, services, status).
    Incident(Box<IncidentSnapshot>),
    /// The incident was merged into `survivor`; nothing more will come.
    End {
        /// The incident that absorbed it.
        survivor: u64,
    },
}

/// Where an incident stands.
#[derive(Debug)]
pub enum Found<T> {
    /// Held, with the value asked for.
    Held(T),
    /// Merged into this (surviving) incident.
    Merged(u64),
    /// No such incident.
    Unknown,
}

/// A live view of one incident: its notices from now on, its state now.
#[derive(Debug)]
pub struct Subscription {
    /// Notices published after the subscription.
    pub notices: broadcast::Receiver<Arc<Notice>>,
    /// The incident now.
    pub snapshot: IncidentSnapshot,
    /// Its latest ranking.
    pub ranked: Arc<Ranked>,
}

/// Why posted metrics were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No such incident.
    #[error("no incident {0}")]
    Unknown(u64),
    /// The incident was merged.
    #[error("incident {incident} was merged into incident {survivor}")]
    Merged {
        /// The incident posted to.
        incident: u64,
        /// Where its alerts and metrics are now.
        survivor: u64,
    },
    /// The incident would hold too many points.
    #[error(
        "incident {incident} holds {held} posted points; {posted} more would pass the limit of \
         {MAX_INCIDENT_POINTS}"
    )]
    TooManyPoints {
        /// The incident.
        incident: u64,
        /// Points it holds.
        held: usize,
        /// Points in the request.
        posted: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ranking service handle: cheap to clone, shared by the ingest writer and the handlers.
#[derive(Clone)]
pub struct Ranking {
    inner: Arc<Inner>,
}

struct Inner {
    /// Swapped whole when another model is activated: a job in progress keeps the ranker it
    /// started with.
    ranker: ArcSwap<Arc<dyn Ranker>>,
    /// The runbooks and past incidents suggestions come from.
    advice: Arc<Advice>,
    /// Every published ranking, for the notifier.
    published: broadcast::Sender<Arc<Ranked>>,
    hops: usize,
    min_interval: Duration,
    store: Store,
    topology: Arc<LiveTopology>,
    prometheus: Option<PrometheusSource>,
    state: Mutex<State>,
    /// Wakes the worker for changes made outside it (metrics posts, change events).
    wake: Notify,
    updates: mpsc::UnboundedSender<Update>,
    /// The current topology version as an `Arc`, which a case needs: copied once per version.
    graph: Mutex<Option<(i64, Arc<Topology>)>>,
    /// Cancelled when the service shuts down: the worker stops and event streams end.
    shutdown: CancellationToken,
    /// Starts Prometheus pulls.
    spawner: Spawner,
    /// Stamps stored metric posts and rankings.
    clock: Clock,
}

#[derive(Default)]
struct State {
    incidents: HashMap<u64, Held>,
    /// Absorbed incident → the incident it was merged into.
    merged: HashMap<u64, u64>,
    /// Incidents to rank, oldest change first, each at most once.
    queue: VecDeque<u64>,
    queued: HashSet<u64>,
    changes: ChangeLog,
}

/// One incident in memory.
struct Held {
    snapshot: IncidentSnapshot,
    alerts: BTreeMap<AlertKey, CaseAlert>,
    posted: Posted,
    posted_points: usize,
    /// Points of posts being stored right now, counted against the limit until they land.
    reserved_points: usize,
    pulled: Pulled,
    /// Candidates of the last ranking, sorted (to tell which change events concern it).
    candidates: Vec<String>,
    /// The topology version and services they were computed for.
    candidates_of: (i64, Vec<String>),
    /// Bumped by every change.
    generation: u64,
    revision: u64,
    ranked: Option<Arc<Ranked>>,
    last_ranked: Option<Instant>,
    /// Last change or request, for eviction.
    touched: Instant,
    notices: broadcast::Sender<Arc<Notice>>,
}

/// Series pulled from Prometheus for one incident.
#[derive(Default)]
struct Pulled {
    series: Vec<Series>,
    /// When the last fetch finished (successfully or not).
    fetched_at: Option<Instant>,
    /// The services and window it was asked for.
    services: Vec<String>,
    window: (i64, i64),
    in_flight: bool,
}

/// Change events, sorted by time, complete from `horizon` (epoch ms) on.
struct ChangeLog {
    entries: Vec<ChangeRecord>,
    ids: HashSet<i64>,
    horizon: i64,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog {
            entries: Vec::new(),
            ids: HashSet::new(),
            horizon: i64::MAX,
        }
    }
}

impl ChangeLog {
    /// Adds an event unless it is already held; whether it was added.
    fn insert(&mut self, record: ChangeRecord) -> bool {
        if !self.ids.insert(record.id) {
            return false;
        }
        let at = self
            .entries
            .partition_point(|e| (e.at, e.id) < (record.at, record.id));
        self.entries.insert(at, record);
        true
    }

    /// Events at `from..=to` (epoch ms).
    fn window(&self, from: i64, to: i64) -> Vec<ChangeRecord> {
        let a = self.entries.partition_point(|e| e.at < from);
        let b = self.entries.partition_point(|e| e.at <= to);
        self.entries
            .get(a..b)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Forgets events before `horizon`.
    fn prune(&mut self, horizon: i64) {
        let cut = self.entries.partition_point(|e| e.at < horizon);
        for gone in self.entries.drain(..cut) {
            self.ids.remove(&gone.id);
        }
        self.horizon = self.horizon.max(horizon);
    }
}

/// An incident's material as loaded from the store.
struct Material {
    snapshot: IncidentSnapshot,
    alerts: BTreeMap<AlertKey, CaseAlert>,
    posted: Posted,
}

impl Held {
    fn new(snapshot: IncidentSnapshot) -> Held {
        Held {
            snapshot,
            alerts: BTreeMap::new(),
            posted: Posted::new(),
            posted_points: 0,
            reserved_points: 0,
            pulled: Pulled::default(),
            candidates: Vec::new(),
            candidates_of: (0, Vec::new()),
            generation: 0,
            revision: 0,
            ranked: None,
            last_ranked: None,
            touched: Instant::now(),
            notices: broadcast::channel(NOTICE_CAPACITY).0,
        }
    }

    fn replace_material(&mut self, material: Material) {
        self.snapshot = material.snapshot;
        self.alerts = material.alerts;
        self.posted = material.posted;
        self.posted_points = self.posted.values().map(Samples::len).sum();
    }

    /// Unix seconds of the first alert activity: where the case's windows are anchored.
    fn anchor(&self) -> i64 {
        self.snapshot.first_activity.div_euclid(1000)
    }

    /// Whether a change event on `service` at `at` (ms) is evidence about this incident.
    fn concerns(&self, service: &str, at: i64) -> bool {
        let relevant = if self.candidates.is_empty() {
            self.snapshot.services.iter().any(|(s, _)| s == service)
        } else {
            self.candidates
                .binary_search_by(|c| c.as_str().cmp(service))
                .is_ok()
        };
        relevant && at >= self.snapshot.first_activity - CHANGES_BEFORE_S * 1000
    }

    fn notify(&self, notice: Notice) {
        if self.notices.receiver_count() > 0 {
            let _ = self.notices.send(Arc::new(notice));
        }
    }
}

impl State {
    /// Marks an incident changed: a new generation, queued for ranking.
    fn bump(&mut self, id: u64) {
        if let Some(held) = self.incidents.get_mut(&id) {
            held.generation += 1;
            held.touched = Instant::now();
            if self.queued.insert(id) {
                self.queue.push_back(id);
                metrics::gauge!(names::RANKING_QUEUE_DEPTH).set(self.queue.len() as f64);
            }
        }
    }

    /// The incident that holds `id`'s alerts now (itself unless merged).
    fn follow(&self, mut id: u64) -> u64 {
        for _ in 0..self.merged.len() {
            match self.merged.get(&id) {
                Some(&survivor) => id = survivor,
                None => break,
            }
        }
        id
    }
}

/// The result of one ranking job.
struct Outcome {
    incident: u64,
    generation: u64,
    alert_count: u64,
    candidates: Vec<String>,
    /// The topology version and services the candidates were computed for.
    candidates_of: (i64, Vec<String>),
    diagnosis: Diagnosis,
    actions: Vec<Vec<Suggestion>>,
    /// The hypotheses as JSON, serialized off the async workers.
    hypotheses: Box<serde_json::value::RawValue>,
    elapsed: Duration,
}

/// Ranks one job: builds the case, diagnoses it and suggests actions for every hypothesis.
/// CPU-bound; runs on the blocking pool.
fn run_job(job: Job, ranker: &dyn Ranker, advice: &Advice) -> Outcome {
    let started = Instant::now();
    let span = tracing::info_span!(
        "ranking",
        incident = job.incident,
        alerts = job.alerts.len(),
        candidates = tracing::field::Empty,
    );
    let _entered = span.enter();
    let (incident, generation, alert_count) = (job.incident, job.generation, job.alert_count);
    let candidates_of = (job.topology_version, job.services.clone());
    let case = job.case();
    let built = started.elapsed();
    span.record("candidates", case.candidates.len());
    // Rankers that diagnose from evidence get it extracted here, once: the suggestions read it
    // too (the learned action model, the similar-incident index).
    let evidence = (!case.candidates.is_empty())
        .then(|| ranker.evidence_settings())
        .flatten()
        .map(|settings| evidence::extract(&case, &settings));
    let diagnosis = if case.candidates.is_empty() {
        // An incident of unmapped alerts has no service to rank.
        Diagnosis {
            model: ranker.name().to_owned(),
            unknown: true,
            threshold: 0.0,
            hypotheses: Vec::new(),
        }
    } else {
        evidence
            .as_ref()
            .and_then(|e| ranker.diagnose_evidence(e))
            .unwrap_or_else(|| ranker.diagnose(&case))
    };
    let diagnosed = started.elapsed();
    let actions = advice.advise(incident, &case, &diagnosis, evidence.as_ref(), ranker);
    let advised = started.elapsed();
    let hypotheses = view::hypotheses_json(&diagnosis, &actions);
    let elapsed = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    tracing::debug!(
        elapsed_ms = ms(elapsed),
        case_ms = ms(built),
        diagnose_ms = ms(diagnosed - built),
        advise_ms = ms(advised - diagnosed),
        json_ms = ms(elapsed - advised),
        "ranked"
    );
    Outcome {
        incident,
        generation,
        alert_count,
        candidates: case.candidates,
        candidates_of,
        diagnosis,
        actions,
        hypotheses,
        elapsed,
    }
}

impl Ranking {
    /// Loads the configured ranker and starts the worker. The worker waits for the first
    /// [`Ranking::resync`] (sent by the ingest writer once the engine is rebuilt) before it
    /// ranks the incidents restored from the store.
    pub fn start(
        config: &RankingConfig,
        prometheus: &PrometheusConfig,
        store: Store,
        topology: Arc<LiveTopology>,
        advice: Arc<Advice>,
        clock: Clock,
        spawner: &Spawner,
    ) -> anyhow::Result<Ranking> {
        let ranker = rankers::load(&config.model)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("ranking.model = {:?}", config.model))?;
        let prometheus = PrometheusSource::new(prometheus.clone());
        Ok(Ranking::with_ranker(
            Arc::from(ranker),
            config,
            prometheus,
            store,
            topology,
            advice,
            clock,
            spawner,
        ))
    }

    /// [`Ranking::start`] with a given ranker and Prometheus source.
    pub fn with_ranker(
        ranker: Arc<dyn Ranker>,
        config: &RankingConfig,
        prometheus: Option<PrometheusSource>,
        store: Store,
        topology: Arc<LiveTopology>,
        advice: Arc<Advice>,
        clock: Clock,
        spawner: &Spawner,
    ) -> Ranking {
        let (updates, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            ranker: ArcSwap::from_pointee(ranker),
            advice,
            published: broadcast::channel(PUBLISHED_CAPACITY).0,
            hops: config.hops,
            min_interval: Duration::from_millis(config.min_interval_ms),
            store,
            topology,
            prometheus,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            updates,
            graph: Mutex::new(None),
            shutdown: spawner.token(),
            spawner: spawner.clone(),
            clock,
        });
        spawner.spawn(worker::run(inner.clone(), receiver));
        Ranking { inner }
    }

    /// The ranker's name (`learned@<version>`, `cold-start`, ...).
    pub fn model(&self) -> String {
        self.inner.ranker.load().name().to_owned()
    }

    /// The ranker in use now.
    pub fn ranker(&self) -> Arc<dyn Ranker> {
        Arc::clone(&**self.inner.ranker.load())
    }

    /// Ranks with `ranker` from now on, and re-ranks every incident held in memory so that their
    /// hypotheses come from it. Rankings in progress finish with the ranker they began with.
    pub fn set_ranker(&self, ranker: Arc<dyn Ranker>) {
        tracing::info!(model = ranker.name(), "ranking with a new model");
        self.inner.ranker.store(Arc::new(ranker));
        self.rerank_all();
    }

    /// Re-ranks every incident held in memory (after a new model or runbook catalogue).
    pub fn rerank_all(&self) {
        let mut state = self.inner.lock();
        let held: Vec<u64> = state.incidents.keys().copied().collect();
        for id in held {
            state.bump(id);
        }
        drop(state);
        self.inner.wake.notify_one();
    }

    /// The case a ranking of incident `id` would see now (alerts, posted and pulled metrics,
    /// changes, topology), loading the incident from the store if it is not in memory.
    pub async fn case_of(&self, id: u64) -> Result<Found<Case>, StoreError> {
        match self.inner.hold(id).await? {
            Found::Held(()) => {}
            Found::Merged(survivor) => return Ok(Found::Merged(survivor)),
            Found::Unknown => return Ok(Found::Unknown),
        }
        let (version, graph) = self.inner.graph().await;
        let job = {
            let mut state = self.inner.lock();
            match self.inner.job_for(&mut state, id, version, graph) {
                Some(job) => job,
                None => return Ok(self.inner.gone(&state, id)),
            }
        };
        match tokio::task::spawn_blocking(move || job.case()).await {
            Ok(case) => Ok(Found::Held(case)),
            Err(error) => Err(StoreError::Corrupt(format!(
                "building the case of incident {id} failed: {error}"
            ))),
        }
    }

    /// Every ranking published from now on (a receiver that falls behind loses the oldest).
    pub fn published(&self) -> broadcast::Receiver<Arc<Ranked>> {
        self.inner.published.subscribe()
    }

    /// Hands a committed group to the worker. Cheap: the ingest writer calls it.
    pub fn committed(&self, committed: Committed) {
        if !committed.is_empty() {
            let _ = self.inner.updates.send(Update::Committed(committed));
        }
    }

    /// Tells the worker which incidents the engine holds after a (re)build from the store: it
    /// reloads their material from the store and ranks the open ones.
    pub fn resync(&self, incidents: Vec<IncidentSnapshot>) {
        let _ = self.inner.updates.send(Update::Resync(incidents));
    }

    /// Cancelled when the service shuts down: event streams end then (open streams would
    /// otherwise keep the server waiting for their connections to close).
    pub fn stopping(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Whether incident `id` exists (loading it into memory if it does and is not there).
    pub async fn find(&self, id: u64) -> Result<Found<()>, StoreError> {
        self.inner.hold(id).await
    }

    /// The latest ranking of incident `id`, ranking it now if it never was.
    pub async fn hypotheses(&self, id: u64) -> Result<Found<Arc<Ranked>>, StoreError> {
        match self.inner.hold(id).await? {
            Found::Held(()) => {}
            Found::Merged(survivor) => return Ok(Found::Merged(survivor)),
            Found::Unknown => return Ok(Found::Unknown),
        }
        Ok(self.inner.ranked_or_rank(id).await)
    }

    /// Subscribes to incident `id`: its notices from now on, with its current state and
    /// ranking (ranked now if it never was).
    pub async fn subscribe(&self, id: u64) -> Result<Found<Subscription>, StoreError> {
        match self.inner.hold(id).await? {
            Found::Held(()) => {}
            Found::Merged(survivor) => return Ok(Found::Merged(survivor)),
            Found::Unknown => return Ok(Found::Unknown),
        }
        // Subscribe before reading the state, so that nothing published in between is missed
        // (at worst a ranking is seen twice; its revision tells).
        let notices = {
            let state = self.inner.lock();
            match state.incidents.get(&id) {
                Some(held) => held.notices.subscribe(),
                None => return Ok(self.inner.gone(&state, id)),
            }
        };
        let ranked = match self.inner.ranked_or_rank(id).await {
            Found::Held(ranked) => ranked,
            Found::Merged(survivor) => return Ok(Found::Merged(survivor)),
            Found::Unknown => return Ok(Found::Unknown),
        };
        let state = self.inner.lock();
        match state.incidents.get(&id) {
            Some(held) => Ok(Found::Held(Subscription {
                notices,
                snapshot: held.snapshot.clone(),
                ranked,
            })),
            None => Ok(self.inner.gone(&state, id)),
        }
    }

    /// Incident `id` and its latest ranking as held in memory now (for a subscriber that fell
    /// behind): never touches the store.
    pub fn latest(&self, id: u64) -> Found<(IncidentSnapshot, Option<Arc<Ranked>>)> {
        let state = self.inner.lock();
        match state.incidents.get(&id) {
            Some(held) => Found::Held((held.snapshot.clone(), held.ranked.clone())),
            None => self.inner.gone(&state, id),
        }
    }

    /// Stores posted series of incident `id` durably, then adds them to what its rankings see
    /// and queues it for ranking.
    pub async fn post_metrics(&self, id: u64, series: Vec<MetricWrite>) -> Result<(), PostError> {
        match self.inner.hold(id).await? {
            Found::Held(()) => {}
            Found::Merged(survivor) => {
                return Err(PostError::Merged {
                    incident: id,
                    survivor,
                });
            }
            Found::Unknown => return Err(PostError::Unknown(id)),
        }
        let posted: usize = series.iter().map(|s| s.times.len()).sum();
        let reserved_in;
        {
            // Reserve the points before the store is awaited, so concurrent posts cannot all
            // pass the limit; released below whatever the store answers.
            let mut state = self.inner.lock();
            let target = state.follow(id);
            reserved_in = Some(target);
            if let Some(held) = state.incidents.get_mut(&target) {
                let taken = held.posted_points + held.reserved_points;
                if taken + posted > MAX_INCIDENT_POINTS {
                    return Err(PostError::TooManyPoints {
                        incident: id,
                        held: taken,
                        posted,
                    });
                }
                held.reserved_points += posted;
            }
        }
        let stored = self
            .inner
            .store
            .insert_incident_metrics(to_i64(id), &series, self.inner.clock.now_millis())
            .await;
        {
            let mut state = self.inner.lock();
            // Merged meanwhile: the reservation went with the absorbed incident's memory.
            let holder = reserved_in.map(|at| {
                if state.incidents.contains_key(&at) {
                    at
                } else {
                    state.follow(at)
                }
            });
            if let Some(held) = holder.and_then(|at| state.incidents.get_mut(&at)) {
                held.reserved_points = held.reserved_points.saturating_sub(posted);
            }
        }
        stored?;
        {
            let mut state = self.inner.lock();
            // Merged meanwhile: the survivor reads this incident's rows from the store too.
            let target = state.follow(id);
            if let Some(held) = state.incidents.get_mut(&target) {
                for write in series {
                    held.posted
                        .entry((write.service, write.name))
                        .or_default()
                        .merge(&Samples {
                            times: write.times,
                            values: write.values,
                        });
                }
                held.posted_points = held.posted.values().map(Samples::len).sum();
                state.bump(target);
            }
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Change events just stored: queues every held incident whose candidates they concern.
    pub fn changes_recorded(&self, records: Vec<ChangeRecord>) {
        let mut queued = false;
        {
            let mut state = self.inner.lock();
            for record in records {
                // Kept even when older than the log's horizon (before the first load from the
                // store, the horizon is not known yet); housekeeping drops what nobody needs.
                let concerned = state
                    .incidents
                    .iter()
                    .filter(|(_, held)| held.concerns(&record.service, record.at))
                    .map(|(&id, _)| id)
                    .collect::<Vec<_>>();
                if state.changes.insert(record) {
                    for id in concerned {
                        state.bump(id);
                        queued = true;
                    }
                }
            }
        }
        if queued {
            self.inner.wake.notify_one();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `id` is not held: merged (into whom), or unknown.
    fn gone<T>(&self, state: &State, id: u64) -> Found<T> {
        match state.merged.get(&id) {
            Some(_) => Found::Merged(state.follow(id)),
            None => Found::Unknown,
        }
    }

    /// The current topology as an `Arc`, copied once per version on the blocking pool.
    async fn graph(self: &Arc<Self>) -> (i64, Arc<Topology>) {
        let id = self.topology.current().version.id;
        if let Some((version, graph)) = &*self.graph.lock().unwrap_or_else(|p| p.into_inner())
            && *version == id
        {
            return (id, graph.clone());
        }
        let inner = self.clone();
        tokio::task::spawn_blocking(move || inner.graph_now())
            .await
            .expect("copying a topology does not panic")
    }

    /// [`Inner::graph`] on the calling thread: the copy of a new version (milliseconds for a
    /// large estate) is made here. For threads that may block.
    fn graph_now(&self) -> (i64, Arc<Topology>) {
        let current = self.topology.current();
        let id = current.version.id;
        let mut cached = self.graph.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((version, graph)) if *version == id => (id, graph.clone()),
            _ => {
                let graph = Arc::new(current.topology.clone());
                *cached = Some((id, graph.clone()));
                (id, graph)
            }
        }
    }

    /// Makes sure incident `id` is in memory, loading it from the store if needed.
    async fn hold(&self, id: u64) -> Result<Found<()>, StoreError> {
        {
            let mut state = self.lock();
            if let Some(held) = state.incidents.get_mut(&id) {
                held.touched = Instant::now();
                return Ok(Found::Held(()));
            }
            if state.merged.contains_key(&id) {
                return Ok(Found::Merged(state.follow(id)));
            }
        }
        match load(&self.store, id).await? {
            Found::Held(material) => {
                self.load_changes_since(material.snapshot.first_activity)
                    .await;
                let mut state = self.lock();
                // Merged while it was being loaded: the merge wins, or the absorbed incident
                // would come back as open with a stale ranking and never end its streams.
                if state.merged.contains_key(&id) {
                    return Ok(Found::Merged(state.follow(id)));
                }
                state
                    .incidents
                    .entry(id)
                    .or_insert_with(|| {
                        let mut held = Held::new(material.snapshot.clone());
                        held.replace_material(material);
                        held
                    })
                    .touched = Instant::now();
                Ok(Found::Held(()))
            }
            Found::Merged(survivor) => Ok(Found::Merged(survivor)),
            Found::Unknown => Ok(Found::Unknown),
        }
    }

    /// Makes the change log complete from an hour before `first_activity` (ms) on.
    async fn load_changes_since(&self, first_activity: i64) {
        let since = first_activity - CHANGES_BEFORE_S * 1000;
        let until = {
            let state = self.lock();
            if since >= state.changes.horizon {
                return;
            }
            state.changes.horizon
        };
        let filter = ChangeFilter {
            service: None,
            since: Some(since),
            until: (until != i64::MAX).then_some(until),
            limit: MAX_LOADED_CHANGES,
        };
        match self.store.list_changes(&filter).await {
            Ok(rows) => {
                let mut state = self.lock();
                for row in rows {
                    if let Some(record) = ChangeRecord::of(row) {
                        state.changes.insert(record);
                    }
                }
                state.changes.horizon = state.changes.horizon.min(since);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot load change events; ranking without the older ones")
            }
        }
    }

    /// The latest ranking of held incident `id`, or one made now.
    async fn ranked_or_rank(self: &Arc<Self>, id: u64) -> Found<Arc<Ranked>> {
        {
            let state = self.lock();
            match state.incidents.get(&id) {
                Some(held) => {
                    if let Some(ranked) = &held.ranked {
                        return Found::Held(ranked.clone());
                    }
                }
                None => return self.gone(&state, id),
            }
        }
        let (version, graph) = self.graph().await;
        let job = {
            let mut state = self.lock();
            match self.job_for(&mut state, id, version, graph) {
                Some(job) => job,
                None => return self.gone(&state, id),
            }
        };
        let ranker = Arc::clone(&**self.ranker.load());
        let advice = self.advice.clone();
        match tokio::task::spawn_blocking(move || run_job(job, &*ranker, &advice)).await {
            Ok(outcome) => self.publish(outcome),
            Err(error) => tracing::error!(%error, incident = id, "a ranking job failed"),
        }
        let state = self.lock();
        match state.incidents.get(&id) {
            Some(held) => match &held.ranked {
                Some(ranked) => Found::Held(ranked.clone()),
                None => Found::Unknown,
            },
            None => self.gone(&state, id),
        }
    }

    /// A copy of what ranking incident `id` needs.
    fn job_for(
        &self,
        state: &mut State,
        id: u64,
        topology_version: i64,
        topology: Arc<Topology>,
    ) -> Option<Job> {
        let held = state.incidents.get(&id)?;
        let now = self.clock.now_millis();
        let from = held.snapshot.first_activity - CHANGES_BEFORE_S * 1000;
        let services = held
            .snapshot
            .services
            .iter()
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>();
        let known = (held.candidates_of.0 == topology_version && !held.candidates.is_empty())
            .then(|| case::added_since(&held.candidates_of.1, &services))
            .flatten()
            .map(|added| (held.candidates.clone(), added));
        Some(Job {
            incident: id,
            generation: held.generation,
            alert_count: held.snapshot.alert_count,
            anchor: held.anchor(),
            services,
            known,
            alerts: held.alerts.values().cloned().collect(),
            series: series_of(&held.posted, &held.pulled.series),
            changes: state.changes.window(from, now),
            topology,
            topology_version,
            hops: self.hops,
        })
    }

    /// Publishes a ranking unless one of a newer state was published already.
    fn publish(&self, outcome: Outcome) {
        metrics::histogram!(names::RANKING_SECONDS).record(outcome.elapsed.as_secs_f64());
        metrics::counter!(names::RANKINGS_TOTAL).increment(1);
        let mut state = self.lock();
        let Some(held) = state.incidents.get_mut(&outcome.incident) else {
            return;
        };
        held.candidates = outcome.candidates;
        held.candidates_of = outcome.candidates_of;
        if held
            .ranked
            .as_ref()
            .is_some_and(|r| r.generation >= outcome.generation)
        {
            return;
        }
        held.revision += 1;
        held.last_ranked = Some(Instant::now());
        let ranked_at = self.clock.now();
        let view = HypothesesView {
            incident: outcome.incident,
            revision: held.revision,
            ranked_at: ranked_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            model: outcome.diagnosis.model.clone(),
            unknown: outcome.diagnosis.unknown,
            threshold: outcome.diagnosis.threshold,
            alert_count: outcome.alert_count,
            hypotheses: outcome.hypotheses,
        };
        let json = serde_json::to_string(&view).expect("a ranking always serializes");
        let ranked = Arc::new(Ranked {
            incident: outcome.incident,
            revision: held.revision,
            ranked_at,
            alert_count: outcome.alert_count,
            diagnosis: outcome.diagnosis,
            actions: outcome.actions,
            json: json.into(),
            generation: outcome.generation,
        });
        held.ranked = Some(ranked.clone());
        if self.published.receiver_count() > 0 {
            let _ = self.published.send(ranked.clone());
        }
        held.notify(Notice::Hypotheses(ranked));
        if outcome.generation == held.generation && state.queued.remove(&outcome.incident) {
            // Ranked on a request while it waited in the queue: nothing left to rank.
            state.queue.retain(|&id| id != outcome.incident);
            metrics::gauge!(names::RANKING_QUEUE_DEPTH).set(state.queue.len() as f64);
        }
    }
}

/// An incident's material from the store, or where it went.
async fn load(store: &Store, id: u64) -> Result<Found<Material>, StoreError> {
    let Some(row) = store.incident(to_i64(id)).await? else {
        return Ok(Found::Unknown);
    };
    let snapshot = incident_snapshot(row)?;
    if snapshot.status == IncidentStatus::Merged {
        // Follow the chain of merges to the incident that holds the alerts now.
        let mut survivor = snapshot.merged_into.unwrap_or(id);
        for _ in 0..64 {
            match store.incident(to_i64(survivor)).await? {
                Some(row) if row.status == "merged" => match row.merged_into {
                    Some(next) => survivor = next.max(0) as u64,
                    None => break,
                },
                _ => break,
            }
        }
        return Ok(Found::Merged(survivor));
    }
    material(store, snapshot).await.map(Found::Held)
}

/// The alerts and posted metrics of `snapshot`'s incident, from the store.
async fn material(store: &Store, snapshot: IncidentSnapshot) -> Result<Material, StoreError> {
    let id = to_i64(snapshot.id);
    let alerts = store
        .incident_alerts(id, MAX_LOADED_ALERTS)
        .await?
        .iter()
        .map(stored_alert)
        .collect();
    let mut posted = Posted::new();
    add_stored_metrics(&mut posted, store.incident_metrics(id).await?);
    Ok(Material {
        snapshot,
        alerts,
        posted,
    })
}

/// A [`CaseAlert`] of a committed row.
fn committed_alert(alert: &CommittedAlert) -> CaseAlert {
    case_alert(
        alert.service.clone(),
        &alert.labels,
        alert.signal,
        alert.severity.clone(),
        alert.key.starts_at,
        alert.resolved_at,
    )
}

fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
