DROP TRIGGER read_up_counts_reads_delete;
DROP TRIGGER read_up_counts_reads_update;
DROP TRIGGER read_up_counts_insert;
DROP TRIGGER read_up_counts_delete;
DROP TRIGGER read_up_counts_update;
DROP INDEX conversations_empty;
DROP INDEX conversation_reads_conversation;
DROP TABLE read_up_counts;
