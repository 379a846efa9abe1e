//! Inboxes, their settings and their members (with queue log-in state).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use domain::{
    AgentVisibility, Inbox, InboxId, InboxKind, InboxMember, InboxSettings, OrgId, User, UserId,
};

use super::parse_enum;
use crate::schema::{inbox_members, inboxes};
use crate::{DbConnection, StoreError, from_db, now, to_db};

type InboxRow = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    bool,
    String,
    bool,
    bool,
    Option<i32>,
    NaiveDateTime,
);

const INBOX_COLUMNS: (
    inboxes::id,
    inboxes::org_id,
    inboxes::name,
    inboxes::kind,
    inboxes::owner_id,
    inboxes::assignment_mode,
    inboxes::agent_visibility,
    inboxes::allow_move,
    inboxes::auto_assign,
    inboxes::auto_assign_limit,
    inboxes::created_at,
) = (
    inboxes::id,
    inboxes::org_id,
    inboxes::name,
    inboxes::kind,
    inboxes::owner_id,
    inboxes::assignment_mode,
    inboxes::agent_visibility,
    inboxes::allow_move,
    inboxes::auto_assign,
    inboxes::auto_assign_limit,
    inboxes::created_at,
);

fn to_inbox(row: InboxRow) -> Result<Inbox, StoreError> {
    let (
        id,
        org_id,
        name,
        kind,
        owner_id,
        assignment_mode,
        visibility,
        allow_move,
        auto_assign,
        limit,
        created_at,
    ) = row;
    Ok(Inbox {
        id: InboxId(id),
        org_id: OrgId(org_id),
        name,
        settings: InboxSettings {
            kind: parse_enum(&kind, InboxKind::parse, "inbox kind")?,
            owner_id: owner_id.map(UserId),
            assignment_mode,
            agent_visibility: parse_enum(&visibility, AgentVisibility::parse, "agent visibility")?,
            allow_move,
            auto_assign,
            auto_assign_limit: limit,
        },
        created_at: from_db(created_at),
    })
}

fn to_inboxes(rows: Vec<InboxRow>) -> Result<Vec<Inbox>, StoreError> {
    rows.into_iter().map(to_inbox).collect()
}

pub fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
    settings: &InboxSettings,
) -> Result<Inbox, StoreError> {
    let at = to_db(now());
    let row: InboxRow = diesel::insert_into(inboxes::table)
        .values((
            inboxes::org_id.eq(org.get()),
            inboxes::name.eq(name),
            inboxes::kind.eq(settings.kind.as_str()),
            inboxes::owner_id.eq(settings.owner_id.map(UserId::get)),
            inboxes::assignment_mode.eq(settings.assignment_mode),
            inboxes::agent_visibility.eq(settings.agent_visibility.as_str()),
            inboxes::allow_move.eq(settings.allow_move),
            inboxes::auto_assign.eq(settings.auto_assign),
            inboxes::auto_assign_limit.eq(settings.auto_assign_limit),
            inboxes::created_at.eq(at),
            inboxes::updated_at.eq(at),
        ))
        .returning(INBOX_COLUMNS)
        .get_result(conn)?;
    to_inbox(row)
}

pub fn get(conn: &mut DbConnection, org: OrgId, id: InboxId) -> Result<Option<Inbox>, StoreError> {
    inboxes::table
        .filter(inboxes::id.eq(id.get()).and(inboxes::org_id.eq(org.get())))
        .select(INBOX_COLUMNS)
        .first::<InboxRow>(conn)
        .optional()?
        .map(to_inbox)
        .transpose()
}

/// The inbox, its row locked until the transaction ends (PostgreSQL `FOR NO KEY UPDATE`;
/// SQLite's single writer holds it already): auto-assignment in one inbox runs one
/// conversation at a time, so each counts the loads the one before committed.
pub fn lock(conn: &mut DbConnection, org: OrgId, id: InboxId) -> Result<Option<Inbox>, StoreError> {
    let query = inboxes::table
        .filter(inboxes::id.eq(id.get()).and(inboxes::org_id.eq(org.get())))
        .select(INBOX_COLUMNS);
    let row: Option<InboxRow> = first_locked!(conn, query)?;
    row.map(to_inbox).transpose()
}

/// Every inbox of the organization (admins), in id order.
pub fn list_all(conn: &mut DbConnection, org: OrgId) -> Result<Vec<Inbox>, StoreError> {
    to_inboxes(
        inboxes::table
            .filter(inboxes::org_id.eq(org.get()))
            .order(inboxes::id)
            .select(INBOX_COLUMNS)
            .load(conn)?,
    )
}

/// The inboxes a user belongs to, plus the private inboxes they own.
pub fn list_for_user(
    conn: &mut DbConnection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<Inbox>, StoreError> {
    let member_of = inbox_members::table
        .filter(inbox_members::user_id.eq(user.get()))
        .select(inbox_members::inbox_id);
    let visible = inboxes::kind
        .eq(InboxKind::Shared.as_str())
        .and(inboxes::id.eq_any(member_of))
        .or(inboxes::kind
            .eq(InboxKind::Private.as_str())
            .and(inboxes::owner_id.eq(user.get())));
    to_inboxes(
        inboxes::table
            .filter(inboxes::org_id.eq(org.get()).and(visible))
            .order(inboxes::id)
            .select(INBOX_COLUMNS)
            .load(conn)?,
    )
}

pub fn update(
    conn: &mut DbConnection,
    org: OrgId,
    id: InboxId,
    name: &str,
    settings: &InboxSettings,
) -> Result<Option<Inbox>, StoreError> {
    diesel::update(
        inboxes::table.filter(inboxes::id.eq(id.get()).and(inboxes::org_id.eq(org.get()))),
    )
    .set((
        inboxes::name.eq(name),
        inboxes::assignment_mode.eq(settings.assignment_mode),
        inboxes::agent_visibility.eq(settings.agent_visibility.as_str()),
        inboxes::allow_move.eq(settings.allow_move),
        inboxes::auto_assign.eq(settings.auto_assign),
        inboxes::auto_assign_limit.eq(settings.auto_assign_limit),
        inboxes::updated_at.eq(to_db(now())),
    ))
    .returning(INBOX_COLUMNS)
    .get_result::<InboxRow>(conn)
    .optional()?
    .map(to_inbox)
    .transpose()
}

/// Whether the user belongs to the inbox (as loaded from its organization).
pub fn is_member(conn: &mut DbConnection, inbox: &Inbox, user: UserId) -> Result<bool, StoreError> {
    let inbox = inbox.id;
    let found: i64 = inbox_members::table
        .filter(
            inbox_members::inbox_id
                .eq(inbox.get())
                .and(inbox_members::user_id.eq(user.get())),
        )
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

const MEMBER_COLUMNS: (
    inbox_members::inbox_id,
    inbox_members::user_id,
    inbox_members::logged_in,
) = (
    inbox_members::inbox_id,
    inbox_members::user_id,
    inbox_members::logged_in,
);

fn to_members(rows: Vec<(i64, i64, bool)>) -> Vec<InboxMember> {
    rows.into_iter()
        .map(|(inbox_id, user_id, logged_in)| InboxMember {
            inbox_id: InboxId(inbox_id),
            user_id: UserId(user_id),
            logged_in,
        })
        .collect()
}

pub fn members(conn: &mut DbConnection, inbox: &Inbox) -> Result<Vec<InboxMember>, StoreError> {
    let inbox = inbox.id;
    let rows = inbox_members::table
        .filter(inbox_members::inbox_id.eq(inbox.get()))
        .order(inbox_members::user_id)
        .select(MEMBER_COLUMNS)
        .load(conn)?;
    Ok(to_members(rows))
}

/// A user's memberships of the organization's inboxes (for `GET /v1/me`).
pub fn memberships_of(
    conn: &mut DbConnection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<InboxMember>, StoreError> {
    let rows = inbox_members::table
        .filter(inbox_members::user_id.eq(user.get()))
        .filter(
            inbox_members::inbox_id.eq_any(
                inboxes::table
                    .filter(inboxes::org_id.eq(org.get()))
                    .select(inboxes::id),
            ),
        )
        .order(inbox_members::inbox_id)
        .select(MEMBER_COLUMNS)
        .load(conn)?;
    Ok(to_members(rows))
}

/// Adds the user to the inbox, logged in to its queue; adding one twice changes nothing.
/// Both come as loaded from their organization: a pair from two organizations is refused,
/// whatever the caller checked.
pub fn add_member(conn: &mut DbConnection, inbox: &Inbox, user: &User) -> Result<(), StoreError> {
    super::same_org(inbox.org_id, user.org_id)?;
    let (inbox, user) = (inbox.id, user.id);
    insert_if_absent!(
        conn,
        diesel::insert_into(inbox_members::table).values((
            inbox_members::inbox_id.eq(inbox.get()),
            inbox_members::user_id.eq(user.get()),
            inbox_members::logged_in.eq(true),
            inbox_members::created_at.eq(to_db(now())),
        ))
    )?;
    Ok(())
}

pub fn remove_member(
    conn: &mut DbConnection,
    inbox: &Inbox,
    user: &User,
) -> Result<bool, StoreError> {
    super::same_org(inbox.org_id, user.org_id)?;
    let (inbox, user) = (inbox.id, user.id);
    let removed = diesel::delete(
        inbox_members::table.filter(
            inbox_members::inbox_id
                .eq(inbox.get())
                .and(inbox_members::user_id.eq(user.get())),
        ),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// Logs a member in or out of the inbox's queue; `false` when they are not a member.
pub fn set_logged_in(
    conn: &mut DbConnection,
    inbox: InboxId,
    user: UserId,
    logged_in: bool,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        inbox_members::table.filter(
            inbox_members::inbox_id
                .eq(inbox.get())
                .and(inbox_members::user_id.eq(user.get())),
        ),
    )
    .set(inbox_members::logged_in.eq(logged_in))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The members who take new conversations now: logged in to the inbox's queue, active,
/// not away; with the open conversations of this inbox each holds.
pub fn queue_candidates(
    conn: &mut DbConnection,
    inbox: &Inbox,
) -> Result<Vec<domain::routing::Candidate>, StoreError> {
    let inbox = inbox.id;
    use crate::schema::{conversations, users};
    let members: Vec<i64> = inbox_members::table
        .inner_join(users::table.on(users::id.eq(inbox_members::user_id)))
        .filter(inbox_members::inbox_id.eq(inbox.get()))
        .filter(inbox_members::logged_in.eq(true))
        .filter(users::active.eq(true))
        .filter(users::status.ne(domain::UserStatus::Away.as_str()))
        .order(inbox_members::user_id)
        .select(inbox_members::user_id)
        .load(conn)?;
    let loads: Vec<(Option<i64>, i64)> = conversations::table
        .filter(conversations::inbox_id.eq(inbox.get()))
        .filter(conversations::status.eq("open"))
        .filter(conversations::assignee_id.eq_any(&members))
        .group_by(conversations::assignee_id)
        .select((conversations::assignee_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(members
        .into_iter()
        .map(|id| domain::routing::Candidate {
            user_id: UserId(id),
            open_assigned: loads
                .iter()
                .find(|(user, _)| *user == Some(id))
                .map_or(0, |(_, count)| *count),
        })
        .collect())
}
