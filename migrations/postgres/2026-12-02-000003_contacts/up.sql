-- Contacts as a directory: a stored ordering key for the list, search terms served by an
-- index (word and digit prefixes, so a search never scans a tenant's contacts), and an
-- activity trail of the contact itself (manual opt-outs, merges, edits).

ALTER TABLE contacts ADD COLUMN sort_key TEXT COLLATE "C" NOT NULL DEFAULT '2';
UPDATE contacts SET sort_key = '1' || lower(name) WHERE name IS NOT NULL AND name <> '';
CREATE INDEX contacts_sorted ON contacts (org_id, sort_key, id);

-- "C" collation: terms compare byte-wise, so a prefix is one index range on both backends.
CREATE TABLE contact_terms (
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    term TEXT COLLATE "C" NOT NULL,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, term, contact_id)
);
CREATE INDEX contact_terms_contact ON contact_terms (contact_id);

CREATE TABLE contact_activity (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    actor_id BIGINT REFERENCES users (id),
    data TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX contact_activity_contact ON contact_activity (contact_id, id);

-- favorites are read per user (the PRIMARY KEY) and moved per contact (merge)
CREATE INDEX contact_favorites_contact ON contact_favorites (contact_id);
