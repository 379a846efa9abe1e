DROP INDEX surveys_answered;
ALTER TABLE surveys DROP COLUMN agent_id;
ALTER TABLE surveys DROP COLUMN inbox_id;
