-- +goose Up
-- Commission rules of a referral link: the first level of the rate precedence
-- (link rule → affiliate override → program rate → tiers → platform). A rule
-- applies to an order attributed through its link when all its conditions hold;
-- the active rules are tried by priority (lower first), ties by id.
--
-- value is basis points (percentage) or minor units of currency (flat);
-- min_order_amount is minor units of currency: the currency of the link's
-- affiliate's program when the rule was written. product_ids and categories are
-- JSON arrays of strings, NULL when the condition is not given.
--
-- Deleting a link deletes its rules (ON DELETE CASCADE; foreign keys are on in
-- both engines): the link's own audit entry records the deletion, and an id
-- SQLite might reuse for a later link never inherits old rules.
CREATE TABLE link_rules (
    id               INTEGER PRIMARY KEY,
    workspace_id     INTEGER NOT NULL REFERENCES workspaces (id),
    link_id          INTEGER NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    type             TEXT    NOT NULL,   -- percentage | flat
    value            INTEGER NOT NULL,
    currency         TEXT    NOT NULL,
    product_ids      TEXT,
    categories       TEXT,
    min_order_amount INTEGER,
    priority         INTEGER NOT NULL DEFAULT 0,
    is_active        INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- The conversion reads a link's active rules in evaluation order; the list
-- pages in the same order.
CREATE INDEX link_rules_link ON link_rules (workspace_id, link_id, priority, id);
-- The cascade from a deleted link looks rules up by link_id alone.
CREATE INDEX link_rules_link_only ON link_rules (link_id);

-- +goose Down
DROP TABLE link_rules;
