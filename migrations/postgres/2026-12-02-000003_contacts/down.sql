DROP INDEX contact_favorites_contact;
DROP TABLE contact_activity;
DROP TABLE contact_terms;
DROP INDEX contacts_sorted;
ALTER TABLE contacts DROP COLUMN sort_key;
