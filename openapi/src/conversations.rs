//! Conversations, messages, contacts and the channel calls (API.md, Conversations and
//! Channels in and out).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::page_type;

page_type!(ConversationPage, Conversation);
page_type!(MessagePage, Message);
page_type!(ActivityPage, ActivityEntry);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmsOptOut {
    pub sms: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: i64,
    /// `null` for unknown numbers.
    pub name: Option<String>,
    /// E.164.
    pub phone_numbers: Vec<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
    /// Whether the caller marked this contact as a favorite.
    pub favorite: bool,
    pub opted_out: SmsOptOut,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::common::millis")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: i64,
    pub org_id: i64,
    pub inbox_id: i64,
    pub channel_id: i64,
    pub contact: Contact,
    pub status: ConversationStatus,
    /// History of a private number that became a shared channel: read-only.
    pub archived: bool,
    pub spam: bool,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    /// Tag names.
    pub tags: Vec<String>,
    /// For the caller: messages they have not read, or marked unread.
    pub unread: bool,
    /// Pinned by the caller.
    pub pinned: bool,
    pub pin_position: Option<i32>,
    /// The newest message's id (send it as `if_last_message_id` to guard a reply).
    pub last_message_id: Option<i64>,
    #[serde(with = "crate::common::millis::option")]
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub message_count: i64,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::common::millis::option")]
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationCounts {
    pub open: i64,
    pub closed: i64,
    pub archived: i64,
    /// Open conversations unread by the caller.
    pub unread: i64,
    /// Open and assigned to the caller.
    pub mine: i64,
    pub unassigned: i64,
    /// Open and assigned to someone else.
    pub others: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListStatus {
    Open,
    Closed,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeFilter {
    Me,
    Others,
    Unassigned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantFilter {
    Me,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationSort {
    RecentConversations,
    OldestConversations,
    RecentMessages,
    OldestMessages,
}

/// Filters of the conversation list (and of its counts).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// Default `open`.
    pub status: Option<ListStatus>,
    pub inbox_id: Option<i64>,
    pub channel_id: Option<i64>,
    /// Omitted: every visible conversation.
    pub assignee: Option<AssigneeFilter>,
    /// `me`: conversations the caller has written in.
    pub participant: Option<ParticipantFilter>,
    pub unread: Option<bool>,
    /// A tag name.
    pub tag: Option<String>,
    pub contact_id: Option<i64>,
    /// Search: conversations whose contact has words (of the name, company or e-mail)
    /// beginning with each word of `q`, or, for a phone number, a number with these digits
    /// (whole, in any format, or its ending); or with one message, notes included, holding
    /// every word of `q` as the start of a word (words under three letters: whole words).
    /// Case-insensitive; punctuation only separates words.
    pub q: Option<String>,
    /// Default `recent_messages`. Conversation sorts use creation time on the open tab and
    /// close time on the closed tab; message sorts put conversations without messages first.
    pub sort: Option<ConversationSort>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page, as it was returned.
    #[serde(default, deserialize_with = "crate::common::empty_as_none")]
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// `null` unassigns.
    pub assignee_id: Option<i64>,
    /// Optionally a team the assignee belongs to; `null` clears it.
    #[serde(default)]
    pub team_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Spam is hidden from every list.
    #[serde(default)]
    pub spam: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    pub inbox_id: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// Where among the caller's pins; default: last.
    pub position: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkContactRequest {
    pub contact_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Close,
    Assign,
    Tag,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// At most 100.
    pub ids: Vec<i64>,
    pub action: BulkAction,
    /// With `assign`; `null` unassigns.
    #[serde(default)]
    pub assignee_id: Option<i64>,
    /// With `tag`: a tag name.
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkFailure {
    pub id: i64,
    /// The code the single action would have answered with.
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkResult {
    pub done: Vec<i64>,
    pub failed: Vec<BulkFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Message,
    Note,
    Activity,
    Survey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorType {
    User,
    Contact,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Author {
    #[serde(rename = "type")]
    pub author_type: AuthorType,
    pub id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<i64>,
    /// Whether the customer reacted with it.
    pub contact: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub direction: Direction,
    pub kind: MessageKind,
    pub body: String,
    pub author: Author,
    pub attachments: Vec<Attachment>,
    pub reactions: Vec<Reaction>,
    /// Outbound messages only.
    pub delivery_status: Option<DeliveryStatus>,
    /// With `delivery_status: failed`: why, in words for the agent (the provider's answer
    /// or report, e.g. `the provider answered HTTP 500`, or `timed out`).
    pub delivery_error: Option<String>,
    /// Survey messages: the token of the customer's answer link.
    pub survey_token: Option<String>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    #[default]
    Message,
    /// Internal: never delivered to the customer.
    Note,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// May be empty with `canned_response_id` (the canned body is sent).
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub kind: SendKind,
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
    pub canned_response_id: Option<i64>,
    /// Refuse with 409 `conversation_changed` when a newer message arrived meanwhile.
    pub if_last_message_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    pub channel_id: i64,
    /// An existing contact, or
    pub contact_id: Option<i64>,
    /// a phone number (an unknown one creates a contact).
    pub to: Option<String>,
    pub body: String,
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// The `next_cursor` of the previous (newer) page.
    #[serde(default, deserialize_with = "crate::common::empty_as_none")]
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub before: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityEntry {
    pub id: i64,
    /// `assigned`, `moved`, `tagged`, `untagged`, `closed`, `contact_linked`.
    pub action: String,
    pub actor_id: Option<i64>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    #[serde(with = "crate::common::millis")]
    pub at: DateTime<Utc>,
}

/// An inbound attachment, inlined by the provider.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundAttachment {
    pub content_type: String,
    pub filename: String,
    pub data_base64: String,
}

/// A customer's message, as the channel provider posts it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundMessage {
    /// The provider's id: a replay with the same id creates nothing.
    pub external_id: String,
    /// The sender: a phone number for sms/WhatsApp, the platform's user id otherwise.
    pub from: String,
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<InboundAttachment>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundResult {
    pub conversation_id: i64,
    pub message_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Sent,
    Delivered,
    Failed,
}

/// A delivery report from the provider, for an outbound message it accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusCallback {
    /// The id the provider answered our delivery with, or our message id as text.
    pub external_id: String,
    pub status: ProviderStatus,
    pub error: Option<String>,
}

/// What Switchboard POSTs to a channel's `outbound_url` for each outbound message (replies
/// and surveys; never notes), with `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the
/// raw body with the channel's inbound_secret>`. A 2xx answer accepts it (a JSON body
/// `{"external_id": "…"}` names it for later status reports); anything else is retried with
/// backoff.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboundDelivery {
    pub message_id: i64,
    pub channel_id: i64,
    pub conversation_id: i64,
    /// The customer's address (E.164 for sms/WhatsApp).
    pub to: String,
    /// The channel's address.
    pub from: String,
    pub body: String,
    /// The message's files, in upload order, each behind a signed link.
    pub attachments: Vec<OutboundAttachment>,
}

/// A file of an outbound message, as the provider fetches it: no bearer token, the link's
/// signature is the authorization, until it expires.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboundAttachment {
    pub content_type: String,
    pub filename: String,
    /// Bytes.
    pub size: i64,
    /// `SWITCHBOARD_PUBLIC_URL` + `/v1/public/attachments/{id}?expires=<unix seconds>&signature=<hex>`;
    /// valid for `SWITCHBOARD_ATTACHMENT_LINK_TTL` seconds after the attempt that carried it
    /// (every retry carries fresh links).
    #[schema(format = "uri")]
    pub url: String,
}

/// A signed attachment link's query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttachmentLinkQuery {
    /// When the link stops working, in Unix seconds.
    pub expires: i64,
    /// Hex HMAC-SHA256 of the attachment id and `expires`, with a key only this server knows.
    pub signature: String,
}

/// A survey as the customer sees it (no sign-in: the token is the key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicSurvey {
    pub question: String,
    pub answered: bool,
    pub rating: Option<i32>,
    pub comment: Option<String>,
}

/// The period and inbox of a survey summary. Times are RFC 3339 (percent-encode a `+`
/// offset, or use `Z`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SurveySummaryQuery {
    /// Answers given at or after this time; omitted: since the first.
    #[serde(default, deserialize_with = "crate::common::rfc3339::option")]
    pub from: Option<DateTime<Utc>>,
    /// Answers given before this time; omitted: up to now.
    #[serde(default, deserialize_with = "crate::common::rfc3339::option")]
    pub to: Option<DateTime<Utc>>,
    /// Only this inbox; omitted: every inbox the caller may read results of.
    pub inbox_id: Option<i64>,
}

/// Survey results over a period: per inbox the answers were given in, and per agent (the
/// conversation's assignee when the customer answered; unassigned answers count for their
/// inbox only). Only inboxes and agents with answers in the period are listed, by id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SurveySummary {
    pub inboxes: Vec<InboxSurveyResult>,
    pub agents: Vec<AgentSurveyResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxSurveyResult {
    pub inbox_id: i64,
    pub answered: i64,
    /// The mean rating, 1 to 5.
    pub mean_rating: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSurveyResult {
    pub user_id: i64,
    pub answered: i64,
    /// The mean rating, 1 to 5.
    pub mean_rating: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyAnswer {
    /// 1 (bad) to 5 (great).
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i32,
    pub comment: Option<String>,
}

/// `multipart/form-data` with one part named `file`.
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The file's bytes; its type is sniffed from them and must match what the part declares.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
