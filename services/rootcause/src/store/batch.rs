//! The ingest writer's group commit: a batch of alert rows, incidents, their services and
//! timeline entries encoded once and written in one transaction.
//!
//! A batch goes to the database as a few statements whatever its size: the rows travel as one
//! JSON document that SQLite (`json_each`) or PostgreSQL (`jsonb_to_recordset`) expands into
//! rows, so a commit of ten thousand alerts costs a handful of round trips.

use std::sync::LazyLock;

use rootcause_correlation::{AlertKey, Change, IncidentSnapshot, Millis};
use serde::Serialize;

use super::{Backend, Engine, Store, StoreError, to_i64, with_pool};

/// An alert occurrence as the writer stores it. It travels to the database inside one JSON
/// document per batch, each row as an array in column order (`ROW_COLUMNS`): arrays are
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
pub(super) use incident_columns;

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

fn encode_error(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot encode a batch: {error}"))
}
