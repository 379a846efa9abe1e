//! One WebSocket's session: registers with the hub, streams replays and live events to the
//! socket in cursor order and once, answers pings, relays typing and viewing, and closes
//! with a documented code. Everything a client can grow here is bounded: the live events
//! held during a replay ([`MAX_HELD`]; past it they are dropped and read again from the log),
//! `resume` frames per second ([`RESUMES_PER_SECOND`]; past it the socket closes with 4429)
//! and the typing/viewing throttle ([`MAX_RELAYED`] conversations).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use actix_ws::{CloseCode, CloseReason};
use domain::{Actor, ConversationId};
use futures_util::StreamExt;
use persistence::repo::events;
use realtime::hub::Closing;
use realtime::{BusEvent, EventType, Outgoing, ReplayItem};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{
    CLOSE_ACCOUNT_DISABLED, CLOSE_BAD_FRAME, CLOSE_CURSOR_EXPIRED, CLOSE_REPLAY_FAILED,
    CLOSE_SIGNED_OUT, CLOSE_TOO_MANY_RESUMES, CLOSE_TOO_SLOW, ephemeral,
};
use crate::db;
use crate::service::visibility;
use crate::state::AppState;

pub(super) const PING_EVERY: Duration = Duration::from_secs(20);
pub(super) const DEAD_AFTER: Duration = Duration::from_secs(60);
/// How long a new socket holds live events for a `resume` that may follow at once (clients
/// that resume send it first thing).
const RESUME_GRACE: Duration = Duration::from_millis(750);
/// Typing and viewing relay at most this often per socket and conversation.
const EPHEMERAL_EVERY: Duration = Duration::from_secs(1);
/// Conversations whose typing/viewing throttle a socket remembers.
pub const MAX_RELAYED: usize = 64;
/// Live events a socket holds while its replay runs; past that they are dropped and the
/// replay continues from the log, where they are.
pub const MAX_HELD: usize = 256;
/// `resume` frames a socket may send per second.
pub const RESUMES_PER_SECOND: u32 = 5;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Resume { after: String },
    Typing { conversation_id: i64 },
    Viewing { conversation_id: i64 },
    Ping,
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_string()),
    })
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

/// Counts `resume` frames in the current second.
struct ResumeLimit {
    window: Instant,
    count: u32,
}

impl ResumeLimit {
    fn allow(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= RESUMES_PER_SECOND
    }
}

async fn next_replay(replay: &mut Option<mpsc::Receiver<ReplayItem>>) -> Option<ReplayItem> {
    match replay {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// The session of `actor`'s socket until it closes. Every idle socket holds this future, so
/// it takes only what it keeps (not the caller's whole user record) and the awaits that run
/// once or rarely (registering, replays, relays, closing) are boxed while they run instead
/// of widening it.
pub async fn run(
    state: Arc<AppState>,
    actor: Actor,
    sign_in: u64,
    availability: realtime::Availability,
    session: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    // Where this socket starts: whatever commits from here on must reach it, including
    // what commits before the hub has registered it (the grace replay below covers that).
    let store = state.store.clone();
    let start = Box::pin(web::block(move || {
        store.read(|conn| events::last_seq(conn, actor.org_id))
    }))
    .await
    .ok()
    .and_then(Result::ok);
    // The hub counts the user's sockets: the first one makes them online (presence).
    let registration = Box::pin(state.hub.register(
        actor.org_id.get(),
        actor.user_id.get(),
        sign_in,
        availability,
    ))
    .await;
    let (handle, mut queue, mut closing) = (
        registration.handle,
        registration.queue,
        Some(registration.closing),
    );
    let mut out = Outbound {
        session: session.clone(),
        last_sent: 0,
    };
    // Live events wait here while a replay runs (so replay and live stay in order).
    let mut held: VecDeque<Arc<BusEvent>> = VecDeque::new();
    let mut holding = true;
    // Held events were dropped: the replay must go on from the log when it is done.
    let mut overflowed = false;
    let mut replay: Option<mpsc::Receiver<ReplayItem>> = None;
    let mut asked = false;
    let grace = tokio::time::sleep(RESUME_GRACE);
    tokio::pin!(grace);
    let mut heartbeat = tokio::time::interval(PING_EVERY);
    let mut last_heard = Instant::now();
    let mut resumes = ResumeLimit {
        window: Instant::now(),
        count: 0,
    };
    let mut relayed: HashMap<(bool, i64), Instant> = HashMap::new();
    let reason = 'session: loop {
        tokio::select! {
            biased;
            why = closed(&mut closing) => match why {
                Some(Closing::AccountDisabled) => break close(CLOSE_ACCOUNT_DISABLED, "account_disabled"),
                Some(Closing::SignedOut) => break close(CLOSE_SIGNED_OUT, "signed_out"),
                // The hub let go of the session without a reason: the queue says why.
                None => closing = None,
            },
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
                    Ok(ClientFrame::Resume { after }) => {
                        if !resumes.allow() {
                            break close(CLOSE_TOO_MANY_RESUMES, "too many resume frames; reconnect with backoff");
                        }
                        match after.trim().parse::<i64>() {
                            Ok(after) => {
                                asked = true;
                                holding = true;
                                // A newer resume replaces a running one (dropping its
                                // receiver cancels it); what was sent is not sent twice.
                                replay = Some(Box::pin(state.hub.resume(handle, after)).await);
                            }
                            Err(_) => break close(CLOSE_BAD_FRAME, "resume.after must be an event id"),
                        }
                    }
                    Ok(ClientFrame::Ping) => {
                        if out.session.text(r#"{"type":"pong"}"#).await.is_err() { break None; }
                    }
                    Ok(ClientFrame::Typing { conversation_id }) => Box::pin(relay(&state, &actor, &mut relayed, EventType::Typing, conversation_id)).await,
                    Ok(ClientFrame::Viewing { conversation_id }) => Box::pin(relay(&state, &actor, &mut relayed, EventType::Viewing, conversation_id)).await,
                    Err(_) => break close(CLOSE_BAD_FRAME, "unknown or malformed frame"),
                }
            }
            item = next_replay(&mut replay) => match item {
                Some(ReplayItem::Page(events)) => {
                    for event in &events {
                        if !out.send(event).await { break 'session None; }
                    }
                }
                Some(ReplayItem::Done { through }) => {
                    out.last_sent = out.last_sent.max(through);
                    if overflowed {
                        // Live events were dropped meanwhile: they are in the log after
                        // `through`; read on from there.
                        overflowed = false;
                        replay = Some(Box::pin(state.hub.resume(handle, out.last_sent)).await);
                    } else {
                        replay = None;
                        holding = false;
                        if !Box::pin(flush(&mut out, &mut held, through)).await { break None; }
                    }
                }
                Some(ReplayItem::Expired) => break close(CLOSE_CURSOR_EXPIRED, "cursor_expired: reload your lists"),
                None => break close(CLOSE_REPLAY_FAILED, "replay failed; resume again"),
            },
            outgoing = queue.recv() => match outgoing {
                None => break close(CLOSE_TOO_SLOW, "too slow to keep up; reconnect and resume"),
                Some(Outgoing::Presence(frame)) => {
                    if out.session.text((*frame).clone()).await.is_err() { break None; }
                }
                Some(Outgoing::Shutdown) => break Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }),
                Some(Outgoing::Event(event)) => {
                    if holding {
                        if held.len() >= MAX_HELD {
                            held.clear();
                            overflowed = true;
                        }
                        held.push_back(event);
                    } else if !out.send(&event).await {
                        break None;
                    }
                }
            },
            // No resume came: replay from where the socket started, so that nothing
            // committed while it was being registered is missed, then go live.
            () = &mut grace, if holding && !asked => {
                asked = true;
                match start {
                    Some(start) => replay = Some(Box::pin(state.hub.resume(handle, start)).await),
                    None => {
                        holding = false;
                        overflowed = false;
                        if !Box::pin(flush(&mut out, &mut held, 0)).await { break None; }
                    }
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
    drop(replay);
    // The last socket of the user closing makes them offline (presence).
    Box::pin(state.hub.unregister(handle)).await;
    let _ = Box::pin(session.close(reason)).await;
}

/// Why the hub closes the session, once; `None` when it let go without a reason.
async fn closed(closing: &mut Option<tokio::sync::oneshot::Receiver<Closing>>) -> Option<Closing> {
    match closing {
        Some(receiver) => receiver.await.ok(),
        None => std::future::pending().await,
    }
}

/// Sends the events held during a replay that it did not already cover.
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
/// per conversation; never logged. The throttle remembers at most [`MAX_RELAYED`]
/// conversations: past that, relays wait until old entries expire.
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
    if relayed.len() >= MAX_RELAYED && !relayed.contains_key(&key) {
        relayed.retain(|_, at| at.elapsed() < EPHEMERAL_EVERY);
        if relayed.len() >= MAX_RELAYED {
            return;
        }
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
