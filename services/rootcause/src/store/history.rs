//! What the learning feature learns from: labelled past incidents (history), the resolutions
//! operators record, and their verdicts on rankings (feedback).
//!
//! A history row is keyed (`import:<source>:<record id>`, `incident:<id>`) so that importing a
//! file again or resolving an incident again replaces its row instead of adding a duplicate that
//! would count twice in training. Resolutions and feedback are the opposite: an audit trail,
//! appended and never rewritten.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{Backend, Store, StoreError, stored_as_text, with_pool};

/// What a history row says about its incident: everything but its evidence and the row's
/// bookkeeping. Shared by the row being stored and the row read back.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct HistoryFacts {
    /// Unique: `import:<source>:<record id>` or `incident:<id>`. A row with the same key is
    /// replaced, which makes re-importing and re-resolving idempotent.
    pub key: String,
    /// Where it came from: `import:sim`, `import:jsonl`, `resolution`, ...
    pub source: String,
    /// The system (topology) it happened in.
    pub system: String,
    /// When the incident started, unix seconds.
    pub started_at: i64,
    /// The service that was the root cause.
    pub root_cause: String,
    /// The fault class.
    pub fault_type: String,
    /// What was done about it.
    pub action: Option<String>,
    /// Whether that action worked.
    pub worked: Option<bool>,
    /// Seconds from the start to mitigation.
    pub time_to_mitigate_s: Option<f64>,
    /// Version of the evidence format (`rootcause_models::evidence`), so that rows of an older
    /// format can be told apart instead of being fed to a model that reads another.
    pub evidence_schema: i64,
}

/// One labelled past incident, ready for training: its evidence and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHistory {
    /// What it says about the incident.
    pub facts: HistoryFacts,
    /// The evidence as JSON (findings stripped).
    pub evidence: String,
}

/// A stored history row without its evidence (which can be large).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct StoredHistory {
    /// Row id: the order rows were first stored in (a replaced row keeps its id).
    pub id: i64,
    /// What it says about the incident.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub facts: HistoryFacts,
    /// When it was last stored (inserted or replaced), epoch ms.
    pub recorded_at: i64,
}

/// What [`Store::upsert_history`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryUpsert {
    /// Rows with a key not stored before.
    pub inserted: u64,
    /// Rows that replaced a stored row with their key (or an earlier row of the same call).
    pub replaced: u64,
}

/// Counts of the stored history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistorySummary {
    /// All rows.
    pub total: u64,
    /// Rows per source.
    pub by_source: BTreeMap<String, u64>,
    /// Rows of another evidence schema than the one asked about: training skips them.
    pub stale: u64,
}

/// A resolution an operator records for an incident.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct NewResolution {
    /// The incident.
    pub incident_id: i64,
    /// The service that was the root cause (or a marker for an external/unknown cause).
    pub root_cause: String,
    /// The fault class.
    pub fault_type: String,
    /// What was done.
    pub action: Option<String>,
    /// Whether it worked.
    pub worked: Option<bool>,
    /// Seconds from the start to mitigation.
    pub time_to_mitigate_s: Option<f64>,
    /// Free text.
    pub notes: String,
    /// Who resolved it.
    pub resolved_by: String,
}

/// A stored resolution.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct StoredResolution {
    /// Row id.
    pub id: i64,
    /// What was recorded.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub resolution: NewResolution,
    /// Epoch ms.
    pub recorded_at: i64,
}

/// An operator's verdict on one hypothesis of a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The service is (likely) the root cause.
    Confirm,
    /// The service is not the root cause.
    Reject,
}

stored_as_text!(Verdict, "feedback verdict", {
    Confirm => "confirm",
    Reject => "reject",
});

/// Feedback to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeedback {
    /// The incident.
    pub incident_id: i64,
    /// The service the verdict is about.
    pub service: String,
    /// Confirm or reject.
    pub verdict: Verdict,
    /// The model that produced the ranking (its version).
    pub model: String,
    /// Free text.
    pub note: String,
    /// Who gave it.
    pub by: String,
}

/// Stored feedback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFeedback {
    /// Row id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The service.
    pub service: String,
    /// Confirm or reject.
    pub verdict: Verdict,
    /// The model version.
    pub model: String,
    /// Free text.
    pub note: String,
    /// Who gave it.
    pub by: String,
    /// Epoch ms.
    pub recorded_at: i64,
}

#[derive(FromRow)]
struct FeedbackRow {
    id: i64,
    incident_id: i64,
    service: String,
    verdict: String,
    model: String,
    note: String,
    // `BY` is a keyword in both dialects.
    given_by: String,
    recorded_at: i64,
}

impl TryFrom<FeedbackRow> for StoredFeedback {
    type Error = StoreError;

    fn try_from(row: FeedbackRow) -> Result<Self, StoreError> {
        Ok(StoredFeedback {
            id: row.id,
            incident_id: row.incident_id,
            service: row.service,
            verdict: Verdict::parse(&row.verdict)?,
            model: row.model,
            note: row.note,
            by: row.given_by,
            recorded_at: row.recorded_at,
        })
    }
}

#[derive(FromRow)]
struct TrainingRow {
    #[sqlx(flatten)]
    summary: StoredHistory,
    evidence: String,
}

const HISTORY_COLUMNS: &str = "id, key, source, system, started_at, root_cause, fault_type, \
     action, worked, time_to_mitigate_s, evidence_schema, recorded_at";

const RESOLUTION_COLUMNS: &str = "id, incident_id, root_cause, fault_type, action, worked, \
     time_to_mitigate_s, notes, resolved_by, recorded_at";

const FEEDBACK_COLUMNS: &str = "id, incident_id, service, verdict, model, note, given_by, \
     recorded_at";

/// Rows per history statement (12 parameters each). Small because SQLite finds each `$N`
/// parameter by a linear search while preparing, so preparing costs the square of the
/// parameters: 10,000 rows took 12 s in chunks of 2,000 and 0.8 s in chunks of 64 (debug
/// build), while PostgreSQL barely notices the size.
const HISTORY_CHUNK: usize = 64;

/// The statement that opens a transaction that will write. SQLite's default (deferred) takes
/// the write lock at the first write, and a transaction that read first then fails at once
/// with SQLITE_BUSY if another connection wrote meanwhile; `IMMEDIATE` takes the lock up front,
/// where the busy timeout applies.
pub(super) fn begin_write(store: &Store) -> &'static str {
    match store.backend {
        Backend::Sqlite(_) => "BEGIN IMMEDIATE",
        Backend::Postgres(_) => "BEGIN",
    }
}

/// Opens a write transaction on `$pool` (see [`begin_write`]). On PostgreSQL it also locks
/// `$table` against other writers (readers are not blocked) for the transaction, so that a
/// check followed by a write cannot interleave with another process's; SQLite's `IMMEDIATE`
/// already serializes writers.
macro_rules! begin_locked {
    ($store:expr, $pool:ident, $table:literal) => {{
        let mut tx = $pool
            .begin_with($crate::store::history::begin_write($store))
            .await?;
        if matches!($store.backend, $crate::store::Backend::Postgres(_)) {
            sqlx::query(concat!(
                "LOCK TABLE ",
                $table,
                " IN SHARE ROW EXCLUSIVE MODE"
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx
    }};
}
pub(super) use begin_locked;

/// `($1, ..., $width), ($width+1, ...), ...` for `rows` rows.
fn placeholders(rows: usize, width: usize) -> String {
    let mut text = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..width {
            if column > 0 {
                text.push_str(", ");
            }
            text.push('$');
            text.push_str(&(row * width + column + 1).to_string());
        }
        text.push(')');
    }
    text
}

/// The upsert of `rows` history rows (distinct keys).
fn upsert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO history (key, source, system, started_at, root_cause, fault_type, action, \
         worked, time_to_mitigate_s, evidence_schema, evidence, recorded_at) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET source = excluded.source, system = excluded.system, \
         started_at = excluded.started_at, root_cause = excluded.root_cause, \
         fault_type = excluded.fault_type, action = excluded.action, worked = excluded.worked, \
         time_to_mitigate_s = excluded.time_to_mitigate_s, \
         evidence_schema = excluded.evidence_schema, evidence = excluded.evidence, \
         recorded_at = excluded.recorded_at",
        placeholders(rows, 12)
    )
}

/// How many of `rows` keys are already stored.
fn existing_sql(rows: usize) -> String {
    let keys = (1..=rows)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT COUNT(*) FROM history WHERE key IN ({keys})")
}

/// Upserts `$rows` (distinct keys, at most [`HISTORY_CHUNK`]) inside the transaction `$tx`
/// (`$sqlite`: of that engine); evaluates to how many keys were stored before. A macro rather
/// than a function because the transaction's type differs per engine (the body is compiled
/// once for each, like [`with_pool`]).
macro_rules! upsert_history_chunk {
    ($tx:ident, $rows:expr, $now_ms:expr, $sqlite:expr) => {{
        let rows: &[&NewHistory] = $rows;
        let existing_sql = existing_sql(rows.len());
        // SQLite: the usual shapes (a full chunk, one row) are worth a cached prepared
        // statement, which saves the preparing (0.8 s to 0.5 s for 10,000 rows); a batch's
        // remainder would only evict useful ones. PostgreSQL: a named statement of hundreds of
        // parameters made the same 10,000 rows 4 times slower (0.6 s to 2.3 s), so never.
        let usual = $sqlite && matches!(rows.len(), 1 | HISTORY_CHUNK);
        let mut existing =
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(existing_sql)).persistent(usual);
        for row in rows {
            existing = existing.bind(&row.facts.key);
        }
        let existing = existing.fetch_one(&mut *$tx).await?;
        let mut upsert = sqlx::query(sqlx::AssertSqlSafe(upsert_sql(rows.len()))).persistent(usual);
        for row in rows {
            let facts = &row.facts;
            upsert = upsert
                .bind(&facts.key)
                .bind(&facts.source)
                .bind(&facts.system)
                .bind(facts.started_at)
                .bind(&facts.root_cause)
                .bind(&facts.fault_type)
                .bind(&facts.action)
                .bind(facts.worked)
                .bind(facts.time_to_mitigate_s)
                .bind(facts.evidence_schema)
                .bind(&row.evidence)
                .bind($now_ms);
        }
        upsert.execute(&mut *$tx).await?;
        u64::try_from(existing).unwrap_or(0)
    }};
}

/// `rows` with one row per key: the last row of a key, at the place of its first.
fn distinct_keys(rows: &[NewHistory]) -> Vec<&NewHistory> {
    let mut place = HashMap::with_capacity(rows.len());
    let mut distinct: Vec<&NewHistory> = Vec::with_capacity(rows.len());
    for row in rows {
        match place.get(row.facts.key.as_str()) {
            Some(&index) => distinct[index] = row,
            None => {
                place.insert(row.facts.key.as_str(), distinct.len());
                distinct.push(row);
            }
        }
    }
    distinct
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// Inserts rows, replacing stored rows with the same key (a replaced row keeps its id), in
    /// one transaction. Of several rows with one key in `rows`, the last wins. Returns how many
    /// were new and how many replaced a row.
    pub async fn upsert_history(
        &self,
        rows: &[NewHistory],
        now_ms: i64,
    ) -> Result<HistoryUpsert, StoreError> {
        if rows.is_empty() {
            return Ok(HistoryUpsert::default());
        }
        let distinct = distinct_keys(rows);
        // The lock makes the count of existing keys exact: no other writer can add one
        // between the count and the upsert.
        let sqlite = matches!(self.backend, Backend::Sqlite(_));
        let existing = with_pool!(self, pool => {
            let mut tx = begin_locked!(self, pool, "history");
            let mut existing = 0;
            for chunk in distinct.chunks(HISTORY_CHUNK) {
                existing += upsert_history_chunk!(tx, chunk, now_ms, sqlite);
            }
            tx.commit().await?;
            existing
        });
        let inserted = distinct.len() as u64 - existing;
        Ok(HistoryUpsert {
            inserted,
            replaced: rows.len() as u64 - inserted,
        })
    }

    /// Rows for training: those of evidence schema `schema`, with their evidence, in id order.
    /// One query, read in one pass: 10,000 rows with 2 kB of evidence each take well under a
    /// second.
    pub async fn history_for_training(
        &self,
        schema: i64,
    ) -> Result<Vec<(StoredHistory, String)>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, TrainingRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {HISTORY_COLUMNS}, evidence FROM history WHERE evidence_schema = $1 \
                 ORDER BY id"
            )))
            .bind(schema)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|row| (row.summary, row.evidence))
            .collect())
    }

    /// Counts: all rows, rows per source, and rows of another evidence schema than `schema`
    /// (stale: training cannot use them until they are imported again).
    pub async fn history_summary(&self, schema: i64) -> Result<HistorySummary, StoreError> {
        let groups = with_pool!(self, pool => {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT source, COUNT(*), \
                 SUM(CASE WHEN evidence_schema = $1 THEN 0 ELSE 1 END) \
                 FROM history GROUP BY source",
            )
            .bind(schema)
            .fetch_all(pool)
            .await?
        });
        let mut summary = HistorySummary::default();
        for (source, rows, stale) in groups {
            summary.total += count(rows);
            summary.stale += count(stale);
            summary.by_source.insert(source, count(rows));
        }
        Ok(summary)
    }

    /// At most `limit` rows, newest (highest id) first, below id `before` when given; without
    /// evidence.
    pub async fn list_history(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<StoredHistory>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredHistory>(sqlx::AssertSqlSafe(format!(
                "SELECT {HISTORY_COLUMNS} FROM history WHERE id < $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The facts of at most `limit` rows that started at or after `since` (unix seconds),
    /// latest start first; without evidence. What risks read of the fault history.
    pub async fn history_since(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Vec<HistoryFacts>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, HistoryFacts>(
                "SELECT key, source, system, started_at, root_cause, fault_type, action, worked, \
                 time_to_mitigate_s, evidence_schema FROM history WHERE started_at >= $1 \
                 ORDER BY started_at DESC LIMIT $2",
            )
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Records a resolution and, in the same transaction, the history row it makes (`None`:
    /// the incident's evidence was unavailable or the cause is external or unknown, so there is
    /// nothing to learn from). A later resolution of the same incident is a new row (the audit
    /// trail); the latest is the incident's resolution, and its history row (same key)
    /// replaces the earlier one.
    pub async fn insert_resolution(
        &self,
        resolution: &NewResolution,
        history: Option<&NewHistory>,
        now_ms: i64,
    ) -> Result<StoredResolution, StoreError> {
        let sqlite = matches!(self.backend, Backend::Sqlite(_));
        let stored = with_pool!(self, pool => {
            let mut tx = begin_locked!(self, pool, "history");
            let stored = sqlx::query_as::<_, StoredResolution>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO resolutions (incident_id, root_cause, fault_type, action, worked, \
                 time_to_mitigate_s, notes, resolved_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RESOLUTION_COLUMNS}"
            )))
            .bind(resolution.incident_id)
            .bind(&resolution.root_cause)
            .bind(&resolution.fault_type)
            .bind(&resolution.action)
            .bind(resolution.worked)
            .bind(resolution.time_to_mitigate_s)
            .bind(&resolution.notes)
            .bind(&resolution.resolved_by)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(history) = history {
                upsert_history_chunk!(tx, &[history], now_ms, sqlite);
            }
            tx.commit().await?;
            stored
        });
        Ok(stored)
    }

    /// Every resolution recorded for `incident_id`, oldest first (the last is the current one).
    pub async fn resolutions(&self, incident_id: i64) -> Result<Vec<StoredResolution>, StoreError> {
        self.select_where(
            "resolutions",
            RESOLUTION_COLUMNS,
            "incident_id",
            incident_id,
        )
        .await
    }

    /// Stores one verdict (never rewritten: a changed mind is a new row).
    pub async fn insert_feedback(
        &self,
        feedback: &NewFeedback,
        now_ms: i64,
    ) -> Result<StoredFeedback, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, FeedbackRow>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO feedback (incident_id, service, verdict, model, note, given_by, \
                 recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {FEEDBACK_COLUMNS}"
            )))
            .bind(feedback.incident_id)
            .bind(&feedback.service)
            .bind(feedback.verdict.as_str())
            .bind(&feedback.model)
            .bind(&feedback.note)
            .bind(&feedback.by)
            .bind(now_ms)
            .fetch_one(pool)
            .await?
        });
        row.try_into()
    }

    /// Every verdict given on `incident_id`, oldest first.
    pub async fn feedback(&self, incident_id: i64) -> Result<Vec<StoredFeedback>, StoreError> {
        let rows = self
            .select_where::<FeedbackRow>("feedback", FEEDBACK_COLUMNS, "incident_id", incident_id)
            .await?;
        rows.into_iter().map(StoredFeedback::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_both_engines;

    fn history(key: &str, source: &str, schema: i64, root_cause: &str) -> NewHistory {
        NewHistory {
            facts: HistoryFacts {
                key: key.to_owned(),
                source: source.to_owned(),
                system: "online-boutique".to_owned(),
                started_at: 1_700_000_000,
                root_cause: root_cause.to_owned(),
                fault_type: "cpu".to_owned(),
                action: Some("rollback".to_owned()),
                worked: Some(true),
                time_to_mitigate_s: Some(420.5),
                evidence_schema: schema,
            },
            evidence: format!("{{\"root\":\"{root_cause}\"}}"),
        }
    }

    fn resolution(incident_id: i64, root_cause: &str) -> NewResolution {
        NewResolution {
            incident_id,
            root_cause: root_cause.to_owned(),
            fault_type: "memory".to_owned(),
            action: None,
            worked: None,
            time_to_mitigate_s: None,
            notes: "restarted".to_owned(),
            resolved_by: "alice".to_owned(),
        }
    }

    #[test]
    fn placeholders_number_rows_by_width() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 1), "($1)");
    }

    #[tokio::test]
    async fn upsert_replaces_by_key_and_counts() {
        on_both_engines(|store| async move {
            let first = store
                .upsert_history(
                    &[
                        history("import:sim:1", "import:sim", 1, "cart"),
                        history("import:sim:2", "import:sim", 1, "db"),
                    ],
                    1000,
                )
                .await
                .unwrap();
            assert_eq!(
                first,
                HistoryUpsert {
                    inserted: 2,
                    replaced: 0
                }
            );
            // One stored key again, one new, and one key twice in the batch (the last wins).
            let mut changed = history("import:sim:2", "import:sim", 1, "frontend");
            changed.facts.worked = None;
            changed.facts.action = None;
            changed.facts.time_to_mitigate_s = None;
            let second = store
                .upsert_history(
                    &[
                        changed,
                        history("import:jsonl:a", "import:jsonl", 1, "x"),
                        history("import:jsonl:a", "import:jsonl", 1, "y"),
                    ],
                    2000,
                )
                .await
                .unwrap();
            assert_eq!(
                second,
                HistoryUpsert {
                    inserted: 1,
                    replaced: 2
                }
            );
            assert_eq!(
                store.upsert_history(&[], 3000).await.unwrap(),
                HistoryUpsert::default()
            );

            let listed = store.list_history(10, None).await.unwrap();
            assert_eq!(
                listed
                    .iter()
                    .map(|h| h.facts.key.as_str())
                    .collect::<Vec<_>>(),
                ["import:jsonl:a", "import:sim:2", "import:sim:1"],
                "newest first; a replaced row keeps its id"
            );
            assert_eq!(listed[0].facts.root_cause, "y");
            let replaced = &listed[1];
            assert_eq!(replaced.facts.root_cause, "frontend");
            assert_eq!(replaced.facts.worked, None);
            assert_eq!(replaced.facts.action, None);
            assert_eq!(replaced.facts.time_to_mitigate_s, None);
            assert_eq!(replaced.recorded_at, 2000);
            assert_eq!(listed[2].facts.worked, Some(true));
            assert_eq!(listed[2].facts.time_to_mitigate_s, Some(420.5));
            assert_eq!(listed[2].recorded_at, 1000);

            let page = store.list_history(1, Some(listed[1].id)).await.unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].facts.key, "import:sim:1");
            assert!(
                store
                    .list_history(10, Some(listed[2].id))
                    .await
                    .unwrap()
                    .is_empty()
            );
        })
        .await;
    }

    #[tokio::test]
    async fn training_reads_one_schema_in_id_order_and_the_summary_counts_the_rest() {
        on_both_engines(|store| async move {
            let rows = (0..1200)
                .map(|i| {
                    let source = if i % 3 == 0 {
                        "import:jsonl"
                    } else {
                        "import:sim"
                    };
                    let schema = if i % 4 == 0 { 1 } else { 2 };
                    history(&format!("import:x:{i}"), source, schema, &format!("s{i}"))
                })
                .collect::<Vec<_>>();
            let counts = store.upsert_history(&rows, 1000).await.unwrap();
            assert_eq!(counts.inserted, 1200, "spans several statements");

            let training = store.history_for_training(2).await.unwrap();
            assert_eq!(training.len(), 900);
            assert!(training.windows(2).all(|w| w[0].0.id < w[1].0.id));
            let expected = (0..1200)
                .filter(|i| i % 4 != 0)
                .map(|i| format!("s{i}"))
                .collect::<Vec<_>>();
            assert_eq!(
                training
                    .iter()
                    .map(|(h, _)| h.facts.root_cause.clone())
                    .collect::<Vec<_>>(),
                expected,
                "in the order stored"
            );
            assert_eq!(training[0].1, "{\"root\":\"s1\"}");
            assert!(training.iter().all(|(h, _)| h.facts.evidence_schema == 2));
            assert!(store.history_for_training(3).await.unwrap().is_empty());

            let summary = store.history_summary(2).await.unwrap();
            assert_eq!(summary.total, 1200);
            assert_eq!(summary.stale, 300);
            assert_eq!(summary.by_source["import:jsonl"], 400);
            assert_eq!(summary.by_source["import:sim"], 800);
            assert_eq!(summary.by_source.len(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn ten_thousand_rows_store_and_read_back_whole() {
        // Speed is `rootcause bench training`'s business; this checks that a large import
        // (many statements of many rows) keeps every row, in order.
        on_both_engines(|store| async move {
            let evidence = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
            let rows = (0..10_000)
                .map(|i| NewHistory {
                    evidence: evidence.clone(),
                    ..history(&format!("import:sim:{i}"), "import:sim", 1, "cart")
                })
                .collect::<Vec<_>>();
            let upsert = store.upsert_history(&rows, 1).await.unwrap();
            assert_eq!(upsert.inserted, 10_000);
            let training = store.history_for_training(1).await.unwrap();
            assert_eq!(training.len(), 10_000);
            assert_eq!(training[0].0.facts.key, "import:sim:0");
            assert_eq!(training[9_999].0.facts.key, "import:sim:9999");
            assert!(training.iter().all(|(_, e)| *e == evidence));
        })
        .await;
    }

    #[tokio::test]
    async fn a_resolution_and_its_history_row_commit_together() {
        on_both_engines(|store| async move {
            let row = history("incident:7", "resolution", 1, "cart");
            let first = store
                .insert_resolution(&resolution(7, "cart"), Some(&row), 1000)
                .await
                .unwrap();
            assert_eq!(first.resolution.incident_id, 7);
            assert_eq!(first.resolution.root_cause, "cart");
            assert_eq!(first.resolution.notes, "restarted");
            assert_eq!(first.recorded_at, 1000);

            // Resolved again with another cause: a second resolution, the same history row.
            let again = history("incident:7", "resolution", 1, "db");
            let second = store
                .insert_resolution(&resolution(7, "db"), Some(&again), 2000)
                .await
                .unwrap();
            assert!(second.id > first.id);
            // No evidence: a resolution without a history row.
            store
                .insert_resolution(&resolution(8, "external"), None, 3000)
                .await
                .unwrap();

            let resolutions = store.resolutions(7).await.unwrap();
            assert_eq!(resolutions, [first, second]);
            assert_eq!(store.resolutions(8).await.unwrap().len(), 1);
            assert!(store.resolutions(9).await.unwrap().is_empty());
            let stored = store.list_history(10, None).await.unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].facts.key, "incident:7");
            assert_eq!(stored[0].facts.root_cause, "db");

            // A history row the database refuses (an empty key) rolls the resolution back.
            let refused = history("", "resolution", 1, "cart");
            let failed = store
                .insert_resolution(&resolution(9, "cart"), Some(&refused), 4000)
                .await;
            assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
            assert!(store.resolutions(9).await.unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn feedback_round_trips() {
        on_both_engines(|store| async move {
            let given = NewFeedback {
                incident_id: 3,
                service: "cart".to_owned(),
                verdict: Verdict::Reject,
                model: "2026-11-25.1".to_owned(),
                note: "it was the database".to_owned(),
                by: "bob".to_owned(),
            };
            let stored = store.insert_feedback(&given, 5000).await.unwrap();
            assert_eq!(stored.verdict, Verdict::Reject);
            assert_eq!(stored.by, "bob");
            assert_eq!(stored.recorded_at, 5000);
            let confirm = store
                .insert_feedback(
                    &NewFeedback {
                        service: "db".to_owned(),
                        verdict: Verdict::Confirm,
                        ..given.clone()
                    },
                    6000,
                )
                .await
                .unwrap();
            assert_eq!(store.feedback(3).await.unwrap(), [stored, confirm]);
            assert!(store.feedback(4).await.unwrap().is_empty());
            assert_eq!(
                serde_json::to_value(Verdict::Confirm).unwrap(),
                serde_json::json!("confirm")
            );
        })
        .await;
    }
}
