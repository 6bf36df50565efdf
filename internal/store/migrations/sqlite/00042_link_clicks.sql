-- +goose Up
-- PostgreSQL's 00042 moves the click counts that batches add into shard rows,
-- so that concurrent batches do not queue on a link's row. SQLite has one
-- writer and keeps links.click_count: nothing to do here. The migration exists
-- so both engines keep the same version numbers.
SELECT 1;

-- +goose Down
SELECT 1;
