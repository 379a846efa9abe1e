//! Messages in and out: an agent's reply or note, a new outbound conversation, a
//! customer's inbound message, and the provider's delivery reports.

use domain::EventType;
use domain::conversation::{
    self as rules, AuthorType, Conversation, DeliveryStatus, Direction, MessageKind,
};
use domain::{
    Actor, CannedResponseId, Channel, ChannelId, ContactId, ConversationId, DomainError, MessageId,
    OrgId, phone, validate,
};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::attachments::Attachment;
use persistence::repo::contacts::{self, Contact};
use persistence::repo::conversations::{self, Locked, NewConversation};
use persistence::repo::{
    attachments, canned, channels, conversation_state, deliveries, inboxes, messages, receipts,
};

use super::attachments as uploads;
use super::events::Outbox;
use super::present;
use super::visibility::{self, Visible};
use crate::error::ApiError;

pub const MAX_BODY_CHARS: usize = domain::validate::limits::MESSAGE_BODY;

/// What an agent asks to send.
pub struct Outgoing {
    pub body: String,
    pub kind: wire::SendKind,
    pub attachment_ids: Vec<i64>,
    pub canned_response_id: Option<i64>,
    pub if_last_message_id: Option<i64>,
}

/// Where a message is written: the open conversation, its channel and its customer.
pub(crate) struct Thread<'a> {
    pub conversation: &'a mut Locked,
    pub channel: &'a Channel,
    pub contact: &'a Contact,
}

/// What an agent writes: the kind, the text, the canned response it came from, and the
/// uploads (already claimed) it carries.
pub(crate) struct Draft<'a> {
    pub kind: MessageKind,
    pub body: &'a str,
    pub canned_response_id: Option<i64>,
    pub attachments: &'a [Attachment],
}

/// The body of a message (a conversation's or a chat's): required, unless files go with it
/// (an MMS may be a picture).
pub(crate) fn checked_body(body: &str, with_files: bool) -> Result<String, ApiError> {
    if with_files && body.trim().is_empty() {
        return Ok(String::new());
    }
    Ok(validate::text("body", body, MAX_BODY_CHARS)?)
}

/// Attaches uploads claimed (checked as unsent) earlier in this transaction to `message`;
/// another send that took one meanwhile makes this one fail.
fn attach_claimed(
    conn: &mut DbConnection,
    files: &[Attachment],
    message: MessageId,
) -> Result<(), ApiError> {
    let ids: Vec<i64> = files.iter().map(|file| file.id).collect();
    if attachments::attach(conn, &ids, message)? != ids.len() {
        return Err(
            DomainError::invalid("attachment_ids", "an attachment was already sent").into(),
        );
    }
    Ok(())
}

/// Writes an outbound message or note into an open conversation and queues its delivery.
pub(crate) fn write_outgoing(
    conn: &mut DbConnection,
    actor: &Actor,
    thread: Thread<'_>,
    draft: Draft<'_>,
    outbox: &mut Outbox,
) -> Result<wire::Message, ApiError> {
    let Draft {
        kind,
        body,
        canned_response_id,
        attachments: files,
    } = draft;
    let Thread {
        conversation,
        channel,
        contact,
    } = thread;
    rules::may_send(channel.channel_type, kind, contact.opted_out_sms)?;
    let (direction, text, status) = match kind {
        MessageKind::Note => (Direction::Internal, body.to_string(), None),
        _ => {
            let text = rules::outbound_body(body, channel.appended_message.as_deref());
            // A sandbox, or the web chat (the visitor's socket carries it): it is sent.
            let status = if channel.delivers_outbound() {
                DeliveryStatus::Queued
            } else {
                DeliveryStatus::Sent
            };
            (Direction::Outbound, text, Some(status))
        }
    };
    let message = messages::insert(
        conn,
        messages::NewMessage {
            org_id: actor.org_id,
            conversation_id: conversation.id(),
            direction,
            kind,
            body: &text,
            author_type: AuthorType::User,
            author_id: Some(actor.user_id.get()),
            delivery_status: status,
            external_id: None,
            canned_response_id,
        },
    )?;
    attach_claimed(conn, files, message.id)?;
    if status == Some(DeliveryStatus::Queued) {
        deliveries::enqueue(conn, actor.org_id, message.id, channel.id)?;
    }
    let updated = if kind == MessageKind::Note {
        conversation.current().clone()
    } else {
        conversations::note_message(
            conn,
            conversation,
            message.id,
            message.created_at,
            &rules::preview(&text),
        )?
    };
    conversation_state::add_participant(conn, conversation, actor.user_id)?;
    conversation_state::mark_read(conn, actor.user_id, conversation)?;
    let wire_message = present::new_message(message, files);
    outbox.message(
        actor.org_id,
        updated.inbox_id,
        EventType::MessageCreated,
        &wire_message,
    )?;
    if kind != MessageKind::Note {
        let neutral = present::neutral(conn, updated, contact)?;
        outbox.conversation(EventType::ConversationUpdated, &neutral)?;
    }
    Ok(wire_message)
}

fn body_from(
    conn: &mut DbConnection,
    actor: &Actor,
    conversation: &Conversation,
    outgoing: &Outgoing,
) -> Result<String, ApiError> {
    let mut body = outgoing.body.clone();
    if let Some(id) = outgoing.canned_response_id {
        let found = canned::get(conn, actor.org_id, CannedResponseId(id))?
            .filter(|found| found.inbox_id == conversation.inbox_id)
            .ok_or_else(|| {
                DomainError::invalid(
                    "canned_response_id",
                    "no such canned response in this inbox",
                )
            })?;
        if body.trim().is_empty() {
            body = found.body;
        }
    }
    checked_body(&body, !outgoing.attachment_ids.is_empty())
}

/// The contact's open conversation on the channel, or a new one in the channel's inbox
/// (closed is final: a new message after a close starts a new conversation).
///
/// `named` is the customer's address this message comes from or goes to, when there is one
/// (as stored: E.164 or `<channel>:<id>`): replies go there, also in an open conversation,
/// rather than to whichever of the contact's numbers comes first. Without one, a new
/// conversation is with the contact's first address on the channel.
pub(crate) fn open_conversation(
    conn: &mut DbConnection,
    channel: &Channel,
    contact: &Contact,
    named: Option<&str>,
    outbox: &mut Outbox,
) -> Result<Locked, ApiError> {
    if let Some(open) = conversations::lock_open(conn, channel.id, contact.id)? {
        if let Some(address) = named {
            conversations::set_customer_address(conn, &open, address)?;
        }
        return Ok(open);
    }
    let address =
        named.or_else(|| rules::first_address_on(channel.channel_type, &contact.phone_numbers));
    let new = NewConversation {
        org_id: channel.org_id,
        inbox_id: channel.inbox_id,
        channel_id: channel.id,
        contact_id: contact.id,
        archived: false,
        customer_address: address.map(str::to_string),
    };
    let created = conversations::insert(conn, new)?;
    let neutral = present::neutral(conn, created.current().clone(), contact)?;
    outbox.conversation(EventType::ConversationCreated, &neutral)?;
    Ok(created)
}

/// An agent's reply or internal note.
pub fn send(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    outgoing: Outgoing,
    outbox: &mut Outbox,
) -> Result<wire::Message, ApiError> {
    let Visible {
        conversation: mut locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    let conversation = locked.current();
    rules::ensure_open(conversation)?;
    if conversation.archived {
        return Err(DomainError::ConversationClosed.into());
    }
    rules::ensure_latest(conversation, outgoing.if_last_message_id.map(MessageId))?;
    let channel = channels::get(conn, actor.org_id, conversation.channel_id)?
        .ok_or_else(ApiError::not_found)?;
    let contact = contacts::get(conn, actor.org_id, conversation.contact_id)?
        .ok_or_else(ApiError::not_found)?;
    let kind = match outgoing.kind {
        wire::SendKind::Message => MessageKind::Message,
        wire::SendKind::Note => MessageKind::Note,
    };
    if rules::has_reply_window(channel.channel_type) && kind == MessageKind::Message {
        let wrote = conversations::customer_wrote_at(conn, conversation.id)?;
        rules::may_reply_now(channel.channel_type, kind, wrote, persistence::now())?;
    }
    let carried = (kind == MessageKind::Message).then_some(channel.channel_type);
    let claimed = uploads::claim(conn, actor, &outgoing.attachment_ids, carried)?;
    let body = body_from(conn, actor, conversation, &outgoing)?;
    let thread = Thread {
        conversation: &mut locked,
        channel: &channel,
        contact: &contact,
    };
    let draft = Draft {
        kind,
        body: &body,
        canned_response_id: outgoing.canned_response_id,
        attachments: &claimed,
    };
    write_outgoing(conn, actor, thread, draft, outbox)
}

/// A new outbound conversation: the business writes first.
pub fn start(
    conn: &mut DbConnection,
    actor: &Actor,
    request: wire::CreateConversation,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let channel = channels::get(conn, actor.org_id, ChannelId(request.channel_id))?
        .ok_or_else(|| DomainError::invalid("channel_id", "no such channel"))?;
    let inbox =
        inboxes::get(conn, actor.org_id, channel.inbox_id)?.ok_or_else(ApiError::not_found)?;
    let is_member = inboxes::is_member(conn, &inbox, actor.user_id)?;
    if rules::inbox_scope(actor, &inbox, is_member) == rules::InboxScope::Nothing {
        return Err(DomainError::invalid("channel_id", "no such channel").into());
    }
    rules::may_initiate(channel.channel_type)?;
    let claimed = uploads::claim(
        conn,
        actor,
        &request.attachment_ids,
        Some(channel.channel_type),
    )?;
    let body = checked_body(&request.body, !request.attachment_ids.is_empty())?;
    let (contact, named) = match (request.contact_id, request.to.as_deref()) {
        (Some(id), None) => (
            contacts::get(conn, actor.org_id, ContactId(id))?
                .ok_or_else(|| DomainError::invalid("contact_id", "no such contact"))?,
            None,
        ),
        (None, Some(to)) => {
            let number = phone::normalize(to)
                .ok_or_else(|| DomainError::invalid("to", "must be a phone number"))?;
            let contact = contacts::find_or_create_by_number(conn, actor.org_id, &number)?.0;
            (contact, Some(number))
        }
        _ => return Err(DomainError::invalid("to", "give either contact_id or to").into()),
    };
    if !contact
        .phone_numbers
        .iter()
        .any(|number| number.starts_with('+'))
        && channel.channel_type.uses_phone_number()
    {
        return Err(DomainError::invalid("contact_id", "this contact has no phone number").into());
    }
    rules::may_send(
        channel.channel_type,
        MessageKind::Message,
        contact.opted_out_sms,
    )?;
    let mut conversation = open_conversation(conn, &channel, &contact, named.as_deref(), outbox)?;
    let thread = Thread {
        conversation: &mut conversation,
        channel: &channel,
        contact: &contact,
    };
    let draft = Draft {
        kind: MessageKind::Message,
        body: &body,
        canned_response_id: None,
        attachments: &claimed,
    };
    write_outgoing(conn, actor, thread, draft, outbox)?;
    present::one(
        conn,
        actor.org_id,
        Some(actor.user_id),
        conversation.current().clone(),
    )
}

/// The customer's address as contacts store it, from the sender a provider names: a phone
/// number in E.164 for sms and WhatsApp, `<channel>:<id>` otherwise.
pub fn customer_address(channel: &Channel, from: &str) -> Result<String, ApiError> {
    if channel.channel_type.uses_phone_number() {
        Ok(phone::normalize(from)
            .ok_or_else(|| DomainError::invalid("from", "must be a phone number"))?)
    } else {
        Ok(format!(
            "{}:{}",
            channel.channel_type.as_str(),
            validate::text("from", from, 200)?
        ))
    }
}

/// A customer's message as a channel delivers it, whichever provider carried it.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    /// The provider's id for it: a replay with the same id creates nothing.
    pub external_id: String,
    /// The sender as the provider names them: a phone number, or the platform's user id.
    pub from: String,
    pub body: String,
    /// When the customer sent it, as the provider dated it.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What the channel knows of a new sender (a WhatsApp profile name, what a web chat
    /// visitor typed): given to their contact when it is created.
    pub sender_name: Option<String>,
    pub sender_email: Option<String>,
}

impl From<&wire::InboundMessage> for Arrival {
    fn from(inbound: &wire::InboundMessage) -> Self {
        Arrival {
            external_id: inbound.external_id.clone(),
            from: inbound.from.clone(),
            body: inbound.body.clone(),
            sent_at: inbound.sent_at,
            ..Arrival::default()
        }
    }
}

/// A customer's message from the channel provider. The caller checked the signature.
/// `files` are stored, not yet recorded; `uploaded` recorded already (a web chat visitor's
/// uploads), attached now. `Ok((ids, false))`: the message was received before (a replay),
/// and neither was recorded.
pub fn receive(
    conn: &mut DbConnection,
    channel: &Channel,
    inbound: &Arrival,
    files: &[uploads::StoredFile],
    uploaded: &[Attachment],
    outbox: &mut Outbox,
) -> Result<(wire::InboundResult, bool), ApiError> {
    let org = channel.org_id;
    if let Some((conversation, message)) =
        receipts::find_inbound(conn, channel.id, &inbound.external_id)?
    {
        return Ok((
            wire::InboundResult {
                conversation_id: conversation.get(),
                message_id: message.get(),
            },
            false,
        ));
    }
    let external_id = validate::text("external_id", &inbound.external_id, 200)?;
    let address = customer_address(channel, &inbound.from)?;
    if inbound.body.chars().count() > MAX_BODY_CHARS {
        return Err(DomainError::invalid("body", "is too long").into());
    }
    let (mut contact, _) = contacts::find_or_create_with(
        conn,
        org,
        &address,
        inbound.sender_name.as_deref(),
        inbound.sender_email.as_deref(),
    )?;
    if channel.channel_type == domain::ChannelType::Sms {
        let opted_out = match rules::consent_keyword(&inbound.body) {
            Some(rules::ConsentKeyword::OptOut) => Some(true),
            Some(rules::ConsentKeyword::OptIn) => Some(false),
            None => None,
        };
        if let Some(opted_out) = opted_out.filter(|value| *value != contact.opted_out_sms) {
            contacts::set_opted_out_sms(conn, org, contact.id, opted_out)?;
            contact.opted_out_sms = opted_out;
            let action = if opted_out { "opted_out" } else { "opted_in" };
            contacts::record_activity(
                conn,
                org,
                contact.id,
                action,
                None,
                r#"{"channel":"sms","source":"keyword"}"#,
            )?;
            outbox.contact(org, &present::contact(contact.clone(), false))?;
        }
    }
    // Closed is final: a customer who writes again after a close starts a new conversation.
    let mut conversation = open_conversation(conn, channel, &contact, Some(&address), outbox)?;
    if rules::has_reply_window(channel.channel_type) {
        // The reply window runs from the customer's time, never from one ahead of ours.
        let now = persistence::now();
        let wrote = inbound.sent_at.map_or(now, |at| at.min(now));
        conversations::note_customer_wrote(conn, &conversation, wrote)?;
    }
    let message = messages::insert(
        conn,
        messages::NewMessage {
            org_id: org,
            conversation_id: conversation.id(),
            direction: Direction::Inbound,
            kind: MessageKind::Message,
            body: &inbound.body,
            author_type: AuthorType::Contact,
            author_id: Some(contact.id.get()),
            delivery_status: None,
            external_id: Some(&external_id),
            canned_response_id: None,
        },
    )?;
    let updated = conversations::note_message(
        conn,
        &mut conversation,
        message.id,
        message.created_at,
        &rules::preview(&inbound.body),
    )?;
    let mut recorded = files
        .iter()
        .map(|file| uploads::record(conn, org, None, Some(message.id), file))
        .collect::<Result<Vec<_>, _>>()?;
    attach_claimed(conn, uploaded, message.id)?;
    recorded.extend(uploaded.iter().cloned());
    receipts::insert_inbound(
        conn,
        channel.id,
        &external_id,
        conversation.id(),
        message.id,
    )?;
    let message_id = message.id;
    let presented = present::new_message(message, &recorded);
    outbox.message(org, updated.inbox_id, EventType::MessageCreated, &presented)?;
    let is_new = updated.message_count == 1;
    let neutral = present::neutral(conn, updated, &contact)?;
    outbox.conversation(EventType::ConversationUpdated, &neutral)?;
    if is_new {
        super::auto_assign::route(conn, org, &mut conversation, outbox)?;
    }
    Ok((
        wire::InboundResult {
            conversation_id: conversation.id().get(),
            message_id: message_id.get(),
        },
        true,
    ))
}

/// A delivery report: the message's status follows the provider's, forward only; a
/// `failed` report's `error` is what agents see as the message's `delivery_error`. The
/// message is the one the provider named by its id, or (the generic webhook) by ours.
pub fn delivery_report(
    conn: &mut DbConnection,
    channel: &Channel,
    external_id: &str,
    status: DeliveryStatus,
    error: Option<&str>,
    outbox: &mut Outbox,
) -> Result<wire::Message, ApiError> {
    let org: OrgId = channel.org_id;
    let found = match messages::find_by_external_id(conn, org, external_id)? {
        Some(found) => Some(found),
        None => match external_id.parse::<i64>() {
            Ok(id) => messages::get(conn, org, MessageId(id))?,
            Err(_) => None,
        },
    };
    let message = found
        .filter(|message| message.direction == Direction::Outbound)
        .ok_or_else(ApiError::not_found)?;
    let conversation =
        conversations::get(conn, org, message.conversation_id)?.ok_or_else(ApiError::not_found)?;
    if conversation.channel_id != channel.id {
        return Err(ApiError::not_found());
    }
    let error = error.map(str::trim).filter(|error| !error.is_empty());
    let Some(updated) = messages::advance_delivery_status(conn, message.id, status, error)? else {
        // A repeat, or a report that arrived after a later one (`sent` after `delivered`):
        // accepted, so the provider stops retrying, but nothing changed to announce.
        let current = messages::get(conn, org, message.id)?.ok_or_else(ApiError::not_found)?;
        return present::full_message(conn, current);
    };
    let wire_message = present::full_message(conn, updated)?;
    outbox.message(
        org,
        conversation.inbox_id,
        EventType::MessageUpdated,
        &wire_message,
    )?;
    Ok(wire_message)
}
