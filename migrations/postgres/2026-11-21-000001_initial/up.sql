-- Switchboard's schema for the whole product of API.md. Every tenant row carries org_id;
-- timestamps are UTC without zone (both backends share the type); ids are 64-bit.

CREATE TABLE organizations (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- last event cursor handed out; bumped under the row lock so cursors follow commit order
    event_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

-- server-wide key/value settings (the generated local JWT secret lives here)
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    status TEXT NOT NULL DEFAULT 'offline',
    status_message TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_org ON users (org_id, id);

CREATE TABLE refresh_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE teams (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE inboxes (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner_id BIGINT REFERENCES users (id),
    assignment_mode BOOLEAN NOT NULL,
    agent_visibility TEXT NOT NULL,
    allow_move BOOLEAN NOT NULL,
    auto_assign BOOLEAN NOT NULL,
    auto_assign_limit INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX inboxes_org ON inboxes (org_id, id);

CREATE TABLE inbox_members (
    inbox_id BIGINT NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    logged_in BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (inbox_id, user_id)
);
CREATE INDEX inbox_members_user ON inbox_members (user_id);

CREATE TABLE channels (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    inbox_id BIGINT NOT NULL REFERENCES inboxes (id),
    type TEXT NOT NULL,
    address TEXT NOT NULL,
    name TEXT NOT NULL,
    appended_message TEXT,
    outbound_url TEXT,
    -- kept in the clear: verifying an HMAC needs the key itself; only shown once over the API
    inbound_secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, type, address)
);
CREATE INDEX channels_inbox ON channels (inbox_id);

CREATE TABLE contacts (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT,
    email TEXT,
    company TEXT,
    notes TEXT,
    opted_out_sms BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX contacts_org ON contacts (org_id, id);

CREATE TABLE contact_phone_numbers (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    UNIQUE (org_id, number)
);
CREATE INDEX contact_phone_numbers_contact ON contact_phone_numbers (contact_id);

CREATE TABLE contact_favorites (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, contact_id)
);

CREATE TABLE conversations (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    inbox_id BIGINT NOT NULL REFERENCES inboxes (id),
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    contact_id BIGINT NOT NULL REFERENCES contacts (id),
    status TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    spam BOOLEAN NOT NULL DEFAULT FALSE,
    assignee_id BIGINT REFERENCES users (id),
    team_id BIGINT REFERENCES teams (id) ON DELETE SET NULL,
    last_message_id BIGINT,
    last_message_at TIMESTAMP,
    last_message_preview TEXT,
    message_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    closed_by BIGINT REFERENCES users (id),
    updated_at TIMESTAMP NOT NULL
);
-- the list: per inbox and status, ordered by each sort key, id as the tie breaker
CREATE INDEX conversations_list_messages ON conversations (inbox_id, status, last_message_at, id);
CREATE INDEX conversations_list_created ON conversations (inbox_id, status, created_at, id);
CREATE INDEX conversations_list_closed ON conversations (inbox_id, status, closed_at, id);
-- the same orders across all of an organization's inboxes (admins, many-inbox members)
CREATE INDEX conversations_org_messages ON conversations (org_id, status, last_message_at, id);
CREATE INDEX conversations_org_created ON conversations (org_id, status, created_at, id);
CREATE INDEX conversations_org_closed ON conversations (org_id, status, closed_at, id);
CREATE INDEX conversations_assignee ON conversations (assignee_id, status);
CREATE INDEX conversations_contact ON conversations (contact_id, created_at);
-- at most one open conversation per contact and channel: a new inbound continues it
CREATE UNIQUE INDEX conversations_one_open ON conversations (channel_id, contact_id) WHERE status = 'open';

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    author_type TEXT NOT NULL,
    author_id BIGINT,
    delivery_status TEXT,
    external_id TEXT,
    canned_response_id BIGINT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_author ON messages (author_type, author_id, conversation_id);

-- idempotency of inbound channel calls: one row per (channel, provider message id)
CREATE TABLE inbound_receipts (
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    external_id TEXT NOT NULL,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    message_id BIGINT NOT NULL REFERENCES messages (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (channel_id, external_id)
);

CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    uploader_id BIGINT REFERENCES users (id),
    message_id BIGINT REFERENCES messages (id),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    filename TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE message_reactions (
    id BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    contact_id BIGINT REFERENCES contacts (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX message_reactions_user ON message_reactions (message_id, emoji, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX message_reactions_message ON message_reactions (message_id);

-- per-user read state: unread = message_count moved past what the user has read, or marked unread
CREATE TABLE conversation_reads (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    read_count BIGINT NOT NULL,
    marked_unread BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE conversation_pins (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE conversation_participants (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE tags (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE conversation_tags (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, tag_id)
);
CREATE INDEX conversation_tags_tag ON conversation_tags (tag_id);

CREATE TABLE canned_responses (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    inbox_id BIGINT NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    shortcut TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (inbox_id, shortcut)
);

-- audit trail of a conversation: assignments, moves, tags, closes
CREATE TABLE activity (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    action TEXT NOT NULL,
    actor_id BIGINT REFERENCES users (id),
    data TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX activity_conversation ON activity (conversation_id, id);

-- the event log (outbox): written in the transaction of the change it announces
CREATE TABLE events (
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    inbox_id BIGINT,
    conversation_id BIGINT,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- outbound delivery queue: survives restarts; a row is leased before it is sent
CREATE TABLE outbound_deliveries (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    message_id BIGINT NOT NULL UNIQUE REFERENCES messages (id),
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    leased_until TIMESTAMP,
    done_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX outbound_deliveries_due ON outbound_deliveries (done_at, next_attempt_at);

CREATE TABLE surveys (
    token TEXT PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    message_id BIGINT NOT NULL REFERENCES messages (id),
    rating INTEGER,
    comment TEXT,
    answered_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE chats (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL,
    name TEXT,
    -- "low_id:high_id" for direct chats, so the same pair reuses one chat
    direct_key TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, direct_key)
);

CREATE TABLE chat_members (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id);

CREATE TABLE chat_messages (
    id BIGSERIAL PRIMARY KEY,
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX chat_messages_chat ON chat_messages (chat_id, id);
