//! Realtime (API.md → Realtime): real WebSocket clients on `GET /v1/ws` receive exactly the
//! events about what their user may see, in cursor order, once; `resume` and
//! `GET /v1/events` replay what a client missed; typing is relayed; bad tokens, bad frames and
//! expired cursors are refused with the documented statuses and close codes; a deactivated
//! user's open sockets close at once with 4401. The same
//! client is used by `realtime_scale` (several instances on Redis).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::fixtures::{self, Channel, SIGNATURE_HEADER, customer, sms_channel};
use crate::on_both_backends;
use crate::support::{Reply, Session, TestApp, into_reply};

/// The longest wait for one expected frame (a failure, not a pace the server must keep).
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched. It asserts absence, never speed.
pub const SILENCE: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------------------
// The WebSocket client

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a client presents its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIn {
    Header,
    Query,
}

/// What the server sent: a JSON text frame, or the close (with its code, if any).
#[derive(Debug, Clone)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>, String),
}

/// A WebSocket client of `GET /v1/ws`, as the web and mobile apps use it.
pub struct Ws {
    stream: Stream,
    /// Frames read but not consumed yet (read while waiting for something else).
    pending: VecDeque<Frame>,
    label: String,
}

/// The upgrade request, with the token as a header or a query parameter (or none).
fn request(
    addr: SocketAddr,
    token: Option<&str>,
    how: TokenIn,
) -> tungstenite::handshake::client::Request {
    let url = match (token, how) {
        (Some(token), TokenIn::Query) => format!("ws://{addr}/v1/ws?access_token={token}"),
        _ => format!("ws://{addr}/v1/ws"),
    };
    let mut request = url.into_client_request().expect("a valid WebSocket URL");
    if let (Some(token), TokenIn::Header) = (token, how) {
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"),
        );
    }
    request
}

/// Attempts the upgrade; the error is what tungstenite reports (an HTTP answer for a refusal).
pub async fn try_connect(
    addr: SocketAddr,
    token: Option<&str>,
    how: TokenIn,
) -> Result<Stream, tungstenite::Error> {
    tokio_tungstenite::connect_async(request(addr, token, how))
        .await
        .map(|(stream, _)| stream)
}

impl Ws {
    /// Connects without any frame sent yet (for a client that resumes at once).
    pub async fn open(addr: SocketAddr, session: &Session, how: TokenIn, label: &str) -> Ws {
        let stream = try_connect(addr, Some(&session.token), how)
            .await
            .unwrap_or_else(|error| panic!("{label}: WebSocket upgrade refused: {error}"));
        Ws {
            stream,
            pending: VecDeque::new(),
            label: label.to_string(),
        }
    }

    /// Connects and waits until the session is live: a ping answered by a pong means the
    /// server registered the socket and delivers live events from now on.
    pub async fn connect(addr: SocketAddr, session: &Session, label: &str) -> Ws {
        let mut ws = Ws::open(addr, session, TokenIn::Header, label).await;
        ws.ready().await;
        ws
    }

    /// Sends a ping and waits for the pong (keeping whatever else arrives meanwhile).
    pub async fn ready(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let deadline = Instant::now() + PATIENCE;
        let mut kept = VecDeque::new();
        loop {
            match self.read_raw(deadline).await {
                Some(Frame::Json(frame)) if frame["type"] == "pong" => break,
                Some(other) => kept.push_back(other),
                None => panic!("{}: no pong within {PATIENCE:?}", self.label),
            }
        }
        kept.extend(self.pending.drain(..));
        self.pending = kept;
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap_or_else(|error| panic!("{}: sending a frame: {error}", self.label));
    }

    /// Closes the connection from the client side (a tab closed, a phone going offline).
    pub async fn disconnect(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// The next frame from the socket, or `None` at the deadline.
    async fn read_raw(&mut self, deadline: Instant) -> Option<Frame> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Frame::Closed(None, String::new())),
                Ok(Some(Err(error))) => return Some(Frame::Closed(None, error.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let value: Value =
                        serde_json::from_str(text.as_str()).unwrap_or_else(|error| {
                            panic!("{}: a frame that is not JSON ({error}): {text}", self.label)
                        });
                    return Some(Frame::Json(value));
                }
                Message::Close(frame) => {
                    return Some(match frame {
                        Some(frame) => {
                            Frame::Closed(Some(u16::from(frame.code)), frame.reason.to_string())
                        }
                        None => Frame::Closed(None, String::new()),
                    });
                }
                Message::Binary(_) => {
                    panic!("{}: a binary frame; the protocol is JSON text", self.label)
                }
                _ => continue,
            }
        }
    }

    /// The next frame, pending ones first.
    async fn read(&mut self, deadline: Instant) -> Option<Frame> {
        match self.pending.pop_front() {
            Some(frame) => Some(frame),
            None => self.read_raw(deadline).await,
        }
    }

    /// Every JSON frame that arrives within `window`, and the close if the socket closed.
    pub async fn collect(&mut self, window: Duration) -> (Vec<Value>, Option<Option<u16>>) {
        let deadline = Instant::now() + window;
        let mut frames = Vec::new();
        while let Some(frame) = self.read(deadline).await {
            match frame {
                Frame::Json(frame) => frames.push(frame),
                Frame::Closed(code, _) => return (frames, Some(code)),
            }
        }
        (frames, None)
    }

    /// The next JSON frame that `wanted` accepts, skipping the others, within `wait`.
    pub async fn next_matching(
        &mut self,
        wait: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            match self.read(deadline).await {
                Some(Frame::Json(frame)) if wanted(&frame) => return frame,
                Some(Frame::Json(_)) => continue,
                Some(Frame::Closed(code, reason)) => {
                    panic!(
                        "{}: the socket closed ({code:?} {reason}) while waiting for {what}",
                        self.label
                    )
                }
                None => panic!("{}: no {what} within {wait:?}", self.label),
            }
        }
    }

    /// The next persistent event (a frame with an `id`), skipping typing, viewing,
    /// presence and pongs.
    pub async fn next_event(&mut self) -> Value {
        let event = self.next_matching(PATIENCE, "event", is_event).await;
        check_frame(&event);
        event
    }

    /// The next `n` persistent events.
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.next_event().await);
        }
        events
    }

    /// The next persistent event, which must be of this type.
    pub async fn expect_event(&mut self, event_type: &str) -> Value {
        let event = self.next_event().await;
        assert_eq!(
            event["type"], event_type,
            "{}: unexpected event {event}",
            self.label
        );
        event
    }

    /// Asserts that no frame `unwanted` accepts arrives for a short while (absence only).
    pub async fn expect_no(&mut self, what: &str, unwanted: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + SILENCE;
        while let Some(frame) = self.read(deadline).await {
            match frame {
                Frame::Json(frame) if unwanted(&frame) => {
                    panic!("{}: expected no {what}, got {frame}", self.label)
                }
                Frame::Json(_) => {}
                Frame::Closed(code, reason) => {
                    panic!(
                        "{}: the socket closed ({code:?} {reason}) while expecting silence",
                        self.label
                    )
                }
            }
        }
    }

    /// Asserts that no persistent event arrives for a short while.
    pub async fn expect_silence(&mut self) {
        self.expect_no("event", is_event).await;
    }

    /// Waits for the server to close the socket, and returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.read(deadline).await {
                Some(Frame::Closed(code, _)) => return code,
                Some(Frame::Json(frame)) => {
                    if is_event(&frame) {
                        check_frame(&frame);
                    }
                }
                None => panic!(
                    "{}: the server did not close the socket within {PATIENCE:?}",
                    self.label
                ),
            }
        }
    }
}

/// Persistent events carry their cursor as `id`; ephemeral frames (typing, viewing,
/// presence, pong) do not.
pub fn is_event(frame: &Value) -> bool {
    frame.get("id").is_some()
}

/// The frame shape every persistent event has: `{"id": "<cursor>", "type", "at", "data"}`.
#[track_caller]
pub fn check_frame(frame: &Value) {
    let id = frame["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id is a string: {frame}"));
    assert!(
        id.parse::<i64>().is_ok_and(|cursor| cursor > 0),
        "id is a cursor: {frame}"
    );
    assert!(
        frame["type"]
            .as_str()
            .is_some_and(|kind| kind.contains('.')),
        "type: {frame}"
    );
    let at = frame["at"]
        .as_str()
        .unwrap_or_else(|| panic!("at: {frame}"));
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[19] == b'.',
        "RFC 3339 with milliseconds: {frame}"
    );
    assert!(frame["data"].is_object(), "data: {frame}");
}

/// An event's cursor as a number (to compare order).
#[track_caller]
pub fn cursor(frame: &Value) -> i64 {
    frame["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no cursor in {frame}"))
}

/// The cursors of `frames`.
pub fn cursors(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(cursor).collect()
}

/// The types of `frames`.
pub fn types(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| frame["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts strictly increasing cursors (so: in order, and no duplicate).
#[track_caller]
pub fn assert_increasing(frames: &[Value], who: &str) {
    let ids = cursors(frames);
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "{who}: cursors not strictly increasing: {ids:?}"
    );
}

/// The conversation an event is about (`data.conversation.id` or `data.conversation_id`).
#[track_caller]
pub fn conversation_of(frame: &Value) -> i64 {
    frame["data"]["conversation"]["id"]
        .as_i64()
        .or_else(|| frame["data"]["conversation_id"].as_i64())
        .unwrap_or_else(|| panic!("no conversation in {frame}"))
}

// ---------------------------------------------------------------------------------------
// Writing through the API (on any instance)

/// A customer's signed message, posted to the instance at `base` (`http://host:port`).
pub async fn inbound_at(
    app: &TestApp,
    base: &str,
    channel: &Channel,
    from: &str,
    body: &str,
) -> Value {
    let raw = serde_json::to_vec(
        &json!({"external_id": fixtures::external_id(), "from": from, "body": body}),
    )
    .expect("JSON");
    let signature = fixtures::sign(&channel.secret, &raw);
    let response = app
        .client()
        .post(format!("{base}/v1/channels/{}/inbound", channel.id))
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(raw)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(200).body
}

/// A customer's message on the test's main instance: `{conversation_id, message_id}`.
pub async fn inbound(app: &TestApp, channel: &Channel, from: &str, body: &str) -> Value {
    inbound_at(app, &app.url(""), channel, from, body).await
}

/// `GET /v1/events?after=` on the instance at `base`.
pub async fn events_page(app: &TestApp, base: &str, session: &Session, query: &str) -> Reply {
    let response = app
        .client()
        .get(format!("{base}/v1/events?{query}"))
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

/// Every event after `after` the user may see, following `next_cursor` to the end.
pub async fn replay_all(app: &TestApp, base: &str, session: &Session, after: i64) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = after.to_string();
    for _ in 0..1000 {
        let page = events_page(app, base, session, &format!("after={after}&limit=100"))
            .await
            .expect(200);
        items.extend(
            page.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .cloned(),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => after = next.to_string(),
            None => return items,
        }
    }
    panic!("next_cursor never ran out");
}

/// The newest cursor the admin can see (0 when there is none yet).
pub async fn latest_cursor(app: &TestApp, admin: &Session) -> i64 {
    replay_all(app, &app.url(""), admin, 0)
        .await
        .last()
        .map_or(0, cursor)
}

// ---------------------------------------------------------------------------------------
// The cast

/// An organization with one inbox: an admin, two agents who are members of it, an agent
/// of the same organization who is not, and the admin of another organization.
struct Cast {
    admin: Session,
    alex: Session,
    bea: Session,
    olive: Session,
    globex: Session,
    inbox: i64,
    line: Channel,
}

async fn cast(app: &TestApp, settings: Value) -> Cast {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let olive = app.user(&admin, "agent", "Olive Outsider").await;
    let globex = app.other_org("Globex").await;
    let inbox = fixtures::inbox(app, &admin, "Support", settings, &[&alex, &bea]).await;
    let line = sms_channel(app, &admin, inbox, "+14155550000").await;
    Cast {
        admin,
        alex,
        bea,
        olive,
        globex,
        inbox,
        line,
    }
}

fn addr(app: &TestApp) -> SocketAddr {
    app.running().addr
}

/// Asserts the three events of a new customer's first message, in order.
#[track_caller]
fn assert_first_message(events: &[Value], conversation: i64, message: i64, body: &str, who: &str) {
    assert_eq!(
        types(events),
        [
            "conversation.created",
            "message.created",
            "conversation.updated"
        ],
        "{who}: {events:?}"
    );
    assert_increasing(events, who);
    for event in events {
        assert_eq!(conversation_of(event), conversation, "{who}: {event}");
    }
    let created = &events[0]["data"]["conversation"];
    assert_eq!(created["status"], "open", "{who}: {created}");
    assert_eq!(
        created["contact"]["phone_numbers"][0],
        customer(1),
        "{who}: {created}"
    );
    let message_event = &events[1]["data"];
    assert_eq!(message_event["conversation_id"], conversation, "{who}");
    assert_eq!(
        message_event["message"]["id"], message,
        "{who}: {message_event}"
    );
    assert_eq!(
        message_event["message"]["body"], body,
        "{who}: {message_event}"
    );
    assert_eq!(
        message_event["message"]["direction"], "inbound",
        "{who}: {message_event}"
    );
    assert_eq!(
        message_event["message"]["kind"], "message",
        "{who}: {message_event}"
    );
    let updated = &events[2]["data"]["conversation"];
    assert_eq!(updated["message_count"], 1, "{who}: {updated}");
    assert_eq!(updated["last_message_preview"], body, "{who}: {updated}");
}

// ---------------------------------------------------------------------------------------
// Who receives what

async fn a_customer_message_reaches_the_inbox_members_and_admins_only(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let mut admin = Ws::connect(addr(&app), &cast.admin, "admin").await;
    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    // Browsers put the token in the query string; it works the same.
    let mut bea = Ws::open(addr(&app), &cast.bea, TokenIn::Query, "bea").await;
    bea.ready().await;
    let mut olive = Ws::connect(addr(&app), &cast.olive, "olive (not a member)").await;
    let mut globex = Ws::connect(addr(&app), &cast.globex, "globex admin").await;

    let ids = inbound(&app, &cast.line, &customer(1), "Is my order on its way?").await;
    let (conversation, message) = (
        ids["conversation_id"].as_i64().unwrap(),
        ids["message_id"].as_i64().unwrap(),
    );

    let seen = admin.events(3).await;
    assert_first_message(
        &seen,
        conversation,
        message,
        "Is my order on its way?",
        "admin",
    );
    for (ws, who) in [(&mut alex, "alex"), (&mut bea, "bea")] {
        let events = ws.events(3).await;
        assert_first_message(
            &events,
            conversation,
            message,
            "Is my order on its way?",
            who,
        );
        // Everyone gets the very same events: same cursors, same data.
        assert_eq!(events, seen, "{who}");
    }
    // The members have had theirs, so whatever was coming has come.
    olive.expect_silence().await;
    globex.expect_silence().await;
    admin.expect_silence().await;
    alex.expect_silence().await;

    // A second message in the same conversation: no new conversation, two events.
    let next = inbound(&app, &cast.line, &customer(1), "Order #1234").await;
    assert_eq!(next["conversation_id"], conversation);
    let events = alex.events(2).await;
    assert_eq!(types(&events), ["message.created", "conversation.updated"]);
    assert!(cursor(&events[0]) > cursor(&seen[2]));
    assert_eq!(events[0]["data"]["message"]["id"], next["message_id"]);
    assert_eq!(events[1]["data"]["conversation"]["message_count"], 2);
    assert_eq!(admin.events(2).await, events);
    assert_eq!(bea.events(2).await, events);
    olive.expect_silence().await;
    globex.expect_silence().await;

    // The other organization's own traffic stays theirs.
    let theirs = fixtures::inbox(&app, &cast.globex, "Globex Support", json!({}), &[]).await;
    let their_line = sms_channel(&app, &cast.globex, theirs, "+14155550009").await;
    let their_ids = inbound(&app, &their_line, &customer(1), "Hello Globex").await;
    let events = globex.events(3).await;
    assert_eq!(
        types(&events),
        [
            "conversation.created",
            "message.created",
            "conversation.updated"
        ]
    );
    assert_eq!(
        conversation_of(&events[0]),
        their_ids["conversation_id"].as_i64().unwrap()
    );
    admin.expect_silence().await;
    alex.expect_silence().await;
    olive.expect_silence().await;

    // Olive joins the inbox: from now on she hears of it.
    fixtures::add_member(&app, &cast.admin, cast.inbox, &cast.olive).await;
    inbound(&app, &cast.line, &customer(1), "Anyone?").await;
    let events = olive.events(2).await;
    assert_eq!(types(&events), ["message.created", "conversation.updated"]);
    assert_eq!(conversation_of(&events[0]), conversation);
}

async fn with_assigned_and_unassigned_an_agent_stops_hearing_of_a_colleagues_conversation(
    app: TestApp,
) {
    let cast = cast(&app, json!({"agent_visibility": "assigned_and_unassigned"})).await;
    let team = fixtures::team(&app, &cast.admin, "Tier 2", &[&cast.alex, &cast.bea]).await;
    let mut admin = Ws::connect(addr(&app), &cast.admin, "admin").await;
    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    let mut bea = Ws::connect(addr(&app), &cast.bea, "bea").await;

    // Unassigned: every member hears of it.
    let conversation = cast.line.text(&app, &customer(1), "Hi").await;
    for ws in [&mut admin, &mut alex, &mut bea] {
        let events = ws.events(3).await;
        assert_eq!(
            types(&events),
            [
                "conversation.created",
                "message.created",
                "conversation.updated"
            ]
        );
    }

    // Assigned to Alex: Bea may no longer see it, so she hears nothing more of it.
    app.post(
        &format!("/v1/conversations/{conversation}/assign"),
        &cast.admin.token,
        json!({"assignee_id": cast.alex.user_id}),
    )
    .await
    .expect(200);
    let events = alex.events(2).await;
    assert_eq!(
        types(&events),
        ["message.created", "conversation.assigned"],
        "{events:?}"
    );
    assert_eq!(events[0]["data"]["message"]["kind"], "activity");
    let assigned = &events[1]["data"];
    assert_eq!(assigned["assignee_id"], cast.alex.user_id);
    assert_eq!(assigned["previous_assignee_id"], Value::Null);
    assert_eq!(assigned["by_user_id"], cast.admin.user_id);
    assert_eq!(assigned["conversation"]["assignee_id"], cast.alex.user_id);
    assert_eq!(admin.events(2).await, events);
    bea.expect_silence().await;

    inbound(&app, &cast.line, &customer(1), "Still there?").await;
    let events = alex.events(2).await;
    assert_eq!(types(&events), ["message.created", "conversation.updated"]);
    assert_eq!(admin.events(2).await, events);
    bea.expect_silence().await;
    // The REST view agrees: the conversation is invisible to her.
    app.get(
        &format!("/v1/conversations/{conversation}"),
        &cast.bea.token,
    )
    .await
    .expect_problem(404, "not_found");

    // Handed to Alex within Bea's team: she sees it again, and hears of it again.
    app.post(
        &format!("/v1/conversations/{conversation}/assign"),
        &cast.admin.token,
        json!({"assignee_id": cast.alex.user_id, "team_id": team}),
    )
    .await
    .expect(200);
    let events = bea.events(2).await;
    assert_eq!(
        types(&events),
        ["message.created", "conversation.assigned"],
        "{events:?}"
    );
    assert_eq!(events[1]["data"]["conversation"]["team_id"], team);
    assert_eq!(alex.events(2).await, events);
    inbound(&app, &cast.line, &customer(1), "Hello again").await;
    let events = bea.events(2).await;
    assert_eq!(types(&events), ["message.created", "conversation.updated"]);
    assert_eq!(alex.events(2).await, events);
}

async fn a_note_reaches_the_other_members_and_never_an_outsider(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let conversation = cast
        .line
        .text(&app, &customer(1), "Can I change my address?")
        .await;
    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    let mut bea = Ws::connect(addr(&app), &cast.bea, "bea").await;
    let mut admin = Ws::connect(addr(&app), &cast.admin, "admin").await;
    let mut olive = Ws::connect(addr(&app), &cast.olive, "olive (not a member)").await;

    let note = app
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            &cast.alex.token,
            json!({"body": "Bea, can you check the order?", "kind": "note"}),
        )
        .await
        .expect(201);
    let event = bea.expect_event("message.created").await;
    assert_eq!(event["data"]["conversation_id"], conversation);
    assert_eq!(event["data"]["message"]["id"], note.id());
    assert_eq!(event["data"]["message"]["kind"], "note");
    assert_eq!(
        event["data"]["message"]["body"],
        "Bea, can you check the order?"
    );
    assert_eq!(event["data"]["message"]["author"]["type"], "user");
    assert_eq!(event["data"]["message"]["author"]["id"], cast.alex.user_id);
    assert_eq!(admin.expect_event("message.created").await, event);
    // The author's other tabs and devices hear of it too.
    assert_eq!(alex.expect_event("message.created").await, event);
    olive.expect_silence().await;
}

async fn a_reassigned_conversation_is_announced_to_the_previous_assignee_then_goes_quiet(
    app: TestApp,
) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mia Manager").await;
    let a = app.user(&admin, "agent", "Ann Agent").await;
    let b = app.user(&admin, "agent", "Ben Agent").await;
    let inbox = fixtures::inbox(
        &app,
        &admin,
        "Support",
        json!({"agent_visibility": "assigned_and_unassigned"}),
        &[&manager, &a, &b],
    )
    .await;
    let line = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let conversation = line.text(&app, &customer(1), "Hello").await;
    let assign = format!("/v1/conversations/{conversation}/assign");
    app.post(&assign, &manager.token, json!({"assignee_id": a.user_id}))
        .await
        .expect(200);

    let mut ann = Ws::connect(addr(&app), &a, "ann (previous assignee)").await;
    let mut ben = Ws::connect(addr(&app), &b, "ben (new assignee)").await;
    let mut mia = Ws::connect(addr(&app), &manager, "mia (manager)").await;

    app.post(&assign, &manager.token, json!({"assignee_id": b.user_id}))
        .await
        .expect(200);
    let taken = ann.expect_event("conversation.assigned").await;
    let data = &taken["data"];
    assert_eq!(data["conversation"]["id"], conversation, "{taken}");
    assert_eq!(data["conversation"]["assignee_id"], b.user_id, "{taken}");
    assert_eq!(data["previous_assignee_id"], a.user_id, "{taken}");
    assert_eq!(data["assignee_id"], b.user_id, "{taken}");
    assert_eq!(data["by_user_id"], manager.user_id, "{taken}");

    let events = ben.events(2).await;
    assert_eq!(
        types(&events),
        ["message.created", "conversation.assigned"],
        "{events:?}"
    );
    assert_eq!(events[0]["data"]["message"]["kind"], "activity");
    assert_eq!(events[1], taken);
    assert_eq!(mia.events(2).await, events);
    ann.expect_silence().await;

    // From now on the conversation is Ben's: Ann hears nothing more of it.
    inbound(&app, &line, &customer(1), "Are you the right person?").await;
    let reply = app
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            &b.token,
            json!({"body": "Yes, I am"}),
        )
        .await
        .expect(201);
    let events = ben.events(4).await;
    assert_eq!(
        types(&events),
        [
            "message.created",
            "conversation.updated",
            "message.created",
            "conversation.updated"
        ]
    );
    assert_eq!(events[2]["data"]["message"]["id"], reply.id());
    assert_eq!(mia.events(4).await, events);
    ann.expect_silence().await;
}

// ---------------------------------------------------------------------------------------
// Client frames

async fn typing_reaches_the_others_who_can_see_the_conversation(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let conversation = cast.line.text(&app, &customer(1), "Hello").await;
    let elsewhere = fixtures::inbox(&app, &cast.admin, "Billing", json!({}), &[&cast.bea]).await;
    let billing_line = sms_channel(&app, &cast.admin, elsewhere, "+14155550001").await;
    let hidden = billing_line.text(&app, &customer(2), "Invoice?").await;

    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    let mut bea = Ws::connect(addr(&app), &cast.bea, "bea").await;
    let mut admin = Ws::connect(addr(&app), &cast.admin, "admin").await;
    let mut olive = Ws::connect(addr(&app), &cast.olive, "olive (not a member)").await;
    let is_typing = |frame: &Value| frame["type"] == "typing";

    alex.send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    for (ws, who) in [(&mut bea, "bea"), (&mut admin, "admin")] {
        let frame = ws.next_matching(PATIENCE, "typing", is_typing).await;
        assert!(
            frame.get("id").is_none(),
            "{who}: typing is ephemeral, without a cursor: {frame}"
        );
        assert_eq!(
            frame["data"]["conversation_id"], conversation,
            "{who}: {frame}"
        );
        assert_eq!(
            frame["data"]["user_id"], cast.alex.user_id,
            "{who}: {frame}"
        );
    }
    alex.expect_no("typing (own)", is_typing).await;
    olive.expect_no("typing", is_typing).await;

    // Typing in a conversation the sender cannot see is relayed to nobody.
    alex.send(json!({"type": "typing", "conversation_id": hidden}))
        .await;
    bea.expect_no("typing", is_typing).await;
    admin.expect_no("typing", is_typing).await;

    // Bea types in Billing: Alex is no member there.
    bea.send(json!({"type": "typing", "conversation_id": hidden}))
        .await;
    let frame = admin.next_matching(PATIENCE, "typing", is_typing).await;
    assert_eq!(
        frame["data"],
        json!({"conversation_id": hidden, "user_id": cast.bea.user_id})
    );
    alex.expect_no("typing", is_typing).await;

    // Viewing is relayed the same way.
    bea.send(json!({"type": "viewing", "conversation_id": conversation}))
        .await;
    let frame = alex
        .next_matching(PATIENCE, "viewing", |frame| frame["type"] == "viewing")
        .await;
    assert!(frame.get("id").is_none(), "{frame}");
    assert_eq!(
        frame["data"],
        json!({"conversation_id": conversation, "user_id": cast.bea.user_id})
    );
    olive
        .expect_no("viewing", |frame| frame["type"] == "viewing")
        .await;

    // Ephemeral frames never enter the log.
    let replayed = replay_all(&app, &app.url(""), &cast.admin, 0).await;
    assert!(
        replayed.iter().all(|event| event["type"] != "typing"),
        "{replayed:?}"
    );
}

async fn ping_answers_pong_and_a_bad_frame_closes_with_4400(app: TestApp) {
    let admin = app.admin().await;
    let mut ws = Ws::open(addr(&app), &admin, TokenIn::Header, "admin").await;
    for _ in 0..3 {
        ws.send(json!({"type": "ping"})).await;
        let pong = ws
            .next_matching(PATIENCE, "pong", |frame| frame["type"] == "pong")
            .await;
        assert_eq!(pong, json!({"type": "pong"}));
    }
    ws.send(json!({"type": "dance"})).await;
    assert_eq!(ws.expect_close().await, Some(4400));

    let mut ws = Ws::connect(addr(&app), &admin, "admin").await;
    ws.send(json!({"type": "resume", "after": "not a cursor"}))
        .await;
    assert_eq!(ws.expect_close().await, Some(4400));

    // Frames have a bound (16 KiB): a larger one closes the socket.
    let mut ws = Ws::connect(addr(&app), &admin, "admin").await;
    ws.send(json!({"type": "typing", "conversation_id": 1, "padding": "x".repeat(20 * 1024)}))
        .await;
    assert_eq!(ws.expect_close().await, Some(4400));
}

/// The HTTP status of a refused upgrade.
async fn refused(addr: SocketAddr, token: Option<&str>, how: TokenIn) -> (u16, Value) {
    match try_connect(addr, token, how).await {
        Ok(_) => panic!("the upgrade was accepted with token {token:?}"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|bytes| serde_json::from_slice(bytes).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn bad_tokens_are_refused_before_the_upgrade_and_deactivation_closes_open_sockets_with_4401(
    app: TestApp,
) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let at = addr(&app);
    for (token, how) in [
        (Some("garbage"), TokenIn::Header),
        (Some("garbage"), TokenIn::Query),
        (None, TokenIn::Header),
    ] {
        let (status, body) = refused(at, token, how).await;
        assert_eq!(status, 401, "{token:?} as {how:?}");
        assert_eq!(
            body["code"], "unauthenticated",
            "{token:?} as {how:?}: {body}"
        );
    }
    // A token signed with another key is no better.
    let forged = format!("{}x", admin.token);
    assert_eq!(refused(at, Some(&forged), TokenIn::Header).await.0, 401);

    // Deactivation: the open socket closes at once with 4401, and no new one is let in.
    let mut open = Ws::connect(at, &ana, "ana").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&ana]).await;
    let line = sms_channel(&app, &admin, inbox, "+14155550000").await;
    line.text(&app, &customer(1), "Hello").await;
    open.events(3).await;
    let mut watching = Ws::connect(at, &admin, "admin").await;
    app.patch(
        &format!("/v1/users/{}", ana.user_id),
        &admin.token,
        json!({"active": false}),
    )
    .await
    .expect(200);
    assert_eq!(open.expect_close().await, Some(4401));
    let (status, body) = refused(at, Some(&ana.token), TokenIn::Header).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_disabled")),
        "{body}"
    );
    // The others carry on, the organization-wide events (a contact opting out) included.
    line.text(&app, &customer(1), "Anyone?").await;
    watching.events(2).await;
    line.text(&app, &customer(1), "STOP").await;
    let events = watching.events(3).await;
    assert_eq!(
        types(&events),
        ["contact.updated", "message.created", "conversation.updated"]
    );
    assert_eq!(events[0]["data"]["contact"]["opted_out"]["sms"], true);
}

// ---------------------------------------------------------------------------------------
// Replay

async fn resume_replays_exactly_what_was_missed_in_order_then_continues_live(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let billing = fixtures::inbox(&app, &cast.admin, "Billing", json!({}), &[&cast.olive]).await;
    let billing_line = sms_channel(&app, &cast.admin, billing, "+14155550001").await;

    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    let first = inbound(&app, &cast.line, &customer(1), "First").await;
    let seen = alex.events(3).await;
    let last = cursor(&seen[2]);
    alex.disconnect().await;

    // While Alex is away: five messages in his inbox, and traffic in one he is not in.
    let mut bodies = Vec::new();
    for n in 0..5 {
        let body = format!("Missed {n}");
        inbound(&app, &cast.line, &customer(1), &body).await;
        inbound(&app, &billing_line, &customer(2), &format!("Billing {n}")).await;
        bodies.push(body);
    }

    // A new socket (the browser's way, token in the query) resumes at once.
    let mut alex = Ws::open(addr(&app), &cast.alex, TokenIn::Query, "alex (back)").await;
    alex.send(json!({"type": "resume", "after": last.to_string()}))
        .await;
    let missed = alex.events(10).await;
    assert_increasing(&missed, "alex");
    assert!(cursor(&missed[0]) > last);
    for (n, pair) in missed.chunks(2).enumerate() {
        assert_eq!(
            types(pair),
            ["message.created", "conversation.updated"],
            "{missed:?}"
        );
        assert_eq!(pair[0]["data"]["conversation_id"], first["conversation_id"]);
        assert_eq!(pair[0]["data"]["message"]["body"], bodies[n]);
        assert_eq!(
            pair[1]["data"]["conversation"]["last_message_preview"],
            bodies[n]
        );
    }
    alex.expect_silence().await;
    // The REST replay is the same list.
    assert_eq!(
        replay_all(&app, &app.url(""), &cast.alex, last).await,
        missed
    );

    // Then live, as usual, without a gap or a repeat.
    let live = inbound(&app, &cast.line, &customer(1), "Live again").await;
    let events = alex.events(2).await;
    assert_eq!(types(&events), ["message.created", "conversation.updated"]);
    assert_eq!(events[0]["data"]["message"]["id"], live["message_id"]);
    assert!(cursor(&events[0]) > cursor(&missed[9]));
    alex.expect_silence().await;

    // Olive (Billing only) resumes from the same point: hers only.
    let mut olive = Ws::open(addr(&app), &cast.olive, TokenIn::Header, "olive").await;
    olive
        .send(json!({"type": "resume", "after": last.to_string()}))
        .await;
    let hers = olive.events(11).await;
    assert_increasing(&hers, "olive");
    assert_eq!(
        types(&hers[..3]),
        [
            "conversation.created",
            "message.created",
            "conversation.updated"
        ]
    );
    assert!(
        hers.iter()
            .all(|event| conversation_of(event) == conversation_of(&hers[0]))
    );
    assert_ne!(
        conversation_of(&hers[0]),
        first["conversation_id"].as_i64().unwrap()
    );
    olive.expect_silence().await;

    // Resuming from the newest cursor replays nothing and goes on live.
    let mut again = Ws::open(
        addr(&app),
        &cast.alex,
        TokenIn::Header,
        "alex (third socket)",
    )
    .await;
    again
        .send(json!({"type": "resume", "after": cursor(&events[1]).to_string()}))
        .await;
    again.expect_silence().await;
    inbound(&app, &cast.line, &customer(1), "And again").await;
    let next = again.events(2).await;
    assert!(cursor(&next[0]) > cursor(&events[1]));
}

async fn rest_replay_gives_the_same_events_filtered_and_paged(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let billing = fixtures::inbox(&app, &cast.admin, "Billing", json!({}), &[&cast.olive]).await;
    let billing_line = sms_channel(&app, &cast.admin, billing, "+14155550001").await;
    let start = latest_cursor(&app, &cast.admin).await;
    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    let mut admin = Ws::connect(addr(&app), &cast.admin, "admin").await;

    let conversation = cast.line.text(&app, &customer(1), "Hello").await;
    billing_line.text(&app, &customer(2), "Invoice?").await;
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &cast.bea.token,
        json!({"body": "VIP", "kind": "note"}),
    )
    .await
    .expect(201);
    cast.line.text(&app, &customer(1), "Hello?").await;
    let live_alex = alex.events(3 + 1 + 2).await;
    let live_admin = admin.events(3 + 3 + 1 + 2).await;
    alex.expect_silence().await;

    let base = app.url("");
    // The same frames, byte for byte in JSON terms: id, type, at, data.
    assert_eq!(replay_all(&app, &base, &cast.alex, start).await, live_alex);
    assert_eq!(
        replay_all(&app, &base, &cast.admin, start).await,
        live_admin
    );
    let hers = replay_all(&app, &base, &cast.olive, start).await;
    assert_eq!(
        types(&hers),
        [
            "conversation.created",
            "message.created",
            "conversation.updated"
        ]
    );
    assert!(
        hers.iter()
            .all(|event| conversation_of(event) != conversation)
    );
    assert!(replay_all(&app, &base, &cast.globex, 0).await.is_empty());

    // Pages: `next_cursor` is the last item's id until caught up, then null.
    let mut after = start.to_string();
    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let page = events_page(&app, &base, &cast.alex, &format!("after={after}&limit=2"))
            .await
            .expect(200);
        let items = page.body["items"].as_array().expect("items").clone();
        pages += 1;
        assert!(items.len() <= 2, "{}", page.body);
        paged.extend(items.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(
                    items.len(),
                    2,
                    "a page before the end is full: {}",
                    page.body
                );
                assert_eq!(next, items[1]["id"].as_str().unwrap(), "{}", page.body);
                after = next.to_string();
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(paged, live_alex);
    assert_eq!(pages, 3);

    // Caught up: nothing, and no next cursor.
    let newest = cursor(live_admin.last().unwrap());
    let page = events_page(&app, &base, &cast.alex, &format!("after={newest}"))
        .await
        .expect(200);
    assert_eq!(page.body, json!({"items": [], "next_cursor": null}));
    // Olive's last visible event is followed by ones she may not see: the scan passes them.
    let page = events_page(
        &app,
        &base,
        &cast.olive,
        &format!("after={}", cursor(&hers[2])),
    )
    .await
    .expect(200);
    assert_eq!(page.body, json!({"items": [], "next_cursor": null}));

    // Bad requests.
    events_page(&app, &base, &cast.alex, "after=yesterday")
        .await
        .expect_problem(400, "bad_request");
    events_page(&app, &base, &cast.alex, "after=-1")
        .await
        .expect_problem(400, "bad_request");
    events_page(&app, &base, &cast.alex, &format!("after={start}&limit=0"))
        .await
        .expect_problem(400, "bad_request");
    let anonymous = app
        .client()
        .get(app.url("/v1/events?after=0"))
        .send()
        .await
        .expect("request");
    into_reply(anonymous)
        .await
        .expect_problem(401, "unauthenticated");
}

async fn an_expired_cursor_is_refused_with_410_and_close_4409(app: TestApp) {
    let cast = cast(&app, json!({})).await;
    let mut alex = Ws::connect(addr(&app), &cast.alex, "alex").await;
    cast.line.text(&app, &customer(1), "Hello").await;
    let old = alex.events(3).await;
    let (oldest, newest) = (cursor(&old[0]), cursor(&old[2]));

    // The retention job runs: everything written so far is gone from the log.
    let store = app.running().state.store.clone();
    let purged = actix_web::web::block(move || {
        store.write(|conn| {
            persistence::repo::events::purge_before(
                conn,
                persistence::now() + Duration::from_secs(60),
            )
        })
    })
    .await
    .expect("blocking pool")
    .expect("purge");
    assert!(purged >= 3, "purged {purged}");

    let base = app.url("");
    for after in [0, oldest - 1, oldest] {
        events_page(&app, &base, &cast.alex, &format!("after={after}"))
            .await
            .expect_problem(410, "cursor_expired");
    }
    let mut stale = Ws::open(
        addr(&app),
        &cast.alex,
        TokenIn::Header,
        "alex (stale cursor)",
    )
    .await;
    stale
        .send(json!({"type": "resume", "after": oldest.to_string()}))
        .await;
    assert_eq!(stale.expect_close().await, Some(4409));

    // The newest cursor lost nothing: it is still good.
    let page = events_page(&app, &base, &cast.alex, &format!("after={newest}"))
        .await
        .expect(200);
    assert_eq!(page.body["items"], json!([]));
    let mut current = Ws::open(
        addr(&app),
        &cast.alex,
        TokenIn::Header,
        "alex (current cursor)",
    )
    .await;
    current
        .send(json!({"type": "resume", "after": newest.to_string()}))
        .await;
    current.expect_silence().await;
    cast.line.text(&app, &customer(1), "Still there?").await;
    let fresh = current.events(2).await;
    assert!(cursor(&fresh[0]) > newest);
    assert_eq!(alex.events(2).await, fresh);
    assert_eq!(replay_all(&app, &base, &cast.alex, newest).await, fresh);
    // One before the oldest kept event is still complete; one further back is not.
    let kept = cursor(&fresh[0]);
    assert_eq!(replay_all(&app, &base, &cast.alex, kept - 1).await, fresh);
    events_page(&app, &base, &cast.alex, &format!("after={}", kept - 2))
        .await
        .expect_problem(410, "cursor_expired");
    let mut stale = Ws::open(addr(&app), &cast.alex, TokenIn::Query, "alex (stale again)").await;
    stale
        .send(json!({"type": "resume", "after": (kept - 2).to_string()}))
        .await;
    assert_eq!(stale.expect_close().await, Some(4409));
}

async fn a_sign_out_closes_that_sessions_sockets_with_4402_and_no_other(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let email = app.get("/v1/me", &ana.token).await.expect(200).body["email"]
        .as_str()
        .expect("an e-mail")
        .to_string();
    let laptop = app.login(&email, crate::support::PASSWORD).await;
    let at = addr(&app);
    let mut phone_socket = Ws::connect(at, &ana, "ana's phone").await;
    let mut laptop_socket = Ws::connect(at, &laptop, "ana's laptop").await;
    app.send(
        reqwest::Method::POST,
        "/v1/auth/logout",
        None,
        Some(json!({"refresh_token": ana.refresh_token})),
    )
    .await
    .expect(204);
    assert_eq!(phone_socket.expect_close().await, Some(4402));
    // The ended session cannot open another one; the other session's socket goes on.
    let (status, body) = refused(at, Some(&ana.token), TokenIn::Header).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    laptop_socket.ready().await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&ana]).await;
    let line = sms_channel(&app, &admin, inbox, "+14155550000").await;
    line.text(&app, &customer(1), "Hello").await;
    laptop_socket.events(3).await;

    // A new password ends every session of hers, this socket's included.
    app.patch(
        &format!("/v1/users/{}", ana.user_id),
        &admin.token,
        json!({"password": "an entirely new passphrase"}),
    )
    .await
    .expect(200);
    assert_eq!(laptop_socket.expect_close().await, Some(4402));
}

on_both_backends!(
    a_sign_out_closes_that_sessions_sockets_with_4402_and_no_other,
    a_customer_message_reaches_the_inbox_members_and_admins_only,
    with_assigned_and_unassigned_an_agent_stops_hearing_of_a_colleagues_conversation,
    a_note_reaches_the_other_members_and_never_an_outsider,
    a_reassigned_conversation_is_announced_to_the_previous_assignee_then_goes_quiet,
    typing_reaches_the_others_who_can_see_the_conversation,
    ping_answers_pong_and_a_bad_frame_closes_with_4400,
    bad_tokens_are_refused_before_the_upgrade_and_deactivation_closes_open_sockets_with_4401,
    resume_replays_exactly_what_was_missed_in_order_then_continues_live,
    rest_replay_gives_the_same_events_filtered_and_paged,
    an_expired_cursor_is_refused_with_410_and_close_4409,
);
