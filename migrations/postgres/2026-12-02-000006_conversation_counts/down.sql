DROP TRIGGER conversation_counts_insert ON conversations;
DROP TRIGGER conversation_counts_update ON conversations;
DROP TRIGGER conversation_counts_delete ON conversations;
DROP FUNCTION conversation_counts_insert();
DROP FUNCTION conversation_counts_update();
DROP FUNCTION conversation_counts_delete();
DROP TABLE conversation_counts;
