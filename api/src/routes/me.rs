//! The caller's own profile, queue log-ins and status.

use actix_web::{get, put, web};
use domain::{InboxId, validate};
use openapi::{Me, Membership, Problem, QueueRequest, StatusRequest, User};
use persistence::repo::{inboxes, teams, users};

use crate::auth::Caller;
use crate::body::Json;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in user, with their inbox memberships and teams.
#[utoipa::path(
    tag = "me",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem))
)]
#[get("/v1/me")]
pub async fn get_me(state: web::Data<AppState>, caller: Caller) -> Result<web::Json<Me>, ApiError> {
    let user = caller.user;
    let me = db::read(&state.store, move |conn| {
        let memberships = inboxes::memberships_of(conn, user.org_id, user.id)?
            .into_iter()
            .map(|member| Membership {
                inbox_id: member.inbox_id.get(),
                logged_in: member.logged_in,
            })
            .collect();
        let teams = teams::of_user(conn, user.org_id, user.id)?
            .into_iter()
            .map(|team| team.get())
            .collect();
        Ok(Me {
            user: user.into(),
            memberships,
            teams,
        })
    })
    .await?;
    Ok(web::Json(me))
}

/// Logs the caller in or out of an inbox's queue (whether new conversations come to them).
#[utoipa::path(
    tag = "me",
    operation_id = "set_queue_login",
    security(("bearer" = [])),
    params(("inbox_id" = i64, Path, description = "An inbox the caller belongs to")),
    request_body = QueueRequest,
    responses((status = 200, body = Membership), (status = 404, description = "Not a member", body = Problem))
)]
#[put("/v1/me/queues/{inbox_id}")]
pub async fn set_queue_login(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<QueueRequest>,
) -> Result<web::Json<Membership>, ApiError> {
    let inbox_id = InboxId(path.into_inner());
    let logged_in = body.logged_in;
    let org = caller.org();
    let user = caller.user.id;
    db::write(&state.store, move |conn| {
        inboxes::get(conn, org, inbox_id)?.ok_or_else(ApiError::not_found)?;
        if inboxes::set_logged_in(conn, inbox_id, user, logged_in)? {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    })
    .await?;
    Ok(web::Json(Membership {
        inbox_id: inbox_id.get(),
        logged_in,
    }))
}

/// Sets the caller's availability and status message.
#[utoipa::path(
    tag = "me",
    operation_id = "set_status",
    security(("bearer" = [])),
    request_body = StatusRequest,
    responses((status = 200, body = User), (status = 422, description = "`validation_failed`", body = Problem))
)]
#[put("/v1/me/status")]
pub async fn set_status(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<StatusRequest>,
) -> Result<web::Json<User>, ApiError> {
    let StatusRequest { status, message } = body.into_inner();
    let message = match message.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(validate::optional_text("message", text, 140)?),
    };
    let org = caller.org();
    let id = caller.user.id;
    let user = db::write(&state.store, move |conn| {
        let changes = users::UserChanges {
            status: Some(status.into()),
            status_message: Some(message),
            ..Default::default()
        };
        users::update(conn, org, id, changes)?.ok_or_else(ApiError::not_found)
    })
    .await?;
    // Connected users show it to their organization within a second (presence); the
    // message also makes every instance forget the user's cached sign-ins (and status).
    state.sign_ins.forget(user.id);
    crate::live::publish_presence(&state, &user);
    Ok(web::Json(user.into()))
}
