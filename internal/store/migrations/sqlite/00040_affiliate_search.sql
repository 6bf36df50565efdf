-- +goose Up
-- Affiliate search (GET /v1/affiliates?search=) matches a substring of the
-- name, e-mail or referral code. Without an index a search that matches few
-- rows reads every affiliate of the workspace: 0.2 s of CPU at 100,000 on
-- SQLite. A trigram full-text index finds the rows holding a substring of
-- three or more characters (case-insensitively) without that scan; the store
-- uses it when the search matches few rows, and scans in list order when it
-- matches many (see Store.affiliateSearch). External content: the index keeps
-- only the trigrams, the text stays in affiliates. columnsize=0: no ranking,
-- so no per-row sizes to store.
CREATE VIRTUAL TABLE affiliates_search USING fts5(name, email, referral_code,
    content = 'affiliates', content_rowid = 'id', tokenize = 'trigram', columnsize = 0);
INSERT INTO affiliates_search (affiliates_search) VALUES ('rebuild');

-- New affiliates are not indexed in the transaction that creates them: FTS5
-- writes a segment per transaction, and merges them, which cost a third of
-- POST /v1/affiliates (0.37 ms of 1.1 ms a request). They wait here instead,
-- and the store's indexer adds them in batches, one segment a batch, within a
-- second; searches read these few rows by scanning them (see
-- Store.affiliateSearch). Renames and deletions, rare, go to the index at once,
-- for indexed rows only (an FTS5 'delete' must name a row the index holds).
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
DROP TRIGGER affiliates_search_update;
DROP TRIGGER affiliates_search_delete;
DROP TRIGGER affiliates_search_insert;
DROP TABLE affiliates_search_pending;
DROP TABLE affiliates_search;
