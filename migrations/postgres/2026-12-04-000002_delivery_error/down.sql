ALTER TABLE messages DROP COLUMN delivery_error;
