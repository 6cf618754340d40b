//! Runbook catalogues operators accepted: each replacement a new version, stored with its audit
//! entry in one transaction.

use serde::Serialize;
use sqlx::FromRow;

use super::actions::{NewAudit, insert_audit};
use super::history::begin_write;
use super::{Store, StoreError, to_i64, with_pool};

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

const CATALOGUE_COLUMNS: &str = "id, yaml, digest, actor, created_at";

impl Store {
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

impl Store {
    /// Every stored catalogue version, oldest first.
    pub async fn catalogue_versions(&self) -> Result<Vec<StoredCatalogue>, StoreError> {
        self.select_all::<StoredCatalogue>(format!(
            "SELECT {CATALOGUE_COLUMNS} FROM runbook_catalogues ORDER BY id"
        ))
        .await
    }

    /// Rewrites the text of stored catalogue versions, `(id, text)`: the same catalogues with
    /// their secrets now sealed. One transaction with its audit entry.
    pub async fn rewrite_catalogues(
        &self,
        texts: &[(i64, String)],
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(self)).await?;
            for (id, text) in texts {
                sqlx::query("UPDATE runbook_catalogues SET yaml = $1 WHERE id = $2")
                    .bind(text)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(tx, audit, audit.detail.to_string());
            tx.commit().await?;
        });
        Ok(())
    }
}
