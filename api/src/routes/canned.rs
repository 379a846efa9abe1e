//! Canned responses: an inbox's saved replies.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use domain::error::Validator;
use domain::{Actor, CannedResponseId, InboxId, policy, validate};
use openapi::ErrorCode;
use openapi::{
    CannedQuery, CannedResponse, CannedResponsePage, CreateCannedResponse, Problem,
    UpdateCannedResponse,
};
use persistence::DbConnection;
use persistence::repo::canned;

use super::inboxes::visible_inbox;
use crate::auth::Caller;
use crate::body::Json;
use crate::error::{ApiError, on_conflict};
use crate::state::AppState;
use crate::{db, paging};

const TAKEN: &str = "this inbox already has a canned response with this shortcut";

/// The canned response, if the actor may manage its inbox's canned responses.
fn managed(
    conn: &mut DbConnection,
    actor: &Actor,
    id: CannedResponseId,
) -> Result<domain::CannedResponse, ApiError> {
    let found = canned::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    let (inbox, is_member) = visible_inbox(conn, actor, found.inbox_id)?;
    policy::may_manage_canned_responses(actor, &inbox, is_member)?;
    Ok(found)
}

/// The inbox's canned responses; `?q=` searches shortcuts (prefix) and titles.
#[utoipa::path(
    tag = "canned_responses",
    operation_id = "list_canned_responses",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id"), CannedQuery),
    responses((status = 200, body = CannedResponsePage), (status = 404, body = Problem))
)]
#[get("/v1/inboxes/{id}/canned-responses")]
pub async fn list_canned_responses(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<CannedQuery>,
) -> Result<web::Json<CannedResponsePage>, ApiError> {
    let (actor, id) = (caller.actor(), InboxId(path.into_inner()));
    let query = query.into_inner();
    let needle = query
        .q
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    let list = db::read(&state.store, move |conn| {
        visible_inbox(conn, &actor, id)?;
        Ok(canned::list(conn, id, needle.as_deref())?)
    })
    .await?;
    let (items, next_cursor) = paging::in_memory(
        list,
        |canned| canned.shortcut.clone(),
        query.limit,
        query.cursor.as_deref(),
    )?;
    Ok(web::Json(CannedResponsePage {
        items: items.into_iter().map(CannedResponse::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    tag = "canned_responses",
    operation_id = "create_canned_response",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Inbox id")),
    request_body = CreateCannedResponse,
    responses(
        (status = 201, body = CannedResponse),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate` shortcut", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[post("/v1/inboxes/{id}/canned-responses")]
pub async fn create_canned_response(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<CreateCannedResponse>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut checks = Validator::new();
    let shortcut = checks.check(validate::shortcut("shortcut", &body.shortcut));
    let title = checks.check(validate::text(
        "title",
        &body.title,
        domain::validate::limits::NAME,
    ));
    let text = checks.check(validate::text(
        "body",
        &body.body,
        domain::validate::limits::BODY,
    ));
    checks.finish()?;
    let (shortcut, title, text) = (
        shortcut.unwrap_or_default(),
        title.unwrap_or_default(),
        text.unwrap_or_default(),
    );
    let (actor, inbox_id) = (caller.actor(), InboxId(path.into_inner()));
    let created = db::write(&state.store, move |conn| {
        let (inbox, is_member) = visible_inbox(conn, &actor, inbox_id)?;
        policy::may_manage_canned_responses(&actor, &inbox, is_member)?;
        canned::insert(conn, actor.org_id, inbox_id, &shortcut, &title, &text)
            .map_err(on_conflict(ErrorCode::Duplicate, TAKEN))
    })
    .await?;
    Ok(HttpResponse::Created().json(CannedResponse::from(created)))
}

#[utoipa::path(
    tag = "canned_responses",
    operation_id = "update_canned_response",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateCannedResponse,
    responses(
        (status = 200, body = CannedResponse),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    )
)]
#[patch("/v1/canned-responses/{id}")]
pub async fn update_canned_response(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateCannedResponse>,
) -> Result<web::Json<CannedResponse>, ApiError> {
    let body = body.into_inner();
    let mut checks = Validator::new();
    let shortcut = body
        .shortcut
        .as_deref()
        .and_then(|value| checks.check(validate::shortcut("shortcut", value)));
    let title = body.title.as_deref().and_then(|value| {
        checks.check(validate::text(
            "title",
            value,
            domain::validate::limits::NAME,
        ))
    });
    let text = body.body.as_deref().and_then(|value| {
        checks.check(validate::text(
            "body",
            value,
            domain::validate::limits::BODY,
        ))
    });
    checks.finish()?;
    let (actor, id) = (caller.actor(), CannedResponseId(path.into_inner()));
    let updated = db::write(&state.store, move |conn| {
        let current = managed(conn, &actor, id)?;
        let shortcut = shortcut.unwrap_or(current.shortcut);
        let title = title.unwrap_or(current.title);
        let text = text.unwrap_or(current.body);
        canned::update(conn, actor.org_id, id, &shortcut, &title, &text)
            .map_err(on_conflict(ErrorCode::Duplicate, TAKEN))
    })
    .await?;
    Ok(web::Json(updated.into()))
}

#[utoipa::path(
    tag = "canned_responses",
    operation_id = "delete_canned_response",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[delete("/v1/canned-responses/{id}")]
pub async fn delete_canned_response(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), CannedResponseId(path.into_inner()));
    db::write(&state.store, move |conn| {
        managed(conn, &actor, id)?;
        Ok(canned::delete(conn, actor.org_id, id)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
