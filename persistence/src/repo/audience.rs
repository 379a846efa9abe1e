//! The facts that decide who hears an event (realtime fan-out, replay, `GET /v1/events`),
//! loaded for a whole page of events and a set of users at once: a constant number of
//! queries per page, whatever its number of events or users.

use diesel::prelude::*;
use domain::{ChatId, InboxId, OrgId, TeamId, UserId};

use crate::schema::{chat_members, chats, inbox_members, team_members, users};
use crate::{DbConnection, StoreError};

/// Which of `users` belong to which of `inboxes` (one query).
pub fn inbox_memberships(
    conn: &mut DbConnection,
    inboxes: &[InboxId],
    users: &[UserId],
) -> Result<Vec<(InboxId, UserId)>, StoreError> {
    if inboxes.is_empty() || users.is_empty() {
        return Ok(Vec::new());
    }
    let inboxes: Vec<i64> = inboxes.iter().map(|id| id.get()).collect();
    let users: Vec<i64> = users.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, i64)> = inbox_members::table
        .filter(
            inbox_members::inbox_id
                .eq_any(inboxes)
                .and(inbox_members::user_id.eq_any(users)),
        )
        .select((inbox_members::inbox_id, inbox_members::user_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(inbox, user)| (InboxId(inbox), UserId(user)))
        .collect())
}

/// The teams each of `users` is in (one query).
pub fn team_memberships(
    conn: &mut DbConnection,
    users: &[UserId],
) -> Result<Vec<(TeamId, UserId)>, StoreError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<i64> = users.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, i64)> = team_members::table
        .filter(team_members::user_id.eq_any(users))
        .select((team_members::team_id, team_members::user_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(team, user)| (TeamId(team), UserId(user)))
        .collect())
}

/// Which of `users` are members of which of the organization's `chats` (one query).
pub fn chat_memberships(
    conn: &mut DbConnection,
    org: OrgId,
    chat_ids: &[ChatId],
    users: &[UserId],
) -> Result<Vec<(ChatId, UserId)>, StoreError> {
    if chat_ids.is_empty() || users.is_empty() {
        return Ok(Vec::new());
    }
    let chat_ids: Vec<i64> = chat_ids.iter().map(|id| id.get()).collect();
    let users: Vec<i64> = users.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, i64)> = chat_members::table
        .inner_join(chats::table)
        .filter(chats::org_id.eq(org.get()))
        .filter(chat_members::chat_id.eq_any(chat_ids))
        .filter(chat_members::user_id.eq_any(users))
        .select((chat_members::chat_id, chat_members::user_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(chat, user)| (ChatId(chat), UserId(user)))
        .collect())
}

/// Every user of the organization and whether they are active, in id order (the presence
/// snapshot).
pub fn org_users(conn: &mut DbConnection, org: OrgId) -> Result<Vec<(UserId, bool)>, StoreError> {
    let rows: Vec<(i64, bool)> = users::table
        .filter(users::org_id.eq(org.get()))
        .order(users::id)
        .select((users::id, users::active))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, active)| (UserId(id), active))
        .collect())
}
