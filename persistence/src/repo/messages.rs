//! Messages of a conversation: inbound, outbound, internal notes and activity lines.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::conversation::{AuthorType, DeliveryStatus, Direction, MessageKind};
use domain::{ConversationId, MessageId, OrgId};

use super::{Page, parse_enum};
use crate::schema::messages as m;
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub kind: MessageKind,
    pub body: String,
    pub author_type: AuthorType,
    pub author_id: Option<i64>,
    pub delivery_status: Option<DeliveryStatus>,
    /// Why a failed outbound message failed.
    pub delivery_error: Option<String>,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

type MessageRow = (
    i64,
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    NaiveDateTime,
);

const COLUMNS: (
    m::id,
    m::org_id,
    m::conversation_id,
    m::direction,
    m::kind,
    m::body,
    m::author_type,
    m::author_id,
    m::delivery_status,
    m::delivery_error,
    m::external_id,
    m::created_at,
) = (
    m::id,
    m::org_id,
    m::conversation_id,
    m::direction,
    m::kind,
    m::body,
    m::author_type,
    m::author_id,
    m::delivery_status,
    m::delivery_error,
    m::external_id,
    m::created_at,
);

fn to_message(row: MessageRow) -> Result<Message, StoreError> {
    let (
        id,
        org_id,
        conversation_id,
        direction,
        kind,
        body,
        author_type,
        author_id,
        delivery_status,
        delivery_error,
        external_id,
        created_at,
    ) = row;
    Ok(Message {
        id: MessageId(id),
        org_id: OrgId(org_id),
        conversation_id: ConversationId(conversation_id),
        direction: parse_enum(&direction, Direction::parse, "direction")?,
        kind: parse_enum(&kind, MessageKind::parse, "message kind")?,
        body,
        author_type: parse_enum(&author_type, AuthorType::parse, "author type")?,
        author_id,
        delivery_status: delivery_status
            .map(|status| parse_enum(&status, DeliveryStatus::parse, "delivery status"))
            .transpose()?,
        delivery_error,
        external_id,
        created_at: from_db(created_at),
    })
}

pub struct NewMessage<'a> {
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub kind: MessageKind,
    pub body: &'a str,
    pub author_type: AuthorType,
    pub author_id: Option<i64>,
    pub delivery_status: Option<DeliveryStatus>,
    pub external_id: Option<&'a str>,
    pub canned_response_id: Option<i64>,
}

pub fn insert(conn: &mut DbConnection, new: NewMessage<'_>) -> Result<Message, StoreError> {
    let row: MessageRow = diesel::insert_into(m::table)
        .values((
            m::org_id.eq(new.org_id.get()),
            m::conversation_id.eq(new.conversation_id.get()),
            m::direction.eq(new.direction.as_str()),
            m::kind.eq(new.kind.as_str()),
            m::body.eq(new.body),
            m::author_type.eq(new.author_type.as_str()),
            m::author_id.eq(new.author_id),
            m::delivery_status.eq(new.delivery_status.map(DeliveryStatus::as_str)),
            m::external_id.eq(new.external_id),
            m::canned_response_id.eq(new.canned_response_id),
            m::created_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    to_message(row)
}

pub fn get(
    conn: &mut DbConnection,
    org: OrgId,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    m::table
        .filter(m::id.eq(id.get()).and(m::org_id.eq(org.get())))
        .select(COLUMNS)
        .first::<MessageRow>(conn)
        .optional()?
        .map(to_message)
        .transpose()
}

/// The organization's conversation's messages before `before` (a message id), newest first.
pub fn page(
    conn: &mut DbConnection,
    org: OrgId,
    conversation: ConversationId,
    before: Option<i64>,
    limit: i64,
) -> Result<Page<Message>, StoreError> {
    let query = m::table
        .filter(m::org_id.eq(org.get()))
        .filter(m::conversation_id.eq(conversation.get()))
        .into_boxed();
    newest_first(conn, query, before, limit)
}

/// The messages of the conversation its customer sees (`conversation::customer_sees`:
/// never `internal` ones, notes and activity lines), before `before`, newest first.
pub fn customer_page(
    conn: &mut DbConnection,
    conversation: ConversationId,
    before: Option<i64>,
    limit: i64,
) -> Result<Page<Message>, StoreError> {
    let query = m::table
        .filter(m::conversation_id.eq(conversation.get()))
        .filter(m::direction.ne(Direction::Internal.as_str()))
        .into_boxed();
    let mut page = newest_first(conn, query, before, limit)?;
    page.items
        .retain(|message| domain::conversation::customer_sees(message.direction, message.kind));
    Ok(page)
}

/// A page of `query`'s messages before `before`, newest first.
fn newest_first(
    conn: &mut DbConnection,
    mut query: m::BoxedQuery<'static, crate::connection::MultiBackend>,
    before: Option<i64>,
    limit: i64,
) -> Result<Page<Message>, StoreError> {
    if let Some(before) = before {
        query = query.filter(m::id.lt(before));
    }
    let rows: Vec<MessageRow> = query
        .order(m::id.desc())
        .limit(limit + 1)
        .select(COLUMNS)
        .load(conn)?;
    let messages = rows
        .into_iter()
        .map(to_message)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(messages, limit))
}

/// Moves the message's delivery status on to `status` when the rule allows it
/// ([`DeliveryStatus::replaced_by`]); `None` when it changed nothing (already there or
/// beyond, or no such message). The rule is the UPDATE's own condition, so two reports
/// racing on PostgreSQL cannot move it backwards: the second writer waits for the first,
/// then re-checks the condition against the status the first one committed. `error` says
/// why, with `failed` (and is cleared by any other status).
pub fn advance_delivery_status(
    conn: &mut DbConnection,
    id: MessageId,
    status: DeliveryStatus,
    error: Option<&str>,
) -> Result<Option<Message>, StoreError> {
    let error = error.filter(|_| status == DeliveryStatus::Failed);
    let replaced: Vec<&str> = DeliveryStatus::replaced_ones(status)
        .into_iter()
        .map(DeliveryStatus::as_str)
        .collect();
    diesel::update(m::table.filter(m::id.eq(id.get()).and(m::delivery_status.eq_any(replaced))))
        .set((
            m::delivery_status.eq(Some(status.as_str())),
            m::delivery_error.eq(error),
        ))
        .returning(COLUMNS)
        .get_result::<MessageRow>(conn)
        .optional()?
        .map(to_message)
        .transpose()
}

/// The outbound message a provider knows by its own id (for status callbacks).
pub fn find_by_external_id(
    conn: &mut DbConnection,
    org: OrgId,
    external_id: &str,
) -> Result<Option<Message>, StoreError> {
    m::table
        .filter(m::org_id.eq(org.get()).and(m::external_id.eq(external_id)))
        .select(COLUMNS)
        .first::<MessageRow>(conn)
        .optional()?
        .map(to_message)
        .transpose()
}

pub fn set_external_id(
    conn: &mut DbConnection,
    id: MessageId,
    external_id: &str,
) -> Result<(), StoreError> {
    diesel::update(m::table.find(id.get()))
        .set(m::external_id.eq(Some(external_id)))
        .execute(conn)?;
    Ok(())
}
