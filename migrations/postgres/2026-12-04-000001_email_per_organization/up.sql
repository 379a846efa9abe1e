-- An e-mail address is unique within its organization, not across them: one person may work
-- for two organizations, and creating a user must not tell one tenant that an address has an
-- account at another. Sign-in asks which organization when the address and password match
-- accounts in several.
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE users ADD CONSTRAINT users_org_email UNIQUE (org_id, email);
CREATE INDEX users_email ON users (email);
