//! Realtime over WebSocket (`GET /v1/ws`) and its REST twin (`GET /v1/events`). The hub
//! (in the realtime crate) fans events out; this module decides who may see an event, with
//! the same domain rules as the REST list, and runs each socket's session.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason};
use domain::conversation::{inbox_scope, scope_admits};
use domain::{Actor, ConversationId, InboxId, OrgId, TeamId, UserId};
use futures_util::StreamExt;
use persistence::Store;
use persistence::repo::{conversations, events, inboxes, teams, users};
use realtime::{Audience, BusEvent, EventType, Outgoing};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, authenticate, bearer_token};
use crate::db;
use crate::error::ApiError;
use crate::service::visibility;
use crate::state::AppState;

/// Close codes clients act on (documented in the API reference).
pub const CLOSE_TOO_SLOW: u16 = 4000;
pub const CLOSE_BAD_FRAME: u16 = 4400;
pub const CLOSE_CURSOR_EXPIRED: u16 = 4409;
/// Largest client frame, in bytes.
pub const MAX_FRAME: usize = 16 * 1024;
const PING_EVERY: Duration = Duration::from_secs(20);
const DEAD_AFTER: Duration = Duration::from_secs(60);
/// How long a new socket holds live events for a `resume` that may follow at once (clients
/// that resume send it first thing).
const RESUME_GRACE: Duration = Duration::from_millis(750);
/// Typing and viewing relay at most this often per socket and conversation.
const EPHEMERAL_EVERY: Duration = Duration::from_secs(1);

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
    }
}

/// The conversation facts visibility needs, as of the event when it carries them.
#[derive(Deserialize)]
struct ConversationFacts {
    inbox_id: i64,
    assignee_id: Option<i64>,
    team_id: Option<i64>,
}

#[derive(Deserialize)]
struct Payload {
    conversation: Option<ConversationFacts>,
    previous_assignee_id: Option<i64>,
}

/// Decides recipients with the domain's visibility rules, from the database.
pub struct DbAudience {
    pub store: Store,
}

impl DbAudience {
    /// Which of `users` are active users of the event's organization.
    fn active(&self, event: &BusEvent, users: &[i64]) -> Result<Vec<i64>, ApiError> {
        let ids: Vec<UserId> = users.iter().copied().map(UserId).collect();
        let mut conn = self.store.conn()?;
        let people = users::get_many(&mut conn, OrgId(event.org_id), &ids)?;
        Ok(people
            .into_iter()
            .filter(|person| person.active)
            .map(|person| person.id.get())
            .collect())
    }

    fn conversation_recipients(
        &self,
        event: &BusEvent,
        users: &[i64],
    ) -> Result<Vec<i64>, ApiError> {
        let org = OrgId(event.org_id);
        let payload: Payload = serde_json::from_str(&event.payload).unwrap_or(Payload {
            conversation: None,
            previous_assignee_id: None,
        });
        let mut conn = self.store.conn()?;
        let facts = match payload.conversation {
            Some(facts) => facts,
            None => {
                let Some(id) = event.conversation_id else {
                    return Ok(Vec::new());
                };
                let Some(found) = conversations::get(&mut conn, org, ConversationId(id))? else {
                    return Ok(Vec::new());
                };
                ConversationFacts {
                    inbox_id: found.inbox_id.get(),
                    assignee_id: found.assignee_id.map(UserId::get),
                    team_id: found.team_id.map(TeamId::get),
                }
            }
        };
        let Some(inbox) = inboxes::get(&mut conn, org, InboxId(facts.inbox_id))? else {
            return Ok(Vec::new());
        };
        let members = inboxes::members(&mut conn, inbox.id)?;
        let team = match facts.team_id {
            Some(team) => teams::get(&mut conn, org, TeamId(team))?,
            None => None,
        };
        let ids: Vec<UserId> = users.iter().copied().map(UserId).collect();
        let people = users::get_many(&mut conn, org, &ids)?;
        let mut allowed: Vec<i64> = people
            .iter()
            .filter(|person| person.active)
            .filter(|person| {
                let actor = person.actor();
                let is_member = members.iter().any(|member| member.user_id == person.id);
                let in_team: Vec<TeamId> = team
                    .iter()
                    .filter(|team| team.member_ids.contains(&person.id))
                    .map(|team| team.id)
                    .collect();
                let scope = inbox_scope(&actor, &inbox, is_member);
                scope_admits(
                    scope,
                    &actor,
                    &in_team,
                    facts.assignee_id.map(UserId),
                    facts.team_id.map(TeamId),
                )
            })
            .map(|person| person.id.get())
            .collect();
        // The previous assignee hears that it was taken away, then nothing more.
        if event.event_type == EventType::ConversationAssigned
            && let Some(previous) = payload.previous_assignee_id
            && users.contains(&previous)
            && !allowed.contains(&previous)
        {
            allowed.push(previous);
        }
        Ok(allowed)
    }
}

impl Audience for DbAudience {
    fn recipients(&self, event: &BusEvent, users: &[i64]) -> Vec<i64> {
        let decided = if event.conversation_id.is_none() {
            // Contacts and presence are the whole organization's: its active users (a
            // deactivated user's socket still open hears nothing more).
            self.active(event, users)
        } else {
            self.conversation_recipients(event, users)
        };
        decided.unwrap_or_else(|error| {
            tracing::warn!(%error, "deciding event recipients");
            Vec::new()
        })
    }

    fn events_after(&self, org: i64, seq: i64, limit: i64) -> Result<Vec<BusEvent>, String> {
        let stored = self
            .store
            .read(|conn| events::after(conn, OrgId(org), seq, limit))
            .map_err(|error| error.to_string())?;
        Ok(stored.into_iter().map(stored_to_bus).collect())
    }

    fn last_seq(&self, org: i64) -> Result<i64, String> {
        self.store
            .read(|conn| events::last_seq(conn, OrgId(org)))
            .map_err(|error| error.to_string())
    }

    fn first_retained(&self, org: i64) -> Result<Option<i64>, String> {
        self.store
            .read(|conn| events::first_retained(conn, OrgId(org)))
            .map_err(|error| error.to_string())
    }
}

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
    /// Pass as `after` for the next page; `null` when caught up.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// The last cursor the client has (an event's `id`).
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
/// WebSocket `resume`. 410 `cursor_expired` past the retention window: reload the lists.
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
    let audience = DbAudience {
        store: state.store.clone(),
    };
    let page = web::block(move || -> Result<EventPage, ApiError> {
        let first = audience
            .first_retained(org.get())
            .map_err(ApiError::Internal)?;
        let last = audience.last_seq(org.get()).map_err(ApiError::Internal)?;
        if realtime::cursor_expired(after, first, last) {
            return Err(ApiError::CursorExpired);
        }
        let mut items = Vec::new();
        let mut from = after;
        // Scan on past events the caller may not see, a bounded number of batches.
        for _ in 0..20 {
            let batch = audience
                .events_after(org.get(), from, 200)
                .map_err(ApiError::Internal)?;
            let Some(last_in_batch) = batch.last().map(|event| event.seq) else {
                break;
            };
            for event in batch {
                from = event.seq;
                if audience.recipients(&event, &[user]).contains(&user) {
                    items.push(EventFrame {
                        id: event.seq.to_string(),
                        event_type: event.event_type.as_str().to_string(),
                        at: event.at,
                        data: serde_json::from_str(&event.payload)
                            .unwrap_or(serde_json::Value::Null),
                    });
                    if items.len() as i64 == limit {
                        break;
                    }
                }
            }
            if items.len() as i64 == limit || last_in_batch >= last {
                break;
            }
        }
        let next_cursor = (from < last).then(|| from.to_string());
        Ok(EventPage { items, next_cursor })
    })
    .await??;
    Ok(web::Json(page))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Resume { after: String },
    Typing { conversation_id: i64 },
    Viewing { conversation_id: i64 },
    Ping,
}

/// Upgrades to a WebSocket. The token comes as `Authorization: Bearer` or `?access_token=`;
/// a bad one is refused before the upgrade.
#[utoipa::path(
    tag = "realtime",
    operation_id = "connect_websocket",
    params(("access_token" = Option<String>, Query, description = "For browsers, which cannot set headers on a WebSocket")),
    responses(
        (status = 101, description = "Switching protocols. Server frames: `{id, type, at, data}`. Client frames: `resume {after}`, `typing {conversation_id}`, `viewing {conversation_id}`, `ping`. Close codes: 4000 too slow (resume), 4400 bad frame, 4409 cursor expired (reload), 1001 server going away."),
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
    actix_web::rt::spawn(run_session(state.into_inner(), caller, session, stream));
    Ok(response)
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_string()),
    })
}

/// Publishes `presence.updated` (ephemeral) for the caller.
pub fn publish_presence(state: &AppState, user: &domain::User, status: &str) {
    let payload = serde_json::json!({"user_id": user.id.get(), "status": status}).to_string();
    state.bus.publish(ephemeral(
        user.org_id.get(),
        EventType::PresenceUpdated,
        None,
        payload,
        None,
    ));
}

fn ephemeral(
    org: i64,
    event_type: EventType,
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
    }
}

/// The session's send side: keeps cursor order and drops what it already sent.
struct Outbound {
    session: actix_ws::Session,
    last_sent: i64,
}

impl Outbound {
    async fn send(&mut self, event: &BusEvent) -> bool {
        if !event.is_ephemeral() {
            if event.seq <= self.last_sent {
                return true;
            }
            self.last_sent = event.seq;
        }
        self.session.text(event.frame()).await.is_ok()
    }
}

async fn run_session(
    state: Arc<AppState>,
    caller: Caller,
    session: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    let actor = caller.actor();
    // Where this socket starts: whatever commits from here on must reach it, including
    // what commits before the hub has registered it (the grace replay below covers that).
    let store = state.store.clone();
    let start = web::block(move || store.read(|conn| events::last_seq(conn, actor.org_id)))
        .await
        .ok()
        .and_then(Result::ok);
    let (handle, mut queue) = state.hub.register(actor.org_id.get(), actor.user_id.get());
    publish_presence(
        &state,
        &caller.user,
        if caller.user.status == domain::UserStatus::Away {
            "away"
        } else {
            "online"
        },
    );
    let mut out = Outbound {
        session: session.clone(),
        last_sent: 0,
    };
    // Live events wait here while a resume may still come (so replay stays in order).
    let mut held: VecDeque<Arc<BusEvent>> = VecDeque::new();
    let mut holding = true;
    let mut resuming = false;
    let grace = tokio::time::sleep(RESUME_GRACE);
    tokio::pin!(grace);
    let mut heartbeat = tokio::time::interval(PING_EVERY);
    let mut last_heard = Instant::now();
    let mut relayed: HashMap<(bool, i64), Instant> = HashMap::new();
    let reason = loop {
        tokio::select! {
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    // Larger than MAX_FRAME, invalid UTF-8, not WebSocket: a bad frame.
                    Some(Err(error)) => {
                        tracing::debug!(%error, "closing a socket that sent a bad frame");
                        break close(CLOSE_BAD_FRAME, "frame too large or malformed");
                    }
                    None => break None,
                };
                last_heard = Instant::now();
                let text = match frame {
                    actix_ws::AggregatedMessage::Text(text) => text,
                    actix_ws::AggregatedMessage::Ping(bytes) => {
                        if out.session.pong(&bytes).await.is_err() { break None; }
                        continue;
                    }
                    actix_ws::AggregatedMessage::Close(_) => break None,
                    _ => continue,
                };
                match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(ClientFrame::Resume { after }) => match after.trim().parse::<i64>() {
                        Ok(after) => {
                            resuming = true;
                            holding = true;
                            state.hub.resume(handle, after);
                        }
                        Err(_) => break close(CLOSE_BAD_FRAME, "resume.after must be an event id"),
                    },
                    Ok(ClientFrame::Ping) => {
                        if out.session.text(r#"{"type":"pong"}"#).await.is_err() { break None; }
                    }
                    Ok(ClientFrame::Typing { conversation_id }) => relay(&state, &actor, &mut relayed, EventType::Typing, conversation_id).await,
                    Ok(ClientFrame::Viewing { conversation_id }) => relay(&state, &actor, &mut relayed, EventType::Viewing, conversation_id).await,
                    Err(_) => break close(CLOSE_BAD_FRAME, "unknown or malformed frame"),
                }
            }
            outgoing = queue.recv() => match outgoing {
                None => break close(CLOSE_TOO_SLOW, "too slow to keep up; reconnect and resume"),
                Some(Outgoing::Shutdown) => break Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }),
                Some(Outgoing::Expired) => break close(CLOSE_CURSOR_EXPIRED, "cursor_expired: reload your lists"),
                Some(Outgoing::Event(event)) => {
                    if holding {
                        if held.len() >= MAX_HELD { break close(CLOSE_TOO_SLOW, "too slow to keep up; reconnect and resume"); }
                        held.push_back(event);
                    } else if !out.send(&event).await {
                        break None;
                    }
                }
                Some(Outgoing::Replay { events, through }) => {
                    let mut ok = true;
                    for event in &events {
                        if !out.send(event).await { ok = false; break; }
                    }
                    if !ok { break None; }
                    out.last_sent = out.last_sent.max(through);
                    resuming = false;
                    holding = false;
                    if !flush(&mut out, &mut held, through).await { break None; }
                }
            },
            // No resume came: replay from where the socket started, so that nothing
            // committed while it was being registered is missed, then go live.
            () = &mut grace, if holding && !resuming => match start {
                Some(start) => {
                    resuming = true;
                    state.hub.resume(handle, start);
                }
                None => {
                    holding = false;
                    if !flush(&mut out, &mut held, 0).await { break None; }
                }
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    break close(1001, "no answer to pings");
                }
                if out.session.ping(b"").await.is_err() { break None; }
            }
        }
    };
    state.hub.unregister(handle);
    let _ = session.close(reason).await;
    let stored = caller.user.status.as_str();
    publish_presence(
        &state,
        &caller.user,
        if stored == "offline" {
            "offline"
        } else {
            stored
        },
    );
}

const MAX_HELD: usize = 256;

/// Sends the events held during the grace period that a replay did not already cover.
async fn flush(out: &mut Outbound, held: &mut VecDeque<Arc<BusEvent>>, through: i64) -> bool {
    while let Some(event) = held.pop_front() {
        if !event.is_ephemeral() && event.seq <= through {
            continue;
        }
        if !out.send(&event).await {
            return false;
        }
    }
    true
}

/// Relays typing/viewing to the others who can see the conversation, at most once a second
/// per conversation; never logged.
async fn relay(
    state: &Arc<AppState>,
    actor: &Actor,
    relayed: &mut HashMap<(bool, i64), Instant>,
    kind: EventType,
    conversation_id: i64,
) {
    let key = (kind == EventType::Typing, conversation_id);
    if relayed
        .get(&key)
        .is_some_and(|at| at.elapsed() < EPHEMERAL_EVERY)
    {
        return;
    }
    relayed.insert(key, Instant::now());
    let (store, who) = (state.store.clone(), *actor);
    let visible = db::read(&store, move |conn| {
        visibility::visible(conn, &who, ConversationId(conversation_id)).map(|found| found.inbox.id)
    })
    .await;
    let Ok(inbox) = visible else { return };
    let payload =
        serde_json::json!({"conversation_id": conversation_id, "user_id": actor.user_id.get()})
            .to_string();
    let mut event = ephemeral(
        actor.org_id.get(),
        kind,
        Some(conversation_id),
        payload,
        Some(actor.user_id.get()),
    );
    event.inbox_id = Some(inbox.get());
    state.bus.publish(event);
}

/// Keeps the log within its retention window: hourly, events older than it are purged.
pub fn start_retention(store: Store, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let now = persistence::now();
            let events_cutoff =
                now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
            // Idempotency keys guard retries, which come within minutes: a day is plenty.
            let keys_cutoff = now - chrono::Duration::days(1);
            let store = store.clone();
            let purged = tokio::task::spawn_blocking(move || {
                store.write(|conn| {
                    let events = events::purge_before(conn, events_cutoff)?;
                    let keys = persistence::repo::receipts::purge_keys_before(conn, keys_cutoff)?;
                    Ok((events, keys))
                })
            })
            .await;
            match purged {
                Ok(Ok((events, keys))) if events + keys > 0 => {
                    tracing::info!(
                        events,
                        idempotency_keys = keys,
                        "purged past their retention"
                    )
                }
                Ok(Err(error)) => tracing::warn!(%error, "purging old events and keys"),
                _ => {}
            }
        }
    })
}
