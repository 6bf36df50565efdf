-- +goose Up
-- Orders (conversions) and their commissions. Money in INTEGER minor units of the
-- order's currency, rates in basis points, times in unix microseconds.

-- A customer's binding to the affiliate who referred them, for lifetime and
-- recurring programs: later orders with no other evidence are attributed here.
CREATE TABLE customers (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    email        TEXT,                  -- lower-cased
    external_id  TEXT,                  -- the merchant's customer id
    name         TEXT,
    affiliate_id INTEGER REFERENCES affiliates (id),
    program_id   INTEGER REFERENCES programs (id),
    bound_at     INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX customers_email ON customers (workspace_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX customers_external ON customers (workspace_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE orders (
    id                INTEGER PRIMARY KEY,
    workspace_id      INTEGER NOT NULL REFERENCES workspaces (id),
    order_id          TEXT    NOT NULL,  -- the merchant's id; one order per id per workspace
    status            TEXT    NOT NULL,  -- pending | approved | rejected | cancelled
    currency          TEXT    NOT NULL,
    total             INTEGER NOT NULL,
    subtotal          INTEGER NOT NULL,
    discount          INTEGER NOT NULL DEFAULT 0,
    tax               INTEGER NOT NULL DEFAULT 0,
    refunded_amount   INTEGER NOT NULL DEFAULT 0,
    commission_amount INTEGER NOT NULL DEFAULT 0, -- sum of the order's commissions, net of reversals
    commission_rate   INTEGER,                    -- the first-tier rate in bp; NULL for flat or none
    affiliate_id      INTEGER REFERENCES affiliates (id),
    program_id        INTEGER REFERENCES programs (id),
    link_id           INTEGER,
    click_id          TEXT,
    coupon_id         INTEGER,
    coupon_code       TEXT,
    customer_id       INTEGER REFERENCES customers (id),
    customer_email    TEXT,
    customer_name     TEXT,
    subscription_id   TEXT,
    attribution       TEXT    NOT NULL,  -- click | coupon | referral_code | customer | none
    flags             TEXT    NOT NULL DEFAULT '', -- space-separated, e.g. self_referral
    metadata          TEXT,              -- JSON object
    converted_at      INTEGER NOT NULL,
    approved_at       INTEGER,
    rejected_at       INTEGER,
    cancelled_at      INTEGER,
    auto_approve_at   INTEGER,           -- when auto-approval will look at it; NULL if not eligible
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX orders_order_id ON orders (workspace_id, order_id);
CREATE INDEX orders_converted ON orders (workspace_id, converted_at, id);
CREATE INDEX orders_status ON orders (workspace_id, status, converted_at, id);
CREATE INDEX orders_affiliate ON orders (workspace_id, affiliate_id, converted_at, id);
CREATE INDEX orders_subscription ON orders (workspace_id, subscription_id, converted_at) WHERE subscription_id IS NOT NULL;
CREATE INDEX orders_auto_approve ON orders (auto_approve_at) WHERE status = 'pending' AND auto_approve_at IS NOT NULL;

CREATE TABLE order_items (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    product_id   TEXT,
    name         TEXT,
    category     TEXT,
    quantity     INTEGER NOT NULL,
    price        INTEGER NOT NULL        -- unit price, minor units
);
CREATE INDEX order_items_order ON order_items (workspace_id, order_id);

-- One commission per beneficiary of an order: tier 1 the referring affiliate,
-- tier 2 its parent in a multi-tier program.
CREATE TABLE commissions (
    id              INTEGER PRIMARY KEY,
    workspace_id    INTEGER NOT NULL,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    tier            INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    amount          INTEGER NOT NULL,    -- as computed; never changes
    reversed_amount INTEGER NOT NULL DEFAULT 0,
    rate            INTEGER,             -- bp; NULL for flat
    rule            TEXT    NOT NULL,    -- which precedence level set the rate
    base_amount     INTEGER NOT NULL,
    explanation     TEXT    NOT NULL,
    status          TEXT    NOT NULL,    -- pending | approved | rejected | reversed | paid
    payout_id       INTEGER,
    created_at      INTEGER NOT NULL,
    approved_at     INTEGER,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX commissions_order ON commissions (workspace_id, order_id);
CREATE INDEX commissions_affiliate ON commissions (workspace_id, affiliate_id, status, created_at, id);
CREATE INDEX commissions_created ON commissions (workspace_id, created_at, id);

-- +goose Down
DROP TABLE commissions;
DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE customers;
