//! The ranking worker: one async task applies what the ingest writer committed as it comes,
//! while a ranking loop on the blocking pool ranks queued incidents one at a time, back to back
//! for as long as any is queued, so that the next ranking of an incident covers everything that
//! came in during the previous one. Consecutive rankings never wait for the async scheduler;
//! the async task only starts the loop again once it has run dry.
//!
//! Nothing here sleeps or polls: the task waits for an update, a wake-up from a handler, the
//! end of the ranking loop, or (with `ranking.min_interval_ms`) the moment the next incident is
//! due.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rootcause_correlation::{IncidentSnapshot, IncidentStatus};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinHandle;

use super::digest::Added;
use super::job::run_job;
use super::state::{Held, Inner, count_committed, load, material};
use super::{CHANGES_BEFORE_S, Committed, Found, Job, Notice, Update};
use crate::telemetry::names;

/// How often held incidents are looked after: stale Prometheus windows pulled again, old
/// change events and idle resolved incidents dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(15);

/// What to do next.
enum Next {
    /// Rank this.
    Job(Box<Job>),
    /// Nothing is due before this instant (`ranking.min_interval_ms`).
    Wait(Instant),
    /// Nothing is queued.
    Idle,
}

/// The worker loop; ends when the service shuts down.
pub(super) async fn run(inner: Arc<Inner>, mut updates: mpsc::UnboundedReceiver<Update>) {
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    // The ranking loop, while it runs; it answers when the next queued incident is due.
    let mut ranking: Option<JoinHandle<Option<Instant>>> = None;
    let mut wait: Option<Instant> = None;
    loop {
        if inner.shutdown.is_cancelled() {
            break;
        }
        // Apply everything already waiting before ranking starts: a ranking then covers as many
        // changes as there are.
        while open {
            match updates.try_recv() {
                Ok(update) => {
                    inner.apply(update).await;
                    wait = None;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if ranking.is_none() && inner.has_queued() && wait.is_none_or(|w| w <= Instant::now()) {
            let inner = inner.clone();
            ranking = Some(tokio::task::spawn_blocking(move || inner.rank_queued()));
            wait = None;
        }
        tokio::select! {
            done = async { ranking.as_mut().expect("guarded").await }, if ranking.is_some() => {
                ranking = None;
                match done {
                    Ok(next) => wait = next,
                    Err(error) => tracing::error!(%error, "the ranking loop failed"),
                }
            }
            // Something changed: what is due is looked at again (another incident may be due
            // before the one waited for).
            update = updates.recv(), if open => {
                match update {
                    Some(update) => inner.apply(update).await,
                    None => open = false,
                }
                wait = None;
            }
            () = inner.wake.notified() => wait = None,
            () = async {
                match wait {
                    Some(until) => tokio::time::sleep_until(until.into()).await,
                    None => std::future::pending().await,
                }
            }, if ranking.is_none() => wait = None,
            _ = housekeeping.tick() => inner.housekeeping(),
            () = inner.shutdown.cancelled() => break,
        }
    }
    if let Some(ranking) = ranking {
        // A ranking in progress finishes its current incident and sees the shutdown.
        let _ = ranking.await;
    }
    tracing::debug!("ranking worker stopped");
}

impl Inner {
    /// Whether any incident waits to be ranked.
    fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Ranks queued incidents one after the other until none is due (on the blocking pool);
    /// returns when the next one is due under `ranking.min_interval_ms`, if any waits.
    fn rank_queued(self: Arc<Self>) -> Option<Instant> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            match self.next() {
                Next::Job(job) => {
                    let outcome = run_job(*job, &***self.ranker.load(), &self.advice, self.listed);
                    let id = outcome.incident;
                    self.publish(outcome);
                    self.maybe_pull(id);
                }
                Next::Wait(until) => return Some(until),
                Next::Idle => return None,
            }
        }
    }

    /// The next incident due for ranking, or how long to wait for one.
    fn next(self: &Arc<Self>) -> Next {
        let (version, graph) = self.graph();
        let now = Instant::now();
        let mut state = self.lock();
        let mut due: Option<Instant> = None;
        for _ in 0..state.queue.len() {
            let Some(id) = state.queue.pop_front() else {
                break;
            };
            let Some(held) = state.incidents.get(&id) else {
                state.queued.remove(&id);
                continue;
            };
            if let Some(last) = held.last_ranked
                && !self.min_interval.is_zero()
                && last + self.min_interval > now
            {
                let at = last + self.min_interval;
                due = Some(due.map_or(at, |d| d.min(at)));
                state.queue.push_back(id);
                continue;
            }
            state.queued.remove(&id);
            metrics::gauge!(names::RANKING_QUEUE_DEPTH).set(state.queue.len() as f64);
            let job = self.job_for(&mut state, id, version, graph.clone());
            drop(state);
            self.maybe_pull(id);
            return match job {
                Some(job) => Next::Job(Box::new(job)),
                None => Next::Idle,
            };
        }
        due.map_or(Next::Idle, Next::Wait)
    }

    /// Applies one update from the ingest writer.
    async fn apply(self: &Arc<Self>, update: Update) {
        match update {
            Update::Committed(committed) => self.apply_committed(committed).await,
            Update::Resync(incidents) => self.resync(incidents).await,
        }
    }

    async fn apply_committed(self: &Arc<Self>, committed: Committed) {
        let reload = self.to_reload(&committed);
        let mut loaded = Vec::new();
        for id in reload {
            match load(&self.store, id, self.max_alert_kinds).await {
                Ok(Found::Held(material)) => loaded.push(material),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, incident = id, "cannot load an incident for ranking")
                }
            }
        }
        // An incident whose alerts started long ago (a replay, a late sender) needs older
        // change events than the log holds.
        let first = loaded
            .iter()
            .map(|m| &m.snapshot)
            .chain(&committed.incidents)
            .map(|s| s.first_activity)
            .min();
        if let Some(first) = first {
            self.load_changes_since(first).await;
        }
        let mut state = self.lock();
        // Read back after this commit: their alerts in the store already count its rows and
        // the alerts a merge moved into them, so neither is counted again below.
        let reloaded: HashSet<u64> = loaded.iter().map(|m| m.snapshot.id).collect();
        for material in loaded {
            let id = material.snapshot.id;
            state
                .incidents
                .entry(id)
                .or_insert_with(|| Held::new(material.snapshot.clone()))
                .replace_material(material);
            state.bump(id);
        }
        for snapshot in committed.incidents {
            let id = snapshot.id;
            let held = state
                .incidents
                .entry(id)
                .or_insert_with(|| Held::new(snapshot.clone()));
            if held.snapshot != snapshot || held.generation == 0 {
                held.snapshot = snapshot.clone();
                held.notify(Notice::Incident(Box::new(snapshot)));
                state.bump(id);
            }
        }
        // Only new occurrences count: a later delivery of one (its refresh, its end) changes
        // nothing a ranker reads of alerts, and the incident's snapshot carries its counts.
        for alert in committed
            .alerts
            .iter()
            .filter(|a| a.opened && !reloaded.contains(&a.incident))
        {
            let Some(held) = state.incidents.get_mut(&alert.incident) else {
                continue;
            };
            // Past the cap on kinds, an incident's new kinds are not held (the store keeps
            // every occurrence): the first received stay, as a restart would load them.
            match count_committed(&mut held.alerts, alert, self.max_alert_kinds) {
                Added::NotHeld => metrics::counter!(names::RANKING_ALERTS_NOT_HELD).increment(1),
                Added::Counted | Added::NewKind => state.bump(alert.incident),
            }
        }
        for &(absorbed, survivor) in &committed.merges {
            let survivor = state.follow(survivor);
            state.merged.insert(absorbed, survivor);
            let Some(gone) = state.incidents.remove(&absorbed) else {
                continue;
            };
            gone.notify(Notice::End { survivor });
            if let Some(into) = state.incidents.get_mut(&survivor) {
                if !reloaded.contains(&survivor) {
                    into.alerts.absorb(gone.alerts, self.max_alert_kinds);
                }
                for (key, samples) in gone.posted {
                    into.posted.entry(key).or_default().merge(&samples);
                }
                into.posted_points = into.posted.values().map(super::Samples::len).sum();
                state.bump(survivor);
            }
        }
        // A merged snapshot without its merge (never expected): still end its subscribers.
        let stray = state
            .incidents
            .iter()
            .filter(|(_, held)| held.snapshot.status == IncidentStatus::Merged)
            .map(|(&id, held)| (id, held.snapshot.merged_into.unwrap_or(id)))
            .collect::<Vec<_>>();
        for (id, survivor) in stray {
            if let Some(gone) = state.incidents.remove(&id) {
                state.merged.insert(id, survivor);
                gone.notify(Notice::End { survivor });
            }
        }
    }

    /// Incidents a commit refers to that are not in memory and not new: their earlier alerts
    /// are only in the store (dropped from memory while resolved, then reopened), and so are
    /// those of an absorbed incident that was not held when a merge moved them.
    fn to_reload(&self, committed: &Committed) -> Vec<u64> {
        let state = self.lock();
        let mut rows: HashMap<u64, u64> = HashMap::new();
        for alert in &committed.alerts {
            *rows.entry(alert.incident).or_default() += 1;
        }
        let new: HashSet<u64> = committed
            .incidents
            .iter()
            .filter(|s| s.alert_count <= rows.get(&s.id).copied().unwrap_or(0))
            .map(|s| s.id)
            .collect();
        let mut reload: HashSet<u64> = committed
            .incidents
            .iter()
            .filter(|s| s.status != IncidentStatus::Merged)
            .map(|s| s.id)
            .chain(committed.alerts.iter().map(|a| a.incident))
            .filter(|id| !state.incidents.contains_key(id) && !new.contains(id))
            .collect();
        for &(absorbed, survivor) in &committed.merges {
            if !state.incidents.contains_key(&absorbed) && !new.contains(&absorbed) {
                reload.insert(state.follow(survivor));
            }
        }
        // An absorbed incident is read back as merged; only survivors are worth loading.
        reload.retain(|id| !committed.merges.iter().any(|(absorbed, _)| absorbed == id));
        let mut reload = reload.into_iter().collect::<Vec<_>>();
        reload.sort_unstable();
        reload
    }

    /// Reloads the incidents the engine holds from the store and queues the open ones.
    async fn resync(self: &Arc<Self>, incidents: Vec<IncidentSnapshot>) {
        let first = incidents
            .iter()
            .filter(|s| s.status == IncidentStatus::Open)
            .map(|s| s.first_activity)
            .min()
            .unwrap_or_else(|| self.clock.now_millis());
        self.load_changes_since(first).await;
        let mut loaded = Vec::with_capacity(incidents.len());
        for snapshot in incidents {
            let id = snapshot.id;
            match material(&self.store, snapshot, self.max_alert_kinds).await {
                Ok(material) => loaded.push(material),
                Err(error) => {
                    tracing::error!(%error, incident = id, "cannot load an incident for ranking")
                }
            }
        }
        let mut state = self.lock();
        let open = loaded
            .iter()
            .filter(|m| m.snapshot.status == IncidentStatus::Open)
            .count();
        for material in loaded {
            let id = material.snapshot.id;
            let is_open = material.snapshot.status == IncidentStatus::Open;
            state
                .incidents
                .entry(id)
                .or_insert_with(|| Held::new(material.snapshot.clone()))
                .replace_material(material);
            if is_open {
                state.bump(id);
            }
        }
        tracing::info!(open, "incidents restored for ranking");
    }

    /// Pulls incident `id`'s metric window from Prometheus in the background when the copy
    /// held is stale (older than a step while the window still grows) or misses candidates.
    /// The ranking in progress never waits for it; a pull that brings data queues another.
    pub(super) fn maybe_pull(self: &Arc<Self>, id: u64) {
        let Some(source) = self.prometheus.clone() else {
            return;
        };
        let config = source.config();
        let mut state = self.lock();
        let Some(held) = state.incidents.get_mut(&id) else {
            return;
        };
        if held.pulled.in_flight || held.snapshot.status == IncidentStatus::Merged {
            return;
        }
        let services = if held.candidates.is_empty() {
            held.snapshot
                .services
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<Vec<_>>()
        } else {
            held.candidates.clone()
        };
        if services.is_empty() {
            return;
        }
        let now = self.clock.now().timestamp();
        let anchor = held.anchor();
        let window = config.window(anchor, now);
        let covered = services
            .iter()
            .all(|s| held.pulled.services.binary_search(s).is_ok());
        let complete = held.pulled.window.1 >= config.window(anchor, i64::MAX).1;
        let fresh = held
            .pulled
            .fetched_at
            .is_some_and(|at| complete || at.elapsed() < Duration::from_secs(config.step_s.max(1)));
        if covered && fresh && held.pulled.window.0 == window.0 {
            return;
        }
        held.pulled.in_flight = true;
        let inner = self.clone();
        self.spawner.spawn(async move {
            tokio::select! {
                // Not taken: the next process pulls again when it ranks the incident.
                () = inner.shutdown.cancelled() => {}
                fetched = source.fetch(&services, window.0, window.1) => {
                    inner.pulled(id, services, window, fetched);
                }
            }
        });
    }

    /// Takes the result of a Prometheus pull; a failure keeps what was pulled before. Candidates
    /// found by a ranking that finished meanwhile are pulled next.
    fn pulled(
        self: &Arc<Self>,
        id: u64,
        mut services: Vec<String>,
        window: (i64, i64),
        fetched: Result<crate::prometheus::Fetched, crate::prometheus::PrometheusError>,
    ) {
        let mut state = self.lock();
        let Some(held) = state.incidents.get_mut(&id) else {
            return;
        };
        held.pulled.in_flight = false;
        // A failed pull counts as one too: it is tried again a step later, not at every ranking.
        held.pulled.fetched_at = Some(Instant::now());
        services.sort_unstable();
        held.pulled.services = services;
        held.pulled.window = window;
        match fetched {
            Ok(fetched) => {
                if held.pulled.series != fetched.series {
                    held.pulled.series = fetched.series;
                    state.bump(id);
                    self.wake.notify_one();
                }
            }
            Err(error) => {
                tracing::warn!(%error, incident = id, "no Prometheus metrics; ranking without them");
            }
        }
        drop(state);
        self.maybe_pull(id);
    }

    /// Periodic upkeep: stale pulls, old change events, idle resolved incidents.
    pub(super) fn housekeeping(self: &Arc<Self>) {
        let open = {
            let mut state = self.lock();
            let now = self.clock.now_millis();
            let horizon = state
                .incidents
                .values()
                .map(|h| h.snapshot.first_activity)
                .min()
                .unwrap_or(now)
                .min(now)
                - CHANGES_BEFORE_S * 1000;
            state.changes.prune(horizon);
            let evict = state
                .incidents
                .iter()
                .filter(|(id, held)| {
                    held.snapshot.status != IncidentStatus::Open
                        && held.touched.elapsed() > self.hold_resolved
                        && held.notices.receiver_count() == 0
                        && !state.queued.contains(id)
                        && !held.pulled.in_flight
                })
                .map(|(&id, _)| id)
                .collect::<Vec<_>>();
            for id in evict {
                state.incidents.remove(&id);
            }
            metrics::gauge!(names::RANKING_INCIDENTS_HELD).set(state.incidents.len() as f64);
            state
                .incidents
                .iter()
                .filter(|(_, held)| held.snapshot.status == IncidentStatus::Open)
                .map(|(&id, _)| id)
                .collect::<Vec<_>>()
        };
        for id in open {
            self.maybe_pull(id);
        }
    }
}
