//! Satisfaction surveys: a link sent to the customer, answered once.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::{ConversationId, InboxId, MessageId, OrgId, UserId};

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

/// Who and where an answer counts for, as the conversation was when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Earned {
    pub inbox: InboxId,
    pub agent: Option<UserId>,
    pub at: DateTime<Utc>,
}

/// Records the answer; `false` when the survey was already answered. One conditional
/// UPDATE: of two answers racing, the second waits for the first to commit, finds the row
/// answered and changes nothing.
pub fn answer(
    conn: &mut DbConnection,
    token: &str,
    rating: i32,
    comment: Option<&str>,
    earned: Earned,
) -> Result<bool, StoreError> {
    let updated = diesel::update(s::table.filter(s::token.eq(token).and(s::answered_at.is_null())))
        .set((
            s::rating.eq(Some(rating)),
            s::comment.eq(comment),
            s::answered_at.eq(Some(to_db(earned.at))),
            s::inbox_id.eq(Some(earned.inbox.get())),
            s::agent_id.eq(earned.agent.map(UserId::get)),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Which answers a summary covers: the organization's, answered in `[from, to)` (an open
/// end is unbounded), in `inboxes` when given (an empty list covers nothing).
pub struct SummaryFilter<'a> {
    pub org: OrgId,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub inboxes: Option<&'a [InboxId]>,
}

/// Answers and the sum of their ratings for one inbox or one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally<K> {
    pub key: K,
    pub answered: i64,
    pub rating_sum: i64,
}

/// The tallies of a summary, each in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub per_inbox: Vec<Tally<InboxId>>,
    /// Answers given while the conversation had an assignee.
    pub per_agent: Vec<Tally<UserId>>,
}

/// Per inbox and per agent. Counted by the database (two grouped scans of the answers in
/// range), never row by row here.
pub fn summary(conn: &mut DbConnection, filter: &SummaryFilter<'_>) -> Result<Summary, StoreError> {
    use diesel::dsl::{count_star, sum};
    // One filter for both groupings (a macro: the grouped queries' types differ, and a boxed
    // query takes its GROUP BY before it is boxed).
    macro_rules! answered {
        ($grouped:expr) => {{
            let mut query = $grouped
                .filter(s::org_id.eq(filter.org.get()))
                .filter(s::answered_at.is_not_null())
                .into_boxed();
            if let Some(from) = filter.from {
                query = query.filter(s::answered_at.ge(to_db(from)));
            }
            if let Some(to) = filter.to {
                query = query.filter(s::answered_at.lt(to_db(to)));
            }
            if let Some(inboxes) = filter.inboxes {
                let ids: Vec<i64> = inboxes.iter().map(|id| id.get()).collect();
                query = query.filter(s::inbox_id.eq_any(ids));
            }
            query
        }};
    }
    let per_inbox: Vec<(Option<i64>, i64, Option<i64>)> = answered!(
        s::table
            .filter(s::inbox_id.is_not_null())
            .group_by(s::inbox_id)
            .select((s::inbox_id, count_star(), sum(s::rating)))
            .order(s::inbox_id)
    )
    .load(conn)?;
    let per_agent: Vec<(Option<i64>, i64, Option<i64>)> = answered!(
        s::table
            .filter(s::agent_id.is_not_null())
            .group_by(s::agent_id)
            .select((s::agent_id, count_star(), sum(s::rating)))
            .order(s::agent_id)
    )
    .load(conn)?;
    fn tallies<K>(rows: Vec<(Option<i64>, i64, Option<i64>)>, key: fn(i64) -> K) -> Vec<Tally<K>> {
        rows.into_iter()
            .filter_map(|(id, answered, rating_sum)| {
                id.map(|id| Tally {
                    key: key(id),
                    answered,
                    rating_sum: rating_sum.unwrap_or(0),
                })
            })
            .collect()
    }
    Ok(Summary {
        per_inbox: tallies(per_inbox, InboxId),
        per_agent: tallies(per_agent, UserId),
    })
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
