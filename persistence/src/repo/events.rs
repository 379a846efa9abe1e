//! The event log (outbox). An event is appended in the transaction of the change it
//! announces, so clients hear of exactly what committed.
//!
//! Cursors are per organization and follow commit order: a transaction buffers its events
//! and appends them all as its very last statements, bumping the organization's row of
//! `event_cursors` once (and so locking it, on PostgreSQL) just before commit. A transaction
//! that takes a cursor therefore commits before the next one can take a larger cursor, and
//! the lock covers only the insert and the commit, not the whole change: one tenant's writes
//! run side by side. The cursor is not on the organization's own row, which every foreign
//! key to it checks (with a lock that would meet the bump's).
//! SQLite has one writer.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, EventType, InboxId, OrgId};

use crate::schema::{event_cursors, events};
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
/// order. Call it as the transaction's last statement: the organization's cursor row stays
/// locked until commit.
pub fn append_all(
    conn: &mut DbConnection,
    org: OrgId,
    new: Vec<NewEvent>,
) -> Result<Vec<StoredEvent>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    if new.iter().any(|event| event.org_id != org) {
        return Err(StoreError::Corrupt(
            "one transaction appended events of two organizations".into(),
        ));
    }
    let created_at = now();
    match conn {
        DbConnection::Postgresql(pg) => {
            let last = append_postgres(pg, org, &new, created_at)?;
            Ok(numbered(org, new, last, created_at))
        }
        DbConnection::Sqlite(lite) => {
            let last = take_cursors(lite, org, new.len() as i64)?;
            let stored = numbered(org, new, last, created_at);
            insert_sqlite(lite, &stored)?;
            Ok(stored)
        }
    }
}

/// The events with their cursors: the `new.len()` cursors ending at `last`, in order.
fn numbered(
    org: OrgId,
    new: Vec<NewEvent>,
    last: i64,
    created_at: DateTime<Utc>,
) -> Vec<StoredEvent> {
    let first = last - new.len() as i64 + 1;
    new.into_iter()
        .zip(first..)
        .map(|(event, seq)| StoredEvent {
            org_id: org,
            seq,
            event_type: event.event_type,
            inbox_id: event.inbox_id,
            conversation_id: event.conversation_id,
            payload: event.payload,
            created_at,
        })
        .collect()
}

/// PostgreSQL: the cursor bump and the inserts in one statement, so the cursor row is
/// locked for one round trip and the commit rather than two (one tenant's writers queue
/// on that lock). Answers the last cursor taken.
fn append_postgres(
    pg: &mut diesel::PgConnection,
    org: OrgId,
    new: &[NewEvent],
    created_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = BigInt)]
        seq: i64,
    }
    let taken: Vec<Taken> = diesel::sql_query(
        "WITH taken AS ( \
             UPDATE event_cursors SET seq = seq + $1 WHERE org_id = $2 \
             RETURNING seq) \
         INSERT INTO events (org_id, seq, type, inbox_id, conversation_id, payload, created_at) \
         SELECT $2, taken.seq - $1 + e.ord, e.type, e.inbox_id, e.conversation_id, \
                e.payload, $3 \
         FROM taken, unnest($4::text[], $5::bigint[], $6::bigint[], $7::text[]) \
              WITH ORDINALITY AS e (type, inbox_id, conversation_id, payload, ord) \
         RETURNING seq",
    )
    .bind::<BigInt, _>(new.len() as i64)
    .bind::<BigInt, _>(org.get())
    .bind::<Timestamp, _>(to_db(created_at))
    .bind::<Array<Text>, _>(
        new.iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<BigInt>>, _>(
        new.iter()
            .map(|e| e.inbox_id.map(InboxId::get))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<BigInt>>, _>(
        new.iter()
            .map(|e| e.conversation_id.map(ConversationId::get))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(new.iter().map(|e| e.payload.as_str()).collect::<Vec<_>>())
    .load(pg)?;
    taken
        .iter()
        .map(|row| row.seq)
        .max()
        .filter(|_| taken.len() == new.len())
        .ok_or_else(|| StoreError::Corrupt(format!("organization {org} has no event cursor")))
}

/// SQLite (one writer, nothing to contend for): bumps the cursor by `count` and answers
/// the last one taken; [`insert_sqlite`] then writes the rows in one statement.
fn take_cursors(
    lite: &mut diesel::SqliteConnection,
    org: OrgId,
    count: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::update(event_cursors::table.find(org.get()))
        .set(event_cursors::seq.eq(event_cursors::seq + count))
        .returning(event_cursors::seq)
        .get_result(lite)?)
}

fn insert_sqlite(
    lite: &mut diesel::SqliteConnection,
    stored: &[StoredEvent],
) -> Result<(), StoreError> {
    let rows: Vec<_> = stored
        .iter()
        .map(|event| {
            (
                events::org_id.eq(event.org_id.get()),
                events::seq.eq(event.seq),
                events::type_.eq(event.event_type.as_str()),
                events::inbox_id.eq(event.inbox_id.map(InboxId::get)),
                events::conversation_id.eq(event.conversation_id.map(ConversationId::get)),
                events::payload.eq(&event.payload),
                events::created_at.eq(to_db(event.created_at)),
            )
        })
        .collect();
    diesel::insert_into(events::table)
        .values(&rows)
        .execute(lite)?;
    Ok(())
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
    Ok(event_cursors::table
        .find(org.get())
        .select(event_cursors::seq)
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
