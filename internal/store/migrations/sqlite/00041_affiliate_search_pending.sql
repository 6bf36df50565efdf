-- +goose Up
-- New affiliates are no longer indexed for search (00040) in the transaction
-- that creates them: FTS5 writes a segment per transaction, and merges them,
-- which cost a third of POST /v1/affiliates (0.37 ms of 1.1 ms a request).
-- They wait in affiliates_search_pending instead, and the store's indexer
-- (searchindex.go) adds them in batches, one segment a batch, within a second;
-- searches read these few rows by scanning them (Store.affiliateSearch).
-- Renames and deletions, rare, still go to the index at once, for indexed rows
-- only: an FTS5 'delete' must name a row the index holds, with its values.
DROP TRIGGER affiliates_search_insert;
DROP TRIGGER affiliates_search_delete;
DROP TRIGGER affiliates_search_update;
CREATE TABLE affiliates_search_pending (affiliate_id INTEGER PRIMARY KEY);
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_insert AFTER INSERT ON affiliates BEGIN
    INSERT INTO affiliates_search_pending (affiliate_id) VALUES (new.id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_delete AFTER DELETE ON affiliates BEGIN
    INSERT INTO affiliates_search (affiliates_search, rowid, name, email, referral_code)
        SELECT 'delete', old.id, old.name, old.email, old.referral_code
        WHERE NOT EXISTS (SELECT 1 FROM affiliates_search_pending WHERE affiliate_id = old.id);
    DELETE FROM affiliates_search_pending WHERE affiliate_id = old.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_update AFTER UPDATE OF name, email, referral_code ON affiliates
    WHEN NOT EXISTS (SELECT 1 FROM affiliates_search_pending WHERE affiliate_id = old.id) BEGIN
    INSERT INTO affiliates_search (affiliates_search, rowid, name, email, referral_code)
        VALUES ('delete', old.id, old.name, old.email, old.referral_code);
    INSERT INTO affiliates_search (rowid, name, email, referral_code) VALUES (new.id, new.name, new.email, new.referral_code);
END;
-- +goose StatementEnd

-- +goose Down
-- Index what waits, then index in the creating transaction again (00040).
INSERT INTO affiliates_search (rowid, name, email, referral_code)
    SELECT a.id, a.name, a.email, a.referral_code FROM affiliates a
    WHERE a.id IN (SELECT affiliate_id FROM affiliates_search_pending);
DROP TRIGGER affiliates_search_update;
DROP TRIGGER affiliates_search_delete;
DROP TRIGGER affiliates_search_insert;
DROP TABLE affiliates_search_pending;
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_insert AFTER INSERT ON affiliates BEGIN
    INSERT INTO affiliates_search (rowid, name, email, referral_code) VALUES (new.id, new.name, new.email, new.referral_code);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_delete AFTER DELETE ON affiliates BEGIN
    INSERT INTO affiliates_search (affiliates_search, rowid, name, email, referral_code)
        VALUES ('delete', old.id, old.name, old.email, old.referral_code);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER affiliates_search_update AFTER UPDATE OF name, email, referral_code ON affiliates BEGIN
    INSERT INTO affiliates_search (affiliates_search, rowid, name, email, referral_code)
        VALUES ('delete', old.id, old.name, old.email, old.referral_code);
    INSERT INTO affiliates_search (rowid, name, email, referral_code) VALUES (new.id, new.name, new.email, new.referral_code);
END;
-- +goose StatementEnd
