//! Bulk loading (`switchboard seed-demo`): many rows per statement, ids reserved up front so
//! that rows can point at each other before they are written. MultiConnection cannot send a
//! multi-row INSERT, so each statement goes to the concrete connection.
//!
//! The rows are written as they are given: the caller is the one who keeps the derived
//! columns (a conversation's last message and count, read state) consistent.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use domain::conversation::{AuthorType, DeliveryStatus, Direction, MessageKind, Status};
use domain::{
    CannedResponseId, ChannelId, ContactId, ConversationId, InboxId, MessageId, OrgId, TagId,
    TeamId, UserId,
};

use crate::schema::{
    activity, canned_responses, channels, chat_members, chat_messages, chats, contact_favorites,
    contact_phone_numbers, contact_terms, contacts, conversation_participants, conversation_pins,
    conversation_reads, conversation_tags, conversations, inbound_receipts, inbox_members, inboxes,
    messages, organizations, tags, teams, users,
};
use crate::{DbConnection, StoreError, to_db};

/// Bound parameters per statement: under SQLite's limit (32766) and PostgreSQL's (65535),
/// and large enough that the statement's round trip is paid for by thousands of rows.
const PARAMETERS_PER_STATEMENT: usize = 30_000;

/// Tables whose ids the loader hands out itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTable {
    Contacts,
    Conversations,
    Messages,
}

impl IdTable {
    fn name(self) -> &'static str {
        match self {
            IdTable::Contacts => "contacts",
            IdTable::Conversations => "conversations",
            IdTable::Messages => "messages",
        }
    }
}

#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// `count` new ids of `table`, ascending, that nobody else will be given, also while a server
/// writes to the same database: PostgreSQL takes them from the table's sequence; SQLite moves
/// the table's AUTOINCREMENT counter on, which makes this statement take the database's write
/// lock (waiting for a writer, not failing): call it first in the transaction.
pub fn reserve_ids(
    conn: &mut DbConnection,
    table: IdTable,
    count: usize,
) -> Result<Vec<i64>, StoreError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let name = table.name();
    let count = i64::try_from(count).map_err(|_| StoreError::Config("too many ids".into()))?;
    match conn {
        DbConnection::Postgresql(pg) => {
            let mut ids: Vec<i64> = diesel::sql_query(format!(
                "SELECT nextval(pg_get_serial_sequence('{name}', 'id')) AS id \
                 FROM generate_series(1, $1)"
            ))
            .bind::<BigInt, _>(count)
            .load::<Reserved>(pg)?
            .into_iter()
            .map(|row| row.id)
            .collect();
            ids.sort_unstable();
            Ok(ids)
        }
        DbConnection::Sqlite(lite) => {
            // The counter's row appears with the table's first row; a fresh database has none.
            diesel::sql_query(format!(
                "INSERT INTO sqlite_sequence (name, seq) \
                 SELECT '{name}', (SELECT COALESCE(MAX(id), 0) FROM {name}) \
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '{name}')"
            ))
            .execute(lite)?;
            let last: Reserved = diesel::sql_query(format!(
                "UPDATE sqlite_sequence SET seq = seq + ? WHERE name = '{name}' RETURNING seq AS id"
            ))
            .bind::<BigInt, _>(count)
            .get_result(lite)?;
            Ok((last.id - count + 1..=last.id).collect())
        }
    }
}

/// Tunes the transaction for a batch of inserts: no wait for the disk at its commit on
/// PostgreSQL (a crash may lose the last batches, never corrupt anything), a page cache of
/// 64 MiB for this connection on SQLite (the index pages being filled stay in memory).
pub fn tune_for_loading(conn: &mut DbConnection) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => pg.batch_execute("SET LOCAL synchronous_commit = off")?,
        DbConnection::Sqlite(lite) => lite.batch_execute("PRAGMA cache_size = -65536")?,
    }
    Ok(())
}

/// Inserts `$rows` into `$table`, as many per statement as the parameter budget allows,
/// each row turned into a tuple of `column.eq(value)` by `$values`.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr, $columns:expr, |$row:ident| $values:expr) => {{
        let per_statement = (PARAMETERS_PER_STATEMENT / $columns).max(1);
        let mut written = 0usize;
        for chunk in $rows.chunks(per_statement) {
            let values: Vec<_> = chunk.iter().map(|$row| $values).collect();
            written += match &mut *$conn {
                DbConnection::Postgresql(pg) => {
                    diesel::insert_into($table).values(&values).execute(pg)?
                }
                DbConnection::Sqlite(lite) => {
                    diesel::insert_into($table).values(&values).execute(lite)?
                }
            };
        }
        Ok::<usize, StoreError>(written)
    }};
}

pub struct ContactRow {
    pub id: ContactId,
    pub org_id: OrgId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
    pub opted_out_sms: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn insert_contacts(conn: &mut DbConnection, rows: &[ContactRow]) -> Result<usize, StoreError> {
    insert_all!(conn, contacts::table, rows, 10, |row| (
        contacts::id.eq(row.id.get()),
        contacts::org_id.eq(row.org_id.get()),
        contacts::name.eq(row.name.as_deref()),
        contacts::sort_key.eq(domain::contacts::sort_key(row.name.as_deref())),
        contacts::email.eq(row.email.as_deref()),
        contacts::company.eq(row.company.as_deref()),
        contacts::notes.eq(row.notes.as_deref()),
        contacts::opted_out_sms.eq(row.opted_out_sms),
        contacts::created_at.eq(to_db(row.created_at)),
        contacts::updated_at.eq(to_db(row.updated_at)),
    ))
}

/// A contact's address: an E.164 number, or `<channel>:<id>` for social channels.
pub struct AddressRow {
    pub org_id: OrgId,
    pub contact_id: ContactId,
    pub number: String,
}

pub fn insert_addresses(conn: &mut DbConnection, rows: &[AddressRow]) -> Result<usize, StoreError> {
    insert_all!(conn, contact_phone_numbers::table, rows, 3, |row| (
        contact_phone_numbers::org_id.eq(row.org_id.get()),
        contact_phone_numbers::contact_id.eq(row.contact_id.get()),
        contact_phone_numbers::number.eq(row.number.as_str()),
    ))
}

/// One search term of a contact (see `domain::contacts::search_terms`).
pub struct TermRow {
    pub org_id: OrgId,
    pub contact_id: ContactId,
    pub term: String,
}

pub fn insert_terms(conn: &mut DbConnection, rows: &[TermRow]) -> Result<usize, StoreError> {
    insert_all!(conn, contact_terms::table, rows, 3, |row| (
        contact_terms::org_id.eq(row.org_id.get()),
        contact_terms::term.eq(row.term.as_str()),
        contact_terms::contact_id.eq(row.contact_id.get()),
    ))
}

pub fn insert_favorites(
    conn: &mut DbConnection,
    rows: &[(UserId, ContactId)],
) -> Result<usize, StoreError> {
    insert_all!(conn, contact_favorites::table, rows, 2, |row| (
        contact_favorites::user_id.eq(row.0.get()),
        contact_favorites::contact_id.eq(row.1.get()),
    ))
}

pub struct ConversationRow {
    pub id: ConversationId,
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    pub status: Status,
    pub archived: bool,
    pub spam: bool,
    pub assignee_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub last_message_id: Option<MessageId>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub message_count: i64,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<UserId>,
    pub updated_at: DateTime<Utc>,
}

pub fn insert_conversations(
    conn: &mut DbConnection,
    rows: &[ConversationRow],
) -> Result<usize, StoreError> {
    insert_all!(conn, conversations::table, rows, 18, |row| (
        conversations::id.eq(row.id.get()),
        conversations::org_id.eq(row.org_id.get()),
        conversations::inbox_id.eq(row.inbox_id.get()),
        conversations::channel_id.eq(row.channel_id.get()),
        conversations::contact_id.eq(row.contact_id.get()),
        conversations::status.eq(row.status.as_str()),
        conversations::archived.eq(row.archived),
        conversations::spam.eq(row.spam),
        conversations::assignee_id.eq(row.assignee_id.map(UserId::get)),
        conversations::team_id.eq(row.team_id.map(TeamId::get)),
        conversations::last_message_id.eq(row.last_message_id.map(MessageId::get)),
        conversations::last_message_at.eq(row.last_message_at.map(to_db)),
        conversations::last_message_preview.eq(row.last_message_preview.as_deref()),
        conversations::message_count.eq(row.message_count),
        conversations::created_at.eq(to_db(row.created_at)),
        conversations::closed_at.eq(row.closed_at.map(to_db)),
        conversations::closed_by.eq(row.closed_by.map(UserId::get)),
        conversations::updated_at.eq(to_db(row.updated_at)),
    ))
}

pub struct MessageRow {
    pub id: MessageId,
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub kind: MessageKind,
    pub body: String,
    pub author_type: AuthorType,
    pub author_id: Option<i64>,
    pub delivery_status: Option<DeliveryStatus>,
    pub external_id: Option<String>,
    pub canned_response_id: Option<CannedResponseId>,
    pub created_at: DateTime<Utc>,
}

pub fn insert_messages(conn: &mut DbConnection, rows: &[MessageRow]) -> Result<usize, StoreError> {
    insert_all!(conn, messages::table, rows, 12, |row| (
        messages::id.eq(row.id.get()),
        messages::org_id.eq(row.org_id.get()),
        messages::conversation_id.eq(row.conversation_id.get()),
        messages::direction.eq(row.direction.as_str()),
        messages::kind.eq(row.kind.as_str()),
        messages::body.eq(row.body.as_str()),
        messages::author_type.eq(row.author_type.as_str()),
        messages::author_id.eq(row.author_id),
        messages::delivery_status.eq(row.delivery_status.map(DeliveryStatus::as_str)),
        messages::external_id.eq(row.external_id.as_deref()),
        messages::canned_response_id.eq(row.canned_response_id.map(|id| id.get())),
        messages::created_at.eq(to_db(row.created_at)),
    ))
}

/// The idempotency record of an inbound message (its provider id on its channel).
pub struct ReceiptRow {
    pub channel_id: ChannelId,
    pub external_id: String,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub created_at: DateTime<Utc>,
}

pub fn insert_receipts(conn: &mut DbConnection, rows: &[ReceiptRow]) -> Result<usize, StoreError> {
    insert_all!(conn, inbound_receipts::table, rows, 5, |row| (
        inbound_receipts::channel_id.eq(row.channel_id.get()),
        inbound_receipts::external_id.eq(row.external_id.as_str()),
        inbound_receipts::conversation_id.eq(row.conversation_id.get()),
        inbound_receipts::message_id.eq(row.message_id.get()),
        inbound_receipts::created_at.eq(to_db(row.created_at)),
    ))
}

/// An audit-trail entry; `data` is JSON text.
pub struct ActivityRow {
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub action: &'static str,
    pub actor_id: Option<UserId>,
    pub data: String,
    pub at: DateTime<Utc>,
}

pub fn insert_activity(conn: &mut DbConnection, rows: &[ActivityRow]) -> Result<usize, StoreError> {
    insert_all!(conn, activity::table, rows, 6, |row| (
        activity::org_id.eq(row.org_id.get()),
        activity::conversation_id.eq(row.conversation_id.get()),
        activity::action.eq(row.action),
        activity::actor_id.eq(row.actor_id.map(UserId::get)),
        activity::data.eq(row.data.as_str()),
        activity::at.eq(to_db(row.at)),
    ))
}

pub fn insert_participants(
    conn: &mut DbConnection,
    rows: &[(ConversationId, UserId)],
) -> Result<usize, StoreError> {
    insert_all!(conn, conversation_participants::table, rows, 2, |row| (
        conversation_participants::conversation_id.eq(row.0.get()),
        conversation_participants::user_id.eq(row.1.get()),
    ))
}

/// A user's read state of a conversation (see `conversation_state::unread_among`).
pub struct ReadRow {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub read_count: i64,
    pub marked_unread: bool,
}

pub fn insert_reads(conn: &mut DbConnection, rows: &[ReadRow]) -> Result<usize, StoreError> {
    insert_all!(conn, conversation_reads::table, rows, 4, |row| (
        conversation_reads::user_id.eq(row.user_id.get()),
        conversation_reads::conversation_id.eq(row.conversation_id.get()),
        conversation_reads::read_count.eq(row.read_count),
        conversation_reads::marked_unread.eq(row.marked_unread),
    ))
}

pub fn insert_pins(
    conn: &mut DbConnection,
    rows: &[(UserId, ConversationId, i32)],
) -> Result<usize, StoreError> {
    insert_all!(conn, conversation_pins::table, rows, 3, |row| (
        conversation_pins::user_id.eq(row.0.get()),
        conversation_pins::conversation_id.eq(row.1.get()),
        conversation_pins::position.eq(row.2),
    ))
}

pub fn insert_conversation_tags(
    conn: &mut DbConnection,
    rows: &[(ConversationId, TagId)],
) -> Result<usize, StoreError> {
    insert_all!(conn, conversation_tags::table, rows, 2, |row| (
        conversation_tags::conversation_id.eq(row.0.get()),
        conversation_tags::tag_id.eq(row.1.get()),
    ))
}

/// A chat between colleagues: `direct` (two users, `direct_key` "low_id:high_id") or `team`.
pub struct ChatRow {
    pub org_id: OrgId,
    pub kind: &'static str,
    pub name: Option<String>,
    pub direct_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One chat, its members and its messages (`(author, body, at)`, oldest first).
pub fn insert_chat(
    conn: &mut DbConnection,
    chat: &ChatRow,
    members: &[UserId],
    lines: &[(UserId, String, DateTime<Utc>)],
) -> Result<i64, StoreError> {
    let id: i64 = diesel::insert_into(chats::table)
        .values((
            chats::org_id.eq(chat.org_id.get()),
            chats::kind.eq(chat.kind),
            chats::name.eq(chat.name.as_deref()),
            chats::direct_key.eq(chat.direct_key.as_deref()),
            chats::created_at.eq(to_db(chat.created_at)),
        ))
        .returning(chats::id)
        .get_result(conn)?;
    insert_all!(conn, chat_members::table, members, 2, |user| (
        chat_members::chat_id.eq(id),
        chat_members::user_id.eq(user.get()),
    ))?;
    insert_all!(conn, chat_messages::table, lines, 4, |line| (
        chat_messages::chat_id.eq(id),
        chat_messages::author_id.eq(line.0.get()),
        chat_messages::body.eq(line.1.as_str()),
        chat_messages::created_at.eq(to_db(line.2)),
    ))?;
    Ok(id)
}

/// Dates the organization and its set-up (users, teams, inboxes and their members,
/// channels, tags, canned responses) back to `at`, as if it had been running since then.
pub fn backdate_setup(
    conn: &mut DbConnection,
    org: OrgId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = to_db(at);
    let org = org.get();
    diesel::update(organizations::table.find(org))
        .set(organizations::created_at.eq(at))
        .execute(conn)?;
    diesel::update(users::table.filter(users::org_id.eq(org)))
        .set((users::created_at.eq(at), users::updated_at.eq(at)))
        .execute(conn)?;
    diesel::update(teams::table.filter(teams::org_id.eq(org)))
        .set(teams::created_at.eq(at))
        .execute(conn)?;
    diesel::update(inboxes::table.filter(inboxes::org_id.eq(org)))
        .set((inboxes::created_at.eq(at), inboxes::updated_at.eq(at)))
        .execute(conn)?;
    let org_inboxes = inboxes::table
        .filter(inboxes::org_id.eq(org))
        .select(inboxes::id);
    diesel::update(inbox_members::table.filter(inbox_members::inbox_id.eq_any(org_inboxes)))
        .set(inbox_members::created_at.eq(at))
        .execute(conn)?;
    diesel::update(channels::table.filter(channels::org_id.eq(org)))
        .set(channels::created_at.eq(at))
        .execute(conn)?;
    diesel::update(tags::table.filter(tags::org_id.eq(org)))
        .set(tags::created_at.eq(at))
        .execute(conn)?;
    diesel::update(canned_responses::table.filter(canned_responses::org_id.eq(org)))
        .set((
            canned_responses::created_at.eq(at),
            canned_responses::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::repo::{contacts, orgs};

    #[test]
    fn reserved_ids_are_never_handed_out_again_on_sqlite() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("bulk.db").display());
        let store = Store::open(&url, 1).expect("store");
        store.migrate().expect("migrations");
        let first = store
            .write(|conn| reserve_ids(conn, IdTable::Contacts, 3))
            .expect("first reservation");
        let second = store
            .write(|conn| reserve_ids(conn, IdTable::Contacts, 2))
            .expect("second reservation");
        assert_eq!((first, second), (vec![1, 2, 3], vec![4, 5]));
        let (counters, next) = store
            .write(|conn| {
                let counters: i64 = diesel::sql_query(
                    "SELECT COUNT(*) AS id FROM sqlite_sequence WHERE name = 'contacts'",
                )
                .get_result::<Reserved>(conn)?
                .id;
                let org = orgs::insert(conn, "Bulk")?;
                let (contact, _) =
                    contacts::find_or_create_by_number(conn, org.id, "+14155552671")?;
                Ok((counters, contact.id.get()))
            })
            .expect("an ordinary insert");
        assert_eq!(counters, 1, "one counter per table");
        assert_eq!(next, 6, "ordinary inserts continue after the reserved ids");
    }
}
