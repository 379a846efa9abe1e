DROP INDEX messages_body_search;
ALTER TABLE messages DROP COLUMN search_words;
