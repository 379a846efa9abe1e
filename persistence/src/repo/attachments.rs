//! Attachments: uploaded files (bytes on disk under a random key), later attached to one
//! message: a conversation's or an internal chat's, never both.

use std::collections::HashMap;

use diesel::dsl;
use diesel::prelude::*;
use domain::{ChatMessageId, MessageId, OrgId, UserId};

use crate::schema::attachments as a;
use crate::{DbConnection, StoreError, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub org_id: OrgId,
    pub uploader_id: Option<UserId>,
    pub message_id: Option<MessageId>,
    pub chat_message_id: Option<ChatMessageId>,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
    /// Where the bytes are, relative to the data directory.
    pub storage_key: String,
}

impl Attachment {
    /// Sent with a message already (a conversation's or a chat's).
    pub fn is_attached(&self) -> bool {
        self.message_id.is_some() || self.chat_message_id.is_some()
    }
}

type Row = (
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    i64,
    String,
    String,
);

const COLUMNS: (
    a::id,
    a::org_id,
    a::uploader_id,
    a::message_id,
    a::chat_message_id,
    a::content_type,
    a::size,
    a::filename,
    a::storage_key,
) = (
    a::id,
    a::org_id,
    a::uploader_id,
    a::message_id,
    a::chat_message_id,
    a::content_type,
    a::size,
    a::filename,
    a::storage_key,
);

fn to_attachment(
    (
        id,
        org_id,
        uploader_id,
        message_id,
        chat_message_id,
        content_type,
        size,
        filename,
        storage_key,
    ): Row,
) -> Attachment {
    Attachment {
        id,
        org_id: OrgId(org_id),
        uploader_id: uploader_id.map(UserId),
        message_id: message_id.map(MessageId),
        chat_message_id: chat_message_id.map(ChatMessageId),
        content_type,
        size,
        filename,
        storage_key,
    }
}

pub struct NewAttachment<'a> {
    pub org_id: OrgId,
    pub uploader_id: Option<UserId>,
    pub message_id: Option<MessageId>,
    pub content_type: &'a str,
    pub size: i64,
    pub filename: &'a str,
    pub storage_key: &'a str,
}

pub fn insert(conn: &mut DbConnection, new: NewAttachment<'_>) -> Result<Attachment, StoreError> {
    let row: Row = diesel::insert_into(a::table)
        .values((
            a::org_id.eq(new.org_id.get()),
            a::uploader_id.eq(new.uploader_id.map(UserId::get)),
            a::message_id.eq(new.message_id.map(MessageId::get)),
            a::content_type.eq(new.content_type),
            a::size.eq(new.size),
            a::filename.eq(new.filename),
            a::storage_key.eq(new.storage_key),
            a::created_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    Ok(to_attachment(row))
}

pub fn get(conn: &mut DbConnection, org: OrgId, id: i64) -> Result<Option<Attachment>, StoreError> {
    let row: Option<Row> = a::table
        .filter(a::id.eq(id).and(a::org_id.eq(org.get())))
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_attachment))
}

pub fn get_many(
    conn: &mut DbConnection,
    org: OrgId,
    ids: &[i64],
) -> Result<Vec<Attachment>, StoreError> {
    let rows: Vec<Row> = a::table
        .filter(a::org_id.eq(org.get()).and(a::id.eq_any(ids)))
        .order(a::id)
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(to_attachment).collect())
}

/// Attaches uploads to a message; only those still unattached (one message each).
pub fn attach(
    conn: &mut DbConnection,
    ids: &[i64],
    message: MessageId,
) -> Result<usize, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(unattached(ids))
        .set(a::message_id.eq(Some(message.get())))
        .execute(conn)?)
}

/// Attaches uploads to a chat message; only those still unattached (one message each).
pub fn attach_to_chat_message(
    conn: &mut DbConnection,
    ids: &[i64],
    message: ChatMessageId,
) -> Result<usize, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(unattached(ids))
        .set(a::chat_message_id.eq(Some(message.get())))
        .execute(conn)?)
}

/// The query [`unattached`] builds.
type Unattached<'a> = dsl::Filter<
    a::table,
    dsl::And<
        dsl::And<dsl::EqAny<a::id, &'a [i64]>, dsl::IsNull<a::message_id>>,
        dsl::IsNull<a::chat_message_id>,
    >,
>;

/// The uploads among `ids` that no message carries yet. Decided by the update itself: of two
/// sends racing for one upload, the second finds it taken (PostgreSQL re-checks the row
/// once the first commits) and attaches nothing.
fn unattached(ids: &[i64]) -> Unattached<'_> {
    a::table.filter(
        a::id
            .eq_any(ids)
            .and(a::message_id.is_null())
            .and(a::chat_message_id.is_null()),
    )
}

/// Marks an upload as a web chat visitor's: only they may attach it.
pub fn set_visitor(conn: &mut DbConnection, id: i64, visitor: i64) -> Result<(), StoreError> {
    diesel::update(a::table.find(id))
        .set(a::visitor_id.eq(Some(visitor)))
        .execute(conn)?;
    Ok(())
}

/// Those of `ids` that are the visitor's uploads, not yet sent, in upload order.
pub fn visitor_unattached(
    conn: &mut DbConnection,
    visitor: i64,
    ids: &[i64],
) -> Result<Vec<Attachment>, StoreError> {
    Ok(unattached(ids)
        .filter(a::visitor_id.eq(visitor))
        .order(a::id)
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(to_attachment)
        .collect())
}

/// The attachments of a page of messages, in upload order.
pub fn of_messages(
    conn: &mut DbConnection,
    messages: &[MessageId],
) -> Result<HashMap<MessageId, Vec<Attachment>>, StoreError> {
    let ids: Vec<i64> = messages.iter().map(|id| id.get()).collect();
    let rows: Vec<Row> = a::table
        .filter(a::message_id.eq_any(ids))
        .order(a::id)
        .select(COLUMNS)
        .load(conn)?;
    let mut by_message: HashMap<MessageId, Vec<Attachment>> = HashMap::new();
    for attachment in rows.into_iter().map(to_attachment) {
        if let Some(message) = attachment.message_id {
            by_message.entry(message).or_default().push(attachment);
        }
    }
    Ok(by_message)
}

/// The attachments of a page of chat messages, in upload order.
pub fn of_chat_messages(
    conn: &mut DbConnection,
    messages: &[ChatMessageId],
) -> Result<HashMap<ChatMessageId, Vec<Attachment>>, StoreError> {
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = messages.iter().map(|id| id.get()).collect();
    let rows: Vec<Row> = a::table
        .filter(a::chat_message_id.eq_any(ids))
        .order(a::id)
        .select(COLUMNS)
        .load(conn)?;
    let mut by_message: HashMap<ChatMessageId, Vec<Attachment>> = HashMap::new();
    for attachment in rows.into_iter().map(to_attachment) {
        if let Some(message) = attachment.chat_message_id {
            by_message.entry(message).or_default().push(attachment);
        }
    }
    Ok(by_message)
}

/// An attachment by id alone, whichever organization it belongs to: only for a signed link,
/// whose signature (made by this server for this id) is the authorization.
pub fn get_linked(conn: &mut DbConnection, id: i64) -> Result<Option<Attachment>, StoreError> {
    let row: Option<Row> = a::table
        .filter(a::id.eq(id))
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_attachment))
}
