//! The web chat widget's visitor API: what a website's visitor (no account, a short-lived
//! `visitor_token`) sends and sees.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A visitor opening the chat; what they typed names their contact.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVisitorSession {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// A visitor's session: the bearer token of their later requests and their conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitorSession {
    /// `Authorization: Bearer <visitor_token>` (or `?visitor_token=` for the WebSocket).
    pub visitor_token: String,
    pub conversation_id: i64,
    /// After this, the widget starts a new session.
    #[serde(with = "crate::common::millis")]
    pub expires_at: DateTime<Utc>,
}

/// Who wrote a message of the visitor's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitorAuthor {
    Visitor,
    Agent,
}

/// A file of the visitor's thread, behind a link that works for a while without a token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitorAttachment {
    pub id: i64,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
    pub url: String,
}

/// A message as the visitor sees it: theirs and the agents' replies, never notes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitorMessage {
    pub id: i64,
    pub conversation_id: i64,
    pub author: VisitorAuthor,
    pub body: String,
    pub attachments: Vec<VisitorAttachment>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

/// The visitor's current conversation (the open one, or the last closed one), newest page
/// of messages first in time order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitorThread {
    pub conversation_id: i64,
    /// Oldest first.
    pub items: Vec<VisitorMessage>,
    /// Pass as `before` for older messages; `null` when there are none.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitorThreadQuery {
    /// Messages per page, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: older messages.
    pub before: Option<String>,
}

/// A visitor's message. A closed conversation is answered by a new one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendVisitorMessage {
    #[serde(default)]
    pub body: String,
    /// Files uploaded with `POST /v1/webchat/attachments`.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}
