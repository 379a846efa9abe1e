//! The audit trail of a conversation: assignments, moves, tags, closes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, OrgId, UserId};

use super::Page;
use crate::schema::activity as a;
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub action: String,
    pub actor_id: Option<UserId>,
    /// Details as JSON text.
    pub data: String,
    pub at: DateTime<Utc>,
}

pub fn record(
    conn: &mut DbConnection,
    org: OrgId,
    conversation: ConversationId,
    action: &str,
    actor: Option<UserId>,
    data: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(a::table)
        .values((
            a::org_id.eq(org.get()),
            a::conversation_id.eq(conversation.get()),
            a::action.eq(action),
            a::actor_id.eq(actor.map(UserId::get)),
            a::data.eq(data),
            a::at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// The organization's conversation's trail, oldest first, after the entry id `after`.
pub fn page(
    conn: &mut DbConnection,
    org: OrgId,
    conversation: ConversationId,
    after: Option<i64>,
    limit: i64,
) -> Result<Page<Entry>, StoreError> {
    let rows: Vec<EntryRow> = a::table
        .filter(
            a::org_id
                .eq(org.get())
                .and(a::conversation_id.eq(conversation.get()))
                .and(a::id.gt(after.unwrap_or(0))),
        )
        .order(a::id)
        .limit(limit + 1)
        .select((a::id, a::action, a::actor_id, a::data, a::at))
        .load(conn)?;
    Ok(page_of(rows, limit))
}

/// A trail's stored row: id, action, actor, data, time.
pub(crate) type EntryRow = (i64, String, Option<i64>, String, NaiveDateTime);

/// The entries of `rows`, fetched with one more than `limit`.
pub(crate) fn page_of(rows: Vec<EntryRow>, limit: i64) -> Page<Entry> {
    let entries = rows
        .into_iter()
        .map(|(id, action, actor_id, data, at)| Entry {
            id,
            action,
            actor_id: actor_id.map(UserId),
            data,
            at: from_db(at),
        })
        .collect();
    Page::from_overfetch(entries, limit)
}
