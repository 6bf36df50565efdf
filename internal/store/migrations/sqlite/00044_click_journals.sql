-- +goose Up
-- PostgreSQL's 00044 adds the cursors of the servers' click journals. SQLite's
-- one journal keeps its cursor in rollup_cursors('click_journal') (00043):
-- nothing to do here. The migration exists so both engines keep the same
-- version numbers.
SELECT 1;

-- +goose Down
SELECT 1;
