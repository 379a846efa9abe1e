-- The tab and assignee counts, maintained as conversations change, so counting a tab costs a
-- handful of rows per inbox instead of a scan of the inbox's whole history. One row per
-- inbox, state ('open', 'closed', 'archived'; spam is in none), assignee and team (0: none).
CREATE TABLE conversation_counts (
    inbox_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    assignee_id BIGINT NOT NULL,
    team_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, state, assignee_id, team_id)
);

INSERT INTO conversation_counts (inbox_id, state, assignee_id, team_id, n)
SELECT inbox_id, CASE WHEN archived THEN 'archived' ELSE status END,
       COALESCE(assignee_id, 0), COALESCE(team_id, 0), count(*)
FROM conversations WHERE NOT spam
GROUP BY 1, 2, 3, 4;

-- Row triggers (SQLite has one writer, so no lock order to keep); an update fires only when
-- a column that picks the bucket is set.
CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversation_counts (inbox_id, state, assignee_id, team_id, n)
    SELECT NEW.inbox_id, CASE WHEN NEW.archived THEN 'archived' ELSE NEW.status END, COALESCE(NEW.assignee_id, 0), COALESCE(NEW.team_id, 0), 1
    WHERE NOT NEW.spam
    ON CONFLICT (inbox_id, state, assignee_id, team_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER conversation_counts_update
AFTER UPDATE OF inbox_id, status, archived, spam, assignee_id, team_id ON conversations BEGIN
    UPDATE conversation_counts SET n = n - 1
    WHERE NOT OLD.spam AND inbox_id = OLD.inbox_id AND state = CASE WHEN OLD.archived THEN 'archived' ELSE OLD.status END
      AND assignee_id = COALESCE(OLD.assignee_id, 0) AND team_id = COALESCE(OLD.team_id, 0);
    INSERT INTO conversation_counts (inbox_id, state, assignee_id, team_id, n)
    SELECT NEW.inbox_id, CASE WHEN NEW.archived THEN 'archived' ELSE NEW.status END, COALESCE(NEW.assignee_id, 0), COALESCE(NEW.team_id, 0), 1
    WHERE NOT NEW.spam
    ON CONFLICT (inbox_id, state, assignee_id, team_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations BEGIN
    UPDATE conversation_counts SET n = n - 1
    WHERE NOT OLD.spam AND inbox_id = OLD.inbox_id AND state = CASE WHEN OLD.archived THEN 'archived' ELSE OLD.status END
      AND assignee_id = COALESCE(OLD.assignee_id, 0) AND team_id = COALESCE(OLD.team_id, 0);
END;
