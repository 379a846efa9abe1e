//! The event log (outbox). An event is appended in the transaction of the change it
//! announces, so clients hear of exactly what committed.
//!
//! Cursors are per organization and follow commit order: the organization row is bumped
//! (and so locked, on PostgreSQL) as the transaction's last step, so a transaction that takes
//! a cursor commits before the next one can take a larger cursor. SQLite has one writer.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, InboxId, OrgId};

use crate::schema::{events, organizations};
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub org_id: OrgId,
    pub seq: i64,
    pub event_type: String,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    /// The event's `data`, as JSON text.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewEvent<'a> {
    pub org_id: OrgId,
    pub event_type: &'a str,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    pub payload: String,
}

/// Appends the event and returns it with its cursor. Call it last in the transaction: the
/// organization's row stays locked until commit.
pub fn append(conn: &mut DbConnection, new: NewEvent<'_>) -> Result<StoredEvent, StoreError> {
    let seq: i64 = diesel::update(organizations::table.find(new.org_id.get()))
        .set(organizations::event_seq.eq(organizations::event_seq + 1))
        .returning(organizations::event_seq)
        .get_result(conn)?;
    let created_at = now();
    diesel::insert_into(events::table)
        .values((
            events::org_id.eq(new.org_id.get()),
            events::seq.eq(seq),
            events::type_.eq(new.event_type),
            events::inbox_id.eq(new.inbox_id.map(InboxId::get)),
            events::conversation_id.eq(new.conversation_id.map(ConversationId::get)),
            events::payload.eq(&new.payload),
            events::created_at.eq(to_db(created_at)),
        ))
        .execute(conn)?;
    Ok(StoredEvent {
        org_id: new.org_id,
        seq,
        event_type: new.event_type.to_string(),
        inbox_id: new.inbox_id,
        conversation_id: new.conversation_id,
        payload: new.payload,
        created_at,
    })
}

type EventRow = (
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    String,
    NaiveDateTime,
);

/// Events of the organization after `seq`, oldest first.
pub fn after(
    conn: &mut DbConnection,
    org: OrgId,
    seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::org_id.eq(org.get()).and(events::seq.gt(seq)))
        .order(events::seq)
        .limit(limit)
        .select((
            events::org_id,
            events::seq,
            events::type_,
            events::inbox_id,
            events::conversation_id,
            events::payload,
            events::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(org_id, seq, event_type, inbox_id, conversation_id, payload, created_at)| {
                StoredEvent {
                    org_id: OrgId(org_id),
                    seq,
                    event_type,
                    inbox_id: inbox_id.map(InboxId),
                    conversation_id: conversation_id.map(ConversationId),
                    payload,
                    created_at: from_db(created_at),
                }
            },
        )
        .collect())
}

/// The organization's newest cursor (0 before its first event).
pub fn last_seq(conn: &mut DbConnection, org: OrgId) -> Result<i64, StoreError> {
    Ok(organizations::table
        .find(org.get())
        .select(organizations::event_seq)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// The oldest cursor the log still holds for the organization.
pub fn first_retained(conn: &mut DbConnection, org: OrgId) -> Result<Option<i64>, StoreError> {
    Ok(events::table
        .filter(events::org_id.eq(org.get()))
        .select(diesel::dsl::min(events::seq))
        .first(conn)?)
}

/// Forgets events older than `cutoff` (the retention window); returns how many.
pub fn purge_before(conn: &mut DbConnection, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(events::table.filter(events::created_at.lt(to_db(cutoff)))).execute(conn)?)
}
