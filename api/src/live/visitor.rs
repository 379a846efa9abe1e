//! A web chat visitor's WebSocket (`GET /v1/webchat/ws`): the agents' replies and typing in
//! the visitor's own conversations, nothing else. It listens to the bus directly (not the
//! hub: visitors have no cursor and no replay), keeps only events of the visitor's
//! conversations, and shows messages as the visitor sees them (`service::webchat`), so a note
//! never leaves, whichever event carries it. A conversation the visitor starts after a close
//! joins the set when its `conversation.created` passes by.
//!
//! Missed frames are not replayed: a socket that falls behind the bus is closed with 4000
//! and the widget reloads `GET /v1/webchat/messages` after reconnecting. The socket closes
//! with 4401 when the visitor's token expires.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason};
use domain::Channel;
use futures_util::StreamExt;
use openapi as wire;
use persistence::repo::visitors::Visitor;
use realtime::{BusEvent, EventType};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::session::{DEAD_AFTER, PING_EVERY};
use super::{CLOSE_BAD_FRAME, CLOSE_TOO_SLOW};
use crate::service::webchat as chat;
use crate::state::AppState;

/// The visitor's token expired: start a new session.
pub const CLOSE_SESSION_EXPIRED: u16 = 4401;
/// Conversations a socket follows at most (a visitor starting one after another).
const MAX_FOLLOWED: usize = 64;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Ping,
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_string()),
    })
}

/// What the visitor is shown of a bus event, if anything.
fn frame_for(
    state: &AppState,
    visitor: &Visitor,
    channel: &Channel,
    followed: &mut HashSet<i64>,
    event: &BusEvent,
) -> Option<String> {
    if event.org_id != channel.org_id.get() {
        return None;
    }
    if event.event_type == EventType::ConversationCreated {
        let data: Value = serde_json::from_str(&event.payload).ok()?;
        let conversation = &data["conversation"];
        let mine = conversation["channel_id"].as_i64() == Some(channel.id.get())
            && conversation["contact"]["id"].as_i64() == Some(visitor.contact_id.get());
        if mine && followed.len() < MAX_FOLLOWED {
            followed.insert(conversation["id"].as_i64()?);
        }
        return None;
    }
    let conversation = event.conversation_id.filter(|id| followed.contains(id))?;
    let data = match event.event_type {
        EventType::MessageCreated => {
            #[derive(Deserialize)]
            struct Created {
                message: wire::Message,
            }
            let created: Created = serde_json::from_str(&event.payload).ok()?;
            let shown = chat::for_visitor(state, &created.message)?;
            json!({"conversation_id": conversation, "message": shown})
        }
        // Only agents type to the visitor (`from_user`); the visitor's own socket sends none.
        EventType::Typing if event.from_user.is_some() => json!({"conversation_id": conversation}),
        _ => return None,
    };
    Some(json!({"type": event.event_type.as_str(), "at": event.at, "data": data}).to_string())
}

/// The visitor's session until the socket closes.
pub async fn run(
    state: Arc<AppState>,
    visitor: Visitor,
    channel: Channel,
    mut session: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    // Subscribed before anything is read, so nothing committed from here on is missed.
    let mut events = state.bus.subscribe();
    let store = state.store.clone();
    let current = {
        let visitor = visitor.clone();
        actix_web::web::block(move || store.read(|conn| Ok(chat::current(conn, &visitor)))).await
    };
    let mut followed = HashSet::new();
    if let Ok(Ok(Ok(conversation))) = current {
        followed.insert(conversation.id.get());
    }
    let expires_in = (visitor.expires_at - persistence::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let mut heartbeat = tokio::time::interval(PING_EVERY);
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            () = &mut expiry => break close(CLOSE_SESSION_EXPIRED, "the visitor session expired; start a new one"),
            event = events.recv() => match event {
                Ok(event) => {
                    if let Some(text) = frame_for(&state, &visitor, &channel, &mut followed, &event)
                        && session.text(text).await.is_err()
                    {
                        break None;
                    }
                }
                Err(RecvError::Lagged(_)) => break close(CLOSE_TOO_SLOW, "too slow to keep up; reconnect and reload the messages"),
                Err(RecvError::Closed) => break Some(CloseReason { code: CloseCode::Away, description: None }),
            },
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(_)) => break close(CLOSE_BAD_FRAME, "frame too large or malformed"),
                    None => break None,
                };
                last_heard = Instant::now();
                let answered = match frame {
                    actix_ws::AggregatedMessage::Text(text) => match serde_json::from_str::<ClientFrame>(&text) {
                        Ok(ClientFrame::Ping) => session.text(r#"{"type":"pong"}"#).await,
                        Err(_) => break close(CLOSE_BAD_FRAME, "unknown or malformed frame"),
                    },
                    actix_ws::AggregatedMessage::Ping(bytes) => session.pong(&bytes).await,
                    actix_ws::AggregatedMessage::Close(_) => break None,
                    _ => Ok(()),
                };
                if answered.is_err() {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    break close(1001, "no answer to pings");
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    let _ = session.close(reason).await;
}
