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
//!
//! The public data types are in `types`, the transitions (firing, ending, merging, resolving,
//! reopening, time passing) in `transitions`, the cache of graph neighbourhoods in
//! `neighbourhoods`; this file holds the engine's state, its construction and restoration, what
//! it answers about itself, and its indexes.

mod neighbourhoods;
mod transitions;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use neighbourhoods::Neighbourhoods;

use crate::alert::{AlertStatus, Fingerprint};
pub use types::{
    AlertEvent, AlertKey, Change, Graph, IncidentKind, IncidentSnapshot, IncidentStatus, Millis,
    Observation, Outcome, RestoredAlert, Settings, Subject, TimelineEntry, TimelineEvent,
};

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

/// The correlation engine. See the module documentation for the rules.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    /// Open incidents, resolved ones that can still reopen, and merged ones until the next
    /// [`Engine::take_changes`].
    incidents: BTreeMap<u64, Incident>,
    /// Firing alerts. This map and `ended` churn at the ingest rate (every alert enters and
    /// leaves them), so they are B-trees: a hash table under churn fills with tombstones and
    /// doubles even when its size is steady (measured: the firing table of a steady million
    /// alerts went from 2^21 to 2^22 buckets after eight minutes at 18,000 alerts/s, a step of
    /// about 90 MB), while a B-tree holds memory in proportion to its entries.
    firing: BTreeMap<Fingerprint, Firing>,
    /// Expiry order of firing alerts that have one.
    expiries: BTreeSet<(Millis, Fingerprint)>,
    /// The last ended occurrence of each recently ended fingerprint.
    ended: BTreeMap<Fingerprint, Ended>,
    /// (noted, fingerprint) of each entry of `ended` (but those in `ended_held`), to forget old
    /// entries in order. The entry's start is not repeated here (a million ended alerts are
    /// remembered by default, and each byte of a key counts): the fingerprint finds the entry,
    /// of which there is one per fingerprint (a new occurrence replaces the old one, and its
    /// entry here).
    ended_order: BTreeSet<(Millis, Fingerprint)>,
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
    /// Services near each service that alerted, under the current topology version.
    neighbourhoods: Neighbourhoods,
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
            firing: BTreeMap::new(),
            expiries: BTreeSet::new(),
            ended: BTreeMap::new(),
            ended_order: BTreeSet::new(),
            ended_held: HashMap::new(),
            by_service: HashMap::new(),
            by_group: HashMap::new(),
            merged: HashMap::new(),
            next_id: next_id.max(1),
            neighbourhoods: Neighbourhoods::default(),
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

    /// How many ended alerts the engine remembers (to recognise late deliveries and reopen
    /// resolved incidents): at most `max_remembered_ended`, each for `reopen_within_secs`.
    pub fn remembered_ended_alerts(&self) -> usize {
        self.ended.len()
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
