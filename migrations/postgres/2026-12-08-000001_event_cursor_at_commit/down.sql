DROP FUNCTION events_taken();
DROP TRIGGER events_cursor_at_commit ON events;
DROP FUNCTION events_take_cursor();
DROP SEQUENCE events_provisional;
