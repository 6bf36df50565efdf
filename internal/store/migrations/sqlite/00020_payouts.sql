-- +goose Up
-- Balances are sums of an append-only ledger, never a mutable counter.
-- available = SUM(ledger_entries.amount) per affiliate and currency;
-- in flight = SUM(payouts.amount) of pending/processing payouts; paid = completed.
-- Creating a payout writes a negative entry (kind payout), a failed payout a
-- positive one (payout_returned), so for every affiliate and currency:
-- approved − reversals + adjustments = paid + in flight + available.
CREATE TABLE ledger_entries (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL,
    affiliate_id  INTEGER NOT NULL REFERENCES affiliates (id),
    currency      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,  -- commission_approved | commission_reversed | adjustment | payout | payout_returned
    amount        INTEGER NOT NULL,  -- signed minor units: credits to the affiliate are positive
    commission_id INTEGER,
    payout_id     INTEGER,
    reason        TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_affiliate ON ledger_entries (workspace_id, affiliate_id, currency, id);
CREATE INDEX ledger_commission ON ledger_entries (workspace_id, commission_id) WHERE commission_id IS NOT NULL;

-- One row per scheduled or manual run and period: the unique key is what keeps
-- a period from being paid twice when several processes start a run at once.
CREATE TABLE payout_runs (
    id              INTEGER PRIMARY KEY,
    workspace_id    INTEGER NOT NULL,
    period_key      TEXT    NOT NULL,  -- e.g. monthly:2026-11, weekly:2026-W47, manual:<uuid>
    status          TEXT    NOT NULL,  -- running | completed | failed
    payouts_created INTEGER NOT NULL DEFAULT 0,
    started_at      INTEGER NOT NULL,
    completed_at    INTEGER
);
CREATE UNIQUE INDEX payout_runs_period ON payout_runs (workspace_id, period_key);

CREATE TABLE payouts (
    id                 INTEGER PRIMARY KEY,
    workspace_id       INTEGER NOT NULL,
    affiliate_id       INTEGER NOT NULL REFERENCES affiliates (id),
    currency           TEXT    NOT NULL,
    amount             INTEGER NOT NULL,
    status             TEXT    NOT NULL,  -- pending | processing | completed | failed
    method             TEXT    NOT NULL DEFAULT 'manual', -- manual | paypal | bank
    run_id             INTEGER REFERENCES payout_runs (id),
    request_id         INTEGER,
    external_reference TEXT,
    failure_reason     TEXT,
    processing_at      INTEGER,
    completed_at       INTEGER,
    failed_at          INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
-- One payout per affiliate and currency per run.
CREATE UNIQUE INDEX payouts_run ON payouts (run_id, affiliate_id, currency) WHERE run_id IS NOT NULL;
CREATE INDEX payouts_created ON payouts (workspace_id, created_at, id);
CREATE INDEX payouts_status ON payouts (workspace_id, status, created_at, id);
CREATE INDEX payouts_affiliate ON payouts (workspace_id, affiliate_id, created_at, id);

-- The commissions a payout settles. A commission is in at most one live payout
-- (commissions.payout_id); a failed payout releases them, history stays here.
CREATE TABLE payout_items (
    payout_id     INTEGER NOT NULL REFERENCES payouts (id),
    commission_id INTEGER NOT NULL REFERENCES commissions (id),
    workspace_id  INTEGER NOT NULL,
    amount        INTEGER NOT NULL,  -- the commission's net amount when paid
    PRIMARY KEY (payout_id, commission_id)
);
CREATE INDEX payout_items_commission ON payout_items (commission_id);

CREATE TABLE payout_requests (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    affiliate_id INTEGER NOT NULL REFERENCES affiliates (id),
    currency     TEXT    NOT NULL,
    amount       INTEGER NOT NULL,
    status       TEXT    NOT NULL,  -- pending | approved | rejected
    payout_id    INTEGER REFERENCES payouts (id),
    note         TEXT,
    reason       TEXT,              -- why it was rejected
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX payout_requests_status ON payout_requests (workspace_id, status, created_at, id);

-- +goose Down
DROP TABLE payout_requests;
DROP TABLE payout_items;
DROP TABLE payouts;
DROP TABLE payout_runs;
DROP TABLE ledger_entries;
