-- +goose Up
-- A run holds a lease while it works: a run whose process died (lease_until in
-- the past, status still running) is resumed by the next attempt at the same
-- period, which skips the affiliates the first attempt already paid.
ALTER TABLE payout_runs ADD COLUMN lease_until INTEGER;
ALTER TABLE payout_runs ADD COLUMN currency TEXT;
ALTER TABLE payout_runs ADD COLUMN carried_forward INTEGER NOT NULL DEFAULT 0;
-- A payout's ledger entries (its creation and, if it failed, its return).
CREATE INDEX ledger_payout ON ledger_entries (payout_id) WHERE payout_id IS NOT NULL;

-- +goose Down
DROP INDEX ledger_payout;
ALTER TABLE payout_runs DROP COLUMN carried_forward;
ALTER TABLE payout_runs DROP COLUMN currency;
ALTER TABLE payout_runs DROP COLUMN lease_until;
