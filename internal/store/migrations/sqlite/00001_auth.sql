-- +goose Up
-- Timestamps are INTEGER microseconds since the Unix epoch on both engines, so the
-- same SQL orders, compares and buckets them identically.
CREATE TABLE workspaces (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    slug       TEXT    NOT NULL UNIQUE,
    plan       TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id                     INTEGER PRIMARY KEY,
    workspace_id           INTEGER NOT NULL REFERENCES workspaces (id),
    name                   TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    key                    TEXT    NOT NULL UNIQUE,
    secret_hash            BLOB,
    prev_secret_hash       BLOB,
    prev_secret_expires_at INTEGER,
    scopes                 TEXT    NOT NULL,
    rate_limit             INTEGER NOT NULL DEFAULT 0,
    allowed_origins        TEXT    NOT NULL DEFAULT '',
    expires_at             INTEGER,
    revoked_at             INTEGER,
    last_used_at           INTEGER,
    created_at             INTEGER NOT NULL
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

CREATE TABLE access_tokens (
    token_hash   BLOB    PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    api_key_id   INTEGER NOT NULL,
    scopes       TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

-- +goose Down
DROP TABLE access_tokens;
DROP TABLE api_keys;
DROP TABLE workspaces;
