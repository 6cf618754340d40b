//! Change events: deploys, configuration changes, scaling, infrastructure work.

use sqlx::FromRow;

use super::{Store, StoreError, with_pool};

/// A change event to store.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// The service as the sender named it.
    pub service: String,
    /// The topology service it maps to, if any.
    pub mapped: Option<String>,
    /// `deploy`, `config`, `scale`, `infra` or `other`.
    pub kind: &'static str,
    /// When it happened, epoch ms.
    pub at: i64,
    /// Version deployed (empty if none).
    pub version: String,
    /// Who made it.
    pub author: Option<String>,
    /// Link to the pipeline run, pull request, ticket...
    pub link: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// A stored change event.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredChange {
    /// Id.
    pub id: i64,
    /// Service as sent.
    pub service: String,
    /// Mapped topology service.
    pub mapped: Option<String>,
    /// Kind.
    pub kind: String,
    /// Epoch ms.
    pub at: i64,
    /// Version.
    pub version: String,
    /// Author.
    pub author: Option<String>,
    /// Link.
    pub link: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Epoch ms.
    pub received_at: i64,
}

/// Filters of the change list.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// Mapped service or service as sent.
    pub service: Option<String>,
    /// At or after (ms).
    pub since: Option<i64>,
    /// At or before (ms).
    pub until: Option<i64>,
    /// Most rows.
    pub limit: i64,
}

const COLUMNS: &str =
    "id, service, mapped, kind, at, version, author, link, description, received_at";

impl Store {
    /// Stores change events in one transaction; one already stored (same service, kind, time
    /// and version) is not stored again. Returns each event's id and whether it was new.
    pub async fn insert_changes(
        &self,
        changes: &[NewChange],
        received_at: i64,
    ) -> Result<Vec<(i64, bool)>, StoreError> {
        let ids = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut ids = Vec::with_capacity(changes.len());
            for change in changes {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO changes (service, mapped, kind, at, version, author, link, description, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(&change.service)
                .bind(&change.mapped)
                .bind(change.kind)
                .bind(change.at)
                .bind(&change.version)
                .bind(&change.author)
                .bind(&change.link)
                .bind(&change.description)
                .bind(received_at)
                .fetch_optional(&mut *tx)
                .await?;
                let id = match inserted {
                    Some(id) => (id, true),
                    None => {
                        let id: i64 = sqlx::query_scalar(
                            "SELECT id FROM changes WHERE service = $1 AND kind = $2 AND at = $3 AND version = $4",
                        )
                        .bind(&change.service)
                        .bind(change.kind)
                        .bind(change.at)
                        .bind(&change.version)
                        .fetch_one(&mut *tx)
                        .await?;
                        (id, false)
                    }
                };
                ids.push(id);
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Change events matching `filter`, most recent first.
    pub async fn list_changes(
        &self,
        filter: &ChangeFilter,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM changes WHERE \
             ($1 IS NULL OR mapped = $1 OR service = $1) AND ($2 IS NULL OR at >= $2) \
             AND ($3 IS NULL OR at <= $3) ORDER BY at DESC, id DESC LIMIT $4"
        );
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredChange>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(filter.service.as_deref())
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
