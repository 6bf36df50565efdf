-- +goose Up
-- An order attributed to a ?ref= landing the storefront reported (a click
-- through no link, stored with link_id 0) got link_id 0 instead of NULL, so
-- the API answered "link_id": 0. New orders store NULL; this fixes the old.
UPDATE orders SET link_id = NULL WHERE link_id = 0;

-- +goose Down
SELECT 1;
