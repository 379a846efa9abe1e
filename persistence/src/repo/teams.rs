//! Teams (agent groups) and their members.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use domain::{OrgId, Team, TeamId, User, UserId};

use super::Page;
use crate::schema::{team_members, teams};
use crate::{DbConnection, StoreError, from_db, now, to_db};

type TeamRow = (i64, i64, String, NaiveDateTime);
const TEAM_COLUMNS: (teams::id, teams::org_id, teams::name, teams::created_at) =
    (teams::id, teams::org_id, teams::name, teams::created_at);

/// Loads the members of all the given teams in one query.
fn with_members(conn: &mut DbConnection, rows: Vec<TeamRow>) -> Result<Vec<Team>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let members: Vec<(i64, i64)> = team_members::table
        .filter(team_members::team_id.eq_any(&ids))
        .order((team_members::team_id, team_members::user_id))
        .select((team_members::team_id, team_members::user_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, org_id, name, created_at)| Team {
            id: TeamId(id),
            org_id: OrgId(org_id),
            name,
            member_ids: members
                .iter()
                .filter(|(team, _)| *team == id)
                .map(|(_, user)| UserId(*user))
                .collect(),
            created_at: from_db(created_at),
        })
        .collect())
}

pub fn insert(conn: &mut DbConnection, org: OrgId, name: &str) -> Result<Team, StoreError> {
    let row: TeamRow = diesel::insert_into(teams::table)
        .values((
            teams::org_id.eq(org.get()),
            teams::name.eq(name),
            teams::created_at.eq(to_db(now())),
        ))
        .returning(TEAM_COLUMNS)
        .get_result(conn)?;
    Ok(with_members(conn, vec![row])?.remove(0))
}

pub fn get(conn: &mut DbConnection, org: OrgId, id: TeamId) -> Result<Option<Team>, StoreError> {
    let row: Option<TeamRow> = teams::table
        .filter(teams::id.eq(id.get()).and(teams::org_id.eq(org.get())))
        .select(TEAM_COLUMNS)
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Ok(with_members(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

pub fn list(
    conn: &mut DbConnection,
    org: OrgId,
    after: Option<i64>,
    limit: i64,
) -> Result<Page<Team>, StoreError> {
    let rows: Vec<TeamRow> = teams::table
        .filter(
            teams::org_id
                .eq(org.get())
                .and(teams::id.gt(after.unwrap_or(0))),
        )
        .order(teams::id)
        .limit(limit + 1)
        .select(TEAM_COLUMNS)
        .load(conn)?;
    let page = Page::from_overfetch(rows, limit);
    Ok(Page {
        items: with_members(conn, page.items)?,
        has_more: page.has_more,
    })
}

pub fn rename(
    conn: &mut DbConnection,
    org: OrgId,
    id: TeamId,
    name: &str,
) -> Result<Option<Team>, StoreError> {
    let updated = diesel::update(
        teams::table.filter(teams::id.eq(id.get()).and(teams::org_id.eq(org.get()))),
    )
    .set(teams::name.eq(name))
    .execute(conn)?;
    if updated == 0 {
        Ok(None)
    } else {
        get(conn, org, id)
    }
}

/// Deletes the team; its memberships go with it and conversations keep no team.
pub fn delete(conn: &mut DbConnection, org: OrgId, id: TeamId) -> Result<bool, StoreError> {
    let deleted = diesel::delete(
        teams::table.filter(teams::id.eq(id.get()).and(teams::org_id.eq(org.get()))),
    )
    .execute(conn)?;
    Ok(deleted == 1)
}

/// Adds a member; adding one twice is not an error (PUT is idempotent).
/// Adds the user to the team (both as loaded from their organization; a pair from two
/// organizations is refused, whatever the caller checked).
pub fn add_member(conn: &mut DbConnection, team: &Team, user: &User) -> Result<(), StoreError> {
    super::same_org(team.org_id, user.org_id)?;
    let (team, user) = (team.id, user.id);
    insert_if_absent!(
        conn,
        diesel::insert_into(team_members::table).values((
            team_members::team_id.eq(team.get()),
            team_members::user_id.eq(user.get()),
        ))
    )?;
    Ok(())
}

pub fn remove_member(
    conn: &mut DbConnection,
    team: &Team,
    user: &User,
) -> Result<bool, StoreError> {
    super::same_org(team.org_id, user.org_id)?;
    let (team, user) = (team.id, user.id);
    let removed = diesel::delete(
        team_members::table.filter(
            team_members::team_id
                .eq(team.get())
                .and(team_members::user_id.eq(user.get())),
        ),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// The teams of the organization a user belongs to.
pub fn of_user(
    conn: &mut DbConnection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<TeamId>, StoreError> {
    let ids: Vec<i64> = team_members::table
        .filter(team_members::user_id.eq(user.get()))
        .filter(
            team_members::team_id.eq_any(
                teams::table
                    .filter(teams::org_id.eq(org.get()))
                    .select(teams::id),
            ),
        )
        .order(team_members::team_id)
        .select(team_members::team_id)
        .load(conn)?;
    Ok(ids.into_iter().map(TeamId).collect())
}
