-- Metric windows posted with an incident (POST /api/v1/incidents/{id}/metrics). Each post adds
-- one row per series and never rewrites one: concurrent posts cannot lose each other's points,
-- and reading merges a series' rows in id order (a later point at the same time wins). Rows
-- keep the incident they were posted to; a merged incident's rows are found through
-- incidents.merged_into. `points` is JSON `[[unix_seconds, value], ...]`, sorted, with null
-- for "no data".
CREATE TABLE incident_metrics (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id BIGINT NOT NULL,
    service     TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    points      TEXT   NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX incident_metrics_incident ON incident_metrics (incident_id, id);
CREATE INDEX incidents_merged_into ON incidents (merged_into);
