//! Root-cause ranking of incidents while they unfold.
//!
//! The service keeps in memory everything a ranker needs of each incident it holds (open ones,
//! recently resolved ones, for `ranking.hold_resolved_secs`, and any incident someone asked
//! about in that time): the engine's snapshot, its
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
mod digest;
mod job;
mod state;
mod view;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use rootcause_correlation::{AlertKey, IncidentSnapshot};
use rootcause_models::actions::Suggestion;
use rootcause_models::case::Case;
use rootcause_models::diagnosis::Diagnosis;
use rootcause_models::ranker::Ranker;
use rootcause_models::rankers;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub use case::{CHANGES_BEFORE_S, ChangeRecord, Job, Samples};
pub use view::{HypothesesView, HypothesisView};

use crate::advice::Advice;
use crate::clock::Clock;
use crate::config::PrometheusConfig;
use crate::config::RankingConfig;
use crate::live_topology::LiveTopology;
use crate::prometheus::PrometheusSource;
use crate::store::{MetricWrite, Store, StoreError};
use crate::workers::Spawner;

use job::{Outcome, run_job};
use state::{Inner, State, to_i64};

/// Most change events loaded from the store at once.
const MAX_LOADED_CHANGES: i64 = 100_000;

/// Rankings the notifier may fall behind by before it loses the oldest.
const PUBLISHED_CAPACITY: usize = 1024;

/// Notices a subscriber may fall behind by; one that falls further is sent the latest state
/// instead of what it missed.
const NOTICE_CAPACITY: usize = 64;

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
}

impl Committed {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.incidents.is_empty() && self.merges.is_empty()
    }
}

/// One alert row of a commit.
#[derive(Debug, Clone)]
pub struct CommittedAlert {
    /// Its incident.
    pub incident: u64,
    /// The occurrence.
    pub key: AlertKey,
    /// Whether the commit opened it (a new occurrence in the incident): only those are
    /// counted, a later delivery of the same occurrence (its refresh, its end) is not.
    pub opened: bool,
    /// Mapped service.
    pub service: Option<String>,
    /// Signal kind, as the correlation engine classified it.
    pub signal: &'static str,
    /// `severity` label.
    pub severity: Option<String>,
    /// `alertname`.
    pub name: String,
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
    /// Services ranked: the incident's candidates, of which the diagnosis lists the
    /// `ranking.hypotheses_listed` most likely.
    pub candidates: usize,
    /// The ranker's answer, its hypotheses cut to `ranking.hypotheses_listed`.
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

impl<T> Found<T> {
    /// The value held, or why incident `id` holds none.
    pub fn held(self, id: u64) -> Result<T, Gone> {
        match self {
            Found::Held(value) => Ok(value),
            Found::Merged(survivor) => Err(Gone::Merged {
                incident: id,
                survivor,
            }),
            Found::Unknown => Err(Gone::Unknown(id)),
        }
    }
}

/// Why an incident named in a request holds nothing to act on: the one way the errors of
/// posting metrics, deciding and resolving say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Gone {
    /// No such incident.
    #[error("no incident {0}")]
    Unknown(u64),
    /// The incident was merged into another.
    #[error("incident {incident} was merged into incident {survivor}")]
    Merged {
        /// The incident named.
        incident: u64,
        /// Where its alerts (and everything posted to it) are now.
        survivor: u64,
    },
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
    /// The incident is unknown or merged.
    #[error(transparent)]
    Gone(#[from] Gone),
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
        let (updates, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            ranker: ArcSwap::from_pointee(Arc::from(ranker)),
            advice,
            published: broadcast::channel(PUBLISHED_CAPACITY).0,
            hops: config.hops,
            listed: config.hypotheses_listed.max(1),
            max_alert_kinds: config.max_alert_kinds_per_incident.max(1),
            min_interval: Duration::from_millis(config.min_interval_ms),
            hold_resolved: Duration::from_secs(config.hold_resolved_secs),
            store,
            topology,
            prometheus: PrometheusSource::new(prometheus.clone()),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            updates,
            shutdown: spawner.token(),
            spawner: spawner.clone(),
            clock,
        });
        spawner.spawn(worker::run(inner.clone(), receiver));
        Ok(Ranking { inner })
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
        let (version, graph) = self.inner.graph();
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
        self.inner.hold(id).await?.held(id)?;
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

#[cfg(test)]
mod tests;
