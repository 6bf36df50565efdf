-- +goose Up
-- Money is INTEGER minor units of the row's currency; rates are INTEGER basis
-- points (10.00% = 1000). Every table leads with workspace_id.

-- Per-workspace settings that are not a program's: branding, payouts, time zone.
CREATE TABLE workspace_settings (
    workspace_id        INTEGER PRIMARY KEY REFERENCES workspaces (id),
    brand_name          TEXT,
    primary_color       TEXT,
    secondary_color     TEXT,
    logo_url            TEXT,
    custom_domain       TEXT UNIQUE,
    payout_frequency    TEXT    NOT NULL DEFAULT 'monthly',
    payout_minimum      INTEGER NOT NULL DEFAULT 5000,
    allow_early_payouts INTEGER NOT NULL DEFAULT 0,
    timezone            TEXT    NOT NULL DEFAULT 'UTC',
    updated_at          INTEGER NOT NULL
);

CREATE TABLE programs (
    id                      INTEGER PRIMARY KEY,
    workspace_id            INTEGER NOT NULL REFERENCES workspaces (id),
    name                    TEXT    NOT NULL,
    currency                TEXT    NOT NULL,
    commission_type         TEXT    NOT NULL,           -- percentage | flat
    commission_value        INTEGER,                    -- bp or minor units; NULL inherits tiers/platform
    commission_base         TEXT    NOT NULL DEFAULT 'net', -- net | subtotal | total
    recurring               TEXT    NOT NULL DEFAULT 'off', -- off | months | lifetime
    recurring_months        INTEGER,
    cookie_days             INTEGER NOT NULL DEFAULT 30,
    attribution_model       TEXT    NOT NULL DEFAULT 'last_click',
    tier_rate               INTEGER,                    -- bp paid to the parent affiliate
    status                  TEXT    NOT NULL DEFAULT 'active',
    is_default              INTEGER NOT NULL DEFAULT 0,
    auto_approve_enabled    INTEGER NOT NULL DEFAULT 0,
    auto_approve_delay_days INTEGER NOT NULL DEFAULT 0,
    auto_approve_min_amount INTEGER,
    auto_approve_max_amount INTEGER,
    allow_self_registration INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX programs_workspace ON programs (workspace_id, id);
CREATE UNIQUE INDEX programs_default ON programs (workspace_id) WHERE is_default = 1;

CREATE TABLE commission_tiers (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    min_amount   INTEGER NOT NULL,
    max_amount   INTEGER,               -- NULL: no upper bound; bands are [min, max)
    rate         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX commission_tiers_workspace ON commission_tiers (workspace_id, min_amount);

CREATE TABLE affiliate_users (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces (id),
    name          TEXT    NOT NULL,
    email         TEXT    NOT NULL,     -- lower-cased
    phone         TEXT,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX affiliate_users_email ON affiliate_users (workspace_id, email);

CREATE TABLE affiliates (
    id                  INTEGER PRIMARY KEY,
    workspace_id        INTEGER NOT NULL REFERENCES workspaces (id),
    program_id          INTEGER NOT NULL REFERENCES programs (id),
    affiliate_user_id   INTEGER NOT NULL REFERENCES affiliate_users (id),
    parent_affiliate_id INTEGER REFERENCES affiliates (id),
    referral_code       TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    commission_rate     INTEGER,        -- bp override; NULL inherits
    notes               TEXT,
    -- Denormalised from affiliate_users so lists sort and search without a join.
    name                TEXT    NOT NULL,
    email               TEXT    NOT NULL,
    approved_at         INTEGER,
    suspended_at        INTEGER,
    terminated_at       INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX affiliates_code ON affiliates (workspace_id, referral_code);
CREATE UNIQUE INDEX affiliates_program_email ON affiliates (workspace_id, program_id, email);
CREATE INDEX affiliates_created ON affiliates (workspace_id, created_at, id);
CREATE INDEX affiliates_status ON affiliates (workspace_id, status, created_at, id);
CREATE INDEX affiliates_parent ON affiliates (workspace_id, parent_affiliate_id);

CREATE TABLE links (
    id              INTEGER PRIMARY KEY,
    workspace_id    INTEGER NOT NULL REFERENCES workspaces (id),
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    slug            TEXT    NOT NULL,
    destination_url TEXT    NOT NULL,
    campaign        TEXT,
    is_active       INTEGER NOT NULL DEFAULT 1,
    click_count     INTEGER NOT NULL DEFAULT 0,
    metadata        TEXT,               -- JSON object
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX links_slug ON links (workspace_id, slug);
CREATE INDEX links_slug_global ON links (slug);
CREATE INDEX links_affiliate ON links (workspace_id, affiliate_id, created_at, id);
CREATE INDEX links_created ON links (workspace_id, created_at, id);

CREATE TABLE link_batches (
    id              INTEGER PRIMARY KEY,
    workspace_id    INTEGER NOT NULL REFERENCES workspaces (id),
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL,   -- pending | processing | completed | failed
    total_items     INTEGER NOT NULL,
    processed_items INTEGER NOT NULL DEFAULT 0,
    failed_items    INTEGER NOT NULL DEFAULT 0,
    request         TEXT    NOT NULL,   -- JSON: the validated items
    results         TEXT    NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER
);
CREATE INDEX link_batches_status ON link_batches (status, id);

CREATE TABLE coupons (
    id               INTEGER PRIMARY KEY,
    workspace_id     INTEGER NOT NULL REFERENCES workspaces (id),
    affiliate_id     INTEGER NOT NULL REFERENCES affiliates (id),
    code             TEXT    NOT NULL,
    code_key         TEXT    NOT NULL,  -- upper-cased code: uniqueness is case-insensitive
    discount_type    TEXT    NOT NULL,  -- percentage | fixed
    discount_value   INTEGER NOT NULL,  -- bp or minor units of currency
    currency         TEXT    NOT NULL,
    min_order_amount INTEGER,
    starts_at        INTEGER,
    ends_at          INTEGER,
    is_active        INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX coupons_code ON coupons (workspace_id, code_key);
CREATE INDEX coupons_created ON coupons (workspace_id, created_at, id);

-- Append-only: no route updates or deletes these rows.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL,
    actor_type    TEXT    NOT NULL,     -- api_key | public | system
    actor_id      INTEGER,
    action        TEXT    NOT NULL,     -- e.g. affiliate.approve
    resource_type TEXT    NOT NULL,
    resource_id   INTEGER,
    changes       TEXT    NOT NULL,     -- JSON {"field":{"before":…,"after":…}}
    request_id    TEXT,
    ip            TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX audit_log_ws ON audit_log (workspace_id, id);
CREATE INDEX audit_log_resource ON audit_log (workspace_id, resource_type, resource_id, id);

-- The outbox webhooks deliver from.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL,
    type          TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   INTEGER,
    data          TEXT    NOT NULL,     -- JSON snapshot of the resource
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_ws ON events (workspace_id, id);
CREATE INDEX events_type ON events (workspace_id, type, id);

CREATE TABLE idempotency_keys (
    workspace_id INTEGER NOT NULL,
    scope        TEXT    NOT NULL,      -- "key:<api key id>" or "ip:<address>"
    key          TEXT    NOT NULL,
    fingerprint  BLOB    NOT NULL,      -- SHA-256 of method, path and body
    status       INTEGER,               -- NULL while the first request runs
    headers      TEXT,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE audit_log;
DROP TABLE coupons;
DROP TABLE link_batches;
DROP TABLE links;
DROP TABLE affiliates;
DROP TABLE affiliate_users;
DROP TABLE commission_tiers;
DROP TABLE programs;
DROP TABLE workspace_settings;
