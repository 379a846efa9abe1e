//! Repositories, one per aggregate. Each function takes a connection, so the api composes
//! several into one transaction (`Store::write`) with the event-log row of the change.

/// The first row of `$query`, locked until the transaction ends: `FOR NO KEY UPDATE` on
/// PostgreSQL (it still lets other transactions insert rows that refer to it); SQLite's single
/// writer, held by every write transaction, locks it already. (A macro: the query's type
/// differs per table, and MultiConnection has no locking clause.)
macro_rules! first_locked {
    ($conn:expr, $query:expr) => {
        match $conn {
            $crate::DbConnection::Postgresql(pg) => $query.for_no_key_update().first(pg).optional(),
            $crate::DbConnection::Sqlite(lite) => $query.first(lite).optional(),
        }
    };
}

/// Every row of `$query`, locked like [`first_locked!`] does one.
macro_rules! all_locked {
    ($conn:expr, $query:expr) => {
        match $conn {
            $crate::DbConnection::Postgresql(pg) => $query.for_no_key_update().load(pg),
            $crate::DbConnection::Sqlite(lite) => $query.load(lite),
        }
    };
}

/// Runs `$run` with the connection of whichever backend `$conn` holds, for statements
/// MultiConnection cannot express (upserts, multi-row inserts).
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $run:expr) => {
        match $conn {
            $crate::DbConnection::Postgresql($c) => $run,
            $crate::DbConnection::Sqlite($c) => $run,
        }
    };
}

/// Runs `$insert` (an `INSERT` statement) unless an equal row exists (a unique index
/// decides), also when two requests race: `ON CONFLICT DO NOTHING`, one statement, where a
/// refused plain insert would abort the caller's transaction on PostgreSQL. `Ok(true)` when
/// this call inserted the row.
macro_rules! insert_if_absent {
    ($conn:expr, $insert:expr) => {
        per_backend!($conn, |c| $insert.on_conflict_do_nothing().execute(c))
            .map(|rows: usize| rows > 0)
            .map_err($crate::StoreError::from)
    };
}

pub mod activity;
pub mod attachments;
pub mod audience;
pub mod bulk;
pub mod canned;
pub mod channels;
pub mod chats;
pub mod contacts;
pub mod conversation_list;
pub mod conversation_state;
pub mod conversations;
pub mod deliveries;
pub mod events;
pub mod inboxes;
pub mod messages;
pub mod orgs;
pub mod reactions;
pub mod receipts;
pub mod search;
pub mod settings;
pub mod surveys;
pub mod tags;
pub mod teams;
pub mod users;
pub mod visitors;

use crate::error::StoreError;

/// Reads a stored enum spelling back, refusing anything the code does not know.
pub(crate) fn parse_enum<T>(
    value: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

/// One page of a keyset-paged list: the rows and whether more follow.
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Takes `limit + 1` rows fetched by the caller and keeps `limit`.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Page<T> {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Page {
            items: rows,
            has_more,
        }
    }
}

/// Two rows that are about to be tied together belong to one organization; otherwise the
/// other one does not exist, as far as the first one's organization can tell.
pub(crate) fn same_org(one: domain::OrgId, other: domain::OrgId) -> Result<(), StoreError> {
    if one == other {
        Ok(())
    } else {
        Err(StoreError::Domain(domain::DomainError::NotFound))
    }
}

/// Runs `work` in a savepoint: when it fails, what it wrote is undone and the caller's
/// transaction goes on (on PostgreSQL a failed statement would otherwise abort it). One
/// row of an import that is refused must not take the rows around it along.
pub fn savepoint<T, E>(
    conn: &mut crate::DbConnection,
    work: impl FnOnce(&mut crate::DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    use diesel::Connection;
    enum Failed<E> {
        Work(E),
        Database(diesel::result::Error),
    }
    impl<E> From<diesel::result::Error> for Failed<E> {
        fn from(error: diesel::result::Error) -> Self {
            Failed::Database(error)
        }
    }
    match conn.transaction(|conn| work(conn).map_err(Failed::Work)) {
        Ok(value) => Ok(value),
        Err(Failed::Work(error)) => Err(error),
        Err(Failed::Database(error)) => Err(StoreError::from(error).into()),
    }
}
