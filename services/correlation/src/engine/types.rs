//! The engine's public data types: its settings, the deliveries it observes and what each did,
//! incidents as it reports them, their timelines, and the changes a store must write.

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
    /// Most ended alerts remembered (for `reopen_within_secs`) to recognise late deliveries:
    /// bounds memory whatever the rate of distinct alerts. Default 1,000,000.
    pub max_remembered_ended: usize,
    /// Most label pairs an unmapped incident is grouped by: the first ones met; later alerts
    /// join it through those. Without a bound, a label with a value per alert (`instance`)
    /// grew an incident by a pair per alert, and every commit rewrote them all. Default 64.
    pub max_incident_label_groups: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_hops: 2,
            window_secs: 600,
            resolve_after_secs: 300,
            reopen_within_secs: 1800,
            max_remembered_ended: 1_000_000,
            max_incident_label_groups: 64,
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
    pub(super) fn window(&self) -> Millis {
        secs_to_millis(self.window_secs)
    }
    pub(super) fn resolve_after(&self) -> Millis {
        secs_to_millis(self.resolve_after_secs)
    }
    pub(super) fn reopen_within(&self) -> Millis {
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

pub(super) fn secs_to_millis(secs: u64) -> Millis {
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

/// A firing alert of a restored incident (see [`Engine::restore`](super::Engine::restore)).
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

/// What changed since the last [`Engine::take_changes`](super::Engine::take_changes): what a
/// store must write.
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

/// The dependency graph at one version, as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct Graph<'a> {
    /// The version id (neighbourhoods are cached per version).
    pub version: Option<i64>,
    /// The graph.
    pub topology: &'a Topology,
}
