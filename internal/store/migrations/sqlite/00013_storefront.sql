-- +goose Up
-- Storefront events reported by the browser SDK (POST /v1/track/*): the raw
-- material of the analytics metrics (digest §5.8) that are not clicks or
-- orders. Like clicks this table takes millions of rows, so it stays narrow:
-- no foreign keys, NULL for every absent value, the page as host + path with
-- the UTM parameters pulled out of its query (the rest of the query is not
-- kept), money as INTEGER minor units of currency.
--
-- One row per event, except add_to_cart and remove_from_cart: one row per
-- item of the event (product, unit price, quantity).
CREATE TABLE storefront_events (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL,
    type          TEXT    NOT NULL,  -- pageview | product_view | add_to_cart | remove_from_cart | checkout | order | thank_you | identify
    visitor_id    TEXT    NOT NULL,  -- the SDK's visitor id (first-party cookie)
    session_id    TEXT    NOT NULL,  -- the SDK's, or derived: a new one after 30 min without events
    affiliate_id  INTEGER,           -- from the visitor's click (click_id) within the cookie window
    link_id       INTEGER,           -- that click's referral link; NULL for a ?ref= landing
    host          TEXT,              -- of the page URL, lower-cased
    path          TEXT,              -- of the page URL, without query or fragment
    referrer      TEXT,
    utm_source    TEXT,
    utm_medium    TEXT,
    utm_campaign  TEXT,
    utm_term      TEXT,
    utm_content   TEXT,
    product_id    TEXT,
    product_name  TEXT,
    category      TEXT,
    amount        INTEGER,           -- product events: unit price; checkout: cart total; order: order total
    currency      TEXT,              -- of amount
    quantity      INTEGER,
    cart_id       TEXT,
    order_id      TEXT,              -- the merchant's order id (order, thank_you)
    email         TEXT,              -- lower-cased (identify, thank_you)
    customer_id   TEXT,              -- the merchant's user id (identify)
    user_agent    TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX storefront_events_created ON storefront_events (workspace_id, created_at);
CREATE INDEX storefront_events_type ON storefront_events (workspace_id, type, created_at);
-- The session of an event without session_id continues the visitor's last
-- one: one index probe for the visitor's latest event.
CREATE INDEX storefront_events_visitor ON storefront_events (workspace_id, visitor_id, created_at);

-- +goose Down
DROP TABLE storefront_events;
