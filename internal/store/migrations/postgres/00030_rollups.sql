-- +goose Up
-- Daily rollups for analytics and reports (digest §5.8, §5.9): the figures
-- are sums of these rows, never scans of raw events. They are kept in the
-- same transaction as the events they count (store/rollup.go) and can be
-- recomputed from the raw events (heldsway rollups rebuild). Counters are in
-- the column order of heldsway.Counts; money in minor units of currency.
--
-- day is the local calendar day (yyyymmdd) in rollup_state.timezone, the
-- workspace's time zone when its rollups were started or last rebuilt.

-- The time zone a workspace's rollups are kept in. A workspace's timezone
-- setting takes effect for analytics at the next rebuild, so the days of one
-- workspace are never cut in two different time zones. Writers hold a
-- KEY SHARE lock on this row (PostgreSQL) for their transaction; a rebuild
-- takes FOR UPDATE, so no event is counted twice or missed while it runs.
CREATE TABLE rollup_state (
    workspace_id BIGINT  PRIMARY KEY,
    timezone     TEXT    NOT NULL,
    rebuilt_at   BIGINT               -- NULL: kept incrementally since the first event
);

-- Per program, affiliate and link (0: none, e.g. a ?ref= landing has link 0),
-- for attributed events only: clicks, the storefront events of attributed
-- visitors and attributed orders. currency is '' on rows of non-money counts
-- (clicks, events), the order's currency on rows of orders.
--
-- Each change is kept at four spans: the day itself (span 1) and the blocks of
-- 4, 16 and 64 days holding it (day = the block's first day; blocks are
-- aligned on days since 1970-01-01). A range of days reads the fewest blocks
-- that cover it, about ten for 90 days instead of 90 days of rows: a top-N
-- table over thousands of affiliates then reads thousands of rows, not
-- hundreds of thousands.
CREATE TABLE rollup_daily (
    workspace_id        BIGINT NOT NULL,
    span                INTEGER NOT NULL,  -- 1, 4, 16 or 64 days
    day                 INTEGER NOT NULL,
    program_id          BIGINT NOT NULL,
    affiliate_id        BIGINT NOT NULL,
    link_id             BIGINT NOT NULL,
    currency            TEXT    NOT NULL,
    shard               INTEGER NOT NULL,  -- PostgreSQL: 0-7 (see rollup.go dimShards); SQLite: 0
    clicks              BIGINT NOT NULL DEFAULT 0,
    events              BIGINT NOT NULL DEFAULT 0,
    pageviews           BIGINT NOT NULL DEFAULT 0,
    sessions            BIGINT NOT NULL DEFAULT 0,
    product_views       BIGINT NOT NULL DEFAULT 0,
    add_to_carts        BIGINT NOT NULL DEFAULT 0,
    remove_from_carts   BIGINT NOT NULL DEFAULT 0,
    checkouts           BIGINT NOT NULL DEFAULT 0,
    thank_you_views     BIGINT NOT NULL DEFAULT 0,
    conversions         BIGINT NOT NULL DEFAULT 0,
    revenue             BIGINT NOT NULL DEFAULT 0,
    commission_pending  BIGINT NOT NULL DEFAULT 0,
    commission_approved BIGINT NOT NULL DEFAULT 0,
    commission_paid     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, span, day, program_id, affiliate_id, link_id, currency, shard)
) WITH (fillfactor = 80); -- room for HOT updates of the counters
CREATE INDEX rollup_daily_affiliate ON rollup_daily (workspace_id, affiliate_id, span, day);
CREATE INDEX rollup_daily_link ON rollup_daily (workspace_id, link_id, span, day);

-- Workspace totals of every event, attributed or not. On PostgreSQL shard
-- spreads one day's writers over 64 rows so concurrent transactions rarely
-- wait on one another: clicks use shard 0 (one group-commit writer per node),
-- an order its id mod 64, a storefront event a hash of its session. SQLite
-- has one writer: shard is always 0 there.
CREATE TABLE rollup_totals (
    workspace_id        BIGINT NOT NULL,
    day                 INTEGER NOT NULL,
    shard               INTEGER NOT NULL,
    currency            TEXT    NOT NULL,
    clicks              BIGINT NOT NULL DEFAULT 0,
    events              BIGINT NOT NULL DEFAULT 0,
    pageviews           BIGINT NOT NULL DEFAULT 0,
    sessions            BIGINT NOT NULL DEFAULT 0,
    product_views       BIGINT NOT NULL DEFAULT 0,
    add_to_carts        BIGINT NOT NULL DEFAULT 0,
    remove_from_carts   BIGINT NOT NULL DEFAULT 0,
    checkouts           BIGINT NOT NULL DEFAULT 0,
    thank_you_views     BIGINT NOT NULL DEFAULT 0,
    conversions         BIGINT NOT NULL DEFAULT 0,
    revenue             BIGINT NOT NULL DEFAULT 0,
    commission_pending  BIGINT NOT NULL DEFAULT 0,
    commission_approved BIGINT NOT NULL DEFAULT 0,
    commission_paid     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, day, shard, currency)
) WITH (fillfactor = 80); -- room for HOT updates of the counters

-- The sessions already counted per day: affiliate_id 0 marks the workspace
-- total, other rows the dimensions of rollup_daily. A pageview counts a
-- session only when its row here is new (INSERT … ON CONFLICT DO NOTHING),
-- which is exact under any concurrency.
CREATE TABLE rollup_sessions (
    workspace_id BIGINT NOT NULL,
    day          INTEGER NOT NULL,
    session_id   TEXT    NOT NULL,
    program_id   BIGINT NOT NULL,
    affiliate_id BIGINT NOT NULL,
    link_id      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day, session_id, program_id, affiliate_id, link_id)
);

-- Pageviews per page (host + path): one row with program, affiliate and link
-- -1 for every pageview (what unfiltered tables read), and one with the
-- dimensions for an attributed one.
CREATE TABLE rollup_pages (
    workspace_id BIGINT NOT NULL,
    day          INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    program_id   BIGINT NOT NULL,
    affiliate_id BIGINT NOT NULL,
    link_id      BIGINT NOT NULL,
    pageviews    BIGINT NOT NULL DEFAULT 0,
    -- affiliate_id first: the -1 rows of a range, or one affiliate's, are one index range
    PRIMARY KEY (workspace_id, affiliate_id, day, host, path, program_id, link_id)
) WITH (fillfactor = 80); -- room for HOT updates of the counters

-- Product events per product, with -1 and dimension rows as rollup_pages.
-- product_name is the greatest name reported that day (order-independent, so
-- a rebuild finds the same).
CREATE TABLE rollup_products (
    workspace_id      BIGINT NOT NULL,
    day               INTEGER NOT NULL,
    product_id        TEXT    NOT NULL,
    program_id        BIGINT NOT NULL,
    affiliate_id      BIGINT NOT NULL,
    link_id           BIGINT NOT NULL,
    product_name      TEXT    NOT NULL DEFAULT '',
    product_views     BIGINT NOT NULL DEFAULT 0,
    add_to_carts      BIGINT NOT NULL DEFAULT 0,
    remove_from_carts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, affiliate_id, day, product_id, program_id, link_id)
) WITH (fillfactor = 80); -- room for HOT updates of the counters

-- A storefront event's program: the program of the click that attributes it
-- (NULL when unattributed), kept so the program dimension survives an
-- affiliate moving to another program.
ALTER TABLE storefront_events ADD COLUMN program_id BIGINT;

-- +goose Down
ALTER TABLE storefront_events DROP COLUMN program_id;
DROP TABLE rollup_products;
DROP TABLE rollup_pages;
DROP TABLE rollup_sessions;
DROP TABLE rollup_totals;
DROP TABLE rollup_daily;
DROP TABLE rollup_state;
