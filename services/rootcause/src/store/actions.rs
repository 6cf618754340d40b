//! Durable state of emergency actions: the runbook catalogues operators accepted, the audit log,
//! operators' decisions on proposed actions and the automation runs approvals start.
//!
//! Every change an operator or the automation makes is written together with its audit entry in
//! one transaction, so the log never misses a change nor records one that did not happen. The
//! log is append-only in the database itself (triggers refuse UPDATE and DELETE). An action is
//! approved at most once per incident (a partial unique index), and a run is stored before its
//! first attempt, so that a restarted service finds the runs it must carry on.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::history::{begin_locked, begin_write};
use super::{Store, StoreError, with_pool};

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// When it happened, epoch ms.
    pub at: i64,
    /// Who did it (an operator, or the service itself for automation).
    pub actor: String,
    /// What happened (`decision`, `run.retry`, `catalogue`, ...).
    pub kind: String,
    /// The incident it concerns.
    pub incident: Option<u64>,
    /// The action it concerns.
    pub action: Option<String>,
    /// The service it concerns.
    pub service: Option<String>,
    /// Anything else worth keeping, a JSON object.
    pub detail: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredAudit {
    /// Id: increasing in the order entries were appended.
    pub id: i64,
    /// When it happened, epoch ms.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// What happened.
    pub kind: String,
    /// The incident it concerns.
    pub incident: Option<u64>,
    /// The action it concerns.
    pub action: Option<String>,
    /// The service it concerns.
    pub service: Option<String>,
    /// Anything else worth keeping, a JSON object.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this incident.
    pub incident: Option<u64>,
    /// Only entries of this kind.
    pub kind: Option<String>,
    /// Only entries with a larger id (paging on).
    pub after: Option<i64>,
    /// At most this many (clamped to 1..=10,000).
    pub limit: i64,
}

/// What an operator decided about a proposed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Go ahead (at most once per incident and action).
    Approved,
    /// Do not.
    Rejected,
}

impl Decision {
    /// The text stored in the database (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Result<Decision, StoreError> {
        match text {
            "approved" => Ok(Decision::Approved),
            "rejected" => Ok(Decision::Rejected),
            other => Err(StoreError::Corrupt(format!("unknown decision {other:?}"))),
        }
    }
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    /// The incident the action was proposed for.
    pub incident: u64,
    /// The action (its runbook name).
    pub action: String,
    /// The service it acts on.
    pub service: Option<String>,
    /// Approved or rejected.
    pub decision: Decision,
    /// Who decided.
    pub actor: String,
    /// Why (free text).
    pub comment: String,
    /// When, epoch ms.
    pub at: i64,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredDecision {
    /// Id.
    pub id: i64,
    /// The incident.
    pub incident: u64,
    /// The action.
    pub action: String,
    /// The service it acts on.
    pub service: Option<String>,
    /// Approved or rejected.
    pub decision: Decision,
    /// Who decided.
    pub actor: String,
    /// Why.
    pub comment: String,
    /// When, epoch ms.
    pub at: i64,
}

/// The automation run an approval starts: one webhook call, retried.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Where to send it.
    pub url: String,
    /// The JSON body to send.
    pub payload: String,
    /// How many attempts at most (at least 1: the database refuses 0).
    pub max_attempts: u32,
    /// How long one attempt may take, ms.
    pub timeout_ms: u64,
}

/// Where an automation run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// An attempt is under way (or was, when a restart interrupted it).
    Running,
    /// Done: the call succeeded.
    Succeeded,
    /// Done: the call failed for good.
    Failed,
}

impl RunStatus {
    /// The text stored in the database (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    /// Whether the run has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }

    fn parse(text: &str) -> Result<RunStatus, StoreError> {
        match text {
            "pending" => Ok(RunStatus::Pending),
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            other => Err(StoreError::Corrupt(format!("unknown run status {other:?}"))),
        }
    }
}

/// A stored automation run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredRun {
    /// Id.
    pub id: i64,
    /// The approval that started it.
    pub decision: i64,
    /// The incident.
    pub incident: u64,
    /// The action.
    pub action: String,
    /// Where it is sent.
    pub url: String,
    /// The JSON body sent. Not serialized: it is for the webhook, and may carry what the
    /// webhook needs but API readers should not see.
    #[serde(skip_serializing)]
    pub payload: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// How long one attempt may take, ms.
    pub timeout_ms: u64,
    /// The HTTP status of the last answer, if one came.
    pub response_status: Option<u16>,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// When it ended, epoch ms.
    pub finished_at: Option<i64>,
}

/// A stored runbook catalogue version.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct StoredCatalogue {
    /// Id: the newest is the current catalogue.
    pub id: i64,
    /// The catalogue as accepted.
    pub yaml: String,
    /// Its digest.
    pub digest: String,
    /// Who saved it.
    pub actor: String,
    /// Epoch ms.
    pub created_at: i64,
}

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    kind: String,
    incident: Option<i64>,
    action: Option<String>,
    service: Option<String>,
    detail: String,
}

impl TryFrom<AuditRow> for StoredAudit {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let detail = serde_json::from_str(&row.detail).map_err(|error| {
            StoreError::Corrupt(format!("audit entry {} detail: {error}", row.id))
        })?;
        Ok(StoredAudit {
            id: row.id,
            at: row.at,
            actor: row.actor,
            kind: row.kind,
            incident: row.incident.map(to_u64),
            action: row.action,
            service: row.service,
            detail,
        })
    }
}

#[derive(FromRow)]
struct DecisionRow {
    id: i64,
    incident: i64,
    action: String,
    service: Option<String>,
    decision: String,
    actor: String,
    comment: String,
    at: i64,
}

impl TryFrom<DecisionRow> for StoredDecision {
    type Error = StoreError;

    fn try_from(row: DecisionRow) -> Result<Self, StoreError> {
        Ok(StoredDecision {
            id: row.id,
            incident: to_u64(row.incident),
            action: row.action,
            service: row.service,
            decision: Decision::parse(&row.decision)?,
            actor: row.actor,
            comment: row.comment,
            at: row.at,
        })
    }
}

// The counters are INTEGER (4 bytes on PostgreSQL), hence i32.
#[derive(FromRow)]
struct RunRow {
    id: i64,
    decision: i64,
    incident: i64,
    action: String,
    url: String,
    payload: String,
    status: String,
    attempts: i32,
    max_attempts: i32,
    timeout_ms: i64,
    response_status: Option<i32>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<RunRow> for StoredRun {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Self, StoreError> {
        let id = row.id;
        let corrupt = |what: &str, value: i64| {
            StoreError::Corrupt(format!("action run {id}: {what} {value} out of range"))
        };
        Ok(StoredRun {
            id,
            decision: row.decision,
            incident: to_u64(row.incident),
            action: row.action,
            url: row.url,
            payload: row.payload,
            status: RunStatus::parse(&row.status)?,
            attempts: u32::try_from(row.attempts)
                .map_err(|_| corrupt("attempts", row.attempts.into()))?,
            max_attempts: u32::try_from(row.max_attempts)
                .map_err(|_| corrupt("max_attempts", row.max_attempts.into()))?,
            timeout_ms: u64::try_from(row.timeout_ms)
                .map_err(|_| corrupt("timeout_ms", row.timeout_ms))?,
            response_status: row
                .response_status
                .map(|s| u16::try_from(s).map_err(|_| corrupt("response_status", s.into())))
                .transpose()?,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        })
    }
}

const AUDIT_COLUMNS: &str = "id, at, actor, kind, incident, action, service, detail";

const DECISION_COLUMNS: &str = "id, incident, action, service, decision, actor, comment, at";

const RUN_COLUMNS: &str = "id, decision, incident, action, url, payload, status, attempts, \
     max_attempts, timeout_ms, response_status, last_error, created_at, updated_at, finished_at";

const CATALOGUE_COLUMNS: &str = "id, yaml, digest, actor, created_at";

/// Statuses of a run that has not ended.
const UNFINISHED: &str = "status IN ('pending', 'running')";

/// Most audit entries one read returns.
const MAX_AUDIT_LIMIT: i64 = 10_000;

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// The refusal of `decision` because `(id, actor)` already approved its action.
fn approval_conflict(decision: &NewDecision, id: i64, actor: &str) -> StoreError {
    let what = format!(
        "action {:?} of incident {} was already approved (decision {id} by {actor:?})",
        decision.action, decision.incident
    );
    StoreError::Conflict(match decision.decision {
        Decision::Approved => what,
        Decision::Rejected => format!("{what}; an approved action cannot be rejected"),
    })
}

/// The audit detail of a decision with the ids it produced, which the caller could not know
/// beforehand and a reader of the log needs to find the rows (keys the caller set are kept).
fn with_ids(detail: &serde_json::Value, decision: i64, run: Option<i64>) -> serde_json::Value {
    let mut detail = detail.clone();
    if let Some(object) = detail.as_object_mut() {
        object.entry("decision_id").or_insert(decision.into());
        if let Some(run) = run {
            object.entry("run_id").or_insert(run.into());
        }
    }
    detail
}

/// Appends `$entry` (a [`NewAudit`]) with `$detail` (its JSON text) inside the transaction
/// `$tx`; evaluates to its id. A macro because the transaction's type differs per engine.
macro_rules! insert_audit {
    ($tx:ident, $entry:expr, $detail:expr) => {{
        let entry: &NewAudit = $entry;
        let detail: String = $detail;
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO audit_log (at, actor, kind, incident, action, service, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.kind)
        .bind(entry.incident.map(to_i64))
        .bind(&entry.action)
        .bind(&entry.service)
        .bind(detail)
        .fetch_one(&mut *$tx)
        .await?
    }};
}

impl Store {
    /// Appends audit entries in one transaction; returns their ids, in order.
    pub async fn append_audit(&self, entries: &[NewAudit]) -> Result<Vec<i64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids = with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(self)).await?;
            let mut ids = Vec::with_capacity(entries.len());
            for entry in entries {
                ids.push(insert_audit!(tx, entry, entry.detail.to_string()));
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Audit entries matching `filter`, by ascending id.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<StoredAudit>, StoreError> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1");
        let mut parameters = 1;
        if filter.incident.is_some() {
            parameters += 1;
            sql.push_str(&format!(" AND incident = ${parameters}"));
        }
        if filter.kind.is_some() {
            parameters += 1;
            sql.push_str(&format!(" AND kind = ${parameters}"));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", parameters + 1));
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
                .bind(filter.after.unwrap_or(i64::MIN));
            if let Some(incident) = filter.incident {
                query = query.bind(to_i64(incident));
            }
            if let Some(kind) = &filter.kind {
                query = query.bind(kind);
            }
            query
                .bind(filter.limit.clamp(1, MAX_AUDIT_LIMIT))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredAudit::try_from).collect()
    }

    /// The newest audit entry of `kind` about `incident`.
    pub async fn last_audit(
        &self,
        incident: u64,
        kind: &str,
    ) -> Result<Option<StoredAudit>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE incident = $1 AND kind = $2 \
                 ORDER BY id DESC LIMIT 1"
            )))
            .bind(to_i64(incident))
            .bind(kind)
            .fetch_optional(pool)
            .await?
        });
        row.map(StoredAudit::try_from).transpose()
    }

    /// Records a decision, the automation run it starts (approvals only, when given: a run given
    /// with a rejection is not stored) and its audit entry, in one transaction. A second
    /// approval of the same (incident, action) is [`StoreError::Conflict`] naming the earlier
    /// approval (id, actor); so is a rejection of an approved (incident, action). The audit
    /// entry's detail, when an object, gains `decision_id` (and `run_id`) unless it has them.
    pub async fn decide(
        &self,
        decision: &NewDecision,
        run: Option<&NewRun>,
        audit: &NewAudit,
    ) -> Result<(StoredDecision, Option<StoredRun>), StoreError> {
        let incident = to_i64(decision.incident);
        let run = run.filter(|_| decision.decision == Decision::Approved);
        let (row, run_row) = with_pool!(self, pool => {
            // Locked on PostgreSQL so that the check below and the insert cannot interleave
            // with another process's: a rejection racing an approval would otherwise pass.
            let mut tx = begin_locked!(self, pool, "action_decisions");
            let approved = sqlx::query_as::<_, (i64, String)>(
                "SELECT id, actor FROM action_decisions \
                 WHERE incident = $1 AND action = $2 AND decision = 'approved'",
            )
            .bind(incident)
            .bind(&decision.action)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((id, actor)) = approved {
                return Err(approval_conflict(decision, id, &actor));
            }
            let inserted = sqlx::query_as::<_, DecisionRow>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO action_decisions (incident, action, service, decision, actor, \
                 comment, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {DECISION_COLUMNS}"
            )))
            .bind(incident)
            .bind(&decision.action)
            .bind(&decision.service)
            .bind(decision.decision.as_str())
            .bind(&decision.actor)
            .bind(&decision.comment)
            .bind(decision.at)
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Ok(row) => row,
                // Only reachable past the lock (a writer not using this method); the approval
                // it lost to has committed, so it can be named.
                Err(error) if is_unique_violation(&error) => {
                    drop(tx);
                    let approved = sqlx::query_as::<_, (i64, String)>(
                        "SELECT id, actor FROM action_decisions \
                         WHERE incident = $1 AND action = $2 AND decision = 'approved'",
                    )
                    .bind(incident)
                    .bind(&decision.action)
                    .fetch_optional(pool)
                    .await?;
                    return Err(match approved {
                        Some((id, actor)) => approval_conflict(decision, id, &actor),
                        None => StoreError::Conflict(format!(
                            "action {:?} of incident {} was approved meanwhile",
                            decision.action, decision.incident
                        )),
                    });
                }
                Err(error) => return Err(error.into()),
            };
            let run_row = match run {
                Some(run) => Some(
                    sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO action_runs (decision, incident, action, url, payload, \
                         status, attempts, max_attempts, timeout_ms, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $8) \
                         RETURNING {RUN_COLUMNS}"
                    )))
                    .bind(row.id)
                    .bind(incident)
                    .bind(&decision.action)
                    .bind(&run.url)
                    .bind(&run.payload)
                    .bind(i32::try_from(run.max_attempts).unwrap_or(i32::MAX))
                    .bind(to_i64(run.timeout_ms))
                    .bind(decision.at)
                    .fetch_one(&mut *tx)
                    .await?,
                ),
                None => None,
            };
            let detail = with_ids(&audit.detail, row.id, run_row.as_ref().map(|r| r.id));
            insert_audit!(tx, audit, detail.to_string());
            tx.commit().await?;
            (row, run_row)
        });
        Ok((
            row.try_into()?,
            run_row.map(StoredRun::try_from).transpose()?,
        ))
    }

    /// The decisions taken on `incident`'s actions, oldest first.
    pub async fn decisions(&self, incident: u64) -> Result<Vec<StoredDecision>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, DecisionRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {DECISION_COLUMNS} FROM action_decisions WHERE incident = $1 ORDER BY id"
            )))
            .bind(to_i64(incident))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(StoredDecision::try_from).collect()
    }

    /// One automation run.
    pub async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM action_runs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(StoredRun::try_from).transpose()
    }

    /// The automation runs of `incident`, oldest first.
    pub async fn runs(&self, incident: u64) -> Result<Vec<StoredRun>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM action_runs WHERE incident = $1 ORDER BY id"
            )))
            .bind(to_i64(incident))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(StoredRun::try_from).collect()
    }

    /// Runs not finished (pending or running), oldest first: what a restarted service must
    /// carry on.
    pub async fn unfinished_runs(&self) -> Result<Vec<StoredRun>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM action_runs WHERE {UNFINISHED} ORDER BY id"
            )))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(StoredRun::try_from).collect()
    }

    /// Marks an attempt as started: status running, attempts + 1, updated_at. Returns the run
    /// after. A running run is accepted too (its attempt was interrupted by a restart), but a
    /// finished run, one that has used all its attempts or an unknown one is a
    /// [`StoreError::Conflict`]: the database, not only the caller, keeps a call from being made
    /// more often than allowed.
    pub async fn start_attempt(&self, id: i64, at: i64) -> Result<StoredRun, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                "UPDATE action_runs SET status = 'running', attempts = attempts + 1, \
                 updated_at = $2 WHERE id = $1 AND {UNFINISHED} AND attempts < max_attempts \
                 RETURNING {RUN_COLUMNS}"
            )))
            .bind(id)
            .bind(at)
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some(row) => row.try_into(),
            None => Err(self.refusal(id).await?),
        }
    }

    /// Records a failed attempt that will be retried (status back to pending, last_error,
    /// response_status) with its audit entry, in one transaction. Only a running run can be
    /// retried; another is a [`StoreError::Conflict`] and writes nothing.
    pub async fn retry_run(
        &self,
        id: i64,
        at: i64,
        response_status: Option<u16>,
        error: &str,
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        let updated = with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(self)).await?;
            let updated = sqlx::query(
                "UPDATE action_runs SET status = 'pending', last_error = $2, \
                 response_status = $3, updated_at = $4 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(error)
            .bind(response_status.map(i32::from))
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                insert_audit!(tx, audit, audit.detail.to_string());
                tx.commit().await?;
            }
            updated
        });
        if updated == 0 {
            return Err(self.refusal(id).await?);
        }
        Ok(())
    }

    /// Finishes a run (succeeded or failed) with its audit entry, in one transaction. A pending
    /// run can be finished too (given up without another attempt). `error`, when given,
    /// replaces the last error (which is kept otherwise); `response_status` replaces the last
    /// one. Another status, or a run already finished, is a [`StoreError::Conflict`] and writes
    /// nothing.
    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        at: i64,
        response_status: Option<u16>,
        error: Option<&str>,
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        if !status.is_finished() {
            return Err(StoreError::Conflict(format!(
                "a run cannot finish as {}",
                status.as_str()
            )));
        }
        let updated = with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(self)).await?;
            let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE action_runs SET status = $2, last_error = COALESCE($3, last_error), \
                 response_status = $4, updated_at = $5, finished_at = $5 \
                 WHERE id = $1 AND {UNFINISHED}"
            )))
            .bind(id)
            .bind(status.as_str())
            .bind(error)
            .bind(response_status.map(i32::from))
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                insert_audit!(tx, audit, audit.detail.to_string());
                tx.commit().await?;
            }
            updated
        });
        if updated == 0 {
            return Err(self.refusal(id).await?);
        }
        Ok(())
    }

    /// Why run `id` could not be changed: unknown, finished, or out of attempts.
    async fn refusal(&self, id: i64) -> Result<StoreError, StoreError> {
        Ok(StoreError::Conflict(match self.run(id).await? {
            None => format!("no action run {id}"),
            Some(run) if run.status.is_finished() => {
                format!("action run {id} is already {}", run.status.as_str())
            }
            Some(run) if run.attempts >= run.max_attempts => format!(
                "action run {id} has used all its {} attempts",
                run.max_attempts
            ),
            Some(run) => format!("action run {id} is {}", run.status.as_str()),
        }))
    }

    /// Stores a new runbook catalogue version, which becomes the current one, with its audit
    /// entry, in one transaction.
    pub async fn save_catalogue(
        &self,
        yaml: &str,
        digest: &str,
        actor: &str,
        at: i64,
        audit: &NewAudit,
    ) -> Result<StoredCatalogue, StoreError> {
        let row = with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(self)).await?;
            let row = sqlx::query_as::<_, StoredCatalogue>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO runbook_catalogues (yaml, digest, actor, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING {CATALOGUE_COLUMNS}"
            )))
            .bind(yaml)
            .bind(digest)
            .bind(actor)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            insert_audit!(tx, audit, audit.detail.to_string());
            tx.commit().await?;
            row
        });
        Ok(row)
    }

    /// The current (newest) runbook catalogue, if one was ever saved.
    pub async fn current_catalogue(&self) -> Result<Option<StoredCatalogue>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredCatalogue>(sqlx::AssertSqlSafe(format!(
                "SELECT {CATALOGUE_COLUMNS} FROM runbook_catalogues ORDER BY id DESC LIMIT 1"
            )))
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Engine;
    use crate::store::tests::on_both_engines;

    fn entry(at: i64, kind: &str, incident: Option<u64>) -> NewAudit {
        NewAudit {
            at,
            actor: "alice".to_owned(),
            kind: kind.to_owned(),
            incident,
            action: Some("restart".to_owned()),
            service: Some("cart".to_owned()),
            detail: json!({ "n": at }),
        }
    }

    fn approval(incident: u64, action: &str, actor: &str, at: i64) -> NewDecision {
        NewDecision {
            incident,
            action: action.to_owned(),
            service: Some("cart".to_owned()),
            decision: Decision::Approved,
            actor: actor.to_owned(),
            comment: "go".to_owned(),
            at,
        }
    }

    fn rejection(incident: u64, action: &str, actor: &str, at: i64) -> NewDecision {
        NewDecision {
            decision: Decision::Rejected,
            comment: "no".to_owned(),
            ..approval(incident, action, actor, at)
        }
    }

    fn new_run(max_attempts: u32) -> NewRun {
        NewRun {
            url: "http://hooks.local/restart".to_owned(),
            payload: "{\"service\":\"cart\"}".to_owned(),
            max_attempts,
            timeout_ms: 5000,
        }
    }

    async fn all_audit(store: &Store) -> Vec<StoredAudit> {
        store
            .audit(&AuditFilter {
                limit: MAX_AUDIT_LIMIT,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
    }

    fn ids(entries: &[StoredAudit]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn audit_entries_come_back_in_order_with_filters() {
        on_both_engines(|store| async move {
            assert_eq!(store.append_audit(&[]).await.unwrap(), Vec::<i64>::new());
            let written = store
                .append_audit(&[
                    entry(1, "decision", Some(7)),
                    entry(2, "run.retry", Some(7)),
                    entry(3, "decision", Some(8)),
                    NewAudit {
                        action: None,
                        service: None,
                        ..entry(4, "catalogue", None)
                    },
                    entry(5, "decision", Some(7)),
                    entry(6, "decision", Some(u64::MAX >> 1)),
                ])
                .await
                .unwrap();
            assert_eq!(written.len(), 6);
            assert!(written.windows(2).all(|w| w[0] < w[1]), "{written:?}");

            let all = all_audit(&store).await;
            assert_eq!(ids(&all), written);
            assert_eq!(all[0].detail, json!({ "n": 1 }));
            assert_eq!(all[0].actor, "alice");
            assert_eq!(all[3].incident, None);
            assert_eq!(all[3].action, None);
            assert_eq!(all[5].incident, Some(u64::MAX >> 1));

            let read = |incident: Option<u64>, kind: Option<&str>, after: Option<i64>, limit| {
                let store = store.clone();
                let filter = AuditFilter {
                    incident,
                    kind: kind.map(str::to_owned),
                    after,
                    limit,
                };
                async move { ids(&store.audit(&filter).await.unwrap()) }
            };
            let w = &written;
            assert_eq!(read(Some(7), None, None, 100).await, [w[0], w[1], w[4]]);
            assert_eq!(
                read(None, Some("decision"), None, 100).await,
                [w[0], w[2], w[4], w[5]]
            );
            assert_eq!(
                read(Some(7), Some("decision"), None, 100).await,
                [w[0], w[4]]
            );
            assert_eq!(
                read(Some(7), Some("decision"), Some(w[0]), 100).await,
                [w[4]]
            );
            assert_eq!(read(None, None, Some(w[1]), 2).await, [w[2], w[3]]);
            // Limits are clamped: 0 or less reads one, not none or all.
            assert_eq!(read(None, None, None, 0).await, [w[0]]);
            assert_eq!(read(None, None, None, -5).await, [w[0]]);
            assert_eq!(read(Some(9), None, None, 100).await, Vec::<i64>::new());

            let last = store.last_audit(7, "decision").await.unwrap().unwrap();
            assert_eq!(last.id, w[4]);
            assert_eq!(last.at, 5);
            assert_eq!(
                store.last_audit(7, "run.retry").await.unwrap().unwrap().id,
                w[1]
            );
            assert!(store.last_audit(8, "run.retry").await.unwrap().is_none());
            assert!(store.last_audit(9, "decision").await.unwrap().is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn the_database_refuses_to_update_or_delete_audit_entries() {
        on_both_engines(|store| async move {
            store
                .append_audit(&[entry(1, "decision", Some(7)), entry(2, "catalogue", None)])
                .await
                .unwrap();
            let before = all_audit(&store).await;
            let statements = [
                "UPDATE audit_log SET kind = 'x'",
                "UPDATE audit_log SET detail = '{}' WHERE incident = 7",
                "DELETE FROM audit_log",
                "DELETE FROM audit_log WHERE incident = 7",
            ];
            for statement in statements {
                let result =
                    with_pool!(store, pool => sqlx::query(statement).execute(pool).await.map(drop));
                let error = result.expect_err(statement).to_string();
                assert!(error.contains("append-only"), "{statement}: {error}");
            }
            if store.engine() == Engine::Postgres {
                let result = with_pool!(store, pool => {
                    sqlx::query("TRUNCATE audit_log").execute(pool).await.map(drop)
                });
                let error = result.expect_err("TRUNCATE").to_string();
                assert!(error.contains("append-only"), "{error}");
            }
            assert_eq!(all_audit(&store).await, before);
            // Appending still works.
            store
                .append_audit(&[entry(3, "decision", Some(7))])
                .await
                .unwrap();
            assert_eq!(all_audit(&store).await.len(), 3);
        })
        .await;
    }

    #[tokio::test]
    async fn an_approval_stores_its_decision_run_and_audit_entry_together() {
        on_both_engines(|store| async move {
            let (decision, run) = store
                .decide(
                    &approval(7, "restart", "alice", 1000),
                    Some(&new_run(3)),
                    &NewAudit {
                        detail: json!({ "decision": "approved" }),
                        ..entry(1000, "decision", Some(7))
                    },
                )
                .await
                .unwrap();
            assert_eq!(decision.incident, 7);
            assert_eq!(decision.action, "restart");
            assert_eq!(decision.service.as_deref(), Some("cart"));
            assert_eq!(decision.decision, Decision::Approved);
            assert_eq!(decision.actor, "alice");
            assert_eq!(decision.comment, "go");
            assert_eq!(decision.at, 1000);
            let run = run.unwrap();
            assert_eq!(run.decision, decision.id);
            assert_eq!(run.incident, 7);
            assert_eq!(run.action, "restart");
            assert_eq!(run.url, "http://hooks.local/restart");
            assert_eq!(run.payload, "{\"service\":\"cart\"}");
            assert_eq!(run.status, RunStatus::Pending);
            assert_eq!((run.attempts, run.max_attempts), (0, 3));
            assert_eq!(run.timeout_ms, 5000);
            assert_eq!(
                (run.response_status, run.last_error.as_deref()),
                (None, None)
            );
            assert_eq!((run.created_at, run.updated_at), (1000, 1000));
            assert_eq!(run.finished_at, None);

            assert_eq!(
                store.decisions(7).await.unwrap(),
                std::slice::from_ref(&decision)
            );
            assert_eq!(store.runs(7).await.unwrap(), std::slice::from_ref(&run));
            assert_eq!(store.run(run.id).await.unwrap().as_ref(), Some(&run));
            assert!(store.run(run.id + 100).await.unwrap().is_none());
            assert_eq!(
                store.unfinished_runs().await.unwrap(),
                std::slice::from_ref(&run)
            );
            let audit = all_audit(&store).await;
            assert_eq!(audit.len(), 1);
            assert_eq!(
                audit[0].detail,
                json!({ "decision": "approved", "decision_id": decision.id, "run_id": run.id })
            );
            assert_eq!(audit[0].incident, Some(7));

            // A run the database refuses (no attempt allowed) takes its decision and audit
            // entry with it.
            let refused = store
                .decide(
                    &approval(7, "scale-up", "alice", 1100),
                    Some(&new_run(0)),
                    &entry(1100, "decision", Some(7)),
                )
                .await;
            assert!(
                matches!(refused, Err(StoreError::Database(_))),
                "{refused:?}"
            );
            assert_eq!(store.decisions(7).await.unwrap().len(), 1);
            assert_eq!(all_audit(&store).await.len(), 1);
            // An approval without a run is fine, and other incidents are separate.
            let (other, none) = store
                .decide(
                    &approval(8, "restart", "bob", 1200),
                    None,
                    &entry(1200, "decision", Some(8)),
                )
                .await
                .unwrap();
            assert!(none.is_none());
            assert_eq!(store.decisions(8).await.unwrap(), [other]);
            assert!(store.runs(8).await.unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn a_second_approval_or_a_rejection_of_an_approved_action_is_a_conflict() {
        on_both_engines(|store| async move {
            let (first, _) = store
                .decide(
                    &approval(7, "restart", "alice", 1000),
                    Some(&new_run(3)),
                    &entry(1000, "decision", Some(7)),
                )
                .await
                .unwrap();
            let decisions = store.decisions(7).await.unwrap();
            let runs = store.runs(7).await.unwrap();
            let audit = all_audit(&store).await;

            let again = store
                .decide(
                    &approval(7, "restart", "bob", 2000),
                    Some(&new_run(3)),
                    &entry(2000, "decision", Some(7)),
                )
                .await;
            match again {
                Err(StoreError::Conflict(message)) => {
                    assert!(
                        message.contains(&format!("decision {}", first.id)),
                        "{message}"
                    );
                    assert!(message.contains("alice"), "{message}");
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
            let reject = store
                .decide(
                    &rejection(7, "restart", "bob", 2100),
                    None,
                    &entry(2100, "decision", Some(7)),
                )
                .await;
            match reject {
                Err(StoreError::Conflict(message)) => {
                    assert!(
                        message.contains(&format!("decision {}", first.id)),
                        "{message}"
                    );
                    assert!(message.contains("cannot be rejected"), "{message}");
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
            assert_eq!(store.decisions(7).await.unwrap(), decisions);
            assert_eq!(store.runs(7).await.unwrap(), runs);
            assert_eq!(all_audit(&store).await, audit);

            // The index refuses a second approval even past the method's check.
            let raw = with_pool!(store, pool => {
                sqlx::query(
                    "INSERT INTO action_decisions (incident, action, decision, actor, at) \
                     VALUES (7, 'restart', 'approved', 'mallory', 1)",
                )
                .execute(pool)
                .await
                .map(drop)
            });
            assert!(is_unique_violation(&raw.unwrap_err()));
        })
        .await;
    }

    #[tokio::test]
    async fn a_rejected_action_can_still_be_approved() {
        on_both_engines(|store| async move {
            let (no, run) = store
                .decide(
                    &rejection(7, "restart", "bob", 1000),
                    Some(&new_run(3)),
                    &entry(1000, "decision", Some(7)),
                )
                .await
                .unwrap();
            assert_eq!(no.decision, Decision::Rejected);
            assert!(run.is_none(), "a rejection starts no run");
            let (again, _) = store
                .decide(
                    &rejection(7, "restart", "carol", 1100),
                    None,
                    &entry(1100, "decision", Some(7)),
                )
                .await
                .unwrap();
            let (yes, run) = store
                .decide(
                    &approval(7, "restart", "alice", 1200),
                    Some(&new_run(3)),
                    &entry(1200, "decision", Some(7)),
                )
                .await
                .unwrap();
            assert_eq!(run.unwrap().decision, yes.id);
            assert_eq!(store.decisions(7).await.unwrap(), [no, again, yes]);
            assert_eq!(store.runs(7).await.unwrap().len(), 1);
            assert_eq!(all_audit(&store).await.len(), 3);
        })
        .await;
    }

    #[tokio::test]
    async fn a_run_goes_through_its_attempts_to_the_end() {
        on_both_engines(|store| async move {
            let decide = |incident: u64, max_attempts: u32| {
                let store = store.clone();
                async move {
                    store
                        .decide(
                            &approval(incident, "restart", "alice", 1000),
                            Some(&new_run(max_attempts)),
                            &entry(1000, "decision", Some(incident)),
                        )
                        .await
                        .unwrap()
                        .1
                        .unwrap()
                }
            };
            let run = decide(7, 2).await;
            let other = decide(8, 1).await;
            let audit_count = all_audit(&store).await.len();

            let started = store.start_attempt(run.id, 2000).await.unwrap();
            assert_eq!(started.status, RunStatus::Running);
            assert_eq!((started.attempts, started.updated_at), (1, 2000));
            // Only a running run can be retried; a refusal writes no audit entry.
            assert!(matches!(
                store
                    .retry_run(
                        other.id,
                        2050,
                        None,
                        "x",
                        &entry(2050, "run.retry", Some(8))
                    )
                    .await,
                Err(StoreError::Conflict(_))
            ));
            store
                .retry_run(
                    run.id,
                    2100,
                    Some(503),
                    "503 Service Unavailable",
                    &entry(2100, "run.retry", Some(7)),
                )
                .await
                .unwrap();
            let retried = store.run(run.id).await.unwrap().unwrap();
            assert_eq!(retried.status, RunStatus::Pending);
            assert_eq!(retried.attempts, 1);
            assert_eq!(retried.response_status, Some(503));
            assert_eq!(
                retried.last_error.as_deref(),
                Some("503 Service Unavailable")
            );
            assert_eq!(retried.updated_at, 2100);
            assert_eq!(
                store.unfinished_runs().await.unwrap(),
                [retried, other.clone()]
            );

            let second = store.start_attempt(run.id, 3000).await.unwrap();
            assert_eq!((second.status, second.attempts), (RunStatus::Running, 2));
            assert_eq!(
                store.unfinished_runs().await.unwrap(),
                [second, other.clone()]
            );
            // Two attempts allowed: a third is refused, even after a restart.
            match store.start_attempt(run.id, 3050).await {
                Err(StoreError::Conflict(message)) => {
                    assert!(message.contains("all its 2 attempts"), "{message}")
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
            assert!(matches!(
                store
                    .finish_run(
                        run.id,
                        RunStatus::Running,
                        3100,
                        None,
                        None,
                        &entry(3100, "x", None)
                    )
                    .await,
                Err(StoreError::Conflict(_))
            ));
            store
                .finish_run(
                    run.id,
                    RunStatus::Succeeded,
                    3100,
                    Some(200),
                    None,
                    &entry(3100, "run.finish", Some(7)),
                )
                .await
                .unwrap();
            let done = store.run(run.id).await.unwrap().unwrap();
            assert_eq!(done.status, RunStatus::Succeeded);
            assert_eq!(done.attempts, 2);
            assert_eq!(done.response_status, Some(200));
            assert_eq!(done.last_error.as_deref(), Some("503 Service Unavailable"));
            assert_eq!((done.updated_at, done.finished_at), (3100, Some(3100)));
            assert_eq!(
                store.unfinished_runs().await.unwrap(),
                std::slice::from_ref(&other)
            );

            // A finished run stays finished, and the refusals wrote nothing.
            let audit = all_audit(&store).await;
            assert_eq!(audit.len(), audit_count + 2);
            assert!(matches!(
                store.start_attempt(run.id, 4000).await,
                Err(StoreError::Conflict(message)) if message.contains("already succeeded")
            ));
            assert!(matches!(
                store
                    .finish_run(
                        run.id,
                        RunStatus::Failed,
                        4000,
                        None,
                        Some("x"),
                        &entry(4000, "x", None)
                    )
                    .await,
                Err(StoreError::Conflict(_))
            ));
            assert!(matches!(
                store
                    .retry_run(run.id, 4000, None, "x", &entry(4000, "x", None))
                    .await,
                Err(StoreError::Conflict(_))
            ));
            assert!(matches!(
                store.start_attempt(9999, 4000).await,
                Err(StoreError::Conflict(message)) if message.contains("no action run 9999")
            ));
            assert_eq!(all_audit(&store).await, audit);
            assert_eq!(store.run(run.id).await.unwrap().unwrap(), done);

            // A pending run can be given up; the error given replaces the last one.
            store
                .finish_run(
                    other.id,
                    RunStatus::Failed,
                    5000,
                    None,
                    Some("cancelled"),
                    &entry(5000, "run.finish", Some(8)),
                )
                .await
                .unwrap();
            let failed = store.run(other.id).await.unwrap().unwrap();
            assert_eq!(failed.status, RunStatus::Failed);
            assert_eq!(failed.attempts, 0);
            assert_eq!(failed.last_error.as_deref(), Some("cancelled"));
            assert!(store.unfinished_runs().await.unwrap().is_empty());
            let last = store.last_audit(8, "run.finish").await.unwrap().unwrap();
            assert_eq!(last.at, 5000);
        })
        .await;
    }

    #[tokio::test]
    async fn the_newest_catalogue_is_the_current_one() {
        on_both_engines(|store| async move {
            assert!(store.current_catalogue().await.unwrap().is_none());
            let first = store
                .save_catalogue(
                    "runbooks: []\n",
                    "sha256:a",
                    "alice",
                    1000,
                    &entry(1000, "catalogue", None),
                )
                .await
                .unwrap();
            assert_eq!(
                (
                    first.yaml.as_str(),
                    first.digest.as_str(),
                    first.actor.as_str()
                ),
                ("runbooks: []\n", "sha256:a", "alice")
            );
            assert_eq!(first.created_at, 1000);
            assert_eq!(store.current_catalogue().await.unwrap().unwrap(), first);
            let second = store
                .save_catalogue(
                    "runbooks: [x]\n",
                    "sha256:b",
                    "bob",
                    2000,
                    &entry(2000, "catalogue", None),
                )
                .await
                .unwrap();
            assert!(second.id > first.id);
            assert_eq!(store.current_catalogue().await.unwrap().unwrap(), second);
            let audit = store
                .audit(&AuditFilter {
                    kind: Some("catalogue".to_owned()),
                    limit: 10,
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(audit.len(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn a_nul_character_never_panics_and_leaves_nothing_half_written() {
        on_both_engines(|store| async move {
            // Inside JSON a NUL is escaped, so both engines store it.
            let with_nul = NewAudit {
                detail: json!({ "note": "a\u{0}b" }),
                ..entry(1, "decision", Some(7))
            };
            store.append_audit(&[with_nul]).await.unwrap();
            assert_eq!(
                all_audit(&store).await[0].detail,
                json!({ "note": "a\u{0}b" })
            );

            // In a text column PostgreSQL refuses it (an error, not a panic) and SQLite stores it.
            let result = store
                .decide(
                    &approval(7, "re\u{0}start", "alice", 1000),
                    Some(&new_run(3)),
                    &NewAudit {
                        actor: "al\u{0}ice".to_owned(),
                        ..entry(1000, "decision", Some(7))
                    },
                )
                .await;
            match store.engine() {
                Engine::Postgres => {
                    assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
                    assert!(store.decisions(7).await.unwrap().is_empty());
                    assert!(store.runs(7).await.unwrap().is_empty());
                    assert_eq!(all_audit(&store).await.len(), 1);
                }
                Engine::Sqlite => {
                    let (decision, _) = result.unwrap();
                    assert_eq!(decision.action, "re\u{0}start");
                }
            }
        })
        .await;
    }

    #[test]
    fn statuses_serialize_lowercase_and_the_payload_stays_private() {
        assert_eq!(
            serde_json::to_value(Decision::Approved).unwrap(),
            json!("approved")
        );
        assert_eq!(
            serde_json::to_value(RunStatus::Succeeded).unwrap(),
            json!("succeeded")
        );
        for decision in [Decision::Approved, Decision::Rejected] {
            assert_eq!(Decision::parse(decision.as_str()).unwrap(), decision);
        }
        for status in [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
        ] {
            assert_eq!(RunStatus::parse(status.as_str()).unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert!(matches!(
            RunStatus::parse("done"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            Decision::parse("maybe"),
            Err(StoreError::Corrupt(_))
        ));

        let run = StoredRun {
            id: 1,
            decision: 1,
            incident: 7,
            action: "restart".to_owned(),
            url: "http://hooks.local".to_owned(),
            payload: "{\"token\":\"secret\"}".to_owned(),
            status: RunStatus::Pending,
            attempts: 0,
            max_attempts: 3,
            timeout_ms: 5000,
            response_status: None,
            last_error: None,
            created_at: 1,
            updated_at: 1,
            finished_at: None,
        };
        let text = serde_json::to_string(&run).unwrap();
        assert!(
            !text.contains("secret") && !text.contains("payload"),
            "{text}"
        );
    }
}
