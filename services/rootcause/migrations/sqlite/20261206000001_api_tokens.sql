-- API tokens: who may call the API and with which scopes (ingest, read, respond, admin). Only a
-- SHA-256 digest of each secret is stored; the secret is shown once, when the token is created.
-- A revoked token keeps its row so that the audit log's actor names stay explained.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    digest     TEXT    NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
