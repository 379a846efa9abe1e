-- The event cursor moves off the organization's row into a row of its own (see the
-- PostgreSQL migration: there foreign-key checks against a row updated on every write
-- contend; SQLite keeps the same schema).
CREATE TABLE event_cursors (
    org_id BIGINT PRIMARY KEY NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- last event cursor handed out
    seq BIGINT NOT NULL DEFAULT 0
);

INSERT INTO event_cursors (org_id, seq) SELECT id, event_seq FROM organizations;
ALTER TABLE organizations DROP COLUMN event_seq;

-- Every organization has its cursor, however it is created.
CREATE TRIGGER organizations_event_cursor AFTER INSERT ON organizations
BEGIN
    INSERT INTO event_cursors (org_id) VALUES (NEW.id);
END;
