//! The WebSocket protocol as an AsyncAPI 3.0 document, built from the event types, the
//! client frames and the close codes the server uses, with the REST document's schemas for
//! what events carry (a `conversation` in an event is a `Conversation`). `make openapi`
//! commits it as `openapi/asyncapi.json`; the server serves it at `/asyncapi.json`.

use domain::EventType;
use serde_json::{Map, Value, json};

use crate::live::{
    CLOSE_ACCOUNT_DISABLED, CLOSE_BAD_FRAME, CLOSE_CURSOR_EXPIRED, CLOSE_REPLAY_FAILED,
    CLOSE_SIGNED_OUT, CLOSE_TOO_MANY_RESUMES, CLOSE_TOO_SLOW,
};

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn id() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 1})
}

fn nullable_id() -> Value {
    json!({"type": ["integer", "null"], "format": "int64", "minimum": 1})
}

/// An object with exactly these properties, all required.
fn object(properties: &[(&str, Value)]) -> Value {
    let mut map = Map::new();
    for (name, value) in properties {
        map.insert((*name).to_string(), value.clone());
    }
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    json!({"type": "object", "properties": map, "required": required})
}

/// What an event's `data` holds, and when it is sent.
pub fn event(event: EventType) -> (Value, &'static str) {
    use EventType as E;
    let conversation = || ("conversation", schema("Conversation"));
    match event {
        E::ConversationCreated => (
            object(&[conversation()]),
            "A customer wrote in with no open conversation on that channel, or an agent started one.",
        ),
        E::ConversationUpdated => (
            object(&[conversation()]),
            "Its last message, count, tags or contact changed.",
        ),
        E::ConversationAssigned => (
            object(&[
                conversation(),
                ("assignee_id", nullable_id()),
                ("previous_assignee_id", nullable_id()),
                ("by_user_id", nullable_id()),
            ]),
            "Assigned or unassigned (`assignee_id` null); `by_user_id` is null for auto-assignment.",
        ),
        E::ConversationMoved => (
            object(&[conversation(), ("from_inbox_id", id())]),
            "Moved to another inbox (`conversation.inbox_id` is the new one).",
        ),
        E::ConversationClosed => (
            object(&[conversation()]),
            "Closed (`conversation.spam` tells a spam close).",
        ),
        E::MessageCreated => (
            object(&[("conversation_id", id()), ("message", schema("Message"))]),
            "A new message, reply, note, survey or activity line.",
        ),
        E::MessageUpdated => (
            object(&[("conversation_id", id()), ("message", schema("Message"))]),
            "A message's delivery status or reactions changed.",
        ),
        E::ContactUpdated => (
            object(&[("contact", schema("Contact"))]),
            "A contact was created, edited, opted in or out, anonymized or merged into. To the whole organization.",
        ),
        E::ContactsImported => (
            object(&[("contact_ids", json!({"type": "array", "items": id()}))]),
            "One batch of a CSV import created or updated these contacts (one event per batch, not per row). To the whole organization.",
        ),
        E::ChatMessageCreated => (
            object(&[("chat_id", id()), ("message", schema("ChatMessage"))]),
            "A message in an internal chat. To the chat's members only.",
        ),
        E::Typing => (
            object(&[("conversation_id", id()), ("user_id", id())]),
            "A colleague is typing in a conversation the receiver can see. Not logged: no `id`.",
        ),
        E::Viewing => (
            object(&[("conversation_id", id()), ("user_id", id())]),
            "A colleague has the conversation open. Not logged: no `id`.",
        ),
        E::PresenceUpdated => (
            object(&[(
                "users",
                json!({"type": "array", "items": schema("UserPresence")}),
            )]),
            "Presence changed for these users, batched. Not logged: no `id`.",
        ),
    }
}

/// The frame around an event's `data`.
fn envelope(event_type: EventType, data: Value) -> Value {
    let mut properties = Map::new();
    if !event_type.is_ephemeral() {
        properties.insert(
            "id".into(),
            json!({"type": "string", "pattern": "^[0-9]{1,19}$", "description": "The event's cursor: pass it as `resume.after` or `GET /v1/events?after=`."}),
        );
    }
    properties.insert(
        "type".into(),
        json!({"type": "string", "const": event_type.as_str()}),
    );
    properties.insert(
        "at".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    properties.insert("data".into(), data);
    let mut required = vec!["type", "at", "data"];
    if !event_type.is_ephemeral() {
        required.insert(0, "id");
    }
    json!({"type": "object", "properties": properties, "required": required})
}

fn message_name(event_type: EventType) -> String {
    event_type.as_str().replace('.', "_")
}

/// The client's frames.
fn client_frames() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "resume",
            "Replays every event after `after` the user may see, then continues live. Send it first, in `onopen`. At most 5 per second.",
            object(&[
                ("type", json!({"type": "string", "const": "resume"})),
                (
                    "after",
                    json!({"type": "string", "pattern": "^[0-9]{1,19}$"}),
                ),
            ]),
        ),
        (
            "typing",
            "Tells the others who can see the conversation that this user is typing.",
            object(&[
                ("type", json!({"type": "string", "const": "typing"})),
                ("conversation_id", id()),
            ]),
        ),
        (
            "viewing",
            "Tells the others who can see the conversation that this user has it open.",
            object(&[
                ("type", json!({"type": "string", "const": "viewing"})),
                ("conversation_id", id()),
            ]),
        ),
        (
            "ping",
            "Answered with `pong`.",
            object(&[("type", json!({"type": "string", "const": "ping"}))]),
        ),
    ]
}

/// Close codes a client acts on.
pub const CLOSE_CODES: [(u16, &str); 8] = [
    (
        1001,
        "The server is going away (a restart or deploy): reconnect and resume.",
    ),
    (
        CLOSE_REPLAY_FAILED,
        "The replay could not be read: reconnect and resume, with backoff.",
    ),
    (CLOSE_TOO_SLOW, "Too slow to keep up: reconnect and resume."),
    (
        CLOSE_ACCOUNT_DISABLED,
        "The user was deactivated: do not reconnect.",
    ),
    (
        CLOSE_SIGNED_OUT,
        "The sign-in the socket was opened with ended (sign-out, a revoked session, a new password): sign in again.",
    ),
    (
        CLOSE_BAD_FRAME,
        "A malformed, unknown or too large client frame.",
    ),
    (
        CLOSE_CURSOR_EXPIRED,
        "The resume cursor is older than the event log keeps: reload your lists, then connect without resume.",
    ),
    (
        CLOSE_TOO_MANY_RESUMES,
        "More resume frames than allowed: reconnect later, with backoff.",
    ),
];

/// A visitor frame: `{"type", "at", "data"}` (no cursor: visitors do not resume).
fn visitor_frame(event_type: &str, data: Value) -> Value {
    object(&[
        ("type", json!({"type": "string", "const": event_type})),
        ("at", json!({"type": "string", "format": "date-time"})),
        ("data", data),
    ])
}

/// The web chat visitor's socket (`/v1/webchat/ws`): its messages and close codes.
fn visitor_channel() -> (Value, Vec<Value>, Vec<Value>) {
    use crate::live::visitor::CLOSE_SESSION_EXPIRED;
    let messages = json!({
        "visitor_message_created": {
            "name": "message.created", "title": "message.created", "contentType": "application/json",
            "summary": "A message of the visitor's conversation: theirs (from another tab too) or an agent's reply. Never a note.",
            "payload": visitor_frame("message.created", object(&[("conversation_id", id()), ("message", schema("VisitorMessage"))])),
        },
        "visitor_typing": {
            "name": "typing", "title": "typing", "contentType": "application/json",
            "summary": "An agent is typing in the visitor's conversation.",
            "payload": visitor_frame("typing", object(&[("conversation_id", id())])),
        },
        "visitor_pong": {
            "name": "pong", "title": "pong", "contentType": "application/json", "summary": "The answer to `ping`.",
            "payload": object(&[("type", json!({"type": "string", "const": "pong"}))]),
        },
        "visitor_ping": {
            "name": "ping", "title": "ping", "contentType": "application/json", "summary": "Keeps the socket alive; answered with `pong`.",
            "payload": object(&[("type", json!({"type": "string", "const": "ping"}))]),
        },
    });
    let channel = json!({
        "address": "/v1/webchat/ws",
        "description": format!(
            "A web chat visitor's socket: the agents' replies and typing in the visitor's own conversations, \
             never notes or anything else. Missed frames are not replayed: after a reconnect, load \
             `GET /v1/webchat/messages`. Close codes: `{CLOSE_TOO_SLOW}` fell behind (reconnect and reload), \
             `{CLOSE_SESSION_EXPIRED}` the visitor session expired (start a new one), `{CLOSE_BAD_FRAME}` a bad frame."
        ),
        "messages": messages,
        "bindings": {"ws": {
            "method": "GET",
            "query": {"type": "object", "properties": {
                "visitor_token": {"type": "string", "description": "The visitor session's token (`POST /v1/webchat/{widget_token}/sessions`)."},
            }, "required": ["visitor_token"]},
        }},
    });
    let received = ["visitor_message_created", "visitor_typing", "visitor_pong"]
        .iter()
        .map(|name| json!({"$ref": format!("#/channels/visitor/messages/{name}")}))
        .collect();
    let sent = vec![json!({"$ref": "#/channels/visitor/messages/visitor_ping"})];
    (channel, received, sent)
}

/// The AsyncAPI document, with the schemas of the REST document `openapi` (its
/// `components.schemas`, referenced the same way).
pub fn document(openapi: &Value) -> Value {
    let mut messages = Map::new();
    let mut received = Vec::new();
    let mut sent = Vec::new();
    for &event_type in EventType::ALL {
        let (data, when) = event(event_type);
        let name = message_name(event_type);
        messages.insert(
            name.clone(),
            json!({
                "name": event_type.as_str(),
                "title": event_type.as_str(),
                "summary": when,
                "contentType": "application/json",
                "payload": envelope(event_type, data),
            }),
        );
        received.push(json!({"$ref": format!("#/channels/live/messages/{name}")}));
    }
    for (name, summary, payload) in client_frames() {
        let key = format!("client_{name}");
        messages.insert(
            key.clone(),
            json!({"name": name, "title": name, "summary": summary, "contentType": "application/json", "payload": payload}),
        );
        sent.push(json!({"$ref": format!("#/channels/live/messages/{key}")}));
    }
    messages.insert(
        "pong".into(),
        json!({"name": "pong", "title": "pong", "summary": "The answer to a client `ping`.", "contentType": "application/json",
               "payload": object(&[("type", json!({"type": "string", "const": "pong"}))])}),
    );
    received.push(json!({"$ref": "#/channels/live/messages/pong"}));
    let closes: Vec<String> = CLOSE_CODES
        .iter()
        .map(|(code, meaning)| format!("- `{code}`: {meaning}"))
        .collect();
    let (visitor, visitor_received, visitor_sent) = visitor_channel();
    let schemas = openapi
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard realtime",
            "version": "1",
            "description": format!(
                "The WebSocket at `/v1/ws`: every change a user may see, pushed as it commits. \
                 Authenticate with `Authorization: Bearer <access token>` or, from a browser, \
                 `?access_token=`; a bad token is refused with HTTP 401 before the upgrade. \
                 Logged events carry an `id` (a cursor, per organization, increasing in commit \
                 order); after a reconnect send `resume` with the last id applied, or read \
                 `GET /v1/events?after=` over REST. The schemas are those of the REST API \
                 (`/openapi.json`); per-user fields (`unread`, `pinned`, `pin_position`, \
                 `contact.favorite`) are neutral in events. The web chat visitor's socket \
                 (`/v1/webchat/ws`) is the `visitor` channel.\n\nClose codes of `/v1/ws`:\n{}",
                closes.join("\n")
            ),
        },
        "servers": {
            "local": {"host": "127.0.0.1:8080", "protocol": "ws", "description": "`make run`"},
        },
        "channels": {
            "live": {
                "address": "/v1/ws",
                "messages": messages,
                "bindings": {"ws": {
                    "method": "GET",
                    "query": {"type": "object", "properties": {
                        "access_token": {"type": "string", "description": "For browsers, which cannot set headers on a WebSocket."},
                    }},
                }},
            },
            "visitor": visitor,
        },
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Events the server pushes",
                "messages": received,
            },
            "sendFrames": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Frames the client sends",
                "messages": sent,
            },
            "receiveVisitorFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/visitor"},
                "summary": "What a web chat visitor's socket pushes",
                "messages": visitor_received,
            },
            "sendVisitorFrames": {
                "action": "send",
                "channel": {"$ref": "#/channels/visitor"},
                "summary": "Frames a visitor's widget sends",
                "messages": visitor_sent,
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    })
}
