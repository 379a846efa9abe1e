//! Turning stored rows into what clients see, with per-caller state (unread, pins,
//! favorites) loaded in one batch per page, never per row.

use std::collections::{HashMap, HashSet};

use domain::conversation::{self as rules, Conversation};
use domain::{ContactId, ConversationId, OrgId, UserId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::contacts::{self, Contact};
use persistence::repo::conversation_state;
use persistence::repo::messages::Message;

use crate::error::ApiError;

pub fn contact(contact: Contact, favorite: bool) -> wire::Contact {
    wire::Contact {
        id: contact.id.get(),
        name: contact.name,
        phone_numbers: contact.phone_numbers,
        email: contact.email,
        company: contact.company,
        notes: contact.notes,
        favorite,
        opted_out: wire::SmsOptOut {
            sms: contact.opted_out_sms,
        },
        created_at: contact.created_at,
        updated_at: contact.updated_at,
    }
}

/// A page of an activity trail (a conversation's or a contact's).
pub fn activity_page(
    page: persistence::repo::Page<persistence::repo::activity::Entry>,
) -> wire::ActivityPage {
    let next_cursor =
        crate::paging::next_id_cursor(page.has_more, page.items.last().map(|entry| entry.id));
    let items = page
        .items
        .into_iter()
        .map(|entry| wire::ActivityEntry {
            id: entry.id,
            action: entry.action,
            actor_id: entry.actor_id.map(UserId::get),
            data: serde_json::from_str(&entry.data).unwrap_or(serde_json::Value::Null),
            at: entry.at,
        })
        .collect();
    wire::ActivityPage { items, next_cursor }
}

/// The per-caller parts of a conversation.
#[derive(Default)]
pub struct ViewerState {
    pub unread: HashSet<ConversationId>,
    pub pins: HashMap<ConversationId, i32>,
    pub favorites: HashSet<ContactId>,
}

fn status(status: rules::Status) -> wire::ConversationStatus {
    match status {
        rules::Status::Open => wire::ConversationStatus::Open,
        rules::Status::Closed => wire::ConversationStatus::Closed,
    }
}

fn conversation(
    item: Conversation,
    contact: wire::Contact,
    tags: Vec<String>,
    viewer: &ViewerState,
) -> wire::Conversation {
    let pin_position = viewer.pins.get(&item.id).copied();
    wire::Conversation {
        id: item.id.get(),
        org_id: item.org_id.get(),
        inbox_id: item.inbox_id.get(),
        channel_id: item.channel_id.get(),
        contact,
        status: status(item.status),
        archived: item.archived,
        spam: item.spam,
        assignee_id: item.assignee_id.map(UserId::get),
        team_id: item.team_id.map(|team| team.get()),
        tags,
        unread: viewer.unread.contains(&item.id),
        pinned: pin_position.is_some(),
        pin_position,
        last_message_id: item.last_message_id.map(|id| id.get()),
        last_message_at: item.last_message_at,
        last_message_preview: item.last_message_preview,
        message_count: item.message_count,
        created_at: item.created_at,
        closed_at: item.closed_at,
        closed_by: item.closed_by.map(UserId::get),
    }
}

/// Presents a page of conversations for `viewer`: contacts, numbers, tags, favorites and
/// read state in a fixed number of queries. `pins` comes from the list query when known.
pub fn conversations(
    conn: &mut DbConnection,
    org: OrgId,
    viewer: Option<UserId>,
    list: Vec<Conversation>,
    pins: Option<HashMap<ConversationId, i32>>,
) -> Result<Vec<wire::Conversation>, ApiError> {
    let ids: Vec<ConversationId> = list.iter().map(|item| item.id).collect();
    let mut contact_ids: Vec<ContactId> = list.iter().map(|item| item.contact_id).collect();
    contact_ids.sort();
    contact_ids.dedup();
    let people = contacts::get_many(conn, org, &contact_ids)?;
    let mut tags = conversation_state::tags_among(conn, &ids)?;
    let state = match viewer {
        Some(user) => ViewerState {
            unread: conversation_state::unread_among(conn, user, &list)?,
            pins: match pins {
                Some(pins) => pins,
                None => conversation_state::pins_among(conn, user, &ids)?,
            },
            favorites: contacts::favorites_among(conn, user, &contact_ids)?
                .into_iter()
                .collect(),
        },
        None => ViewerState::default(),
    };
    list.into_iter()
        .map(|item| {
            let person = people
                .iter()
                .find(|person| person.id == item.contact_id)
                .cloned()
                .ok_or_else(|| {
                    ApiError::Internal(format!("conversation {} has no contact", item.id))
                })?;
            let favorite = state.favorites.contains(&person.id);
            let names = tags.remove(&item.id).unwrap_or_default();
            Ok(conversation(item, contact(person, favorite), names, &state))
        })
        .collect()
}

/// One conversation as everyone sees it (no per-caller state), for a writer that has its
/// contact loaded already: only the tags are read.
pub fn neutral(
    conn: &mut DbConnection,
    item: Conversation,
    person: &Contact,
) -> Result<wire::Conversation, ApiError> {
    if person.id != item.contact_id {
        return Err(ApiError::Internal(format!(
            "conversation {} presented with another contact",
            item.id
        )));
    }
    let names = conversation_state::tags_among(conn, &[item.id])?
        .remove(&item.id)
        .unwrap_or_default();
    let viewer = ViewerState::default();
    Ok(conversation(
        item,
        contact(person.clone(), false),
        names,
        &viewer,
    ))
}

/// One conversation for one caller.
pub fn one(
    conn: &mut DbConnection,
    org: OrgId,
    viewer: Option<UserId>,
    item: Conversation,
) -> Result<wire::Conversation, ApiError> {
    conversations(conn, org, viewer, vec![item], None)?
        .pop()
        .ok_or_else(|| ApiError::Internal("presenting a conversation produced nothing".into()))
}

pub fn message(item: Message) -> wire::Message {
    use rules::{AuthorType, DeliveryStatus, Direction, MessageKind};
    wire::Message {
        id: item.id.get(),
        conversation_id: item.conversation_id.get(),
        direction: match item.direction {
            Direction::Inbound => wire::Direction::Inbound,
            Direction::Outbound => wire::Direction::Outbound,
            Direction::Internal => wire::Direction::Internal,
        },
        kind: match item.kind {
            MessageKind::Message => wire::MessageKind::Message,
            MessageKind::Note => wire::MessageKind::Note,
            MessageKind::Activity => wire::MessageKind::Activity,
            MessageKind::Survey => wire::MessageKind::Survey,
        },
        body: item.body,
        author: wire::Author {
            author_type: match item.author_type {
                AuthorType::User => wire::AuthorType::User,
                AuthorType::Contact => wire::AuthorType::Contact,
                AuthorType::System => wire::AuthorType::System,
            },
            id: item.author_id,
        },
        attachments: Vec::new(),
        reactions: Vec::new(),
        delivery_status: item.delivery_status.map(|status| match status {
            DeliveryStatus::Queued => wire::DeliveryStatus::Queued,
            DeliveryStatus::Sent => wire::DeliveryStatus::Sent,
            DeliveryStatus::Delivered => wire::DeliveryStatus::Delivered,
            DeliveryStatus::Failed => wire::DeliveryStatus::Failed,
        }),
        delivery_error: item.delivery_error,
        survey_token: None,
        created_at: item.created_at,
    }
}

fn attachment(item: persistence::repo::attachments::Attachment) -> wire::Attachment {
    wire::Attachment {
        id: item.id,
        content_type: item.content_type,
        size: item.size,
        filename: item.filename,
    }
}

/// Presents messages with their attachments, reactions and survey tokens: three queries
/// whatever the page size.
pub fn messages(
    conn: &mut DbConnection,
    list: Vec<Message>,
) -> Result<Vec<wire::Message>, ApiError> {
    use persistence::repo::{attachments, reactions, surveys};
    let ids: Vec<domain::MessageId> = list.iter().map(|item| item.id).collect();
    let mut files = attachments::of_messages(conn, &ids)?;
    let mut reacted = reactions::of_messages(conn, &ids)?;
    let mut tokens = surveys::tokens_for(conn, &ids)?;
    Ok(list
        .into_iter()
        .map(|item| {
            let id = item.id;
            let mut presented = message(item);
            presented.attachments = files
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(attachment)
                .collect();
            presented.reactions = reacted
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|reaction| wire::Reaction {
                    emoji: reaction.emoji,
                    user_ids: reaction.user_ids,
                    contact: reaction.contact,
                })
                .collect();
            presented.survey_token = tokens.remove(&id);
            presented
        })
        .collect())
}

/// A message this transaction has just written, without a query: it has no reactions or
/// survey token yet, and `files` are the attachments it was given.
pub fn new_message(
    item: Message,
    files: &[persistence::repo::attachments::Attachment],
) -> wire::Message {
    let mut presented = message(item);
    let mut files: Vec<_> = files.iter().cloned().map(attachment).collect();
    files.sort_by_key(|file| file.id);
    presented.attachments = files;
    presented
}

/// One message, complete.
pub fn full_message(conn: &mut DbConnection, item: Message) -> Result<wire::Message, ApiError> {
    messages(conn, vec![item])?
        .pop()
        .ok_or_else(|| ApiError::Internal("presenting a message produced nothing".into()))
}
