-- +goose Up
-- Keyset pages of GET /v1/affiliates for each documented sort: the index order is
-- the ORDER BY (sort expression, id) inside one workspace, so first and deep pages
-- read only the rows they return. created_at and status+created_at are in 00002.
CREATE INDEX affiliates_sort_code ON affiliates (workspace_id, referral_code, id);
CREATE INDEX affiliates_sort_status ON affiliates (workspace_id, status, id);
-- The list sorts on COALESCE(commission_rate, -1) so that NULL keyset values compare.
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
DROP INDEX affiliates_sort_code;
