//! Fault drills (README → Operations): a dependency goes away under steady traffic and comes
//! back, and the tests check what the operator and the users see meanwhile and afterwards.
//!
//! PostgreSQL going away is a cluster of the test's own (`initdb` in a temporary directory,
//! `pg_ctl` on a spare port, as the `postgres` user when the tests run as root) that the
//! test stops the hard way (`-m immediate`: every session killed, no shutdown checkpoint,
//! crash recovery at the next start) and starts again; the machine's PostgreSQL is untouched.
//! Skipped, and said so, without PostgreSQL's server programs, except under CI=true, where
//! that fails.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use persistence::diesel::dsl::count_star;
use persistence::diesel::prelude::*;
use persistence::schema::{conversations, events, messages};
use serde_json::{Value, json};

use crate::fixtures::{self, customer, external_id, inbound};
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};

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

/// A PostgreSQL cluster of the test's own.
struct Cluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// `initdb` and start on a spare port; `None` (skipped) without the server programs.
    fn start(test_name: &str) -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|version| version.path().join("bin"))
            .find(|bin| bin.join("initdb").is_file());
        let Some(bin) = bin else {
            assert!(
                !std::env::var("CI").is_ok_and(|value| value == "true" || value == "1"),
                "CI=true but PostgreSQL's server programs (initdb, pg_ctl) are not installed"
            );
            eprintln!("SKIPPED {test_name}: no initdb under /usr/lib/postgresql");
            support::record_skip(&format!("{test_name} (no initdb)"));
            return None;
        };
        // PostgreSQL refuses to run as root: then the cluster belongs to `postgres`.
        let as_postgres = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let dir = tempfile::tempdir().expect("a temporary directory");
        if as_postgres {
            let status = std::process::Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a spare port")
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let output = command
            .args(args)
            .output()
            .expect("a PostgreSQL program runs");
        assert!(
            output.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stopped the hard way: every session killed, recovery at the next start.
    fn crash(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
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

/// One request of the traffic, logged with the phase it belongs to; a request that hangs
/// fails the test. `id` names the answer's field holding the message id.
async fn logged(
    log: &RefCell<Vec<Outcome>>,
    phase: &RefCell<Phase>,
    what: &'static str,
    id: &str,
    request: impl std::future::Future<Output = Reply>,
) -> Reply {
    let started = *phase.borrow();
    let reply = tokio::time::timeout(HANG, request)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?} ({started:?})"));
    log.borrow_mut().push(Outcome {
        phase: during(started, *phase.borrow()),
        what,
        status: reply.status,
        code: reply.body["code"].as_str().map(str::to_string),
        message_id: reply.body[id].as_i64(),
    });
    reply
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
                let text = logged(&log, &phase, "an inbound message", "message_id", async {
                    let from = customer(n % 4);
                    inbound(&app, line.id, &line.secret, &external_id(), &from, "Hello?").await
                })
                .await;
                let Some(conversation) = text.body["conversation_id"].as_i64() else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let path = format!("/v1/conversations/{conversation}/messages");
                let reply = app.post(&path, &alex.token, json!({"body": "On it"}));
                logged(&log, &phase, "a reply", "id", reply).await;
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
    cluster: Rc<Cluster>,
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

    // PostgreSQL goes away: killed, sessions and all.
    *traffic.phase.borrow_mut() = Phase::Down;
    cluster.crash();
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

    // It is started again (crash recovery first): the server recovers by itself.
    cluster.pg_ctl_start();
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
    let Some(cluster) = Cluster::start(name) else {
        return;
    };
    let mut admin = persistence::diesel::pg::PgConnection::establish(&cluster.url("postgres"))
        .expect("the test's cluster answers");
    persistence::diesel::sql_query("CREATE DATABASE switchboard")
        .execute(&mut admin)
        .expect("a database on the test's cluster");
    drop(admin);
    let url = cluster.url("switchboard");
    let cluster = Rc::new(cluster);
    // The harness makes its database on the machine's PostgreSQL as for any test; this
    // server runs on the test's own cluster instead.
    support::run(
        Backend::Postgres,
        name,
        move |config| {
            config.database_url = url;
            config.db_pool = 4;
        },
        move |app| postgresql_going_away_under_traffic_fails_fast_and_recovers_whole(app, cluster),
    )
    .await;
}
