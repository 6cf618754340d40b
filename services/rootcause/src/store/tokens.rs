//! API tokens: names, scopes and the digests of their secrets (never the secrets).

use serde::Serialize;
use sqlx::FromRow;

use super::{Store, StoreError, with_pool};

/// A stored API token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct StoredToken {
    /// Row id.
    pub id: i64,
    /// Unique name: the actor recorded for everything done with the token.
    pub name: String,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub digest: String,
    /// Scopes, comma-separated (`ingest`, `read`, `respond`, `admin`).
    pub scopes: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms after which the token is refused, if it expires.
    pub expires_at: Option<i64>,
    /// Epoch ms it was revoked at, if it was.
    pub revoked_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, name, digest, scopes, created_at, expires_at, revoked_at";

impl Store {
    /// Stores a new token; a name already taken (even by a revoked token) is a conflict.
    pub async fn create_token(
        &self,
        name: &str,
        digest: &str,
        scopes: &str,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> Result<StoredToken, StoreError> {
        let result = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredToken>(sqlx::AssertSqlSafe(format!(
                "INSERT INTO api_tokens (name, digest, scopes, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLUMNS}"
            )))
            .bind(name)
            .bind(digest)
            .bind(scopes)
            .bind(created_at)
            .bind(expires_at)
            .fetch_one(pool)
            .await
        });
        result.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(format!("a token named {name:?} exists already"))
            }
            _ => error.into(),
        })
    }

    /// Every token, oldest first, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        self.select_all::<StoredToken>(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        ))
        .await
    }

    /// Revokes the token `name` at `at`; `false` when no unrevoked token has that name.
    pub async fn revoke_token(&self, name: &str, at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }
}
