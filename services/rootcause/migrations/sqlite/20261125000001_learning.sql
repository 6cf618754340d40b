-- The learning feature: labelled past incidents to train on, the resolutions and feedback
-- operators record, the registry of ranking model versions, and the training jobs.

-- Labelled past incidents, ready for training. The key (`import:<source>:<record id>`,
-- `incident:<id>`) is unique so that importing a file again or resolving an incident again
-- replaces the row instead of adding one that would count twice; it cannot be empty, or every
-- keyless row would replace the last. `evidence` is the JSON of the evidence format numbered
-- `evidence_schema` (training reads one schema, in id order: hence the index); `started_at` is
-- unix seconds, `recorded_at` epoch milliseconds.
CREATE TABLE history (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    key                TEXT    NOT NULL CHECK (key <> ''),
    source             TEXT    NOT NULL,
    system             TEXT    NOT NULL,
    started_at         BIGINT  NOT NULL,
    root_cause         TEXT    NOT NULL,
    fault_type         TEXT    NOT NULL,
    action             TEXT,
    worked             BOOLEAN,
    time_to_mitigate_s DOUBLE PRECISION,
    evidence_schema    BIGINT  NOT NULL,
    evidence           TEXT    NOT NULL,
    recorded_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX history_key ON history (key);
CREATE INDEX history_schema ON history (evidence_schema, id);

-- Resolutions of incidents, as operators record them: appended, never rewritten (an audit
-- trail); an incident's latest row is its resolution.
CREATE TABLE resolutions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id        BIGINT  NOT NULL,
    root_cause         TEXT    NOT NULL,
    fault_type         TEXT    NOT NULL,
    action             TEXT,
    worked             BOOLEAN,
    time_to_mitigate_s DOUBLE PRECISION,
    notes              TEXT    NOT NULL DEFAULT '',
    resolved_by        TEXT    NOT NULL,
    recorded_at        BIGINT  NOT NULL
);
CREATE INDEX resolutions_incident ON resolutions (incident_id, id);

-- Operators' verdicts on a ranking's hypotheses, appended like resolutions. `given_by`
-- because BY is a keyword.
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id BIGINT  NOT NULL,
    service     TEXT    NOT NULL,
    verdict     TEXT    NOT NULL CHECK (verdict IN ('confirm', 'reject')),
    model       TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    given_by    TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL
);
CREATE INDEX feedback_incident ON feedback (incident_id, id);

-- Every ranking model version the service has had; never deleted, so a rollback is activating
-- an older one. `body` is the model JSON, `figures` its evaluation JSON.
CREATE TABLE models (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    version        TEXT    NOT NULL UNIQUE,
    status         TEXT    NOT NULL CHECK (status IN ('active', 'candidate', 'retired')),
    source         TEXT    NOT NULL,
    feature_schema BIGINT  NOT NULL,
    figures        TEXT    NOT NULL,
    reason         TEXT    NOT NULL DEFAULT '',
    body           TEXT    NOT NULL,
    job_id         BIGINT,
    created_at     BIGINT  NOT NULL,
    activated_at   BIGINT
);
-- At most one active model, whichever process activates it.
CREATE UNIQUE INDEX models_one_active ON models ((status = 'active')) WHERE status = 'active';

-- Training jobs. `params` and `summary` are JSON; `progress` runs from 0 to 1.
CREATE TABLE training_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    status      TEXT    NOT NULL
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    force       BOOLEAN NOT NULL,
    params      TEXT    NOT NULL,
    stage       TEXT    NOT NULL DEFAULT '',
    progress    DOUBLE PRECISION NOT NULL DEFAULT 0,
    error       TEXT,
    model_id    BIGINT,
    summary     TEXT    NOT NULL DEFAULT '{}',
    created_at  BIGINT  NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);
-- At most one job queued or running, whichever process queues it.
CREATE UNIQUE INDEX training_jobs_one_live ON training_jobs ((status IN ('queued', 'running')))
    WHERE status IN ('queued', 'running');
