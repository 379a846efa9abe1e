//! Realtime under load (issue 8): a long replay does not hold up anyone else's live events
//! and still delivers every event once and in order; a `resume` flood is cut off with 4429
//! without touching other sockets; hundreds of sockets of one organization connecting at
//! once each receive a handful of `presence.updated` frames (not one per connect), none is
//! closed as slow, and `GET /v1/presence` lists them online. Real server, real WebSockets.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use persistence::repo::events::{self, NewEvent};
use persistence::repo::users::{self, NewUser};
use serde_json::{Value, json};

use crate::fixtures::{self, customer, sms_channel};
use crate::on_both_backends;
use crate::realtime::{PATIENCE, TokenIn, Ws, assert_increasing, cursor, inbound, replay_all};
use crate::support::{Session, TestApp};

/// Events in the long history.
const HISTORY: usize = 3000;
/// Padding per history event: the history must not fit in socket buffers, so that the
/// replay is still streaming while the client has not read it.
const PADDING: usize = 8 * 1024;

async fn a_long_replay_does_not_hold_up_live_events_and_delivers_each_event_once_in_order(
    app: TestApp,
) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let olive = app.user(&admin, "agent", "Olive Agent").await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let billing = fixtures::inbox(&app, &admin, "Billing", json!({}), &[&olive]).await;
    let support_line = sms_channel(&app, &admin, support, "+14155550000").await;
    let billing_line = sms_channel(&app, &admin, billing, "+14155550001").await;
    let conversation = support_line.text(&app, &customer(1), "Hello").await;
    let base = app.url("");
    let start = replay_all(&app, &base, &admin, 0)
        .await
        .last()
        .map_or(0, cursor);
    let updated = replay_all(&app, &base, &admin, 0)
        .await
        .into_iter()
        .rfind(|event| event["type"] == "conversation.updated")
        .expect("a conversation.updated");

    // A long history about Alex's conversation, straight into the log.
    let mut data = updated["data"].clone();
    data["padding"] = Value::String("x".repeat(PADDING));
    let payload = data.to_string();
    let store = app.running().state.store.clone();
    let org = domain::OrgId(admin.org_id);
    actix_web::web::block(move || {
        for _ in 0..HISTORY / 500 {
            let batch = (0..500)
                .map(|_| NewEvent {
                    org_id: org,
                    event_type: domain::EventType::ConversationUpdated,
                    inbox_id: Some(domain::InboxId(support)),
                    conversation_id: Some(domain::ConversationId(conversation)),
                    payload: payload.clone(),
                })
                .collect();
            store.write(|conn| events::append_all(conn, org, batch))?;
        }
        Ok::<_, persistence::StoreError>(())
    })
    .await
    .expect("blocking pool")
    .expect("history written");

    // Olive (Billing only) is live; wait until her socket's own start-up replay is over.
    let mut olive_ws = Ws::connect(app.running().addr, &olive, "olive").await;
    olive_ws.expect_silence().await;
    let hub = app.running().state.hub.clone();
    wait_for("no replay running", || hub.replays_running() == 0).await;

    // Alex comes back and resumes from before the history, then stops reading for a while.
    let mut alex_ws = Ws::open(app.running().addr, &alex, TokenIn::Header, "alex").await;
    alex_ws
        .send(json!({"type": "resume", "after": start.to_string()}))
        .await;
    let first = alex_ws.next_event().await;
    assert_eq!(cursor(&first), start + 1);

    // Meanwhile a customer writes to Billing: Olive hears it while Alex's replay is still
    // under way (it cannot finish: Alex is not reading).
    let live = inbound(&app, &billing_line, &customer(2), "Invoice?").await;
    let heard = olive_ws.events(3).await;
    assert_eq!(heard[1]["data"]["message"]["id"], live["message_id"]);
    assert!(
        hub.replays_running() >= 1,
        "the live event should arrive before the replay finishes"
    );

    // Alex then gets the whole history, each event once and in order, and nothing else.
    let mut replayed = vec![first];
    replayed.extend(alex_ws.events(HISTORY - 1).await);
    assert_increasing(&replayed, "alex");
    assert_eq!(
        replayed.iter().map(cursor).collect::<Vec<_>>(),
        (start + 1..=start + HISTORY as i64).collect::<Vec<_>>()
    );
    alex_ws.expect_silence().await;
    // And live again: a message in Support reaches him once.
    support_line.text(&app, &customer(1), "Still there?").await;
    let after = alex_ws.events(2).await;
    assert!(cursor(&after[0]) > start + HISTORY as i64);
    assert_increasing(&after, "alex");
}

/// Polls a condition of the in-process server (not a pace: a failure after PATIENCE).
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_resume_flood_is_cut_off_with_4429_and_others_are_unaffected(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = sms_channel(&app, &admin, inbox, "+14155550000").await;
    line.text(&app, &customer(1), "Hello").await;
    let mut bystander = Ws::connect(app.running().addr, &admin, "admin").await;
    let mut flooder = Ws::connect(app.running().addr, &alex, "alex").await;
    for _ in 0..50 {
        flooder.send(json!({"type": "resume", "after": "0"})).await;
    }
    assert_eq!(flooder.expect_close().await, Some(4429));
    line.text(&app, &customer(1), "Anyone?").await;
    let events = bystander.events(2).await;
    assert_eq!(events[0]["type"], "message.created");
    assert_eq!(events[0]["data"]["message"]["body"], "Anyone?");
    // The flooder may come back (with backoff) and resume normally.
    let mut back = Ws::open(app.running().addr, &alex, TokenIn::Header, "alex (back)").await;
    back.send(json!({"type": "resume", "after": cursor(&events[1]).to_string()}))
        .await;
    back.expect_silence().await;
}

/// Sockets of one organization connecting at once (one user each).
const SOCKETS: usize = 300;

async fn hundreds_of_sockets_connecting_at_once_get_a_few_presence_frames_each(app: TestApp) {
    let admin = app.admin().await;
    // Users straight through the repository, with tokens from the server's own keys (signing
    // in 300 users would spend the test on password hashing).
    let state = app.running().state.clone();
    let org = domain::OrgId(admin.org_id);
    let store = state.store.clone();
    let people = actix_web::web::block(move || {
        store.write(|conn| {
            (0..SOCKETS)
                .map(|n| {
                    users::insert(
                        conn,
                        NewUser {
                            org_id: org,
                            email: &format!("agent{n}@crowd.example.com"),
                            name: &format!("Agent {n}"),
                            role: domain::Role::Agent,
                            password_hash: "not a real hash",
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
    })
    .await
    .expect("blocking pool")
    .expect("users");
    let sessions: Vec<Session> = people
        .iter()
        .map(|user| Session {
            token: state.tokens.issue(user, "").expect("a token"),
            refresh_token: String::new(),
            user_id: user.id.get(),
            org_id: admin.org_id,
        })
        .collect();

    let began = Instant::now();
    let addr = app.running().addr;
    let mut sockets = join_all(sessions.iter().enumerate().map(|(n, session)| async move {
        Ws::connect(addr, session, &format!("agent {n}")).await
    }))
    .await;
    // The snapshot lists every one of them online.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let snapshot = app.get("/v1/presence", &admin.token).await.expect(200);
        let online: Vec<i64> = snapshot.body["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter(|user| user["status"] == "online")
            .map(|user| user["user_id"].as_i64().expect("user_id"))
            .collect();
        if sessions
            .iter()
            .all(|session| online.contains(&session.user_id))
        {
            assert!(!online.contains(&admin.user_id), "the admin has no socket");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all online: {}",
            snapshot.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every socket reads what it got, plus a little more (absence of a storm, not speed).
    let window = Duration::from_millis(1500);
    let collected = join_all(sockets.iter_mut().map(|ws| ws.collect(window))).await;
    let elapsed = began.elapsed().as_secs() + 1;
    let mut heard_online = std::collections::BTreeSet::new();
    for (n, (frames, closed)) in collected.iter().enumerate() {
        assert_eq!(*closed, None, "agent {n} was closed");
        let presence: Vec<&Value> = frames
            .iter()
            .filter(|frame| frame["type"] == "presence.updated")
            .collect();
        // At most one frame per socket per second (plus the one under way).
        assert!(
            presence.len() as u64 <= elapsed + 1,
            "agent {n}: {} presence frames in {elapsed} s",
            presence.len()
        );
        for frame in presence {
            assert!(frame.get("id").is_none(), "presence has no cursor: {frame}");
            for user in frame["data"]["users"].as_array().expect("users") {
                if user["status"] == "online" {
                    heard_online.insert(user["user_id"].as_i64().expect("user_id"));
                }
            }
        }
    }
    // Together the frames announced every user (each socket hears what changed after it
    // joined; the snapshot covers what came before).
    let expected: std::collections::BTreeSet<i64> =
        sessions.iter().map(|session| session.user_id).collect();
    assert_eq!(heard_online, expected);
    // All still open and answering.
    for ws in sockets.iter_mut().take(10) {
        ws.ready().await;
    }
    // One leaves: the others hear it in one frame.
    let leaving = sessions[0].user_id;
    let mut sockets = sockets.into_iter();
    sockets.next().expect("a socket").disconnect().await;
    let mut watcher = sockets.next().expect("another socket");
    let frame = watcher
        .next_matching(PATIENCE, "presence.updated", |frame| {
            frame["type"] == "presence.updated"
                && frame["data"]["users"]
                    .as_array()
                    .is_some_and(|users| users.iter().any(|user| user["user_id"] == leaving))
        })
        .await;
    assert_eq!(
        frame["data"]["users"],
        json!([{"user_id": leaving, "status": "offline"}])
    );
}

async fn status_changes_reach_the_organization_and_the_snapshot(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let mut watching = Ws::connect(app.running().addr, &admin, "admin").await;
    let mut alex_ws = Ws::connect(app.running().addr, &alex, "alex").await;
    let online = |frame: &Value, status: &str| {
        frame["type"] == "presence.updated"
            && frame["data"]["users"].as_array().is_some_and(|users| {
                users
                    .iter()
                    .any(|user| user["user_id"] == alex.user_id && user["status"] == status)
            })
    };
    watching
        .next_matching(PATIENCE, "alex online", |frame| online(frame, "online"))
        .await;
    app.put(
        "/v1/me/status",
        &alex.token,
        Some(json!({"status": "away"})),
    )
    .await
    .expect(200);
    watching
        .next_matching(PATIENCE, "alex away", |frame| online(frame, "away"))
        .await;
    let snapshot = app.get("/v1/presence", &admin.token).await.expect(200);
    let users = snapshot.body["users"].as_array().expect("users").clone();
    assert!(
        users.contains(&json!({"user_id": alex.user_id, "status": "away"})),
        "{users:?}"
    );
    assert!(
        users.contains(&json!({"user_id": admin.user_id, "status": "online"})),
        "{users:?}"
    );
    alex_ws.ready().await;
    alex_ws.disconnect().await;
    watching
        .next_matching(PATIENCE, "alex offline", |frame| online(frame, "offline"))
        .await;
    let snapshot = app.get("/v1/presence", &admin.token).await.expect(200);
    assert!(
        snapshot.body["users"]
            .as_array()
            .expect("users")
            .contains(&json!({"user_id": alex.user_id, "status": "offline"})),
        "{}",
        snapshot.body
    );
    // Presence is the organization's: another tenant's admin sees only their own users.
    let globex = app.other_org("Globex").await;
    let theirs = app.get("/v1/presence", &globex.token).await.expect(200);
    assert_eq!(
        theirs.body["users"],
        json!([{"user_id": globex.user_id, "status": "offline"}])
    );
}

on_both_backends!(
    a_long_replay_does_not_hold_up_live_events_and_delivers_each_event_once_in_order,
    a_resume_flood_is_cut_off_with_4429_and_others_are_unaffected,
    hundreds_of_sockets_connecting_at_once_get_a_few_presence_frames_each,
    status_changes_reach_the_organization_and_the_snapshot,
);
