-- +goose Up
-- Keyset pages of GET /v1/affiliates seek on (workspace_id, sort, id) for every
-- documented sort: created_at and status+created_at are in 00002, and
-- referral_code is unique, so affiliates_code serves its sort. The rate sort is
-- on COALESCE(commission_rate, -1) so that rows without an override compare.
-- Filters combined with another sort (status or program_id with referral_code,
-- status or rate) filter along the sort's index instead: indexes for those
-- combinations cost a third of the insert rate on SQLite in a measurement.
CREATE INDEX affiliates_sort_status ON affiliates (workspace_id, status, id);
CREATE INDEX affiliates_sort_rate ON affiliates (workspace_id, (COALESCE(commission_rate, -1)), id);
CREATE INDEX affiliates_program ON affiliates (workspace_id, program_id, created_at, id);
-- The affiliates of one user (profile sync), and what deleting an affiliate removes.
CREATE INDEX affiliates_user ON affiliates (workspace_id, affiliate_user_id);
CREATE INDEX coupons_affiliate ON coupons (workspace_id, affiliate_id);
CREATE INDEX link_batches_affiliate ON link_batches (workspace_id, affiliate_id);

-- +goose Down
DROP INDEX link_batches_affiliate;
DROP INDEX coupons_affiliate;
DROP INDEX affiliates_user;
DROP INDEX affiliates_program;
DROP INDEX affiliates_sort_rate;
DROP INDEX affiliates_sort_status;
