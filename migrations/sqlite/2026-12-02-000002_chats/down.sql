-- SQLite cannot drop a column that takes part in a foreign key: attachments is rebuilt as
-- the initial migration made it.
DROP INDEX attachments_chat_message;
CREATE TABLE attachments_before_chats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    uploader_id BIGINT REFERENCES users (id),
    message_id BIGINT REFERENCES messages (id),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    filename TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO attachments_before_chats
    SELECT id, org_id, uploader_id, message_id, content_type, size, filename, storage_key, created_at
    FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_before_chats RENAME TO attachments;
CREATE INDEX attachments_message ON attachments (message_id);
ALTER TABLE chat_members DROP COLUMN last_read_message_id;
