-- +goose Up
-- A server on PostgreSQL acknowledges the redirect's clicks by appending them
-- to a click journal on its own disk and moves them into the database every
-- 25 ms (store/clickjournalpg.go). Each journal is named by a random id in its
-- header; last_seq is the last of its records stored, moved in the same
-- transaction as the clicks, so each is stored exactly once.
CREATE TABLE click_journals (
    id         TEXT    PRIMARY KEY,
    last_seq   BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE click_journals;
