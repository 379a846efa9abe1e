//! Fault drills (README → Operations): a dependency goes away under steady traffic and comes
//! back, and the tests check what the operator and the users see meanwhile and afterwards.
//!
//! PostgreSQL going away is a proxy between the server and the machine's PostgreSQL that the
//! test cuts (every connection dropped, the port closed, as a restart or a crash looks from
//! the server) and restores on the same port; the machine's PostgreSQL is untouched.
//! Runs on PostgreSQL only; skipped, and said so, when it is unreachable, except under
//! CI=true, where that fails.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use persistence::diesel::dsl::count_star;
use persistence::diesel::prelude::*;
use persistence::schema::{conversations, events, messages};
use serde_json::{Value, json};

use crate::fixtures::{self, customer, external_id, inbound};
use crate::proxy::Proxy;
use crate::support::{self, Backend, Session, TestApp, into_reply};

/// What one request of the traffic got.
#[derive(Debug, Clone)]
struct Outcome {
    phase: Phase,
    what: &'static str,
    status: u16,
    code: Option<String>,
    /// The message id of a success.
    message_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    Down,
    After,
}

/// A request that takes longer than this is hung (the server promises seconds: a pool
/// checkout gives up after 5 s, a connection attempt after 3 s).
const HANG: Duration = Duration::from_secs(30);

/// `url` with its `host:port` replaced by the proxy's.
fn through(url: &str, port: u16) -> String {
    let (head, rest) = url.split_once('@').expect("a URL with a user");
    let (_, path) = rest.split_once('/').expect("a URL with a database");
    format!("{head}@127.0.0.1:{port}/{path}")
}

/// The upstream `host:port` of a PostgreSQL URL.
fn upstream_of(url: &str) -> String {
    let (_, rest) = url.split_once('@').expect("a URL with a user");
    rest.split_once('/')
        .expect("a URL with a database")
        .0
        .to_string()
}

/// The phase a request belongs to: the outage's if it started or ended during it (one in
/// flight when the database went away).
fn during(started: Phase, ended: Phase) -> Phase {
    if started == Phase::Down || ended == Phase::Down {
        Phase::Down
    } else {
        started
    }
}

struct Traffic {
    log: Rc<RefCell<Vec<Outcome>>>,
    phase: Rc<RefCell<Phase>>,
    stop: Rc<RefCell<bool>>,
}

impl Traffic {
    /// Customers write in and the agent answers, one request after another, until stopped.
    fn start(app: &TestApp, line: &fixtures::Channel, alex: &Session) -> Traffic {
        let traffic = Traffic {
            log: Rc::default(),
            phase: Rc::new(RefCell::new(Phase::Before)),
            stop: Rc::default(),
        };
        let (log, phase, stop) = (
            traffic.log.clone(),
            traffic.phase.clone(),
            traffic.stop.clone(),
        );
        let (app, line, alex) = (app.clone(), line.clone(), alex.clone());
        actix_web::rt::spawn(async move {
            let mut n = 0u32;
            while !*stop.borrow() {
                n += 1;
                let at = *phase.borrow();
                let text = tokio::time::timeout(
                    HANG,
                    inbound(
                        &app,
                        line.id,
                        &line.secret,
                        &external_id(),
                        &customer(n % 4),
                        "Hello?",
                    ),
                )
                .await
                .unwrap_or_else(|_| panic!("an inbound message hung for {HANG:?} ({at:?})"));
                let conversation = text.body["conversation_id"].as_i64();
                log.borrow_mut().push(Outcome {
                    phase: during(at, *phase.borrow()),
                    what: "inbound",
                    status: text.status,
                    code: text.body["code"].as_str().map(str::to_string),
                    message_id: text.body["message_id"].as_i64(),
                });
                let Some(conversation) = conversation else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let at = *phase.borrow();
                let reply = tokio::time::timeout(
                    HANG,
                    app.post(
                        &format!("/v1/conversations/{conversation}/messages"),
                        &alex.token,
                        json!({"body": "On it"}),
                    ),
                )
                .await
                .unwrap_or_else(|_| panic!("a reply hung for {HANG:?} ({at:?})"));
                log.borrow_mut().push(Outcome {
                    phase: during(at, *phase.borrow()),
                    what: "reply",
                    status: reply.status,
                    code: reply.body["code"].as_str().map(str::to_string),
                    message_id: reply.body["id"].as_i64(),
                });
            }
        });
        traffic
    }

    fn count(&self, phase: Phase, success: bool) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|outcome| outcome.phase == phase && (outcome.status < 300) == success)
            .count()
    }

    /// Waits until `done` holds of the log (at most `within`).
    async fn until(&self, what: &str, within: Duration, done: impl Fn(&Traffic) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {within:?}: {:?}",
                self.log.borrow().iter().rev().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = tokio::time::timeout(HANG, app.client().get(app.url("/readyz")).send())
        .await
        .expect("/readyz answers, not hangs")
        .expect("request reaches the server");
    let reply = into_reply(response).await;
    (reply.status, reply.body)
}

async fn postgresql_going_away_under_traffic_fails_fast_and_recovers_whole(
    app: TestApp,
    proxy: std::sync::Arc<Proxy>,
) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    let traffic = Traffic::start(&app, &line, &alex);
    traffic
        .until("traffic flowing", Duration::from_secs(30), |traffic| {
            traffic.count(Phase::Before, true) >= 10
        })
        .await;

    // PostgreSQL goes away.
    *traffic.phase.borrow_mut() = Phase::Down;
    proxy.cut();
    traffic
        .until(
            "requests refused while the database is away",
            Duration::from_secs(60),
            |traffic| traffic.count(Phase::Down, false) >= 6,
        )
        .await;
    let (status, body) = readiness(&app).await;
    assert_eq!(
        (status, body["database"].as_str()),
        (503, Some("down")),
        "{body}"
    );
    assert_eq!(body["status"], "unavailable");

    // It is back: the server recovers by itself.
    proxy.restore().await;
    *traffic.phase.borrow_mut() = Phase::After;
    traffic
        .until(
            "traffic flowing again",
            Duration::from_secs(60),
            |traffic| traffic.count(Phase::After, true) >= 10,
        )
        .await;
    *traffic.stop.borrow_mut() = true;
    let (status, body) = readiness(&app).await;
    assert_eq!(
        (status, body["database"].as_str()),
        (200, Some("ok")),
        "{body}"
    );

    let log = traffic.log.borrow().clone();
    // While it was away every refusal said so; nothing answered 500.
    for outcome in &log {
        assert!(
            outcome.status < 300
                || (outcome.status == 503
                    && outcome.code.as_deref() == Some("service_unavailable")),
            "{} answered {outcome:?}",
            outcome.what
        );
        assert!(
            outcome.phase == Phase::Down || outcome.status < 300,
            "only the outage refuses: {outcome:?}"
        );
    }
    // Nothing half-written: every conversation has its messages, every message answered
    // is there, and the event log has no gap.
    let answered: Vec<i64> = log
        .iter()
        .filter_map(|outcome| outcome.message_id)
        .collect();
    let org = admin.org_id;
    let (empty, stored, seqs) = app
        .running()
        .state
        .store
        .read(|conn| {
            let empty = conversations::table
                .filter(conversations::org_id.eq(org))
                .filter(conversations::message_count.eq(0))
                .select(count_star())
                .first::<i64>(conn)?;
            let stored = messages::table
                .filter(messages::id.eq_any(&answered))
                .select(count_star())
                .first::<i64>(conn)?;
            let seqs = events::table
                .filter(events::org_id.eq(org))
                .order(events::seq)
                .select(events::seq)
                .load::<i64>(conn)?;
            Ok((empty, stored, seqs))
        })
        .expect("read after recovery");
    assert_eq!(empty, 0, "a conversation without its message");
    assert_eq!(stored, i64::try_from(answered.len()).expect("a count"));
    let gaps: Vec<(i64, i64)> = seqs
        .windows(2)
        .filter(|pair| pair[1] != pair[0] + 1)
        .map(|pair| (pair[0], pair[1]))
        .collect();
    assert!(gaps.is_empty(), "the event log skips: {gaps:?}");
}

#[actix_web::test]
async fn postgresql_going_away_under_traffic_fails_fast_and_recovers_whole_on_postgres() {
    let name = "fault_drills::postgresql_going_away";
    let Some(probe) = support::TestDb::create(Backend::Postgres, name) else {
        return;
    };
    let proxy = Proxy::start(upstream_of(probe.url())).await;
    drop(probe);
    let port = proxy.port;
    let for_body = proxy.clone();
    support::run(
        Backend::Postgres,
        name,
        move |config| {
            config.database_url = through(&config.database_url, port);
            config.db_pool = 4;
        },
        move |app| postgresql_going_away_under_traffic_fails_fast_and_recovers_whole(app, for_body),
    )
    .await;
    proxy.cut();
}
