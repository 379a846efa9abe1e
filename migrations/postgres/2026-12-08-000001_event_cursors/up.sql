-- The event cursor moves off the organization's row into a row of its own. Every write of
-- an organization bumps its cursor, and every foreign key to organizations (messages,
-- conversations, events, ...) takes a key-share lock on the organization's row: with the
-- counter there, each insert's check met a row being updated by another transaction, which
-- turns its lock into a multixact and leaves a chain of versions every check and bump walks.
-- Nothing references event_cursors, so the bump touches nothing else. Still bumped under the
-- row lock, so cursors follow commit order.
CREATE TABLE event_cursors (
    org_id BIGINT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    -- last event cursor handed out
    seq BIGINT NOT NULL DEFAULT 0
) WITH (fillfactor = 10); -- a few organizations per page: room for each row's HOT updates

INSERT INTO event_cursors (org_id, seq) SELECT id, event_seq FROM organizations;
ALTER TABLE organizations DROP COLUMN event_seq;

-- Every organization has its cursor, however it is created.
CREATE FUNCTION organizations_event_cursor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_cursors (org_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER organizations_event_cursor AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION organizations_event_cursor();
