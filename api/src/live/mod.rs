//! Realtime over WebSocket (`GET /v1/ws`) and its REST twin (`GET /v1/events`). The hub
//! (in the realtime crate) fans events out; this module decides who may see them
//! ([`audience`]), runs each socket's session ([`session`]), answers the REST replay
//! ([`replay`]) and keeps the log within its retention window ([`maintenance`]).

pub mod audience;
pub mod maintenance;
pub mod presence;
pub mod replay;
pub mod session;
pub mod visitor;

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use domain::{ConversationId, InboxId};
use persistence::repo::events;
use realtime::BusEvent;

pub use audience::DbAudience;
pub use maintenance::{start_folding, start_retention};
pub use presence::get_presence;
pub use replay::{EventFrame, EventPage, EventQuery, list_events};

use crate::auth::{authenticate, bearer_token};
use crate::error::ApiError;
use crate::state::AppState;

/// Close codes clients act on (documented in the API reference and the README).
/// Too slow to keep up: reconnect and resume.
pub const CLOSE_TOO_SLOW: u16 = 4000;
/// A malformed, unknown or too large client frame.
pub const CLOSE_BAD_FRAME: u16 = 4400;
/// The resume cursor is past the retention window: reload the lists.
pub const CLOSE_CURSOR_EXPIRED: u16 = 4409;
/// More `resume` frames than allowed per second: reconnect later, with backoff.
pub const CLOSE_TOO_MANY_RESUMES: u16 = 4429;
/// The user was deactivated: do not reconnect (sign-in answers `account_disabled`).
pub const CLOSE_ACCOUNT_DISABLED: u16 = 4401;
/// The sign-in the socket was opened with ended (sign-out, a revoked session, a new
/// password): refreshing fails too, so sign in again.
pub const CLOSE_SIGNED_OUT: u16 = 4402;
/// The replay could not be read (database trouble): reconnect and resume, with backoff.
pub const CLOSE_REPLAY_FAILED: u16 = 1011;
/// Largest client frame, in bytes.
pub const MAX_FRAME: usize = 16 * 1024;

pub fn stored_to_bus(event: events::StoredEvent) -> BusEvent {
    BusEvent {
        org_id: event.org_id.get(),
        seq: event.seq,
        event_type: event.event_type,
        inbox_id: event.inbox_id.map(InboxId::get),
        conversation_id: event.conversation_id.map(ConversationId::get),
        payload: event.payload,
        at: openapi::millis::format(&event.created_at),
        from_user: None,
        origin: 0,
        rendered: Default::default(),
    }
}

/// Upgrades to a WebSocket. The token comes as `Authorization: Bearer` or `?access_token=`;
/// a bad one is refused before the upgrade.
#[utoipa::path(
    tag = "realtime",
    operation_id = "connect_websocket",
    params(("access_token" = Option<String>, Query, description = "For browsers, which cannot set headers on a WebSocket")),
    responses(
        (status = 101, description = "Switching protocols. Server frames: `{id, type, at, data}` (typing, viewing and `presence.updated` have no `id`). Client frames: `resume {after}` (at most 5 per second), `typing {conversation_id}`, `viewing {conversation_id}`, `ping` (answered `pong`). `presence.updated` frames (`data: {users: [{user_id, status}]}`) carry what changed, at most one per socket per second; load `GET /v1/presence` after connecting. Close codes: 4000 too slow (reconnect and resume), 4400 bad frame, 4401 account disabled (do not reconnect), 4402 signed out (sign in again), 4409 cursor expired (reload your lists), 4429 too many `resume` frames, 1011 the replay failed (resume again), 1001 server going away. Clients reconnect with exponential backoff and jitter (e.g. 0.5 s doubling to 30 s, each wait randomized by ±50 %), resuming from the last event id they hold."),
        (status = 401, description = "`unauthenticated` or `account_disabled`", body = openapi::Problem),
    )
)]
#[get("/v1/ws")]
pub async fn connect_websocket(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&request)
        .or_else(|| {
            web::Query::<HashMap<String, String>>::from_query(request.query_string())
                .ok()
                .and_then(|query| query.get("access_token").cloned())
        })
        .ok_or(ApiError::Unauthenticated(
            "send Authorization: Bearer <access_token> or ?access_token=",
        ))?;
    let caller = authenticate(&state, &token).await?;
    let (response, session, stream) = actix_ws::handle(&request, body)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let availability = presence::availability(caller.user.status);
    actix_web::rt::spawn(session::run(
        state.into_inner(),
        caller.actor(),
        crate::auth::sign_in_key(&caller.sign_in),
        availability,
        session,
        stream,
    ));
    Ok(response)
}

/// The user chose a status: every instance shows it to their organization's sockets within
/// a second (while the user has a socket open; without one they are offline).
pub fn publish_presence(state: &AppState, user: &domain::User) {
    state.hub.set_status(
        user.org_id.get(),
        user.id.get(),
        presence::availability(user.status),
    );
}

fn ephemeral(
    org: i64,
    event_type: realtime::EventType,
    conversation: Option<i64>,
    payload: String,
    from_user: Option<i64>,
) -> BusEvent {
    BusEvent {
        org_id: org,
        seq: 0,
        event_type,
        inbox_id: None,
        conversation_id: conversation,
        payload,
        at: openapi::millis::format(&persistence::now()),
        from_user,
        origin: 0,
        rendered: Default::default(),
    }
}
