//! Internal chats (API.md → Internal chats): colleagues write to each other in direct chats
//! (one per pair, whoever starts it) and named team chats. Members only: everyone else gets
//! 404 and hears nothing. Each member has an unread count of their own; the list follows the
//! last activity; files go along as in conversations; `chat.message.created` reaches the
//! members over the WebSocket, `resume` and `GET /v1/events`.

use std::future::Future;

use serde_json::{Value, json};

use crate::fixtures::{self, sms_channel, tick};
use crate::races::{ROUNDS, at_once, side_by_side};
use crate::realtime::{PATIENCE, Ws, replay_all};
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};
use crate::{on_both_backends, on_both_backends_with};

// ---------------------------------------------------------------------------------------
// Calls

/// `POST /v1/chats` as `who`.
async fn start(app: &TestApp, who: &Session, body: Value) -> Reply {
    app.post("/v1/chats", &who.token, body).await
}

/// The direct chat of `who` with `other` (new or existing); answers its id.
async fn direct(app: &TestApp, who: &Session, other: &Session) -> i64 {
    let reply = start(
        app,
        who,
        json!({"kind": "direct", "member_ids": [other.user_id]}),
    )
    .await;
    assert!(
        reply.status == 201 || reply.status == 200,
        "direct chat: {} {}",
        reply.status,
        reply.body
    );
    reply.id()
}

/// A new team chat of `who` with `members`; answers its id.
async fn team(app: &TestApp, who: &Session, name: &str, members: &[&Session]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|member| member.user_id).collect();
    start(
        app,
        who,
        json!({"kind": "team", "name": name, "member_ids": ids}),
    )
    .await
    .expect(201)
    .id()
}

fn messages_path(chat: i64) -> String {
    format!("/v1/chats/{chat}/messages")
}

/// `who` writes `body` in the chat (asserting 201); answers the message.
async fn say(app: &TestApp, who: &Session, chat: i64, body: &str) -> Value {
    app.post(&messages_path(chat), &who.token, json!({"body": body}))
        .await
        .expect(201)
        .body
}

/// The chat as `who` sees it (asserting 200).
async fn chat(app: &TestApp, who: &Session, id: i64) -> Value {
    app.get(&format!("/v1/chats/{id}"), &who.token)
        .await
        .expect(200)
        .body
}

async fn unread(app: &TestApp, who: &Session, id: i64) -> i64 {
    chat(app, who, id).await["unread_count"]
        .as_i64()
        .expect("unread_count")
}

async fn read(app: &TestApp, who: &Session, id: i64) {
    app.post(&format!("/v1/chats/{id}/read"), &who.token, json!({}))
        .await
        .expect(204);
}

/// One page of `who`'s chats (`query` without the `?`).
async fn list(app: &TestApp, who: &Session, query: &str) -> Reply {
    app.get(&format!("/v1/chats?{query}"), &who.token)
        .await
        .expect(200)
}

/// The fields a 422 `validation_failed` names.
#[track_caller]
fn refused_fields(reply: Reply) -> Vec<String> {
    let reply = reply.expect_problem(422, "validation_failed");
    reply.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {}", reply.body))
        .iter()
        .map(|error| error["field"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn ids_of(items: &Value) -> Vec<i64> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| item["id"].as_i64().expect("id"))
        .collect()
}

/// An organization with its admin and three agents.
struct Team {
    admin: Session,
    ana: Session,
    bo: Session,
    cy: Session,
}

async fn colleagues(app: &TestApp) -> Team {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana Agent").await;
    let bo = app.user(&admin, "agent", "Bo Agent").await;
    let cy = app.user(&admin, "agent", "Cy Agent").await;
    Team { admin, ana, bo, cy }
}

// ---------------------------------------------------------------------------------------
// Starting chats

async fn a_direct_chat_is_reused_whoever_starts_it(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo) = (&people.ana, &people.bo);

    let created = start(
        &app,
        ana,
        json!({"kind": "direct", "member_ids": [bo.user_id]}),
    )
    .await
    .expect(201);
    let id = created.id();
    let mut members = vec![ana.user_id, bo.user_id];
    members.sort_unstable();
    assert_eq!(created.body["kind"], "direct");
    assert_eq!(created.body["name"], Value::Null);
    assert_eq!(created.body["member_ids"], json!(members));
    assert_eq!(created.body["last_message_at"], Value::Null);
    assert_eq!(created.body["last_message_preview"], Value::Null);
    assert_eq!(created.body["unread_count"], 0);
    let at = created.body["created_at"].as_str().expect("created_at");
    assert!(at.len() == 24 && at.ends_with('Z'), "{at}");

    // Bo starting it (listing himself too, as a client may) gets the same chat: 200.
    let again = start(
        &app,
        bo,
        json!({"kind": "direct", "member_ids": [ana.user_id, bo.user_id]}),
    )
    .await
    .expect(200);
    assert_eq!(again.id(), id);
    assert_eq!(again.body["member_ids"], json!(members));
    // And Ana again, naming Bo twice.
    let third = start(
        &app,
        ana,
        json!({"kind": "direct", "member_ids": [bo.user_id, bo.user_id]}),
    )
    .await
    .expect(200);
    assert_eq!(third.id(), id);

    // Another pair has a chat of its own.
    let other = direct(&app, ana, &people.cy).await;
    assert_ne!(other, id);
    assert_eq!(ids_of(&list(&app, bo, "").await.body["items"]), vec![id]);
}

async fn a_direct_chat_is_with_exactly_one_active_colleague(app: TestApp) {
    let people = colleagues(&app).await;
    let ana = &people.ana;
    let globex = app.other_org("Globex").await;
    let gone = app.user(&people.admin, "agent", "Gone Agent").await;
    app.patch(
        &format!("/v1/users/{}", gone.user_id),
        &people.admin.token,
        json!({"active": false}),
    )
    .await
    .expect(200);

    for (members, what) in [
        (json!([]), "nobody"),
        (json!([ana.user_id]), "oneself"),
        (json!([globex.user_id]), "another organization's admin"),
        (json!([999_999]), "an unknown id"),
        (json!([gone.user_id]), "a deactivated colleague"),
        (json!([people.bo.user_id, people.cy.user_id]), "two people"),
    ] {
        let reply = start(&app, ana, json!({"kind": "direct", "member_ids": members})).await;
        assert_eq!(refused_fields(reply), ["member_ids"], "{what}");
    }
    let named = start(
        &app,
        ana,
        json!({"kind": "direct", "member_ids": [people.bo.user_id], "name": "Us"}),
    )
    .await;
    assert_eq!(refused_fields(named), ["name"]);
    for bad in [
        json!({"kind": "group", "member_ids": [people.bo.user_id]}),
        json!({"member_ids": [people.bo.user_id]}),
        json!({"kind": "direct", "member_ids": [people.bo.user_id], "topic": "x"}),
    ] {
        start(&app, ana, bad)
            .await
            .expect_problem(400, "bad_request");
    }
    // Nothing was created along the way, for anyone.
    for who in [ana, &people.bo, &globex] {
        assert_eq!(list(&app, who, "").await.body["items"], json!([]));
    }
}

async fn a_team_chat_has_a_name_and_colleagues_of_the_organization(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy) = (&people.ana, &people.bo, &people.cy);
    let globex = app.other_org("Globex").await;

    let nameless = start(
        &app,
        ana,
        json!({"kind": "team", "member_ids": [bo.user_id]}),
    )
    .await;
    assert_eq!(refused_fields(nameless), ["name"]);
    let too_long = "x".repeat(101);
    for name in ["", "   ", too_long.as_str()] {
        let reply = start(
            &app,
            ana,
            json!({"kind": "team", "name": name, "member_ids": [bo.user_id]}),
        )
        .await;
        assert_eq!(refused_fields(reply), ["name"], "{name:?}");
    }
    let alone = start(
        &app,
        ana,
        json!({"kind": "team", "name": "Just me", "member_ids": [ana.user_id]}),
    )
    .await;
    assert_eq!(refused_fields(alone), ["member_ids"]);
    let foreign = start(
        &app,
        ana,
        json!({"kind": "team", "name": "Mixed", "member_ids": [bo.user_id, globex.user_id]}),
    )
    .await;
    assert_eq!(refused_fields(foreign), ["member_ids"]);
    let crowd: Vec<i64> = (1..=100).map(|n| 1_000_000 + n).collect();
    let too_many = start(
        &app,
        ana,
        json!({"kind": "team", "name": "Everyone", "member_ids": crowd}),
    )
    .await;
    assert_eq!(refused_fields(too_many), ["member_ids"]);

    let created = start(
        &app,
        ana,
        json!({"kind": "team", "name": "  Night shift  ", "member_ids": [cy.user_id, bo.user_id, cy.user_id]}),
    )
    .await
    .expect(201);
    let mut members = vec![ana.user_id, bo.user_id, cy.user_id];
    members.sort_unstable();
    assert_eq!(created.body["kind"], "team");
    assert_eq!(created.body["name"], "Night shift");
    assert_eq!(created.body["member_ids"], json!(members));
    // A longest name fits; two teams may share a name (they are different groups).
    let long = "n".repeat(100);
    team(&app, bo, &long, &[cy]).await;
    let twin = team(&app, ana, "Night shift", &[bo]).await;
    assert_ne!(twin, created.id());
    assert_eq!(
        list(&app, cy, "").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(list(&app, &globex, "").await.body["items"], json!([]));
}

// ---------------------------------------------------------------------------------------
// Members only

async fn outsiders_get_404_and_hear_nothing_while_members_hear_each_message(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy, admin) = (&people.ana, &people.bo, &people.cy, &people.admin);
    let globex = app.other_org("Globex").await;
    let id = direct(&app, ana, bo).await;
    let addr = app.running().addr;
    let mut ana_ws = Ws::connect(addr, ana, "ana").await;
    let mut bo_ws = Ws::connect(addr, bo, "bo").await;
    let mut cy_ws = Ws::connect(addr, cy, "cy (same organization, not in the chat)").await;
    let mut admin_ws = Ws::connect(addr, admin, "admin (not in the chat)").await;
    let mut globex_ws = Ws::connect(addr, &globex, "globex admin").await;

    // Outsiders, the organization's admin included, cannot tell the chat exists.
    for outsider in [cy, admin, &globex] {
        app.get(&format!("/v1/chats/{id}"), &outsider.token)
            .await
            .expect_problem(404, "not_found");
        app.get(&messages_path(id), &outsider.token)
            .await
            .expect_problem(404, "not_found");
        app.post(&messages_path(id), &outsider.token, json!({"body": "Hi"}))
            .await
            .expect_problem(404, "not_found");
        app.post(&format!("/v1/chats/{id}/read"), &outsider.token, json!({}))
            .await
            .expect_problem(404, "not_found");
        assert_eq!(list(&app, outsider, "").await.body["items"], json!([]));
    }
    app.get("/v1/chats/999999", &ana.token)
        .await
        .expect_problem(404, "not_found");
    app.get("/v1/chats/abc", &ana.token)
        .await
        .expect_problem(400, "bad_request");

    let sent = say(&app, ana, id, "Can you take the 3pm call?").await;
    assert_eq!(sent["chat_id"], id);
    assert_eq!(sent["author_id"], ana.user_id);
    assert_eq!(sent["body"], "Can you take the 3pm call?");
    assert_eq!(sent["attachments"], json!([]));
    for (ws, who) in [(&mut bo_ws, "bo"), (&mut ana_ws, "ana")] {
        let event = ws.expect_event("chat.message.created").await;
        assert_eq!(event["data"]["chat_id"], id, "{who}: {event}");
        assert_eq!(event["data"]["message"], sent, "{who}: {event}");
    }
    for ws in [&mut cy_ws, &mut admin_ws, &mut globex_ws] {
        ws.expect_silence().await;
    }

    // The REST replay and `resume` decide the same way.
    let bo_replay = replay_all(&app, &app.url(""), bo, 0).await;
    let chat_events: Vec<&Value> = bo_replay
        .iter()
        .filter(|event| event["type"] == "chat.message.created")
        .collect();
    assert_eq!(chat_events.len(), 1, "{bo_replay:?}");
    assert_eq!(chat_events[0]["data"]["message"], sent);
    for outsider in [cy, admin, &globex] {
        let replay = replay_all(&app, &app.url(""), outsider, 0).await;
        assert!(
            replay
                .iter()
                .all(|event| event["type"] != "chat.message.created"),
            "an outsider replays a chat message: {replay:?}"
        );
    }
    let mut bo_back = Ws::open(addr, bo, crate::realtime::TokenIn::Header, "bo (resumed)").await;
    bo_back.send(json!({"type": "resume", "after": "0"})).await;
    let resumed = bo_back
        .next_matching(PATIENCE, "the chat message", |frame| {
            frame["type"] == "chat.message.created"
        })
        .await;
    assert_eq!(resumed["data"]["message"], sent);
    let mut cy_back = Ws::open(addr, cy, crate::realtime::TokenIn::Header, "cy (resumed)").await;
    cy_back.send(json!({"type": "resume", "after": "0"})).await;
    cy_back
        .expect_no("a chat message", |frame| {
            frame["type"] == "chat.message.created"
        })
        .await;

    // A reply reaches both members and still nobody else.
    let reply = say(&app, bo, id, "Sure").await;
    for ws in [&mut ana_ws, &mut bo_ws] {
        let event = ws.expect_event("chat.message.created").await;
        assert_eq!(event["data"]["message"]["id"], reply["id"]);
    }
    for ws in [&mut cy_ws, &mut admin_ws, &mut globex_ws] {
        ws.expect_silence().await;
    }
}

// ---------------------------------------------------------------------------------------
// Messages and read state

async fn messages_page_newest_first_and_bodies_follow_the_message_rules(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo) = (&people.ana, &people.bo);
    let id = direct(&app, ana, bo).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let author = if n % 2 == 0 { ana } else { bo };
        sent.push(
            say(&app, author, id, &format!("Message {n}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let page = app
            .get(&format!("{}?{query}", messages_path(id)), &bo.token)
            .await
            .expect(200);
        seen.extend(ids_of(&page.body["items"]));
        match page.body["next_cursor"].as_str() {
            Some(next) => query = format!("limit=2&before={next}"),
            None => break,
        }
    }
    sent.reverse();
    assert_eq!(seen, sent, "newest first, each once");
    let first = app
        .get(&format!("{}?limit=1", messages_path(id)), &ana.token)
        .await
        .expect(200);
    assert_eq!(first.body["items"][0]["body"], "Message 4");
    assert_eq!(first.body["items"][0]["author_id"], ana.user_id);
    for bad in ["limit=0", "limit=101", "before=%%%"] {
        app.get(&format!("{}?{bad}", messages_path(id)), &ana.token)
            .await
            .expect_problem(400, "bad_request");
    }

    for body in [json!({"body": ""}), json!({"body": "  \n "}), json!({})] {
        let reply = app.post(&messages_path(id), &ana.token, body).await;
        assert_eq!(refused_fields(reply), ["body"]);
    }
    let long = app
        .post(
            &messages_path(id),
            &ana.token,
            json!({"body": "x".repeat(10_001)}),
        )
        .await;
    assert_eq!(refused_fields(long), ["body"]);
    say(&app, ana, id, &"x".repeat(10_000)).await;
    app.post(
        &messages_path(id),
        &ana.token,
        json!({"body": "Hi", "kind": "note"}),
    )
    .await
    .expect_problem(400, "bad_request");
    let shown = chat(&app, bo, id).await;
    assert_eq!(
        shown["last_message_preview"].as_str().map(str::len),
        Some(140),
        "the preview is cut: {shown}"
    );
}

async fn unread_counts_are_each_members_own_and_reading_clears_them(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy) = (&people.ana, &people.bo, &people.cy);
    let id = team(&app, ana, "Escalations", &[bo, cy]).await;
    // Reading a chat without messages is fine and changes nothing.
    read(&app, cy, id).await;
    assert_eq!(unread(&app, cy, id).await, 0);

    say(&app, ana, id, "One").await;
    say(&app, ana, id, "Two").await;
    // The author's own messages count as read.
    assert_eq!(unread(&app, ana, id).await, 0);
    assert_eq!(unread(&app, bo, id).await, 2);
    assert_eq!(unread(&app, cy, id).await, 2);

    // Writing in the chat reads what came before.
    say(&app, bo, id, "Three").await;
    assert_eq!(unread(&app, bo, id).await, 0);
    assert_eq!(unread(&app, ana, id).await, 1);
    assert_eq!(unread(&app, cy, id).await, 3);

    read(&app, cy, id).await;
    assert_eq!(unread(&app, cy, id).await, 0);
    // Nobody else's count moved.
    assert_eq!(unread(&app, ana, id).await, 1);
    // Reading twice is the same as once.
    read(&app, cy, id).await;
    assert_eq!(unread(&app, cy, id).await, 0);

    say(&app, ana, id, "Four").await;
    assert_eq!(unread(&app, ana, id).await, 0);
    assert_eq!(unread(&app, bo, id).await, 1);
    assert_eq!(unread(&app, cy, id).await, 1);
    // The list shows the same counts.
    let listed = list(&app, bo, "").await;
    assert_eq!(listed.body["items"][0]["id"], id);
    assert_eq!(listed.body["items"][0]["unread_count"], 1);
    assert_eq!(listed.body["items"][0]["last_message_preview"], "Four");
}

async fn the_list_follows_the_last_activity_and_pages_stably(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy) = (&people.ana, &people.bo, &people.cy);
    let mut chats = Vec::new();
    for n in 0..5 {
        chats.push(team(&app, ana, &format!("Chat {n}"), &[bo]).await);
        tick().await;
    }
    // Not Ana's: never in her list.
    let theirs = direct(&app, bo, cy).await;
    tick().await;
    let latest = say(&app, bo, chats[1], "Bumped").await;

    let first = list(&app, ana, "").await;
    let items = &first.body["items"];
    assert_eq!(
        ids_of(items),
        vec![chats[1], chats[4], chats[3], chats[2], chats[0]],
        "last message, else creation time, newest first"
    );
    assert_eq!(items[0]["last_message_at"], latest["created_at"]);
    assert_eq!(items[0]["last_message_preview"], "Bumped");
    assert_eq!(items[0]["unread_count"], 1);
    assert_eq!(items[1]["last_message_at"], Value::Null);
    assert_eq!(first.body["next_cursor"], Value::Null);
    assert!(!ids_of(items).contains(&theirs));

    // Paged two at a time, while a chat already seen comes back to life between pages.
    let page = list(&app, ana, "limit=2").await;
    assert_eq!(ids_of(&page.body["items"]), vec![chats[1], chats[4]]);
    tick().await;
    say(&app, bo, chats[4], "Back on top").await;
    let cursor = page.body["next_cursor"].as_str().expect("next_cursor");
    let page = list(&app, ana, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(ids_of(&page.body["items"]), vec![chats[3], chats[2]]);
    let cursor = page.body["next_cursor"].as_str().expect("next_cursor");
    let page = list(&app, ana, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(ids_of(&page.body["items"]), vec![chats[0]]);
    assert_eq!(page.body["next_cursor"], Value::Null);
    // A fresh look shows the new order.
    let now = list(&app, ana, "limit=2").await;
    assert_eq!(ids_of(&now.body["items"]), vec![chats[4], chats[1]]);

    for bad in [
        "limit=0",
        "limit=101",
        "cursor=%%%",
        "cursor=bm9wZQ",
        "page=2",
    ] {
        app.get(&format!("/v1/chats?{bad}"), &ana.token)
            .await
            .expect_problem(400, "bad_request");
    }
}

/// `switchboard_db_queries_total` from `/metrics`.
async fn queries_so_far(app: &TestApp) -> i64 {
    let reply = app
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    let text = reply.body.as_str().expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("switchboard_db_queries_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no switchboard_db_queries_total in {text}"))
}

/// The fewest statements `request` ran over a few tries (background work only adds).
async fn least_statements<F, Fut>(app: &TestApp, request: F) -> i64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut least = i64::MAX;
    for _ in 0..10 {
        let before = queries_so_far(app).await;
        request().await;
        least = least.min(queries_so_far(app).await - before);
    }
    least
}

async fn lists_and_replays_cost_the_same_statements_for_few_or_many_chats(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo) = (&people.ana, &people.bo);
    let mut chats = Vec::new();
    for n in 0..8 {
        let id = team(&app, ana, &format!("Chat {n}"), &[bo]).await;
        say(&app, bo, id, &format!("Hello {n}")).await;
        chats.push(id);
    }
    let app = &app;
    let small = least_statements(app, move || async move {
        let page = list(app, ana, "limit=2").await;
        assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    })
    .await;
    let large = least_statements(app, move || async move {
        let page = list(app, ana, "limit=100").await;
        assert_eq!(page.body["items"].as_array().unwrap().len(), 8);
    })
    .await;
    assert!(small > 0);
    assert_eq!(small, large, "GET /v1/chats: 2 chats vs 8");

    // Replaying events of one chat or of eight: the audience loads chat members once.
    let all = replay_all(app, &app.url(""), ana, 0).await;
    assert_eq!(all.len(), 8);
    let before_last = crate::realtime::cursor(&all[6]);
    let one = least_statements(app, move || async move {
        let page = app
            .get(&format!("/v1/events?after={before_last}"), &ana.token)
            .await
            .expect(200);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    })
    .await;
    let eight = least_statements(app, move || async move {
        let page = app.get("/v1/events?after=0", &ana.token).await.expect(200);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 8);
    })
    .await;
    assert_eq!(
        one, eight,
        "GET /v1/events: one chat's event vs eight chats'"
    );
}

// ---------------------------------------------------------------------------------------
// Files

/// Runs `body` with attachments kept in a temporary directory of the test's own, several
/// workers side by side (for the races).
async fn run_with_files<F, Fut>(backend: Backend, test_name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    support::run_with_data_dir(backend, test_name, side_by_side, body).await;
}

macro_rules! with_files {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::run_with_files($crate::support::Backend::Sqlite, concat!(module_path!(), "::sqlite"), super::$name).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::run_with_files($crate::support::Backend::Postgres, concat!(module_path!(), "::postgres"), super::$name).await;
            }
        }
    )*};
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.extend_from_slice(b"\x1f\x15\xc4\x89\0\0\0\x0bIDATx\x9cc\0\x01\0\0\x05\0\x01");
    bytes
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

/// Uploads a file as `who`; answers its id.
async fn upload(app: &TestApp, who: &Session, bytes: Vec<u8>, filename: &str) -> i64 {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = app
        .client()
        .post(app.url("/v1/attachments"))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await.expect(201).id()
}

/// `GET /v1/attachments/{id}` as `who`: the status and the bytes.
async fn download(app: &TestApp, who: &Session, id: i64) -> (u16, Vec<u8>) {
    let response = app
        .client()
        .get(app.url(&format!("/v1/attachments/{id}")))
        .bearer_auth(&who.token)
        .send()
        .await
        .expect("request reaches the server");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn files_in_a_chat_are_read_by_its_members_only(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy, admin) = (&people.ana, &people.bo, &people.cy, &people.admin);
    let globex = app.other_org("Globex").await;
    let id = direct(&app, ana, bo).await;
    let bytes = png();
    let file = upload(&app, ana, bytes.clone(), "floor plan.png").await;

    // Only one's own uploads go along: not a colleague's, not another organization's.
    let foreign = upload(&app, &globex, png(), "theirs.png").await;
    let bos = upload(&app, bo, pdf(), "bos.pdf").await;
    for refused in [foreign, bos, 999_999] {
        let reply = app
            .post(
                &messages_path(id),
                &ana.token,
                json!({"body": "Look", "attachment_ids": [refused]}),
            )
            .await;
        assert_eq!(refused_fields(reply), ["attachment_ids"], "{refused}");
    }

    // A file alone is a message.
    let sent = app
        .post(
            &messages_path(id),
            &ana.token,
            json!({"body": "", "attachment_ids": [file]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(
        sent["attachments"],
        json!([{"id": file, "content_type": "image/png", "size": bytes.len(), "filename": "floor plan.png"}])
    );
    assert_eq!(sent["body"], "");
    let history = app.get(&messages_path(id), &bo.token).await.expect(200);
    assert_eq!(history.body["items"][0], sent);

    // The chat's members read it; nobody else does, the organization's admin included.
    for member in [ana, bo] {
        assert_eq!(download(&app, member, file).await, (200, bytes.clone()));
    }
    for outsider in [cy, admin, &globex] {
        app.get(&format!("/v1/attachments/{file}"), &outsider.token)
            .await
            .expect_problem(404, "not_found");
    }

    // Sent once, it goes nowhere else: not in another chat, not to a customer.
    let team_chat = team(&app, ana, "Floor", &[cy]).await;
    let again = app
        .post(
            &messages_path(team_chat),
            &ana.token,
            json!({"body": "Again", "attachment_ids": [file]}),
        )
        .await;
    assert_eq!(refused_fields(again), ["attachment_ids"]);
    let inbox = fixtures::inbox(&app, admin, "Support", json!({}), &[]).await;
    let line = sms_channel(&app, admin, inbox, "+14155550100").await;
    let conversation = line.text(&app, &fixtures::customer(1), "Hi").await;
    let to_customer = app
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            &admin.token,
            json!({"body": "Here", "attachment_ids": [file]}),
        )
        .await;
    assert_eq!(refused_fields(to_customer), ["attachment_ids"]);
    // Nor an upload sent to a customer into a chat; and a conversation's file stays its own.
    let brochure = upload(&app, admin, png(), "brochure.png").await;
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &admin.token,
        json!({"body": "Our brochure", "attachment_ids": [brochure]}),
    )
    .await
    .expect(201);
    let admin_chat = direct(&app, admin, ana).await;
    let leaked = app
        .post(
            &messages_path(admin_chat),
            &admin.token,
            json!({"body": "See", "attachment_ids": [brochure]}),
        )
        .await;
    assert_eq!(refused_fields(leaked), ["attachment_ids"]);
    assert_eq!(download(&app, admin, brochure).await.0, 200);
    app.get(&format!("/v1/attachments/{brochure}"), &ana.token)
        .await
        .expect_problem(404, "not_found");
}

// ---------------------------------------------------------------------------------------
// Races

async fn two_people_starting_their_direct_chat_at_once_share_one(app: TestApp) {
    let admin = app.admin().await;
    let mut people = Vec::new();
    for n in 0..6 {
        people.push(app.user(&admin, "agent", &format!("Agent {n}")).await);
    }
    let pairs: Vec<(usize, usize)> = (0..people.len())
        .flat_map(|a| (a + 1..people.len()).map(move |b| (a, b)))
        .take(ROUNDS as usize)
        .collect();
    for (round, (a, b)) in pairs.into_iter().enumerate() {
        let (one, other) = (&people[a], &people[b]);
        let replies = at_once(2, |i| {
            let (who, with) = if i == 0 { (one, other) } else { (other, one) };
            start(
                &app,
                who,
                json!({"kind": "direct", "member_ids": [with.user_id]}),
            )
        })
        .await;
        let mut statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 201], "round {round}: {replies:?}");
        assert_eq!(replies[0].id(), replies[1].id(), "round {round}");
        for reply in &replies {
            assert_eq!(
                reply.body["member_ids"].as_array().map(Vec::len),
                Some(2),
                "round {round}: {}",
                reply.body
            );
        }
        let mut pair = vec![one.user_id, other.user_id];
        pair.sort_unstable();
        for who in [one, other] {
            let listed = list(&app, who, "limit=100").await;
            let theirs: Vec<i64> = listed.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter(|chat| chat["member_ids"] == json!(pair))
                .map(|chat| chat["id"].as_i64().expect("id"))
                .collect();
            assert_eq!(
                theirs,
                vec![replies[0].id()],
                "round {round}: one chat for the pair"
            );
        }
    }
    // Each pair has exactly one chat: every agent is in one chat per colleague met.
    let everyone = list(&app, &people[0], "limit=100").await;
    assert_eq!(everyone.body["items"].as_array().unwrap().len(), 5);
}

async fn one_upload_sent_twice_at_once_lands_in_one_message(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo, cy) = (&people.ana, &people.bo, &people.cy);
    let chats = [direct(&app, ana, bo).await, direct(&app, ana, cy).await];
    let paths = chats.map(messages_path);
    for round in 0..ROUNDS {
        let file = upload(&app, ana, png(), &format!("shot {round}.png")).await;
        let replies = at_once(2, |i| {
            app.post(
                &paths[i],
                &ana.token,
                json!({"body": format!("Round {round}"), "attachment_ids": [file]}),
            )
        })
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 201).collect();
        assert_eq!(won.len(), 1, "round {round}: {replies:?}");
        let lost = replies
            .iter()
            .find(|reply| reply.status != 201)
            .expect("a loser");
        assert_eq!(lost.status, 422, "round {round}: {}", lost.body);
        assert_eq!(lost.body["errors"][0]["field"], "attachment_ids");
        // The winner's chat has the file; the loser's chat has no message of this round.
        let mut carrying = 0;
        for chat in chats {
            let history = app.get(&messages_path(chat), &ana.token).await.expect(200);
            for message in history.body["items"].as_array().unwrap() {
                if message["body"] == format!("Round {round}") {
                    assert_eq!(message["id"], won[0].body["id"], "round {round}");
                    assert_eq!(message["attachments"][0]["id"], file);
                    carrying += 1;
                }
            }
        }
        assert_eq!(carrying, 1, "round {round}");
    }
}

async fn reading_and_writing_at_once_keep_every_count_right(app: TestApp) {
    let people = colleagues(&app).await;
    let (ana, bo) = (&people.ana, &people.bo);
    let id = direct(&app, ana, bo).await;
    for round in 0..ROUNDS {
        say(&app, ana, id, &format!("Before {round}")).await;
        // Two of Bo's tabs mark the chat read while Ana writes again.
        let (read_path, write_path) = (format!("/v1/chats/{id}/read"), messages_path(id));
        let replies = at_once(3, |i| {
            if i < 2 {
                app.post(&read_path, &bo.token, json!({}))
            } else {
                app.post(
                    &write_path,
                    &ana.token,
                    json!({"body": format!("During {round}")}),
                )
            }
        })
        .await;
        let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        assert_eq!(statuses, vec![204, 204, 201], "round {round}: {replies:?}");
        // Whichever landed first, Bo has read "Before" and at most "During" is new.
        let left = unread(&app, bo, id).await;
        assert!(left <= 1, "round {round}: {left} unread");
        assert_eq!(unread(&app, ana, id).await, 0, "round {round}");
        read(&app, bo, id).await;
        assert_eq!(unread(&app, bo, id).await, 0, "round {round}");
    }
}

on_both_backends!(
    a_direct_chat_is_reused_whoever_starts_it,
    a_direct_chat_is_with_exactly_one_active_colleague,
    a_team_chat_has_a_name_and_colleagues_of_the_organization,
    outsiders_get_404_and_hear_nothing_while_members_hear_each_message,
    messages_page_newest_first_and_bodies_follow_the_message_rules,
    unread_counts_are_each_members_own_and_reading_clears_them,
    the_list_follows_the_last_activity_and_pages_stably,
    lists_and_replays_cost_the_same_statements_for_few_or_many_chats,
);

on_both_backends_with!(side_by_side =>
    two_people_starting_their_direct_chat_at_once_share_one,
    reading_and_writing_at_once_keep_every_count_right,
);

with_files!(
    files_in_a_chat_are_read_by_its_members_only,
    one_upload_sent_twice_at_once_lands_in_one_message,
);
