-- Alerts: one row per occurrence (fingerprint, starts_at). Repeat deliveries update the row
-- (its end, its status from firing to resolved), never add one. Times are epoch milliseconds;
-- the fingerprint is Alertmanager's 64-bit hash stored with the same bits as a signed integer.
-- The unique key leads with the start time: new alerts then land at the end of the index
-- instead of on a random page each (fingerprints are hashes), which keeps a group commit of
-- thousands of alerts to a few dirty pages rather than one page per alert.
CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint   BIGINT  NOT NULL,
    starts_at     BIGINT  NOT NULL,
    ends_at       BIGINT,
    status        TEXT    NOT NULL,
    service       TEXT,
    incident_id   BIGINT,
    source        TEXT    NOT NULL,
    severity      TEXT,
    signal        TEXT    NOT NULL,
    labels        TEXT    NOT NULL,
    annotations   TEXT    NOT NULL,
    generator_url TEXT,
    received_at   BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (starts_at, fingerprint)
);
CREATE INDEX alerts_incident ON alerts (incident_id);

-- Incidents, as the correlation engine last wrote them. Ids come from the engine.
CREATE TABLE incidents (
    id               BIGINT PRIMARY KEY,
    kind             TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    opened_at        BIGINT NOT NULL,
    first_activity   BIGINT NOT NULL,
    last_activity    BIGINT NOT NULL,
    quiet_since      BIGINT,
    resolved_at      BIGINT,
    merged_into      BIGINT,
    services         TEXT   NOT NULL,
    label_groups     TEXT   NOT NULL,
    alert_count      BIGINT NOT NULL,
    firing_count     BIGINT NOT NULL,
    topology_version BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, id);

-- Which services each incident touches, for filtering by service.
CREATE TABLE incident_services (
    service     TEXT   NOT NULL,
    incident_id BIGINT NOT NULL,
    PRIMARY KEY (service, incident_id)
);

-- Each incident's timeline: opened, services joining, merges, resolution, reopening.
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

-- Deploys, configuration changes and other events that often cause incidents.
CREATE TABLE changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    service      TEXT   NOT NULL,
    mapped       TEXT,
    kind         TEXT   NOT NULL,
    at           BIGINT NOT NULL,
    version      TEXT   NOT NULL DEFAULT '',
    author       TEXT,
    link         TEXT,
    description  TEXT,
    received_at  BIGINT NOT NULL,
    UNIQUE (service, kind, at, version)
);
CREATE INDEX changes_at ON changes (at);
