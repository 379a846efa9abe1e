//! Tags: the organization's labels for conversations.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use domain::{TagId, policy, validate};
use openapi::ErrorCode;
use openapi::{CreateTag, PageQuery, Problem, Tag, TagPage, UpdateTag};
use persistence::repo::tags;

use crate::auth::Caller;
use crate::body::Json;
use crate::error::{ApiError, on_conflict};
use crate::state::AppState;
use crate::{db, paging};

const DEFAULT_COLOR: &str = "#8a8f98";
const TAKEN: &str = "a tag with this name already exists";

/// Every tag of the organization, by name.
#[utoipa::path(
    tag = "tags",
    operation_id = "list_tags",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = TagPage))
)]
#[get("/v1/tags")]
pub async fn list_tags(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<TagPage>, ApiError> {
    let org = caller.org();
    let list = db::read(&state.store, move |conn| Ok(tags::list(conn, org)?)).await?;
    // By name, case-insensitively (ties by exact spelling), as the list is shown.
    let by_name = |tag: &domain::Tag| format!("{}\u{0}{}", tag.name.to_lowercase(), tag.name);
    let (items, next_cursor) =
        paging::in_memory(list, by_name, query.limit, query.cursor.as_deref())?;
    Ok(web::Json(TagPage {
        items: items.into_iter().map(Tag::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    tag = "tags",
    operation_id = "create_tag",
    security(("bearer" = [])),
    request_body = CreateTag,
    responses(
        (status = 201, body = Tag),
        (status = 403, body = Problem),
        (status = 409, description = "`duplicate` name", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[post("/v1/tags")]
pub async fn create_tag(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    policy::may_manage_tags(&caller.actor())?;
    let body = body.into_inner();
    let mut checks = domain::error::Validator::new();
    let name = checks.check(validate::tag_name("name", &body.name));
    let color = checks.check(validate::color(
        "color",
        body.color.as_deref().unwrap_or(DEFAULT_COLOR),
    ));
    checks.finish()?;
    let (name, color) = (name.unwrap_or_default(), color.unwrap_or_default());
    let org = caller.org();
    let tag = db::write(&state.store, move |conn| {
        tags::insert(conn, org, &name, &color).map_err(on_conflict(ErrorCode::Duplicate, TAKEN))
    })
    .await?;
    Ok(HttpResponse::Created().json(Tag::from(tag)))
}

/// Renames or recolors a tag. Conversations name their tags through it, so every conversation
/// shows the new name at once, and `tag=` filters by it.
#[utoipa::path(
    tag = "tags",
    operation_id = "update_tag",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateTag,
    responses(
        (status = 200, body = Tag),
        (status = 403, description = "`forbidden`: agents", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`duplicate`: another tag has this name", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[patch("/v1/tags/{id}")]
pub async fn update_tag(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateTag>,
) -> Result<web::Json<Tag>, ApiError> {
    policy::may_manage_tags(&caller.actor())?;
    let body = body.into_inner();
    let mut checks = domain::error::Validator::new();
    let name = body
        .name
        .as_deref()
        .and_then(|value| checks.check(validate::tag_name("name", value)));
    let color = body
        .color
        .as_deref()
        .and_then(|value| checks.check(validate::color("color", value)));
    checks.finish()?;
    let (org, id) = (caller.org(), TagId(path.into_inner()));
    let tag = db::write(&state.store, move |conn| {
        let changes = tags::TagChanges {
            name: name.as_deref(),
            color: color.as_deref(),
        };
        tags::update(conn, org, id, &changes)
            .map_err(on_conflict(ErrorCode::Duplicate, TAKEN))?
            .ok_or_else(ApiError::not_found)
    })
    .await?;
    Ok(web::Json(Tag::from(tag)))
}

/// Deletes a tag; it disappears from every conversation that had it.
#[utoipa::path(
    tag = "tags",
    operation_id = "delete_tag",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: agents", body = Problem),
        (status = 404, body = Problem),
    )
)]
#[delete("/v1/tags/{id}")]
pub async fn delete_tag(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    policy::may_manage_tags(&caller.actor())?;
    let (org, id) = (caller.org(), TagId(path.into_inner()));
    db::write(&state.store, move |conn| {
        if tags::delete(conn, org, id)? {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
