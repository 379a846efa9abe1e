//! Satisfaction surveys: a link sent to the customer, answered once.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, MessageId, OrgId};

use crate::schema::surveys as s;
use crate::{DbConnection, StoreError, from_db, now, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub token: String,
    pub org_id: OrgId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub rating: Option<i32>,
    pub comment: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

pub fn insert(
    conn: &mut DbConnection,
    token: &str,
    org: OrgId,
    conversation: ConversationId,
    message: MessageId,
) -> Result<(), StoreError> {
    diesel::insert_into(s::table)
        .values((
            s::token.eq(token),
            s::org_id.eq(org.get()),
            s::conversation_id.eq(conversation.get()),
            s::message_id.eq(message.get()),
            s::created_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, token: &str) -> Result<Option<Survey>, StoreError> {
    type Row = (
        String,
        i64,
        i64,
        i64,
        Option<i32>,
        Option<String>,
        Option<NaiveDateTime>,
    );
    let row: Option<Row> = s::table
        .find(token)
        .select((
            s::token,
            s::org_id,
            s::conversation_id,
            s::message_id,
            s::rating,
            s::comment,
            s::answered_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(token, org_id, conversation_id, message_id, rating, comment, answered_at)| Survey {
            token,
            org_id: OrgId(org_id),
            conversation_id: ConversationId(conversation_id),
            message_id: MessageId(message_id),
            rating,
            comment,
            answered_at: answered_at.map(from_db),
        },
    ))
}

/// Records the answer; `false` when the survey was already answered.
pub fn answer(
    conn: &mut DbConnection,
    token: &str,
    rating: i32,
    comment: Option<&str>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(s::table.filter(s::token.eq(token).and(s::answered_at.is_null())))
        .set((
            s::rating.eq(Some(rating)),
            s::comment.eq(comment),
            s::answered_at.eq(Some(to_db(now()))),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// The survey tokens of the given messages (for presenting a page of messages).
pub fn tokens_for(
    conn: &mut DbConnection,
    messages: &[MessageId],
) -> Result<HashMap<MessageId, String>, StoreError> {
    let ids: Vec<i64> = messages.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, String)> = s::table
        .filter(s::message_id.eq_any(ids))
        .select((s::message_id, s::token))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(message, token)| (MessageId(message), token))
        .collect())
}
