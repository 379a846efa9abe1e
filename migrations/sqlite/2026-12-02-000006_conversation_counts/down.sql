DROP TRIGGER conversation_counts_insert;
DROP TRIGGER conversation_counts_update;
DROP TRIGGER conversation_counts_delete;
DROP TABLE conversation_counts;
