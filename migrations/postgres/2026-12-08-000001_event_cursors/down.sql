DROP TRIGGER organizations_event_cursor ON organizations;
DROP FUNCTION organizations_event_cursor();
ALTER TABLE organizations ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
UPDATE organizations o SET event_seq = c.seq FROM event_cursors c WHERE c.org_id = o.id;
DROP TABLE event_cursors;
