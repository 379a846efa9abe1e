//! What makes retries safe: inbound receipts (one per provider message id) and
//! idempotency keys (one stored response per user and key).

use diesel::prelude::*;
use domain::{ChannelId, ConversationId, MessageId, UserId};

use crate::schema::{idempotency_keys as keys, inbound_receipts as receipts};
use crate::{DbConnection, StoreError, now, to_db};

pub fn find_inbound(
    conn: &mut DbConnection,
    channel: ChannelId,
    external_id: &str,
) -> Result<Option<(ConversationId, MessageId)>, StoreError> {
    let row: Option<(i64, i64)> = receipts::table
        .filter(
            receipts::channel_id
                .eq(channel.get())
                .and(receipts::external_id.eq(external_id)),
        )
        .select((receipts::conversation_id, receipts::message_id))
        .first(conn)
        .optional()?;
    Ok(row.map(|(conversation, message)| (ConversationId(conversation), MessageId(message))))
}

/// Records the receipt; a concurrent duplicate fails here with `Conflict` and rolls back.
pub fn insert_inbound(
    conn: &mut DbConnection,
    channel: ChannelId,
    external_id: &str,
    conversation: ConversationId,
    message: MessageId,
) -> Result<(), StoreError> {
    diesel::insert_into(receipts::table)
        .values((
            receipts::channel_id.eq(channel.get()),
            receipts::external_id.eq(external_id),
            receipts::conversation_id.eq(conversation.get()),
            receipts::message_id.eq(message.get()),
            receipts::created_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// A stored response: the request's fingerprint, status and body.
pub struct StoredResponse {
    pub request_hash: String,
    pub status: i32,
    pub body: String,
}

pub fn find_key(
    conn: &mut DbConnection,
    user: UserId,
    key: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    let row: Option<(String, i32, String)> = keys::table
        .filter(keys::user_id.eq(user.get()).and(keys::key.eq(key)))
        .select((keys::request_hash, keys::status, keys::response))
        .first(conn)
        .optional()?;
    Ok(row.map(|(request_hash, status, body)| StoredResponse {
        request_hash,
        status,
        body,
    }))
}

pub fn insert_key(
    conn: &mut DbConnection,
    user: UserId,
    key: &str,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    diesel::insert_into(keys::table)
        .values((
            keys::user_id.eq(user.get()),
            keys::key.eq(key),
            keys::request_hash.eq(&response.request_hash),
            keys::status.eq(response.status),
            keys::response.eq(&response.body),
            keys::created_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets idempotency keys older than `cutoff` (retries come within minutes, not days).
pub fn purge_keys_before(
    conn: &mut DbConnection,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(keys::table.filter(keys::created_at.lt(to_db(cutoff)))).execute(conn)?)
}
