-- +goose Up
-- Every workspace has exactly one default program (the settings of digest §5.6
-- are its columns) and a workspace_settings row. CreateWorkspace makes both with
-- the workspace; this gives them to workspaces created before it did.
INSERT INTO workspace_settings (workspace_id, timezone, updated_at)
SELECT w.id, 'UTC', w.created_at FROM workspaces w
WHERE NOT EXISTS (SELECT 1 FROM workspace_settings s WHERE s.workspace_id = w.id);

INSERT INTO programs (workspace_id, name, currency, commission_type, commission_base, recurring,
    cookie_days, attribution_model, status, is_default, created_at, updated_at)
SELECT w.id, w.name || ' program', 'USD', 'percentage', 'net', 'off', 30, 'last_click', 'active', TRUE,
    w.created_at, w.created_at
FROM workspaces w
WHERE NOT EXISTS (SELECT 1 FROM programs p WHERE p.workspace_id = w.id AND p.is_default = TRUE);

-- +goose Down
-- Nothing to undo: the rows belong to their workspaces now, and 00002's Down
-- drops the tables.
