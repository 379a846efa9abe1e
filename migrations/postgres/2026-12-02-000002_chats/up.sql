-- Internal chats: a per-member read position (unread = newer messages by others), and files
-- sent in chat messages. Both nullable: rows written without them (seed data) stay valid,
-- a member who never read a chat has read nothing, and a chat's last activity is read from
-- its messages rather than copied onto the chat.
ALTER TABLE chat_members ADD COLUMN last_read_message_id BIGINT;
ALTER TABLE attachments ADD COLUMN chat_message_id BIGINT REFERENCES chat_messages (id);
CREATE INDEX attachments_chat_message ON attachments (chat_message_id);
