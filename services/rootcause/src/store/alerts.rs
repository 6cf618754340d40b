//! Alerts and incidents as stored: the correlation engine's state at start-up and the read
//! queries of the API. The ingest writer's group commit is in [`super::batch`].

use rootcause_correlation::engine::RestoredAlert;
use rootcause_correlation::{
    AlertKey, AlertStatus, Fingerprint, IncidentKind, IncidentSnapshot, IncidentStatus, Millis,
};
use sqlx::FromRow;

use super::batch::incident_columns;
use super::{Store, StoreError, to_u64, with_pool};

/// What the engine needs at start-up.
#[derive(Debug, Default)]
pub struct EngineState {
    /// Incidents open, or resolved recently enough to reopen.
    pub incidents: Vec<IncidentSnapshot>,
    /// Their firing alerts and their recently ended ones.
    pub alerts: Vec<RestoredAlert>,
    /// The next incident id.
    pub next_id: u64,
    /// Firing alerts in no incident (none, unless a write was interrupted in a way the
    /// transaction should make impossible): the engine replays them.
    pub unassigned: Vec<StoredAlert>,
}

/// The occurrences of one kind of alert of an incident (see [`Store::incident_alert_kinds`]).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredAlertKind {
    /// Mapped service.
    pub service: Option<String>,
    /// Signal kind.
    pub signal: String,
    /// `severity` label.
    pub severity: Option<String>,
    /// Occurrences.
    pub count: i64,
    /// The earliest start, epoch ms.
    pub starts_at: i64,
    /// The latest end of a resolved occurrence, epoch ms.
    pub ended: Option<i64>,
    /// Occurrences still firing.
    pub firing: i64,
    /// The smallest labels text of the kind (any occurrence's labels name the kind).
    pub labels: String,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredAlert {
    /// Row id: the order alerts were first received in.
    pub id: i64,
    /// Fingerprint bits.
    pub fingerprint: i64,
    /// `firing` or `resolved`.
    pub status: String,
    /// Start, epoch ms.
    pub starts_at: i64,
    /// End (resolved) or expiry (firing), epoch ms.
    pub ends_at: Option<i64>,
    /// Mapped service.
    pub service: Option<String>,
    /// Incident.
    pub incident_id: Option<i64>,
    /// Endpoint it came through.
    pub source: String,
    /// `severity` label.
    pub severity: Option<String>,
    /// Signal kind.
    pub signal: String,
    /// Labels, JSON object text.
    pub labels: String,
    /// Annotations, JSON object text.
    pub annotations: String,
    /// Link back to the source.
    pub generator_url: Option<String>,
    /// First received, epoch ms.
    pub received_at: i64,
    /// Last changed, epoch ms.
    pub updated_at: i64,
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredIncident {
    /// Id.
    pub id: i64,
    /// `topology` or `unmapped`.
    pub kind: String,
    /// `open`, `resolved` or `merged`.
    pub status: String,
    /// Epoch ms.
    pub opened_at: i64,
    /// Epoch ms.
    pub first_activity: i64,
    /// Epoch ms.
    pub last_activity: i64,
    /// Epoch ms.
    pub quiet_since: Option<i64>,
    /// Epoch ms.
    pub resolved_at: Option<i64>,
    /// Survivor of a merge.
    pub merged_into: Option<i64>,
    /// JSON `[[service, first alert ms], ...]`.
    pub services: String,
    /// JSON `[[key, value], ...]`.
    pub label_groups: String,
    /// Alert occurrences.
    pub alert_count: i64,
    /// Firing now.
    pub firing_count: i64,
    /// Topology version last correlated under.
    pub topology_version: Option<i64>,
    /// Epoch ms.
    pub updated_at: i64,
}

impl StoredIncident {
    /// The names of its services, in the order they joined (`services` holds name and first
    /// alert pairs as JSON); none when the column cannot be read.
    pub fn service_names(&self) -> Vec<String> {
        serde_json::from_str::<Vec<(String, i64)>>(&self.services)
            .map(|pairs| pairs.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default()
    }
}

/// A timeline entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredEvent {
    /// Order.
    pub id: i64,
    /// Epoch ms.
    pub at: i64,
    /// Event kind.
    pub kind: String,
    /// JSON of the event.
    pub detail: String,
}

/// The part of a newest-first list to read: a time range and a page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// At or after (ms): for alerts their start, for incidents their last activity.
    pub since: Option<i64>,
    /// At or before (ms): for alerts their start, for incidents their first activity.
    pub until: Option<i64>,
    /// Only ids below this (paging, newest first).
    pub before: Option<i64>,
    /// Most rows.
    pub limit: i64,
}

/// Filters of the alert list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `firing` or `resolved`.
    pub status: Option<String>,
    /// Mapped service.
    pub service: Option<String>,
    /// Only alerts no service was found for.
    pub unmapped: Option<bool>,
    /// Incident.
    pub incident: Option<i64>,
    /// Time range and page.
    pub page: Page,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// `open`, `resolved` or `merged`.
    pub status: Option<String>,
    /// Touches this service.
    pub service: Option<String>,
    /// Time range (an incident still firing is active now) and page.
    pub page: Page,
}

const ALERT_COLUMNS: &str = "id, fingerprint, status, starts_at, ends_at, service, incident_id, \
     source, severity, signal, labels, annotations, generator_url, received_at, updated_at";

const INCIDENT_COLUMNS: &str = incident_columns!();

impl Store {
    /// What the correlation engine needs to continue after a restart: incidents open or
    /// resolved at or after `keep_since` (ms), their firing alerts and those whose end was
    /// stored at or after `keep_since`, the next incident id, and firing alerts in no incident.
    pub async fn load_engine_state(&self, keep_since: Millis) -> Result<EngineState, StoreError> {
        let held = "status = 'open' OR (status = 'resolved' AND resolved_at >= $1)";
        let (incidents, alerts, max_id, unassigned) = with_pool!(self, pool => {
            let incidents = sqlx::query_as::<_, StoredIncident>(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {held} ORDER BY id"
            )))
            .bind(keep_since)
            .fetch_all(pool)
            .await?;
            let alerts = sqlx::query_as::<_, (i64, i64, Option<i64>, String, i64, i64)>(sqlx::AssertSqlSafe(format!(
                "SELECT fingerprint, starts_at, ends_at, status, incident_id, updated_at FROM alerts \
                 WHERE incident_id IN (SELECT id FROM incidents WHERE {held}) \
                 AND (status = 'firing' OR updated_at >= $1)"
            )))
            .bind(keep_since)
            .fetch_all(pool)
            .await?;
            let max_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM incidents")
                .fetch_one(pool)
                .await?;
            let unassigned = sqlx::query_as::<_, StoredAlert>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts \
                 WHERE incident_id IS NULL AND status = 'firing' ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            (incidents, alerts, max_id, unassigned)
        });
        let incidents = incidents
            .into_iter()
            .map(incident_snapshot)
            .collect::<Result<Vec<_>, _>>()?;
        let alerts = alerts
            .into_iter()
            .map(
                |(fingerprint, starts_at, ends_at, status, incident, updated_at)| {
                    let status = status.parse::<AlertStatus>().map_err(corrupt)?;
                    Ok(RestoredAlert {
                        key: AlertKey {
                            fingerprint: Fingerprint::from_i64(fingerprint),
                            starts_at,
                        },
                        expires_at: (status == AlertStatus::Firing).then_some(ends_at).flatten(),
                        incident: to_u64(incident),
                        status,
                        noted_at: (status == AlertStatus::Resolved).then_some(updated_at),
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(EngineState {
            incidents,
            alerts,
            next_id: to_u64(max_id.unwrap_or(0)) + 1,
            unassigned,
        })
    }

    /// Alerts matching `filter`, newest first.
    pub async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE \
             ($1 IS NULL OR status = $1) AND ($2 IS NULL OR service = $2) \
             AND ($3 IS NULL OR incident_id = $3) AND ($4 IS NULL OR starts_at >= $4) \
             AND ($5 IS NULL OR starts_at <= $5) AND ($6 IS NULL OR id < $6) \
             AND ($7 IS NULL OR (service IS NULL) = $7) \
             ORDER BY id DESC LIMIT $8"
        );
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredAlert>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(filter.status.as_deref())
                .bind(filter.service.as_deref())
                .bind(filter.incident)
                .bind(filter.page.since)
                .bind(filter.page.until)
                .bind(filter.page.before)
                .bind(filter.unmapped)
                .bind(filter.page.limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The alerts of incident `id`, first received first, at most `limit`.
    pub async fn incident_alerts(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id = $1 ORDER BY id LIMIT $2"
        );
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredAlert>(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(limit).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// The alerts of incident `id` by kind (service, alert name, signal, severity): how many
    /// occurrences of each, the earliest start, the first occurrence's labels; the kinds that
    /// arrived first, at most `limit`. What ranking holds of an incident, read without moving
    /// every occurrence out of the database.
    pub async fn incident_alert_kinds(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<StoredAlertKind>, StoreError> {
        let name = match self.engine() {
            super::Engine::Sqlite => "labels ->> '$.alertname'",
            super::Engine::Postgres => "labels::jsonb ->> 'alertname'",
        };
        let sql = format!(
            "SELECT service, signal, severity, COUNT(*) AS count, MIN(starts_at) AS starts_at, \
             MAX(CASE WHEN status = 'resolved' THEN ends_at END) AS ended, \
             SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END) AS firing, MIN(labels) AS labels \
             FROM alerts WHERE incident_id = $1 \
             GROUP BY service, signal, severity, {name} ORDER BY MIN(id) LIMIT $2"
        );
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredAlertKind>(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(limit).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Incidents matching `filter`, newest first.
    pub async fn list_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<Vec<StoredIncident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE \
             ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR id IN (SELECT incident_id FROM incident_services WHERE service = $2)) \
             AND ($3 IS NULL OR last_activity >= $3 OR firing_count > 0) \
             AND ($4 IS NULL OR first_activity <= $4) \
             AND ($5 IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6"
        );
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredIncident>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(filter.status.as_deref())
                .bind(filter.service.as_deref())
                .bind(filter.page.since)
                .bind(filter.page.until)
                .bind(filter.page.before)
                .bind(filter.page.limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Incident `id`, if stored.
    pub async fn incident(&self, id: i64) -> Result<Option<StoredIncident>, StoreError> {
        self.select_by_id("incidents", INCIDENT_COLUMNS, id).await
    }

    /// The timeline of incident `id`, oldest first.
    pub async fn incident_timeline(&self, id: i64) -> Result<Vec<StoredEvent>, StoreError> {
        self.select_where("incident_events", "id, at, kind, detail", "incident_id", id)
            .await
    }
}

/// The engine's view of a stored incident.
pub fn incident_snapshot(row: StoredIncident) -> Result<IncidentSnapshot, StoreError> {
    Ok(IncidentSnapshot {
        id: to_u64(row.id),
        kind: match row.kind.as_str() {
            "topology" => IncidentKind::Topology,
            "unmapped" => IncidentKind::Unmapped,
            other => return Err(corrupt(format!("unknown incident kind {other:?}"))),
        },
        status: match row.status.as_str() {
            "open" => IncidentStatus::Open,
            "resolved" => IncidentStatus::Resolved,
            "merged" => IncidentStatus::Merged,
            other => return Err(corrupt(format!("unknown incident status {other:?}"))),
        },
        opened_at: row.opened_at,
        first_activity: row.first_activity,
        last_activity: row.last_activity,
        quiet_since: row.quiet_since,
        resolved_at: row.resolved_at,
        merged_into: row.merged_into.map(to_u64),
        services: serde_json::from_str(&row.services).map_err(corrupt)?,
        groups: serde_json::from_str(&row.label_groups).map_err(corrupt)?,
        alert_count: to_u64(row.alert_count),
        firing_count: to_u64(row.firing_count),
        topology_version: row.topology_version,
    })
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

#[cfg(test)]
mod tests {
    use rootcause_correlation::engine::Graph;
    use rootcause_correlation::{AlertEvent, Engine, Observation, Settings, Subject};
    use rootcause_topology::Topology;

    use super::*;
    use crate::store::tests::on_both_engines;
    use rootcause_correlation::Change;

    use crate::store::{AlertWrite, IngestBatch};

    const T0: Millis = 1_800_000_000_000;

    fn event(fingerprint: u64, service: &str, status: AlertStatus) -> AlertEvent {
        AlertEvent {
            fingerprint: Fingerprint(fingerprint),
            status,
            starts_at: Some(T0),
            ends_at: (status == AlertStatus::Resolved).then_some(T0 + 1000),
            subject: Subject::Service(service.to_owned()),
        }
    }

    fn rows(events: &[AlertEvent], seen: &[Observation]) -> Vec<AlertWrite> {
        events
            .iter()
            .zip(seen)
            .map(|(event, seen)| AlertWrite {
                fingerprint: event.fingerprint.to_i64(),
                starts_at: seen.key.starts_at,
                ends_at: seen.ends_at,
                status: event.status.as_str(),
                service: match &event.subject {
                    Subject::Service(s) => Some(s.clone()),
                    Subject::Unmapped(_) => None,
                },
                incident: seen.incident.map(|i| i as i64),
                source: "api",
                severity: None,
                signal: "custom",
                labels: format!("{{\"alertname\":\"Down\",\"n\":\"{}\"}}", event.fingerprint),
                annotations: "{}".to_owned(),
                generator_url: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_group_commit_is_read_back_and_rebuilds_the_same_engine() {
        on_both_engines(|store| async move {
            let topology = rootcause_topology::bundled::find(rootcause_topology::bundled::DEFAULT)
                .unwrap()
                .topology();
            let graph = Graph {
                version: Some(1),
                topology: &topology,
            };
            let mut engine = Engine::new(Settings::default(), 1);
            // Two services near each other, one far, then a merge-free resolution; the high
            // fingerprint checks that all 64 bits survive the round trip.
            let first = [
                event(u64::MAX - 1, "redis-cart", AlertStatus::Firing),
                event(2, "cartservice", AlertStatus::Firing),
                event(3, "cartservice", AlertStatus::Firing),
            ];
            let seen = engine.observe(graph, &first, T0);
            store
                .write_ingest(
                    &IngestBatch {
                        alerts: rows(&first, &seen),
                        change: engine.take_changes(),
                        now: T0,
                    }
                    .encode(store.engine())
                    .unwrap(),
                )
                .await
                .unwrap();
            let second = [event(3, "cartservice", AlertStatus::Resolved)];
            let seen = engine.observe(graph, &second, T0 + 1000);
            store
                .write_ingest(
                    &IngestBatch {
                        alerts: rows(&second, &seen),
                        change: engine.take_changes(),
                        now: T0 + 1000,
                    }
                    .encode(store.engine())
                    .unwrap(),
                )
                .await
                .unwrap();

            let listed = store
                .list_alerts(&AlertFilter {
                    page: Page {
                        limit: 10,
                        ..Page::default()
                    },
                    ..AlertFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 3);
            assert_eq!(
                Fingerprint::from_i64(listed[2].fingerprint),
                Fingerprint(u64::MAX - 1)
            );
            let resolved = listed.iter().find(|a| a.fingerprint == 3).unwrap();
            assert_eq!(resolved.status, "resolved");
            assert_eq!(resolved.ends_at, Some(T0 + 1000));
            assert_eq!(resolved.incident_id, Some(1));

            let incidents = store
                .list_incidents(&IncidentFilter {
                    service: Some("redis-cart".into()),
                    page: Page {
                        limit: 10,
                        ..Page::default()
                    },
                    ..IncidentFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(incidents.len(), 1);
            assert_eq!(incidents[0].firing_count, 2);
            assert!(!store.incident_timeline(1).await.unwrap().is_empty());

            // What ranking loads: one entry per kind, with its counts and earliest start.
            let kinds = store.incident_alert_kinds(1, 10).await.unwrap();
            assert_eq!(kinds.len(), 2, "{kinds:?}");
            let cart = kinds
                .iter()
                .find(|k| k.service.as_deref() == Some("cartservice"))
                .unwrap();
            assert_eq!((cart.count, cart.firing, cart.starts_at), (2, 1, T0));
            assert_eq!(cart.ended, Some(T0 + 1000));
            assert!(
                cart.labels.contains("\"alertname\":\"Down\""),
                "{}",
                cart.labels
            );
            assert_eq!(store.incident_alert_kinds(1, 1).await.unwrap().len(), 1);

            let state = store.load_engine_state(T0 - 1).await.unwrap();
            assert_eq!(state.next_id, 2);
            assert!(state.unassigned.is_empty());
            let restored = Engine::restore(
                Settings::default(),
                state.incidents,
                state.alerts,
                state.next_id,
            );
            restored.check_invariants().unwrap();
            assert_eq!(restored.incidents(), engine.incidents());
            assert_eq!(restored.firing_alerts(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn an_upsert_never_turns_a_resolved_alert_back_to_firing() {
        on_both_engines(|store| async move {
            let topology = Topology::new();
            let mut engine = Engine::new(Settings::default(), 1);
            let graph = Graph {
                version: None,
                topology: &topology,
            };
            let fire = [event(7, "x", AlertStatus::Firing)];
            let seen = engine.observe(graph, &fire, T0);
            let mut firing_rows = rows(&fire, &seen);
            store
                .write_ingest(
                    &IngestBatch {
                        alerts: firing_rows.clone(),
                        change: engine.take_changes(),
                        now: T0,
                    }
                    .encode(store.engine())
                    .unwrap(),
                )
                .await
                .unwrap();
            let end = [event(7, "x", AlertStatus::Resolved)];
            let seen = engine.observe(graph, &end, T0 + 1000);
            store
                .write_ingest(
                    &IngestBatch {
                        alerts: rows(&end, &seen),
                        change: engine.take_changes(),
                        now: T0 + 1000,
                    }
                    .encode(store.engine())
                    .unwrap(),
                )
                .await
                .unwrap();
            // A late firing row for the same occurrence (as a replica that lags would write).
            firing_rows[0].incident = None;
            store
                .write_ingest(
                    &IngestBatch {
                        alerts: firing_rows,
                        change: Change::default(),
                        now: T0 + 2000,
                    }
                    .encode(store.engine())
                    .unwrap(),
                )
                .await
                .unwrap();
            let listed = store
                .list_alerts(&AlertFilter {
                    page: Page {
                        limit: 10,
                        ..Page::default()
                    },
                    ..AlertFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].status, "resolved");
            assert_eq!(listed[0].incident_id, Some(1));
        })
        .await;
    }
}
