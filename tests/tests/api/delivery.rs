//! Outbound delivery: agents' messages are POSTed, signed, to the channel's `outbound_url`
//! by a worker that retries with backoff, survives restarts and never sends notes. A real
//! provider stand-in listens on 127.0.0.1 and answers with scripted statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use api::{Config, Running};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::on_both_backends_with;
use crate::support::{ADMIN_EMAIL, PASSWORD, Reply, Session, TestApp, into_reply, session_from};

const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";
const CUSTOMER: &str = "+14155552671";
const BUSINESS: &str = "+14155550100";
const SANDBOX: &str = "+14155550101";
const APPENDED: &str = "Reply STOP to opt out";
/// Every wait in this file gives up (and fails) after this long.
const PATIENCE: Duration = Duration::from_secs(10);

/// Short retry delays, so a retried delivery takes milliseconds.
fn fast_retries(config: &mut Config) {
    config.delivery_base_delay_ms = 50;
    config.delivery_max_attempts = 8;
}

/// Gives up after the second failure.
fn two_attempts(config: &mut Config) {
    fast_retries(config);
    config.delivery_max_attempts = 2;
    // A provider that never answers fails its attempt this soon.
    config.delivery_timeout_ms = 300;
}

/// Enough attempts that a delivery is still queued when the test restarts the server.
fn many_attempts(config: &mut Config) {
    fast_retries(config);
    config.delivery_max_attempts = 30;
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

// ---- the provider stand-in ----

/// One request the provider received, and what it answered.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) signature: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) raw: Vec<u8>,
    pub(crate) body: Value,
    pub(crate) answered: u16,
}

impl Seen {
    pub(crate) fn message_id(&self) -> i64 {
        self.body["message_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no message_id in {}", self.body))
    }
}

struct Script {
    /// Answers for the next requests, in order; then `otherwise`.
    next: VecDeque<u16>,
    otherwise: u16,
}

struct Log {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<Script>,
}

/// A provider on 127.0.0.1: records every request and answers as scripted; a 2xx answer
/// names the message `prov-<message_id>`.
pub(crate) struct Provider {
    pub(crate) url: String,
    log: Arc<Log>,
    handle: actix_web::dev::ServerHandle,
}

async fn provider_endpoint(log: web::Data<Log>, request: HttpRequest, raw: Bytes) -> HttpResponse {
    let answered = {
        let mut script = log.script.lock().expect("script lock");
        let otherwise = script.otherwise;
        script.next.pop_front().unwrap_or(otherwise)
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let external_id = format!("prov-{}", body["message_id"]);
    log.seen.lock().expect("log lock").push(Seen {
        signature: header(SIGNATURE_HEADER),
        content_type: header("content-type"),
        raw: raw.to_vec(),
        body,
        answered,
    });
    let status = StatusCode::from_u16(answered).expect("a valid status");
    if status.is_success() {
        HttpResponse::build(status).json(json!({"external_id": external_id, "status": "accepted"}))
    } else {
        HttpResponse::build(status).body("try again later")
    }
}

impl Provider {
    /// Listening, answering `otherwise` unless scripted.
    pub(crate) async fn start(otherwise: u16) -> Provider {
        let log = Arc::new(Log {
            seen: Mutex::new(Vec::new()),
            script: Mutex::new(Script {
                next: VecDeque::new(),
                otherwise,
            }),
        });
        let data = web::Data::from(log.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the provider");
        let addr = listener.local_addr().expect("provider address");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(provider_endpoint))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("provider listens")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Provider {
            url: format!("http://{addr}/send"),
            log,
            handle,
        }
    }

    /// The next requests get these answers, in order.
    fn script(&self, answers: &[u16]) {
        self.log
            .script
            .lock()
            .expect("script lock")
            .next
            .extend(answers);
    }

    fn answer_from_now_on(&self, status: u16) {
        self.log.script.lock().expect("script lock").otherwise = status;
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().expect("log lock").clone()
    }

    /// Waits until at least `count` requests arrived.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Seen> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} deliveries, the provider saw {}: {seen:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the requests seen so far satisfy `done`.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.seen();
            if done(&seen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

// ---- scenario ----

/// An inbox with an sms channel and a customer's conversation on it.
struct Scene {
    admin: Session,
    inbox: i64,
    channel: i64,
    secret: String,
    conversation: i64,
}

/// Creates an sms channel; answers its id and inbound secret.
async fn sms_channel(
    app: &TestApp,
    admin: &Session,
    inbox: i64,
    address: &str,
    outbound_url: Option<&str>,
) -> (i64, String) {
    let created = app
        .post(
            &format!("/v1/inboxes/{inbox}/channels"),
            &admin.token,
            json!({"type": "sms", "address": address, "name": address, "appended_message": APPENDED, "outbound_url": outbound_url}),
        )
        .await
        .expect(201);
    let secret = created.body["inbound_secret"]
        .as_str()
        .expect("inbound_secret")
        .to_string();
    (created.id(), secret)
}

/// A signed POST to one of the channel's provider endpoints (`inbound`, `status`).
async fn channel_call(
    app: &TestApp,
    channel: i64,
    endpoint: &str,
    secret: &str,
    body: Value,
) -> Reply {
    let raw = serde_json::to_vec(&body).expect("JSON");
    let response = app
        .client()
        .post(app.url(&format!("/v1/channels/{channel}/{endpoint}")))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret, &raw))
        .body(raw)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

/// The customer writes in; answers the conversation id.
async fn customer_writes(app: &TestApp, channel: i64, secret: &str, external_id: &str) -> i64 {
    let reply = channel_call(
        app,
        channel,
        "inbound",
        secret,
        json!({"external_id": external_id, "from": CUSTOMER, "body": "Hi, has my order shipped?"}),
    )
    .await
    .expect(200);
    reply.body["conversation_id"]
        .as_i64()
        .expect("conversation_id")
}

async fn scene(app: &TestApp, outbound_url: Option<&str>) -> Scene {
    let admin = app.admin().await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[]).await;
    let (channel, secret) = sms_channel(app, &admin, inbox, BUSINESS, outbound_url).await;
    let conversation = customer_writes(app, channel, &secret, "in-1").await;
    Scene {
        admin,
        inbox,
        channel,
        secret,
        conversation,
    }
}

/// An agent's reply (`kind` "message") or note; answers the created message.
async fn send(app: &TestApp, admin: &Session, conversation: i64, kind: &str, body: &str) -> Value {
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &admin.token,
        json!({"body": body, "kind": kind}),
    )
    .await
    .expect(201)
    .body
}

/// One message as the conversation lists it, read from the server at `base`.
async fn message_at(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: i64,
    id: i64,
) -> Value {
    let response = client
        .get(format!("{base}/v1/conversations/{conversation}/messages"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request reaches the server");
    let page = into_reply(response).await.expect(200);
    page.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("message {id} not in {}", page.body))
}

/// Waits until the message's delivery_status is `status`; answers the message.
async fn wait_for_status_at(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: i64,
    id: i64,
    status: &str,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let message = message_at(client, base, token, conversation, id).await;
        if message["delivery_status"] == status {
            return message;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} never became {status}: {message}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_for_status(
    app: &TestApp,
    token: &str,
    conversation: i64,
    id: i64,
    status: &str,
) -> Value {
    let base = app.url("");
    wait_for_status_at(app.client(), &base, token, conversation, id, status).await
}

fn id_of(message: &Value) -> i64 {
    message["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {message}"))
}

// ---- the tests ----

async fn a_reply_is_posted_signed_and_then_sent(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Yes, it left this morning.",
    )
    .await;
    assert_eq!(sent["delivery_status"], "queued", "{sent}");
    let seen = provider.wait_for(1).await;
    let request = &seen[0];
    assert_eq!(
        request.signature.as_deref(),
        Some(sign(&scene.secret, &request.raw).as_str()),
        "signed with the channel's secret"
    );
    assert!(
        request
            .content_type
            .as_deref()
            .is_some_and(|value| value.starts_with("application/json")),
        "{:?}",
        request.content_type
    );
    assert_eq!(request.body["message_id"], id_of(&sent));
    assert_eq!(request.body["channel_id"], scene.channel);
    assert_eq!(request.body["conversation_id"], scene.conversation);
    assert_eq!(request.body["to"], CUSTOMER);
    assert_eq!(request.body["from"], BUSINESS);
    assert_eq!(
        request.body["body"],
        format!("Yes, it left this morning.\n\n{APPENDED}")
    );
    assert_eq!(request.body["attachments"], json!([]));
    let delivered = wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id_of(&sent),
        "sent",
    )
    .await;
    assert_eq!(delivered["body"], request.body["body"]);
    assert_eq!(provider.seen().len(), 1, "accepted once, sent once");
    provider.stop().await;
}

async fn failed_attempts_are_retried_until_accepted(app: TestApp) {
    let provider = Provider::start(200).await;
    provider.script(&[500, 500]);
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "On its way",
    )
    .await;
    wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id_of(&sent),
        "sent",
    )
    .await;
    let seen = provider.seen();
    let answers: Vec<u16> = seen.iter().map(|seen| seen.answered).collect();
    assert_eq!(answers, [500, 500, 200], "{seen:?}");
    for attempt in &seen {
        assert_eq!(attempt.message_id(), id_of(&sent));
        assert_eq!(
            attempt.raw, seen[0].raw,
            "every attempt sends the same body"
        );
        assert_eq!(
            attempt.signature.as_deref(),
            Some(sign(&scene.secret, &attempt.raw).as_str())
        );
    }
    provider.stop().await;
}

async fn a_delivery_that_keeps_failing_ends_failed(app: TestApp) {
    let provider = Provider::start(500).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(&app, &scene.admin, scene.conversation, "message", "Hello?").await;
    wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id_of(&sent),
        "failed",
    )
    .await;
    let seen = provider.seen();
    assert_eq!(
        seen.len(),
        2,
        "the configured two attempts, then it gave up: {seen:?}"
    );
    provider.stop().await;
}

/// How a broken provider endpoint misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Reads the request and never answers.
    Hangs,
    /// Closes the connection as soon as it is opened.
    HangsUp,
}

/// A provider endpoint on 127.0.0.1 that misbehaves as `fault`; counts the connections.
async fn broken_endpoint(fault: Fault) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/deliver",
        listener.local_addr().expect("an address")
    );
    let connections = Arc::new(Mutex::new(0));
    let counted = connections.clone();
    actix_web::rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            *counted.lock().unwrap() += 1;
            match fault {
                Fault::Hangs => {
                    let mut buffer = [0u8; 4096];
                    let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                    held.push(stream);
                }
                Fault::HangsUp => drop(stream),
            }
        }
    });
    (url, connections)
}

/// An endpoint that times out or hangs up: each attempt fails and is retried with backoff,
/// then the message is `failed` with the reason on the message and in its
/// `message.updated` event, where the agents see it.
async fn a_broken_provider_leaves_the_message_failed_with_why(
    app: TestApp,
    fault: Fault,
    reason: &str,
) {
    {
        let (url, connections) = broken_endpoint(fault).await;
        let scene = scene(&app, Some(&url)).await;
        let cursor = crate::realtime::latest_cursor(&app, &scene.admin).await;
        let sent = send(&app, &scene.admin, scene.conversation, "message", "Hello?").await;
        assert_eq!(sent["delivery_error"], Value::Null);
        let failed = wait_for_status(
            &app,
            &scene.admin.token,
            scene.conversation,
            id_of(&sent),
            "failed",
        )
        .await;
        let error = failed["delivery_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{fault:?}: no delivery_error in {failed}"));
        assert!(error.contains(reason), "{fault:?}: {error}");
        assert_eq!(*connections.lock().unwrap(), 2, "{fault:?}: two attempts");
        let updates = updates_of(&app, &scene.admin, cursor, id_of(&sent)).await;
        let last = updates
            .last()
            .unwrap_or_else(|| panic!("{fault:?}: no message.updated"));
        assert_eq!(last["data"]["message"]["delivery_status"], "failed");
        assert_eq!(last["data"]["message"]["delivery_error"], error);
    }
}

async fn a_provider_that_never_answers_leaves_the_message_failed_with_why(app: TestApp) {
    a_broken_provider_leaves_the_message_failed_with_why(app, Fault::Hangs, "timed out").await;
}

async fn a_provider_that_hangs_up_leaves_the_message_failed_with_why(app: TestApp) {
    a_broken_provider_leaves_the_message_failed_with_why(app, Fault::HangsUp, "connection").await;
}

/// The provider's own `failed` report carries its reason to the agents too.
async fn a_failed_report_shows_the_providers_reason(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(&app, &scene.admin, scene.conversation, "message", "Hi").await;
    let id = id_of(&sent);
    wait_for_status(&app, &scene.admin.token, scene.conversation, id, "sent").await;
    let reported = channel_call(
        &app,
        scene.channel,
        "status",
        &scene.secret,
        json!({"external_id": id.to_string(), "status": "failed", "error": "30003: Unreachable destination handset"}),
    )
    .await
    .expect(200);
    assert_eq!(
        reported.body["delivery_status"], "failed",
        "{}",
        reported.body
    );
    assert_eq!(
        reported.body["delivery_error"],
        "30003: Unreachable destination handset"
    );
    let shown = message_at(
        app.client(),
        &app.url(""),
        &scene.admin.token,
        scene.conversation,
        id,
    )
    .await;
    assert_eq!(
        shown["delivery_error"],
        "30003: Unreachable destination handset"
    );
    provider.stop().await;
}

async fn notes_never_leave(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let note = send(
        &app,
        &scene.admin,
        scene.conversation,
        "note",
        "Customer is a VIP",
    )
    .await;
    assert_eq!(note["delivery_status"], Value::Null, "{note}");
    let reply = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Thanks for waiting",
    )
    .await;
    wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id_of(&reply),
        "sent",
    )
    .await;
    let seen = provider.seen();
    let posted: Vec<i64> = seen.iter().map(Seen::message_id).collect();
    assert_eq!(posted, [id_of(&reply)], "only the reply left: {seen:?}");
    let note = message_at(
        app.client(),
        &app.url(""),
        &scene.admin.token,
        scene.conversation,
        id_of(&note),
    )
    .await;
    assert_eq!(note["delivery_status"], Value::Null);
    provider.stop().await;
}

async fn without_an_outbound_url_messages_are_sent_in_the_sandbox(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let (sandbox, secret) = sms_channel(&app, &scene.admin, scene.inbox, SANDBOX, None).await;
    let sandboxed = customer_writes(&app, sandbox, &secret, "in-sandbox").await;
    let practice = send(&app, &scene.admin, sandboxed, "message", "Just practising").await;
    assert_eq!(practice["delivery_status"], "sent", "{practice}");
    // A live reply sent after it is delivered; by then the sandboxed one would have been too.
    let live = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "For real",
    )
    .await;
    wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id_of(&live),
        "sent",
    )
    .await;
    let posted: Vec<i64> = provider.seen().iter().map(Seen::message_id).collect();
    assert_eq!(posted, [id_of(&live)]);
    let listed = wait_for_status(
        &app,
        &scene.admin.token,
        sandboxed,
        id_of(&practice),
        "sent",
    )
    .await;
    assert_eq!(listed["body"], format!("Just practising\n\n{APPENDED}"));
    provider.stop().await;
}

async fn status_callbacks_move_the_delivery_status_on(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Tracking number follows",
    )
    .await;
    let id = id_of(&sent);
    wait_for_status(&app, &scene.admin.token, scene.conversation, id, "sent").await;
    // The provider names the message by the id it answered the delivery with.
    let report = json!({"external_id": format!("prov-{id}"), "status": "delivered"});
    let forged = app
        .client()
        .post(app.url(&format!("/v1/channels/{}/status", scene.channel)))
        .header("content-type", "application/json")
        .header(
            SIGNATURE_HEADER,
            sign("not the channel's secret", report.to_string().as_bytes()),
        )
        .body(report.to_string())
        .send()
        .await
        .expect("request reaches the server");
    into_reply(forged)
        .await
        .expect_problem(401, "unauthenticated");
    let message = message_at(
        app.client(),
        &app.url(""),
        &scene.admin.token,
        scene.conversation,
        id,
    )
    .await;
    assert_eq!(
        message["delivery_status"], "sent",
        "a forged report changes nothing"
    );
    let accepted = channel_call(&app, scene.channel, "status", &scene.secret, report)
        .await
        .expect(200);
    assert_eq!(accepted.body["id"], id);
    assert_eq!(accepted.body["delivery_status"], "delivered");
    wait_for_status(
        &app,
        &scene.admin.token,
        scene.conversation,
        id,
        "delivered",
    )
    .await;
    provider.stop().await;
}

async fn queued_messages_survive_a_restart_and_go_out_once(app: TestApp) {
    let provider = Provider::start(503).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Sorry for the delay",
    )
    .await;
    let id = id_of(&sent);
    provider.wait_for(1).await;
    let queued = message_at(
        app.client(),
        &app.url(""),
        &scene.admin.token,
        scene.conversation,
        id,
    )
    .await;
    assert_eq!(queued["delivery_status"], "queued", "{queued}");
    app.running().stop().await;
    // Stopped: its worker sends nothing more. The provider comes back, then the server.
    let before_restart = provider.seen().len();
    provider.answer_from_now_on(200);
    let restarted = app.spawn_another(many_attempts).await;
    let base = restarted.url("");
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("request reaches the restarted server");
    let admin = session_from(&into_reply(login).await.expect(200).body);
    wait_for_status_at(&client, &base, &admin.token, scene.conversation, id, "sent").await;
    restarted.stop().await;
    let seen = provider.seen();
    assert!(seen.iter().all(|seen| seen.message_id() == id), "{seen:?}");
    let accepted = seen.iter().filter(|seen| seen.answered == 200).count();
    assert_eq!(accepted, 1, "delivered exactly once: {seen:?}");
    assert_eq!(
        seen.len(),
        before_restart + 1,
        "the restarted server sent it once: {seen:?}"
    );
    provider.stop().await;
}

async fn two_instances_share_the_queue_without_sending_twice(app: TestApp) {
    let provider = Provider::start(503).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let second: Running = app.spawn_another(many_attempts).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(id_of(
            &send(
                &app,
                &scene.admin,
                scene.conversation,
                "message",
                &format!("Update {n}"),
            )
            .await,
        ));
    }
    // Every message is tried (and refused) before the provider accepts anything, so both
    // instances' workers compete for the queue.
    provider
        .wait_until("every message tried", |seen| {
            ids.iter()
                .all(|id| seen.iter().any(|seen| seen.message_id() == *id))
        })
        .await;
    provider.answer_from_now_on(200);
    for id in &ids {
        wait_for_status(&app, &scene.admin.token, scene.conversation, *id, "sent").await;
    }
    second.stop().await;
    app.running().stop().await;
    let seen = provider.seen();
    for id in &ids {
        let accepted = seen
            .iter()
            .filter(|seen| seen.message_id() == *id && seen.answered == 200)
            .count();
        assert_eq!(accepted, 1, "message {id} delivered exactly once: {seen:?}");
    }
    provider.stop().await;
}

/// Retries far apart, so the worker leaves a failed delivery alone while the test leases it.
fn slow_retries(config: &mut Config) {
    config.delivery_base_delay_ms = 60_000;
}

/// The queue's leases, straight on the database: a claim made while another instance's
/// claim is uncommitted finds the row taken, and a lease that runs out (its instance died
/// mid-send) makes the row due again.
async fn a_lease_is_exclusive_until_it_runs_out(app: TestApp) {
    use persistence::diesel::{Connection, QueryDsl, RunQueryDsl};
    use persistence::repo::deliveries;
    use persistence::schema::outbound_deliveries as d;

    let provider = Provider::start(503).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Anyone there?",
    )
    .await;
    let store = app.running().state.store.clone();
    // The first attempt failed; the next is a minute away.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reader = store.clone();
        let attempts: i32 = actix_web::web::block(move || {
            let mut conn = reader.conn().expect("a connection");
            d::table
                .select(d::attempts)
                .first(&mut **conn)
                .expect("the queued delivery")
        })
        .await
        .expect("blocking pool");
        if attempts == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first attempt was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two minutes on, the delivery is due (the server's own worker is not there yet).
    let later = persistence::now() + chrono::TimeDelta::minutes(2);
    let lease = chrono::TimeDelta::minutes(1);
    let (first, second) = actix_web::web::block(move || {
        let mut first_conn = store.conn().expect("a connection");
        let mut second_conn = store.conn().expect("a connection");
        let (claimed, claiming) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let first = scope.spawn(move || {
                let conn: &mut persistence::DbConnection = &mut first_conn;
                conn.transaction(|conn| {
                    let due = deliveries::lease_due(conn, later, lease, 10)?;
                    claimed.send(()).expect("the other claimer listens");
                    // Hold the claim uncommitted while the other instance tries.
                    std::thread::sleep(Duration::from_millis(300));
                    Ok::<_, persistence::StoreError>(due)
                })
                .expect("the first claim")
            });
            claiming.recv().expect("the first claim is made");
            let second = deliveries::lease_due(&mut second_conn, later, lease, 10)
                .expect("the second claim");
            (first.join().expect("the first claimer"), second)
        })
    })
    .await
    .expect("blocking pool");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(second.is_empty(), "leased twice: {second:?}");
    let due = &first[0];
    assert_eq!(due.message_id.get(), id_of(&sent));
    assert_eq!(due.channel.id.get(), scene.channel);
    assert_eq!(due.to.as_deref(), Some(CUSTOMER));
    assert_eq!(due.body, format!("Anyone there?\n\n{APPENDED}"));
    assert_eq!(due.attempts, 1);
    let store = app.running().state.store.clone();
    let (while_leased, after_lease) = actix_web::web::block(move || {
        let mut conn = store.conn().expect("a connection");
        let while_leased =
            deliveries::lease_due(&mut conn, later + chrono::TimeDelta::seconds(30), lease, 10)
                .expect("a claim");
        let after_lease =
            deliveries::lease_due(&mut conn, later + chrono::TimeDelta::seconds(61), lease, 10)
                .expect("a claim");
        (while_leased, after_lease)
    })
    .await
    .expect("blocking pool");
    assert!(while_leased.is_empty(), "{while_leased:?}");
    assert_eq!(after_lease.len(), 1, "a lease that ran out is due again");
    provider.stop().await;
}

/// A delivery report for the message, naming it as the provider does (`prov-<id>`) or by
/// our id; answers the message as the server reports it.
async fn report(app: &TestApp, scene: &Scene, external_id: &str, status: &str) -> Value {
    channel_call(
        app,
        scene.channel,
        "status",
        &scene.secret,
        json!({"external_id": external_id, "status": status}),
    )
    .await
    .expect(200)
    .body
}

/// The `message.updated` events about message `id` after `cursor`.
async fn updates_of(app: &TestApp, admin: &Session, cursor: i64, id: i64) -> Vec<Value> {
    crate::realtime::replay_all(app, &app.url(""), admin, cursor)
        .await
        .into_iter()
        .filter(|event| event["type"] == "message.updated" && event["data"]["message"]["id"] == id)
        .collect()
}

async fn a_late_report_never_moves_the_delivery_status_back(app: TestApp) {
    let provider = Provider::start(200).await;
    let scene = scene(&app, Some(&provider.url)).await;
    let sent = send(
        &app,
        &scene.admin,
        scene.conversation,
        "message",
        "Out for delivery",
    )
    .await;
    let id = id_of(&sent);
    wait_for_status(&app, &scene.admin.token, scene.conversation, id, "sent").await;
    let cursor = crate::realtime::latest_cursor(&app, &scene.admin).await;
    let external_id = format!("prov-{id}");
    let delivered = report(&app, &scene, &external_id, "delivered").await;
    assert_eq!(delivered["delivery_status"], "delivered", "{delivered}");
    // Providers retry and reorder: a late `sent`, a repeat, a `failed` after the fact. Each is
    // accepted (or the provider would retry it forever) and none of them changes anything.
    for late in ["sent", "delivered", "failed"] {
        let answered = report(&app, &scene, &external_id, late).await;
        assert_eq!(answered["id"], id);
        assert_eq!(
            answered["delivery_status"], "delivered",
            "after {late}: {answered}"
        );
    }
    let message = message_at(
        app.client(),
        &app.url(""),
        &scene.admin.token,
        scene.conversation,
        id,
    )
    .await;
    assert_eq!(message["delivery_status"], "delivered", "{message}");
    let updates = updates_of(&app, &scene.admin, cursor, id).await;
    assert_eq!(updates.len(), 1, "one change, one event: {updates:?}");
    assert_eq!(
        updates[0]["data"]["message"]["delivery_status"],
        "delivered"
    );
    provider.stop().await;
}

/// Replies stay queued after a refused attempt (the next one is a minute away), with
/// several HTTP workers and connections so that reports race for real.
fn side_by_side_and_queued(config: &mut Config) {
    crate::races::side_by_side(config);
    slow_retries(config);
}

async fn delivered_and_sent_at_once_end_delivered(app: TestApp) {
    use crate::races::{ROUNDS, at_once, statuses};

    let provider = Provider::start(503).await;
    let scene = scene(&app, Some(&provider.url)).await;
    for round in 0..ROUNDS {
        let cursor = crate::realtime::latest_cursor(&app, &scene.admin).await;
        let sent = send(
            &app,
            &scene.admin,
            scene.conversation,
            "message",
            &format!("Update {round}"),
        )
        .await;
        let id = id_of(&sent);
        // Refused by the provider: still queued, so both reports may move it on.
        provider
            .wait_until("the reply tried", |seen| {
                seen.iter().any(|seen| seen.message_id() == id)
            })
            .await;
        let external_id = id.to_string();
        let reports = ["delivered", "sent"];
        let replies = at_once(reports.len(), |i| {
            channel_call(
                &app,
                scene.channel,
                "status",
                &scene.secret,
                json!({"external_id": external_id, "status": reports[i]}),
            )
        })
        .await;
        assert_eq!(
            statuses(&replies),
            vec![200, 200],
            "round {round}: {replies:?}"
        );
        assert_eq!(
            replies[0].body["delivery_status"], "delivered",
            "round {round}"
        );
        let message = message_at(
            app.client(),
            &app.url(""),
            &scene.admin.token,
            scene.conversation,
            id,
        )
        .await;
        assert_eq!(
            message["delivery_status"], "delivered",
            "round {round}: {message}"
        );
        // `sent` is announced only when it came first; `delivered` always, and last.
        let updates = updates_of(&app, &scene.admin, cursor, id).await;
        let announced: Vec<&Value> = updates
            .iter()
            .map(|event| &event["data"]["message"]["delivery_status"])
            .collect();
        assert!(
            announced == [&json!("delivered")]
                || announced == [&json!("sent"), &json!("delivered")],
            "round {round}: {announced:?}"
        );
    }
    provider.stop().await;
}

const SECOND_PHONE: &str = "+14155552672";

async fn a_reply_goes_to_the_number_the_customer_wrote_from(app: TestApp) {
    let provider = Provider::start(200).await;
    let admin = app.admin().await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[]).await;
    let (channel, secret) = sms_channel(&app, &admin, inbox, BUSINESS, Some(&provider.url)).await;
    let contact = app
        .post(
            "/v1/contacts",
            &admin.token,
            json!({"name": "Ana Lima", "phone_numbers": [CUSTOMER, SECOND_PHONE]}),
        )
        .await
        .expect(201);
    let reply = channel_call(
        &app,
        channel,
        "inbound",
        &secret,
        json!({"external_id": "in-work-phone", "from": SECOND_PHONE, "body": "Texting from work"}),
    )
    .await
    .expect(200);
    let conversation = reply.body["conversation_id"]
        .as_i64()
        .expect("conversation_id");
    let seen = contact_of(&app, &admin, conversation).await;
    assert_eq!(seen, contact.id(), "the contact who has both numbers");
    let sent = send(&app, &admin, conversation, "message", "Got it").await;
    let delivery = provider.wait_for(1).await;
    assert_eq!(delivery[0].message_id(), id_of(&sent));
    assert_eq!(delivery[0].body["to"], SECOND_PHONE, "{}", delivery[0].body);
    provider.stop().await;
}

async fn after_a_merge_replies_go_where_the_customer_last_wrote_from(app: TestApp) {
    let provider = Provider::start(200).await;
    let admin = app.admin().await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[]).await;
    let (channel, secret) = sms_channel(&app, &admin, inbox, BUSINESS, Some(&provider.url)).await;
    let text = |n: usize, from: &'static str| {
        let (app, secret) = (&app, &secret);
        async move {
            let reply = channel_call(
                app,
                channel,
                "inbound",
                secret,
                json!({"external_id": format!("in-{n}"), "from": from, "body": "Hello"}),
            )
            .await
            .expect(200);
            reply.body["conversation_id"]
                .as_i64()
                .expect("conversation_id")
        }
    };
    let own_phone = text(0, CUSTOMER).await;
    let work_phone = text(1, SECOND_PHONE).await;
    let keep = contact_of(&app, &admin, own_phone).await;
    let other = contact_of(&app, &admin, work_phone).await;
    assert_ne!(keep, other, "two numbers, two contacts so far");
    // A merge takes one open conversation per channel.
    app.post(
        &format!("/v1/conversations/{own_phone}/close"),
        &admin.token,
        json!({}),
    )
    .await
    .expect(200);
    let merged = app
        .post(
            &format!("/v1/contacts/{keep}/merge"),
            &admin.token,
            json!({"other_id": other}),
        )
        .await
        .expect(200);
    assert_eq!(
        merged.body["phone_numbers"],
        json!([CUSTOMER, SECOND_PHONE])
    );
    assert_eq!(contact_of(&app, &admin, work_phone).await, keep);
    let first = send(&app, &admin, work_phone, "message", "To your work phone").await;
    let seen = provider.wait_for(1).await;
    assert_eq!(seen[0].message_id(), id_of(&first));
    assert_eq!(seen[0].body["to"], SECOND_PHONE, "{}", seen[0].body);
    // The customer goes on from their own phone, in the same open conversation: the next
    // reply follows them there.
    assert_eq!(text(2, CUSTOMER).await, work_phone);
    let second = send(&app, &admin, work_phone, "message", "To your own phone").await;
    let seen = provider.wait_for(2).await;
    assert_eq!(seen[1].message_id(), id_of(&second));
    assert_eq!(seen[1].body["to"], CUSTOMER, "{}", seen[1].body);
    provider.stop().await;
}

/// The id of the conversation's contact, as the conversation shows it.
async fn contact_of(app: &TestApp, admin: &Session, conversation: i64) -> i64 {
    crate::fixtures::conversation(app, admin, conversation).await["contact"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("conversation {conversation} has no contact"))
}

// ---- where webhooks may go ----

/// The operator's default: outbound webhooks reach the public internet only (the other
/// tests allow loopback, where their provider stand-in listens).
fn public_only(config: &mut Config) {
    fast_retries(config);
    config.outbound_allow = domain::outbound::OutboundPolicy::public_only();
}

async fn internal_addresses_are_refused_when_a_channel_is_saved(app: TestApp) {
    let admin = app.admin().await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[]).await;
    let create = |n: usize, url: &str| {
        let (app, token) = (&app, admin.token.clone());
        let body = json!({"type": "sms", "address": format!("+1415555{n:04}"), "name": "Line", "outbound_url": url});
        async move {
            app.post(&format!("/v1/inboxes/{inbox}/channels"), &token, body)
                .await
        }
    };
    let internal = [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/hook",
        "http://[::1]:9000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "http://172.16.0.1:8080/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0:9000/hook",
        "http://[::ffff:127.0.0.1]:9000/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
    ];
    for (n, url) in internal.iter().enumerate() {
        let refused = create(n, url).await.expect(422);
        assert_eq!(refused.body["code"], "validation_failed", "{url}");
        assert_eq!(refused.body["errors"][0]["field"], "outbound_url", "{url}");
        assert!(
            refused.body["errors"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains("SWITCHBOARD_OUTBOUND_ALLOW")),
            "{url}: {}",
            refused.body
        );
    }
    // A public address is saved (nothing is sent to it until a message goes out).
    let saved = create(99, "https://93.184.216.34/hook").await.expect(201);
    assert_eq!(saved.body["outbound_url"], "https://93.184.216.34/hook");
}

/// Points the channel's `outbound_url` at `url` behind the API's back, as if its name had
/// resolved elsewhere when it was saved.
fn repoint(app: &TestApp, channel: i64, url: &str) {
    use persistence::diesel::prelude::*;
    use persistence::schema::channels;
    app.running()
        .state
        .store
        .write(|conn| {
            persistence::diesel::update(channels::table.find(channel))
                .set(channels::outbound_url.eq(Some(url)))
                .execute(conn)?;
            Ok(())
        })
        .expect("repointed");
}

fn the_last_error(app: &TestApp, message: i64) -> String {
    use persistence::diesel::prelude::*;
    use persistence::schema::outbound_deliveries as deliveries;
    app.running()
        .state
        .store
        .read(|conn| {
            Ok(deliveries::table
                .filter(deliveries::message_id.eq(message))
                .select(deliveries::last_error)
                .first::<Option<String>>(conn)?)
        })
        .expect("a delivery")
        .unwrap_or_default()
}

async fn a_message_for_an_internal_address_is_never_posted(app: TestApp) {
    // The stand-in listens on loopback, which this server may not reach: by address and by
    // a name that resolves there (what DNS rebinding would do after the URL was saved).
    let provider = Provider::start(200).await;
    let scene = scene(&app, None).await;
    let by_name = provider.url.replace("127.0.0.1", "localhost");
    for url in [provider.url.clone(), by_name] {
        repoint(&app, scene.channel, &url);
        let sent = send(&app, &scene.admin, scene.conversation, "message", "Hello?").await;
        wait_for_status(
            &app,
            &scene.admin.token,
            scene.conversation,
            id_of(&sent),
            "failed",
        )
        .await;
        let error = the_last_error(&app, id_of(&sent));
        assert!(
            error.contains("may not reach"),
            "{url}: the error says why: {error:?}"
        );
    }
    assert!(provider.seen().is_empty(), "{:?}", provider.seen());
    provider.stop().await;
}

on_both_backends_with!(public_only =>
    internal_addresses_are_refused_when_a_channel_is_saved,
    a_message_for_an_internal_address_is_never_posted,
);
on_both_backends_with!(fast_retries =>
    a_reply_is_posted_signed_and_then_sent,
    a_failed_report_shows_the_providers_reason,
    failed_attempts_are_retried_until_accepted,
    notes_never_leave,
    without_an_outbound_url_messages_are_sent_in_the_sandbox,
    status_callbacks_move_the_delivery_status_on,
    a_late_report_never_moves_the_delivery_status_back,
    a_reply_goes_to_the_number_the_customer_wrote_from,
    after_a_merge_replies_go_where_the_customer_last_wrote_from,
);
on_both_backends_with!(side_by_side_and_queued => delivered_and_sent_at_once_end_delivered);
on_both_backends_with!(two_attempts =>
    a_delivery_that_keeps_failing_ends_failed,
    a_provider_that_never_answers_leaves_the_message_failed_with_why,
    a_provider_that_hangs_up_leaves_the_message_failed_with_why,
);
on_both_backends_with!(slow_retries => a_lease_is_exclusive_until_it_runs_out);
on_both_backends_with!(many_attempts => queued_messages_survive_a_restart_and_go_out_once);

/// PostgreSQL only: instances share a PostgreSQL database; SQLite is the single-instance
/// default (one process's writer queue cannot order another process's writes).
mod two_instances_share_the_queue_without_sending_twice {
    #[actix_web::test]
    async fn postgres() {
        crate::support::run(
            crate::support::Backend::Postgres,
            concat!(module_path!(), "::postgres"),
            super::many_attempts,
            super::two_instances_share_the_queue_without_sending_twice,
        )
        .await;
    }
}
