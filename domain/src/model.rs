//! The things Switchboard's users talk about, as plain data.

use chrono::{DateTime, Utc};

use crate::ids::*;

/// Declares a closed set of values with its wire spelling, parsed without surprises.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What a user may do in their organization (API.md, Roles).
    Role { Admin = "admin", Manager = "manager", Agent = "agent" }
);
wire_enum!(
    /// Shared: a team's inbox. Private: one user's personal texting number(s).
    InboxKind { Shared = "shared", Private = "private" }
);
wire_enum!(
    /// Which conversations of an inbox its agents see.
    AgentVisibility { All = "all", AssignedAndUnassigned = "assigned_and_unassigned" }
);
wire_enum!(
    ChannelType {
        Sms = "sms",
        Whatsapp = "whatsapp",
        Facebook = "facebook",
        Instagram = "instagram",
        Webchat = "webchat",
    }
);
wire_enum!(
    /// Who carries a channel's messages: Switchboard's own signed webhook (a bridge the
    /// team hosts), Twilio, Meta's Graph API, or Switchboard's web chat widget.
    ChannelProvider {
        Webhook = "webhook",
        Twilio = "twilio",
        Meta = "meta",
        Webchat = "webchat",
    }
);
wire_enum!(
    UserStatus { Online = "online", Away = "away", Offline = "offline" }
);
wire_enum!(
    /// An internal chat: `direct` between two people, or a named `team` group.
    ChatKind { Direct = "direct", Team = "team" }
);

impl ChannelType {
    /// Whether the customer's address on the channel is a phone number (E.164).
    pub fn uses_phone_number(self) -> bool {
        matches!(self, ChannelType::Sms | ChannelType::Whatsapp)
    }
}

impl ChannelProvider {
    /// The channel types this provider carries: Twilio texts (sms/mms, WhatsApp), Meta its
    /// three networks, the widget its web chat; the generic webhook bridges any of them.
    pub fn carries(self, channel: ChannelType) -> bool {
        use ChannelType::*;
        match self {
            ChannelProvider::Webhook => true,
            ChannelProvider::Twilio => matches!(channel, Sms | Whatsapp),
            ChannelProvider::Meta => matches!(channel, Whatsapp | Facebook | Instagram),
            ChannelProvider::Webchat => channel == Webchat,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub status: UserStatus,
    pub status_message: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Access tokens name the epoch they were issued in; a deactivation or a new password
    /// moves it on, and tokens of an earlier epoch no longer work.
    pub token_epoch: i64,
}

/// The authenticated caller, as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
}

impl User {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.id,
            org_id: self.org_id,
            role: self.role,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub org_id: OrgId,
    pub name: String,
    pub member_ids: Vec<UserId>,
    pub created_at: DateTime<Utc>,
}

/// An inbox's settings (API.md, `inbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSettings {
    pub kind: InboxKind,
    pub owner_id: Option<UserId>,
    pub assignment_mode: bool,
    pub agent_visibility: AgentVisibility,
    pub allow_move: bool,
    pub auto_assign: bool,
    pub auto_assign_limit: Option<i32>,
}

impl Default for InboxSettings {
    /// A shared inbox where agents claim conversations and see the whole queue.
    fn default() -> Self {
        Self {
            kind: InboxKind::Shared,
            owner_id: None,
            assignment_mode: true,
            agent_visibility: AgentVisibility::All,
            allow_move: true,
            auto_assign: false,
            auto_assign_limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbox {
    pub id: InboxId,
    pub org_id: OrgId,
    pub name: String,
    pub settings: InboxSettings,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMember {
    pub inbox_id: InboxId,
    pub user_id: UserId,
    pub logged_in: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub channel_type: ChannelType,
    pub address: String,
    pub name: String,
    pub appended_message: Option<String>,
    pub outbound_url: Option<String>,
    pub provider: ChannelProvider,
    /// The public id a website's chat widget starts visitor sessions with (web chat only).
    pub widget_token: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Channel {
    /// Whether an outbound message leaves through a provider (and so is queued for it):
    /// Twilio and Meta always, the webhook when it has an `outbound_url`. A webhook channel
    /// without one is a sandbox and the web chat is read by the visitor's own socket:
    /// their messages count as sent at once.
    pub fn delivers_outbound(&self) -> bool {
        match self.provider {
            ChannelProvider::Twilio | ChannelProvider::Meta => true,
            ChannelProvider::Webhook => self.outbound_url.is_some(),
            ChannelProvider::Webchat => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: TagId,
    pub org_id: OrgId,
    pub name: String,
    pub color: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub id: CannedResponseId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub shortcut: String,
    pub title: String,
    pub body: String,
}

wire_enum!(
    /// What an event announces (API.md, Realtime): the `type` of every frame a client
    /// receives. `typing`, `viewing` and `presence.updated` are ephemeral (never logged).
    EventType {
        ConversationCreated = "conversation.created",
        ConversationUpdated = "conversation.updated",
        ConversationAssigned = "conversation.assigned",
        ConversationMoved = "conversation.moved",
        ConversationClosed = "conversation.closed",
        MessageCreated = "message.created",
        MessageUpdated = "message.updated",
        ContactUpdated = "contact.updated",
        ContactsImported = "contacts.imported",
        ChatMessageCreated = "chat.message.created",
        Typing = "typing",
        Viewing = "viewing",
        PresenceUpdated = "presence.updated",
    }
);

impl EventType {
    /// Ephemeral events bypass the log and carry no cursor.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            EventType::Typing | EventType::Viewing | EventType::PresenceUpdated
        )
    }
}
