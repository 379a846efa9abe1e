//! The event log (outbox). An event is appended in the transaction of the change it
//! announces, so clients hear of exactly what committed.
//!
//! Cursors are per organization and follow commit order: a transaction buffers its events
//! and appends them all as its very last statements, bumping the organization's row once (and
//! so locking it, on PostgreSQL) just before commit. A transaction that takes a cursor
//! therefore commits before the next one can take a larger cursor, and the lock covers only
//! the insert and the commit, not the whole change: one tenant's writes run side by side.
//! SQLite has one writer.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, EventType, InboxId, OrgId};

use crate::schema::{events, organizations};
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub org_id: OrgId,
    pub seq: i64,
    pub event_type: EventType,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    /// The event's `data`, as JSON text.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewEvent {
    pub org_id: OrgId,
    pub event_type: EventType,
    pub inbox_id: Option<InboxId>,
    pub conversation_id: Option<ConversationId>,
    pub payload: String,
}

/// Appends the events (all of one organization) and returns them with their cursors, in
/// order. Call it as the transaction's last statement: the organization's row stays locked
/// until commit.
pub fn append_all(
    conn: &mut DbConnection,
    org: OrgId,
    new: Vec<NewEvent>,
) -> Result<Vec<StoredEvent>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let count = new.len() as i64;
    let last: i64 = diesel::update(organizations::table.find(org.get()))
        .set(organizations::event_seq.eq(organizations::event_seq + count))
        .returning(organizations::event_seq)
        .get_result(conn)?;
    let created_at = now();
    let mut stored = Vec::with_capacity(new.len());
    for (offset, event) in new.into_iter().enumerate() {
        if event.org_id != org {
            return Err(StoreError::Corrupt(
                "one transaction appended events of two organizations".into(),
            ));
        }
        stored.push(StoredEvent {
            org_id: org,
            seq: last - count + 1 + offset as i64,
            event_type: event.event_type,
            inbox_id: event.inbox_id,
            conversation_id: event.conversation_id,
            payload: event.payload,
            created_at,
        });
    }
    let rows: Vec<_> = stored
        .iter()
        .map(|event| {
            (
                events::org_id.eq(org.get()),
                events::seq.eq(event.seq),
                events::type_.eq(event.event_type.as_str()),
                events::inbox_id.eq(event.inbox_id.map(InboxId::get)),
                events::conversation_id.eq(event.conversation_id.map(ConversationId::get)),
                events::payload.eq(&event.payload),
                events::created_at.eq(to_db(created_at)),
            )
        })
        .collect();
    // MultiConnection has no multi-row insert: one statement per backend.
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(events::table)
                .values(&rows)
                .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            diesel::insert_into(events::table)
                .values(&rows)
                .execute(lite)?;
        }
    }
    Ok(stored)
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
    rows.into_iter()
        .map(
            |(org_id, seq, event_type, inbox_id, conversation_id, payload, created_at)| {
                Ok(StoredEvent {
                    org_id: OrgId(org_id),
                    seq,
                    event_type: EventType::parse(&event_type).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown event type {event_type:?}"))
                    })?,
                    inbox_id: inbox_id.map(InboxId),
                    conversation_id: conversation_id.map(ConversationId),
                    payload,
                    created_at: from_db(created_at),
                })
            },
        )
        .collect()
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
