-- +goose Up
-- Clicks through referral links (GET /r/{slug}). This table takes millions of
-- rows, so it stays narrow: no foreign keys (each would cost an index probe per
-- insert, and the rows are written in batches whose links were just read),
-- NULL for absent texts, and a 16-byte keyed hash instead of the address.
CREATE TABLE clicks (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL,
    link_id       INTEGER NOT NULL,
    affiliate_id  INTEGER NOT NULL,
    program_id    INTEGER NOT NULL,
    click_id      TEXT    NOT NULL,     -- public id: the hs_click parameter and hs_ref cookie
    visitor_id    TEXT    NOT NULL,     -- the hs_vid cookie
    ip_hash       BLOB,                 -- HMAC-SHA256(secret, ip), first 16 bytes
    user_agent    TEXT,
    referrer      TEXT,
    landing_query TEXT,                 -- the query string of the /r/{slug} request
    created_at    INTEGER NOT NULL
);
CREATE INDEX clicks_created ON clicks (workspace_id, created_at);
CREATE INDEX clicks_link ON clicks (workspace_id, link_id, created_at);
-- Click ids are 128-bit random, so unique per workspace is unique in practice;
-- leading with workspace_id keeps the index shardable by tenant.
CREATE UNIQUE INDEX clicks_click_id ON clicks (workspace_id, click_id);

-- Per-installation secrets, created by the first node that needs one.
CREATE TABLE installation_secrets (
    name       TEXT    PRIMARY KEY,
    secret     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Every node's link cache asks every 2 s what changed since its last look.
CREATE INDEX links_updated ON links (updated_at);
CREATE INDEX affiliates_updated ON affiliates (updated_at);
CREATE INDEX programs_updated ON programs (updated_at);

-- +goose Down
DROP INDEX programs_updated;
DROP INDEX affiliates_updated;
DROP INDEX links_updated;
DROP TABLE installation_secrets;
DROP TABLE clicks;
