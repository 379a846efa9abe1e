ALTER TABLE attachments DROP COLUMN visitor_id;
DROP TABLE webchat_visitors;
ALTER TABLE conversations DROP COLUMN customer_wrote_at;
DROP INDEX channels_widget_token;
ALTER TABLE channels DROP COLUMN widget_token;
ALTER TABLE channels DROP COLUMN credentials;
ALTER TABLE channels DROP COLUMN provider;
