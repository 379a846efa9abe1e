//! Conversations: one customer's thread on one channel, and its lifecycle.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use domain::conversation::{Conversation, Status};
use domain::{ChannelId, ContactId, ConversationId, InboxId, MessageId, OrgId, TeamId, UserId};

use super::parse_enum;
use crate::schema::conversations as c;
use crate::{DbConnection, StoreError, from_db, now, to_db};

pub(crate) type ConversationRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    bool,
    bool,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<NaiveDateTime>,
    Option<String>,
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<i64>,
);

#[allow(clippy::type_complexity)]
pub(crate) const COLUMNS: (
    c::id,
    c::org_id,
    c::inbox_id,
    c::channel_id,
    c::contact_id,
    c::status,
    c::archived,
    c::spam,
    c::assignee_id,
    c::team_id,
    c::last_message_id,
    c::last_message_at,
    c::last_message_preview,
    c::message_count,
    c::created_at,
    c::closed_at,
    c::closed_by,
) = (
    c::id,
    c::org_id,
    c::inbox_id,
    c::channel_id,
    c::contact_id,
    c::status,
    c::archived,
    c::spam,
    c::assignee_id,
    c::team_id,
    c::last_message_id,
    c::last_message_at,
    c::last_message_preview,
    c::message_count,
    c::created_at,
    c::closed_at,
    c::closed_by,
);

pub(crate) fn to_conversation(row: ConversationRow) -> Result<Conversation, StoreError> {
    let (
        id,
        org_id,
        inbox_id,
        channel_id,
        contact_id,
        status,
        archived,
        spam,
        assignee_id,
        team_id,
        last_message_id,
        last_message_at,
        last_message_preview,
        message_count,
        created_at,
        closed_at,
        closed_by,
    ) = row;
    Ok(Conversation {
        id: ConversationId(id),
        org_id: OrgId(org_id),
        inbox_id: InboxId(inbox_id),
        channel_id: ChannelId(channel_id),
        contact_id: ContactId(contact_id),
        status: parse_enum(&status, Status::parse, "conversation status")?,
        archived,
        spam,
        assignee_id: assignee_id.map(UserId),
        team_id: team_id.map(TeamId),
        last_message_id: last_message_id.map(MessageId),
        last_message_at: last_message_at.map(from_db),
        last_message_preview,
        message_count,
        created_at: from_db(created_at),
        closed_at: closed_at.map(from_db),
        closed_by: closed_by.map(UserId),
    })
}

pub(crate) fn to_conversations(
    rows: Vec<ConversationRow>,
) -> Result<Vec<Conversation>, StoreError> {
    rows.into_iter().map(to_conversation).collect()
}

pub struct NewConversation {
    pub org_id: OrgId,
    pub inbox_id: InboxId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    pub archived: bool,
}

pub fn insert(conn: &mut DbConnection, new: NewConversation) -> Result<Conversation, StoreError> {
    let at = to_db(now());
    let row: ConversationRow = diesel::insert_into(c::table)
        .values((
            c::org_id.eq(new.org_id.get()),
            c::inbox_id.eq(new.inbox_id.get()),
            c::channel_id.eq(new.channel_id.get()),
            c::contact_id.eq(new.contact_id.get()),
            c::status.eq(Status::Open.as_str()),
            c::archived.eq(new.archived),
            c::spam.eq(false),
            c::message_count.eq(0),
            c::created_at.eq(at),
            c::updated_at.eq(at),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    to_conversation(row)
}

pub fn get(
    conn: &mut DbConnection,
    org: OrgId,
    id: ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    c::table
        .filter(c::id.eq(id.get()).and(c::org_id.eq(org.get())))
        .select(COLUMNS)
        .first::<ConversationRow>(conn)
        .optional()?
        .map(to_conversation)
        .transpose()
}

/// Several conversations of the organization at once, in id order.
pub fn get_many(
    conn: &mut DbConnection,
    org: OrgId,
    ids: &[ConversationId],
) -> Result<Vec<Conversation>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    to_conversations(
        c::table
            .filter(c::org_id.eq(org.get()).and(c::id.eq_any(ids)))
            .order(c::id)
            .select(COLUMNS)
            .load(conn)?,
    )
}

/// The contact's open conversation on the channel, if any (at most one: a unique index).
pub fn find_open(
    conn: &mut DbConnection,
    channel: ChannelId,
    contact: ContactId,
) -> Result<Option<Conversation>, StoreError> {
    c::table
        .filter(
            c::channel_id
                .eq(channel.get())
                .and(c::contact_id.eq(contact.get()))
                .and(c::status.eq(Status::Open.as_str())),
        )
        .select(COLUMNS)
        .first::<ConversationRow>(conn)
        .optional()?
        .map(to_conversation)
        .transpose()
}

/// The contact's conversations, newest first.
pub fn of_contact(
    conn: &mut DbConnection,
    org: OrgId,
    contact: ContactId,
) -> Result<Vec<Conversation>, StoreError> {
    to_conversations(
        c::table
            .filter(c::org_id.eq(org.get()).and(c::contact_id.eq(contact.get())))
            .order((c::created_at.desc(), c::id.desc()))
            .select(COLUMNS)
            .load(conn)?,
    )
}

fn updated(conn: &mut DbConnection, id: ConversationId) -> Result<Conversation, StoreError> {
    to_conversation(c::table.find(id.get()).select(COLUMNS).first(conn)?)
}

pub fn set_assignment(
    conn: &mut DbConnection,
    id: ConversationId,
    assignee: Option<UserId>,
    team: Option<TeamId>,
) -> Result<Conversation, StoreError> {
    diesel::update(c::table.find(id.get()))
        .set((
            c::assignee_id.eq(assignee.map(UserId::get)),
            c::team_id.eq(team.map(TeamId::get)),
            c::updated_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    updated(conn, id)
}

pub fn close(
    conn: &mut DbConnection,
    id: ConversationId,
    by: Option<UserId>,
    spam: bool,
) -> Result<Conversation, StoreError> {
    let at = to_db(now());
    diesel::update(c::table.find(id.get()))
        .set((
            c::status.eq(Status::Closed.as_str()),
            c::spam.eq(spam),
            c::closed_at.eq(Some(at)),
            c::closed_by.eq(by.map(UserId::get)),
            c::updated_at.eq(at),
        ))
        .execute(conn)?;
    updated(conn, id)
}

pub fn move_to(
    conn: &mut DbConnection,
    id: ConversationId,
    inbox: InboxId,
    clear_assignee: bool,
) -> Result<Conversation, StoreError> {
    let at = to_db(now());
    if clear_assignee {
        diesel::update(c::table.find(id.get()))
            .set((
                c::inbox_id.eq(inbox.get()),
                c::assignee_id.eq(None::<i64>),
                c::team_id.eq(None::<i64>),
                c::updated_at.eq(at),
            ))
            .execute(conn)?;
    } else {
        diesel::update(c::table.find(id.get()))
            .set((c::inbox_id.eq(inbox.get()), c::updated_at.eq(at)))
            .execute(conn)?;
    }
    updated(conn, id)
}

/// Records a new last message: preview, time, count (which read state compares against).
pub fn note_message(
    conn: &mut DbConnection,
    id: ConversationId,
    message: MessageId,
    at: chrono::DateTime<chrono::Utc>,
    preview: &str,
) -> Result<Conversation, StoreError> {
    diesel::update(c::table.find(id.get()))
        .set((
            c::last_message_id.eq(Some(message.get())),
            c::last_message_at.eq(Some(to_db(at))),
            c::last_message_preview.eq(Some(preview)),
            c::message_count.eq(c::message_count + 1),
            c::updated_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    updated(conn, id)
}

/// Moves a private inbox's conversations on a channel into a shared inbox, read-only: they
/// are closed (closed is final) and marked archived.
pub fn archive_into(
    conn: &mut DbConnection,
    channel: ChannelId,
    inbox: InboxId,
) -> Result<usize, StoreError> {
    let at = to_db(now());
    diesel::update(c::table.filter(c::channel_id.eq(channel.get()).and(c::closed_at.is_null())))
        .set(c::closed_at.eq(Some(at)))
        .execute(conn)?;
    Ok(
        diesel::update(c::table.filter(c::channel_id.eq(channel.get())))
            .set((
                c::status.eq(Status::Closed.as_str()),
                c::inbox_id.eq(inbox.get()),
                c::archived.eq(true),
                c::assignee_id.eq(None::<i64>),
                c::team_id.eq(None::<i64>),
                c::updated_at.eq(to_db(now())),
            ))
            .execute(conn)?,
    )
}

pub fn set_contact(
    conn: &mut DbConnection,
    id: ConversationId,
    contact: ContactId,
) -> Result<Conversation, StoreError> {
    diesel::update(c::table.find(id.get()))
        .set((
            c::contact_id.eq(contact.get()),
            c::updated_at.eq(to_db(now())),
        ))
        .execute(conn)?;
    updated(conn, id)
}
