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
    /// The customer's address it is with, stored like the contact's numbers (E.164 or
    /// `<channel>:<id>`); `None`: the contact's first one on the channel (see `deliveries`).
    pub customer_address: Option<String>,
}

/// A new conversation, locked like any other (its row is this transaction's until commit).
pub fn insert(conn: &mut DbConnection, new: NewConversation) -> Result<Locked, StoreError> {
    let at = to_db(now());
    let row: ConversationRow = diesel::insert_into(c::table)
        .values((
            c::org_id.eq(new.org_id.get()),
            c::inbox_id.eq(new.inbox_id.get()),
            c::channel_id.eq(new.channel_id.get()),
            c::contact_id.eq(new.contact_id.get()),
            c::status.eq(Status::Open.as_str()),
            c::archived.eq(new.archived),
            c::customer_address.eq(new.customer_address),
            c::spam.eq(false),
            c::message_count.eq(0),
            c::created_at.eq(at),
            c::updated_at.eq(at),
        ))
        .returning(COLUMNS)
        .get_result(conn)?;
    to_conversation(row).map(Locked)
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

/// The contact's open conversation on the channel, if any (at most one: a unique index),
/// locked like [`lock`] does.
pub fn lock_open(
    conn: &mut DbConnection,
    channel: ChannelId,
    contact: ContactId,
) -> Result<Option<Locked>, StoreError> {
    let query = c::table
        .filter(
            c::channel_id
                .eq(channel.get())
                .and(c::contact_id.eq(contact.get()))
                .and(c::status.eq(Status::Open.as_str())),
        )
        .select(COLUMNS);
    let row: Option<ConversationRow> = first_locked!(conn, query)?;
    Ok(row.map(to_conversation).transpose()?.map(Locked))
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

/// A conversation row locked until the end of the transaction: the proof every change to a
/// conversation needs, so that each is decided against the row as it is at commit. Only
/// [`lock`] makes one, inside the organization it names.
#[derive(Debug)]
pub struct Locked(Conversation);

impl AsRef<Conversation> for Locked {
    fn as_ref(&self) -> &Conversation {
        &self.0
    }
}

impl Locked {
    pub fn id(&self) -> ConversationId {
        self.0.id
    }

    /// The conversation as it is now, changes of this transaction included.
    pub fn current(&self) -> &Conversation {
        &self.0
    }

    fn refresh(&mut self, conn: &mut DbConnection) -> Result<Conversation, StoreError> {
        self.0 = to_conversation(c::table.find(self.0.id.get()).select(COLUMNS).first(conn)?)?;
        Ok(self.0.clone())
    }
}

/// Loads the organization's conversation and locks its row until the transaction ends
/// (PostgreSQL: `FOR NO KEY UPDATE`, which still lets other transactions insert rows that
/// refer to it; SQLite: the store's single writer holds it already). Changes racing on the
/// same conversation so run one after the other, each seeing what the one before committed.
pub fn lock(
    conn: &mut DbConnection,
    org: OrgId,
    id: ConversationId,
) -> Result<Option<Locked>, StoreError> {
    let query = c::table
        .filter(c::id.eq(id.get()).and(c::org_id.eq(org.get())))
        .select(COLUMNS);
    let row: Option<ConversationRow> = first_locked!(conn, query)?;
    Ok(row.map(to_conversation).transpose()?.map(Locked))
}

/// Every conversation of the organization's contact, locked as [`lock`] locks one (a
/// contact merge moves them all), in id order.
pub fn lock_of_contact(
    conn: &mut DbConnection,
    org: OrgId,
    contact: ContactId,
) -> Result<Vec<Locked>, StoreError> {
    let query = c::table
        .filter(c::contact_id.eq(contact.get()).and(c::org_id.eq(org.get())))
        .order(c::id)
        .select(COLUMNS);
    let rows: Vec<ConversationRow> = all_locked!(conn, query)?;
    rows.into_iter()
        .map(|row| to_conversation(row).map(Locked))
        .collect()
}

pub fn set_assignment(
    conn: &mut DbConnection,
    locked: &mut Locked,
    assignee: Option<UserId>,
    team: Option<TeamId>,
) -> Result<Conversation, StoreError> {
    let row = diesel::update(c::table.find(locked.id().get()))
        .set((
            c::assignee_id.eq(assignee.map(UserId::get)),
            c::team_id.eq(team.map(TeamId::get)),
            c::updated_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result::<ConversationRow>(conn)?;
    locked.0 = to_conversation(row)?;
    Ok(locked.0.clone())
}

pub fn close(
    conn: &mut DbConnection,
    locked: &mut Locked,
    by: Option<UserId>,
    spam: bool,
) -> Result<Conversation, StoreError> {
    let at = to_db(now());
    diesel::update(c::table.find(locked.id().get()))
        .set((
            c::status.eq(Status::Closed.as_str()),
            c::spam.eq(spam),
            c::closed_at.eq(Some(at)),
            c::closed_by.eq(by.map(UserId::get)),
            c::updated_at.eq(at),
        ))
        .execute(conn)?;
    locked.refresh(conn)
}

pub fn move_to(
    conn: &mut DbConnection,
    locked: &mut Locked,
    inbox: InboxId,
    clear_assignee: bool,
) -> Result<Conversation, StoreError> {
    let at = to_db(now());
    if clear_assignee {
        diesel::update(c::table.find(locked.id().get()))
            .set((
                c::inbox_id.eq(inbox.get()),
                c::assignee_id.eq(None::<i64>),
                c::team_id.eq(None::<i64>),
                c::updated_at.eq(at),
            ))
            .execute(conn)?;
    } else {
        diesel::update(c::table.find(locked.id().get()))
            .set((c::inbox_id.eq(inbox.get()), c::updated_at.eq(at)))
            .execute(conn)?;
    }
    locked.refresh(conn)
}

/// Records a new last message: preview, time, count (which read state compares against).
pub fn note_message(
    conn: &mut DbConnection,
    locked: &mut Locked,
    message: MessageId,
    at: chrono::DateTime<chrono::Utc>,
    preview: &str,
) -> Result<Conversation, StoreError> {
    let row = diesel::update(c::table.find(locked.id().get()))
        .set((
            c::last_message_id.eq(Some(message.get())),
            c::last_message_at.eq(Some(to_db(at))),
            c::last_message_preview.eq(Some(preview)),
            c::message_count.eq(c::message_count + 1),
            c::updated_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result::<ConversationRow>(conn)?;
    locked.0 = to_conversation(row)?;
    Ok(locked.0.clone())
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

/// The newest conversation of the contact on the channel, open or closed (a web chat
/// visitor's thread).
pub fn latest_of(
    conn: &mut DbConnection,
    channel: ChannelId,
    contact: ContactId,
) -> Result<Option<Conversation>, StoreError> {
    c::table
        .filter(
            c::channel_id
                .eq(channel.get())
                .and(c::contact_id.eq(contact.get())),
        )
        .order(c::id.desc())
        .select(COLUMNS)
        .first::<ConversationRow>(conn)
        .optional()?
        .map(to_conversation)
        .transpose()
}

/// The customer wrote at `at` (as the provider dated it): kept when it is the latest.
pub fn note_customer_wrote(
    conn: &mut DbConnection,
    locked: &Locked,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let at = to_db(at);
    diesel::update(
        c::table.filter(
            c::id.eq(locked.id().get()).and(
                c::customer_wrote_at
                    .is_null()
                    .or(c::customer_wrote_at.lt(at)),
            ),
        ),
    )
    .set(c::customer_wrote_at.eq(Some(at)))
    .execute(conn)?;
    Ok(())
}

/// When the customer last wrote in the conversation: as the provider dated it, or, for a
/// conversation from before that was recorded, when their last message arrived.
pub fn customer_wrote_at(
    conn: &mut DbConnection,
    id: ConversationId,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    use crate::schema::messages as m;
    let recorded: Option<NaiveDateTime> = c::table
        .find(id.get())
        .select(c::customer_wrote_at)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .flatten();
    let at = match recorded {
        Some(at) => Some(at),
        None => m::table
            .filter(
                m::conversation_id
                    .eq(id.get())
                    .and(m::direction.eq("inbound")),
            )
            .select(diesel::dsl::max(m::created_at))
            .first::<Option<NaiveDateTime>>(conn)?,
    };
    Ok(at.map(from_db))
}

/// Where replies to the conversation go from now on: the customer's address as they last
/// wrote from it, or as an agent last addressed them.
pub fn set_customer_address(
    conn: &mut DbConnection,
    locked: &Locked,
    address: &str,
) -> Result<(), StoreError> {
    diesel::update(c::table.find(locked.id().get()))
        .set(c::customer_address.eq(Some(address)))
        .execute(conn)?;
    Ok(())
}

pub fn set_contact(
    conn: &mut DbConnection,
    locked: &mut Locked,
    contact: ContactId,
) -> Result<Conversation, StoreError> {
    let row = diesel::update(c::table.find(locked.id().get()))
        .set((
            c::contact_id.eq(contact.get()),
            c::updated_at.eq(to_db(now())),
        ))
        .returning(COLUMNS)
        .get_result::<ConversationRow>(conn)?;
    locked.0 = to_conversation(row)?;
    Ok(locked.0.clone())
}
