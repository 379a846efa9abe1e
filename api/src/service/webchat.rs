//! Web chat visitors: a session (a contact of their own, their conversation), their thread
//! as they see it (never notes), and their messages, which enter the inbox like any
//! channel's.

use chrono::{DateTime, Utc};
use domain::contacts::ContactFields;
use domain::conversation::{self as rules, Direction, MessageKind};
use domain::{Channel, ConversationId, DomainError, MessageId, validate};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::visitors::{self, Visitor};
use persistence::repo::{attachments, contacts, conversations, messages};

use super::events::Outbox;
use super::messaging::{self, Arrival};
use crate::error::ApiError;
use crate::state::AppState;

/// Longest page of a visitor's thread.
pub const MAX_PAGE: i64 = 100;

/// A new visitor on `channel`: a contact (`webchat:<key>`, with what they typed), the
/// session behind `token_hash`, and their conversation, which agents see from now on.
pub fn start(
    conn: &mut DbConnection,
    channel: &Channel,
    key: &str,
    request: &wire::StartVisitorSession,
    token_hash: &str,
    expires_at: DateTime<Utc>,
    outbox: &mut Outbox,
) -> Result<(Visitor, ConversationId), ApiError> {
    let mut checks = domain::error::Validator::new();
    let name = request
        .name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
        .and_then(|name| checks.check(validate::text("name", name, validate::limits::NAME)));
    let email = request
        .email
        .as_deref()
        .filter(|email| !email.trim().is_empty())
        .and_then(|email| checks.check(validate::email("email", email)));
    checks.finish()?;
    let address = format!("{}:{key}", domain::ChannelType::Webchat.as_str());
    let fields = ContactFields {
        name,
        email,
        phone_numbers: vec![address.clone()],
        ..ContactFields::default()
    };
    let contact = contacts::insert(conn, channel.org_id, &fields)?;
    let visitor = visitors::insert(
        conn,
        channel.org_id,
        channel.id,
        contact.id,
        &address,
        token_hash,
        expires_at,
    )?;
    let conversation =
        messaging::open_conversation(conn, channel, &contact, Some(&address), outbox)?;
    Ok((visitor, conversation.id()))
}

/// The visitor's current conversation: the open one, or the last one they had.
pub fn current(
    conn: &mut DbConnection,
    visitor: &Visitor,
) -> Result<domain::conversation::Conversation, ApiError> {
    conversations::latest_of(conn, visitor.channel_id, visitor.contact_id)?
        .ok_or_else(ApiError::not_found)
}

/// A page of the visitor's thread, oldest first.
pub fn thread(
    conn: &mut DbConnection,
    state: &AppState,
    visitor: &Visitor,
    before: Option<i64>,
    limit: i64,
) -> Result<wire::VisitorThread, ApiError> {
    let conversation = current(conn, visitor)?;
    let page = messages::customer_page(conn, conversation.id, before, limit.clamp(1, MAX_PAGE))?;
    let next_cursor = page
        .has_more
        .then(|| page.items.last().map(|oldest| oldest.id.get().to_string()))
        .flatten();
    let mut presented: Vec<wire::VisitorMessage> = super::present::messages(conn, page.items)?
        .iter()
        .filter_map(|message| for_visitor(state, message))
        .collect();
    presented.reverse();
    Ok(wire::VisitorThread {
        conversation_id: conversation.id.get(),
        items: presented,
        next_cursor,
    })
}

/// The visitor's message, into their open conversation or (after a close) a new one. The
/// files are their own uploads, not yet sent.
pub fn send(
    conn: &mut DbConnection,
    channel: &Channel,
    visitor: &Visitor,
    request: &wire::SendVisitorMessage,
    outbox: &mut Outbox,
) -> Result<MessageId, ApiError> {
    let body = messaging::checked_body(&request.body, !request.attachment_ids.is_empty())?;
    let mut ids = request.attachment_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > validate::limits::ATTACHMENTS {
        return Err(
            DomainError::invalid("attachment_ids", "at most 10 attachments per message").into(),
        );
    }
    let uploaded = attachments::visitor_unattached(conn, visitor.id, &ids)?;
    if uploaded.len() != ids.len() {
        return Err(
            DomainError::invalid("attachment_ids", "not your upload, or sent already").into(),
        );
    }
    let key = visitor
        .address
        .split_once(':')
        .map_or(visitor.address.as_str(), |(_, key)| key)
        .to_string();
    let arrival = Arrival {
        external_id: format!("visitor-{}-{}", visitor.id, crate::auth::random_token(16)),
        from: key,
        body,
        ..Arrival::default()
    };
    let (ids, _) = messaging::receive(conn, channel, &arrival, &[], &uploaded, outbox)?;
    Ok(MessageId(ids.message_id))
}

/// A message as the visitor sees it, or `None` for what they never see (notes, activity).
pub fn for_visitor(state: &AppState, message: &wire::Message) -> Option<wire::VisitorMessage> {
    let (direction, kind) = (
        domain_direction(message.direction),
        domain_kind(message.kind),
    );
    if !rules::customer_sees(direction, kind) {
        return None;
    }
    let author = match direction {
        Direction::Inbound => wire::VisitorAuthor::Visitor,
        _ => wire::VisitorAuthor::Agent,
    };
    let (base, now) = (state.config.public_base(), Utc::now());
    Some(wire::VisitorMessage {
        id: message.id,
        conversation_id: message.conversation_id,
        author,
        body: message.body.clone(),
        attachments: message
            .attachments
            .iter()
            .map(|file| wire::VisitorAttachment {
                id: file.id,
                content_type: file.content_type.clone(),
                size: file.size,
                filename: file.filename.clone(),
                url: state.links.url(&base, file.id, now),
            })
            .collect(),
        created_at: message.created_at,
    })
}

fn domain_direction(direction: wire::Direction) -> Direction {
    match direction {
        wire::Direction::Inbound => Direction::Inbound,
        wire::Direction::Outbound => Direction::Outbound,
        wire::Direction::Internal => Direction::Internal,
    }
}

fn domain_kind(kind: wire::MessageKind) -> MessageKind {
    match kind {
        wire::MessageKind::Message => MessageKind::Message,
        wire::MessageKind::Note => MessageKind::Note,
        wire::MessageKind::Activity => MessageKind::Activity,
        wire::MessageKind::Survey => MessageKind::Survey,
    }
}
