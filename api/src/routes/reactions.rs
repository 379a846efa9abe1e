//! Reactions to messages, per user.

use actix_web::{delete, put, web};
use domain::{EventType, MessageId};
use openapi::{Message, Problem};
use persistence::repo::{messages, reactions};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::events;
use crate::service::{present, visibility};
use crate::state::AppState;

async fn react(
    state: web::Data<AppState>,
    caller: Caller,
    id: i64,
    emoji: String,
    add: bool,
) -> Result<web::Json<Message>, ApiError> {
    let emoji = domain::validate::emoji("emoji", &emoji)?;
    let (actor, id) = (caller.actor(), MessageId(id));
    let message = events::write(&state, move |conn, outbox| {
        let message = messages::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
        // Reactions change the thread: decided against it as it is at commit, like any change.
        let found = visibility::lock(conn, &actor, message.conversation_id)?;
        if add {
            reactions::add(conn, id, &emoji, actor.user_id)?;
        } else {
            reactions::remove(conn, id, &emoji, actor.user_id)?;
        }
        let presented = present::full_message(conn, message)?;
        outbox.message(
            actor.org_id,
            found.inbox.id,
            EventType::MessageUpdated,
            &presented,
        )?;
        Ok(presented)
    })
    .await?;
    Ok(web::Json(message))
}

/// Reacts to a message with an emoji (idempotent).
#[utoipa::path(
    tag = "conversations",
    operation_id = "add_reaction",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("emoji" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[put("/v1/messages/{id}/reactions/{emoji}")]
pub async fn add_reaction(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Message>, ApiError> {
    let (id, emoji) = path.into_inner();
    react(state, caller, id, emoji, true).await
}

/// Takes the caller's reaction back (idempotent).
#[utoipa::path(
    tag = "conversations",
    operation_id = "remove_reaction",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("emoji" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[delete("/v1/messages/{id}/reactions/{emoji}")]
pub async fn remove_reaction(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Message>, ApiError> {
    let (id, emoji) = path.into_inner();
    react(state, caller, id, emoji, false).await
}
