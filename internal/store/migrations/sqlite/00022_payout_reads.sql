-- +goose Up
-- Reads of the payouts API. The payouts completed in a month (stats) without
-- reading every completed payout of the workspace:
CREATE INDEX payouts_completed ON payouts (workspace_id, completed_at) WHERE status = 'completed';
-- The payout request list pages by created_at, filtered by status (00020's
-- payout_requests_status), by affiliate, or neither; a new request sums the
-- affiliate's pending requests through payout_requests_affiliate too.
CREATE INDEX payout_requests_created ON payout_requests (workspace_id, created_at, id);
CREATE INDEX payout_requests_affiliate ON payout_requests (workspace_id, affiliate_id, created_at, id);

-- +goose Down
DROP INDEX payout_requests_affiliate;
DROP INDEX payout_requests_created;
DROP INDEX payouts_completed;
