//! The user directory: admins create and change users; managers may list them.

use actix_web::{HttpResponse, get, patch, post, web};
use domain::error::Validator;
use domain::{UserId, policy, validate};
use openapi::ErrorCode;
use openapi::{CreateUser, PageQuery, Problem, UpdateUser, User, UserPage};
use persistence::repo::users::{self, NewUser, UserChanges};

use crate::auth::{Caller, hash_password};
use crate::body::Json;
use crate::error::{ApiError, on_conflict};
use crate::state::AppState;
use crate::{db, paging};

/// Lists the organization's users, oldest first.
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = UserPage), (status = 403, description = "Agents may not list users", body = Problem))
)]
#[get("/v1/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    policy::may_list_users(&caller.actor())?;
    let limit = paging::limit(query.limit)?;
    let after = paging::after_id(query.cursor.as_deref())?;
    let org = caller.org();
    let page = db::read(&state.store, move |conn| {
        Ok(users::list(conn, org, after, limit)?)
    })
    .await?;
    let next_cursor =
        paging::next_id_cursor(page.has_more, page.items.last().map(|user| user.id.get()));
    Ok(web::Json(UserPage {
        items: page.items.into_iter().map(User::from).collect(),
        next_cursor,
    }))
}

/// Creates a user in the caller's organization.
#[utoipa::path(
    tag = "users",
    operation_id = "create_user",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = User),
        (status = 403, body = Problem),
        (status = 409, description = "`email_taken`", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    )
)]
#[post("/v1/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    policy::may_manage_users(&caller.actor())?;
    let body = body.into_inner();
    let mut checks = Validator::new();
    let email = checks.check(validate::email("email", &body.email));
    let name = checks.check(validate::text(
        "name",
        &body.name,
        domain::validate::limits::NAME,
    ));
    let password = checks.check(validate::password("password", &body.password));
    checks.finish()?;
    let (Some(email), Some(name), Some(password)) = (email, name, password) else {
        return Err(ApiError::Internal("validator passed without values".into()));
    };
    let password_hash = web::block(move || hash_password(&password)).await??;
    let org = caller.org();
    let user = db::write(&state.store, move |conn| {
        let new = NewUser {
            org_id: org,
            email: &email,
            name: &name,
            role: body.role.into(),
            password_hash: &password_hash,
        };
        users::insert(conn, new).map_err(on_conflict(
            ErrorCode::EmailTaken,
            "a user of this organization has this e-mail",
        ))
    })
    .await?;
    Ok(HttpResponse::Created().json(User::from(user)))
}

/// One user of the organization.
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[get("/v1/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<User>, ApiError> {
    policy::may_manage_users(&caller.actor())?;
    let (org, id) = (caller.org(), UserId(path.into_inner()));
    let user = db::read(&state.store, move |conn| {
        users::get(conn, org, id)?.ok_or_else(ApiError::not_found)
    })
    .await?;
    Ok(web::Json(user.into()))
}

/// Changes a user's name, role, password or access. Deactivating signs them out everywhere
/// at once; so does a new password.
#[utoipa::path(
    tag = "users",
    operation_id = "update_user",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateUser,
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "`validation_failed` (an admin cannot deactivate or demote themselves)", body = Problem),
    )
)]
#[patch("/v1/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<UpdateUser>,
) -> Result<web::Json<User>, ApiError> {
    policy::may_manage_users(&caller.actor())?;
    let body = body.into_inner();
    let mut checks = Validator::new();
    let name = body.name.as_deref().and_then(|name| {
        checks.check(validate::text("name", name, domain::validate::limits::NAME))
    });
    let password = body
        .password
        .as_deref()
        .and_then(|password| checks.check(validate::password("password", password)));
    checks.finish()?;
    let password_hash = match password {
        Some(password) => Some(web::block(move || hash_password(&password)).await??),
        None => None,
    };
    let actor = caller.actor();
    let id = UserId(path.into_inner());
    let user = db::write(&state.store, move |conn| {
        let target = users::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
        let role = body.role.map(domain::Role::from);
        policy::may_change_user(&actor, &target, role, body.active)?;
        let signs_out = body.active == Some(false) || password_hash.is_some();
        let changes = UserChanges {
            name,
            role,
            active: body.active,
            password_hash,
            ..Default::default()
        };
        let user =
            users::update(conn, actor.org_id, id, changes)?.ok_or_else(ApiError::not_found)?;
        if signs_out {
            users::revoke_user_refresh_tokens(conn, id)?;
        }
        Ok((user, signs_out))
    })
    .await?;
    let (user, signs_out) = user;
    crate::auth::user_changed(&state, &user, signs_out);
    Ok(web::Json(user.into()))
}
