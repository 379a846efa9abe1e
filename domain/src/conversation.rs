//! Conversations: who sees them, who may assign, move, close and answer them (API.md,
//! Conversations → Rules). The list query is built from [`inbox_scope`] and the single-item
//! check is [`may_see`]; both rest on the same two facts, so they cannot disagree.

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::ids::*;
use crate::model::{Actor, AgentVisibility, ChannelType, Inbox, InboxKind, Role};

/// Declares a closed set of values with its wire spelling (as in `model`).
macro_rules! simple_enum {
    ($name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

simple_enum!(Status { Open = "open", Closed = "closed" });
simple_enum!(Direction { Inbound = "inbound", Outbound = "outbound", Internal = "internal" });
simple_enum!(MessageKind { Message = "message", Note = "note", Activity = "activity", Survey = "survey" });
simple_enum!(AuthorType { User = "user", Contact = "contact", System = "system" });
simple_enum!(DeliveryStatus { Queued = "queued", Sent = "sent", Delivered = "delivered", Failed = "failed" });

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    /// Whether a report of `next` replaces this status. Statuses only move forward (queued →
    /// sent → delivered), whatever order the provider's reports arrive in: a late or retried
    /// `sent` must not undo `delivered`. `failed` replaces what has not reached the customer
    /// yet, and nothing replaces it; a repeat of the current status changes nothing either.
    pub fn replaced_by(self, next: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        matches!(
            (self, next),
            (Queued, Sent | Delivered | Failed) | (Sent, Delivered | Failed)
        )
    }

    /// The statuses `next` replaces: what a conditional write matches on, so that the rule
    /// holds against the status as it is when the write runs, not as it was read before.
    pub fn replaced_ones(next: DeliveryStatus) -> Vec<DeliveryStatus> {
        DeliveryStatus::ALL
            .into_iter()
            .filter(|current| current.replaced_by(next))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    pub status: Status,
    pub archived: bool,
    pub spam: bool,
    pub assignee_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub last_message_id: Option<MessageId>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub message_count: i64,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<UserId>,
}

impl AsRef<Conversation> for Conversation {
    fn as_ref(&self) -> &Conversation {
        self
    }
}

/// How much of an inbox's conversations a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxScope {
    /// None of them.
    Nothing,
    /// Every conversation.
    Everything,
    /// Unassigned ones, their own, and their teams'.
    AssignedAndUnassigned,
}

/// The user's view of one inbox: role, membership, the inbox's kind and visibility setting.
pub fn inbox_scope(actor: &Actor, inbox: &Inbox, is_member: bool) -> InboxScope {
    let settings = &inbox.settings;
    if inbox.org_id != actor.org_id {
        return InboxScope::Nothing;
    }
    if settings.kind == InboxKind::Private {
        // A personal texting number: its owner's alone, whatever the role.
        return if settings.owner_id == Some(actor.user_id) {
            InboxScope::Everything
        } else {
            InboxScope::Nothing
        };
    }
    match actor.role {
        Role::Admin => InboxScope::Everything,
        _ if !is_member => InboxScope::Nothing,
        Role::Manager => InboxScope::Everything,
        Role::Agent => match settings.agent_visibility {
            AgentVisibility::All => InboxScope::Everything,
            AgentVisibility::AssignedAndUnassigned => InboxScope::AssignedAndUnassigned,
        },
    }
}

/// Whether a conversation in an inbox of that scope is visible to the user.
pub fn scope_admits(
    scope: InboxScope,
    actor: &Actor,
    teams: &[TeamId],
    assignee: Option<UserId>,
    team: Option<TeamId>,
) -> bool {
    match scope {
        InboxScope::Nothing => false,
        InboxScope::Everything => true,
        InboxScope::AssignedAndUnassigned => {
            assignee.is_none()
                || assignee == Some(actor.user_id)
                || team.is_some_and(|team| teams.contains(&team))
        }
    }
}

/// Whether the user may see the conversation (invisible answers 404).
pub fn may_see(
    actor: &Actor,
    inbox: &Inbox,
    is_member: bool,
    teams: &[TeamId],
    conversation: &Conversation,
) -> bool {
    conversation.org_id == actor.org_id
        && conversation.inbox_id == inbox.id
        && scope_admits(
            inbox_scope(actor, inbox, is_member),
            actor,
            teams,
            conversation.assignee_id,
            conversation.team_id,
        )
}

/// Closed is final: nothing more is written to it.
pub fn ensure_open(conversation: &Conversation) -> Result<(), DomainError> {
    match conversation.status {
        Status::Open => Ok(()),
        Status::Closed => Err(DomainError::ConversationClosed),
    }
}

/// The assignee a request asks for, with what the rules need to know about them.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub user_id: UserId,
    pub is_inbox_member: bool,
    /// Whether they belong to the requested team (true when no team is requested).
    pub in_team: bool,
}

/// May `actor` set the conversation's assignee to `target` (`None`: unassign)?
pub fn may_assign(
    actor: &Actor,
    inbox: &Inbox,
    conversation: &Conversation,
    target: Option<Target>,
) -> Result<(), DomainError> {
    ensure_open(conversation)?;
    if !inbox.settings.assignment_mode {
        return Err(DomainError::AssignmentDisabled);
    }
    if actor.role == Role::Agent {
        let current = conversation.assignee_id;
        let allowed = match target {
            // Claim: from unassigned, or from a colleague where agents see everything.
            Some(target) if target.user_id == actor.user_id => {
                current.is_none()
                    || current == Some(actor.user_id)
                    || inbox.settings.agent_visibility == AgentVisibility::All
            }
            // Hand back: only their own conversation.
            None => current == Some(actor.user_id),
            Some(_) => false,
        };
        if !allowed {
            return Err(
                if lost_claim(actor, inbox, conversation, target.map(|t| t.user_id)) {
                    DomainError::ConversationChanged
                } else {
                    DomainError::Forbidden
                },
            );
        }
    }
    if let Some(target) = target {
        if !target.is_inbox_member {
            return Err(DomainError::AssigneeNotMember);
        }
        if !target.in_team {
            return Err(DomainError::AssigneeNotInTeam);
        }
    }
    Ok(())
}

/// Whether a refused claim is a lost race rather than a lack of rights: an agent taking a
/// conversation of an inbox where agents see only unassigned and their own conversations,
/// which someone else holds by now (they saw it unassigned a moment ago). Such a claim
/// answers `conversation_changed`, whether or not the conversation is still visible.
pub fn lost_claim(
    actor: &Actor,
    inbox: &Inbox,
    conversation: &Conversation,
    target: Option<UserId>,
) -> bool {
    actor.role == Role::Agent
        && target == Some(actor.user_id)
        && inbox.settings.kind == InboxKind::Shared
        && inbox.settings.agent_visibility == AgentVisibility::AssignedAndUnassigned
        && conversation
            .assignee_id
            .is_some_and(|holder| holder != actor.user_id)
}

/// A send guarded by `if_last_message_id` goes through only while that message is still the
/// newest: otherwise the agent would answer a question they have not seen.
pub fn ensure_latest(
    conversation: &Conversation,
    if_last_message_id: Option<MessageId>,
) -> Result<(), DomainError> {
    match if_last_message_id {
        Some(expected) if conversation.last_message_id != Some(expected) => {
            Err(DomainError::ConversationChanged)
        }
        _ => Ok(()),
    }
}

/// What moving a conversation to another inbox does to its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveOutcome {
    pub clear_assignee: bool,
}

/// May `actor` move the conversation from `source` to `target`?
pub fn may_move(
    conversation: &Conversation,
    source: &Inbox,
    target: &Inbox,
    actor_member_of_source: bool,
    actor_member_of_target: bool,
    assignee_member_of_target: bool,
) -> Result<MoveOutcome, DomainError> {
    ensure_open(conversation)?;
    if !source.settings.allow_move {
        return Err(DomainError::MoveDisabled);
    }
    if source.id == target.id {
        return Err(DomainError::invalid(
            "inbox_id",
            "the conversation is already in this inbox",
        ));
    }
    if target.settings.kind == InboxKind::Private || source.settings.kind == InboxKind::Private {
        return Err(DomainError::invalid(
            "inbox_id",
            "conversations do not move in or out of a private inbox",
        ));
    }
    if !actor_member_of_source || !actor_member_of_target {
        return Err(DomainError::invalid(
            "inbox_id",
            "you must be a member of both inboxes",
        ));
    }
    Ok(MoveOutcome {
        clear_assignee: conversation.assignee_id.is_some() && !assignee_member_of_target,
    })
}

/// Bulk actions are for supervisors.
pub fn may_act_in_bulk(actor: &Actor) -> Result<(), DomainError> {
    if matches!(actor.role, Role::Admin | Role::Manager) {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// What an outbound message may be sent to. Messages and surveys (the customer gets the
/// survey's link) reach the customer; notes and activity never leave.
pub fn may_send(
    channel: ChannelType,
    kind: MessageKind,
    contact_opted_out_sms: bool,
) -> Result<(), DomainError> {
    let reaches_contact = matches!(kind, MessageKind::Message | MessageKind::Survey);
    if reaches_contact && channel == ChannelType::Sms && contact_opted_out_sms {
        return Err(DomainError::ContactOptedOut);
    }
    Ok(())
}

/// Whether a stored message is one that goes out to the customer (and its files with it):
/// outbound replies and surveys; never notes, activity lines or what the customer sent.
pub fn reaches_customer(direction: Direction, kind: MessageKind) -> bool {
    direction == Direction::Outbound && matches!(kind, MessageKind::Message | MessageKind::Survey)
}

/// Whether the customer sees a stored message (a web chat visitor's thread): what they sent
/// and what was sent to them; never notes or activity lines, which are `Internal`.
pub fn customer_sees(direction: Direction, kind: MessageKind) -> bool {
    match direction {
        Direction::Inbound => true,
        Direction::Outbound => reaches_customer(direction, kind),
        Direction::Internal => false,
    }
}

/// Whether the business may open a conversation on this channel (WhatsApp: customers start).
pub fn may_initiate(channel: ChannelType) -> Result<(), DomainError> {
    if channel == ChannelType::Whatsapp {
        Err(DomainError::ChannelCannotInitiate)
    } else {
        Ok(())
    }
}

/// How long after the customer's last message WhatsApp takes a free-form reply (its
/// customer-service window; later, only a pre-approved template may reopen it).
pub const WHATSAPP_REPLY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Whether replies on this channel depend on when the customer last wrote (WhatsApp).
pub fn has_reply_window(channel: ChannelType) -> bool {
    channel == ChannelType::Whatsapp
}

/// Whether a free-form reply may go out on this channel `now`: on WhatsApp only within
/// [`WHATSAPP_REPLY_WINDOW`] of the customer's last message (`customer_wrote_at`, as the
/// provider dated it; a conversation the customer never wrote in has no window open).
/// Notes are never sent, so they are never refused.
pub fn may_reply_now(
    channel: ChannelType,
    kind: MessageKind,
    customer_wrote_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !has_reply_window(channel) || kind == MessageKind::Note {
        return Ok(());
    }
    match customer_wrote_at {
        Some(at) if now - at < WHATSAPP_REPLY_WINDOW => Ok(()),
        _ => Err(DomainError::ChannelWindowClosed),
    }
}

/// An inbound text that changes the sender's sms consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKeyword {
    OptOut,
    OptIn,
}

/// The carrier keywords (CTIA): STOP and its synonyms opt out, START and UNSTOP opt back in.
pub fn consent_keyword(body: &str) -> Option<ConsentKeyword> {
    let word = body
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "OPTOUT" | "OPT-OUT"
        | "REVOKE" => Some(ConsentKeyword::OptOut),
        "START" | "UNSTOP" | "YES" | "SUBSCRIBE" | "OPTIN" | "OPT-IN" => {
            Some(ConsentKeyword::OptIn)
        }
        _ => None,
    }
}

/// The first of a contact's stored addresses (in the order they were added) that a channel
/// of this type reaches: a phone number (E.164) for sms and WhatsApp, `<channel>:<id>` for
/// the others. What a conversation is with when nobody named an address.
pub fn first_address_on(channel: ChannelType, stored: &[String]) -> Option<&str> {
    let prefix = format!("{}:", channel.as_str());
    stored.iter().map(String::as_str).find(|address| {
        if channel.uses_phone_number() {
            address.starts_with('+')
        } else {
            address.starts_with(&prefix)
        }
    })
}

/// The body that leaves: the agent's text and the channel's appended message.
pub fn outbound_body(body: &str, appended: Option<&str>) -> String {
    match appended.map(str::trim).filter(|text| !text.is_empty()) {
        Some(appended) => format!("{}\n\n{}", body.trim_end(), appended),
        None => body.to_string(),
    }
}

/// The list preview of a message: its first line, at most 140 characters.
pub fn preview(body: &str) -> String {
    let line = body
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    line.chars().take(140).collect()
}

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
