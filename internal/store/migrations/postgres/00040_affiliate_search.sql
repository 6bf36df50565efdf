-- +goose Up
-- Affiliate search (GET /v1/affiliates?search=) matches a substring of the
-- lower-cased name, e-mail or referral code with LIKE '%…%'. Without an index
-- a search that matches few rows reads every affiliate of the workspace. A
-- pg_trgm GIN index answers such LIKEs; the planner picks it for searches that
-- match few rows and keeps scanning in list order for those that match many.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension, but a
-- database role may still be refused it, or a distribution may lack it: then
-- the index is skipped with a notice and search keeps working, by scanning.
-- The extension goes into public when it is not installed yet (the schema
-- holding the tables may be dropped and re-created; an extension there would go
-- with it); the index names the operator class in whichever schema has it.
-- +goose StatementBegin
DO $$
DECLARE
    ext_schema text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN unique_violation THEN
        NULL; -- another session created it at the same moment
    END;
    SELECT extnamespace::regnamespace::text INTO ext_schema FROM pg_extension WHERE extname = 'pg_trgm';
    IF ext_schema IS NULL THEN
        RAISE NOTICE 'affiliate search index skipped: pg_trgm is not installed';
        RETURN;
    END IF;
    EXECUTE format('CREATE INDEX affiliates_search ON affiliates USING gin '
        '(LOWER(name) %1$s.gin_trgm_ops, email %1$s.gin_trgm_ops, LOWER(referral_code) %1$s.gin_trgm_ops)', ext_schema);
EXCEPTION WHEN insufficient_privilege OR undefined_file OR undefined_object OR invalid_schema_name OR feature_not_supported THEN
    RAISE NOTICE 'affiliate search index skipped (%): search scans instead', SQLERRM;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS affiliates_search;
