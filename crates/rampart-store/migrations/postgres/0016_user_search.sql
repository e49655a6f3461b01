-- User search by substring through a trigram index (issue 24, "cost growth with data"): the
-- console's and `GET /v1/admin/users?q=` searches read every row of `users` without it.
--
-- Both backends have a `user_search (user_id, text)` relation, `text` being the e-mail, a
-- space and the name in lower case, answering `text LIKE '%q%'` from an index: in SQLite an
-- FTS5 trigram table, here a view over `users` whose expression has a GIN index from
-- `pg_trgm`. A search takes its candidates from it and keeps those that pass the exact LIKE
-- on `users` it always used, so results are the same as a full scan's.
--
-- `pg_trgm` is PostgreSQL's contrib, a trusted extension since 13 (a role with CREATE on the
-- database may install it). An existing installation is used wherever it lives; otherwise it
-- is created in the current schema. Where it cannot be (not on the server, or no privilege)
-- the migration warns and goes on without the index: searches still work, by reading the
-- table; the index can be added later by installing the extension and running the CREATE
-- INDEX below by hand. An advisory lock orders instances that migrate at once (two CREATE
-- EXTENSION would race).

CREATE VIEW user_search AS
    SELECT id AS user_id, email || ' ' || COALESCE(lower(name), '') AS text FROM users;

DO $$
DECLARE
    trgm_schema text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('rampart: pg_trgm'));
    SELECT n.nspname INTO trgm_schema
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NULL THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'rampart: pg_trgm is unavailable (%); user search reads the whole users table', SQLERRM;
            RETURN;
        END;
        SELECT n.nspname INTO trgm_schema
            FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    END IF;
    EXECUTE format('CREATE INDEX user_search_trgm ON users USING gin '
                   '((email || '' '' || COALESCE(lower(name), '''')) %I.gin_trgm_ops)', trgm_schema);
END
$$;
