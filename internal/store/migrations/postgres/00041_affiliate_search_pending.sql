-- +goose Up
-- SQLite's 00041 moves new affiliates' search indexing out of the creating
-- transaction. PostgreSQL's pg_trgm index (00040) is a GIN index, whose pending
-- list already defers the work of an insert: nothing to do here. The migration
-- exists so both engines keep the same version numbers.
SELECT 1;

-- +goose Down
SELECT 1;
