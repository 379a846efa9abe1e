//! Realtime across instances (DESIGN.md → Defaults and scale-out, Events and ordering): two
//! api instances on one PostgreSQL database and Redis pub/sub. A client on either instance
//! receives every event it may see, once, in cursor order, whichever instance wrote it,
//! with concurrent writers on both, and through a Redis outage (events are in the database
//! first; the outage is a proxy the test cuts, or a Redis server of the test's own that it
//! kills and starts again, never the machine's Redis). Another deployment
//! on the same Redis is never heard. Presence, deactivation, sign-outs and new passwords reach
//! across instances. Runs
//! only on PostgreSQL with Redis; skipped, and said so, when either is unreachable, except
//! under CI=true, where that fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::Running;
use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::{self, customer, sms_channel};
use crate::proxy::Proxy;
use crate::realtime::{
    PATIENCE, Ws, assert_increasing, conversation_of, cursor, inbound_at, is_event, latest_cursor,
    replay_all, types,
};
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};

// ---------------------------------------------------------------------------------------
// Redis, or a skip

fn redis_url() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// A Redis URL split around its `host:port`: (`redis://user:pass@`, `host:port`, `/db`).
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (format!("{userinfo}@"), host),
        None => (String::new(), authority),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:6379")
    };
    (format!("{scheme}://{userinfo}"), host, path.to_string())
}

/// Whether something that speaks RESP answers at `host:port`.
async fn redis_answers(host: &str) -> Result<(), String> {
    let attempt = async {
        let mut stream = TcpStream::connect(host)
            .await
            .map_err(|error| error.to_string())?;
        stream
            .write_all(b"PING\r\n")
            .await
            .map_err(|error| error.to_string())?;
        let mut first = [0u8; 1];
        stream
            .read_exact(&mut first)
            .await
            .map_err(|error| error.to_string())?;
        // `+PONG`, or `-NOAUTH …` when the URL carries the password: Redis either way.
        if first[0] == b'+' || first[0] == b'-' {
            Ok(())
        } else {
            Err("not a Redis server".to_string())
        }
    };
    tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .map_err(|_| "no answer within 3 s".to_string())?
}

/// The Redis tests share one Redis channel: they run one at a time within this process.
static REDIS_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How the instances reach Redis.
#[derive(Clone, Copy)]
enum Route {
    /// The machine's Redis.
    Direct,
    /// The machine's Redis through a proxy the test can cut.
    Proxied,
    /// A Redis server of the test's own, on a spare port, which the test may kill.
    Private,
}

/// A `redis-server` the test started, and may kill and start again on the same port.
struct PrivateRedis {
    port: u16,
    child: std::sync::Mutex<Option<std::process::Child>>,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a spare port")
            .port();
        let redis = PrivateRedis {
            port,
            child: std::sync::Mutex::new(None),
        };
        redis.launch().await;
        redis
    }

    async fn launch(&self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start redis-server: {error}"));
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while redis_answers(&format!("127.0.0.1:{}", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Killed outright (SIGKILL): no goodbye to its clients.
    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the test may take away and bring back.
enum Outage {
    Proxy(Arc<Proxy>),
    Private(PrivateRedis),
}

impl Outage {
    /// Redis goes away: the route is cut, or the server killed.
    fn cut(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.cut(),
            Outage::Private(redis) => redis.kill(),
        }
    }

    /// Redis is back on the same address (a restarted server has no subscriptions left).
    async fn restore(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.restore().await,
            Outage::Private(redis) => redis.launch().await,
        }
    }
}

/// The second instance, and the Redis route the first one uses.
struct Pair {
    app: TestApp,
    b: Arc<Running>,
    outage: Option<Arc<Outage>>,
    /// The Redis URL both instances use.
    redis_url: String,
}

impl Pair {
    fn a_base(&self) -> String {
        self.app.url("")
    }

    fn b_base(&self) -> String {
        self.b.url("")
    }
}

/// Runs `body` with two instances on one PostgreSQL database, both on Redis as `route` says.
async fn with_two_instances<F, Fut>(test_name: &str, route: Route, body: F)
where
    F: FnOnce(Pair) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = redis_url();
    let (prefix, host, path) = split_url(&url);
    if let Err(error) = redis_answers(&host).await {
        if in_ci() {
            panic!("CI=true but Redis is unreachable at {host}: {error}");
        }
        eprintln!("SKIPPED {test_name}: Redis unreachable at {host} ({error})");
        support::record_skip(&format!("{test_name} (Redis unreachable)"));
        return;
    }
    let _one_at_a_time = REDIS_TESTS.lock().await;
    let (outage, app_url) = match route {
        Route::Direct => (None, url.clone()),
        Route::Proxied => {
            let proxy = Proxy::start(host.clone()).await;
            let url = format!("{prefix}127.0.0.1:{}{path}", proxy.port);
            (Some(Arc::new(Outage::Proxy(proxy))), url)
        }
        Route::Private => {
            let redis = PrivateRedis::start().await;
            let url = format!("redis://127.0.0.1:{}", redis.port);
            (Some(Arc::new(Outage::Private(redis))), url)
        }
    };
    let proxy = outage;
    let for_a = app_url.clone();
    support::run(
        Backend::Postgres,
        test_name,
        move |config| config.redis_url = Some(for_a),
        move |app| async move {
            let for_b = app_url.clone();
            let b = app
                .spawn_another(|config| config.redis_url = Some(for_b))
                .await;
            let b = Arc::new(b);
            let pair = Pair {
                app: app.clone(),
                b: b.clone(),
                outage: proxy.clone(),
                redis_url: app_url,
            };
            let outcome = AssertUnwindSafe(async {
                // Both subscribed to Redis before anything happens.
                wait_ready(&pair.app, &pair.a_base(), 200, "ok").await;
                wait_ready(&pair.app, &pair.b_base(), 200, "ok").await;
                body(pair).await;
            })
            .catch_unwind()
            .await;
            b.stop().await;
            if let Some(outage) = &proxy {
                outage.cut();
            }
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        },
    )
    .await;
}

/// Polls `/readyz` until it answers `status` with `redis` as given (at most 20 s: Redis
/// reconnects with a backoff of up to 5 s).
async fn wait_ready(app: &TestApp, base: &str, status: u16, redis: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .client()
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("request reaches the server");
        let reply = into_reply(response).await;
        if reply.status == status && reply.body["redis"] == redis {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/readyz never answered {status} with redis {redis}: last {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post_at(app: &TestApp, base: &str, path: &str, session: &Session, body: Value) -> Reply {
    let response = app
        .client()
        .post(format!("{base}{path}"))
        .bearer_auth(&session.token)
        .json(&body)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

// ---------------------------------------------------------------------------------------
// The scenarios

struct Cast {
    admin: Session,
    alex: Session,
    olive: Session,
    support: fixtures::Channel,
    billing: fixtures::Channel,
}

/// Support (Alex is a member) and Billing (Olive is), each with a number.
async fn cast(app: &TestApp) -> Cast {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let olive = app.user(&admin, "agent", "Olive Agent").await;
    let support = fixtures::inbox(app, &admin, "Support", json!({}), &[&alex]).await;
    let billing = fixtures::inbox(app, &admin, "Billing", json!({}), &[&olive]).await;
    let support = sms_channel(app, &admin, support, "+14155550000").await;
    let billing = sms_channel(app, &admin, billing, "+14155550001").await;
    Cast {
        admin,
        alex,
        olive,
        support,
        billing,
    }
}

/// Reads events until `n` arrived, then checks that nothing more comes.
async fn exactly(ws: &mut Ws, n: usize, who: &str) -> Vec<Value> {
    let events = ws.events(n).await;
    ws.expect_silence().await;
    assert_increasing(&events, who);
    events
}

async fn what_one_instance_writes_reaches_clients_of_the_other(pair: Pair) {
    let app = &pair.app;
    let cast = cast(app).await;
    let (a, b) = (pair.app.running().addr, pair.b.addr);
    // The same signing key: a token from A works on B.
    let mut alex_on_b = Ws::connect(b, &cast.alex, "alex on B").await;
    let mut admin_on_a = Ws::connect(a, &cast.admin, "admin on A").await;
    let mut olive_on_b = Ws::connect(b, &cast.olive, "olive on B").await;

    let written = inbound_at(
        app,
        &pair.a_base(),
        &cast.support,
        &customer(1),
        "Written through A",
    )
    .await;
    let conversation = written["conversation_id"].as_i64().unwrap();
    let events = alex_on_b.events(3).await;
    assert_eq!(
        types(&events),
        [
            "conversation.created",
            "message.created",
            "conversation.updated"
        ]
    );
    assert_eq!(events[1]["data"]["message"]["id"], written["message_id"]);
    assert_eq!(admin_on_a.events(3).await, events);

    // And the other way round: a note written through B reaches A's client.
    let note = post_at(
        app,
        &pair.b_base(),
        &format!("/v1/conversations/{conversation}/messages"),
        &cast.alex,
        json!({"body": "on it", "kind": "note"}),
    )
    .await
    .expect(201);
    let on_a = admin_on_a.expect_event("message.created").await;
    assert_eq!(on_a["data"]["message"]["id"], note.id());
    assert_eq!(alex_on_b.expect_event("message.created").await, on_a);
    olive_on_b.expect_silence().await;

    // Typing crosses instances too, and still only to those who may see it.
    alex_on_b
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let typing = admin_on_a
        .next_matching(PATIENCE, "typing", |frame| frame["type"] == "typing")
        .await;
    assert_eq!(
        typing["data"],
        json!({"conversation_id": conversation, "user_id": cast.alex.user_id})
    );
    olive_on_b
        .expect_no("typing", |frame| frame["type"] == "typing")
        .await;

    // Both instances replay the same log.
    let from_a = replay_all(app, &pair.a_base(), &cast.alex, 0).await;
    let from_b = replay_all(app, &pair.b_base(), &cast.alex, 0).await;
    assert_eq!(from_a, from_b);
    assert_eq!(from_a.len(), 4);
    admin_on_a.expect_silence().await;
    alex_on_b.expect_silence().await;
}

async fn concurrent_writers_on_both_instances_deliver_everything_once_in_order(pair: Pair) {
    let app = &pair.app;
    let cast = cast(app).await;
    let start = latest_cursor(app, &cast.admin).await;
    let mut admin_on_a = Ws::connect(app.running().addr, &cast.admin, "admin on A").await;
    let mut alex_on_b = Ws::connect(pair.b.addr, &cast.alex, "alex on B").await;
    let mut olive_on_a = Ws::connect(app.running().addr, &cast.olive, "olive on A").await;

    // Four customers write ten messages each, at once, half through A and half through B;
    // two write to Support, two to Billing.
    const WRITERS: u32 = 4;
    const MESSAGES: u32 = 10;
    let writers = (0..WRITERS).map(|writer| {
        let base = if writer % 2 == 0 {
            pair.a_base()
        } else {
            pair.b_base()
        };
        let channel = if writer < 2 {
            cast.support.clone()
        } else {
            cast.billing.clone()
        };
        async move {
            for n in 0..MESSAGES {
                inbound_at(
                    app,
                    &base,
                    &channel,
                    &customer(writer + 1),
                    &format!("writer {writer} message {n}"),
                )
                .await;
            }
        }
    });
    futures_util::future::join_all(writers).await;

    // Per conversation: created, then ten times message + update.
    let per_inbox = 2 * (1 + 2 * MESSAGES as usize);
    let everything = exactly(&mut admin_on_a, 2 * per_inbox, "admin on A").await;
    let support = exactly(&mut alex_on_b, per_inbox, "alex on B").await;
    let billing = exactly(&mut olive_on_a, per_inbox, "olive on A").await;

    // Exactly what the log says each of them may see, on either instance.
    assert_eq!(
        replay_all(app, &pair.a_base(), &cast.admin, start).await,
        everything
    );
    assert_eq!(
        replay_all(app, &pair.b_base(), &cast.alex, start).await,
        support
    );
    assert_eq!(
        replay_all(app, &pair.b_base(), &cast.olive, start).await,
        billing
    );
    // The two inboxes split the whole, in the same order.
    let mut merged: Vec<Value> = support.iter().chain(billing.iter()).cloned().collect();
    merged.sort_by_key(cursor);
    assert_eq!(merged, everything);
    // Each conversation's own story is in order: its messages as each writer sent them.
    for events in [&support, &billing] {
        let mut conversations: Vec<i64> = events.iter().map(conversation_of).collect();
        conversations.sort_unstable();
        conversations.dedup();
        assert_eq!(conversations.len(), 2);
        for conversation in conversations {
            let bodies: Vec<String> = events
                .iter()
                .filter(|event| {
                    event["type"] == "message.created" && conversation_of(event) == conversation
                })
                .map(|event| {
                    event["data"]["message"]["body"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let writer = bodies[0].split(' ').nth(1).unwrap().to_string();
            let expected: Vec<String> = (0..MESSAGES)
                .map(|n| format!("writer {writer} message {n}"))
                .collect();
            assert_eq!(bodies, expected);
        }
    }
}

async fn a_redis_outage_loses_nothing(pair: Pair) {
    let app = &pair.app;
    let proxy = pair
        .outage
        .clone()
        .expect("the outage test may take Redis away");
    let cast = cast(app).await;
    let start = latest_cursor(app, &cast.admin).await;
    let mut alex_on_b = Ws::connect(pair.b.addr, &cast.alex, "alex on B").await;
    let mut alex_on_a = Ws::connect(app.running().addr, &cast.alex, "alex on A").await;
    let mut received = Vec::new();

    let first = inbound_at(app, &pair.a_base(), &cast.support, &customer(1), "before").await;
    let conversation = first["conversation_id"].as_i64().unwrap();
    received.extend(alex_on_b.events(3).await);

    // Redis goes away.
    proxy.cut();
    for base in [pair.a_base(), pair.b_base()] {
        let body = wait_ready(app, &base, 503, "down").await;
        assert_eq!(body["database"], "ok", "{body}");
        assert_eq!(body["status"], "unavailable", "{body}");
    }
    // Writes go on through A, and B's client still hears of them (from the log).
    for n in 0..3 {
        inbound_at(
            app,
            &pair.a_base(),
            &cast.support,
            &customer(1),
            &format!("during {n}"),
        )
        .await;
        inbound_at(
            app,
            &pair.a_base(),
            &cast.billing,
            &customer(2),
            &format!("billing during {n}"),
        )
        .await;
    }
    received.extend(alex_on_b.events(6).await);
    // A's own client never depended on Redis.
    let mut on_a = alex_on_a.events(3 + 6).await;

    // Redis is back.
    proxy.restore().await;
    for base in [pair.a_base(), pair.b_base()] {
        wait_ready(app, &base, 200, "ok").await;
    }
    for n in 0..2 {
        inbound_at(
            app,
            &pair.a_base(),
            &cast.support,
            &customer(1),
            &format!("after {n}"),
        )
        .await;
    }
    post_at(
        app,
        &pair.b_base(),
        &format!("/v1/conversations/{conversation}/messages"),
        &cast.alex,
        json!({"body": "note through B", "kind": "note"}),
    )
    .await
    .expect(201);
    received.extend(alex_on_b.events(5).await);
    alex_on_b.expect_silence().await;
    // The first write through B after the outage goes out on B's old, dead connection to
    // Redis: it must be sent again, not dropped (A's client would wait for the next event).
    on_a.extend(alex_on_a.events(5).await);
    alex_on_a.expect_silence().await;

    // Every event once, in order, none lost: the log's list, on both instances.
    assert_increasing(&received, "alex on B");
    let bodies: Vec<&str> = received
        .iter()
        .filter(|event| event["type"] == "message.created")
        .map(|event| event["data"]["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "before",
            "during 0",
            "during 1",
            "during 2",
            "after 0",
            "after 1",
            "note through B"
        ]
    );
    assert_eq!(
        replay_all(app, &pair.b_base(), &cast.alex, start).await,
        received
    );
    assert_eq!(on_a, received);
    // Both instances are still ready: a failed publish does not leave one "down" for good.
    for base in [pair.a_base(), pair.b_base()] {
        wait_ready(app, &base, 200, "ok").await;
    }
}

async fn a_client_connecting_after_an_outage_starts_from_the_present(pair: Pair) {
    let app = &pair.app;
    let proxy = pair.outage.clone().expect("the test may take Redis away");
    let cast = cast(app).await;
    let mut alex_on_b = Ws::connect(pair.b.addr, &cast.alex, "alex on B").await;
    inbound_at(app, &pair.a_base(), &cast.support, &customer(1), "before").await;
    alex_on_b.events(3).await;
    alex_on_b.disconnect().await;

    // Nobody of the organization is connected to B while Redis is away and A is written to.
    proxy.cut();
    wait_ready(app, &pair.b_base(), 503, "down").await;
    for n in 0..3 {
        inbound_at(
            app,
            &pair.a_base(),
            &cast.support,
            &customer(1),
            &format!("while away {n}"),
        )
        .await;
    }
    proxy.restore().await;
    for base in [pair.a_base(), pair.b_base()] {
        wait_ready(app, &base, 200, "ok").await;
    }

    // A new socket without `resume` hears what happens from now on, not the past.
    let mut alex_on_b = Ws::connect(pair.b.addr, &cast.alex, "alex on B, later").await;
    let now = inbound_at(app, &pair.a_base(), &cast.support, &customer(1), "now").await;
    let events = alex_on_b.events(2).await;
    assert_eq!(
        types(&events),
        ["message.created", "conversation.updated"],
        "{events:?}"
    );
    assert_eq!(
        events[0]["data"]["message"]["id"], now["message_id"],
        "{events:?}"
    );
    alex_on_b.expect_silence().await;
}

async fn deployments_sharing_one_redis_hear_only_their_own_events(pair: Pair) {
    let app = &pair.app;
    let cast = cast(app).await;
    let mut admin_on_a = Ws::connect(app.running().addr, &cast.admin, "admin on A").await;
    let mut alex_on_b = Ws::connect(pair.b.addr, &cast.alex, "alex on B").await;

    // Another deployment (its own database: its organizations, users and cursors start at 1
    // like ours) on the same Redis, as staging beside production would be.
    let Some(db) = support::TestDb::create(Backend::Postgres, "deployments_sharing_one_redis")
    else {
        return;
    };
    let mut config = support::test_config(&db);
    config.redis_url = Some(pair.redis_url.clone());
    config.jwt_secret = Some("another deployment, another signing key, long enough".into());
    let other = Arc::new(
        api::spawn(config)
            .await
            .expect("the other deployment starts"),
    );
    let outcome = AssertUnwindSafe(async {
        let base = other.url("");
        wait_ready(app, &base, 200, "ok").await;
        let login = app
            .client()
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"email": support::ADMIN_EMAIL, "password": support::PASSWORD}))
            .send()
            .await
            .expect("login");
        let their_admin = support::session_from(&into_reply(login).await.expect(200).body);
        assert_eq!(
            (their_admin.org_id, their_admin.user_id),
            (cast.admin.org_id, cast.admin.user_id)
        );
        let inbox = post_at(
            app,
            &base,
            "/v1/inboxes",
            &their_admin,
            json!({"name": "Their Support"}),
        )
        .await
        .expect(201)
        .id();
        let created = post_at(
            app,
            &base,
            &format!("/v1/inboxes/{inbox}/channels"),
            &their_admin,
            json!({"type": "sms", "address": "+14155550000", "name": "Theirs"}),
        )
        .await
        .expect(201);
        let their_line = fixtures::Channel {
            id: created.id(),
            inbox_id: inbox,
            secret: created.body["inbound_secret"].as_str().unwrap().to_string(),
            body: created.body,
        };
        for n in 0..3 {
            inbound_at(
                app,
                &base,
                &their_line,
                &customer(9),
                &format!("their customer {n}"),
            )
            .await;
        }
        let theirs = replay_all(app, &base, &their_admin, 0).await;
        assert_eq!(theirs.len(), 7);

        // Nothing of theirs reaches our clients, and our own cursors are not taken by theirs.
        admin_on_a.expect_silence().await;
        alex_on_b.expect_silence().await;
        let ours = inbound_at(
            app,
            &pair.a_base(),
            &cast.support,
            &customer(1),
            "our customer",
        )
        .await;
        let on_a = admin_on_a.events(3).await;
        assert_eq!(
            types(&on_a),
            [
                "conversation.created",
                "message.created",
                "conversation.updated"
            ]
        );
        assert_eq!(on_a[1]["data"]["message"]["id"], ours["message_id"]);
        assert_eq!(on_a[1]["data"]["message"]["body"], "our customer");
        assert_eq!(alex_on_b.events(3).await, on_a);
        assert_eq!(replay_all(app, &pair.b_base(), &cast.admin, 0).await, on_a);
        admin_on_a.expect_silence().await;
        alex_on_b.expect_silence().await;
    })
    .catch_unwind()
    .await;
    other.stop().await;
    drop(db);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `GET /v1/presence` on the instance at `base`, as user id → status.
async fn presence_at(
    app: &TestApp,
    base: &str,
    session: &Session,
) -> std::collections::HashMap<i64, String> {
    let response = app
        .client()
        .get(format!("{base}/v1/presence"))
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("request reaches the server");
    let reply = into_reply(response).await.expect(200);
    reply.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|user| {
            (
                user["user_id"].as_i64().expect("user_id"),
                user["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

/// Polls `GET /v1/presence` on `base` until `user` shows `status` (a failure after 20 s:
/// instances publish their sets every second on change).
async fn wait_presence(app: &TestApp, base: &str, viewer: &Session, user: i64, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = presence_at(app, base, viewer).await;
        if snapshot.get(&user).map(String::as_str) == Some(status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base}: user {user} never showed {status}: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn presence_of(frame: &Value, user: i64, status: &str) -> bool {
    frame["type"] == "presence.updated"
        && frame["data"]["users"].as_array().is_some_and(|users| {
            users
                .iter()
                .any(|entry| entry["user_id"] == user && entry["status"] == status)
        })
}

async fn presence_and_deactivation_reach_across_instances(pair: Pair) {
    let app = &pair.app;
    let cast = cast(app).await;
    let (a, b) = (pair.app.running().addr, pair.b.addr);
    let mut admin_on_a = Ws::connect(a, &cast.admin, "admin on A").await;
    // Alex is connected only on B: A's snapshot and A's sockets show him online.
    let mut alex_on_b = Ws::connect(b, &cast.alex, "alex on B").await;
    admin_on_a
        .next_matching(PATIENCE, "alex online, heard on A", |frame| {
            presence_of(frame, cast.alex.user_id, "online")
        })
        .await;
    wait_presence(
        app,
        &pair.a_base(),
        &cast.olive,
        cast.alex.user_id,
        "online",
    )
    .await;
    assert_eq!(
        presence_at(app, &pair.a_base(), &cast.olive)
            .await
            .get(&cast.olive.user_id)
            .map(String::as_str),
        Some("offline")
    );
    // His status, set through A, shows on both.
    post_status(app, &pair.a_base(), &cast.alex, "away").await;
    admin_on_a
        .next_matching(PATIENCE, "alex away", |frame| {
            presence_of(frame, cast.alex.user_id, "away")
        })
        .await;
    wait_presence(app, &pair.b_base(), &cast.admin, cast.alex.user_id, "away").await;

    // Deactivated through A: his socket on B closes at once with 4401.
    let response = app
        .client()
        .patch(format!("{}/v1/users/{}", pair.a_base(), cast.alex.user_id))
        .bearer_auth(&cast.admin.token)
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(200);
    assert_eq!(alex_on_b.expect_close().await, Some(4401));
    admin_on_a
        .next_matching(PATIENCE, "alex offline", |frame| {
            presence_of(frame, cast.alex.user_id, "offline")
        })
        .await;
    wait_presence(
        app,
        &pair.a_base(),
        &cast.admin,
        cast.alex.user_id,
        "offline",
    )
    .await;
}

async fn post_status(app: &TestApp, base: &str, session: &Session, status: &str) {
    let response = app
        .client()
        .put(format!("{base}/v1/me/status"))
        .bearer_auth(&session.token)
        .json(&json!({"status": status}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(200);
}

/// Polls `GET /v1/me` at `base` with `token` until it answers `status` (at most 5 s, far
/// less than the sign-in cache of the instance asked, so only the bus can have told it).
async fn me_answers(app: &TestApp, base: &str, token: &str, status: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app
            .client()
            .get(format!("{base}/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request reaches the server");
        let reply = into_reply(response).await;
        if reply.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {base}/v1/me kept answering {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sign_outs_and_new_passwords_end_access_at_once_on_every_instance(pair: Pair) {
    let app = &pair.app;
    let cast = cast(app).await;
    // A third instance that would keep a checked sign-in for a minute: what ends Alex's
    // access there within seconds is the bus.
    let redis = pair.redis_url.clone();
    let c = app
        .spawn_another(|config| {
            config.redis_url = Some(redis);
            config.sign_in_cache_secs = 60;
        })
        .await;
    let c_base = c.url("");
    wait_ready(app, &c_base, 200, "ok").await;
    let email = app.get("/v1/me", &cast.alex.token).await.expect(200).body["email"]
        .as_str()
        .expect("an e-mail")
        .to_string();
    let phone = &cast.alex;
    let laptop = app.login(&email, support::PASSWORD).await;
    me_answers(app, &c_base, &phone.token, 200, "phone before").await;
    me_answers(app, &c_base, &laptop.token, 200, "laptop before").await;
    let mut phone_socket = Ws::connect(c.addr, phone, "phone on C").await;
    let mut laptop_socket = Ws::connect(c.addr, &laptop, "laptop on C").await;

    // The phone signs out through A: on C its token is refused and its socket closes; the
    // laptop's session goes on.
    let response = app
        .client()
        .post(format!("{}/v1/auth/logout", pair.a_base()))
        .json(&json!({"refresh_token": phone.refresh_token}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(204);
    assert_eq!(phone_socket.expect_close().await, Some(4402));
    me_answers(app, &c_base, &phone.token, 401, "phone after its sign-out").await;
    me_answers(
        app,
        &c_base,
        &laptop.token,
        200,
        "laptop after the phone's sign-out",
    )
    .await;
    // Its socket still answers.
    laptop_socket.ready().await;

    // An admin sets a new password through B: the laptop's session ends on C as well.
    let response = app
        .client()
        .patch(format!("{}/v1/users/{}", pair.b_base(), cast.alex.user_id))
        .bearer_auth(&cast.admin.token)
        .json(&json!({"password": "an entirely new passphrase"}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(200);
    assert_eq!(laptop_socket.expect_close().await, Some(4402));
    me_answers(
        app,
        &c_base,
        &laptop.token,
        401,
        "laptop after the new password",
    )
    .await;
    // The admin, who made the change, is not signed out anywhere.
    me_answers(app, &c_base, &cast.admin.token, 200, "the admin").await;
    c.stop().await;
}

/// The same outage with a Redis of the test's own killed (SIGKILL) and started again: every
/// subscription is gone with it, and the instances must subscribe anew by themselves.
async fn a_redis_killed_and_restarted_loses_nothing(pair: Pair) {
    a_redis_outage_loses_nothing(pair).await;
}

/// A request sent by hand on its own connection: its head and the first half of its body
/// now, the rest when `finish` is called, so the server has it in flight meanwhile.
struct HalfSent {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HalfSent {
    async fn start(addr: std::net::SocketAddr, path: &str, token: &str, body: &Value) -> HalfSent {
        let body = body.to_string().into_bytes();
        let mut stream = TcpStream::connect(addr).await.expect("a connection");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).await.expect("the head");
        stream.write_all(first).await.expect("half the body");
        stream.flush().await.expect("flushed");
        HalfSent {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest and reads the status line's code.
    async fn finish(mut self) -> u16 {
        self.stream
            .write_all(&self.rest)
            .await
            .expect("the rest of the body");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, self.stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
    }
}

/// One of the instances is stopped as SIGTERM stops it (`shut_down`, then the delivery
/// worker), under traffic: the request it has in flight finishes, its sockets close with
/// 1001, the client resumes on the other instance without a gap or a repeat, and the
/// replies it queued reach the provider once each.
async fn an_instance_stopped_under_traffic_finishes_its_work_and_clients_move_on(pair: Pair) {
    let app = &pair.app;
    let provider = crate::delivery::Provider::start(200).await;
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::channel(
        app,
        &admin,
        inbox,
        json!({"type": "sms", "address": "+14155550100", "name": "Main line", "outbound_url": provider.url}),
    )
    .await;
    // The instance that will be stopped: C, beside A and B.
    let redis = pair.redis_url.clone();
    let c = app
        .spawn_another(|config| {
            config.redis_url = Some(redis);
            config.delivery_base_delay_ms = 50;
            config.shutdown_timeout = 5;
        })
        .await;
    let c_base = c.url("");
    wait_ready(app, &c_base, 200, "ok").await;
    let conversation =
        inbound_at(app, &pair.a_base(), &line, &customer(1), "hello").await["conversation_id"]
            .as_i64()
            .expect("a conversation");
    let start = latest_cursor(app, &admin).await;
    let mut on_c = Ws::connect(c.addr, &alex, "alex on C").await;

    // Replies through C, then one more left in flight, half-sent, as C is told to stop.
    let path = format!("/v1/conversations/{conversation}/messages");
    for n in 0..4 {
        post_at(
            app,
            &c_base,
            &path,
            &alex,
            json!({"body": format!("reply {n}")}),
        )
        .await
        .expect(201);
    }
    // C delivers them live.
    let mut seen = Vec::new();
    loop {
        let event = on_c.next_event().await;
        let last_reply =
            event["type"] == "message.created" && event["data"]["message"]["body"] == "reply 3";
        seen.push(event);
        if last_reply {
            break;
        }
    }
    let in_flight =
        HalfSent::start(c.addr, &path, &alex.token, &json!({"body": "in flight"})).await;
    let stopping = c.stop();
    let finishing = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        in_flight.finish().await
    };
    let ((), status) = futures_util::join!(stopping, finishing);
    assert_eq!(
        status, 201,
        "the request in flight at the stop was finished"
    );
    // The socket on C closed with 1001 (going away).
    let (frames, closed) = on_c.collect(PATIENCE).await;
    assert_eq!(closed, Some(Some(1001)), "{frames:?}");
    seen.extend(frames.into_iter().filter(is_event));

    // Meanwhile the customer writes again, through A; the client resumes on A.
    inbound_at(app, &pair.a_base(), &line, &customer(1), "still there?").await;
    let last = cursor(seen.last().expect("events before the stop"));
    let mut on_a = Ws::open(
        pair.app.running().addr,
        &alex,
        crate::realtime::TokenIn::Header,
        "alex on A",
    )
    .await;
    on_a.send(json!({"type": "resume", "after": last.to_string()}))
        .await;
    let (frames, closed) = on_a.collect(std::time::Duration::from_secs(2)).await;
    assert_eq!(closed, None, "{frames:?}");
    seen.extend(frames.into_iter().filter(is_event));
    // No gap, no repeat: exactly the log since the socket on C opened, the reply in flight
    // and the message written during the switch included.
    assert_eq!(replay_all(app, &pair.a_base(), &alex, start).await, seen);
    let bodies: Vec<&str> = seen
        .iter()
        .filter(|event| event["type"] == "message.created")
        .filter_map(|event| event["data"]["message"]["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        [
            "reply 0",
            "reply 1",
            "reply 2",
            "reply 3",
            "in flight",
            "still there?"
        ]
    );

    // Every reply reached the provider once, whoever sent it.
    let delivered = provider.wait_for(5).await;
    let mut ids: Vec<i64> = delivered
        .iter()
        .map(crate::delivery::Seen::message_id)
        .collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a reply was sent twice: {ids:?}");
    // And none comes again later (the surviving instances' workers have polled by then).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        provider.seen().len(),
        5,
        "a reply was sent again after its 2xx"
    );
    provider.stop().await;
}

/// Declares each listed `async fn(Pair)` as a PostgreSQL + Redis test.
macro_rules! on_postgres_with_redis {
    ($($name:ident => $route:expr),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn postgres_redis() {
                super::with_two_instances(concat!(module_path!(), "::postgres_redis"), $route, super::$name).await;
            }
        }
    )*};
}

on_postgres_with_redis!(
    what_one_instance_writes_reaches_clients_of_the_other => super::Route::Direct,
    concurrent_writers_on_both_instances_deliver_everything_once_in_order => super::Route::Direct,
    a_redis_outage_loses_nothing => super::Route::Proxied,
    a_redis_killed_and_restarted_loses_nothing => super::Route::Private,
    deployments_sharing_one_redis_hear_only_their_own_events => super::Route::Direct,
    a_client_connecting_after_an_outage_starts_from_the_present => super::Route::Proxied,
    presence_and_deactivation_reach_across_instances => super::Route::Direct,
    sign_outs_and_new_passwords_end_access_at_once_on_every_instance => super::Route::Direct,
    an_instance_stopped_under_traffic_finishes_its_work_and_clients_move_on => super::Route::Direct,
);

#[test]
fn redis_urls_split_around_the_address() {
    assert_eq!(
        split_url("redis://127.0.0.1:6379"),
        ("redis://".into(), "127.0.0.1:6379".into(), String::new())
    );
    assert_eq!(
        split_url("redis://:secret@cache/2"),
        ("redis://:secret@".into(), "cache:6379".into(), "/2".into())
    );
}
