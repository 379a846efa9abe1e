//! Attachments: uploaded files (bytes on disk under a random key), later attached to one
//! message.

use std::collections::HashMap;

use diesel::prelude::*;
use domain::{MessageId, OrgId, UserId};

use crate::schema::attachments as a;
use crate::{DbConnection, StoreError, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub org_id: OrgId,
    pub uploader_id: Option<UserId>,
    pub message_id: Option<MessageId>,
    pub content_type: String,
    pub size: i64,
    pub filename: String,
    /// Where the bytes are, relative to the data directory.
    pub storage_key: String,
}

type Row = (
    i64,
    i64,
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
    a::content_type,
    a::size,
    a::filename,
    a::storage_key,
) = (
    a::id,
    a::org_id,
    a::uploader_id,
    a::message_id,
    a::content_type,
    a::size,
    a::filename,
    a::storage_key,
);

fn to_attachment(
    (id, org_id, uploader_id, message_id, content_type, size, filename, storage_key): Row,
) -> Attachment {
    Attachment {
        id,
        org_id: OrgId(org_id),
        uploader_id: uploader_id.map(UserId),
        message_id: message_id.map(MessageId),
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
    Ok(
        diesel::update(a::table.filter(a::id.eq_any(ids).and(a::message_id.is_null())))
            .set(a::message_id.eq(Some(message.get())))
            .execute(conn)?,
    )
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
