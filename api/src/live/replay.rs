//! `GET /v1/events`: the REST twin of the WebSocket `resume`. A bounded page: at most
//! `limit` (≤ 100) events, after scanning at most [`SCAN_ROWS`] log rows, each page of rows
//! decided by the batch audience; `next_cursor` continues where the scan stopped.

use std::sync::Arc;

use actix_web::{get, web};
use domain::OrgId;
use persistence::repo::events;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{audience, stored_to_bus};
use crate::auth::Caller;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// Log rows one request reads at most (past events the caller may not see).
pub const SCAN_ROWS: i64 = 1000;
/// Log rows read per query.
const SCAN_PAGE: i64 = 500;

/// One replayed event, as the WebSocket sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventFrame {
    /// The event's cursor.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventFrame>,
    /// Pass as `after` for the next page; `null` when caught up. It may be set with fewer
    /// than `limit` items: the scan of one request is bounded.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// The last cursor the client has (an event's `id`; `0` for the beginning).
    #[param(pattern = r"^[0-9]{1,19}$")]
    pub after: String,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn parse_cursor(text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|cursor| *cursor >= 0)
        .ok_or_else(|| ApiError::BadRequest("after must be an event id".into()))
}

/// Every event after the cursor that the caller may see, oldest first: the REST twin of the
/// WebSocket `resume`. A page holds at most `limit` events and one request reads at most
/// 1,000 log rows; follow `next_cursor` until it is `null`. 410 `cursor_expired` past the
/// retention window: reload the lists.
#[utoipa::path(
    tag = "realtime",
    operation_id = "list_events",
    security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = openapi::Problem), (status = 410, description = "`cursor_expired`", body = openapi::Problem))
)]
#[get("/v1/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<EventQuery>,
) -> Result<web::Json<EventPage>, ApiError> {
    let after = parse_cursor(&query.after)?;
    let limit = crate::paging::limit(query.limit)?;
    let user = caller.user.id.get();
    let org = caller.org();
    let page = db::read(&state.store, move |conn| {
        page(conn, org, user, after, limit)
    })
    .await?;
    Ok(web::Json(page))
}

/// One bounded page of the caller's events after `after`.
fn page(
    conn: &mut persistence::DbConnection,
    org: OrgId,
    user: i64,
    after: i64,
    limit: i64,
) -> Result<EventPage, ApiError> {
    let first = events::first_retained(conn, org)?;
    let last = events::last_seq(conn, org)?;
    if realtime::cursor_expired(after, first, last) {
        return Err(ApiError::CursorExpired);
    }
    let mut items = Vec::new();
    let mut from = after;
    let mut scanned = 0;
    'scan: while scanned < SCAN_ROWS && from < last {
        let rows: Vec<_> = events::after(conn, org, from, SCAN_PAGE.min(SCAN_ROWS - scanned))?
            .into_iter()
            .map(|event| Arc::new(stored_to_bus(event)))
            .collect();
        if rows.is_empty() {
            // Nothing after `from` (the newest cursor was taken by a write not visible yet).
            from = last;
            break;
        }
        scanned += rows.len() as i64;
        let decided = audience::decide(conn, org, &rows, &[user])?;
        for (event, allowed) in rows.iter().zip(decided) {
            from = event.seq;
            if allowed.contains(&user) {
                items.push(EventFrame {
                    id: event.seq.to_string(),
                    event_type: event.event_type.as_str().to_string(),
                    at: event.at.clone(),
                    data: serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null),
                });
                if items.len() as i64 == limit {
                    break 'scan;
                }
            }
        }
    }
    let next_cursor = (from < last).then(|| from.to_string());
    Ok(EventPage { items, next_cursor })
}
