//! What ranking holds in memory (every incident's material, the queue, recent change events)
//! and how it changes: loading from the store, applying commits, building jobs, publishing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rootcause_correlation::{IncidentSnapshot, IncidentStatus};
use rootcause_models::case::Series;
use rootcause_models::ranker::Ranker;
use rootcause_topology::Topology;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub use case::{CHANGES_BEFORE_S, ChangeRecord, Job, Samples};
use case::{Posted, add_stored_metrics, committed_kind, series_of, stored_kind};
use digest::{Added, AlertDigest, Kind};
pub use view::HypothesesView;

use crate::advice::Advice;
use crate::clock::Clock;
use crate::live_topology::LiveTopology;
use crate::prometheus::PrometheusSource;
use crate::store::{ChangeFilter, Store, StoreError, incident_snapshot};
use crate::telemetry::names;
use crate::workers::Spawner;

use super::*;

pub(super) struct Inner {
    /// Swapped whole when another model is activated: a job in progress keeps the ranker it
    /// started with.
    pub(super) ranker: ArcSwap<Arc<dyn Ranker>>,
    /// The runbooks and past incidents suggestions come from.
    pub(super) advice: Arc<Advice>,
    /// Every published ranking, for the notifier.
    pub(super) published: broadcast::Sender<Arc<Ranked>>,
    pub(super) hops: usize,
    /// Hypotheses a ranking lists (`ranking.hypotheses_listed`).
    pub(super) listed: usize,
    /// Kinds of alerts held per incident (`ranking.max_alert_kinds_per_incident`): the first
    /// received, as a restart loads them.
    pub(super) max_alert_kinds: usize,
    pub(super) min_interval: Duration,
    /// A resolved incident that nothing changed and nobody asked about for this long is
    /// dropped from memory (`ranking.hold_resolved_secs`); it is loaded again from the store
    /// when someone asks or it reopens.
    pub(super) hold_resolved: Duration,
    pub(super) store: Store,
    pub(super) topology: Arc<LiveTopology>,
    pub(super) prometheus: Option<PrometheusSource>,
    pub(super) state: Mutex<State>,
    /// Wakes the worker for changes made outside it (metrics posts, change events).
    pub(super) wake: Notify,
    pub(super) updates: mpsc::UnboundedSender<Update>,
    /// Cancelled when the service shuts down: the worker stops and event streams end.
    pub(super) shutdown: CancellationToken,
    /// Starts Prometheus pulls.
    pub(super) spawner: Spawner,
    /// Stamps stored metric posts and rankings.
    pub(super) clock: Clock,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) incidents: HashMap<u64, Held>,
    /// Absorbed incident → the incident it was merged into.
    pub(super) merged: HashMap<u64, u64>,
    /// Incidents to rank, oldest change first, each at most once.
    pub(super) queue: VecDeque<u64>,
    pub(super) queued: HashSet<u64>,
    pub(super) changes: ChangeLog,
}

/// One incident in memory.
pub(super) struct Held {
    pub(super) snapshot: IncidentSnapshot,
    pub(super) alerts: AlertDigest,
    pub(super) posted: Posted,
    pub(super) posted_points: usize,
    /// Points of posts being stored right now, counted against the limit until they land.
    pub(super) reserved_points: usize,
    pub(super) pulled: Pulled,
    /// Candidates of the last ranking, sorted (to tell which change events concern it).
    pub(super) candidates: Vec<String>,
    /// The topology version and services they were computed for.
    pub(super) candidates_of: (i64, Vec<String>),
    /// Bumped by every change.
    pub(super) generation: u64,
    pub(super) revision: u64,
    pub(super) ranked: Option<Arc<Ranked>>,
    pub(super) last_ranked: Option<Instant>,
    /// Last change or request, for eviction.
    pub(super) touched: Instant,
    pub(super) notices: broadcast::Sender<Arc<Notice>>,
}

/// Series pulled from Prometheus for one incident.
#[derive(Default)]
pub(super) struct Pulled {
    pub(super) series: Vec<Series>,
    /// When the last fetch finished (successfully or not).
    pub(super) fetched_at: Option<Instant>,
    /// The services and window it was asked for.
    pub(super) services: Vec<String>,
    pub(super) window: (i64, i64),
    pub(super) in_flight: bool,
}

/// Change events, sorted by time, complete from `horizon` (epoch ms) on.
pub(super) struct ChangeLog {
    pub(super) entries: Vec<ChangeRecord>,
    pub(super) ids: HashSet<i64>,
    pub(super) horizon: i64,
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
    pub(super) fn insert(&mut self, record: ChangeRecord) -> bool {
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
    pub(super) fn window(&self, from: i64, to: i64) -> Vec<ChangeRecord> {
        let a = self.entries.partition_point(|e| e.at < from);
        let b = self.entries.partition_point(|e| e.at <= to);
        self.entries
            .get(a..b)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Forgets events before `horizon`.
    pub(super) fn prune(&mut self, horizon: i64) {
        let cut = self.entries.partition_point(|e| e.at < horizon);
        for gone in self.entries.drain(..cut) {
            self.ids.remove(&gone.id);
        }
        self.horizon = self.horizon.max(horizon);
    }
}

/// An incident's material as loaded from the store.
pub(super) struct Material {
    pub(super) snapshot: IncidentSnapshot,
    pub(super) alerts: AlertDigest,
    pub(super) posted: Posted,
}

impl Held {
    pub(super) fn new(snapshot: IncidentSnapshot) -> Held {
        Held {
            snapshot,
            alerts: AlertDigest::default(),
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

    pub(super) fn replace_material(&mut self, material: Material) {
        self.snapshot = material.snapshot;
        self.alerts = material.alerts;
        self.posted = material.posted;
        self.posted_points = self.posted.values().map(Samples::len).sum();
    }

    /// Unix seconds of the first alert activity: where the case's windows are anchored.
    pub(super) fn anchor(&self) -> i64 {
        self.snapshot.first_activity.div_euclid(1000)
    }

    /// Whether a change event on `service` at `at` (ms) is evidence about this incident.
    pub(super) fn concerns(&self, service: &str, at: i64) -> bool {
        let relevant = if self.candidates.is_empty() {
            self.snapshot.services.iter().any(|(s, _)| s == service)
        } else {
            self.candidates
                .binary_search_by(|c| c.as_str().cmp(service))
                .is_ok()
        };
        relevant && at >= self.snapshot.first_activity - CHANGES_BEFORE_S * 1000
    }

    pub(super) fn notify(&self, notice: Notice) {
        if self.notices.receiver_count() > 0 {
            let _ = self.notices.send(Arc::new(notice));
        }
    }
}

impl State {
    /// Marks an incident changed: a new generation, queued for ranking.
    pub(super) fn bump(&mut self, id: u64) {
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
    pub(super) fn follow(&self, mut id: u64) -> u64 {
        for _ in 0..self.merged.len() {
            match self.merged.get(&id) {
                Some(&survivor) => id = survivor,
                None => break,
            }
        }
        id
    }
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `id` is not held: merged (into whom), or unknown.
    pub(super) fn gone<T>(&self, state: &State, id: u64) -> Found<T> {
        match state.merged.get(&id) {
            Some(_) => Found::Merged(state.follow(id)),
            None => Found::Unknown,
        }
    }

    /// The current topology version and its graph, shared (never copied) with the jobs.
    pub(super) fn graph(&self) -> (i64, Arc<Topology>) {
        let current = self.topology.current();
        (current.version.id, current.topology.clone())
    }

    /// Makes sure incident `id` is in memory, loading it from the store if needed.
    pub(super) async fn hold(&self, id: u64) -> Result<Found<()>, StoreError> {
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
        match load(&self.store, id, self.max_alert_kinds).await? {
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
    pub(super) async fn load_changes_since(&self, first_activity: i64) {
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
    pub(super) async fn ranked_or_rank(self: &Arc<Self>, id: u64) -> Found<Arc<Ranked>> {
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
        let (version, graph) = self.graph();
        let job = {
            let mut state = self.lock();
            match self.job_for(&mut state, id, version, graph) {
                Some(job) => job,
                None => return self.gone(&state, id),
            }
        };
        let ranker = Arc::clone(&**self.ranker.load());
        let (advice, listed) = (self.advice.clone(), self.listed);
        match tokio::task::spawn_blocking(move || run_job(job, &*ranker, &advice, listed)).await {
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
    pub(super) fn job_for(
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
            alerts: held.alerts.alerts(),
            series: series_of(&held.posted, &held.pulled.series),
            changes: state.changes.window(from, now),
            topology,
            topology_version,
            hops: self.hops,
        })
    }

    /// Publishes a ranking unless one of a newer state was published already.
    pub(super) fn publish(&self, outcome: Outcome) {
        metrics::histogram!(names::RANKING_SECONDS).record(outcome.elapsed.as_secs_f64());
        metrics::counter!(names::RANKINGS_TOTAL).increment(1);
        let mut state = self.lock();
        let Some(held) = state.incidents.get_mut(&outcome.incident) else {
            return;
        };
        let candidates = outcome.candidates.len();
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
            candidates,
            hypotheses: outcome.hypotheses,
        };
        let json = serde_json::to_string(&view).expect("a ranking always serializes");
        let ranked = Arc::new(Ranked {
            incident: outcome.incident,
            revision: held.revision,
            ranked_at,
            alert_count: outcome.alert_count,
            candidates,
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
pub(super) async fn load(
    store: &Store,
    id: u64,
    max_alert_kinds: usize,
) -> Result<Found<Material>, StoreError> {
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
    material(store, snapshot, max_alert_kinds)
        .await
        .map(Found::Held)
}

/// The alerts (by kind) and posted metrics of `snapshot`'s incident, from the store.
pub(super) async fn material(
    store: &Store,
    snapshot: IncidentSnapshot,
    max_alert_kinds: usize,
) -> Result<Material, StoreError> {
    let id = to_i64(snapshot.id);
    let mut alerts = AlertDigest::default();
    let limit = i64::try_from(max_alert_kinds).unwrap_or(i64::MAX);
    for kind in store.incident_alert_kinds(id, limit).await? {
        alerts.add_entry(stored_kind(kind), max_alert_kinds);
    }
    let mut posted = Posted::new();
    add_stored_metrics(&mut posted, store.incident_metrics(id).await?);
    Ok(Material {
        snapshot,
        alerts,
        posted,
    })
}

/// Counts a committed occurrence in its incident's digest.
pub(super) fn count_committed(
    digest: &mut AlertDigest,
    alert: &CommittedAlert,
    max_alert_kinds: usize,
) -> Added {
    let kind = Kind {
        service: alert.service.as_deref(),
        name: &alert.name,
        signal: alert.signal,
        severity: alert.severity.as_deref().unwrap_or_default(),
    };
    digest.add(
        kind,
        alert.key.starts_at.div_euclid(1000),
        max_alert_kinds,
        || {
            committed_kind(
                alert.service.clone(),
                &alert.name,
                alert.signal,
                alert.severity.as_deref(),
                alert.key.starts_at,
            )
        },
    )
}

pub(super) fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}
