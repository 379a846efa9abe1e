//! The web chat widget end to end: a visitor starts a session from an allowed page, chats
//! with an agent over REST and the visitor socket, and never sees a note; origins, tokens
//! and rates are checked.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::attachments::png;
use crate::fixtures::messages;
use crate::on_both_backends_run_by;
use crate::realtime::Ws;
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};

const SHOP: &str = "https://shop.example";
const PATIENCE: Duration = Duration::from_secs(10);
/// Long enough for a frame that should not come to have come.
const SILENCE: Duration = Duration::from_millis(400);

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A web chat channel on a new inbox with `agent` in it; answers (channel, inbox).
async fn webchat(app: &TestApp, admin: &Session, agent: &Session) -> (Value, i64) {
    let inbox = app.inbox(admin, "Website", json!({}), &[agent]).await;
    let channel = app
        .post(
            &format!("/v1/inboxes/{inbox}/channels"),
            &admin.token,
            json!({"type": "webchat", "provider": "webchat", "address": "shop.example", "name": "Shop chat",
                   "credentials": {"allowed_origins": [SHOP]}}),
        )
        .await
        .expect(201)
        .body;
    (channel, inbox)
}

/// A request of the widget, from `origin`, with the visitor's token when given.
async fn widget(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    origin: Option<&str>,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client().request(method, app.url(path));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// A web chat and an agent of its inbox.
struct Site {
    agent: Session,
    channel: Value,
    widget_token: String,
}

async fn site(app: &TestApp) -> Site {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let (channel, _) = webchat(app, &admin, &agent).await;
    let widget_token = channel["widget_token"]
        .as_str()
        .expect("widget_token")
        .to_string();
    Site {
        agent,
        channel,
        widget_token,
    }
}

/// A visitor's session: their token and their conversation.
struct Visit {
    token: String,
    conversation: i64,
    reply: Reply,
}

async fn visit(app: &TestApp, widget_token: &str, body: Value) -> Visit {
    let reply = start(app, widget_token, body).await.expect(201);
    Visit {
        token: reply.body["visitor_token"]
            .as_str()
            .expect("visitor_token")
            .to_string(),
        conversation: reply.body["conversation_id"]
            .as_i64()
            .expect("conversation_id"),
        reply,
    }
}

async fn start(app: &TestApp, widget_token: &str, body: Value) -> Reply {
    widget(
        app,
        reqwest::Method::POST,
        &format!("/v1/webchat/{widget_token}/sessions"),
        Some(SHOP),
        None,
        Some(body),
    )
    .await
}

async fn visitor_socket(
    app: &TestApp,
    token: &str,
    origin: &str,
) -> Result<Stream, tungstenite::Error> {
    let addr = app.running().addr;
    let mut request = format!("ws://{addr}/v1/webchat/ws?visitor_token={token}")
        .into_client_request()
        .expect("a WebSocket URL");
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin).expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(stream, _)| stream)
}

/// The visitor's next JSON frame within `wait`, pongs skipped.
async fn next_frame(stream: &mut Stream, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) | Ok(None) => return None,
            Ok(Some(Err(error))) => panic!("visitor socket: {error}"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                if frame["type"] != "pong" {
                    return Some(frame);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => panic!("visitor socket closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Pings and waits for the pong: the socket follows the bus from here on.
async fn ready(stream: &mut Stream) {
    stream
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .expect("ping");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().contains("pong") => return,
            Ok(Some(Ok(_))) => {}
            other => panic!("no pong from the visitor socket: {other:?}"),
        }
    }
}

async fn a_visitor_chats_with_an_agent_end_to_end_and_never_sees_a_note(app: TestApp) {
    let Site {
        agent,
        channel,
        widget_token,
    } = site(&app).await;
    assert_eq!(channel["provider"], "webchat");
    assert!(channel["callback_url"].is_null());

    // The widget on the shop's page: the preflight and the session.
    let preflight = app
        .client()
        .request(reqwest::Method::OPTIONS, app.url("/v1/webchat/messages"))
        .header("Origin", SHOP)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(SHOP)
    );
    let session = start(
        &app,
        &widget_token,
        json!({"name": "Vera Visitor", "email": "vera@example.com"}),
    )
    .await
    .expect(201);
    assert_eq!(session.header("access-control-allow-origin"), Some(SHOP));
    let token = session.body["visitor_token"]
        .as_str()
        .expect("visitor_token")
        .to_string();
    let conversation = session.body["conversation_id"]
        .as_i64()
        .expect("conversation_id");

    // The agent sees the conversation with the visitor's contact; both have sockets.
    let seen = app
        .get(&format!("/v1/conversations/{conversation}"), &agent.token)
        .await
        .expect(200);
    assert_eq!(seen.body["contact"]["name"], "Vera Visitor");
    assert_eq!(seen.body["contact"]["email"], "vera@example.com");
    let mut agent_socket = Ws::connect(app.running().addr, &agent, "agent").await;
    let mut visitor = visitor_socket(&app, &token, SHOP)
        .await
        .expect("visitor socket");
    ready(&mut visitor).await;

    let asked = widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        Some(json!({"body": "Hi, where is my order?"})),
    )
    .await
    .expect(201);
    assert_eq!(asked.body["author"], "visitor");
    assert_eq!(asked.header("access-control-allow-origin"), Some(SHOP));
    let theirs = messages(&app, &agent, conversation).await;
    assert_eq!(theirs[0]["body"], "Hi, where is my order?");
    assert_eq!(theirs[0]["direction"], "inbound");
    // Their own message comes back on their socket too (another tab of theirs sees it).
    let echo = next_frame(&mut visitor, PATIENCE)
        .await
        .expect("the visitor's own message");
    assert_eq!(echo["type"], "message.created");
    assert_eq!(echo["data"]["message"]["author"], "visitor");

    // A note: never on the visitor's socket, never in their thread.
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &agent.token,
        json!({"body": "VIP customer, be nice", "kind": "note"}),
    )
    .await
    .expect(201);
    // Typing, then the reply.
    agent_socket
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let typing = next_frame(&mut visitor, PATIENCE).await.expect("typing");
    assert_eq!(typing["type"], "typing", "{typing}");
    assert_eq!(typing["data"]["conversation_id"], conversation);
    assert!(typing["data"].get("user_id").is_none(), "{typing}");
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &agent.token,
        json!({"body": "It left the warehouse today"}),
    )
    .await
    .expect(201);
    let replied = next_frame(&mut visitor, PATIENCE)
        .await
        .expect("the agent's reply");
    assert_eq!(replied["type"], "message.created", "{replied}");
    assert_eq!(
        replied["data"]["message"]["body"],
        "It left the warehouse today"
    );
    assert_eq!(replied["data"]["message"]["author"], "agent");
    // Another visitor's chat, and the agent's reply there: nothing of it on this socket.
    let stranger = visit(&app, &widget_token, json!({"name": "Sam Stranger"})).await;
    widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&stranger.token),
        Some(json!({"body": "Is the shop open?"})),
    )
    .await
    .expect(201);
    app.post(
        &format!("/v1/conversations/{}/messages", stranger.conversation),
        &agent.token,
        json!({"body": "Until six"}),
    )
    .await
    .expect(201);
    assert!(
        next_frame(&mut visitor, SILENCE).await.is_none(),
        "more than the reply arrived"
    );

    let thread = widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        None,
    )
    .await
    .expect(200);
    let bodies: Vec<&str> = thread.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        ["Hi, where is my order?", "It left the warehouse today"]
    );
    assert!(
        !thread.body.to_string().contains("VIP"),
        "a note leaked: {}",
        thread.body
    );

    // The agent closes it; the visitor's next message opens a new conversation.
    app.post(
        &format!("/v1/conversations/{conversation}/close"),
        &agent.token,
        json!({}),
    )
    .await
    .expect(200);
    let again = widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        Some(json!({"body": "One more thing"})),
    )
    .await
    .expect(201);
    let second = again.body["conversation_id"]
        .as_i64()
        .expect("conversation_id");
    assert_ne!(second, conversation);
    let thread = widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        None,
    )
    .await
    .expect(200);
    assert_eq!(thread.body["conversation_id"], second);
    // The socket follows the new conversation too.
    let echo = next_frame(&mut visitor, PATIENCE)
        .await
        .expect("the new conversation's message");
    assert_eq!(echo["data"]["conversation_id"], second, "{echo}");
    app.post(
        &format!("/v1/conversations/{second}/messages"),
        &agent.token,
        json!({"body": "Sure, go ahead"}),
    )
    .await
    .expect(201);
    let answer = next_frame(&mut visitor, PATIENCE)
        .await
        .expect("the reply in the new conversation");
    assert_eq!(answer["data"]["message"]["body"], "Sure, go ahead");
    agent_socket.disconnect().await;
}

async fn a_visitor_sends_a_file_the_agent_sees(app: TestApp) {
    let Site {
        agent,
        widget_token,
        ..
    } = site(&app).await;
    let widget_token = widget_token.as_str();
    let session = visit(&app, widget_token, json!({})).await;
    let token = session.token.clone();
    let conversation = session.conversation;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png())
            .file_name("receipt.png")
            .mime_str("image/png")
            .expect("mime"),
    );
    let uploaded = into_reply(
        app.client()
            .post(app.url("/v1/webchat/attachments"))
            .header("Origin", SHOP)
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect("upload"),
    )
    .await
    .expect(201);
    let file = uploaded.id();
    assert!(
        uploaded.body["url"]
            .as_str()
            .is_some_and(|url| url.contains("/v1/public/attachments/"))
    );
    // Another visitor cannot send it.
    let other = start(&app, widget_token, json!({})).await.expect(201);
    let other_token = other.body["visitor_token"].as_str().expect("token");
    widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(other_token),
        Some(json!({"attachment_ids": [file]})),
    )
    .await
    .expect_problem(422, "validation_failed");
    let sent = widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        Some(json!({"attachment_ids": [file]})),
    )
    .await
    .expect(201);
    assert_eq!(sent.body["attachments"][0]["id"], file);
    let seen = messages(&app, &agent, conversation).await;
    assert_eq!(seen[0]["attachments"][0]["content_type"], "image/png");
    // Sent once only.
    widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        Some(json!({"body": "again", "attachment_ids": [file]})),
    )
    .await
    .expect_problem(422, "validation_failed");
}

async fn other_origins_and_tokens_are_refused(app: TestApp) {
    let Site {
        agent,
        widget_token,
        ..
    } = site(&app).await;
    let widget_token = widget_token.as_str();
    let path = format!("/v1/webchat/{widget_token}/sessions");
    let refused = widget(
        &app,
        reqwest::Method::POST,
        &path,
        Some("https://evil.example"),
        None,
        Some(json!({})),
    )
    .await
    .expect_problem(403, "origin_not_allowed");
    assert_eq!(refused.header("access-control-allow-origin"), None);
    widget(
        &app,
        reqwest::Method::POST,
        "/v1/webchat/nope/sessions",
        Some(SHOP),
        None,
        Some(json!({})),
    )
    .await
    .expect_problem(404, "not_found");
    let session = start(&app, widget_token, json!({"email": "not an email"})).await;
    session.expect_problem(422, "validation_failed");
    let token = start(&app, widget_token, json!({})).await.expect(201).body["visitor_token"]
        .as_str()
        .expect("token")
        .to_string();
    widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some("https://evil.example"),
        Some(&token),
        None,
    )
    .await
    .expect_problem(403, "origin_not_allowed");
    widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some("forged"),
        None,
    )
    .await
    .expect_problem(401, "unauthenticated");
    // An agent's access token is not a visitor token, nor the other way round.
    widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&agent.token),
        None,
    )
    .await
    .expect_problem(401, "unauthenticated");
    app.get("/v1/conversations", &token)
        .await
        .expect_problem(401, "unauthenticated");
    match visitor_socket(&app, &token, "https://evil.example").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("a socket from another origin: {other:?}"),
    }
}

async fn visitors_are_rate_limited_per_token_and_address(app: TestApp) {
    let Site { widget_token, .. } = site(&app).await;
    let widget_token = widget_token.as_str();
    let token = start(&app, widget_token, json!({})).await.expect(201).body["visitor_token"]
        .as_str()
        .expect("token")
        .to_string();
    for _ in 0..3 {
        widget(
            &app,
            reqwest::Method::GET,
            "/v1/webchat/messages",
            Some(SHOP),
            Some(&token),
            None,
        )
        .await
        .expect(200);
    }
    let limited = widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        None,
    )
    .await
    .expect_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // Sessions per address: the first took one of three.
    start(&app, widget_token, json!({})).await.expect(201);
    start(&app, widget_token, json!({})).await.expect(201);
    start(&app, widget_token, json!({}))
        .await
        .expect_problem(429, "rate_limited");
}

/// The visitor writes from several tabs at the instant after an agent closed their
/// conversation: every message lands, all in one new conversation.
async fn visitor_messages_at_once_after_a_close_open_one_conversation(app: TestApp) {
    let Site {
        agent,
        widget_token,
        ..
    } = site(&app).await;
    let widget_token = widget_token.as_str();
    let session = visit(&app, widget_token, json!({})).await;
    let token = session.token.clone();
    let mut open = session.conversation;
    const TABS: usize = 3;
    for round in 0..crate::races::ROUNDS {
        app.post(
            &format!("/v1/conversations/{open}/close"),
            &agent.token,
            json!({}),
        )
        .await
        .expect(200);
        let bodies: Vec<String> = (0..TABS)
            .map(|tab| format!("round {round}, tab {tab}"))
            .collect();
        let replies = crate::races::at_once(TABS, |tab| {
            widget(
                &app,
                reqwest::Method::POST,
                "/v1/webchat/messages",
                Some(SHOP),
                Some(&token),
                Some(json!({"body": bodies[tab]})),
            )
        })
        .await;
        let landed: Vec<i64> = replies
            .iter()
            .map(|reply| {
                assert_eq!(reply.status, 201, "round {round}: {}", reply.body);
                reply.body["conversation_id"]
                    .as_i64()
                    .expect("conversation_id")
            })
            .collect();
        assert!(
            landed.iter().all(|id| *id == landed[0]),
            "round {round}: {landed:?}"
        );
        assert_ne!(
            landed[0], open,
            "round {round}: a closed conversation took a message"
        );
        open = landed[0];
        assert_eq!(
            messages(&app, &agent, open).await.len(),
            TABS,
            "round {round}"
        );
    }
}

/// A visitor session past its time opens nothing, and the hourly upkeep removes it; the
/// conversation stays with the agents.
async fn an_expired_visitor_session_opens_nothing(app: TestApp) {
    let Site {
        agent,
        widget_token,
        ..
    } = site(&app).await;
    let widget_token = widget_token.as_str();
    let session = visit(&app, widget_token, json!({})).await;
    let token = session.token.clone();
    let conversation = session.conversation;
    let expires: chrono::DateTime<chrono::Utc> = session.reply.body["expires_at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .expect("expires_at");
    let ttl = expires - chrono::Utc::now();
    assert!(
        ttl > chrono::TimeDelta::hours(11) && ttl <= chrono::TimeDelta::hours(12),
        "{ttl:?}"
    );
    let store = app.running().state.store.clone();
    let purged = actix_web::web::block(move || {
        store.write(|conn| {
            // As the upkeep does, a moment after the session's time.
            persistence::repo::visitors::purge_expired(
                conn,
                expires + chrono::TimeDelta::seconds(1),
            )
        })
    })
    .await
    .expect("blocking pool")
    .expect("purge");
    assert_eq!(purged, 1);
    widget(
        &app,
        reqwest::Method::GET,
        "/v1/webchat/messages",
        Some(SHOP),
        Some(&token),
        None,
    )
    .await
    .expect_problem(401, "unauthenticated");
    app.get(&format!("/v1/conversations/{conversation}"), &agent.token)
        .await
        .expect(200);
}

/// Runs a test on a server whose files (visitors' uploads) go to a directory of its own,
/// with several writers so that simultaneous requests run side by side.
async fn with_files<F, Fut>(backend: Backend, name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    support::run_with_data_dir(backend, name, crate::races::side_by_side, body).await;
}

async fn with_slow_visitors<F, Fut>(backend: Backend, name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    support::run_with_data_dir(backend, name, |config| config.visitor_rate = 3, body).await;
}

on_both_backends_run_by!(with_files =>
    a_visitor_chats_with_an_agent_end_to_end_and_never_sees_a_note,
    a_visitor_sends_a_file_the_agent_sees,
    other_origins_and_tokens_are_refused,
    visitor_messages_at_once_after_a_close_open_one_conversation,
    an_expired_visitor_session_opens_nothing,
);
on_both_backends_run_by!(with_slow_visitors => visitors_are_rate_limited_per_token_and_address);
