//! Internal chats (API.md, Internal chats): direct and team chats between users of one
//! organization, and their messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conversations::Attachment;
use crate::enums::ChatKind;
use crate::page_type;

page_type!(ChatPage, Chat);
page_type!(ChatMessagePage, ChatMessage);

/// A chat, as one of its members sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Chat {
    pub id: i64,
    pub kind: ChatKind,
    /// Team chats; `null` for direct ones.
    pub name: Option<String>,
    /// Everyone in the chat, the caller included, in id order.
    pub member_ids: Vec<i64>,
    /// The newest message's time; `null` before the first message.
    #[serde(with = "crate::common::millis::option")]
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    /// Messages by others the caller has not read (`POST /v1/chats/{id}/read` clears it).
    pub unread_count: i64,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChat {
    pub kind: ChatKind,
    /// The other members (active users of the caller's organization); the caller is always a
    /// member, listed or not. `direct`: exactly one other person. At most 100 members.
    #[serde(default)]
    pub member_ids: Vec<i64>,
    /// Required for `team` chats (1 to 100 characters); none for `direct` ones.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    pub id: i64,
    pub chat_id: i64,
    pub author_id: i64,
    pub body: String,
    pub attachments: Vec<Attachment>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendChatMessage {
    /// Required unless files go with it; at most 10,000 characters.
    #[serde(default)]
    pub body: String,
    /// The caller's own uploads (`POST /v1/attachments`) not sent yet; at most 10.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}
