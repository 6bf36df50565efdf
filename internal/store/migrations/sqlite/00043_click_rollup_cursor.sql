-- +goose Up
-- On SQLite the click writer's transaction no longer adds its clicks to the
-- rollups: a tailer does, in transactions of thousands of clicks
-- (store/clickrollup.go), and last_id is the last click it counted. The
-- clicks already stored were counted by the write path, so it starts at the
-- newest. PostgreSQL keeps counting clicks in the click transaction.
CREATE TABLE rollup_cursors (
    name    TEXT    PRIMARY KEY,
    last_id INTEGER NOT NULL
);
INSERT INTO rollup_cursors (name, last_id) SELECT 'clicks', COALESCE(MAX(id), 0) FROM clicks;

-- +goose Down
DROP TABLE rollup_cursors;
