DROP INDEX attachments_chat_message;
ALTER TABLE attachments DROP COLUMN chat_message_id;
ALTER TABLE chat_members DROP COLUMN last_read_message_id;
