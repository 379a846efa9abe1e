//! Internal chats, their members and messages. Every lookup is the organization's and a
//! member's: a chat is found only through [`find_for_member`], whose [`Membership`] the
//! member-only reads and writes require.
//!
//! A chat's last activity is read from its newest message (an index lookup per chat), not
//! copied onto the chat row, so rows written without this code (seed data) show right too.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count_star, exists, max};
use diesel::prelude::*;
use domain::{ChatId, ChatKind, ChatMessageId, OrgId, User, UserId};

use super::{Page, parse_enum};
use crate::connection::MultiBackend;
use crate::schema::{chat_members as members, chat_messages as cm, chats};
use crate::{DbConnection, StoreError, from_db, now, to_db};

diesel::define_sql_function! {
    /// SQL `coalesce()` of a time that may be missing and one that is not (both backends).
    #[sql_name = "coalesce"]
    fn coalesce_time(
        first: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        otherwise: diesel::sql_types::Timestamp,
    ) -> diesel::sql_types::Timestamp;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: ChatId,
    pub org_id: OrgId,
    pub kind: ChatKind,
    pub name: Option<String>,
    /// In id order.
    pub member_ids: Vec<UserId>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: ChatMessageId,
    pub chat_id: ChatId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A chat as one of its members found it: the proof that member-only work requires.
#[derive(Debug, Clone)]
pub struct Membership {
    chat: Chat,
    user: UserId,
}

impl Membership {
    pub fn chat(&self) -> &Chat {
        &self.chat
    }

    pub fn user(&self) -> UserId {
        self.user
    }

    pub fn into_chat(self) -> Chat {
        self.chat
    }
}

type ChatRow = (i64, i64, String, Option<String>, NaiveDateTime);
const CHAT_COLUMNS: (
    chats::id,
    chats::org_id,
    chats::kind,
    chats::name,
    chats::created_at,
) = (
    chats::id,
    chats::org_id,
    chats::kind,
    chats::name,
    chats::created_at,
);

type MessageRow = (i64, i64, i64, String, NaiveDateTime);
const MESSAGE_COLUMNS: (cm::id, cm::chat_id, cm::author_id, cm::body, cm::created_at) =
    (cm::id, cm::chat_id, cm::author_id, cm::body, cm::created_at);

fn to_message((id, chat_id, author_id, body, created_at): MessageRow) -> ChatMessage {
    ChatMessage {
        id: ChatMessageId(id),
        chat_id: ChatId(chat_id),
        author_id: UserId(author_id),
        body,
        created_at: from_db(created_at),
    }
}

/// Turns rows into chats, loading the members of all of them in one query.
fn with_members(conn: &mut DbConnection, rows: Vec<ChatRow>) -> Result<Vec<Chat>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let pairs: Vec<(i64, i64)> = members::table
        .filter(members::chat_id.eq_any(&ids))
        .order((members::chat_id, members::user_id))
        .select((members::chat_id, members::user_id))
        .load(conn)?;
    let mut by_chat: HashMap<i64, Vec<UserId>> = HashMap::new();
    for (chat, user) in pairs {
        by_chat.entry(chat).or_default().push(UserId(user));
    }
    rows.into_iter()
        .map(|(id, org_id, kind, name, created_at)| {
            Ok(Chat {
                id: ChatId(id),
                org_id: OrgId(org_id),
                kind: parse_enum(&kind, ChatKind::parse, "chat kind")?,
                name,
                member_ids: by_chat.remove(&id).unwrap_or_default(),
                created_at: from_db(created_at),
            })
        })
        .collect()
}

/// The chat, if it is the organization's and `user` is one of its members.
pub fn find_for_member(
    conn: &mut DbConnection,
    org: OrgId,
    id: ChatId,
    user: UserId,
) -> Result<Option<Membership>, StoreError> {
    let row: Option<ChatRow> = chats::table
        .filter(chats::id.eq(id.get()).and(chats::org_id.eq(org.get())))
        .filter(exists(
            members::table
                .filter(members::chat_id.eq(chats::id))
                .filter(members::user_id.eq(user.get())),
        ))
        .select(CHAT_COLUMNS)
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_members(conn, vec![row])?
        .pop()
        .map(|chat| Membership { chat, user }))
}

fn find_direct(conn: &mut DbConnection, org: OrgId, key: &str) -> Result<Option<Chat>, StoreError> {
    let row: Option<ChatRow> = chats::table
        .filter(chats::org_id.eq(org.get()).and(chats::direct_key.eq(key)))
        .select(CHAT_COLUMNS)
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Ok(with_members(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

/// Inserts a chat and its members (one statement for all of them).
fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    kind: ChatKind,
    name: Option<&str>,
    direct_key: Option<&str>,
    people: &[&User],
) -> Result<Chat, StoreError> {
    for person in people {
        super::same_org(org, person.org_id)?;
    }
    let row: ChatRow = diesel::insert_into(chats::table)
        .values((
            chats::org_id.eq(org.get()),
            chats::kind.eq(kind.as_str()),
            chats::name.eq(name),
            chats::direct_key.eq(direct_key),
            chats::created_at.eq(to_db(now())),
        ))
        .returning(CHAT_COLUMNS)
        .get_result(conn)?;
    let rows: Vec<_> = people
        .iter()
        .map(|person| {
            (
                members::chat_id.eq(row.0),
                members::user_id.eq(person.id.get()),
            )
        })
        .collect();
    // MultiConnection has no multi-row insert: one statement per backend.
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(members::table)
                .values(&rows)
                .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            diesel::insert_into(members::table)
                .values(&rows)
                .execute(lite)?;
        }
    }
    Ok(with_members(conn, vec![row])?.remove(0))
}

/// The direct chat between two people of one organization: the existing one, or a new one
/// (`true`). The pair's unique key decides, also when both press at the same instant: the
/// insert runs in a savepoint, and the loser reads the winner's chat (on PostgreSQL its
/// insert waits for the winner's commit, so the chat and its members are there to read).
pub fn direct(
    conn: &mut DbConnection,
    one: &User,
    other: &User,
) -> Result<(Chat, bool), StoreError> {
    super::same_org(one.org_id, other.org_id)?;
    let org = one.org_id;
    let key = domain::chats::direct_key(one.id, other.id);
    if let Some(chat) = find_direct(conn, org, &key)? {
        return Ok((chat, false));
    }
    let created = conn
        .transaction(|conn| insert(conn, org, ChatKind::Direct, None, Some(&key), &[one, other]));
    match created {
        Ok(chat) => Ok((chat, true)),
        Err(StoreError::Conflict(_)) => find_direct(conn, org, &key)?
            .map(|chat| (chat, false))
            .ok_or_else(|| StoreError::Corrupt(format!("direct chat {key} vanished"))),
        Err(error) => Err(error),
    }
}

/// A new team chat of `people` (its creator among them), all of organization `org`.
pub fn team(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
    people: &[&User],
) -> Result<Chat, StoreError> {
    insert(conn, org, ChatKind::Team, Some(name), None, people)
}

/// A place in a member's chat list: the last activity time, then the chat id.
pub type Position = (NaiveDateTime, i64);

/// A chat of the member's list with its place in it: last activity, then id.
pub struct Listed {
    pub chat: Chat,
    /// The newest message's time, or the chat's creation time before its first message.
    pub active_at: NaiveDateTime,
}

/// The chats `user` is a member of, most recently active first (last message time, else
/// creation time; id breaks ties), after the `(active_at, id)` of the previous page's last.
pub fn list_for_member(
    conn: &mut DbConnection,
    org: OrgId,
    user: UserId,
    after: Option<Position>,
    limit: i64,
) -> Result<Page<Listed>, StoreError> {
    // The newest message of the outer chat by id (the `(chat_id, id)` index, one row).
    let active_at = || {
        coalesce_time(
            cm::table
                .filter(cm::chat_id.eq(chats::id))
                .order(cm::id.desc())
                .select(cm::created_at)
                .limit(1)
                .single_value(),
            chats::created_at,
        )
    };
    let mut query = chats::table
        .into_boxed::<MultiBackend>()
        .filter(chats::org_id.eq(org.get()))
        .filter(exists(
            members::table
                .filter(members::chat_id.eq(chats::id))
                .filter(members::user_id.eq(user.get())),
        ));
    if let Some((at, id)) = after {
        query = query.filter(
            active_at()
                .lt(at)
                .or(active_at().eq(at).and(chats::id.lt(id))),
        );
    }
    let rows: Vec<(ChatRow, NaiveDateTime)> = query
        .order((active_at().desc(), chats::id.desc()))
        .limit(limit + 1)
        .select((CHAT_COLUMNS, active_at()))
        .load(conn)?;
    let page = Page::from_overfetch(rows, limit);
    let (rows, times): (Vec<ChatRow>, Vec<NaiveDateTime>) = page.items.into_iter().unzip();
    let items = with_members(conn, rows)?
        .into_iter()
        .zip(times)
        .map(|(chat, active_at)| Listed { chat, active_at })
        .collect();
    Ok(Page {
        items,
        has_more: page.has_more,
    })
}

/// The newest message of each chat (two queries, whatever the number of chats).
pub fn last_messages(
    conn: &mut DbConnection,
    chat_ids: &[ChatId],
) -> Result<HashMap<ChatId, ChatMessage>, StoreError> {
    if chat_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = chat_ids.iter().map(|id| id.get()).collect();
    let newest: Vec<Option<i64>> = cm::table
        .filter(cm::chat_id.eq_any(&ids))
        .group_by(cm::chat_id)
        .select(max(cm::id))
        .load(conn)?;
    let newest: Vec<i64> = newest.into_iter().flatten().collect();
    if newest.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<MessageRow> = cm::table
        .filter(cm::id.eq_any(newest))
        .select(MESSAGE_COLUMNS)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(to_message)
        .map(|message| (message.chat_id, message))
        .collect())
}

/// How many messages of each chat `user` has not read: those by others after the user's
/// read position (one query). Chats with none are absent.
pub fn unread_counts(
    conn: &mut DbConnection,
    user: UserId,
    chat_ids: &[ChatId],
) -> Result<HashMap<ChatId, i64>, StoreError> {
    if chat_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = chat_ids.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, i64)> = cm::table
        .inner_join(
            members::table.on(members::chat_id
                .eq(cm::chat_id)
                .and(members::user_id.eq(user.get()))),
        )
        .filter(cm::chat_id.eq_any(ids))
        .filter(cm::author_id.ne(user.get()))
        .filter(
            members::last_read_message_id
                .is_null()
                .or(cm::id.nullable().gt(members::last_read_message_id)),
        )
        .group_by(cm::chat_id)
        .select((cm::chat_id, count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(chat, count)| (ChatId(chat), count))
        .collect())
}

/// Writes a message by the member into the chat.
pub fn insert_message(
    conn: &mut DbConnection,
    membership: &Membership,
    body: &str,
) -> Result<ChatMessage, StoreError> {
    let row: MessageRow = diesel::insert_into(cm::table)
        .values((
            cm::chat_id.eq(membership.chat.id.get()),
            cm::author_id.eq(membership.user.get()),
            cm::body.eq(body),
            cm::created_at.eq(to_db(now())),
        ))
        .returning(MESSAGE_COLUMNS)
        .get_result(conn)?;
    Ok(to_message(row))
}

/// The chat's messages before `before` (a message id), newest first.
pub fn messages_page(
    conn: &mut DbConnection,
    membership: &Membership,
    before: Option<i64>,
    limit: i64,
) -> Result<Page<ChatMessage>, StoreError> {
    let mut query = cm::table
        .into_boxed::<MultiBackend>()
        .filter(cm::chat_id.eq(membership.chat.id.get()));
    if let Some(before) = before {
        query = query.filter(cm::id.lt(before));
    }
    let rows: Vec<MessageRow> = query
        .order(cm::id.desc())
        .limit(limit + 1)
        .select(MESSAGE_COLUMNS)
        .load(conn)?;
    Ok(Page::from_overfetch(
        rows.into_iter().map(to_message).collect(),
        limit,
    ))
}

/// A message of one of the organization's chats (whoever asks: check the membership).
pub fn get_message(
    conn: &mut DbConnection,
    org: OrgId,
    id: ChatMessageId,
) -> Result<Option<ChatMessage>, StoreError> {
    let row: Option<MessageRow> = cm::table
        .inner_join(chats::table)
        .filter(cm::id.eq(id.get()).and(chats::org_id.eq(org.get())))
        .select(MESSAGE_COLUMNS)
        .first(conn)
        .optional()?;
    Ok(row.map(to_message))
}

/// Moves the member's read position forward to `up_to`, never back: of two marks racing,
/// the later position stays, whichever commits last.
pub fn mark_read(
    conn: &mut DbConnection,
    membership: &Membership,
    up_to: ChatMessageId,
) -> Result<(), StoreError> {
    diesel::update(
        members::table
            .filter(members::chat_id.eq(membership.chat.id.get()))
            .filter(members::user_id.eq(membership.user.get()))
            .filter(
                members::last_read_message_id
                    .is_null()
                    .or(members::last_read_message_id.lt(up_to.get())),
            ),
    )
    .set(members::last_read_message_id.eq(Some(up_to.get())))
    .execute(conn)?;
    Ok(())
}

/// The chat's newest message id, if it has any message.
pub fn newest_message_id(
    conn: &mut DbConnection,
    membership: &Membership,
) -> Result<Option<ChatMessageId>, StoreError> {
    let newest: Option<i64> = cm::table
        .filter(cm::chat_id.eq(membership.chat.id.get()))
        .select(max(cm::id))
        .first(conn)?;
    Ok(newest.map(ChatMessageId))
}
