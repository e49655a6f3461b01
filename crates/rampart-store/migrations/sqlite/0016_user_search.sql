-- User search by substring through a trigram index (issue 24, "cost growth with data"): the
-- console's and `GET /v1/admin/users?q=` searches read every row of `users` without it.
--
-- Both backends have a `user_search (user_id, text)` relation, `text` being the e-mail, a
-- space and the name in lower case, answering `text LIKE '%q%'` from an index: here an FTS5
-- table with the trigram tokenizer (SQLite 3.34+), in PostgreSQL a view over `users` with a
-- pg_trgm index. A search takes its candidates from it and keeps those that pass the exact
-- LIKE on `users` it always used, so results are the same as a full scan's.
--
-- The FTS rows are keyed by `user_search_rows.n`, a stable integer per user, not by the
-- implicit rowid of `users`, which VACUUM may renumber (no INTEGER PRIMARY KEY there). Three
-- triggers keep the index in step with `users`.

CREATE TABLE user_search_rows (
    n       INTEGER PRIMARY KEY,
    user_id BLOB NOT NULL UNIQUE
) STRICT;

CREATE VIRTUAL TABLE user_search USING fts5 (user_id UNINDEXED, text, tokenize = 'trigram');

INSERT INTO user_search_rows (user_id) SELECT id FROM users ORDER BY id;
INSERT INTO user_search (rowid, user_id, text)
    SELECT s.n, u.id, u.email || ' ' || COALESCE(lower(u.name), '')
    FROM user_search_rows s JOIN users u ON u.id = s.user_id;

CREATE TRIGGER user_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_search_rows (user_id) VALUES (new.id);
    INSERT INTO user_search (rowid, user_id, text)
        VALUES ((SELECT n FROM user_search_rows WHERE user_id = new.id), new.id,
                new.email || ' ' || COALESCE(lower(new.name), ''));
END;

CREATE TRIGGER user_search_update AFTER UPDATE OF email, name ON users BEGIN
    UPDATE user_search SET text = new.email || ' ' || COALESCE(lower(new.name), '')
        WHERE rowid = (SELECT n FROM user_search_rows WHERE user_id = old.id);
END;

CREATE TRIGGER user_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT n FROM user_search_rows WHERE user_id = old.id);
    DELETE FROM user_search_rows WHERE user_id = old.id;
END;
