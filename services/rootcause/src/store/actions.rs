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
use super::{Store, StoreError, stored_as_text, to_i64, to_u64, with_pool};

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A stored audit entry: what was appended, with its id.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredAudit {
    /// Id: increasing in the order entries were appended.
    pub id: i64,
    /// What was appended.
    #[serde(flatten)]
    pub record: NewAudit,
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

stored_as_text!(Decision, "decision", {
    Approved => "approved",
    Rejected => "rejected",
});

/// A decision to record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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

/// A stored decision: what was recorded, with its id.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredDecision {
    /// Id.
    pub id: i64,
    /// What was recorded.
    #[serde(flatten)]
    pub record: NewDecision,
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

stored_as_text!(RunStatus, "run status", {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
});

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
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
            record: NewAudit {
                at: row.at,
                actor: row.actor,
                kind: row.kind,
                incident: row.incident.map(to_u64),
                action: row.action,
                service: row.service,
                detail,
            },
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
            record: NewDecision {
                incident: to_u64(row.incident),
                action: row.action,
                service: row.service,
                decision: Decision::parse(&row.decision)?,
                actor: row.actor,
                comment: row.comment,
                at: row.at,
            },
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

/// Statuses of a run that has not ended.
const UNFINISHED: &str = "status IN ('pending', 'running')";

/// Most audit entries one read returns.
const MAX_AUDIT_LIMIT: i64 = 10_000;

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

/// Runs the UPDATE `$update` in a write transaction and, when it changed a row, appends
/// `$audit` (a [`NewAudit`]) in the same transaction: a change is never stored without its
/// audit entry, nor an entry without its change. Evaluates to the rows changed.
macro_rules! update_with_audit {
    ($store:expr, $audit:expr, $update:expr) => {
        with_pool!($store, pool => {
            let mut tx = pool.begin_with(begin_write($store)).await?;
            let updated = $update.execute(&mut *tx).await?.rows_affected();
            if updated > 0 {
                insert_audit!(tx, $audit, $audit.detail.to_string());
                tx.commit().await?;
            }
            updated
        })
    };
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
pub(super) use insert_audit;

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
        let rows = self
            .select_where::<DecisionRow>(
                "action_decisions",
                DECISION_COLUMNS,
                "incident",
                to_i64(incident),
            )
            .await?;
        rows.into_iter().map(StoredDecision::try_from).collect()
    }

    /// One automation run.
    pub async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError> {
        self.select_by_id::<RunRow>("action_runs", RUN_COLUMNS, id)
            .await?
            .map(StoredRun::try_from)
            .transpose()
    }

    /// The automation runs of `incident`, oldest first.
    pub async fn runs(&self, incident: u64) -> Result<Vec<StoredRun>, StoreError> {
        let rows = self
            .select_where::<RunRow>("action_runs", RUN_COLUMNS, "incident", to_i64(incident))
            .await?;
        rows.into_iter().map(StoredRun::try_from).collect()
    }

    /// Runs not finished (pending or running), oldest first: what a restarted service must
    /// carry on.
    pub async fn unfinished_runs(&self) -> Result<Vec<StoredRun>, StoreError> {
        let rows = self
            .select_all::<RunRow>(format!(
                "SELECT {RUN_COLUMNS} FROM action_runs WHERE {UNFINISHED} ORDER BY id"
            ))
            .await?;
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
        let updated = update_with_audit!(
            self,
            audit,
            sqlx::query(
                "UPDATE action_runs SET status = 'pending', last_error = $2, \
             response_status = $3, updated_at = $4 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(error)
            .bind(response_status.map(i32::from))
            .bind(at)
        );
        self.run_changed(id, updated).await
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
        let updated = update_with_audit!(
            self,
            audit,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE action_runs SET status = $2, last_error = COALESCE($3, last_error), \
             response_status = $4, updated_at = $5, finished_at = $5 \
             WHERE id = $1 AND {UNFINISHED}"
            )))
            .bind(id)
            .bind(status.as_str())
            .bind(error)
            .bind(response_status.map(i32::from))
            .bind(at)
        );
        self.run_changed(id, updated).await
    }

    /// `Ok` when an update of run `id` changed it; otherwise the [`Self::refusal`].
    async fn run_changed(&self, id: i64, updated: u64) -> Result<(), StoreError> {
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
}

#[cfg(test)]
mod tests;
