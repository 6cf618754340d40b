-- Emergency actions: the runbook catalogues operators accepted, the audit log, the decisions
-- operators take on proposed actions, and the automation runs approvals start. Times are epoch
-- milliseconds; `detail` and `payload` are JSON text.

-- Every accepted runbook catalogue version, kept so that what was allowed when can be shown;
-- the newest row is the current catalogue.
CREATE TABLE runbook_catalogues (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    yaml       TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Who did what, when: appended, never rewritten. The triggers below make the database itself
-- refuse to change or remove a row, so a bug or a hand-typed statement cannot rewrite history.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       BIGINT  NOT NULL,
    actor    TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    incident BIGINT,
    action   TEXT,
    service  TEXT,
    detail   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_incident ON audit_log (incident, id);
CREATE INDEX audit_log_kind ON audit_log (kind, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Operators' decisions on proposed actions. An action is approved at most once per incident
-- (the partial unique index), whichever process records it, so it cannot be run twice by two
-- approvals; rejections may repeat.
CREATE TABLE action_decisions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    incident BIGINT  NOT NULL,
    action   TEXT    NOT NULL,
    service  TEXT,
    decision TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    actor    TEXT    NOT NULL,
    comment  TEXT    NOT NULL DEFAULT '',
    at       BIGINT  NOT NULL
);
CREATE UNIQUE INDEX action_decisions_one_approval ON action_decisions (incident, action)
    WHERE decision = 'approved';
CREATE INDEX action_decisions_incident ON action_decisions (incident, id);

-- Automation runs (a webhook call with retries) started by approvals. Stored before the first
-- attempt so that a restarted service carries on the runs left pending or running.
CREATE TABLE action_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    decision        BIGINT  NOT NULL REFERENCES action_decisions (id),
    incident        BIGINT  NOT NULL,
    action          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL
                    CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    timeout_ms      BIGINT  NOT NULL,
    response_status INTEGER,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX action_runs_status ON action_runs (status);
CREATE INDEX action_runs_incident ON action_runs (incident, id);
