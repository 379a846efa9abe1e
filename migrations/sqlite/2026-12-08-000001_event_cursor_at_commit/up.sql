-- PostgreSQL only (its event cursors are taken at commit): SQLite has one writer, whose
-- transaction takes its cursors as its last statement.
SELECT 1;
