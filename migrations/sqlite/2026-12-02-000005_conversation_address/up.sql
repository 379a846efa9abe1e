-- The customer's address the conversation is with, in the form the contact's numbers are
-- stored (E.164, or `<channel>:<id>`): replies go where the customer wrote from, not to
-- whichever of a contact's numbers (two of their own, or one brought by a merge) is first.
ALTER TABLE conversations ADD COLUMN customer_address TEXT;
-- Conversations from before: where replies went until now, the contact's first address of
-- the channel's kind.
UPDATE conversations
SET customer_address = (
    SELECT numbers.number
    FROM contact_phone_numbers AS numbers, channels
    WHERE numbers.contact_id = conversations.contact_id
      AND channels.id = conversations.channel_id
      AND (
          (channels.type IN ('sms', 'whatsapp') AND numbers.number LIKE '+%')
          OR (channels.type NOT IN ('sms', 'whatsapp') AND numbers.number LIKE channels.type || ':%')
      )
    ORDER BY numbers.id
    LIMIT 1
);
