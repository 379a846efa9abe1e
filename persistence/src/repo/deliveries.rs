//! The outbound delivery queue: one row per outbound message that leaves through a
//! channel's `outbound_url`, kept in the database so nothing queued is lost on restart.
//!
//! A worker leases due rows for a while, sends them, then completes them, schedules a retry
//! or gives up. A lease that runs out (the worker died mid-send) makes the row due again.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use domain::conversation as rules;
use domain::{Channel, ChannelId, ContactId, ConversationId, MessageId, OrgId};

use super::attachments::{self, Attachment};
use super::channels;
use crate::schema::{
    contact_phone_numbers as numbers, conversations as c, messages as m, outbound_deliveries as d,
};
use crate::{DbConnection, StoreError, now, to_db};

/// Queues the message for delivery, due now.
pub fn enqueue(
    conn: &mut DbConnection,
    org: OrgId,
    message: MessageId,
    channel: ChannelId,
) -> Result<(), StoreError> {
    diesel::insert_into(d::table)
        .values((
            d::org_id.eq(org.get()),
            d::message_id.eq(message.get()),
            d::channel_id.eq(channel.get()),
            d::attempts.eq(0),
            d::next_attempt_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// A leased delivery, with everything needed to send it.
#[derive(Clone)]
pub struct Due {
    pub id: i64,
    pub org_id: OrgId,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub channel: Channel,
    /// The webhook's signing secret and the provider's sealed credentials.
    pub secrets: channels::ChannelSecrets,
    /// The customer's address as the provider knows it: E.164 for sms and WhatsApp, the
    /// platform's user id otherwise. `None` when the contact has none on this channel.
    pub to: Option<String>,
    pub body: String,
    /// The files that go with it, in upload order.
    pub attachments: Vec<Attachment>,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Without the secret, so that a logged or asserted `Due` does not leak it.
impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Due")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("message_id", &self.message_id)
            .field("conversation_id", &self.conversation_id)
            .field("channel", &self.channel)
            .field("secrets", &self.secrets)
            .field("to", &self.to)
            .field("body", &self.body)
            .field("attachments", &self.attachments)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// Whether any delivery is due and free at `now`: a plain read, so an idle poll neither
/// writes nor waits for the writers.
pub fn any_due(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let at = to_db(now);
    let found: Option<i64> = d::table
        .filter(d::done_at.is_null().and(d::next_attempt_at.le(at)))
        .filter(d::leased_until.is_null().or(d::leased_until.lt(at)))
        .select(d::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Leases up to `limit` due deliveries until `now + lease_for`, oldest due first.
///
/// Each candidate is claimed by its own conditional UPDATE, kept only when it changed one
/// row: on PostgreSQL a concurrent claimer blocks on the row until the first one commits,
/// then re-checks the condition against the committed lease and skips it, so two instances
/// never lease the same row. (Plain statements, because `FOR UPDATE SKIP LOCKED` does not
/// compile through MultiConnection.) Run it in a short transaction of its own: on SQLite
/// that queues it behind the other writers, and on PostgreSQL it only holds the claimed
/// rows until it commits.
pub fn lease_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    lease_for: TimeDelta,
    limit: i64,
) -> Result<Vec<Due>, StoreError> {
    let at = to_db(now);
    let until = to_db(now + lease_for);
    let free = d::leased_until.is_null().or(d::leased_until.lt(at));
    let mut candidates: Vec<i64> = d::table
        .filter(
            d::done_at
                .is_null()
                .and(d::next_attempt_at.le(at))
                .and(free),
        )
        .order((d::next_attempt_at, d::id))
        .limit(limit)
        .select(d::id)
        .load(conn)?;
    // Claimed in id order, the same in every instance, so two claimers never wait on each
    // other's rows in a cycle (a deadlock).
    candidates.sort_unstable();
    let mut leased = Vec::with_capacity(candidates.len());
    for id in candidates {
        let claimed =
            diesel::update(d::table.filter(d::id.eq(id).and(d::done_at.is_null()).and(free)))
                .set(d::leased_until.eq(Some(until)))
                .execute(conn)?;
        if claimed == 1 {
            leased.push(id);
        }
    }
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    load(conn, &leased)
}

type DueRow = (i64, i64, i64, i64, i32, i64, String, i64, Option<String>);

/// The leased rows' messages, channels and contacts. A row that cannot be sent (its message
/// is not an outbound message, or its channel is gone) is given up here, so it is never
/// retried and, whatever wrote it, an internal note never leaves.
fn load(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Due>, StoreError> {
    let rows: Vec<DueRow> = d::table
        .inner_join(m::table.on(m::id.eq(d::message_id)))
        .inner_join(c::table.on(c::id.eq(m::conversation_id)))
        .filter(d::id.eq_any(ids))
        .filter(m::direction.eq("outbound").and(m::kind.ne("note")))
        .order(d::id)
        .select((
            d::id,
            d::org_id,
            d::message_id,
            d::channel_id,
            d::attempts,
            m::conversation_id,
            m::body,
            c::contact_id,
            c::customer_address,
        ))
        .load(conn)?;
    let messages: Vec<MessageId> = rows.iter().map(|row| MessageId(row.2)).collect();
    let mut files = attachments::of_messages(conn, &messages)?;
    let mut channel_cache: HashMap<i64, Option<(Channel, channels::ChannelSecrets)>> =
        HashMap::new();
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        let (
            id,
            org_id,
            message_id,
            channel_id,
            attempts,
            conversation_id,
            body,
            contact_id,
            customer_address,
        ) = row;
        let channel = match channel_cache.get(&channel_id) {
            Some(found) => found.clone(),
            None => {
                let found = channels::get_with_secret(conn, ChannelId(channel_id))?;
                channel_cache.insert(channel_id, found.clone());
                found
            }
        };
        let Some((channel, secrets)) =
            channel.filter(|(channel, _)| channel.org_id.get() == org_id)
        else {
            continue;
        };
        let to = address(
            conn,
            &channel,
            ContactId(contact_id),
            customer_address.as_deref(),
        )?;
        due.push(Due {
            id,
            org_id: OrgId(org_id),
            message_id: MessageId(message_id),
            conversation_id: ConversationId(conversation_id),
            channel,
            secrets,
            to,
            body,
            attachments: files.remove(&MessageId(message_id)).unwrap_or_default(),
            attempts,
        });
    }
    for id in ids
        .iter()
        .filter(|id| !due.iter().any(|found| found.id == **id))
    {
        give_up(
            conn,
            *id,
            None,
            "not deliverable: not an outbound message, or its channel is gone",
        )?;
    }
    Ok(due)
}

/// The customer's address on this channel: the one the conversation is with, while it is
/// still one of the contact's (a number taken off the contact may be someone else's by
/// now); otherwise, as for conversations from before it was recorded, the contact's first
/// one of the channel's kind. Phone numbers are stored in E.164; social ids as
/// `<channel>:<id>` (see `contacts`), of which the provider knows only the id.
fn address(
    conn: &mut DbConnection,
    channel: &Channel,
    contact: ContactId,
    conversation_address: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let mut stored: Vec<String> = numbers::table
        .filter(numbers::contact_id.eq(contact.get()))
        .order(numbers::id)
        .select(numbers::number)
        .load(conn)?;
    if let Some(position) =
        conversation_address.and_then(|address| stored.iter().position(|number| number == address))
    {
        // Looked at first, and still checked against the channel's kind below.
        let preferred = stored.remove(position);
        stored.insert(0, preferred);
    }
    let Some(found) = rules::first_address_on(channel.channel_type, &stored) else {
        return Ok(None);
    };
    if channel.channel_type.uses_phone_number() {
        return Ok(Some(found.to_string()));
    }
    let prefix = format!("{}:", channel.channel_type.as_str());
    Ok(found.strip_prefix(&prefix).map(str::to_string))
}

/// The delivery was accepted: done, never sent again.
pub fn complete(conn: &mut DbConnection, id: i64) -> Result<(), StoreError> {
    diesel::update(d::table.find(id))
        .set((
            d::done_at.eq(Some(to_db(now()))),
            d::leased_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// The attempt failed: due again at `next_attempt_at`, by whichever instance leases it then.
pub fn retry_later(
    conn: &mut DbConnection,
    id: i64,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    diesel::update(d::table.find(id))
        .set((
            d::attempts.eq(attempts),
            d::next_attempt_at.eq(to_db(next_attempt_at)),
            d::leased_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}

/// No more attempts: done, with the last error kept for operators. `attempts`, when
/// given, records the attempt that failed last.
pub fn give_up(
    conn: &mut DbConnection,
    id: i64,
    attempts: Option<i32>,
    error: &str,
) -> Result<(), StoreError> {
    let row = d::table.find(id);
    if let Some(attempts) = attempts {
        diesel::update(row)
            .set(d::attempts.eq(attempts))
            .execute(conn)?;
    }
    diesel::update(row)
        .set((
            d::done_at.eq(Some(to_db(now()))),
            d::leased_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}
