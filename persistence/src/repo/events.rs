//! The event log (outbox). An event is appended in the transaction of the change it
//! announces, so clients hear of exactly what committed.
//!
//! Cursors are per organization, consecutive, and follow commit order: a transaction that
//! takes a cursor finishes committing before the next one can take a larger cursor, so a
//! reader that has seen cursor N has seen every event below it. A transaction buffers its
//! events and appends them all as its last statements. On PostgreSQL they are written with
//! provisional cursors and a deferred trigger gives them their organization's next ones
//! while the transaction commits (migration `event_cursor_at_commit`): the organization's
//! row is locked only inside COMMIT, never across a round trip to the writer, so one
//! tenant's writes run side by side and only their commits take turns. The writer learns
//! the cursors just after its commit ([`numbered`]). SQLite has one writer, whose
//! transaction takes its cursors as its last statement.

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

/// Events a transaction appended, in order. Their cursors are known once it has committed:
/// pass them to [`numbered`] on the same connection, just after the commit.
#[derive(Debug, Default)]
#[must_use = "number the events with `events::numbered` after the commit"]
pub struct Appended {
    /// With their cursors, unless `at_commit` (PostgreSQL: `seq` is 0 until [`numbered`]).
    events: Vec<StoredEvent>,
    at_commit: bool,
}

impl Appended {
    /// The events of a later append of the same transaction, after these.
    pub fn extend(&mut self, later: Appended) {
        self.at_commit |= later.at_commit;
        self.events.extend(later.events);
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The appended events with their cursors. Call it on the connection that appended them,
/// right after their transaction committed (on PostgreSQL the commit took the cursors and
/// left them in the session, `events_taken()`).
pub fn numbered(
    conn: &mut DbConnection,
    appended: Appended,
) -> Result<Vec<StoredEvent>, StoreError> {
    let Appended {
        mut events,
        at_commit,
    } = appended;
    let DbConnection::Postgresql(pg) = conn else {
        return Ok(events);
    };
    if !at_commit || events.is_empty() {
        return Ok(events);
    }
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Array<diesel::sql_types::BigInt>>)]
        seqs: Option<Vec<i64>>,
    }
    let taken: Taken = diesel::sql_query("SELECT events_taken() AS seqs").get_result(pg)?;
    let seqs = taken.seqs.unwrap_or_default();
    if seqs.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "the commit took {} event cursors for {} events",
            seqs.len(),
            events.len()
        )));
    }
    for (event, seq) in events.iter_mut().zip(seqs) {
        event.seq = seq;
    }
    Ok(events)
}

/// Appends the events (all of one organization), in order. Call it as the transaction's
/// last statement, and [`numbered`] after its commit.
pub fn append_all(
    conn: &mut DbConnection,
    org: OrgId,
    new: Vec<NewEvent>,
) -> Result<Appended, StoreError> {
    if new.is_empty() {
        return Ok(Appended::default());
    }
    if new.iter().any(|event| event.org_id != org) {
        return Err(StoreError::Corrupt(
            "one transaction appended events of two organizations".into(),
        ));
    }
    let created_at = now();
    match conn {
        DbConnection::Postgresql(pg) => {
            append_postgres(pg, org, &new, created_at)?;
            Ok(Appended {
                events: numbered_from(org, new, None, created_at),
                at_commit: true,
            })
        }
        DbConnection::Sqlite(lite) => {
            let last = take_cursors(lite, org, new.len() as i64)?;
            let first = last - new.len() as i64 + 1;
            let events = numbered_from(org, new, Some(first), created_at);
            insert_sqlite(lite, &events)?;
            Ok(Appended {
                events,
                at_commit: false,
            })
        }
    }
}

/// The events with cursors counting up from `first`, or 0 each when not known yet.
fn numbered_from(
    org: OrgId,
    new: Vec<NewEvent>,
    first: Option<i64>,
    created_at: DateTime<Utc>,
) -> Vec<StoredEvent> {
    new.into_iter()
        .enumerate()
        .map(|(n, event)| StoredEvent {
            org_id: org,
            seq: first.map_or(0, |first| first + n as i64),
            event_type: event.event_type,
            inbox_id: event.inbox_id,
            conversation_id: event.conversation_id,
            payload: event.payload,
            created_at,
        })
        .collect()
}

/// PostgreSQL: the rows in one statement, in order, with provisional (negative, unique)
/// cursors; the commit's trigger gives them their organization's next cursors.
fn append_postgres(
    pg: &mut diesel::PgConnection,
    org: OrgId,
    new: &[NewEvent],
    created_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    let written = diesel::sql_query(
        "INSERT INTO events (org_id, seq, type, inbox_id, conversation_id, payload, created_at) \
         SELECT $1, -nextval('events_provisional'), e.type, e.inbox_id, e.conversation_id, \
                e.payload, $2 \
         FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[]) \
              WITH ORDINALITY AS e (type, inbox_id, conversation_id, payload, ord) \
         ORDER BY e.ord",
    )
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
    .execute(pg)?;
    if written != new.len() {
        return Err(StoreError::Corrupt(format!(
            "wrote {written} of {} events",
            new.len()
        )));
    }
    Ok(())
}

/// SQLite (one writer, nothing to contend for): bumps the cursor by `count` and answers
/// the last one taken; [`insert_sqlite`] then writes the rows in one statement.
fn take_cursors(
    lite: &mut diesel::SqliteConnection,
    org: OrgId,
    count: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::update(organizations::table.find(org.get()))
        .set(organizations::event_seq.eq(organizations::event_seq + count))
        .returning(organizations::event_seq)
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

/// The organization's newest cursor (0 before its first event): the log's newest, or the
/// organization's counter where that is larger (SQLite counts there; on PostgreSQL it holds
/// what was taken before cursors were taken from the log).
pub fn last_seq(conn: &mut DbConnection, org: OrgId) -> Result<i64, StoreError> {
    let counted: i64 = organizations::table
        .find(org.get())
        .select(organizations::event_seq)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    let logged: Option<i64> = events::table
        .filter(events::org_id.eq(org.get()))
        .select(diesel::dsl::max(events::seq))
        .first(conn)?;
    Ok(counted.max(logged.unwrap_or(0)))
}

/// The oldest cursor the log still holds for the organization.
pub fn first_retained(conn: &mut DbConnection, org: OrgId) -> Result<Option<i64>, StoreError> {
    Ok(events::table
        .filter(events::org_id.eq(org.get()))
        .select(diesel::dsl::min(events::seq))
        .first(conn)?)
}

/// Forgets events older than `cutoff` (the retention window), except each organization's
/// newest, which its next cursor counts from; returns how many.
pub fn purge_before(conn: &mut DbConnection, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
    use diesel::sql_types::Timestamp;
    const PURGE: &str = "DELETE FROM events WHERE created_at < {cutoff} \
         AND seq < (SELECT max(newest.seq) FROM events AS newest \
                    WHERE newest.org_id = events.org_id)";
    Ok(match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(PURGE.replace("{cutoff}", "$1"))
            .bind::<Timestamp, _>(to_db(cutoff))
            .execute(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(PURGE.replace("{cutoff}", "?"))
            .bind::<Timestamp, _>(to_db(cutoff))
            .execute(lite)?,
    })
}
