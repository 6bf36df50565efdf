-- +goose Up
-- SQLite's 00043 adds the cursor of its click-rollup tailer. PostgreSQL counts
-- clicks in their batch's transaction: nothing to do here. The migration
-- exists so both engines keep the same version numbers.
SELECT 1;

-- +goose Down
SELECT 1;
