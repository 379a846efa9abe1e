-- Unread counts without a scan. A user's unread open conversations of a bucket (inbox,
-- assignee, team, as in conversation_counts) are the bucket's open conversations minus
-- those the user has read up to their last message ("read up": open, not archived, not
-- spam, with a message, and a read state not marked unread with read_count >= message_count).
-- This table keeps the read-up figure per user and bucket as rows to add up: the triggers
-- only ever INSERT a change (no row is updated in place, so two transactions changing the
-- same user's figure never wait for each other or deadlock), and the server folds each
-- key's rows into one from time to time (`conversation_list::compact_read_up_counts`).
CREATE TABLE read_up_counts (
    user_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    assignee_id BIGINT NOT NULL,
    team_id BIGINT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX read_up_counts_key ON read_up_counts (user_id, inbox_id, assignee_id, team_id) INCLUDE (n);

-- A conversation's read states, for the triggers below (and a delete's cascade).
CREATE INDEX conversation_reads_conversation ON conversation_reads (conversation_id);

-- Conversations without a message (a moment, while the first is written): never unread, so
-- the count takes them off; the partial index holds only them.
CREATE INDEX conversations_empty ON conversations (org_id) WHERE message_count = 0;

-- The rule, in one place: does this read state count as read up in this conversation?
CREATE FUNCTION read_up(c conversations, read_count BIGINT, marked_unread BOOLEAN)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT c.status = 'open' AND NOT c.archived AND NOT c.spam AND c.message_count > 0
       AND NOT marked_unread AND read_count >= c.message_count
$$;

INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
SELECT r.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), count(*)
FROM conversation_reads r JOIN conversations c ON c.id = r.conversation_id
WHERE read_up(c, r.read_count, r.marked_unread)
GROUP BY 1, 2, 3, 4;

-- A conversation changed (a message, a status, an assignment, a move): its readers' figures
-- move with it. Statement-level over the transition tables, like conversation_counts; a
-- change that moves nothing (most updates) writes nothing.
CREATE FUNCTION read_up_counts_conversations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT user_id, inbox_id, assignee_id, team_id, sum(delta)
    FROM (
        SELECT r.user_id, n.inbox_id, COALESCE(n.assignee_id, 0) AS assignee_id,
               COALESCE(n.team_id, 0) AS team_id, 1 AS delta
        FROM new_rows n JOIN conversation_reads r ON r.conversation_id = n.id
        WHERE read_up(n, r.read_count, r.marked_unread)
        UNION ALL
        SELECT r.user_id, o.inbox_id, COALESCE(o.assignee_id, 0), COALESCE(o.team_id, 0), -1
        FROM old_rows o JOIN conversation_reads r ON r.conversation_id = o.id
        WHERE read_up(o, r.read_count, r.marked_unread)
    ) AS changes
    GROUP BY user_id, inbox_id, assignee_id, team_id
    HAVING sum(delta) <> 0;
    RETURN NULL;
END;
$$;

-- A conversation deleted: taken off before the cascade removes its read states (the read
-- states' delete trigger then finds no conversation).
CREATE FUNCTION read_up_counts_conversation_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT r.user_id, OLD.inbox_id, COALESCE(OLD.assignee_id, 0), COALESCE(OLD.team_id, 0), -1
    FROM conversation_reads r
    WHERE r.conversation_id = OLD.id AND read_up(OLD, r.read_count, r.marked_unread);
    RETURN OLD;
END;
$$;

-- A read state inserted, changed (read, marked unread) or deleted (a user's cascade).
CREATE FUNCTION read_up_counts_reads_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT n.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), count(*)
    FROM new_rows n JOIN conversations c ON c.id = n.conversation_id
    WHERE read_up(c, n.read_count, n.marked_unread)
    GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END;
$$;

CREATE FUNCTION read_up_counts_reads_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT user_id, inbox_id, assignee_id, team_id, sum(delta)
    FROM (
        SELECT n.user_id, c.inbox_id, COALESCE(c.assignee_id, 0) AS assignee_id,
               COALESCE(c.team_id, 0) AS team_id, 1 AS delta
        FROM new_rows n JOIN conversations c ON c.id = n.conversation_id
        WHERE read_up(c, n.read_count, n.marked_unread)
        UNION ALL
        SELECT o.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), -1
        FROM old_rows o JOIN conversations c ON c.id = o.conversation_id
        WHERE read_up(c, o.read_count, o.marked_unread)
    ) AS changes
    GROUP BY user_id, inbox_id, assignee_id, team_id
    HAVING sum(delta) <> 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION read_up_counts_reads_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT o.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), -count(*)
    FROM old_rows o JOIN conversations c ON c.id = o.conversation_id
    WHERE read_up(c, o.read_count, o.marked_unread)
    GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END;
$$;

CREATE TRIGGER read_up_counts_update AFTER UPDATE ON conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_up_counts_conversations();
CREATE TRIGGER read_up_counts_delete BEFORE DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION read_up_counts_conversation_deleted();
CREATE TRIGGER read_up_counts_insert AFTER INSERT ON conversation_reads
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_up_counts_reads_inserted();
CREATE TRIGGER read_up_counts_update AFTER UPDATE ON conversation_reads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_up_counts_reads_updated();
CREATE TRIGGER read_up_counts_delete AFTER DELETE ON conversation_reads
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_up_counts_reads_deleted();
