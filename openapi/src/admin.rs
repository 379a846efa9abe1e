//! Administration: users, teams, inboxes, members, channels, tags, canned responses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::User;
use crate::common::nullable;
use crate::enums::{AgentVisibility, ChannelProvider, ChannelType, InboxKind, Role};
use crate::page_type;

page_type!(UserPage, User);
page_type!(TeamPage, Team);
page_type!(InboxPage, Inbox);
page_type!(InboxMemberPage, InboxMember);
page_type!(ChannelPage, Channel);
page_type!(TagPage, Tag);
page_type!(CannedResponsePage, CannedResponse);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// At least 10 characters.
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `false` signs the user out everywhere at once.
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// A team: a group of agents conversations can be assigned to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub member_ids: Vec<i64>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

impl From<domain::Team> for Team {
    fn from(team: domain::Team) -> Self {
        Team {
            id: team.id.get(),
            name: team.name,
            member_ids: team.member_ids.into_iter().map(|id| id.get()).collect(),
            created_at: team.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    #[serde(default)]
    pub member_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inbox {
    pub id: i64,
    pub name: String,
    pub kind: InboxKind,
    /// The owner of a private inbox; `null` for shared ones.
    pub owner_id: Option<i64>,
    /// Off: nobody assigns, everybody answers.
    pub assignment_mode: bool,
    pub agent_visibility: AgentVisibility,
    pub allow_move: bool,
    pub auto_assign: bool,
    /// Most open conversations auto-assignment gives one agent; `null`: no limit.
    pub auto_assign_limit: Option<i32>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

impl From<domain::Inbox> for Inbox {
    fn from(inbox: domain::Inbox) -> Self {
        let settings = inbox.settings;
        Inbox {
            id: inbox.id.get(),
            name: inbox.name,
            kind: settings.kind.into(),
            owner_id: settings.owner_id.map(|id| id.get()),
            assignment_mode: settings.assignment_mode,
            agent_visibility: settings.agent_visibility.into(),
            allow_move: settings.allow_move,
            auto_assign: settings.auto_assign,
            auto_assign_limit: settings.auto_assign_limit,
            created_at: inbox.created_at,
        }
    }
}

/// A new inbox; settings left out take the defaults of a shared team inbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInbox {
    pub name: String,
    /// Default `shared`.
    pub kind: Option<InboxKind>,
    /// Required for a `private` inbox: the user whose texting number it is.
    pub owner_id: Option<i64>,
    /// Default `true`.
    pub assignment_mode: Option<bool>,
    /// Default `all`.
    pub agent_visibility: Option<AgentVisibility>,
    /// Default `true`.
    pub allow_move: Option<bool>,
    /// Default `false`.
    pub auto_assign: Option<bool>,
    pub auto_assign_limit: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInbox {
    pub name: Option<String>,
    pub assignment_mode: Option<bool>,
    pub agent_visibility: Option<AgentVisibility>,
    pub allow_move: Option<bool>,
    pub auto_assign: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub auto_assign_limit: Option<Option<i32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxMember {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub logged_in: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub inbox_id: i64,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    pub provider: ChannelProvider,
    /// E.164 for sms and WhatsApp (on Meta, WhatsApp's phone number id); the page or
    /// account id otherwise.
    pub address: String,
    pub name: String,
    /// Added to the end of every outbound message.
    pub appended_message: Option<String>,
    /// Where outbound messages are POSTed (`webhook` only); `null` there: a sandbox,
    /// messages are marked sent.
    pub outbound_url: Option<String>,
    /// The URL to paste into the provider's console: where it calls with customers'
    /// messages (`webhook`, `twilio`, `meta`); `null` for the web chat.
    pub callback_url: Option<String>,
    /// The web chat widget's public id (`POST /v1/webchat/{widget_token}/sessions`).
    pub widget_token: Option<String>,
    #[serde(with = "crate::common::millis")]
    pub created_at: DateTime<Utc>,
}

impl Channel {
    /// The channel as clients see it; `base` is the server's public URL.
    pub fn present(channel: domain::Channel, base: &str) -> Self {
        use domain::ChannelProvider as P;
        let path = match channel.provider {
            P::Webhook => Some("inbound"),
            P::Twilio => Some("twilio"),
            P::Meta => Some("meta"),
            P::Webchat => None,
        };
        Channel {
            id: channel.id.get(),
            inbox_id: channel.inbox_id.get(),
            channel_type: channel.channel_type.into(),
            provider: channel.provider.into(),
            address: channel.address,
            name: channel.name,
            appended_message: channel.appended_message,
            outbound_url: channel.outbound_url,
            callback_url: path
                .map(|path| format!("{base}/v1/channels/{}/{path}", channel.id.get())),
            widget_token: channel.widget_token,
            created_at: channel.created_at,
        }
    }
}

/// A new channel, with the secret that signs its inbound calls: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedChannel {
    #[serde(flatten)]
    pub channel: Channel,
    /// HMAC-SHA256 key for `X-Switchboard-Signature` (the `webhook` provider's calls and
    /// deliveries); not shown again.
    pub inbound_secret: String,
}

/// A provider's credentials: write-only, sealed at rest and never returned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChannelCredentials {
    Twilio(TwilioCredentials),
    Meta(MetaCredentials),
    Webchat(WebchatSettings),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioCredentials {
    /// `AC…`, 34 characters.
    pub account_sid: String,
    pub auth_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaCredentials {
    /// A system user's or page access token with the messaging permissions.
    pub access_token: String,
    /// The Meta app's secret: it signs every webhook call (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// Any string of your choosing, entered again in the app's webhook settings.
    pub verify_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebchatSettings {
    /// The page origins the widget may run on (`https://example.com`), 1 to 20.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    /// Default `webhook`. Twilio carries `sms` and `whatsapp`, Meta `whatsapp`, `facebook`
    /// and `instagram`, the web chat `webchat`.
    pub provider: Option<ChannelProvider>,
    pub address: String,
    pub name: String,
    pub appended_message: Option<String>,
    /// Where outbound messages are POSTed (`http://` or `https://`; `webhook` only); unset:
    /// a sandbox. It must reach the public internet: loopback, private, link-local and
    /// metadata addresses (by address, or by a name that resolves to one) are refused with
    /// 422 `validation_failed` unless the operator allows their range.
    pub outbound_url: Option<String>,
    /// The provider's credentials (`twilio`, `meta`) or settings (`webchat`); none for the
    /// webhook.
    #[schema(value_type = Option<ChannelCredentials>)]
    pub credentials: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub color: String,
}

impl From<domain::Tag> for Tag {
    fn from(tag: domain::Tag) -> Self {
        Tag {
            id: tag.id.get(),
            name: tag.name,
            color: tag.color,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    pub name: String,
    /// `#rrggbb`; default `#8a8f98`.
    pub color: Option<String>,
}

/// A rename or a new color; what is left out stays as it is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTag {
    pub name: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CannedResponse {
    pub id: i64,
    pub inbox_id: i64,
    /// Typed after `/` in the composer.
    pub shortcut: String,
    pub title: String,
    pub body: String,
}

impl From<domain::CannedResponse> for CannedResponse {
    fn from(canned: domain::CannedResponse) -> Self {
        CannedResponse {
            id: canned.id.get(),
            inbox_id: canned.inbox_id.get(),
            shortcut: canned.shortcut,
            title: canned.title,
            body: canned.body,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCannedResponse {
    pub shortcut: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCannedResponse {
    pub shortcut: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
}

/// `?q=gre` matches shortcuts starting with it and titles containing it.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CannedQuery {
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page, as it was returned.
    #[serde(default, deserialize_with = "crate::common::empty_as_none")]
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub cursor: Option<String>,
}
