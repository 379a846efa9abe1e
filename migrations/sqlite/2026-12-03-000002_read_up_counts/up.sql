-- Unread counts without a scan (see the PostgreSQL migration of the same name): per user and
-- bucket of conversation_counts, how many open conversations they have read up to their last
-- message. SQLite has one writer, so the figure is one row per key, kept by row triggers.
CREATE TABLE read_up_counts (
    user_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    assignee_id BIGINT NOT NULL,
    team_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (user_id, inbox_id, assignee_id, team_id)
);

CREATE INDEX conversation_reads_conversation ON conversation_reads (conversation_id);

-- Conversations without a message (a moment, while the first is written): never unread, so
-- the count takes them off; the partial index holds only them.
CREATE INDEX conversations_empty ON conversations (org_id) WHERE message_count = 0;

-- "Read up" (written out in each trigger, SQLite has no functions of its own): the
-- conversation is open, not archived, not spam, has a message, and the read state is not
-- marked unread and has read_count >= message_count.
INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
SELECT r.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), count(*)
FROM conversation_reads r JOIN conversations c ON c.id = r.conversation_id
WHERE c.status = 'open' AND NOT c.archived AND NOT c.spam AND c.message_count > 0
  AND NOT r.marked_unread AND r.read_count >= c.message_count
GROUP BY 1, 2, 3, 4;

-- Each trigger is compiled into every statement that may fire it (diesel does not cache
-- UPDATEs, so a send compiles them each time): simple statements, no grouping. A changed
-- conversation takes its readers off its old bucket, then puts them on its new one.
CREATE TRIGGER read_up_counts_update
AFTER UPDATE OF inbox_id, status, archived, spam, assignee_id, team_id, message_count ON conversations
WHEN OLD.status = 'open' AND NOT OLD.archived AND NOT OLD.spam AND OLD.message_count > 0
BEGIN
    UPDATE read_up_counts SET n = n - 1
    WHERE inbox_id = OLD.inbox_id AND assignee_id = COALESCE(OLD.assignee_id, 0) AND team_id = COALESCE(OLD.team_id, 0)
      AND user_id IN (SELECT user_id FROM conversation_reads
                      WHERE conversation_id = OLD.id AND NOT marked_unread AND read_count >= OLD.message_count);
END;
CREATE TRIGGER read_up_counts_update_new
AFTER UPDATE OF inbox_id, status, archived, spam, assignee_id, team_id, message_count ON conversations
WHEN NEW.status = 'open' AND NOT NEW.archived AND NOT NEW.spam AND NEW.message_count > 0
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT user_id, NEW.inbox_id, COALESCE(NEW.assignee_id, 0), COALESCE(NEW.team_id, 0), 1
    FROM conversation_reads
    WHERE conversation_id = NEW.id AND NOT marked_unread AND read_count >= NEW.message_count
    ON CONFLICT (user_id, inbox_id, assignee_id, team_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER read_up_counts_delete BEFORE DELETE ON conversations
BEGIN
    UPDATE read_up_counts SET n = n - (
        SELECT count(*) FROM conversation_reads r
        WHERE r.conversation_id = OLD.id AND r.user_id = read_up_counts.user_id
          AND NOT r.marked_unread AND r.read_count >= OLD.message_count)
    WHERE OLD.status = 'open' AND NOT OLD.archived AND NOT OLD.spam AND OLD.message_count > 0
      AND inbox_id = OLD.inbox_id AND assignee_id = COALESCE(OLD.assignee_id, 0)
      AND team_id = COALESCE(OLD.team_id, 0);
END;

CREATE TRIGGER read_up_counts_insert AFTER INSERT ON conversation_reads
BEGIN
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT NEW.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), 1
    FROM conversations c
    WHERE c.id = NEW.conversation_id
      AND c.status = 'open' AND NOT c.archived AND NOT c.spam AND c.message_count > 0
      AND NOT NEW.marked_unread AND NEW.read_count >= c.message_count
    ON CONFLICT (user_id, inbox_id, assignee_id, team_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER read_up_counts_reads_update AFTER UPDATE ON conversation_reads
BEGIN
    UPDATE read_up_counts SET n = n - 1
    WHERE user_id = OLD.user_id AND NOT OLD.marked_unread
      AND (inbox_id, assignee_id, team_id) = (
        SELECT c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0) FROM conversations c
        WHERE c.id = OLD.conversation_id AND c.status = 'open' AND NOT c.archived AND NOT c.spam
          AND c.message_count > 0 AND OLD.read_count >= c.message_count);
    INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
    SELECT NEW.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0), 1
    FROM conversations c
    WHERE c.id = NEW.conversation_id AND NOT NEW.marked_unread
      AND c.status = 'open' AND NOT c.archived AND NOT c.spam AND c.message_count > 0
      AND NEW.read_count >= c.message_count
    ON CONFLICT (user_id, inbox_id, assignee_id, team_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER read_up_counts_reads_delete AFTER DELETE ON conversation_reads
BEGIN
    UPDATE read_up_counts SET n = n - 1
    WHERE (user_id, inbox_id, assignee_id, team_id) IN (
        SELECT OLD.user_id, c.inbox_id, COALESCE(c.assignee_id, 0), COALESCE(c.team_id, 0)
        FROM conversations c
        WHERE c.id = OLD.conversation_id
          AND c.status = 'open' AND NOT c.archived AND NOT c.spam AND c.message_count > 0
          AND NOT OLD.marked_unread AND OLD.read_count >= c.message_count);
END;
