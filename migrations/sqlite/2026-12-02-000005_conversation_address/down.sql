ALTER TABLE conversations DROP COLUMN customer_address;
