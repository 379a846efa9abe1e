-- An event's cursor is taken while its transaction commits, and from the log itself.
--
-- A change writes its events with a provisional cursor (negative, from
-- `events_provisional`); a deferred trigger gives each its organization's next cursor at
-- COMMIT, in the order they were written, under an advisory lock per organization held to
-- the end of the commit. So cursors still follow commit order (a transaction that takes a
-- cursor has committed before the next can take a larger one), but one organization's
-- writers only take turns inside their commits, never across a round trip to the server
-- that wrote them.
--
-- The next cursor is the log's newest one plus one (the retention purge keeps each
-- organization's newest event), or `organizations.event_seq` where that is larger (the
-- cursors taken before this migration). That row is no longer written on every change:
-- every write of an organization checks a foreign key against it, and a row updated
-- hundreds of times a second keeps a chain of dead versions each of those checks walks
-- (3.5 ms per update measured at 16 writers, against 0.2 ms for an insert).
--
-- The cursors a transaction was given are left in the session's
-- `switchboard.event_seqs` (`<xid>:<seq>,<seq>…`), which the writer reads just after its
-- commit to publish them (`events_taken()`).
CREATE SEQUENCE events_provisional;

CREATE FUNCTION events_take_cursor() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken BIGINT;
    mine TEXT := pg_current_xact_id()::text;
    listed TEXT := current_setting('switchboard.event_seqs', true);
BEGIN
    -- 0x5357 ('SW'): Switchboard's event cursors. Two organizations sharing a key (ids
    -- past 2^31) only take turns.
    PERFORM pg_advisory_xact_lock(21335, (NEW.org_id % 2147483647)::integer);
    SELECT greatest(
               coalesce((SELECT max(seq) FROM events WHERE org_id = NEW.org_id), 0),
               (SELECT event_seq FROM organizations WHERE id = NEW.org_id)) + 1
        INTO taken;
    IF taken IS NULL THEN
        RAISE EXCEPTION 'organization % has no event cursor', NEW.org_id;
    END IF;
    UPDATE events SET seq = taken WHERE org_id = NEW.org_id AND seq = NEW.seq;
    IF listed IS NULL OR split_part(listed, ':', 1) <> mine THEN
        listed := mine || ':' || taken;
    ELSE
        listed := listed || ',' || taken;
    END IF;
    PERFORM set_config('switchboard.event_seqs', listed, false);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER events_cursor_at_commit AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.seq < 0) EXECUTE FUNCTION events_take_cursor();

-- The cursors the session's last committed transaction took, in order.
CREATE FUNCTION events_taken() RETURNS BIGINT[] LANGUAGE sql STABLE AS $$
    SELECT string_to_array(
        nullif(split_part(current_setting('switchboard.event_seqs', true), ':', 2), ''),
        ',')::BIGINT[]
$$;
