//! The correlation state machine.
//!
//! An alert is one *occurrence* of a fingerprint: it starts firing at `starts_at` and ends once.
//! A firing alert on service S joins an open incident that has a service within
//! [`Settings::max_hops`] of S in the undirected dependency graph (the services in between need
//! not alert) and whose activity is within [`Settings::window_secs`] of the alert's start. An
//! alert that several incidents would take merges them into the oldest; the merge is in both
//! timelines. Otherwise the alert opens a new incident. Unmapped alerts correlate the same way,
//! by shared labels instead of graph distance, into incidents of their own kind.
//!
//! The same fingerprint is the same alert: a repeated delivery updates it (its expiry) or is a
//! duplicate, never a second alert. An incident whose alerts have all ended and that stays quiet
//! for [`Settings::resolve_after_secs`] resolves; an alert of it that fires again within
//! [`Settings::reopen_within_secs`] of the resolution reopens it.
//!
//! Time is always a parameter (`now`, epoch milliseconds) and every collection that decides an
//! outcome is ordered, so the same events in the same order give the same incidents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rootcause_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::alert::{AlertStatus, Fingerprint};

/// Epoch milliseconds.
pub type Millis = i64;

/// Thresholds of the engine; every one is configuration (`[correlation]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Largest hop distance (ignoring call direction) between an alerting service and a
    /// service of an incident for the alert to join it. Default 2.
    pub max_hops: usize,
    /// How far (seconds) an alert's start may lie outside an incident's activity for the alert
    /// to join it. Default 600.
    pub window_secs: u64,
    /// How long (seconds) an incident whose alerts have all ended must stay quiet before it
    /// resolves. Default 300.
    pub resolve_after_secs: u64,
    /// How long (seconds) after resolving an incident reopens when one of its alerts fires
    /// again; also how long ended alerts are remembered to recognise late, stale deliveries.
    /// Default 1800.
    pub reopen_within_secs: u64,
    /// Label keys whose shared values group unmapped alerts; an unmapped alert with none of them
    /// is grouped by `alertname`.
    pub unmapped_group_labels: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_hops: 2,
            window_secs: 600,
            resolve_after_secs: 300,
            reopen_within_secs: 1800,
            unmapped_group_labels: [
                "service",
                "service_name",
                "app",
                "job",
                "namespace",
                "instance",
                "host",
                "node",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Settings {
    fn window(&self) -> Millis {
        secs_to_millis(self.window_secs)
    }
    fn resolve_after(&self) -> Millis {
        secs_to_millis(self.resolve_after_secs)
    }
    fn reopen_within(&self) -> Millis {
        secs_to_millis(self.reopen_within_secs)
    }

    /// What an unmapped alert with `labels` is grouped by.
    pub fn unmapped_subject(&self, labels: &crate::Labels) -> Subject {
        let mut pairs = self
            .unmapped_group_labels
            .iter()
            .filter_map(|key| labels.get(key).map(|value| (key.clone(), value.clone())))
            .collect::<Vec<_>>();
        if pairs.is_empty() {
            let name = labels.get("alertname").cloned().unwrap_or_default();
            pairs.push(("alertname".to_owned(), name));
        }
        Subject::Unmapped(pairs)
    }
}

fn secs_to_millis(secs: u64) -> Millis {
    Millis::try_from(secs.saturating_mul(1000)).unwrap_or(Millis::MAX / 4)
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A service of the topology.
    Service(String),
    /// No service: the (key, value) label pairs it is grouped by.
    Unmapped(Vec<(String, String)>),
}

/// One delivery of an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// When it started; `None` when the sender did not say (a firing alert then continues the
    /// occurrence already firing, or starts now).
    pub starts_at: Option<Millis>,
    /// For a resolved alert, when it ended (`None`: now). For a firing one, when it expires
    /// unless delivered again (Alertmanager's API semantics); `None`: never.
    pub ends_at: Option<Millis>,
    /// What it is about.
    pub subject: Subject,
}

/// One occurrence of an alert: a fingerprint and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AlertKey {
    /// The alert's identity.
    pub fingerprint: Fingerprint,
    /// When this occurrence started.
    pub starts_at: Millis,
}

/// What one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new occurrence, now firing in an incident.
    Opened,
    /// A repeat of a firing occurrence that moved its expiry.
    Refreshed,
    /// A repeat that changes nothing.
    Duplicate,
    /// A firing occurrence ended.
    Resolved,
    /// Older than what is known (a late firing delivery of an ended occurrence, or the end of
    /// an occurrence that a newer one replaced): ignored.
    Stale,
    /// The end of an occurrence the engine does not hold (ended long ago, or never seen
    /// firing): kept as an ended alert outside any incident.
    Unassigned,
}

/// The result of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The occurrence the delivery belongs to (its start may differ from the delivery's own
    /// `starts_at` when it continues an occurrence already firing).
    pub key: AlertKey,
    /// What happened.
    pub outcome: Outcome,
    /// The incident the occurrence belongs to, if any.
    pub incident: Option<u64>,
    /// When the occurrence ended, for [`Outcome::Resolved`] and [`Outcome::Unassigned`]; its
    /// expiry for [`Outcome::Opened`] and [`Outcome::Refreshed`].
    pub ends_at: Option<Millis>,
}

/// What an incident correlates by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    /// Alerts mapped to services, joined by graph distance.
    Topology,
    /// Unmapped alerts, joined by shared labels.
    Unmapped,
}

impl IncidentKind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Topology => "topology",
            IncidentKind::Unmapped => "unmapped",
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Some alert fires, or the last ended less than `resolve_after` ago.
    Open,
    /// All alerts ended and it stayed quiet; it can reopen.
    Resolved,
    /// Absorbed into another incident (`merged_into`).
    Merged,
}

impl IncidentStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Merged => "merged",
        }
    }
}

/// Something that happened to an incident, for its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// The incident opened with this alert.
    Opened {
        /// The alert that opened it.
        alert: Fingerprint,
        /// Its service, if mapped.
        service: Option<String>,
    },
    /// A service alerted for the first time in this incident.
    ServiceJoined {
        /// The service.
        service: String,
        /// The alert that brought it.
        alert: Fingerprint,
        /// The nearest service already in the incident, and its hop distance.
        via: Option<String>,
        /// Hops between `service` and `via`.
        hops: Option<usize>,
    },
    /// Another incident was absorbed into this one, because `alert` connected them.
    Merged {
        /// The absorbed incident.
        absorbed: u64,
        /// Its services.
        services: Vec<String>,
        /// The alert that connected them.
        alert: Fingerprint,
    },
    /// This incident was absorbed into `survivor`.
    MergedInto {
        /// The incident that holds this one's alerts now.
        survivor: u64,
    },
    /// The last firing alert ended; the incident resolves if it stays quiet.
    AllAlertsEnded,
    /// An alert fired again while the incident was quiet.
    Refired {
        /// The alert.
        alert: Fingerprint,
    },
    /// Quiet for `resolve_after`: resolved.
    Resolved,
    /// One of its alerts fired again after it resolved.
    Reopened {
        /// The alert.
        alert: Fingerprint,
    },
}

/// A timeline event of one incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The incident.
    pub incident: u64,
    /// When the engine saw it happen (the `now` it was given).
    pub at: Millis,
    /// What happened.
    pub event: TimelineEvent,
}

/// An incident as the engine holds it, for storage and display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentSnapshot {
    /// Its id (increasing in order of opening).
    pub id: u64,
    /// Topology or unmapped.
    pub kind: IncidentKind,
    /// Open, resolved or merged.
    pub status: IncidentStatus,
    /// When the engine opened it (`now`).
    pub opened_at: Millis,
    /// Earliest alert activity (start).
    pub first_activity: Millis,
    /// Latest alert activity (start or end).
    pub last_activity: Millis,
    /// Since when no alert fires, if none does.
    pub quiet_since: Option<Millis>,
    /// When it resolved.
    pub resolved_at: Option<Millis>,
    /// The incident that absorbed it.
    pub merged_into: Option<u64>,
    /// Its services and when each first alerted, in name order.
    pub services: Vec<(String, Millis)>,
    /// For unmapped incidents: the label pairs its alerts are grouped by.
    pub groups: Vec<(String, String)>,
    /// Alert occurrences ever in it.
    pub alert_count: u64,
    /// Those firing now.
    pub firing_count: u64,
    /// The topology version it was last correlated under.
    pub topology_version: Option<i64>,
}

/// A firing alert of a restored incident (see [`Engine::restore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredAlert {
    /// The occurrence.
    pub key: AlertKey,
    /// Its expiry, if any.
    pub expires_at: Option<Millis>,
    /// Its incident.
    pub incident: u64,
    /// Firing, or ended (remembered to recognise stale deliveries and to reopen).
    pub status: AlertStatus,
    /// For an ended alert, when its end was noted (the stored row's last update).
    pub noted_at: Option<Millis>,
}

/// What changed since the last [`Engine::take_changes`]: what a store must write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Every incident that changed, as it is now.
    pub incidents: Vec<IncidentSnapshot>,
    /// New timeline entries, in order.
    pub timeline: Vec<TimelineEntry>,
    /// (absorbed, survivor): the absorbed incident's alerts now belong to the survivor.
    pub merges: Vec<(u64, u64)>,
    /// Firing alerts that expired (their sender stopped repeating them), and when.
    pub expired: Vec<(AlertKey, Millis)>,
}

impl Change {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
            && self.timeline.is_empty()
            && self.merges.is_empty()
            && self.expired.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Incident {
    kind: IncidentKind,
    status: IncidentStatus,
    opened_at: Millis,
    first_activity: Millis,
    last_activity: Millis,
    quiet_since: Option<Millis>,
    /// Whether it had firing alerts when the engine last settled (see [`Engine::settle`]):
    /// an incident with firing alerts is active now, however long ago its last alert started.
    live: bool,
    resolved_at: Option<Millis>,
    merged_into: Option<u64>,
    services: BTreeMap<String, Millis>,
    groups: BTreeSet<(String, String)>,
    firing: BTreeSet<Fingerprint>,
    alert_count: u64,
    topology_version: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Firing {
    starts_at: Millis,
    expires_at: Option<Millis>,
    incident: u64,
}

#[derive(Debug, Clone, Copy)]
struct Ended {
    starts_at: Millis,
    /// When the engine learnt of the end (its `now`): late deliveries are judged against it.
    noted_at: Millis,
    incident: u64,
}

/// The dependency graph at one version, as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct Graph<'a> {
    /// The version id (neighbourhoods are cached per version).
    pub version: Option<i64>,
    /// The graph.
    pub topology: &'a Topology,
}

type Neighbours = Arc<[(String, usize)]>;

/// The correlation engine. See the module documentation for the rules.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    /// Open incidents, resolved ones that can still reopen, and merged ones until the next
    /// [`Engine::take_changes`].
    incidents: BTreeMap<u64, Incident>,
    firing: HashMap<Fingerprint, Firing>,
    /// Expiry order of firing alerts that have one.
    expiries: BTreeSet<(Millis, Fingerprint)>,
    /// The last ended occurrence of each recently ended fingerprint.
    ended: HashMap<Fingerprint, Ended>,
    /// (noted, fingerprint, start) of each entry of `ended`, to forget old entries in order.
    ended_order: BTreeSet<(Millis, Fingerprint, Millis)>,
    /// Entries of `ended` past their time kept because their resolved incident can still
    /// reopen; forgotten with the incident.
    ended_held: HashMap<u64, Vec<(Fingerprint, Millis)>>,
    /// Open topology incidents by service.
    by_service: HashMap<String, BTreeSet<u64>>,
    /// Open unmapped incidents by label pair.
    by_group: HashMap<(String, String), BTreeSet<u64>>,
    /// Absorbed incident → survivor, to follow old references.
    merged: HashMap<u64, u64>,
    next_id: u64,
    neighbourhoods: HashMap<String, Neighbours>,
    neighbourhoods_version: Option<Option<i64>>,
    dirty: BTreeSet<u64>,
    timeline: Vec<TimelineEntry>,
    merges: Vec<(u64, u64)>,
    expired: Vec<(AlertKey, Millis)>,
    /// Alerts ended since the last settle: (incident, when).
    ended_unsettled: Vec<(u64, Millis)>,
}

impl Engine {
    /// An engine with no incidents; ids start at `next_id`.
    pub fn new(settings: Settings, next_id: u64) -> Engine {
        Engine {
            settings,
            incidents: BTreeMap::new(),
            firing: HashMap::new(),
            expiries: BTreeSet::new(),
            ended: HashMap::new(),
            ended_order: BTreeSet::new(),
            ended_held: HashMap::new(),
            by_service: HashMap::new(),
            by_group: HashMap::new(),
            merged: HashMap::new(),
            next_id: next_id.max(1),
            neighbourhoods: HashMap::new(),
            neighbourhoods_version: None,
            dirty: BTreeSet::new(),
            timeline: Vec::new(),
            merges: Vec::new(),
            expired: Vec::new(),
            ended_unsettled: Vec::new(),
        }
    }

    /// Rebuilds an engine from stored state: incidents that are open or resolved recently enough
    /// to reopen (others are ignored), and their alerts. Ids continue after `next_id - 1`.
    pub fn restore(
        settings: Settings,
        incidents: Vec<IncidentSnapshot>,
        alerts: Vec<RestoredAlert>,
        next_id: u64,
    ) -> Engine {
        let mut engine = Engine::new(settings, next_id);
        for snapshot in incidents {
            if snapshot.status == IncidentStatus::Merged {
                continue;
            }
            engine.next_id = engine.next_id.max(snapshot.id + 1);
            let incident = Incident {
                kind: snapshot.kind,
                status: snapshot.status,
                opened_at: snapshot.opened_at,
                first_activity: snapshot.first_activity,
                last_activity: snapshot.last_activity,
                quiet_since: snapshot.quiet_since,
                live: false,
                resolved_at: snapshot.resolved_at,
                merged_into: None,
                services: snapshot.services.into_iter().collect(),
                groups: snapshot.groups.into_iter().collect(),
                firing: BTreeSet::new(),
                alert_count: snapshot.alert_count,
                topology_version: snapshot.topology_version,
            };
            if incident.status == IncidentStatus::Open {
                engine.index(snapshot.id, &incident);
            }
            engine.incidents.insert(snapshot.id, incident);
        }
        let mut alerts = alerts;
        alerts.sort_by_key(|alert| alert.key);
        for alert in alerts {
            let Some(incident) = engine.incidents.get_mut(&alert.incident) else {
                continue;
            };
            match alert.status {
                AlertStatus::Firing if incident.status == IncidentStatus::Open => {
                    incident.firing.insert(alert.key.fingerprint);
                    incident.quiet_since = None;
                    incident.live = true;
                    engine.firing.insert(
                        alert.key.fingerprint,
                        Firing {
                            starts_at: alert.key.starts_at,
                            expires_at: alert.expires_at,
                            incident: alert.incident,
                        },
                    );
                    if let Some(expiry) = alert.expires_at {
                        engine.expiries.insert((expiry, alert.key.fingerprint));
                    }
                }
                _ => engine.remember_ended(
                    alert.key,
                    alert.incident,
                    alert.noted_at.unwrap_or(alert.key.starts_at),
                ),
            }
        }
        engine
    }

    /// The thresholds in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many incidents are open.
    pub fn open_incidents(&self) -> usize {
        self.incidents
            .values()
            .filter(|i| i.status == IncidentStatus::Open)
            .count()
    }

    /// How many alerts fire.
    pub fn firing_alerts(&self) -> usize {
        self.firing.len()
    }

    /// The incident `id` as it is now, if the engine holds it.
    pub fn incident(&self, id: u64) -> Option<IncidentSnapshot> {
        self.incidents.get(&id).map(|i| snapshot(id, i))
    }

    /// Every incident the engine holds, by id.
    pub fn incidents(&self) -> Vec<IncidentSnapshot> {
        self.incidents
            .iter()
            .map(|(&id, incident)| snapshot(id, incident))
            .collect()
    }

    /// The incident holding firing alert `fingerprint`, if it fires.
    pub fn incident_of(&self, fingerprint: Fingerprint) -> Option<u64> {
        self.firing.get(&fingerprint).map(|f| f.incident)
    }

    /// Applies deliveries received at `now`, in order, after [`Engine::tick`]ing to `now`.
    pub fn observe(
        &mut self,
        graph: Graph<'_>,
        events: &[AlertEvent],
        now: Millis,
    ) -> Vec<Observation> {
        self.use_graph_version(graph.version);
        self.tick(now);
        let observations = events
            .iter()
            .map(|event| match event.status {
                AlertStatus::Firing => self.fire(graph, event, now),
                AlertStatus::Resolved => self.end(event, now),
            })
            .collect();
        self.settle(now);
        observations
    }

    /// Applies what ended alerts do to their incidents' activity, once per `now`: whether an
    /// incident is live and when it last saw activity decide which alerts may join it, and
    /// settling them only between instants is what makes the order of deliveries within one
    /// instant irrelevant to which alerts end up together.
    fn settle(&mut self, now: Millis) {
        for (id, ended) in std::mem::take(&mut self.ended_unsettled) {
            let id = self.follow(id);
            if let Some(incident) = self.incidents.get_mut(&id) {
                incident.last_activity = incident.last_activity.max(ended);
                self.dirty.insert(id);
            }
        }
        for &id in &self.dirty {
            let Some(incident) = self.incidents.get_mut(&id) else {
                continue;
            };
            incident.live = !incident.firing.is_empty();
            if incident.status == IncidentStatus::Open
                && !incident.live
                && incident.quiet_since.is_none()
            {
                incident.quiet_since = Some(now);
                self.timeline.push(TimelineEntry {
                    incident: id,
                    at: now,
                    event: TimelineEvent::AllAlertsEnded,
                });
            }
        }
    }

    /// Advances time to `now`: alerts past their expiry end, quiet incidents resolve, and
    /// incidents too old to reopen are forgotten (they stay in the store).
    pub fn tick(&mut self, now: Millis) {
        while let Some(&(expiry, fingerprint)) = self.expiries.first() {
            if expiry > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(firing) = self.firing.get(&fingerprint).copied() {
                let key = AlertKey {
                    fingerprint,
                    starts_at: firing.starts_at,
                };
                self.expired.push((key, expiry));
                self.finish(fingerprint, firing, expiry, now);
            }
        }
        self.settle(now);
        let resolve_after = self.settings.resolve_after();
        let reopen_within = self.settings.reopen_within();
        let mut forget = Vec::new();
        let mut resolved = Vec::new();
        for (&id, incident) in &mut self.incidents {
            match incident.status {
                IncidentStatus::Open => {
                    if let Some(quiet) = incident.quiet_since
                        && now.saturating_sub(quiet) >= resolve_after
                    {
                        incident.status = IncidentStatus::Resolved;
                        incident.resolved_at = Some(now);
                        resolved.push(id);
                        self.dirty.insert(id);
                        self.timeline.push(TimelineEntry {
                            incident: id,
                            at: now,
                            event: TimelineEvent::Resolved,
                        });
                    }
                }
                IncidentStatus::Resolved => {
                    if incident
                        .resolved_at
                        .is_some_and(|at| now.saturating_sub(at) >= reopen_within)
                    {
                        forget.push(id);
                    }
                }
                IncidentStatus::Merged => {}
            }
        }
        // Resolved incidents take no more alerts by service or label (only by reopening).
        for id in resolved {
            let incident = self.incidents[&id].clone();
            self.unindex(id, &incident);
        }
        for id in forget {
            self.incidents.remove(&id);
            for (fingerprint, starts_at) in self.ended_held.remove(&id).unwrap_or_default() {
                self.forget_ended(fingerprint, starts_at);
            }
        }
        while let Some(&(noted_at, fingerprint, starts_at)) = self.ended_order.first() {
            if now.saturating_sub(noted_at) < reopen_within {
                break;
            }
            self.ended_order.pop_first();
            let Some(ended) = self.ended.get(&fingerprint).copied() else {
                continue;
            };
            if ended.starts_at != starts_at {
                continue;
            }
            let incident = self.follow(ended.incident);
            if self
                .incidents
                .get(&incident)
                .is_some_and(|i| i.status == IncidentStatus::Resolved)
            {
                self.ended_held
                    .entry(incident)
                    .or_default()
                    .push((fingerprint, starts_at));
            } else {
                self.ended.remove(&fingerprint);
            }
        }
    }

    fn forget_ended(&mut self, fingerprint: Fingerprint, starts_at: Millis) {
        if self
            .ended
            .get(&fingerprint)
            .is_some_and(|e| e.starts_at == starts_at)
        {
            self.ended.remove(&fingerprint);
        }
    }

    /// Everything that changed since the last call; merged incidents are forgotten after it.
    pub fn take_changes(&mut self) -> Change {
        let incidents = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|id| self.incidents.get(&id).map(|i| snapshot(id, i)))
            .collect();
        self.incidents
            .retain(|_, incident| incident.status != IncidentStatus::Merged);
        Change {
            incidents,
            timeline: std::mem::take(&mut self.timeline),
            merges: std::mem::take(&mut self.merges),
            expired: std::mem::take(&mut self.expired),
        }
    }

    fn use_graph_version(&mut self, version: Option<i64>) {
        if self.neighbourhoods_version != Some(version) {
            self.neighbourhoods.clear();
            self.neighbourhoods_version = Some(version);
        }
    }

    fn neighbours(&mut self, topology: &Topology, service: &str) -> Neighbours {
        if let Some(found) = self.neighbourhoods.get(service) {
            return found.clone();
        }
        let found: Neighbours = topology
            .neighbourhood(service, self.settings.max_hops)
            .map(|reach| {
                reach
                    .into_iter()
                    .map(|r| (r.service.to_owned(), r.hops))
                    .collect()
            })
            .unwrap_or_else(|_| Arc::from(Vec::new()));
        self.neighbourhoods
            .insert(service.to_owned(), found.clone());
        found
    }

    fn fire(&mut self, graph: Graph<'_>, event: &AlertEvent, now: Millis) -> Observation {
        let fingerprint = event.fingerprint;
        if let Some(firing) = self.firing.get_mut(&fingerprint) {
            let key = AlertKey {
                fingerprint,
                starts_at: firing.starts_at,
            };
            // One source that never expires the alert (a webhook) outweighs one that does.
            let expiry = match (firing.expires_at, event.ends_at) {
                (Some(old), Some(new)) => Some(old.max(new)),
                _ => None,
            };
            let outcome = if expiry == firing.expires_at {
                Outcome::Duplicate
            } else {
                if let Some(old) = firing.expires_at {
                    self.expiries.remove(&(old, fingerprint));
                }
                if let Some(new) = expiry {
                    self.expiries.insert((new, fingerprint));
                }
                firing.expires_at = expiry;
                Outcome::Refreshed
            };
            return Observation {
                key,
                outcome,
                incident: Some(firing.incident),
                ends_at: expiry,
            };
        }
        let starts_at = event.starts_at.unwrap_or(now);
        let key = AlertKey {
            fingerprint,
            starts_at,
        };
        let previous = self.ended.get(&fingerprint).copied();
        if let Some(ended) = previous
            && ended.starts_at >= starts_at
        {
            return Observation {
                key,
                outcome: Outcome::Stale,
                incident: Some(self.follow(ended.incident)),
                ends_at: None,
            };
        }
        let reopen = previous
            .map(|ended| self.follow(ended.incident))
            .filter(|id| {
                self.incidents
                    .get(id)
                    .is_some_and(|i| i.status == IncidentStatus::Resolved)
            });
        let id = match reopen {
            Some(id) => self.reopen(graph, id, event, starts_at, now),
            None => {
                let found = self.candidates(graph, &event.subject, starts_at);
                if found.is_empty() {
                    self.open(graph, event, starts_at, now)
                } else {
                    self.unify(found, fingerprint, now)
                }
            }
        };
        self.add_firing(graph, id, event, starts_at, now);
        Observation {
            key,
            outcome: Outcome::Opened,
            incident: Some(id),
            ends_at: event.ends_at,
        }
    }

    /// Open incidents a firing alert about `subject` starting at `starts_at` would join.
    fn candidates(
        &mut self,
        graph: Graph<'_>,
        subject: &Subject,
        starts_at: Millis,
    ) -> BTreeSet<u64> {
        let window = self.settings.window();
        let mut found = BTreeSet::new();
        match subject {
            Subject::Service(service) => {
                let neighbours = self.neighbours(graph.topology, service);
                let near = std::iter::once(service.as_str())
                    .chain(neighbours.iter().map(|(name, _)| name.as_str()));
                for name in near {
                    if let Some(ids) = self.by_service.get(name) {
                        found.extend(ids.iter().copied());
                    }
                }
            }
            Subject::Unmapped(pairs) => {
                for pair in pairs {
                    if let Some(ids) = self.by_group.get(pair) {
                        found.extend(ids.iter().copied());
                    }
                }
            }
        }
        found.retain(|id| {
            self.incidents.get(id).is_some_and(|i| {
                i.status == IncidentStatus::Open
                    && starts_at >= i.first_activity.saturating_sub(window)
                    && (i.live || starts_at <= i.last_activity.saturating_add(window))
            })
        });
        found
    }

    /// A new incident for a firing alert that joins none.
    fn open(
        &mut self,
        graph: Graph<'_>,
        event: &AlertEvent,
        starts_at: Millis,
        now: Millis,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let (kind, service) = match &event.subject {
            Subject::Service(service) => (IncidentKind::Topology, Some(service.clone())),
            Subject::Unmapped(_) => (IncidentKind::Unmapped, None),
        };
        self.incidents.insert(
            id,
            Incident {
                kind,
                status: IncidentStatus::Open,
                opened_at: now,
                first_activity: starts_at,
                last_activity: starts_at,
                quiet_since: None,
                live: true,
                resolved_at: None,
                merged_into: None,
                services: BTreeMap::new(),
                groups: BTreeSet::new(),
                firing: BTreeSet::new(),
                alert_count: 0,
                topology_version: graph.version,
            },
        );
        self.timeline.push(TimelineEntry {
            incident: id,
            at: now,
            event: TimelineEvent::Opened {
                alert: event.fingerprint,
                service,
            },
        });
        id
    }

    /// Merges `found` (not empty) into the oldest of them, which it returns.
    fn unify(&mut self, found: BTreeSet<u64>, alert: Fingerprint, now: Millis) -> u64 {
        let mut found = found.into_iter();
        let survivor = found.next().expect("unify needs an incident");
        for absorbed in found {
            self.merge(survivor, absorbed, alert, now);
        }
        survivor
    }

    /// Reopens resolved incident `id` for a re-fired alert. The reopened incident then takes in
    /// every open incident near any of its services, exactly as if those services had alerted
    /// now: so whether the re-fire or a neighbour's alert of the same instant comes first does
    /// not change which alerts end up together.
    fn reopen(
        &mut self,
        graph: Graph<'_>,
        id: u64,
        event: &AlertEvent,
        starts_at: Millis,
        now: Millis,
    ) -> u64 {
        let incident = self
            .incidents
            .get_mut(&id)
            .expect("reopen needs a held incident");
        incident.status = IncidentStatus::Open;
        incident.resolved_at = None;
        incident.quiet_since = None;
        self.dirty.insert(id);
        // Ended alerts held only because their incident was resolved are remembered by age
        // again, as a restart (which rebuilds `ended_order` from every ended alert) would: the
        // next tick forgets those past `reopen_within`, so an alert that ended long ago cannot
        // reopen the incident after a restart any more than without one.
        for (fingerprint, starts_at) in self.ended_held.remove(&id).unwrap_or_default() {
            if let Some(ended) = self.ended.get(&fingerprint)
                && ended.starts_at == starts_at
            {
                self.ended_order
                    .insert((ended.noted_at, fingerprint, starts_at));
            }
        }
        self.timeline.push(TimelineEntry {
            incident: id,
            at: now,
            event: TimelineEvent::Reopened {
                alert: event.fingerprint,
            },
        });
        let incident = incident.clone();
        self.index(id, &incident);
        let mut subjects = incident
            .services
            .keys()
            .map(|service| Subject::Service(service.clone()))
            .collect::<Vec<_>>();
        if !incident.groups.is_empty() {
            subjects.push(Subject::Unmapped(incident.groups.iter().cloned().collect()));
        }
        subjects.push(event.subject.clone());
        let mut found = BTreeSet::from([id]);
        for subject in &subjects {
            found.extend(self.candidates(graph, subject, starts_at));
        }
        self.unify(found, event.fingerprint, now)
    }

    fn merge(&mut self, survivor: u64, absorbed: u64, alert: Fingerprint, now: Millis) {
        let Some(mut gone) = self.incidents.get(&absorbed).cloned() else {
            return;
        };
        self.unindex(absorbed, &gone);
        for fingerprint in &gone.firing {
            if let Some(firing) = self.firing.get_mut(fingerprint) {
                firing.incident = survivor;
            }
        }
        // Ended alerts move too, as the store moves them (see `Change::merges`): after a
        // restart the absorbed incident is not restored, and an ended alert still pointing at
        // it would be forgotten, so its next firing would open a new incident instead of
        // reopening this one.
        for ended in self.ended.values_mut() {
            if ended.incident == absorbed {
                ended.incident = survivor;
            }
        }
        let services = gone.services.keys().cloned().collect::<Vec<_>>();
        let keeper = self.incidents.get_mut(&survivor).expect("survivor is held");
        for (service, first) in &gone.services {
            let entry = keeper.services.entry(service.clone()).or_insert(*first);
            *entry = (*entry).min(*first);
        }
        keeper.groups.extend(gone.groups.iter().cloned());
        keeper.firing.extend(gone.firing.iter().copied());
        keeper.alert_count += gone.alert_count;
        keeper.first_activity = keeper.first_activity.min(gone.first_activity);
        keeper.last_activity = keeper.last_activity.max(gone.last_activity);
        keeper.live |= gone.live;
        keeper.opened_at = keeper.opened_at.min(gone.opened_at);
        if !keeper.firing.is_empty() {
            keeper.quiet_since = None;
        }
        let keeper = keeper.clone();
        self.index(survivor, &keeper);
        gone.status = IncidentStatus::Merged;
        gone.merged_into = Some(survivor);
        gone.firing.clear();
        self.incidents.insert(absorbed, gone);
        self.merged.insert(absorbed, survivor);
        self.merges.push((absorbed, survivor));
        self.dirty.insert(absorbed);
        self.dirty.insert(survivor);
        self.timeline.push(TimelineEntry {
            incident: survivor,
            at: now,
            event: TimelineEvent::Merged {
                absorbed,
                services,
                alert,
            },
        });
        self.timeline.push(TimelineEntry {
            incident: absorbed,
            at: now,
            event: TimelineEvent::MergedInto { survivor },
        });
    }

    fn add_firing(
        &mut self,
        graph: Graph<'_>,
        id: u64,
        event: &AlertEvent,
        starts_at: Millis,
        now: Millis,
    ) {
        let fingerprint = event.fingerprint;
        let joined = match &event.subject {
            Subject::Service(service) => {
                let is_new = self
                    .incidents
                    .get(&id)
                    .is_some_and(|i| !i.services.is_empty() && !i.services.contains_key(service));
                is_new.then(|| {
                    let neighbours = self.neighbours(graph.topology, service);
                    let incident = &self.incidents[&id];
                    let via = neighbours
                        .iter()
                        .find(|(name, _)| incident.services.contains_key(name));
                    TimelineEvent::ServiceJoined {
                        service: service.clone(),
                        alert: fingerprint,
                        via: via.map(|(name, _)| name.clone()),
                        hops: via.map(|(_, hops)| *hops),
                    }
                })
            }
            Subject::Unmapped(_) => None,
        };
        let incident = self.incidents.get_mut(&id).expect("placed");
        let refired = incident.quiet_since.is_some() && incident.firing.is_empty();
        incident.firing.insert(fingerprint);
        incident.alert_count += 1;
        incident.quiet_since = None;
        incident.live = true;
        incident.first_activity = incident.first_activity.min(starts_at);
        incident.last_activity = incident.last_activity.max(starts_at);
        incident.topology_version = graph.version;
        match &event.subject {
            Subject::Service(service) => {
                let first = incident
                    .services
                    .entry(service.clone())
                    .or_insert(starts_at);
                *first = (*first).min(starts_at);
                self.by_service
                    .entry(service.clone())
                    .or_default()
                    .insert(id);
            }
            Subject::Unmapped(pairs) => {
                for pair in pairs {
                    if incident.groups.insert(pair.clone()) {
                        self.by_group.entry(pair.clone()).or_default().insert(id);
                    }
                }
            }
        }
        if refired {
            self.timeline.push(TimelineEntry {
                incident: id,
                at: now,
                event: TimelineEvent::Refired { alert: fingerprint },
            });
        }
        if let Some(joined) = joined {
            self.timeline.push(TimelineEntry {
                incident: id,
                at: now,
                event: joined,
            });
        }
        self.firing.insert(
            fingerprint,
            Firing {
                starts_at,
                expires_at: event.ends_at,
                incident: id,
            },
        );
        if let Some(expiry) = event.ends_at {
            self.expiries.insert((expiry, fingerprint));
        }
        self.dirty.insert(id);
    }

    fn end(&mut self, event: &AlertEvent, now: Millis) -> Observation {
        let fingerprint = event.fingerprint;
        let ends_at = event.ends_at.unwrap_or(now);
        if let Some(firing) = self.firing.get(&fingerprint).copied() {
            let key = AlertKey {
                fingerprint,
                starts_at: firing.starts_at,
            };
            // The end of an older occurrence than the one firing says nothing about it.
            if event.starts_at.is_some_and(|s| s < firing.starts_at) {
                return Observation {
                    key: AlertKey {
                        fingerprint,
                        starts_at: event.starts_at.unwrap_or(firing.starts_at),
                    },
                    outcome: Outcome::Stale,
                    incident: None,
                    ends_at: Some(ends_at),
                };
            }
            if let Some(expiry) = firing.expires_at {
                self.expiries.remove(&(expiry, fingerprint));
            }
            let ends_at = ends_at.max(firing.starts_at);
            self.finish(fingerprint, firing, ends_at, now);
            return Observation {
                key,
                outcome: Outcome::Resolved,
                incident: Some(firing.incident),
                ends_at: Some(ends_at),
            };
        }
        let starts_at = event.starts_at.unwrap_or(ends_at);
        let key = AlertKey {
            fingerprint,
            starts_at,
        };
        match self.ended.get(&fingerprint).copied() {
            Some(ended) if ended.starts_at >= starts_at => Observation {
                key,
                outcome: if ended.starts_at == starts_at {
                    Outcome::Duplicate
                } else {
                    Outcome::Stale
                },
                incident: Some(self.follow(ended.incident)),
                ends_at: Some(ends_at),
            },
            _ => Observation {
                key,
                outcome: Outcome::Unassigned,
                incident: None,
                ends_at: Some(ends_at),
            },
        }
    }

    /// Ends firing alert `fingerprint` at `ends_at`.
    fn finish(&mut self, fingerprint: Fingerprint, firing: Firing, ends_at: Millis, now: Millis) {
        self.firing.remove(&fingerprint);
        let key = AlertKey {
            fingerprint,
            starts_at: firing.starts_at,
        };
        self.remember_ended(key, firing.incident, now);
        if let Some(incident) = self.incidents.get_mut(&firing.incident) {
            incident.firing.remove(&fingerprint);
            self.dirty.insert(firing.incident);
        }
        self.ended_unsettled
            .push((firing.incident, ends_at.min(now)));
    }

    fn remember_ended(&mut self, key: AlertKey, incident: u64, noted_at: Millis) {
        if let Some(old) = self.ended.insert(
            key.fingerprint,
            Ended {
                starts_at: key.starts_at,
                noted_at,
                incident,
            },
        ) {
            self.ended_order
                .remove(&(old.noted_at, key.fingerprint, old.starts_at));
        }
        self.ended_order
            .insert((noted_at, key.fingerprint, key.starts_at));
    }

    /// The incident that holds `id`'s alerts now (following merges).
    fn follow(&self, mut id: u64) -> u64 {
        while let Some(&next) = self.merged.get(&id) {
            id = next;
        }
        id
    }

    fn index(&mut self, id: u64, incident: &Incident) {
        for service in incident.services.keys() {
            self.by_service
                .entry(service.clone())
                .or_default()
                .insert(id);
        }
        for pair in &incident.groups {
            self.by_group.entry(pair.clone()).or_default().insert(id);
        }
    }

    fn unindex(&mut self, id: u64, incident: &Incident) {
        for service in incident.services.keys() {
            if let Some(ids) = self.by_service.get_mut(service) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_service.remove(service);
                }
            }
        }
        for pair in &incident.groups {
            if let Some(ids) = self.by_group.get_mut(pair) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_group.remove(pair);
                }
            }
        }
    }

    /// Checks the engine's internal consistency; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        for (fingerprint, firing) in &self.firing {
            let incident = self
                .incidents
                .get(&firing.incident)
                .ok_or_else(|| format!("firing {fingerprint} points at missing incident"))?;
            if incident.status != IncidentStatus::Open {
                return Err(format!(
                    "firing {fingerprint} is in incident {} which is {:?}",
                    firing.incident, incident.status
                ));
            }
            if !incident.firing.contains(fingerprint) {
                return Err(format!(
                    "incident {} does not list its firing alert {fingerprint}",
                    firing.incident
                ));
            }
        }
        let mut listed = 0;
        for (id, incident) in &self.incidents {
            if incident.status != IncidentStatus::Open && !incident.firing.is_empty() {
                return Err(format!(
                    "{:?} incident {id} has firing alerts",
                    incident.status
                ));
            }
            for fingerprint in &incident.firing {
                listed += 1;
                if self.firing.get(fingerprint).map(|f| f.incident) != Some(*id) {
                    return Err(format!("incident {id} lists {fingerprint} held elsewhere"));
                }
            }
            if incident.status == IncidentStatus::Open {
                for service in incident.services.keys() {
                    if !self
                        .by_service
                        .get(service)
                        .is_some_and(|ids| ids.contains(id))
                    {
                        return Err(format!("open incident {id} is not indexed by {service}"));
                    }
                }
            }
        }
        if listed != self.firing.len() {
            return Err(format!(
                "{listed} firing alerts listed by incidents, {} known",
                self.firing.len()
            ));
        }
        for (service, ids) in &self.by_service {
            for id in ids {
                if !self.incidents.get(id).is_some_and(|i| {
                    i.status == IncidentStatus::Open && i.services.contains_key(service)
                }) {
                    return Err(format!("index {service} -> {id} is stale"));
                }
            }
        }
        Ok(())
    }
}

fn snapshot(id: u64, incident: &Incident) -> IncidentSnapshot {
    IncidentSnapshot {
        id,
        kind: incident.kind,
        status: incident.status,
        opened_at: incident.opened_at,
        first_activity: incident.first_activity,
        last_activity: incident.last_activity,
        quiet_since: incident.quiet_since,
        resolved_at: incident.resolved_at,
        merged_into: incident.merged_into,
        services: incident
            .services
            .iter()
            .map(|(name, first)| (name.clone(), *first))
            .collect(),
        groups: incident.groups.iter().cloned().collect(),
        alert_count: incident.alert_count,
        firing_count: incident.firing.len() as u64,
        topology_version: incident.topology_version,
    }
}

#[cfg(test)]
mod tests;
