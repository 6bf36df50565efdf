-- +goose Up
-- Attribution picks the first or last click of a visitor in the program's
-- cookie window (POST /v1/conversions with a click id): one index probe per
-- conversion instead of a scan of the workspace's clicks.
CREATE INDEX clicks_visitor ON clicks (workspace_id, visitor_id, created_at);

-- +goose Down
DROP INDEX clicks_visitor;
