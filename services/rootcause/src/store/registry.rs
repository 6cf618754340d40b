//! The model registry (every ranking model version the service has had, one of them active)
//! and the training jobs that produce new versions.
//!
//! Versions are never deleted: rolling back is activating an older one, so the registry is also
//! the record of which model ranked incidents when. At most one model is active and at most one
//! job is queued or running; both rules are unique partial indexes, so the database keeps them
//! however many processes share it.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::history::{begin_locked, begin_write};
use super::{Store, StoreError, changed_one, stored_as_text, with_pool};

/// Where a model version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Ranks incidents now (at most one).
    Active,
    /// Stored but never activated (a training result not good enough, or held for review).
    Candidate,
    /// Was active, then replaced.
    Retired,
}

stored_as_text!(ModelStatus, "model status", {
    Active => "active",
    Candidate => "candidate",
    Retired => "retired",
});

/// A model version to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel {
    /// Unique version name.
    pub version: String,
    /// Where it came from: `bundled`, `file:<path>`, `job:<id>`.
    pub source: String,
    /// Version of the feature schema it reads.
    pub feature_schema: i64,
    /// Its evaluation figures, JSON.
    pub figures: String,
    /// Why it was added (or activated).
    pub reason: String,
    /// The model itself, JSON.
    pub body: String,
    /// The training job that produced it.
    pub job_id: Option<i64>,
}

/// A stored model version, without its body (which can be large).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredModel {
    /// Id: increasing with each version stored.
    pub id: i64,
    /// Unique version name.
    pub version: String,
    /// Active, candidate or retired.
    pub status: ModelStatus,
    /// Where it came from.
    pub source: String,
    /// Feature schema version.
    pub feature_schema: i64,
    /// Evaluation figures, JSON.
    pub figures: String,
    /// Why it was added, or why it was last activated.
    pub reason: String,
    /// The training job that produced it.
    pub job_id: Option<i64>,
    /// Epoch ms.
    pub created_at: i64,
    /// When it was last made active, epoch ms.
    pub activated_at: Option<i64>,
}

#[derive(FromRow)]
struct ModelRow {
    id: i64,
    version: String,
    status: String,
    source: String,
    feature_schema: i64,
    figures: String,
    reason: String,
    job_id: Option<i64>,
    created_at: i64,
    activated_at: Option<i64>,
}

impl TryFrom<ModelRow> for StoredModel {
    type Error = StoreError;

    fn try_from(row: ModelRow) -> Result<Self, StoreError> {
        Ok(StoredModel {
            id: row.id,
            version: row.version,
            status: ModelStatus::parse(&row.status)?,
            source: row.source,
            feature_schema: row.feature_schema,
            figures: row.figures,
            reason: row.reason,
            job_id: row.job_id,
            created_at: row.created_at,
            activated_at: row.activated_at,
        })
    }
}

#[derive(FromRow)]
struct ModelWithBody {
    #[sqlx(flatten)]
    model: ModelRow,
    body: String,
}

/// Where a training job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Finished with a model (or a decision not to keep one).
    Succeeded,
    /// Finished with an error.
    Failed,
}

stored_as_text!(JobStatus, "job status", {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
});

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// A stored training job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredJob {
    /// Id.
    pub id: i64,
    /// Where it stands.
    pub status: JobStatus,
    /// Whether it was asked to keep its model even if it evaluates worse.
    pub force: bool,
    /// Its parameters, JSON.
    pub params: String,
    /// What it is doing (free text set by the trainer).
    pub stage: String,
    /// How far along, 0 to 1.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// The model version it stored.
    pub model_id: Option<i64>,
    /// What it found, JSON; `{}` until it finishes.
    pub summary: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub started_at: Option<i64>,
    /// Epoch ms.
    pub finished_at: Option<i64>,
}

#[derive(FromRow)]
struct JobRow {
    id: i64,
    status: String,
    force: bool,
    params: String,
    stage: String,
    progress: f64,
    error: Option<String>,
    model_id: Option<i64>,
    summary: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl TryFrom<JobRow> for StoredJob {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        Ok(StoredJob {
            id: row.id,
            status: JobStatus::parse(&row.status)?,
            force: row.force,
            params: row.params,
            stage: row.stage,
            progress: row.progress,
            error: row.error,
            model_id: row.model_id,
            summary: row.summary,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

const MODEL_COLUMNS: &str = "id, version, status, source, feature_schema, figures, reason, \
     job_id, created_at, activated_at";

const JOB_COLUMNS: &str = "id, status, force, params, stage, progress, error, model_id, \
     summary, created_at, started_at, finished_at";

/// Statuses of a job that has not ended: the ones the `training_jobs_one_live` index covers.
const LIVE: &str = "status IN ('queued', 'running')";

/// The error of a refused job, naming the live one.
fn job_conflict(id: i64, status: &str) -> StoreError {
    StoreError::Conflict(format!(
        "training job {id} is already {status}; wait for it to finish"
    ))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

impl Store {
    /// Adds a model version as a candidate, or as the active one (`activate`), retiring the
    /// previous active model in the same transaction. A version name already stored is a
    /// [`StoreError::Conflict`].
    pub async fn insert_model(
        &self,
        model: &NewModel,
        activate: bool,
        now_ms: i64,
    ) -> Result<StoredModel, StoreError> {
        let status = if activate {
            ModelStatus::Active
        } else {
            ModelStatus::Candidate
        };
        let row = with_pool!(self, pool => {
            // Locked on PostgreSQL: two activations at once would otherwise both retire the
            // same previous model and one would then break the one-active index.
            let mut tx = begin_locked!(self, pool, "models");
            if activate {
                sqlx::query("UPDATE models SET status = 'retired' WHERE status = 'active'")
                    .execute(&mut *tx)
                    .await?;
            }
            let inserted = sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO models (version, status, source, feature_schema, figures, reason, \
                 body, job_id, created_at, activated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {MODEL_COLUMNS}"
            )))
            .bind(&model.version)
            .bind(status.as_str())
            .bind(&model.source)
            .bind(model.feature_schema)
            .bind(&model.figures)
            .bind(&model.reason)
            .bind(&model.body)
            .bind(model.job_id)
            .bind(now_ms)
            .bind(activate.then_some(now_ms))
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Ok(row) => row,
                Err(error) if is_unique_violation(&error) => {
                    return Err(StoreError::Conflict(format!(
                        "model version {:?} is already stored",
                        model.version
                    )));
                }
                Err(error) => return Err(error.into()),
            };
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Every model version, oldest first.
    pub async fn list_models(&self) -> Result<Vec<StoredModel>, StoreError> {
        let rows = self
            .select_all::<ModelRow>(format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY id"))
            .await?;
        rows.into_iter().map(StoredModel::try_from).collect()
    }

    /// One model version, without its body.
    pub async fn model(&self, id: i64) -> Result<Option<StoredModel>, StoreError> {
        self.select_by_id::<ModelRow>("models", MODEL_COLUMNS, id)
            .await?
            .map(StoredModel::try_from)
            .transpose()
    }

    /// One model version's body (the model JSON).
    pub async fn model_body(&self, id: i64) -> Result<Option<String>, StoreError> {
        let body = with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>("SELECT body FROM models WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(body)
    }

    /// The active model with its body, if any model is active.
    pub async fn active_model(&self) -> Result<Option<(StoredModel, String)>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, ModelWithBody>(sqlx::AssertSqlSafe(format!(
                "SELECT {MODEL_COLUMNS}, body FROM models WHERE status = 'active'"
            )))
            .fetch_optional(pool)
            .await?
        });
        row.map(|row| Ok((row.model.try_into()?, row.body)))
            .transpose()
    }

    /// Makes `id` the active model (a rollback is activating an older one) and records
    /// `reason` on it as why it is active; the previous active model becomes retired. `None`
    /// when there is no such model.
    pub async fn activate_model(
        &self,
        id: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<StoredModel>, StoreError> {
        let row = with_pool!(self, pool => {
            let mut tx = begin_locked!(self, pool, "models");
            let exists = sqlx::query_scalar::<_, i64>("SELECT id FROM models WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            // Retire first: the one-active index is checked row by row.
            sqlx::query("UPDATE models SET status = 'retired' WHERE status = 'active' AND id <> $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
                "UPDATE models SET status = 'active', reason = $2, activated_at = $3 \
                 WHERE id = $1 RETURNING {MODEL_COLUMNS}"
            )))
            .bind(id)
            .bind(reason)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            row
        });
        StoredModel::try_from(row).map(Some)
    }

    /// Queues a training job unless one is queued or running: then [`StoreError::Conflict`]
    /// naming that job. The check and the insert share one transaction that holds the write
    /// lock (SQLite `IMMEDIATE`, a table lock on PostgreSQL), and the `training_jobs_one_live`
    /// unique index refuses a second live job whatever the path it came in by.
    pub async fn create_job(
        &self,
        force: bool,
        params: &str,
        now_ms: i64,
    ) -> Result<StoredJob, StoreError> {
        let row = with_pool!(self, pool => {
            let mut tx = begin_locked!(self, pool, "training_jobs");
            let live = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(format!(
                "SELECT id, status FROM training_jobs WHERE {LIVE} ORDER BY id LIMIT 1"
            )))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((id, status)) = live {
                return Err(job_conflict(id, &status));
            }
            let inserted = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO training_jobs (status, force, params, created_at) \
                 VALUES ('queued', $1, $2, $3) RETURNING {JOB_COLUMNS}"
            )))
            .bind(force)
            .bind(params)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Ok(row) => row,
                // Only reachable if the lock was bypassed (another writer not using this
                // method); the live job committed before our insert, so it is visible now.
                Err(error) if is_unique_violation(&error) => {
                    drop(tx);
                    let live = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(format!(
                        "SELECT id, status FROM training_jobs WHERE {LIVE} ORDER BY id LIMIT 1"
                    )))
                    .fetch_optional(pool)
                    .await?;
                    return Err(match live {
                        Some((id, status)) => job_conflict(id, &status),
                        None => StoreError::Conflict(
                            "another training job was queued at the same moment".to_owned(),
                        ),
                    });
                }
                Err(error) => return Err(error.into()),
            };
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Marks a queued job running. [`StoreError::Conflict`] when it is not queued (unknown,
    /// already started, or failed meanwhile, e.g. by [`Store::fail_interrupted_jobs`]).
    pub async fn start_job(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let updated = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE training_jobs SET status = 'running', started_at = $2 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        changed_one(updated, || format!("training job {id} is not queued"))
    }

    /// Records what a running job is doing and how far along it is (clamped to 0..=1).
    /// [`StoreError::Conflict`] when the job is not running, which tells the trainer to stop.
    pub async fn job_progress(
        &self,
        id: i64,
        stage: &str,
        progress: f64,
    ) -> Result<(), StoreError> {
        let progress = if progress.is_nan() {
            0.0
        } else {
            progress.clamp(0.0, 1.0)
        };
        let updated = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE training_jobs SET stage = $2, progress = $3 \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(stage)
            .bind(progress)
            .execute(pool)
            .await?
            .rows_affected()
        });
        changed_one(updated, || format!("training job {id} is not running"))
    }

    /// Ends a queued or running job as `status` (succeeded or failed), with its error, the
    /// model it stored and its summary (JSON). A success sets the progress to 1.
    /// [`StoreError::Conflict`] when the job already ended (or does not exist) or `status` is
    /// not an end.
    pub async fn finish_job(
        &self,
        id: i64,
        status: JobStatus,
        error: Option<&str>,
        model_id: Option<i64>,
        summary: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if !status.is_finished() {
            return Err(StoreError::Conflict(format!(
                "training job {id} cannot finish as {}",
                status.as_str()
            )));
        }
        let updated = with_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE training_jobs SET status = $2, error = $3, model_id = $4, summary = $5, \
                 finished_at = $6, \
                 progress = CASE WHEN $2 = 'succeeded' THEN 1.0 ELSE progress END \
                 WHERE id = $1 AND {LIVE}"
            )))
            .bind(id)
            .bind(status.as_str())
            .bind(error)
            .bind(model_id)
            .bind(summary)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        changed_one(updated, || {
            format!("training job {id} is not queued or running")
        })
    }

    /// One training job.
    pub async fn job(&self, id: i64) -> Result<Option<StoredJob>, StoreError> {
        self.select_by_id::<JobRow>("training_jobs", JOB_COLUMNS, id)
            .await?
            .map(StoredJob::try_from)
            .transpose()
    }

    /// The newest `limit` training jobs, newest first.
    pub async fn list_jobs(&self, limit: u32) -> Result<Vec<StoredJob>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT $1"
            )))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(StoredJob::try_from).collect()
    }

    /// At start-up: jobs left queued or running by a previous process are failed with
    /// "interrupted by a restart" (no process runs them any more, and a live job blocks new
    /// ones). Returns how many. Meant for a single service instance per database: it cannot
    /// tell another live instance's job from an orphan.
    pub async fn fail_interrupted_jobs(&self, now_ms: i64) -> Result<u64, StoreError> {
        let failed = with_pool!(self, pool => {
            // A write transaction of its own so SQLite waits for the lock like the others.
            let mut tx = pool.begin_with(begin_write(self)).await?;
            let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE training_jobs SET status = 'failed', error = 'interrupted by a restart', \
                 finished_at = $1 WHERE {LIVE}"
            )))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            failed
        });
        Ok(failed)
    }
}

#[cfg(test)]
mod tests;
