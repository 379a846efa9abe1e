-- Fails while an address has accounts in two organizations.
DROP INDEX users_email;
ALTER TABLE users DROP CONSTRAINT users_org_email;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
