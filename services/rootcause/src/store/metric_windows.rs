//! Metric windows posted with incidents: one row per series per post, never rewritten.
//!
//! A post only ever appends, so two posts for the same incident at the same moment cannot lose
//! each other's points, and reading a series back merges its rows in the order they were
//! stored. Rows stay with the incident they were posted to; reading an incident's metrics also
//! reads those of every incident merged into it (transitively, through `merged_into`), so a
//! merge needs no rewrite either.

use sqlx::FromRow;

use super::{Backend, Store, StoreError};

/// One series of one post, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricWrite {
    /// The topology service it describes.
    pub service: String,
    /// The metric name.
    pub name: String,
    /// Unix seconds, strictly increasing.
    pub times: Vec<i64>,
    /// One value per time; NaN for "no data".
    pub values: Vec<f64>,
}

/// A stored series row of an incident (or of one merged into it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMetric {
    /// Row id: the order posts were stored in.
    pub id: i64,
    /// The incident it was posted to.
    pub incident_id: i64,
    /// Service.
    pub service: String,
    /// Metric name.
    pub name: String,
    /// Unix seconds, strictly increasing.
    pub times: Vec<i64>,
    /// Values; NaN for "no data".
    pub values: Vec<f64>,
}

#[derive(FromRow)]
struct MetricRow {
    id: i64,
    incident_id: i64,
    service: String,
    name: String,
    points: String,
}

const SQLITE_INSERT: &str = "\
INSERT INTO incident_metrics (incident_id, service, name, points, received_at) \
SELECT $1, value ->> 0, value ->> 1, value ->> 2, $3 FROM json_each($2)";

const POSTGRES_INSERT: &str = "\
INSERT INTO incident_metrics (incident_id, service, name, points, received_at) \
SELECT $1, s, n, p, $5 FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[]) AS x(s, n, p)";

/// The incident and every incident merged into it, however many merges deep.
const SELECT_OF_INCIDENT: &str = "\
WITH RECURSIVE absorbed(id) AS ( \
    SELECT CAST($1 AS BIGINT) \
    UNION SELECT incidents.id FROM incidents JOIN absorbed ON incidents.merged_into = absorbed.id \
) \
SELECT id, incident_id, service, name, points FROM incident_metrics \
WHERE incident_id IN (SELECT id FROM absorbed) ORDER BY id";

impl Store {
    /// Stores the series of one post to `incident`, all in one statement (so all or none).
    pub async fn insert_incident_metrics(
        &self,
        incident: i64,
        series: &[MetricWrite],
        received_at: i64,
    ) -> Result<(), StoreError> {
        if series.is_empty() {
            return Ok(());
        }
        let points = series
            .iter()
            .map(|s| encode_points(&s.times, &s.values))
            .collect::<Vec<_>>();
        match &self.backend {
            Backend::Sqlite(pool) => {
                let rows = series
                    .iter()
                    .zip(&points)
                    .map(|(s, p)| (s.service.as_str(), s.name.as_str(), p.as_str()))
                    .collect::<Vec<_>>();
                let rows = serde_json::to_string(&rows)
                    .map_err(|e| StoreError::Corrupt(format!("cannot encode metrics: {e}")))?;
                sqlx::query(SQLITE_INSERT)
                    .bind(incident)
                    .bind(rows)
                    .bind(received_at)
                    .execute(pool)
                    .await?;
            }
            Backend::Postgres(pool) => {
                let services = series.iter().map(|s| s.service.clone()).collect::<Vec<_>>();
                let names = series.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
                sqlx::query(POSTGRES_INSERT)
                    .bind(incident)
                    .bind(services)
                    .bind(names)
                    .bind(points)
                    .bind(received_at)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every series row posted to `incident` or to an incident merged into it, oldest first.
    pub async fn incident_metrics(&self, incident: i64) -> Result<Vec<StoredMetric>, StoreError> {
        let rows = super::with_pool!(self, pool => {
            sqlx::query_as::<_, MetricRow>(SELECT_OF_INCIDENT)
                .bind(incident)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|row| {
                let (times, values) = decode_points(&row.points).map_err(|why| {
                    StoreError::Corrupt(format!("incident_metrics row {}: {why}", row.id))
                })?;
                Ok(StoredMetric {
                    id: row.id,
                    incident_id: row.incident_id,
                    service: row.service,
                    name: row.name,
                    times,
                    values,
                })
            })
            .collect()
    }
}

/// `[[t, v], ...]` with `null` for NaN (JSON has no NaN).
fn encode_points(times: &[i64], values: &[f64]) -> String {
    let points = times
        .iter()
        .zip(values)
        .map(|(&t, &v)| (t, v.is_finite().then_some(v)))
        .collect::<Vec<_>>();
    serde_json::to_string(&points).expect("numbers always serialize")
}

fn decode_points(text: &str) -> Result<(Vec<i64>, Vec<f64>), String> {
    let points: Vec<(i64, Option<f64>)> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(points
        .into_iter()
        .map(|(t, v)| (t, v.unwrap_or(f64::NAN)))
        .unzip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_both_engines;

    fn series(service: &str, name: &str, points: &[(i64, f64)]) -> MetricWrite {
        MetricWrite {
            service: service.to_owned(),
            name: name.to_owned(),
            times: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        }
    }

    #[tokio::test]
    async fn posts_append_and_read_back_with_those_of_merged_incidents() {
        on_both_engines(|store| async move {
            store
                .insert_incident_metrics(
                    1,
                    &[
                        series("cart", "cpu", &[(60, 0.5), (120, f64::NAN)]),
                        series("db", "latency_ms", &[(60, 3.0)]),
                    ],
                    1000,
                )
                .await
                .unwrap();
            store
                .insert_incident_metrics(2, &[series("cart", "cpu", &[(180, 0.9)])], 2000)
                .await
                .unwrap();
            store
                .insert_incident_metrics(9, &[series("x", "cpu", &[(1, 1.0)])], 2000)
                .await
                .unwrap();
            let one = store.incident_metrics(1).await.unwrap();
            assert_eq!(one.len(), 2);
            assert_eq!(one[0].times, [60, 120]);
            assert_eq!(one[0].values[0], 0.5);
            assert!(one[0].values[1].is_nan(), "NaN survives as no data");
            assert!(store.incident_metrics(3).await.unwrap().is_empty());

            // Incident 2 merged into 1: its rows are read with 1's, in posting order.
            crate::store::tests::insert_incident(&store, 2, Some(1)).await;
            let merged = store.incident_metrics(1).await.unwrap();
            assert_eq!(
                merged.iter().map(|m| m.incident_id).collect::<Vec<_>>(),
                [1, 1, 2]
            );
        })
        .await;
    }
}
