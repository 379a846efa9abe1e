//! Internal chats: direct and team chats between colleagues, their messages and read state.
//! Members only: anyone else gets 404, as if the chat did not exist.

use actix_web::{HttpResponse, get, post, web};
use domain::ChatId;
use openapi::{
    Chat, ChatMessage, ChatMessagePage, ChatPage, CreateChat, MessageQuery, PageQuery, Problem,
    SendChatMessage,
};
use persistence::repo::chats::Position;

use crate::auth::Caller;
use crate::body::Json;
use crate::error::ApiError;
use crate::service::{chats, events};
use crate::state::AppState;
use crate::{db, paging};

/// A list position as an opaque cursor: the last chat's activity time and id.
fn encode_position((at, id): Position) -> String {
    paging::encode(&[at.and_utc().timestamp_micros().to_string(), id.to_string()])
}

fn decode_position(cursor: &str) -> Result<Position, ApiError> {
    let bad =
        || ApiError::BadRequest("cursor is not valid; pass next_cursor as it was returned".into());
    match paging::decode(cursor)?.as_slice() {
        [at, id] => {
            let at = at.parse::<i64>().map_err(|_| bad())?;
            let at = chrono::DateTime::from_timestamp_micros(at)
                .ok_or_else(bad)?
                .naive_utc();
            Ok((at, id.parse::<i64>().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// The caller's chats, most recently active first (last message, else creation).
#[utoipa::path(
    tag = "chats",
    operation_id = "list_chats",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of the caller's chats", body = ChatPage), (status = 400, description = "`bad_request`: a bad `limit` or `cursor`", body = Problem), (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem))
)]
#[get("/v1/chats")]
pub async fn list_chats(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ChatPage>, ApiError> {
    let limit = paging::limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_position).transpose()?;
    let actor = caller.actor();
    let (items, next) = db::read(&state.store, move |conn| {
        chats::list(conn, &actor, after, limit)
    })
    .await?;
    Ok(web::Json(ChatPage {
        items,
        next_cursor: next.map(encode_position),
    }))
}

/// Starts a chat with colleagues. A direct chat between the same two people is reused: 200
/// with the existing one, 201 when it is new.
#[utoipa::path(
    tag = "chats",
    operation_id = "create_chat",
    security(("bearer" = [])),
    request_body = CreateChat,
    responses(
        (status = 201, description = "Created", body = Chat),
        (status = 200, description = "The direct chat these two people already share", body = Chat),
        (status = 400, description = "`bad_request`: a body that does not parse", body = Problem),
        (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem),
        (status = 422, description = "`validation_failed`: `member_ids` names nobody besides the caller, more than one other person for a direct chat, more than 100 people in all, or someone who is not an active user of the caller's organization; `name` missing or too long for a team chat, or given for a direct one", body = Problem),
    )
)]
#[post("/v1/chats")]
pub async fn create_chat(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateChat>,
) -> Result<HttpResponse, ApiError> {
    let (user, body) = (caller.user, body.into_inner());
    let (chat, created) =
        db::write(&state.store, move |conn| chats::create(conn, &user, body)).await?;
    Ok(if created {
        HttpResponse::Created().json(chat)
    } else {
        HttpResponse::Ok().json(chat)
    })
}

#[utoipa::path(
    tag = "chats",
    operation_id = "get_chat",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The chat", body = Chat), (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem), (status = 404, description = "`not_found`: unknown, another organization's, or a chat the caller is not in", body = Problem))
)]
#[get("/v1/chats/{id}")]
pub async fn get_chat(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<web::Json<Chat>, ApiError> {
    let (actor, id) = (caller.actor(), ChatId(path.into_inner()));
    let chat = db::read(&state.store, move |conn| chats::one(conn, &actor, id)).await?;
    Ok(web::Json(chat))
}

/// The chat's messages, newest first.
#[utoipa::path(
    tag = "chats",
    operation_id = "list_chat_messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), MessageQuery),
    responses((status = 200, description = "A page of messages, newest first", body = ChatMessagePage), (status = 400, description = "`bad_request`: a bad `limit` or `before`", body = Problem), (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem), (status = 404, description = "`not_found`: unknown, another organization's, or a chat the caller is not in", body = Problem))
)]
#[get("/v1/chats/{id}/messages")]
pub async fn list_chat_messages(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<MessageQuery>,
) -> Result<web::Json<ChatMessagePage>, ApiError> {
    let (actor, id) = (caller.actor(), ChatId(path.into_inner()));
    let limit = paging::limit(query.limit)?;
    let before = paging::after_id(query.before.as_deref())?;
    let page = db::read(&state.store, move |conn| {
        chats::history(conn, &actor, id, before, limit)
    })
    .await?;
    let next_cursor =
        paging::next_id_cursor(page.has_more, page.items.last().map(|message| message.id));
    Ok(web::Json(ChatMessagePage {
        items: page.items,
        next_cursor,
    }))
}

/// Writes in the chat; its members hear `chat.message.created` (`{chat_id, message}`).
#[utoipa::path(
    tag = "chats",
    operation_id = "send_chat_message",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = SendChatMessage,
    responses(
        (status = 201, description = "Sent", body = ChatMessage),
        (status = 400, description = "`bad_request`: a body that does not parse", body = Problem),
        (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem),
        (status = 404, description = "`not_found`: unknown, another organization's, or a chat the caller is not in", body = Problem),
        (status = 422, description = "`validation_failed`: an empty `body` without files, a too long one, or `attachment_ids` naming something other than the caller's own unsent uploads", body = Problem),
    )
)]
#[post("/v1/chats/{id}/messages")]
pub async fn send_chat_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: Json<SendChatMessage>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id, body) = (caller.actor(), ChatId(path.into_inner()), body.into_inner());
    let sent: ChatMessage = events::write(&state, move |conn, outbox| {
        chats::send(conn, &actor, id, body, outbox)
    })
    .await?;
    Ok(HttpResponse::Created().json(sent))
}

/// Marks every message of the chat read for the caller (nobody else's count changes).
#[utoipa::path(
    tag = "chats",
    operation_id = "read_chat",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Read"), (status = 401, description = "`unauthenticated` or `account_disabled`", body = Problem), (status = 404, description = "`not_found`: unknown, another organization's, or a chat the caller is not in", body = Problem))
)]
#[post("/v1/chats/{id}/read")]
pub async fn read_chat(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), ChatId(path.into_inner()));
    db::write(&state.store, move |conn| chats::read(conn, &actor, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
