-- +goose Up
-- A run holds a lease while it works: a run whose process died (lease_until in
-- the past, status still running) is resumed by the next attempt at the same
-- period, which skips the affiliates the first attempt already paid.
ALTER TABLE payout_runs ADD COLUMN lease_until INTEGER;
ALTER TABLE payout_runs ADD COLUMN currency TEXT;
ALTER TABLE payout_runs ADD COLUMN carried_forward INTEGER NOT NULL DEFAULT 0;
-- A payout's ledger entries (its creation and, if it failed, its return).
CREATE INDEX ledger_payout ON ledger_entries (payout_id) WHERE payout_id IS NOT NULL;

-- Which live payout settles a commission is a row of payout_items keyed by the
-- commission, not a column of commissions: a run over a million commissions
-- then inserts a million narrow rows instead of rewriting a million wide ones
-- (and their four indexes), and the primary key is the guarantee that no
-- commission is in two live payouts. A failed payout's items move to
-- payout_items_released, its history.
DROP INDEX payout_items_commission;
ALTER TABLE payout_items RENAME TO payout_items_old;
CREATE TABLE payout_items (
    commission_id INTEGER PRIMARY KEY,
    payout_id     INTEGER NOT NULL,
    workspace_id  INTEGER NOT NULL,
    amount        INTEGER NOT NULL  -- the commission's net amount when the payout was created
);
CREATE INDEX payout_items_payout ON payout_items (payout_id);
CREATE TABLE payout_items_released (
    payout_id     INTEGER NOT NULL,
    commission_id INTEGER NOT NULL,
    workspace_id  INTEGER NOT NULL,
    amount        INTEGER NOT NULL,
    released_at   INTEGER NOT NULL,
    PRIMARY KEY (payout_id, commission_id)
);
INSERT INTO payout_items (commission_id, payout_id, workspace_id, amount)
    SELECT o.commission_id, o.payout_id, o.workspace_id, o.amount FROM payout_items_old o
    JOIN commissions c ON c.id = o.commission_id AND c.payout_id = o.payout_id;
INSERT INTO payout_items_released (payout_id, commission_id, workspace_id, amount, released_at)
    SELECT o.payout_id, o.commission_id, o.workspace_id, o.amount, COALESCE(p.failed_at, p.updated_at) FROM payout_items_old o
    JOIN payouts p ON p.id = o.payout_id WHERE p.status = 'failed';
DROP TABLE payout_items_old;
ALTER TABLE commissions DROP COLUMN payout_id;

-- +goose Down
ALTER TABLE commissions ADD COLUMN payout_id INTEGER;
UPDATE commissions SET payout_id = (SELECT pi.payout_id FROM payout_items pi WHERE pi.commission_id = commissions.id);
DROP INDEX payout_items_payout;
ALTER TABLE payout_items RENAME TO payout_items_new;
CREATE TABLE payout_items (
    payout_id     INTEGER NOT NULL REFERENCES payouts (id),
    commission_id INTEGER NOT NULL REFERENCES commissions (id),
    workspace_id  INTEGER NOT NULL,
    amount        INTEGER NOT NULL,
    PRIMARY KEY (payout_id, commission_id)
);
INSERT INTO payout_items (payout_id, commission_id, workspace_id, amount)
    SELECT payout_id, commission_id, workspace_id, amount FROM payout_items_new
    UNION ALL SELECT payout_id, commission_id, workspace_id, amount FROM payout_items_released;
DROP TABLE payout_items_new;
DROP TABLE payout_items_released;
CREATE INDEX payout_items_commission ON payout_items (commission_id);
DROP INDEX ledger_payout;
ALTER TABLE payout_runs DROP COLUMN carried_forward;
ALTER TABLE payout_runs DROP COLUMN currency;
ALTER TABLE payout_runs DROP COLUMN lease_until;
