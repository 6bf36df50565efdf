-- +goose Up
-- Keyset pages of GET /v1/affiliates: for each documented sort, alone and under
-- the status or program_id filter, an index in (workspace_id, [filter,] sort, id)
-- order, so first and deep pages seek to their rows and read only those.
-- created_at and status+created_at are in 00002. The rate sort is on
-- COALESCE(commission_rate, -1) so that rows without an override compare.
CREATE INDEX affiliates_sort_code ON affiliates (workspace_id, referral_code, id);
CREATE INDEX affiliates_sort_status ON affiliates (workspace_id, status, id);
CREATE INDEX affiliates_sort_rate ON affiliates (workspace_id, (COALESCE(commission_rate, -1)), id);
CREATE INDEX affiliates_status_code ON affiliates (workspace_id, status, referral_code, id);
CREATE INDEX affiliates_status_rate ON affiliates (workspace_id, status, (COALESCE(commission_rate, -1)), id);
CREATE INDEX affiliates_program ON affiliates (workspace_id, program_id, created_at, id);
CREATE INDEX affiliates_program_code ON affiliates (workspace_id, program_id, referral_code, id);
CREATE INDEX affiliates_program_status ON affiliates (workspace_id, program_id, status, id);
CREATE INDEX affiliates_program_rate ON affiliates (workspace_id, program_id, (COALESCE(commission_rate, -1)), id);
-- The affiliates of one user (profile sync), and what deleting an affiliate removes.
CREATE INDEX affiliates_user ON affiliates (workspace_id, affiliate_user_id);
CREATE INDEX coupons_affiliate ON coupons (workspace_id, affiliate_id);
CREATE INDEX link_batches_affiliate ON link_batches (workspace_id, affiliate_id);

-- +goose Down
DROP INDEX link_batches_affiliate;
DROP INDEX coupons_affiliate;
DROP INDEX affiliates_user;
DROP INDEX affiliates_program_rate;
DROP INDEX affiliates_program_status;
DROP INDEX affiliates_program_code;
DROP INDEX affiliates_program;
DROP INDEX affiliates_status_rate;
DROP INDEX affiliates_status_code;
DROP INDEX affiliates_sort_rate;
DROP INDEX affiliates_sort_status;
DROP INDEX affiliates_sort_code;
