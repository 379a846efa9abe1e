-- Back to one account per address across organizations (fails while an address has two).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    status TEXT NOT NULL DEFAULT 'offline',
    status_message TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    token_epoch BIGINT NOT NULL DEFAULT 0
);
INSERT INTO users_rebuilt (id, org_id, email, name, role, password_hash, active, status,
                           status_message, created_at, updated_at, token_epoch)
SELECT id, org_id, email, name, role, password_hash, active, status, status_message,
       created_at, updated_at, token_epoch
FROM users;
DROP TABLE users;
ALTER TABLE users_rebuilt RENAME TO users;
CREATE INDEX users_org ON users (org_id, id);
COMMIT;
PRAGMA foreign_keys = ON;
