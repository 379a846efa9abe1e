-- Conversation search by message text. Each message's words are kept beside it in
-- `search_words` (computed by the database on every insert and update of `body`), indexed
-- by GIN. The text is cut into words at everything that is not a letter or a digit (as the
-- SQLite FTS5 table and the query side do), and the 'simple' configuration only lower-cases
-- them: no language stemming, no stop words; positions are stripped (queries need none).
-- Stored rather than an expression index because the index's matches are re-checked on the
-- rows whenever its bitmap outgrows work_mem (any common word), and a probe of one
-- conversation's messages checks them too: a stored vector is compared, an expression would
-- be computed again for every such row.
ALTER TABLE messages ADD COLUMN search_words tsvector
    GENERATED ALWAYS AS (strip(to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g')))) STORED;
CREATE INDEX messages_body_search ON messages USING gin (search_words);
