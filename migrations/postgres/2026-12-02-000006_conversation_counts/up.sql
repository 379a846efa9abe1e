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

-- Statement-level, over the transition tables: a multi-row insert (the demo seeder, an
-- import) is one upsert per bucket, and the buckets are locked in key order, so two
-- transactions moving conversations between the same buckets cannot deadlock. (An update
-- that changes no bucket, such as a new message, adds and removes the same rows: nothing.)
CREATE FUNCTION conversation_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts AS c (inbox_id, state, assignee_id, team_id, n)
    SELECT inbox_id, state, assignee_id, team_id, sum(delta)
    FROM (
        SELECT inbox_id, CASE WHEN archived THEN 'archived' ELSE status END AS state,
               COALESCE(assignee_id, 0) AS assignee_id, COALESCE(team_id, 0) AS team_id,
               1 AS delta
        FROM new_rows WHERE NOT spam
    ) AS changes
    GROUP BY inbox_id, state, assignee_id, team_id
    HAVING sum(delta) <> 0
    ORDER BY inbox_id, state, assignee_id, team_id
    ON CONFLICT (inbox_id, state, assignee_id, team_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION conversation_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts AS c (inbox_id, state, assignee_id, team_id, n)
    SELECT inbox_id, state, assignee_id, team_id, sum(delta)
    FROM (
        SELECT inbox_id, CASE WHEN archived THEN 'archived' ELSE status END AS state,
               COALESCE(assignee_id, 0) AS assignee_id, COALESCE(team_id, 0) AS team_id,
               1 AS delta
        FROM new_rows WHERE NOT spam
        UNION ALL
        SELECT inbox_id, CASE WHEN archived THEN 'archived' ELSE status END AS state,
               COALESCE(assignee_id, 0) AS assignee_id, COALESCE(team_id, 0) AS team_id,
               -1 AS delta
        FROM old_rows WHERE NOT spam
    ) AS changes
    GROUP BY inbox_id, state, assignee_id, team_id
    HAVING sum(delta) <> 0
    ORDER BY inbox_id, state, assignee_id, team_id
    ON CONFLICT (inbox_id, state, assignee_id, team_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION conversation_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts AS c (inbox_id, state, assignee_id, team_id, n)
    SELECT inbox_id, state, assignee_id, team_id, sum(delta)
    FROM (
        SELECT inbox_id, CASE WHEN archived THEN 'archived' ELSE status END AS state,
               COALESCE(assignee_id, 0) AS assignee_id, COALESCE(team_id, 0) AS team_id,
               -1 AS delta
        FROM old_rows WHERE NOT spam
    ) AS changes
    GROUP BY inbox_id, state, assignee_id, team_id
    HAVING sum(delta) <> 0
    ORDER BY inbox_id, state, assignee_id, team_id
    ON CONFLICT (inbox_id, state, assignee_id, team_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_insert();
CREATE TRIGGER conversation_counts_update AFTER UPDATE ON conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_update();
CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_delete();
