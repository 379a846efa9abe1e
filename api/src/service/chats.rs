//! Internal chats: starting one, writing and reading in it, and showing chats to a member
//! (last message and unread count loaded per page, never per chat).

use domain::{Actor, ChatId, ChatKind, DomainError, User, UserId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::chats::{self, Chat, ChatMessage, Membership, Position};
use persistence::repo::{Page, attachments, users};

use super::attachments::{self as uploads, present as attachment};
use super::events::Outbox;
use super::messaging;
use crate::error::ApiError;

/// The chat if the caller is one of its members; 404 otherwise, as if it did not exist.
pub fn membership(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ChatId,
) -> Result<Membership, ApiError> {
    chats::find_for_member(conn, actor.org_id, id, actor.user_id)?.ok_or_else(ApiError::not_found)
}

/// Starts a chat of the caller with `member_ids`: a direct one is the pair's existing chat
/// when there is one (`false`: nothing was created).
pub fn create(
    conn: &mut DbConnection,
    caller: &User,
    request: wire::CreateChat,
) -> Result<(wire::Chat, bool), ApiError> {
    let wanted: Vec<UserId> = request.member_ids.iter().copied().map(UserId).collect();
    let planned = domain::chats::plan(
        caller.id,
        request.kind.into(),
        request.name.as_deref(),
        &wanted,
    )?;
    let people: Vec<User> = users::get_many(conn, caller.org_id, &planned.others)?
        .into_iter()
        .filter(|person| person.active)
        .collect();
    if let Some(missing) = planned
        .others
        .iter()
        .find(|id| !people.iter().any(|person| person.id == **id))
    {
        return Err(DomainError::invalid(
            "member_ids",
            &format!("no active user {missing} in this organization"),
        )
        .into());
    }
    let (chat, created) = match (planned.kind, people.as_slice(), planned.name) {
        (ChatKind::Direct, [other], _) => chats::direct(conn, caller, other)?,
        (ChatKind::Team, _, Some(name)) => {
            let mut everyone: Vec<&User> = vec![caller];
            everyone.extend(people.iter());
            (chats::team(conn, caller.org_id, &name, &everyone)?, true)
        }
        _ => return Err(ApiError::Internal("a chat plan the rules refuse".into())),
    };
    let shown = present(conn, caller.id, vec![chat])?
        .pop()
        .ok_or_else(|| ApiError::Internal("presenting a chat produced nothing".into()))?;
    Ok((shown, created))
}

/// One page of the caller's chats, most recently active first, with the last page row's
/// place for the next cursor.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    after: Option<Position>,
    limit: i64,
) -> Result<(Vec<wire::Chat>, Option<Position>), ApiError> {
    let page = chats::list_for_member(conn, actor.org_id, actor.user_id, after, limit)?;
    let next = if page.has_more {
        page.items
            .last()
            .map(|last| (last.active_at, last.chat.id.get()))
    } else {
        None
    };
    let list = page.items.into_iter().map(|listed| listed.chat).collect();
    Ok((present(conn, actor.user_id, list)?, next))
}

/// The member's view of one chat.
pub fn one(conn: &mut DbConnection, actor: &Actor, id: ChatId) -> Result<wire::Chat, ApiError> {
    let chat = membership(conn, actor, id)?.into_chat();
    present(conn, actor.user_id, vec![chat])?
        .pop()
        .ok_or_else(|| ApiError::Internal("presenting a chat produced nothing".into()))
}

/// Writes the caller's message, with their uploads, and announces it to the chat's members.
/// The author has read their own message (and what came before it).
pub fn send(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ChatId,
    request: wire::SendChatMessage,
    outbox: &mut Outbox,
) -> Result<wire::ChatMessage, ApiError> {
    let membership = membership(conn, actor, id)?;
    // Chat files never leave the organization: no channel limits them.
    uploads::claim(conn, actor, &request.attachment_ids, None)?;
    let body = messaging::checked_body(&request.body, !request.attachment_ids.is_empty())?;
    let message = chats::insert_message(conn, &membership, &body)?;
    let attached = attachments::attach_to_chat_message(conn, &request.attachment_ids, message.id)?;
    if attached != request.attachment_ids.len() {
        // Claimed a moment ago in this transaction: another send took one meanwhile.
        return Err(
            DomainError::invalid("attachment_ids", "an attachment was already sent").into(),
        );
    }
    chats::mark_read(conn, &membership, message.id)?;
    let shown = messages(conn, vec![message])?
        .pop()
        .ok_or_else(|| ApiError::Internal("presenting a chat message produced nothing".into()))?;
    outbox.chat_message(actor.org_id, &shown)?;
    Ok(shown)
}

/// Marks everything in the chat read for the caller.
pub fn read(conn: &mut DbConnection, actor: &Actor, id: ChatId) -> Result<(), ApiError> {
    let membership = membership(conn, actor, id)?;
    if let Some(newest) = chats::newest_message_id(conn, &membership)? {
        chats::mark_read(conn, &membership, newest)?;
    }
    Ok(())
}

/// The chat's messages before `before`, newest first.
pub fn history(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ChatId,
    before: Option<i64>,
    limit: i64,
) -> Result<Page<wire::ChatMessage>, ApiError> {
    let membership = membership(conn, actor, id)?;
    let page = chats::messages_page(conn, &membership, before, limit)?;
    Ok(Page {
        items: messages(conn, page.items)?,
        has_more: page.has_more,
    })
}

/// Chats as `viewer` sees them: last message and unread count in three queries per page.
fn present(
    conn: &mut DbConnection,
    viewer: UserId,
    list: Vec<Chat>,
) -> Result<Vec<wire::Chat>, ApiError> {
    let ids: Vec<ChatId> = list.iter().map(|chat| chat.id).collect();
    let mut last = chats::last_messages(conn, &ids)?;
    let unread = chats::unread_counts(conn, viewer, &ids)?;
    Ok(list
        .into_iter()
        .map(|chat| {
            let newest = last.remove(&chat.id);
            wire::Chat {
                id: chat.id.get(),
                kind: chat.kind.into(),
                name: chat.name,
                member_ids: chat.member_ids.into_iter().map(UserId::get).collect(),
                last_message_at: newest.as_ref().map(|message| message.created_at),
                last_message_preview: newest
                    .as_ref()
                    .map(|message| domain::conversation::preview(&message.body)),
                unread_count: unread.get(&chat.id).copied().unwrap_or(0),
                created_at: chat.created_at,
            }
        })
        .collect())
}

/// Chat messages with their attachments (one query whatever the page size).
fn messages(
    conn: &mut DbConnection,
    list: Vec<ChatMessage>,
) -> Result<Vec<wire::ChatMessage>, ApiError> {
    let ids: Vec<_> = list.iter().map(|message| message.id).collect();
    let mut files = attachments::of_chat_messages(conn, &ids)?;
    Ok(list
        .into_iter()
        .map(|message| wire::ChatMessage {
            id: message.id.get(),
            chat_id: message.chat_id.get(),
            author_id: message.author_id.get(),
            body: message.body,
            attachments: files
                .remove(&message.id)
                .unwrap_or_default()
                .iter()
                .map(attachment)
                .collect(),
            created_at: message.created_at,
        })
        .collect())
}
