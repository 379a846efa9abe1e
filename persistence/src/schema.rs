// The diesel schema, kept by hand in step with migrations/postgres and migrations/sqlite.
diesel::table! {
    organizations (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Each organization's last event cursor, a row of its own (see the migration).
    event_cursors (org_id) {
        org_id -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        org_id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        active -> Bool,
        status -> Text,
        status_message -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        token_epoch -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        family -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> BigInt,
        user_id -> BigInt,
    }
}

diesel::table! {
    inboxes (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        kind -> Text,
        owner_id -> Nullable<BigInt>,
        assignment_mode -> Bool,
        agent_visibility -> Text,
        allow_move -> Bool,
        auto_assign -> Bool,
        auto_assign_limit -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    inbox_members (inbox_id, user_id) {
        inbox_id -> BigInt,
        user_id -> BigInt,
        logged_in -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    channels (id) {
        id -> BigInt,
        org_id -> BigInt,
        inbox_id -> BigInt,
        #[sql_name = "type"]
        type_ -> Text,
        address -> Text,
        name -> Text,
        appended_message -> Nullable<Text>,
        outbound_url -> Nullable<Text>,
        inbound_secret -> Text,
        created_at -> Timestamp,
        provider -> Text,
        credentials -> Nullable<Text>,
        widget_token -> Nullable<Text>,
    }
}

diesel::table! {
    contacts (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        company -> Nullable<Text>,
        notes -> Nullable<Text>,
        opted_out_sms -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sort_key -> Text,
    }
}

diesel::table! {
    contact_terms (org_id, term, contact_id) {
        org_id -> BigInt,
        term -> Text,
        contact_id -> BigInt,
    }
}

diesel::table! {
    contact_activity (id) {
        id -> BigInt,
        org_id -> BigInt,
        contact_id -> BigInt,
        action -> Text,
        actor_id -> Nullable<BigInt>,
        data -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    contact_phone_numbers (id) {
        id -> BigInt,
        org_id -> BigInt,
        contact_id -> BigInt,
        number -> Text,
    }
}

diesel::table! {
    contact_favorites (user_id, contact_id) {
        user_id -> BigInt,
        contact_id -> BigInt,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        org_id -> BigInt,
        inbox_id -> BigInt,
        channel_id -> BigInt,
        contact_id -> BigInt,
        status -> Text,
        archived -> Bool,
        spam -> Bool,
        assignee_id -> Nullable<BigInt>,
        team_id -> Nullable<BigInt>,
        last_message_id -> Nullable<BigInt>,
        last_message_at -> Nullable<Timestamp>,
        last_message_preview -> Nullable<Text>,
        message_count -> BigInt,
        created_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        closed_by -> Nullable<BigInt>,
        updated_at -> Timestamp,
        customer_address -> Nullable<Text>,
        customer_wrote_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webchat_visitors (id) {
        id -> BigInt,
        org_id -> BigInt,
        channel_id -> BigInt,
        contact_id -> BigInt,
        address -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// PostgreSQL also has `search_words` (tsvector, generated from `body`) and SQLite the
    /// FTS5 table `messages_fts` over `body`: only `repo::search` reads them, in SQL of its own.
    messages (id) {
        id -> BigInt,
        org_id -> BigInt,
        conversation_id -> BigInt,
        direction -> Text,
        kind -> Text,
        body -> Text,
        author_type -> Text,
        author_id -> Nullable<BigInt>,
        delivery_status -> Nullable<Text>,
        external_id -> Nullable<Text>,
        canned_response_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        delivery_error -> Nullable<Text>,
    }
}

diesel::table! {
    inbound_receipts (channel_id, external_id) {
        channel_id -> BigInt,
        external_id -> Text,
        conversation_id -> BigInt,
        message_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        org_id -> BigInt,
        uploader_id -> Nullable<BigInt>,
        message_id -> Nullable<BigInt>,
        content_type -> Text,
        size -> BigInt,
        filename -> Text,
        storage_key -> Text,
        created_at -> Timestamp,
        chat_message_id -> Nullable<BigInt>,
        visitor_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    message_reactions (id) {
        id -> BigInt,
        message_id -> BigInt,
        emoji -> Text,
        user_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversation_reads (user_id, conversation_id) {
        user_id -> BigInt,
        conversation_id -> BigInt,
        read_count -> BigInt,
        marked_unread -> Bool,
    }
}

diesel::table! {
    conversation_pins (user_id, conversation_id) {
        user_id -> BigInt,
        conversation_id -> BigInt,
        position -> Integer,
    }
}

diesel::table! {
    conversation_participants (user_id, conversation_id) {
        conversation_id -> BigInt,
        user_id -> BigInt,
    }
}

diesel::table! {
    tags (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        color -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversation_tags (conversation_id, tag_id) {
        conversation_id -> BigInt,
        tag_id -> BigInt,
    }
}

diesel::table! {
    canned_responses (id) {
        id -> BigInt,
        org_id -> BigInt,
        inbox_id -> BigInt,
        shortcut -> Text,
        title -> Text,
        body -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    activity (id) {
        id -> BigInt,
        org_id -> BigInt,
        conversation_id -> BigInt,
        action -> Text,
        actor_id -> Nullable<BigInt>,
        data -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    events (org_id, seq) {
        org_id -> BigInt,
        seq -> BigInt,
        #[sql_name = "type"]
        type_ -> Text,
        inbox_id -> Nullable<BigInt>,
        conversation_id -> Nullable<BigInt>,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> BigInt,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        response -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbound_deliveries (id) {
        id -> BigInt,
        org_id -> BigInt,
        message_id -> BigInt,
        channel_id -> BigInt,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        leased_until -> Nullable<Timestamp>,
        done_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    surveys (token) {
        token -> Text,
        org_id -> BigInt,
        conversation_id -> BigInt,
        message_id -> BigInt,
        rating -> Nullable<Integer>,
        comment -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        inbox_id -> Nullable<BigInt>,
        agent_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    chats (id) {
        id -> BigInt,
        org_id -> BigInt,
        kind -> Text,
        name -> Nullable<Text>,
        direct_key -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_members (chat_id, user_id) {
        chat_id -> BigInt,
        user_id -> BigInt,
        last_read_message_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> BigInt,
        chat_id -> BigInt,
        author_id -> BigInt,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> organizations (org_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(teams -> organizations (org_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(inboxes -> organizations (org_id));
diesel::joinable!(inboxes -> users (owner_id));
diesel::joinable!(inbox_members -> inboxes (inbox_id));
diesel::joinable!(inbox_members -> users (user_id));
diesel::joinable!(channels -> organizations (org_id));
diesel::joinable!(channels -> inboxes (inbox_id));
diesel::joinable!(webchat_visitors -> channels (channel_id));
diesel::joinable!(webchat_visitors -> contacts (contact_id));
diesel::joinable!(contacts -> organizations (org_id));
diesel::joinable!(contact_phone_numbers -> organizations (org_id));
diesel::joinable!(contact_phone_numbers -> contacts (contact_id));
diesel::joinable!(contact_favorites -> users (user_id));
diesel::joinable!(contact_favorites -> contacts (contact_id));
diesel::joinable!(contact_terms -> contacts (contact_id));
diesel::joinable!(contact_activity -> contacts (contact_id));
diesel::joinable!(conversations -> organizations (org_id));
diesel::joinable!(conversations -> inboxes (inbox_id));
diesel::joinable!(conversations -> channels (channel_id));
diesel::joinable!(conversations -> contacts (contact_id));
diesel::joinable!(conversations -> users (assignee_id));
diesel::joinable!(conversations -> teams (team_id));
diesel::joinable!(messages -> organizations (org_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(inbound_receipts -> channels (channel_id));
diesel::joinable!(inbound_receipts -> conversations (conversation_id));
diesel::joinable!(inbound_receipts -> messages (message_id));
diesel::joinable!(attachments -> organizations (org_id));
diesel::joinable!(attachments -> users (uploader_id));
diesel::joinable!(attachments -> messages (message_id));
diesel::joinable!(attachments -> chat_messages (chat_message_id));
diesel::joinable!(message_reactions -> messages (message_id));
diesel::joinable!(message_reactions -> users (user_id));
diesel::joinable!(message_reactions -> contacts (contact_id));
diesel::joinable!(conversation_reads -> users (user_id));
diesel::joinable!(conversation_reads -> conversations (conversation_id));
diesel::joinable!(conversation_pins -> users (user_id));
diesel::joinable!(conversation_pins -> conversations (conversation_id));
diesel::joinable!(conversation_participants -> conversations (conversation_id));
diesel::joinable!(conversation_participants -> users (user_id));
diesel::joinable!(tags -> organizations (org_id));
diesel::joinable!(conversation_tags -> conversations (conversation_id));
diesel::joinable!(conversation_tags -> tags (tag_id));
diesel::joinable!(canned_responses -> organizations (org_id));
diesel::joinable!(canned_responses -> inboxes (inbox_id));
diesel::joinable!(activity -> organizations (org_id));
diesel::joinable!(activity -> conversations (conversation_id));
diesel::joinable!(activity -> users (actor_id));
diesel::joinable!(events -> organizations (org_id));
diesel::joinable!(event_cursors -> organizations (org_id));
diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(outbound_deliveries -> organizations (org_id));
diesel::joinable!(outbound_deliveries -> channels (channel_id));
diesel::joinable!(surveys -> organizations (org_id));
diesel::joinable!(surveys -> conversations (conversation_id));
diesel::joinable!(surveys -> messages (message_id));
diesel::joinable!(chats -> organizations (org_id));
diesel::joinable!(chat_members -> chats (chat_id));
diesel::joinable!(chat_members -> users (user_id));
diesel::joinable!(chat_messages -> chats (chat_id));
diesel::joinable!(chat_messages -> users (author_id));

diesel::table! {
    /// Conversations per inbox, state, assignee and team (0: none), kept by triggers.
    conversation_counts (inbox_id, state, assignee_id, team_id) {
        inbox_id -> BigInt,
        state -> Text,
        assignee_id -> BigInt,
        team_id -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    /// Per user and bucket of `conversation_counts`, the open conversations they have read
    /// up to their last message, kept by triggers. On PostgreSQL a key has several rows to
    /// add up (the triggers only insert; the server folds them); on SQLite one.
    read_up_counts (user_id, inbox_id, assignee_id, team_id) {
        user_id -> BigInt,
        inbox_id -> BigInt,
        assignee_id -> BigInt,
        team_id -> BigInt,
        n -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    conversation_counts,
    read_up_counts,
    organizations,
    server_settings,
    users,
    refresh_tokens,
    teams,
    team_members,
    inboxes,
    inbox_members,
    channels,
    contacts,
    contact_phone_numbers,
    contact_favorites,
    contact_terms,
    contact_activity,
    conversations,
    messages,
    inbound_receipts,
    attachments,
    message_reactions,
    conversation_reads,
    conversation_pins,
    conversation_participants,
    tags,
    conversation_tags,
    canned_responses,
    activity,
    events,
    idempotency_keys,
    outbound_deliveries,
    surveys,
    chats,
    chat_members,
    chat_messages,
    webchat_visitors,
);
