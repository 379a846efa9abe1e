-- Where and by whom a survey answer was earned, as it was when the customer answered: the
-- conversation's inbox and its assignee (the agent the rating counts for). Kept on the row,
-- so a later move or reassignment does not rewrite past results, and the summary is one
-- grouped scan of the answers in a time range.
ALTER TABLE surveys ADD COLUMN inbox_id BIGINT REFERENCES inboxes (id) ON DELETE SET NULL;
ALTER TABLE surveys ADD COLUMN agent_id BIGINT REFERENCES users (id) ON DELETE SET NULL;
-- Answers given before: their conversation's inbox is the best guess; who was assigned then
-- is not known, so they count for no agent.
UPDATE surveys
SET inbox_id = (SELECT conversations.inbox_id FROM conversations WHERE conversations.id = surveys.conversation_id)
WHERE answered_at IS NOT NULL;
CREATE INDEX surveys_answered ON surveys (org_id, answered_at) WHERE answered_at IS NOT NULL;
