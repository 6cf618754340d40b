//! Stored topology versions.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Store, StoreError, with_pool};

/// A version to store. `parent` must be the newest stored version (or `None` for the first).
#[derive(Debug, Clone)]
pub struct NewTopologyVersion<'a> {
    /// The version this one replaces.
    pub parent: Option<i64>,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// Who or what made it: `api`, `file:/etc/rootcause/topology.yaml`, `builtin:online-boutique`.
    pub source: &'a str,
    /// Free text from whoever made the change.
    pub note: &'a str,
    /// Content hash of the topology.
    pub digest: &'a str,
    /// Number of services.
    pub service_count: usize,
    /// Number of dependencies.
    pub dependency_count: usize,
    /// The canonical JSON document.
    pub document: &'a str,
}

/// What is stored about a version, without its document.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TopologyVersionRow {
    /// Version id: increasing, never reused.
    pub id: i64,
    /// The version it replaced; `None` for the first.
    pub parent_id: Option<i64>,
    /// When it was stored, epoch milliseconds.
    pub created_at_ms: i64,
    /// Who or what made it.
    pub source: String,
    /// Free text.
    pub note: String,
    /// Content hash.
    pub digest: String,
    /// Number of services.
    pub service_count: i64,
    /// Number of dependencies.
    pub dependency_count: i64,
}

/// A version with its document.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredTopology {
    /// The version.
    #[sqlx(flatten)]
    pub version: TopologyVersionRow,
    /// The canonical JSON document.
    pub document: String,
}

const COLUMNS: &str =
    "id, parent_id, created_at_ms, source, note, digest, service_count, dependency_count";

impl Store {
    /// Stores a new version. Fails with [`StoreError::Conflict`] when `parent` is not the newest
    /// version (someone else changed the topology first): each version can be a parent once
    /// (UNIQUE), there is one first version (a unique index), and a parent must exist (a foreign
    /// key), so the database itself keeps the chain linear against any number of writers.
    pub async fn insert_topology_version(
        &self,
        new: &NewTopologyVersion<'_>,
    ) -> Result<TopologyVersionRow, StoreError> {
        let result = with_pool!(self, pool => {
            sqlx::query_as::<_, TopologyVersionRow>(
                "INSERT INTO topology_versions \
                 (parent_id, created_at_ms, source, note, digest, service_count, dependency_count, document) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING id, parent_id, created_at_ms, source, note, digest, service_count, dependency_count",
            )
            .bind(new.parent)
            .bind(new.created_at.timestamp_millis())
            .bind(new.source)
            .bind(new.note)
            .bind(new.digest)
            .bind(new.service_count as i64)
            .bind(new.dependency_count as i64)
            .bind(new.document)
            .fetch_one(pool)
            .await
        });
        result.map_err(|error| match error.as_database_error() {
            Some(db) if db.is_unique_violation() || db.is_foreign_key_violation() => {
                let parent = new.parent.map_or("none".to_owned(), |id| id.to_string());
                StoreError::Conflict(format!(
                    "the change was based on topology version {parent}, which is not the newest \
                     (another change was stored first)"
                ))
            }
            _ => StoreError::Database(error),
        })
    }

    /// The newest version with its document.
    pub async fn latest_topology_version(&self) -> Result<Option<StoredTopology>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, StoredTopology>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS}, document FROM topology_versions ORDER BY id DESC LIMIT 1"
            )))
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// One version with its document.
    pub async fn topology_version(&self, id: i64) -> Result<Option<StoredTopology>, StoreError> {
        self.select_by_id("topology_versions", &format!("{COLUMNS}, document"), id)
            .await
    }

    /// Versions newest first, older than `before` when given, at most `limit`.
    pub async fn topology_versions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TopologyVersionRow>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, TopologyVersionRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM topology_versions WHERE id < $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// The id of the newest version, without its document.
    pub async fn latest_topology_version_id(&self) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT MAX(id) FROM topology_versions")
                .fetch_one(pool)
                .await
        })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::tests::on_both_engines;

    fn version<'a>(
        parent: Option<i64>,
        digest: &'a str,
        document: &'a str,
    ) -> NewTopologyVersion<'a> {
        NewTopologyVersion {
            parent,
            created_at: Utc.timestamp_millis_opt(1_790_000_000_123).unwrap(),
            source: "test",
            note: "a note",
            digest,
            service_count: 3,
            dependency_count: 2,
            document,
        }
    }

    #[tokio::test]
    async fn versions_form_one_chain() {
        on_both_engines(|store| async move {
            assert_eq!(store.latest_topology_version().await.unwrap(), None);
            assert!(store.topology_versions(None, 10).await.unwrap().is_empty());

            let first = store
                .insert_topology_version(&version(None, "d1", "{\"v\":1}"))
                .await
                .unwrap();
            assert_eq!(first.parent_id, None);
            assert_eq!(first.created_at_ms, 1_790_000_000_123);
            assert_eq!((first.service_count, first.dependency_count), (3, 2));
            assert_eq!(first.note, "a note");

            // A second first version, or a second child of the same parent, is a conflict.
            let again = store
                .insert_topology_version(&version(None, "x", "{}"))
                .await;
            assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
            let second = store
                .insert_topology_version(&version(Some(first.id), "d2", "{\"v\":2}"))
                .await
                .unwrap();
            assert!(second.id > first.id);
            assert_eq!(second.parent_id, Some(first.id));
            let stale = store
                .insert_topology_version(&version(Some(first.id), "d3", "{}"))
                .await;
            match stale {
                Err(StoreError::Conflict(message)) => {
                    assert!(message.contains(&first.id.to_string()), "{message}")
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
            // A parent that does not exist is refused too (foreign key).
            let unknown = store
                .insert_topology_version(&version(Some(second.id + 50), "d4", "{}"))
                .await;
            assert!(
                matches!(unknown, Err(StoreError::Conflict(_))),
                "{unknown:?}"
            );
            assert_eq!(
                store.latest_topology_version_id().await.unwrap(),
                Some(second.id)
            );

            let latest = store.latest_topology_version().await.unwrap().unwrap();
            assert_eq!(latest.version, second);
            assert_eq!(latest.document, "{\"v\":2}");
            let by_id = store.topology_version(first.id).await.unwrap().unwrap();
            assert_eq!(by_id.version, first);
            assert_eq!(by_id.document, "{\"v\":1}");
            assert_eq!(store.topology_version(second.id + 100).await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn the_unique_parent_stops_a_racing_writer() {
        on_both_engines(|store| async move {
            let first = store
                .insert_topology_version(&version(None, "d1", "{}"))
                .await
                .unwrap();
            // Two writers that both read `first` as the newest: the database lets one win.
            let (version_a, version_b) = (
                version(Some(first.id), "a", "{}"),
                version(Some(first.id), "b", "{}"),
            );
            let (a, b) = tokio::join!(
                store.insert_topology_version(&version_a),
                store.insert_topology_version(&version_b),
            );
            let wins = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
            assert_eq!(wins, 1, "{a:?} {b:?}");
            assert!(matches!(a.err().or(b.err()), Some(StoreError::Conflict(_))));
        })
        .await;
    }

    #[tokio::test]
    async fn versions_are_listed_newest_first_page_by_page() {
        on_both_engines(|store| async move {
            let mut parent = None;
            let mut ids = Vec::new();
            for i in 0..5 {
                let digest = format!("d{i}");
                let row = store
                    .insert_topology_version(&version(parent, &digest, "{}"))
                    .await
                    .unwrap();
                parent = Some(row.id);
                ids.push(row.id);
            }
            let page = store.topology_versions(None, 2).await.unwrap();
            assert_eq!(
                page.iter().map(|v| v.id).collect::<Vec<_>>(),
                [ids[4], ids[3]]
            );
            let next = store.topology_versions(Some(ids[3]), 2).await.unwrap();
            assert_eq!(
                next.iter().map(|v| v.id).collect::<Vec<_>>(),
                [ids[2], ids[1]]
            );
            let last = store.topology_versions(Some(ids[1]), 2).await.unwrap();
            assert_eq!(last.iter().map(|v| v.id).collect::<Vec<_>>(), [ids[0]]);
            assert_eq!(last[0].digest, "d0");
        })
        .await;
    }
}
