//! Tags: the organization's labels for conversations.

use actix_web::{HttpResponse, get, post, web};
use domain::{policy, validate};
use openapi::{CreateTag, PageQuery, Problem, Tag, TagPage};
use persistence::repo::tags;

use crate::auth::Caller;
use crate::error::{ApiError, on_conflict};
use crate::state::AppState;
use crate::{db, paging};

const DEFAULT_COLOR: &str = "#8a8f98";

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
    body: web::Json<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    policy::may_create_tag(&caller.actor())?;
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
        tags::insert(conn, org, &name, &color).map_err(on_conflict(
            "duplicate",
            "a tag with this name already exists",
        ))
    })
    .await?;
    Ok(HttpResponse::Created().json(Tag::from(tag)))
}
