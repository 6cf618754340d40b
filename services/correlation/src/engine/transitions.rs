//! The state machine's transitions: deliveries that fire, refresh, end or come late, incidents
//! that open, join, merge, go quiet, resolve and reopen, and the passing of time that expires
//! alerts and forgets what can no longer reopen.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    AlertEvent, AlertKey, Change, Ended, Engine, Firing, Graph, Incident, IncidentKind,
    IncidentStatus, Millis, Observation, Outcome, Subject, TimelineEntry, TimelineEvent, snapshot,
};
use crate::alert::{AlertStatus, Fingerprint};

/// A firing alert as it arrives: its event, when it started (its own start, else now) and now.
#[derive(Clone, Copy)]
struct Arrival<'a> {
    event: &'a AlertEvent,
    starts_at: Millis,
    now: Millis,
}

impl Engine {
    /// Applies deliveries received at `now`, in order, after [`Engine::tick`]ing to `now`.
    pub fn observe(
        &mut self,
        graph: Graph<'_>,
        events: &[AlertEvent],
        now: Millis,
    ) -> Vec<Observation> {
        self.neighbourhoods.use_version(graph.version);
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
    pub(super) fn settle(&mut self, now: Millis) {
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
        while let Some(&(noted_at, fingerprint)) = self.ended_order.first() {
            if now.saturating_sub(noted_at) < reopen_within {
                break;
            }
            self.ended_order.pop_first();
            let Some(ended) = self.ended.get(&fingerprint).copied() else {
                continue;
            };
            if ended.noted_at != noted_at {
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
                    .push((fingerprint, ended.starts_at));
            } else {
                self.ended.remove(&fingerprint);
            }
        }
        // Bounded whatever the rate: past the cap the oldest ended alerts are forgotten early
        // (a late, stale delivery of one then reads as a new firing).
        let cap = self.settings.max_remembered_ended;
        while self.ended.len() > cap {
            let Some((noted_at, fingerprint)) = self.ended_order.pop_first() else {
                break;
            };
            if self
                .ended
                .get(&fingerprint)
                .is_some_and(|e| e.noted_at == noted_at)
            {
                self.ended.remove(&fingerprint);
            }
        }
        // The last incident is forgotten: what the cache held was for alerts that are gone.
        if self.incidents.is_empty() && self.firing.is_empty() {
            self.neighbourhoods.release();
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
        let arrival = Arrival {
            event,
            starts_at,
            now,
        };
        let reopen = previous
            .map(|ended| self.follow(ended.incident))
            .filter(|id| {
                self.incidents
                    .get(id)
                    .is_some_and(|i| i.status == IncidentStatus::Resolved)
            });
        let id = match reopen {
            Some(id) => self.reopen(graph, id, arrival),
            None => {
                let found = self.candidates(graph, &event.subject, starts_at);
                if found.is_empty() {
                    self.open(graph, arrival)
                } else {
                    self.unify(found, fingerprint, now)
                }
            }
        };
        self.add_firing(graph, id, arrival);
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
                let neighbours =
                    self.neighbourhoods
                        .of(graph.topology, service, self.settings.max_hops);
                let near = std::iter::once(service.as_str())
                    .chain(neighbours.iter().map(|(name, _)| name));
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
    fn open(&mut self, graph: Graph<'_>, arrival: Arrival<'_>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let (kind, service) = match &arrival.event.subject {
            Subject::Service(service) => (IncidentKind::Topology, Some(service.clone())),
            Subject::Unmapped(_) => (IncidentKind::Unmapped, None),
        };
        self.incidents.insert(
            id,
            Incident {
                kind,
                status: IncidentStatus::Open,
                opened_at: arrival.now,
                first_activity: arrival.starts_at,
                last_activity: arrival.starts_at,
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
            at: arrival.now,
            event: TimelineEvent::Opened {
                alert: arrival.event.fingerprint,
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
    fn reopen(&mut self, graph: Graph<'_>, id: u64, arrival: Arrival<'_>) -> u64 {
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
                self.ended_order.insert((ended.noted_at, fingerprint));
            }
        }
        self.timeline.push(TimelineEntry {
            incident: id,
            at: arrival.now,
            event: TimelineEvent::Reopened {
                alert: arrival.event.fingerprint,
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
        subjects.push(arrival.event.subject.clone());
        let mut found = BTreeSet::from([id]);
        for subject in &subjects {
            found.extend(self.candidates(graph, subject, arrival.starts_at));
        }
        self.unify(found, arrival.event.fingerprint, arrival.now)
    }

    fn merge(&mut self, survivor: u64, absorbed: u64, alert: Fingerprint, now: Millis) {
        // Taken out rather than cloned (it is put back, merged, below): its firing alerts can be
        // many.
        let Some(mut gone) = self.incidents.remove(&absorbed) else {
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
        let room = self
            .settings
            .max_incident_label_groups
            .saturating_sub(keeper.groups.len());
        let moved: Vec<_> = gone
            .groups
            .iter()
            .filter(|pair| !keeper.groups.contains(*pair))
            .take(room)
            .cloned()
            .collect();
        keeper.groups.extend(moved.iter().cloned());
        keeper.firing.extend(gone.firing.iter().copied());
        keeper.alert_count += gone.alert_count;
        keeper.first_activity = keeper.first_activity.min(gone.first_activity);
        keeper.last_activity = keeper.last_activity.max(gone.last_activity);
        keeper.live |= gone.live;
        keeper.opened_at = keeper.opened_at.min(gone.opened_at);
        if !keeper.firing.is_empty() {
            keeper.quiet_since = None;
        }
        // The survivor is open, so indexed by its own services and groups already: only the
        // absorbed incident's services and the groups it took are new to it (and cloning the
        // survivor to index it all would copy every firing alert of it at each merge).
        for service in gone.services.keys() {
            self.by_service
                .entry(service.clone())
                .or_default()
                .insert(survivor);
        }
        for pair in moved {
            self.by_group.entry(pair).or_default().insert(survivor);
        }
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

    fn add_firing(&mut self, graph: Graph<'_>, id: u64, arrival: Arrival<'_>) {
        let fingerprint = arrival.event.fingerprint;
        let joined = match &arrival.event.subject {
            Subject::Service(service) => {
                let is_new = self
                    .incidents
                    .get(&id)
                    .is_some_and(|i| !i.services.is_empty() && !i.services.contains_key(service));
                is_new.then(|| {
                    let neighbours =
                        self.neighbourhoods
                            .of(graph.topology, service, self.settings.max_hops);
                    let incident = &self.incidents[&id];
                    let via = neighbours
                        .iter()
                        .find(|(name, _)| incident.services.contains_key(*name));
                    TimelineEvent::ServiceJoined {
                        service: service.clone(),
                        alert: fingerprint,
                        via: via.map(|(name, _)| name.to_owned()),
                        hops: via.map(|(_, hops)| hops),
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
        incident.first_activity = incident.first_activity.min(arrival.starts_at);
        incident.last_activity = incident.last_activity.max(arrival.starts_at);
        incident.topology_version = graph.version;
        match &arrival.event.subject {
            Subject::Service(service) => {
                let first = incident
                    .services
                    .entry(service.clone())
                    .or_insert(arrival.starts_at);
                *first = (*first).min(arrival.starts_at);
                self.by_service
                    .entry(service.clone())
                    .or_default()
                    .insert(id);
            }
            Subject::Unmapped(pairs) => {
                let room = self.settings.max_incident_label_groups;
                for pair in pairs {
                    if incident.groups.len() < room && incident.groups.insert(pair.clone()) {
                        self.by_group.entry(pair.clone()).or_default().insert(id);
                    }
                }
            }
        }
        if refired {
            self.timeline.push(TimelineEntry {
                incident: id,
                at: arrival.now,
                event: TimelineEvent::Refired { alert: fingerprint },
            });
        }
        if let Some(joined) = joined {
            self.timeline.push(TimelineEntry {
                incident: id,
                at: arrival.now,
                event: joined,
            });
        }
        self.firing.insert(
            fingerprint,
            Firing {
                starts_at: arrival.starts_at,
                expires_at: arrival.event.ends_at,
                incident: id,
            },
        );
        if let Some(expiry) = arrival.event.ends_at {
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

    pub(super) fn remember_ended(&mut self, key: AlertKey, incident: u64, noted_at: Millis) {
        if let Some(old) = self.ended.insert(
            key.fingerprint,
            Ended {
                starts_at: key.starts_at,
                noted_at,
                incident,
            },
        ) {
            self.ended_order.remove(&(old.noted_at, key.fingerprint));
        }
        self.ended_order.insert((noted_at, key.fingerprint));
    }
}
