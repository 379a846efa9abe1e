//! Teams: agent groups that conversations can be assigned to.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use domain::{DomainError, OrgId, TeamId, UserId, policy, validate};
use openapi::ErrorCode;
use openapi::{CreateTeam, PageQuery, Problem, Team, TeamPage, UpdateTeam};
use persistence::DbConnection;
use persistence::repo::{teams, users};

use crate::auth::Caller;
use crate::body::Json;
use crate::error::{ApiError, on_conflict};
use crate::state::AppState;
use crate::{db, paging};

fn find_team(conn: &mut DbConnection, org: OrgId, id: TeamId) -> Result<domain::Team, ApiError> {
    teams::get(conn, org, id)?.ok_or_else(ApiError::not_found)
}

/// Lists the organization's teams with their members.
#[utoipa::path(
    tag = "teams",
    operation_id = "list_teams",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = TeamPage), (status = 403, body = Problem))
)]
#[get("/v1/teams")]
pub async fn list_teams(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<TeamPage>, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let limit = paging::limit(query.limit)?;
    let after = paging::after_id(query.cursor.as_deref())?;
    let org = caller.org();
    let page = db::read(&state.store, move |conn| {
        Ok(teams::list(conn, org, after, limit)?)
    })
    .await?;
    let next_cursor =
        paging::next_id_cursor(page.has_more, page.items.last().map(|team| team.id.get()));
    Ok(web::Json(TeamPage {
        items: page.items.into_iter().map(Team::from).collect(),
        next_cursor,
    }))
}

/// Creates a team, optionally with its first members.
#[utoipa::path(
    tag = "teams",
    operation_id = "create_team",
    security(("bearer" = [])),
    request_body = CreateTeam,
    responses(
        (status = 201, body = Team),
        (status = 403, body = Problem),
        (status = 409, description = "`duplicate` name", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[post("/v1/teams")]
pub async fn create_team(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let CreateTeam { name, member_ids } = body.into_inner();
    let name = validate::text("name", &name, domain::validate::limits::NAME)?;
    let org = caller.org();
    let team = db::write(&state.store, move |conn| {
        let wanted: Vec<UserId> = member_ids.iter().copied().map(UserId).collect();
        let found = users::get_many(conn, org, &wanted)?;
        if let Some(missing) = wanted
            .iter()
            .find(|id| !found.iter().any(|user| user.id == **id))
        {
            return Err(DomainError::invalid(
                "member_ids",
                &format!("no user {missing} in this organization"),
            )
            .into());
        }
        let team = teams::insert(conn, org, &name).map_err(on_conflict(
            ErrorCode::Duplicate,
            "a team with this name already exists",
        ))?;
        for user in &found {
            teams::add_member(conn, &team, user)?;
        }
        find_team(conn, org, team.id)
    })
    .await?;
    Ok(HttpResponse::Created().json(Team::from(team)))
}

#[utoipa::path(
    tag = "teams",
    operation_id = "get_team",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Team), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[get("/v1/teams/{id}")]
pub async fn get_team(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Team>, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let (org, id) = (caller.org(), TeamId(path.into_inner()));
    let team = db::read(&state.store, move |conn| find_team(conn, org, id)).await?;
    Ok(web::Json(team.into()))
}

#[utoipa::path(
    tag = "teams",
    operation_id = "update_team",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateTeam,
    responses(
        (status = 200, body = Team),
        (status = 403, description = "`forbidden`: only admins and managers manage teams", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate` name", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[patch("/v1/teams/{id}")]
pub async fn update_team(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateTeam>,
) -> Result<web::Json<Team>, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let name = body
        .into_inner()
        .name
        .map(|name| validate::text("name", &name, domain::validate::limits::NAME))
        .transpose()?;
    let (org, id) = (caller.org(), TeamId(path.into_inner()));
    let team = db::write(&state.store, move |conn| match name {
        Some(name) => teams::rename(conn, org, id, &name)
            .map_err(on_conflict(
                ErrorCode::Duplicate,
                "a team with this name already exists",
            ))?
            .ok_or_else(ApiError::not_found),
        None => find_team(conn, org, id),
    })
    .await?;
    Ok(web::Json(team.into()))
}

/// Deletes a team; conversations assigned to it keep their agent and lose the team.
#[utoipa::path(
    tag = "teams",
    operation_id = "delete_team",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[delete("/v1/teams/{id}")]
pub async fn delete_team(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let (org, id) = (caller.org(), TeamId(path.into_inner()));
    db::write(&state.store, move |conn| {
        if teams::delete(conn, org, id)? {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a user to the team (idempotent).
#[utoipa::path(
    tag = "teams",
    operation_id = "add_team_member",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = Team), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[put("/v1/teams/{id}/members/{user_id}")]
pub async fn add_team_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<web::Json<Team>, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let (team_id, user_id) = path.into_inner();
    let (org, team_id, user_id) = (caller.org(), TeamId(team_id), UserId(user_id));
    let team = db::write(&state.store, move |conn| {
        let team = find_team(conn, org, team_id)?;
        let user = users::get(conn, org, user_id)?.ok_or_else(ApiError::not_found)?;
        teams::add_member(conn, &team, &user)?;
        find_team(conn, org, team_id)
    })
    .await?;
    Ok(web::Json(team.into()))
}

/// Removes a user from the team (idempotent).
#[utoipa::path(
    tag = "teams",
    operation_id = "remove_team_member",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = Team), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[delete("/v1/teams/{id}/members/{user_id}")]
pub async fn remove_team_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<web::Json<Team>, ApiError> {
    policy::may_manage_teams(&caller.actor())?;
    let (team_id, user_id) = path.into_inner();
    let (org, team_id, user_id) = (caller.org(), TeamId(team_id), UserId(user_id));
    let team = db::write(&state.store, move |conn| {
        let team = find_team(conn, org, team_id)?;
        let user = users::get(conn, org, user_id)?.ok_or_else(ApiError::not_found)?;
        teams::remove_member(conn, &team, &user)?;
        find_team(conn, org, team_id)
    })
    .await?;
    Ok(web::Json(team.into()))
}
