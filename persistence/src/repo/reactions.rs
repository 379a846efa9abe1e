//! Reactions to messages: an emoji per user (and the customer's, from channels that have them).

use std::collections::HashMap;

use diesel::prelude::*;
use domain::{ContactId, MessageId, UserId};

use crate::schema::message_reactions as r;
use crate::{DbConnection, StoreError, now, to_db};

/// One emoji on one message: who reacted with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<i64>,
    pub contact: bool,
}

/// Adds the user's reaction; adding it twice changes nothing.
pub fn add(
    conn: &mut DbConnection,
    message: MessageId,
    emoji: &str,
    user: UserId,
) -> Result<(), StoreError> {
    // The same reaction sent at once (two devices, a retry): one row, and no failure.
    insert_if_absent!(
        conn,
        diesel::insert_into(r::table).values((
            r::message_id.eq(message.get()),
            r::emoji.eq(emoji),
            r::user_id.eq(Some(user.get())),
            r::created_at.eq(to_db(now())),
        ))
    )?;
    Ok(())
}

pub fn remove(
    conn: &mut DbConnection,
    message: MessageId,
    emoji: &str,
    user: UserId,
) -> Result<(), StoreError> {
    diesel::delete(
        r::table.filter(
            r::message_id
                .eq(message.get())
                .and(r::emoji.eq(emoji))
                .and(r::user_id.eq(user.get())),
        ),
    )
    .execute(conn)?;
    Ok(())
}

/// The customer's reaction to a message, replacing the one they had (channels such as
/// WhatsApp allow one each); `None` takes it away.
pub fn set_contact(
    conn: &mut DbConnection,
    message: MessageId,
    contact: ContactId,
    emoji: Option<&str>,
) -> Result<(), StoreError> {
    diesel::delete(
        r::table.filter(
            r::message_id
                .eq(message.get())
                .and(r::contact_id.eq(contact.get())),
        ),
    )
    .execute(conn)?;
    if let Some(emoji) = emoji {
        diesel::insert_into(r::table)
            .values((
                r::message_id.eq(message.get()),
                r::emoji.eq(emoji),
                r::contact_id.eq(Some(contact.get())),
                r::created_at.eq(to_db(now())),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The reactions of a page of messages, each emoji once, in the order first used.
pub fn of_messages(
    conn: &mut DbConnection,
    messages: &[MessageId],
) -> Result<HashMap<MessageId, Vec<Reaction>>, StoreError> {
    let ids: Vec<i64> = messages.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, String, Option<i64>, Option<i64>)> = r::table
        .filter(r::message_id.eq_any(ids))
        .order(r::id)
        .select((r::message_id, r::emoji, r::user_id, r::contact_id))
        .load(conn)?;
    let mut by_message: HashMap<MessageId, Vec<Reaction>> = HashMap::new();
    for (message, emoji, user, contact) in rows {
        let list = by_message.entry(MessageId(message)).or_default();
        let position = match list.iter().position(|reaction| reaction.emoji == emoji) {
            Some(position) => position,
            None => {
                list.push(Reaction {
                    emoji,
                    user_ids: Vec::new(),
                    contact: false,
                });
                list.len() - 1
            }
        };
        if let Some(user) = user {
            list[position].user_ids.push(user);
        }
        if contact.is_some() {
            list[position].contact = true;
        }
    }
    Ok(by_message)
}
