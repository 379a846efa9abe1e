//! `GET /v1/presence`: the snapshot of who is connected, which a client loads after
//! connecting (then `presence.updated` frames carry the changes). Presence is kept by the
//! hub across instances (see `realtime::presence`); this only joins it with the users.

use actix_web::{get, web};
use persistence::repo::audience;
use realtime::Availability;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// What a user shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Away,
    Offline,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserPresence {
    pub user_id: i64,
    pub status: PresenceStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresenceSnapshot {
    /// Every user of the organization, in id order.
    pub users: Vec<UserPresence>,
}

/// The availability a connected user shows: `away` when they chose it, `online` otherwise.
pub fn availability(status: domain::UserStatus) -> Availability {
    match status {
        domain::UserStatus::Away => Availability::Away,
        _ => Availability::Online,
    }
}

/// Who is connected now: each user of the organization is `online` or `away` (their chosen
/// status) while they have a socket open on any instance, `offline` otherwise (deactivated
/// users too). Load it after connecting; `presence.updated` frames carry the changes.
#[utoipa::path(
    tag = "realtime",
    operation_id = "get_presence",
    security(("bearer" = [])),
    responses((status = 200, body = PresenceSnapshot), (status = 401, body = openapi::Problem))
)]
#[get("/v1/presence")]
pub async fn get_presence(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<PresenceSnapshot>, ApiError> {
    let org = caller.org();
    let people = db::read(&state.store, move |conn| {
        Ok(audience::org_users(conn, org)?)
    })
    .await?;
    let connected = state.hub.presence(org.get());
    let users = people
        .into_iter()
        .map(|(user, active)| UserPresence {
            user_id: user.get(),
            status: match connected.get(&user.get()) {
                Some(Availability::Online) if active => PresenceStatus::Online,
                Some(Availability::Away) if active => PresenceStatus::Away,
                _ => PresenceStatus::Offline,
            },
        })
        .collect();
    Ok(web::Json(PresenceSnapshot { users }))
}
