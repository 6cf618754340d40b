//! Alerts and incidents: the ingest writer's group commit, the engine's state at start-up, and
//! the read queries of the API.
//!
//! A batch goes to the database as a few statements whatever its size: the rows travel as one
//! JSON document that SQLite (`json_each`) or PostgreSQL (`jsonb_to_recordset`) expands into
//! rows, so a commit of ten thousand alerts costs a handful of round trips.

use std::sync::LazyLock;

use rootcause_correlation::engine::RestoredAlert;
use rootcause_correlation::{
    AlertKey, AlertStatus, Change, Fingerprint, IncidentKind, IncidentSnapshot, IncidentStatus,
    Millis,
};
use serde::Serialize;
use sqlx::FromRow;

use super::{Backend, Engine, Store, StoreError, with_pool};

/// An alert occurrence as the writer stores it. It travels to the database inside one JSON
/// document per batch, each row as an array in column order (see [`ROW_COLUMNS`]): arrays are
/// cheaper to write and to read back than objects.
#[derive(Debug, Clone)]
pub struct AlertWrite {
    /// Fingerprint bits.
    pub fingerprint: i64,
    /// Start, epoch ms.
    pub starts_at: Millis,
    /// End or expiry, epoch ms.
    pub ends_at: Option<Millis>,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Mapped service.
    pub service: Option<String>,
    /// Incident.
    pub incident: Option<i64>,
    /// Which endpoint it came through.
    pub source: &'static str,
    /// The `severity` label.
    pub severity: Option<String>,
    /// Signal kind.
    pub signal: &'static str,
    /// Labels, as a JSON object text.
    pub labels: String,
    /// Annotations, as a JSON object text.
    pub annotations: String,
    /// Link back to the alert's source.
    pub generator_url: Option<String>,
}

/// The columns an [`AlertWrite`] array holds, in order.
const ROW_COLUMNS: &str = "fingerprint, starts_at, ends_at, status, service, incident_id, \
     source, severity, signal, labels, annotations, generator_url";

impl Serialize for AlertWrite {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut row = serializer.serialize_tuple(12)?;
        row.serialize_element(&self.fingerprint)?;
        row.serialize_element(&self.starts_at)?;
        row.serialize_element(&self.ends_at)?;
        row.serialize_element(self.status)?;
        row.serialize_element(&self.service)?;
        row.serialize_element(&self.incident)?;
        row.serialize_element(self.source)?;
        row.serialize_element(&self.severity)?;
        row.serialize_element(self.signal)?;
        row.serialize_element(&self.labels)?;
        row.serialize_element(&self.annotations)?;
        row.serialize_element(&self.generator_url)?;
        row.end()
    }
}

/// One group commit: alert rows and what the engine changed because of them.
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Occurrences to insert or update (one row per key).
    pub alerts: Vec<AlertWrite>,
    /// Incidents, timeline entries, merges and expiries.
    pub change: Change,
    /// When the batch was received.
    pub now: Millis,
}

/// A batch encoded for the database. The ingest writer encodes the next batch while the
/// previous one commits, so the database waits for no encoding.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    alerts: AlertRows,
    incidents: Option<String>,
    services: Option<String>,
    events: Option<String>,
    expired: Vec<(AlertKey, Millis)>,
    merges: Vec<(u64, u64)>,
    now: Millis,
}

/// Alert rows in the form the engine's upsert reads.
#[derive(Debug, Default)]
enum AlertRows {
    /// No rows.
    #[default]
    None,
    /// SQLite: one JSON document of row arrays, read with `jsonb_each`.
    Json(String),
    /// PostgreSQL: one array per column, read with `UNNEST`.
    Columns(Box<AlertColumns>),
}

/// Alert rows as column arrays.
#[derive(Debug, Default)]
struct AlertColumns {
    fingerprint: Vec<i64>,
    starts_at: Vec<i64>,
    ends_at: Vec<Option<i64>>,
    status: Vec<&'static str>,
    service: Vec<Option<String>>,
    incident: Vec<Option<i64>>,
    source: Vec<&'static str>,
    severity: Vec<Option<String>>,
    signal: Vec<&'static str>,
    labels: Vec<String>,
    annotations: Vec<String>,
    generator_url: Vec<Option<String>>,
}

impl From<Vec<AlertWrite>> for AlertColumns {
    fn from(rows: Vec<AlertWrite>) -> Self {
        let mut columns = AlertColumns::default();
        for row in rows {
            columns.fingerprint.push(row.fingerprint);
            columns.starts_at.push(row.starts_at);
            columns.ends_at.push(row.ends_at);
            columns.status.push(row.status);
            columns.service.push(row.service);
            columns.incident.push(row.incident);
            columns.source.push(row.source);
            columns.severity.push(row.severity);
            columns.signal.push(row.signal);
            columns.labels.push(row.labels);
            columns.annotations.push(row.annotations);
            columns.generator_url.push(row.generator_url);
        }
        columns
    }
}

impl EncodedBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        matches!(self.alerts, AlertRows::None)
            && self.incidents.is_none()
            && self.events.is_none()
            && self.expired.is_empty()
            && self.merges.is_empty()
    }
}

impl IngestBatch {
    /// The batch as the JSON documents the store's statements expand into rows.
    /// The batch in the form `engine`'s statements read.
    pub fn encode(self, engine: Engine) -> Result<EncodedBatch, StoreError> {
        let alerts = if self.alerts.is_empty() {
            AlertRows::None
        } else {
            match engine {
                Engine::Sqlite => {
                    AlertRows::Json(serde_json::to_string(&self.alerts).map_err(encode_error)?)
                }
                Engine::Postgres => AlertRows::Columns(Box::new(AlertColumns::from(self.alerts))),
            }
        };
        let incidents = self
            .change
            .incidents
            .iter()
            .map(incident_write)
            .collect::<Result<Vec<_>, _>>()?;
        let services = incidents
            .iter()
            .flat_map(|i| {
                i.services
                    .iter()
                    .map(move |(s, _)| ServiceWrite { i: i.id, s })
            })
            .collect::<Vec<_>>();
        let events = self
            .change
            .timeline
            .iter()
            .map(|entry| {
                let detail = serde_json::to_value(&entry.event).map_err(encode_error)?;
                let kind = detail
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("unknown")
                    .to_owned();
                Ok(EventWrite {
                    i: to_i64(entry.incident),
                    at: entry.at,
                    k: kind,
                    d: detail.to_string(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let json = |empty: bool, text: Result<String, serde_json::Error>| {
            if empty {
                Ok(None)
            } else {
                text.map(Some).map_err(encode_error)
            }
        };
        Ok(EncodedBatch {
            alerts,
            incidents: json(incidents.is_empty(), serde_json::to_string(&incidents))?,
            services: json(services.is_empty(), serde_json::to_string(&services))?,
            events: json(events.is_empty(), serde_json::to_string(&events))?,
            expired: self.change.expired,
            merges: self.change.merges,
            now: self.now,
        })
    }
}

#[derive(Serialize)]
struct IncidentWrite<'a> {
    id: i64,
    k: &'static str,
    st: &'static str,
    o: Millis,
    fa: Millis,
    la: Millis,
    q: Option<Millis>,
    r: Option<Millis>,
    m: Option<i64>,
    sv: String,
    g: String,
    ac: i64,
    fc: i64,
    tv: Option<i64>,
    #[serde(skip)]
    services: &'a [(String, Millis)],
}

#[derive(Serialize)]
struct ServiceWrite<'a> {
    i: i64,
    s: &'a str,
}

#[derive(Serialize)]
struct EventWrite {
    i: i64,
    at: Millis,
    k: String,
    d: String,
}

/// What a repeat delivery may change: only a firing occurrence changes (its end, its status to
/// resolved), so a late "firing" never undoes a resolution.
const ON_ALERT_CONFLICT: &str = "ON CONFLICT (starts_at, fingerprint) DO UPDATE SET \
    status = excluded.status, ends_at = excluded.ends_at, \
    incident_id = COALESCE(excluded.incident_id, alerts.incident_id), updated_at = excluded.updated_at \
    WHERE alerts.status = 'firing'";

static SQLITE_UPSERT_ALERTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO alerts ({ROW_COLUMNS}, received_at, updated_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
                value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, $2, $2 \
         FROM jsonb_each($1) WHERE true {ON_ALERT_CONFLICT}"
    )
});

static POSTGRES_UPSERT_ALERTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO alerts ({ROW_COLUMNS}, received_at, updated_at) \
         SELECT f, s, e, st, sv, i, src, sev, sig, l, a, g, $13, $13 \
         FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], \
                     $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], \
                     $12::TEXT[]) AS x(f, s, e, st, sv, i, src, sev, sig, l, a, g) \
         {ON_ALERT_CONFLICT}"
    )
});

/// The columns of `incidents`, in the order both upserts write them.
macro_rules! incident_columns {
    () => {
        "id, kind, status, opened_at, first_activity, last_activity, quiet_since, resolved_at, \
         merged_into, services, label_groups, alert_count, firing_count, topology_version, \
         updated_at"
    };
}

/// An incident row is replaced whole: the engine's snapshot is the truth.
macro_rules! incident_on_conflict {
    () => {
        "ON CONFLICT (id) DO UPDATE SET \
         kind = excluded.kind, status = excluded.status, opened_at = excluded.opened_at, \
         first_activity = excluded.first_activity, last_activity = excluded.last_activity, \
         quiet_since = excluded.quiet_since, resolved_at = excluded.resolved_at, \
         merged_into = excluded.merged_into, services = excluded.services, \
         label_groups = excluded.label_groups, alert_count = excluded.alert_count, \
         firing_count = excluded.firing_count, topology_version = excluded.topology_version, \
         updated_at = excluded.updated_at"
    };
}

const SQLITE_UPSERT_INCIDENTS: &str = concat!(
    "INSERT INTO incidents (",
    incident_columns!(),
    ") SELECT json_extract(value, '$.id'), json_extract(value, '$.k'), \
     json_extract(value, '$.st'), json_extract(value, '$.o'), json_extract(value, '$.fa'), \
     json_extract(value, '$.la'), json_extract(value, '$.q'), json_extract(value, '$.r'), \
     json_extract(value, '$.m'), json_extract(value, '$.sv'), json_extract(value, '$.g'), \
     json_extract(value, '$.ac'), json_extract(value, '$.fc'), json_extract(value, '$.tv'), $2 \
     FROM json_each($1) WHERE true ",
    incident_on_conflict!()
);

const POSTGRES_UPSERT_INCIDENTS: &str = concat!(
    "INSERT INTO incidents (",
    incident_columns!(),
    ") SELECT x.id, x.k, x.st, x.o, x.fa, x.la, x.q, x.r, x.m, x.sv, x.g, x.ac, x.fc, x.tv, $2 \
     FROM jsonb_to_recordset($1::jsonb) AS x(id BIGINT, k TEXT, st TEXT, o BIGINT, fa BIGINT, \
     la BIGINT, q BIGINT, r BIGINT, m BIGINT, sv TEXT, g TEXT, ac BIGINT, fc BIGINT, tv BIGINT) ",
    incident_on_conflict!()
);

const SQLITE_INSERT_SERVICES: &str = "\
INSERT INTO incident_services (incident_id, service) \
SELECT json_extract(value, '$.i'), json_extract(value, '$.s') FROM json_each($1) WHERE true \
ON CONFLICT DO NOTHING";

const POSTGRES_INSERT_SERVICES: &str = "\
INSERT INTO incident_services (incident_id, service) \
SELECT x.i, x.s FROM jsonb_to_recordset($1::jsonb) AS x(i BIGINT, s TEXT) \
ON CONFLICT DO NOTHING";

const SQLITE_INSERT_EVENTS: &str = "\
INSERT INTO incident_events (incident_id, at, kind, detail) \
SELECT json_extract(value, '$.i'), json_extract(value, '$.at'), json_extract(value, '$.k'), \
       json_extract(value, '$.d') FROM json_each($1)";

const POSTGRES_INSERT_EVENTS: &str = "\
INSERT INTO incident_events (incident_id, at, kind, detail) \
SELECT x.i, x.at, x.k, x.d FROM jsonb_to_recordset($1::jsonb) AS x(i BIGINT, at BIGINT, k TEXT, d TEXT)";

const REASSIGN_ALERTS: &str =
    "UPDATE alerts SET incident_id = $1, updated_at = $3 WHERE incident_id = $2";

const EXPIRE_ALERT: &str = "UPDATE alerts SET status = 'resolved', ends_at = $3, updated_at = $4 \
     WHERE fingerprint = $1 AND starts_at = $2 AND status = 'firing'";

/// The statements of one group commit, per engine.
struct BatchSql {
    incidents: &'static str,
    services: &'static str,
    events: &'static str,
}

const SQLITE_BATCH: BatchSql = BatchSql {
    incidents: SQLITE_UPSERT_INCIDENTS,
    services: SQLITE_INSERT_SERVICES,
    events: SQLITE_INSERT_EVENTS,
};

const POSTGRES_BATCH: BatchSql = BatchSql {
    incidents: POSTGRES_UPSERT_INCIDENTS,
    services: POSTGRES_INSERT_SERVICES,
    events: POSTGRES_INSERT_EVENTS,
};

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
    /// Started at or after (ms).
    pub since: Option<i64>,
    /// Started at or before (ms).
    pub until: Option<i64>,
    /// Only ids below this (paging, newest first).
    pub before: Option<i64>,
    /// Most rows.
    pub limit: i64,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// `open`, `resolved` or `merged`.
    pub status: Option<String>,
    /// Touches this service.
    pub service: Option<String>,
    /// Active at or after (ms).
    pub since: Option<i64>,
    /// Active at or before (ms).
    pub until: Option<i64>,
    /// Only ids below this (paging, newest first).
    pub before: Option<i64>,
    /// Most rows.
    pub limit: i64,
}

const ALERT_COLUMNS: &str = "id, fingerprint, status, starts_at, ends_at, service, incident_id, \
     source, severity, signal, labels, annotations, generator_url, received_at, updated_at";

const INCIDENT_COLUMNS: &str = incident_columns!();

impl Store {
    /// Commits one encoded batch in one transaction: alert rows, incidents, their services,
    /// timeline entries, merges and expiries. Either all of it is stored or none.
    pub async fn write_ingest(&self, batch: &EncodedBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let sql = match self.backend {
            Backend::Sqlite(_) => &SQLITE_BATCH,
            Backend::Postgres(_) => &POSTGRES_BATCH,
        };
        let now = batch.now;
        // The alert rows go in with each engine's own bulk form (a JSONB document for SQLite,
        // column arrays for PostgreSQL); the rest of the batch is the same SQL on both.
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            (&mut *tx).upsert_alert_rows(&batch.alerts, now).await?;
            for (key, ended) in &batch.expired {
                sqlx::query(EXPIRE_ALERT)
                    .bind(key.fingerprint.to_i64())
                    .bind(key.starts_at)
                    .bind(ended)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            for (absorbed, survivor) in &batch.merges {
                sqlx::query(REASSIGN_ALERTS)
                    .bind(to_i64(*survivor))
                    .bind(to_i64(*absorbed))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(incidents) = &batch.incidents {
                sqlx::query(sql.incidents).bind(incidents).bind(now).execute(&mut *tx).await?;
            }
            if let Some(services) = &batch.services {
                sqlx::query(sql.services).bind(services).execute(&mut *tx).await?;
            }
            if let Some(events) = &batch.events {
                sqlx::query(sql.events).bind(events).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

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
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.before)
                .bind(filter.unmapped)
                .bind(filter.limit)
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
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.before)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Incident `id`, if stored.
    pub async fn incident(&self, id: i64) -> Result<Option<StoredIncident>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredIncident>(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await?
        });
        Ok(row)
    }

    /// The timeline of incident `id`, oldest first.
    pub async fn incident_timeline(&self, id: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredEvent>(
                "SELECT id, at, kind, detail FROM incident_events WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// A connection that writes a batch's alert rows in its engine's bulk form.
trait AlertRowsTarget {
    /// Upserts `rows`, received at `now`.
    async fn upsert_alert_rows(self, rows: &AlertRows, now: Millis) -> Result<(), StoreError>;
}

impl AlertRowsTarget for &mut sqlx::SqliteConnection {
    async fn upsert_alert_rows(self, rows: &AlertRows, now: Millis) -> Result<(), StoreError> {
        match rows {
            AlertRows::None => Ok(()),
            AlertRows::Json(rows) => {
                sqlx::query(sqlx::AssertSqlSafe(SQLITE_UPSERT_ALERTS.as_str()))
                    .bind(rows)
                    .bind(now)
                    .execute(self)
                    .await?;
                Ok(())
            }
            AlertRows::Columns(_) => Err(StoreError::Corrupt(
                "a batch encoded for PostgreSQL was given to SQLite".to_owned(),
            )),
        }
    }
}

impl AlertRowsTarget for &mut sqlx::PgConnection {
    async fn upsert_alert_rows(self, rows: &AlertRows, now: Millis) -> Result<(), StoreError> {
        match rows {
            AlertRows::None => Ok(()),
            AlertRows::Columns(columns) => {
                sqlx::query(sqlx::AssertSqlSafe(POSTGRES_UPSERT_ALERTS.as_str()))
                    .bind(&columns.fingerprint)
                    .bind(&columns.starts_at)
                    .bind(&columns.ends_at)
                    .bind(&columns.status)
                    .bind(&columns.service)
                    .bind(&columns.incident)
                    .bind(&columns.source)
                    .bind(&columns.severity)
                    .bind(&columns.signal)
                    .bind(&columns.labels)
                    .bind(&columns.annotations)
                    .bind(&columns.generator_url)
                    .bind(now)
                    .execute(self)
                    .await?;
                Ok(())
            }
            AlertRows::Json(_) => Err(StoreError::Corrupt(
                "a batch encoded for SQLite was given to PostgreSQL".to_owned(),
            )),
        }
    }
}

fn incident_write(snapshot: &IncidentSnapshot) -> Result<IncidentWrite<'_>, StoreError> {
    Ok(IncidentWrite {
        id: to_i64(snapshot.id),
        k: snapshot.kind.as_str(),
        st: snapshot.status.as_str(),
        o: snapshot.opened_at,
        fa: snapshot.first_activity,
        la: snapshot.last_activity,
        q: snapshot.quiet_since,
        r: snapshot.resolved_at,
        m: snapshot.merged_into.map(to_i64),
        sv: serde_json::to_string(&snapshot.services).map_err(encode_error)?,
        g: serde_json::to_string(&snapshot.groups).map_err(encode_error)?,
        ac: to_i64(snapshot.alert_count),
        fc: to_i64(snapshot.firing_count),
        tv: snapshot.topology_version,
        services: &snapshot.services,
    })
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

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn encode_error(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot encode a batch: {error}"))
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
                labels: format!("{{\"n\":\"{}\"}}", event.fingerprint),
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
                    limit: 10,
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
                    limit: 10,
                    ..IncidentFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(incidents.len(), 1);
            assert_eq!(incidents[0].firing_count, 2);
            assert!(!store.incident_timeline(1).await.unwrap().is_empty());

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
                    limit: 10,
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
