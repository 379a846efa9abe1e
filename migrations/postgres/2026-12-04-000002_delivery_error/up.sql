-- Why an outbound message failed, for the agents who sent it: our last attempt's error
-- (the provider's answer, a timeout, a refused address) or the provider's own report.
ALTER TABLE messages ADD COLUMN delivery_error TEXT;
