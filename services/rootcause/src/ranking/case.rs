//! What a ranker sees of an incident: the [`Case`] built from what the service holds of it.
//!
//! Everything here is pure and works on copies taken under the state lock ([`Material`] and a
//! [`Job`]), so the CPU work of building and ranking a case runs without the lock and off the
//! async workers.

use std::collections::BTreeMap;
use std::sync::Arc;

use rootcause_correlation::Signal;
use rootcause_models::case::{Case, CaseAlert, CaseChange, Family, Series, Source};
use rootcause_models::evidence;
use rootcause_topology::Topology;

use crate::store::{StoredAlertKind, StoredChange, StoredMetric};

/// Seconds before an incident's first alert from which change events count as its evidence: a
/// deploy an hour before the first alert is a classic cause; a deploy the day before is not.
pub const CHANGES_BEFORE_S: i64 = 3600;

/// The samples of one posted series, times strictly increasing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// Unix seconds.
    pub times: Vec<i64>,
    /// Values; NaN for "no data".
    pub values: Vec<f64>,
}

impl Samples {
    /// Adds `newer`'s points; where both have a point at the same time, `newer`'s wins (a
    /// corrected value posted again replaces the old one).
    pub fn merge(&mut self, newer: &Samples) {
        if newer.times.is_empty() {
            return;
        }
        if self.times.last().is_none_or(|&last| last < newer.times[0]) {
            // Later windows of the same metric, the usual case: append.
            self.times.extend_from_slice(&newer.times);
            self.values.extend_from_slice(&newer.values);
            return;
        }
        let mut merged = BTreeMap::new();
        for (t, v) in self.times.iter().zip(&self.values) {
            merged.insert(*t, *v);
        }
        for (t, v) in newer.times.iter().zip(&newer.values) {
            merged.insert(*t, *v);
        }
        (self.times, self.values) = merged.into_iter().unzip();
    }

    /// How many points it holds.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether it holds no point.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Posted series of one incident by (service, metric name).
pub type Posted = BTreeMap<(String, String), Samples>;

/// Adds stored series rows (oldest first) to `posted`.
pub fn add_stored_metrics(posted: &mut Posted, rows: Vec<StoredMetric>) {
    for row in rows {
        posted
            .entry((row.service, row.name))
            .or_default()
            .merge(&Samples {
                times: row.times,
                values: row.values,
            });
    }
}

/// A change event as ranking keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Store id (the same event is kept once).
    pub id: i64,
    /// The topology service it maps to.
    pub service: String,
    /// `deploy`, `config`, ...
    pub kind: String,
    /// Epoch milliseconds.
    pub at: i64,
    /// Version and free text, for the evidence sentences.
    pub description: String,
}

impl ChangeRecord {
    /// The record of a stored change event; `None` when it maps to no topology service (it
    /// cannot be evidence about a candidate).
    pub fn of(change: StoredChange) -> Option<ChangeRecord> {
        let description = match (change.version.is_empty(), change.description) {
            (true, None) => String::new(),
            (true, Some(text)) => text,
            (false, None) => format!("version {}", change.version),
            (false, Some(text)) => format!("version {}: {text}", change.version),
        };
        Some(ChangeRecord {
            id: change.id,
            service: change.mapped?,
            kind: change.kind,
            at: change.at,
            description,
        })
    }
}

/// The entry ranking holds for one kind of an incident's alerts, as the store groups them.
pub fn stored_kind(kind: StoredAlertKind) -> CaseAlert {
    let single_and_ended = (kind.count == 1 && kind.firing == 0)
        .then_some(kind.ended)
        .flatten();
    let mut alert = case_alert(
        kind.service,
        &kind.labels,
        &kind.signal,
        kind.severity,
        kind.starts_at,
        single_and_ended,
    );
    alert.count = u64::try_from(kind.count).unwrap_or(1).max(1);
    alert.labels = kind_labels(&alert.name, &alert.severity);
    alert
}

/// A new kind's entry from its first committed occurrence.
pub fn committed_kind(
    service: Option<String>,
    name: &str,
    signal: &str,
    severity: Option<&str>,
    starts_at_ms: i64,
) -> CaseAlert {
    let severity = severity.unwrap_or_default().to_owned();
    CaseAlert {
        service,
        name: name.to_owned(),
        signal: signal.to_owned(),
        labels: kind_labels(name, &severity),
        severity,
        starts_at: starts_at_ms.div_euclid(1000),
        ends_at: None,
        count: 1,
    }
}

/// The labels an entry of a kind keeps: those that name the kind (its occurrences' other
/// labels differ, and no ranker reads them).
fn kind_labels(name: &str, severity: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("alertname".to_owned(), name.to_owned())]);
    if !severity.is_empty() {
        labels.insert("severity".to_owned(), severity.to_owned());
    }
    labels
}

/// A [`CaseAlert`] from an alert row's fields. `ended` is when it resolved, if it did (a firing
/// alert's `ends_at` is only its expiry and says nothing about the fault).
pub fn case_alert(
    service: Option<String>,
    labels: &str,
    signal: &str,
    severity: Option<String>,
    starts_at: i64,
    ended: Option<i64>,
) -> CaseAlert {
    let labels: BTreeMap<String, String> = serde_json::from_str(labels).unwrap_or_default();
    // The signal as the correlation engine classified it; a row written by an older version
    // may hold a name it no longer knows, which is classified again from the labels.
    let signal = Signal::from_name(signal).unwrap_or_else(|| Signal::classify(&labels));
    CaseAlert {
        service,
        name: labels.get("alertname").cloned().unwrap_or_default(),
        signal: signal.as_str().to_owned(),
        severity: severity.unwrap_or_default(),
        starts_at: starts_at.div_euclid(1000),
        ends_at: ended.map(|at| at.div_euclid(1000)),
        labels,
        count: 1,
    }
}

/// Everything needed to rank one incident, copied out of the shared state.
#[derive(Debug, Clone)]
pub struct Job {
    /// The incident.
    pub incident: u64,
    /// The state generation the copy was taken at: a result is published only if no newer one
    /// was.
    pub generation: u64,
    /// The incident's alert occurrences at that generation.
    pub alert_count: u64,
    /// Unix seconds of its first alert activity.
    pub anchor: i64,
    /// Its alerting services.
    pub services: Vec<String>,
    /// Its alerts by kind (service, name, signal, severity), each with its count of
    /// occurrences, firing and ended.
    pub alerts: Vec<CaseAlert>,
    /// Posted series and those pulled from Prometheus (posted ones win on equal names).
    pub series: Vec<Series>,
    /// Change events from an hour before the anchor up to now, on any service (filtered to the
    /// candidates once they are known).
    pub changes: Vec<ChangeRecord>,
    /// The dependency graph to rank on.
    pub topology: Arc<Topology>,
    /// The graph version, for the case's `system`.
    pub topology_version: i64,
    /// How far candidates reach from the alerting services.
    pub hops: usize,
    /// Candidates an earlier ranking computed on the same topology version, and the services
    /// that alerted since (empty when none did). Candidates only grow with the services, so
    /// during an alert storm they are extended rather than computed again at every ranking.
    pub known: Option<(Vec<String>, Vec<String>)>,
}

/// The series of a case: posted ones, then pulled ones whose (service, name) was not posted.
pub fn series_of(posted: &Posted, pulled: &[Series]) -> Vec<Series> {
    let mut series: Vec<Series> = posted
        .iter()
        .filter(|(_, samples)| !samples.is_empty())
        .map(|((service, name), samples)| Series {
            service: service.clone(),
            source: Source::Metric,
            family: Family::classify(name),
            name: name.clone(),
            times: samples.times.clone(),
            values: samples.values.clone(),
        })
        .collect();
    series.extend(
        pulled
            .iter()
            .filter(|s| !posted.contains_key(&(s.service.clone(), s.name.clone())))
            .cloned(),
    );
    series
}

impl Job {
    /// The incident's candidates: its alerting services and their callees up to `hops`.
    pub fn candidates(&self) -> Vec<String> {
        match &self.known {
            Some((known, added)) if added.is_empty() => known.clone(),
            Some((known, added)) => {
                let more = evidence::candidates(&self.topology, added, self.hops);
                let mut all = Vec::with_capacity(known.len() + more.len());
                let (mut a, mut b) = (known.iter().peekable(), more.into_iter().peekable());
                loop {
                    match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) if *x < y => all.push(a.next().unwrap().clone()),
                        (Some(x), Some(y)) if *x > y => all.push(b.next().unwrap()),
                        (Some(_), Some(_)) => {
                            all.push(b.next().unwrap());
                            a.next();
                        }
                        (Some(_), None) => all.push(a.next().unwrap().clone()),
                        (None, Some(_)) => all.push(b.next().unwrap()),
                        (None, None) => break,
                    }
                }
                all
            }
            None => evidence::candidates(&self.topology, &self.services, self.hops),
        }
    }

    /// The case a ranker sees: candidates, the series of candidates, every alert, the change
    /// events on candidates.
    pub fn case(self) -> Case {
        let candidates = self.candidates();
        let is_candidate = |service: &str| {
            candidates
                .binary_search_by(|c| c.as_str().cmp(service))
                .is_ok()
        };
        let changes = self
            .changes
            .into_iter()
            .filter(|c| is_candidate(&c.service))
            .map(|c| CaseChange {
                service: c.service,
                kind: c.kind,
                at: c.at.div_euclid(1000),
                description: c.description,
            })
            .collect();
        let series = self
            .series
            .into_iter()
            .filter(|s| is_candidate(&s.service))
            .collect();
        Case {
            id: format!("incident-{}", self.incident),
            system: format!("topology-v{}", self.topology_version),
            anchor: self.anchor,
            candidates,
            series,
            edges: Vec::new(),
            alerts: self.alerts,
            changes,
            topology: Some(self.topology),
            normal_windows: Vec::new(),
            label: None,
            notes: Vec::new(),
        }
    }
}

/// The services of `now` that `before` lacks, when `now` holds all of `before` (both sorted);
/// `None` when a service left (never, unless the incident was reloaded differently).
pub fn added_since(before: &[String], now: &[String]) -> Option<Vec<String>> {
    let mut added = Vec::new();
    let mut old = before.iter().peekable();
    for service in now {
        match old.peek() {
            Some(&o) if o == service => {
                old.next();
            }
            Some(&o) if o < service => return None,
            _ => added.push(service.clone()),
        }
    }
    old.peek().is_none().then_some(added)
}
