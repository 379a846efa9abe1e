DROP TRIGGER organizations_event_cursor;
ALTER TABLE organizations ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
UPDATE organizations SET event_seq = (SELECT seq FROM event_cursors WHERE org_id = organizations.id);
DROP TABLE event_cursors;
