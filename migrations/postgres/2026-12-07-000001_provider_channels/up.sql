-- Channels connected to a provider directly (Twilio, Meta) or serving a web chat widget,
-- besides the generic signed webhook. `credentials` is the provider's secrets, sealed with
-- the server's credentials key (never stored or returned in the clear); `widget_token`
-- is the public id a website's chat widget starts visitor sessions with.
ALTER TABLE channels ADD COLUMN provider TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE channels ADD COLUMN credentials TEXT;
ALTER TABLE channels ADD COLUMN widget_token TEXT;
CREATE UNIQUE INDEX channels_widget_token ON channels (widget_token) WHERE widget_token IS NOT NULL;

-- When the customer last wrote, as the provider reports it: WhatsApp takes free-form
-- replies only within 24 hours of it.
ALTER TABLE conversations ADD COLUMN customer_wrote_at TIMESTAMP;
UPDATE conversations SET customer_wrote_at = (
    SELECT max(m.created_at) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.direction = 'inbound')
WHERE channel_id IN (SELECT id FROM channels WHERE type = 'whatsapp');

-- A web chat visitor: their contact on the channel, behind a short-lived bearer token
-- (only its SHA-256 is kept).
CREATE TABLE webchat_visitors (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- The visitor's address on the channel (`webchat:<key>`), one of the contact's.
    address TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX webchat_visitors_contact ON webchat_visitors (contact_id);

-- A visitor's upload, not yet sent: only that visitor may attach it.
ALTER TABLE attachments ADD COLUMN visitor_id BIGINT REFERENCES webchat_visitors (id) ON DELETE SET NULL;
