//! Inboxes, their settings and members.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use domain::error::Validator;
use domain::{
    Actor, DomainError, Inbox as InboxModel, InboxId, InboxKind, InboxSettings, UserId, policy,
    validate,
};
use openapi::{
    CreateInbox, Inbox, InboxMember, InboxMemberPage, InboxPage, PageQuery, Problem, UpdateInbox,
};
use persistence::DbConnection;
use persistence::repo::{inboxes, users};

use crate::auth::Caller;
use crate::body::Json;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{db, paging};

/// The inbox if the actor may see it, and whether they are a member of it.
pub(crate) fn visible_inbox(
    conn: &mut DbConnection,
    actor: &Actor,
    id: InboxId,
) -> Result<(InboxModel, bool), ApiError> {
    let inbox = inboxes::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    let is_member = inboxes::is_member(conn, &inbox, actor.user_id)?;
    policy::may_see_inbox(actor, &inbox, is_member)?;
    Ok((inbox, is_member))
}

/// The inboxes the caller works in (admins: all of the organization's).
#[utoipa::path(
    tag = "inboxes",
    operation_id = "list_inboxes",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = InboxPage))
)]
#[get("/v1/inboxes")]
pub async fn list_inboxes(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<InboxPage>, ApiError> {
    let actor = caller.actor();
    let list = db::read(&state.store, move |conn| {
        Ok(if actor.role == domain::Role::Admin {
            inboxes::list_all(conn, actor.org_id)?
        } else {
            inboxes::list_for_user(conn, actor.org_id, actor.user_id)?
        })
    })
    .await?;
    let (items, next_cursor) = paging::in_memory(
        list,
        |inbox| paging::id_key(inbox.id.get()),
        query.limit,
        query.cursor.as_deref(),
    )?;
    Ok(web::Json(InboxPage {
        items: items.into_iter().map(Inbox::from).collect(),
        next_cursor,
    }))
}

/// Creates an inbox. A private inbox needs its owner, who becomes its only member.
#[utoipa::path(
    tag = "inboxes",
    operation_id = "create_inbox",
    security(("bearer" = [])),
    request_body = CreateInbox,
    responses((status = 201, body = Inbox), (status = 403, body = Problem), (status = 422, body = Problem))
)]
#[post("/v1/inboxes")]
pub async fn create_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateInbox>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    policy::may_create_inbox(&actor)?;
    let body = body.into_inner();
    let defaults = InboxSettings::default();
    let kind = body.kind.map_or(defaults.kind, InboxKind::from);
    let mut checks = Validator::new();
    let name = checks.check(validate::text(
        "name",
        &body.name,
        domain::validate::limits::NAME,
    ));
    let limit = checks.check(validate::auto_assign_limit(
        "auto_assign_limit",
        body.auto_assign_limit,
    ));
    match (kind, body.owner_id) {
        (InboxKind::Private, None) => {
            checks.check::<()>(Err(domain::FieldError::new(
                "owner_id",
                "a private inbox needs its owner",
            )));
        }
        (InboxKind::Shared, Some(_)) => {
            checks.check::<()>(Err(domain::FieldError::new(
                "owner_id",
                "only private inboxes have an owner",
            )));
        }
        _ => {}
    }
    checks.finish()?;
    let settings = InboxSettings {
        kind,
        owner_id: body.owner_id.map(UserId),
        assignment_mode: body.assignment_mode.unwrap_or(defaults.assignment_mode),
        agent_visibility: body
            .agent_visibility
            .map_or(defaults.agent_visibility, Into::into),
        allow_move: body.allow_move.unwrap_or(defaults.allow_move),
        auto_assign: body.auto_assign.unwrap_or(defaults.auto_assign),
        auto_assign_limit: limit.flatten(),
    };
    let name = name.unwrap_or_default();
    let inbox = db::write(&state.store, move |conn| {
        let owner = match settings.owner_id {
            Some(owner) => Some(users::get(conn, actor.org_id, owner)?.ok_or_else(|| {
                DomainError::invalid("owner_id", "no such user in this organization")
            })?),
            None => None,
        };
        let inbox = inboxes::insert(conn, actor.org_id, &name, &settings)?;
        if let Some(owner) = &owner {
            inboxes::add_member(conn, &inbox, owner)?;
        }
        Ok(inbox)
    })
    .await?;
    Ok(HttpResponse::Created().json(Inbox::from(inbox)))
}

#[utoipa::path(
    tag = "inboxes",
    operation_id = "get_inbox",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Inbox), (status = 404, body = Problem))
)]
#[get("/v1/inboxes/{id}")]
pub async fn get_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Inbox>, ApiError> {
    let (actor, id) = (caller.actor(), InboxId(path.into_inner()));
    let (inbox, _) = db::read(&state.store, move |conn| visible_inbox(conn, &actor, id)).await?;
    Ok(web::Json(inbox.into()))
}

/// Changes an inbox's name and settings (admins, and managers of the inbox).
#[utoipa::path(
    tag = "inboxes",
    operation_id = "update_inbox",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateInbox,
    responses((status = 200, body = Inbox), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[patch("/v1/inboxes/{id}")]
pub async fn update_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateInbox>,
) -> Result<web::Json<Inbox>, ApiError> {
    let body = body.into_inner();
    let mut checks = Validator::new();
    let name = body.name.as_deref().and_then(|name| {
        checks.check(validate::text("name", name, domain::validate::limits::NAME))
    });
    let limit = match body.auto_assign_limit {
        Some(limit) => checks.check(validate::auto_assign_limit("auto_assign_limit", limit)),
        None => None,
    };
    checks.finish()?;
    let (actor, id) = (caller.actor(), InboxId(path.into_inner()));
    let inbox = db::write(&state.store, move |conn| {
        let (inbox, is_member) = visible_inbox(conn, &actor, id)?;
        policy::may_update_inbox(&actor, &inbox, is_member)?;
        let current = inbox.settings;
        let settings = InboxSettings {
            assignment_mode: body.assignment_mode.unwrap_or(current.assignment_mode),
            agent_visibility: body
                .agent_visibility
                .map_or(current.agent_visibility, Into::into),
            allow_move: body.allow_move.unwrap_or(current.allow_move),
            auto_assign: body.auto_assign.unwrap_or(current.auto_assign),
            auto_assign_limit: if body.auto_assign_limit.is_some() {
                limit.flatten()
            } else {
                current.auto_assign_limit
            },
            ..current
        };
        let name = name.unwrap_or(inbox.name);
        inboxes::update(conn, actor.org_id, id, &name, &settings)?.ok_or_else(ApiError::not_found)
    })
    .await?;
    Ok(web::Json(inbox.into()))
}

fn member_page(
    conn: &mut DbConnection,
    actor: &Actor,
    inbox: &InboxModel,
) -> Result<Vec<InboxMember>, ApiError> {
    let members = inboxes::members(conn, inbox)?;
    let ids: Vec<UserId> = members.iter().map(|member| member.user_id).collect();
    let people = users::get_many(conn, actor.org_id, &ids)?;
    Ok(members
        .into_iter()
        .filter_map(|member| {
            let user = people.iter().find(|user| user.id == member.user_id)?;
            Some(InboxMember {
                user_id: user.id.get(),
                name: user.name.clone(),
                email: user.email.clone(),
                role: user.role.into(),
                logged_in: member.logged_in,
            })
        })
        .collect())
}

/// The inbox's members and whether each is logged in to its queue.
#[utoipa::path(
    tag = "inboxes",
    operation_id = "list_inbox_members",
    security(("bearer" = [])),
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = InboxMemberPage), (status = 404, body = Problem))
)]
#[get("/v1/inboxes/{id}/members")]
pub async fn list_inbox_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<InboxMemberPage>, ApiError> {
    let (actor, id) = (caller.actor(), InboxId(path.into_inner()));
    let items = db::read(&state.store, move |conn| {
        let (inbox, _) = visible_inbox(conn, &actor, id)?;
        member_page(conn, &actor, &inbox)
    })
    .await?;
    let (items, next_cursor) = paging::in_memory(
        items,
        |member| paging::id_key(member.user_id),
        query.limit,
        query.cursor.as_deref(),
    )?;
    Ok(web::Json(InboxMemberPage { items, next_cursor }))
}

/// Makes a user a member of the inbox (idempotent); they start logged in to its queue.
#[utoipa::path(
    tag = "inboxes",
    operation_id = "add_inbox_member",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = InboxMember), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[put("/v1/inboxes/{id}/members/{user_id}")]
pub async fn add_inbox_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<web::Json<InboxMember>, ApiError> {
    let (inbox_id, user_id) = path.into_inner();
    let (actor, inbox_id, user_id) = (caller.actor(), InboxId(inbox_id), UserId(user_id));
    let member = db::write(&state.store, move |conn| {
        let (inbox, _) = visible_inbox(conn, &actor, inbox_id)?;
        let user = users::get(conn, actor.org_id, user_id)?.ok_or_else(ApiError::not_found)?;
        policy::may_add_inbox_member(&actor, &inbox, &user)?;
        inboxes::add_member(conn, &inbox, &user)?;
        member_page(conn, &actor, &inbox)?
            .into_iter()
            .find(|member| member.user_id == user_id.get())
            .ok_or_else(ApiError::not_found)
    })
    .await?;
    Ok(web::Json(member))
}

/// Removes a user from the inbox (idempotent).
#[utoipa::path(
    tag = "inboxes",
    operation_id = "remove_inbox_member",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[delete("/v1/inboxes/{id}/members/{user_id}")]
pub async fn remove_inbox_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (inbox_id, user_id) = path.into_inner();
    let (actor, inbox_id, user_id) = (caller.actor(), InboxId(inbox_id), UserId(user_id));
    db::write(&state.store, move |conn| {
        let (inbox, _) = visible_inbox(conn, &actor, inbox_id)?;
        policy::may_remove_inbox_member(&actor)?;
        let user = users::get(conn, actor.org_id, user_id)?.ok_or_else(ApiError::not_found)?;
        inboxes::remove_member(conn, &inbox, &user)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
