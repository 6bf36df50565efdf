-- +goose Up
-- A link's click count, in shards. Each click batch used to add to its links'
-- click_count with an UPDATE of the links row, and concurrent batches through
-- one link queued on that row until each other's commit. A batch now adds to
-- one of a few rows here (the shard its rollup rows take, which no other
-- batch of the node holds meanwhile), and a link's count is links.click_count,
-- which keeps what it held before this migration and is no longer written,
-- plus the link's rows here, read in one statement. No foreign key, as for
-- clicks: the rows of a deleted link are never read.
CREATE TABLE link_clicks (
    workspace_id BIGINT  NOT NULL,
    link_id      BIGINT  NOT NULL,
    shard        INTEGER NOT NULL,
    clicks       BIGINT  NOT NULL,
    PRIMARY KEY (workspace_id, link_id, shard)
);

-- +goose Down
UPDATE links SET click_count = click_count + s.clicks
    FROM (SELECT workspace_id, link_id, SUM(clicks) AS clicks FROM link_clicks GROUP BY workspace_id, link_id) s
    WHERE links.workspace_id = s.workspace_id AND links.id = s.link_id;
DROP TABLE link_clicks;
