//! Per-user and per-conversation state around conversations: read state, pins, tags,
//! participants. Batch loaders take a page's ids and answer in one query each.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use domain::conversation::Conversation;
use domain::{ConversationId, TagId, UserId};

use super::conversations::Locked;
use crate::schema::{
    conversation_participants as participants, conversation_pins as pins,
    conversation_reads as reads, conversation_tags as ctags, tags,
};
use crate::{DbConnection, StoreError};

fn ids(list: &[ConversationId]) -> Vec<i64> {
    list.iter().map(|id| id.get()).collect()
}

/// Marks everything up to now read for the user (the backend's upsert is avoided: a delete
/// and an insert work the same through both).
pub fn mark_read(conn: &mut DbConnection, user: UserId, locked: &Locked) -> Result<(), StoreError> {
    let conversation = locked.current();
    let row = (
        reads::user_id.eq(user.get()),
        reads::conversation_id.eq(conversation.id.get()),
        reads::read_count.eq(conversation.message_count),
        reads::marked_unread.eq(false),
    );
    let read = (
        reads::read_count.eq(conversation.message_count),
        reads::marked_unread.eq(false),
    );
    per_backend!(conn, |c| diesel::insert_into(reads::table)
        .values(row)
        .on_conflict((reads::user_id, reads::conversation_id))
        .do_update()
        .set(read)
        .execute(c))?;
    Ok(())
}

/// Marks the conversation unread for the user until they read it again.
pub fn mark_unread(
    conn: &mut DbConnection,
    user: UserId,
    locked: &Locked,
) -> Result<(), StoreError> {
    let conversation = locked.current();
    let updated = diesel::update(
        reads::table.filter(
            reads::user_id
                .eq(user.get())
                .and(reads::conversation_id.eq(conversation.id.get())),
        ),
    )
    .set(reads::marked_unread.eq(true))
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(reads::table)
            .values((
                reads::user_id.eq(user.get()),
                reads::conversation_id.eq(conversation.id.get()),
                reads::read_count.eq(0i64),
                reads::marked_unread.eq(true),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Which of the conversations are unread for the user: new messages since they read, or
/// marked unread. Conversations without any message are never unread.
pub fn unread_among(
    conn: &mut DbConnection,
    user: UserId,
    list: &[Conversation],
) -> Result<HashSet<ConversationId>, StoreError> {
    let page: Vec<ConversationId> = list.iter().map(|conversation| conversation.id).collect();
    let rows: Vec<(i64, i64, bool)> = reads::table
        .filter(
            reads::user_id
                .eq(user.get())
                .and(reads::conversation_id.eq_any(ids(&page))),
        )
        .select((
            reads::conversation_id,
            reads::read_count,
            reads::marked_unread,
        ))
        .load(conn)?;
    let state: HashMap<i64, (i64, bool)> = rows
        .into_iter()
        .map(|(id, count, marked)| (id, (count, marked)))
        .collect();
    Ok(list
        .iter()
        .filter(|conversation| match state.get(&conversation.id.get()) {
            Some((count, marked)) => *marked || *count < conversation.message_count,
            None => conversation.message_count > 0,
        })
        .map(|conversation| conversation.id)
        .collect())
}

pub const MAX_PINS: i64 = 100;

/// Pins the conversation for the user at `position` (default: after their last pin).
pub fn pin(
    conn: &mut DbConnection,
    user: UserId,
    locked: &Locked,
    position: Option<i32>,
) -> Result<i32, StoreError> {
    let conversation = locked.id();
    diesel::delete(
        pins::table.filter(
            pins::user_id
                .eq(user.get())
                .and(pins::conversation_id.eq(conversation.get())),
        ),
    )
    .execute(conn)?;
    let position = match position {
        Some(position) => position,
        None => {
            let last: Option<i32> = pins::table
                .filter(pins::user_id.eq(user.get()))
                .select(diesel::dsl::max(pins::position))
                .first(conn)?;
            last.map_or(0, |last| last + 1)
        }
    };
    diesel::insert_into(pins::table)
        .values((
            pins::user_id.eq(user.get()),
            pins::conversation_id.eq(conversation.get()),
            pins::position.eq(position),
        ))
        .execute(conn)?;
    Ok(position)
}

pub fn pin_count(conn: &mut DbConnection, user: UserId) -> Result<i64, StoreError> {
    Ok(pins::table
        .filter(pins::user_id.eq(user.get()))
        .count()
        .get_result(conn)?)
}

pub fn unpin(conn: &mut DbConnection, user: UserId, locked: &Locked) -> Result<(), StoreError> {
    let conversation = locked.id();
    diesel::delete(
        pins::table.filter(
            pins::user_id
                .eq(user.get())
                .and(pins::conversation_id.eq(conversation.get())),
        ),
    )
    .execute(conn)?;
    Ok(())
}

/// The user's pin positions among the conversations.
pub fn pins_among(
    conn: &mut DbConnection,
    user: UserId,
    list: &[ConversationId],
) -> Result<HashMap<ConversationId, i32>, StoreError> {
    let rows: Vec<(i64, i32)> = pins::table
        .filter(
            pins::user_id
                .eq(user.get())
                .and(pins::conversation_id.eq_any(ids(list))),
        )
        .select((pins::conversation_id, pins::position))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, position)| (ConversationId(id), position))
        .collect())
}

/// Tags the conversation; `false` when it already had the tag.
pub fn add_tag(conn: &mut DbConnection, locked: &Locked, tag: TagId) -> Result<bool, StoreError> {
    let conversation = locked.id();
    insert_if_absent!(
        conn,
        diesel::insert_into(ctags::table).values((
            ctags::conversation_id.eq(conversation.get()),
            ctags::tag_id.eq(tag.get()),
        ))
    )
}

/// Removes the tag; `false` when the conversation did not have it.
pub fn remove_tag(
    conn: &mut DbConnection,
    locked: &Locked,
    tag: TagId,
) -> Result<bool, StoreError> {
    let conversation = locked.id();
    let removed = diesel::delete(
        ctags::table.filter(
            ctags::conversation_id
                .eq(conversation.get())
                .and(ctags::tag_id.eq(tag.get())),
        ),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// Tag names per conversation, alphabetical.
pub fn tags_among(
    conn: &mut DbConnection,
    list: &[ConversationId],
) -> Result<HashMap<ConversationId, Vec<String>>, StoreError> {
    let rows: Vec<(i64, String)> = ctags::table
        .inner_join(tags::table)
        .filter(ctags::conversation_id.eq_any(ids(list)))
        .order(tags::name)
        .select((ctags::conversation_id, tags::name))
        .load(conn)?;
    let mut by_conversation: HashMap<ConversationId, Vec<String>> = HashMap::new();
    for (id, name) in rows {
        by_conversation
            .entry(ConversationId(id))
            .or_default()
            .push(name);
    }
    Ok(by_conversation)
}

/// Remembers that the user wrote in the conversation (for `participant=me`).
pub fn add_participant(
    conn: &mut DbConnection,
    locked: &Locked,
    user: UserId,
) -> Result<(), StoreError> {
    let conversation = locked.id();
    insert_if_absent!(
        conn,
        diesel::insert_into(participants::table).values((
            participants::conversation_id.eq(conversation.get()),
            participants::user_id.eq(user.get()),
        ))
    )?;
    Ok(())
}
