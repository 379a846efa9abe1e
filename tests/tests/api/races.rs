//! Races (API.md, Conversations → Rules → Concurrency): several people pressing at the same
//! instant, many rounds each. Every request of a round waits at a barrier and is sent the
//! moment the last one arrives, so the server really runs them side by side; on PostgreSQL
//! (several writers) this is what catches check-then-act. Each change is decided against
//! the conversation as it is when the change commits, and the loser of a race hears 409
//! `conversation_changed` (or `conversation_closed` for a send that lost to a close).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::fixtures::{self, Channel, customer, sms_channel};
use crate::on_both_backends_with;
use crate::support::{Reply, Session, TestApp};

pub(crate) const ROUNDS: u32 = 12;

/// Several HTTP workers and connections, so that simultaneous requests run side by side.
pub(crate) fn side_by_side(config: &mut api::Config) {
    config.workers = Some(2);
    config.db_pool = 8;
}

/// Runs the requests `make(0..n)` builds, all released at the same instant.
pub(crate) async fn at_once<F, Fut>(n: usize, make: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Reply>,
{
    let barrier = Arc::new(Barrier::new(n));
    join_all((0..n).map(|i| {
        let barrier = barrier.clone();
        let request = make(i);
        async move {
            barrier.wait().await;
            request.await
        }
    }))
    .await
}

pub(crate) fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|reply| reply.status).collect()
}

/// One shared inbox with `settings`, an sms channel, and `agents` agents in it.
async fn team_inbox(
    app: &TestApp,
    settings: Value,
    agents: usize,
) -> (Session, Channel, Vec<Session>) {
    let admin = app.admin().await;
    let mut people = Vec::new();
    for n in 0..agents {
        people.push(app.user(&admin, "agent", &format!("Agent {n}")).await);
    }
    let members: Vec<&Session> = people.iter().collect();
    let inbox = fixtures::inbox(app, &admin, "Support", settings, &members).await;
    let channel = sms_channel(app, &admin, inbox, "+14155550100").await;
    (admin, channel, people)
}

async fn guarded_sends_let_exactly_one_through(app: TestApp) {
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 2).await;
    for round in 0..ROUNDS {
        let conversation = channel
            .text(&app, &customer(round), "Is my order shipped?")
            .await;
        let seen = fixtures::conversation(&app, &admin, conversation).await;
        let last = seen["last_message_id"].as_i64().expect("last_message_id");
        let path = format!("/v1/conversations/{conversation}/messages");
        let replies = at_once(agents.len(), |i| {
            app.post(
                &path,
                &agents[i].token,
                json!({"body": format!("Answer from agent {i}"), "if_last_message_id": last}),
            )
        })
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 201).collect();
        assert_eq!(won.len(), 1, "round {round}: {:?}", statuses(&replies));
        for lost in replies.iter().filter(|reply| reply.status != 201) {
            assert_eq!(lost.status, 409, "round {round}: {}", lost.body);
            assert_eq!(lost.body["code"], "conversation_changed");
        }
        let outbound: Vec<Value> = fixtures::messages(&app, &admin, conversation)
            .await
            .into_iter()
            .filter(|message| message["direction"] == "outbound")
            .collect();
        assert_eq!(outbound.len(), 1, "round {round}: {outbound:?}");
        assert_eq!(outbound[0]["id"], won[0].body["id"]);
    }
}

async fn two_agents_claiming_at_once_leave_one_owner_who_got_200(app: TestApp) {
    let (admin, channel, agents) = team_inbox(
        &app,
        json!({"agent_visibility": "assigned_and_unassigned"}),
        3,
    )
    .await;
    for round in 0..ROUNDS {
        let conversation = channel.text(&app, &customer(round), "Anyone there?").await;
        let path = format!("/v1/conversations/{conversation}/assign");
        let replies = at_once(agents.len(), |i| {
            app.post(
                &path,
                &agents[i].token,
                json!({"assignee_id": agents[i].user_id}),
            )
        })
        .await;
        let winners: Vec<usize> = (0..agents.len())
            .filter(|i| replies[*i].status == 200)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {:?}", statuses(&replies));
        for (i, reply) in replies.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(reply.status, 409, "round {round}: {}", reply.body);
                assert_eq!(reply.body["code"], "conversation_changed");
            }
        }
        let owner = fixtures::conversation(&app, &admin, conversation).await;
        assert_eq!(
            owner["assignee_id"], agents[winners[0]].user_id,
            "round {round}: the one who got 200 owns it"
        );
    }
}

async fn a_send_racing_a_close_lands_before_it_or_is_refused(app: TestApp) {
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 1).await;
    let agent = &agents[0];
    let (mut landed, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let conversation = channel.text(&app, &customer(round), "Hello?").await;
        let send = format!("/v1/conversations/{conversation}/messages");
        let close = format!("/v1/conversations/{conversation}/close");
        let replies = at_once(2, |i| {
            if i == 0 {
                app.post(&send, &agent.token, json!({"body": "On it"}))
            } else {
                app.post(&close, &admin.token, json!({}))
            }
        })
        .await;
        assert_eq!(
            replies[1].status, 200,
            "round {round}: the close: {}",
            replies[1].body
        );
        let thread = fixtures::messages(&app, &admin, conversation).await;
        let closed_line = thread
            .iter()
            .position(|message| message["kind"] == "activity")
            .expect("the close is recorded in the thread");
        match replies[0].status {
            201 => {
                landed += 1;
                // Newest first: the reply is older than the close line.
                let reply = thread
                    .iter()
                    .position(|message| message["id"] == replies[0].body["id"])
                    .expect("the reply is in the thread");
                assert!(
                    reply > closed_line,
                    "round {round}: a message after the close"
                );
            }
            422 => {
                refused += 1;
                assert_eq!(replies[0].body["code"], "conversation_closed");
                assert!(
                    thread
                        .iter()
                        .all(|message| message["direction"] != "outbound"),
                    "round {round}: a refused send left a message"
                );
            }
            other => panic!(
                "round {round}: the send answered {other}: {}",
                replies[0].body
            ),
        }
        let after = fixtures::conversation(&app, &admin, conversation).await;
        assert_eq!(after["status"], "closed");
    }
    assert_eq!(landed + refused, ROUNDS);
}

async fn auto_assignment_never_pushes_an_agent_past_the_limit(app: TestApp) {
    let (admin, channel, agents) = team_inbox(
        &app,
        json!({"auto_assign": true, "auto_assign_limit": 1}),
        1,
    )
    .await;
    let agent = &agents[0];
    app.put(
        &format!("/v1/me/queues/{}", channel.inbox_id),
        &agent.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect(200);
    for round in 0..ROUNDS {
        let ids = [fixtures::external_id(), fixtures::external_id()];
        let senders = [customer(round * 2), customer(round * 2 + 1)];
        let replies = at_once(2, |i| {
            fixtures::inbound(
                &app,
                channel.id,
                &channel.secret,
                &ids[i],
                &senders[i],
                "New here",
            )
        })
        .await;
        let mut assigned = Vec::new();
        for reply in &replies {
            let id = reply.body["conversation_id"]
                .as_i64()
                .expect("conversation_id");
            let conversation = fixtures::conversation(&app, &admin, id).await;
            if conversation["assignee_id"] == agent.user_id {
                assigned.push(id);
            } else {
                assert_eq!(conversation["assignee_id"], Value::Null);
            }
        }
        assert_eq!(
            assigned.len(),
            1,
            "round {round}: the limit is 1: {assigned:?}"
        );
        // Free the agent for the next round.
        app.post(
            &format!("/v1/conversations/{}/close", assigned[0]),
            &admin.token,
            json!({}),
        )
        .await
        .expect(200);
    }
}

async fn concurrent_retries_with_one_idempotency_key_send_once(app: TestApp) {
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 1).await;
    for round in 0..ROUNDS {
        let conversation = channel.text(&app, &customer(round), "Ping").await;
        let path = format!("/v1/conversations/{conversation}/messages");
        let key = format!("retry-{round}");
        let replies = at_once(3, |_| {
            fixtures::post_with_key(&app, &path, &agents[0], &key, json!({"body": "Pong"}))
        })
        .await;
        for reply in &replies {
            assert_eq!(reply.status, 201, "round {round}: {}", reply.body);
            assert_eq!(reply.body["id"], replies[0].body["id"], "round {round}");
        }
        let outbound = fixtures::messages(&app, &admin, conversation)
            .await
            .into_iter()
            .filter(|message| message["direction"] == "outbound")
            .count();
        assert_eq!(outbound, 1, "round {round}");
    }
}

async fn a_burst_from_a_new_customer_makes_one_contact_and_one_conversation(app: TestApp) {
    let (admin, channel, _) = team_inbox(&app, json!({}), 0).await;
    const BURST: usize = 4;
    for round in 0..ROUNDS {
        let from = customer(1000 + round);
        let ids: Vec<String> = (0..BURST).map(|_| fixtures::external_id()).collect();
        let parts: Vec<String> = (0..BURST)
            .map(|i| format!("part {i} of a long text"))
            .collect();
        let replies = at_once(BURST, |i| {
            fixtures::inbound(&app, channel.id, &channel.secret, &ids[i], &from, &parts[i])
        })
        .await;
        for reply in &replies {
            assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
            assert_eq!(
                reply.body["conversation_id"], replies[0].body["conversation_id"],
                "round {round}: one conversation"
            );
        }
        let id = replies[0].body["conversation_id"].as_i64().expect("id");
        let conversation = fixtures::conversation(&app, &admin, id).await;
        assert_eq!(conversation["message_count"], BURST as i64, "round {round}");
        let contacts = fixtures::list_ids(
            &app,
            &admin,
            &format!("contact_id={}", conversation["contact"]["id"]),
        )
        .await;
        assert_eq!(
            contacts,
            vec![id],
            "round {round}: one contact, one conversation"
        );
    }
}

async fn two_tabs_reading_and_tagging_at_once_both_succeed(app: TestApp) {
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 1).await;
    fixtures::tag(&app, &admin, "vip").await;
    for round in 0..ROUNDS {
        let conversation = channel.text(&app, &customer(round), "Hi").await;
        let read = format!("/v1/conversations/{conversation}/read");
        let reads = at_once(2, |_| app.post(&read, &agents[0].token, json!({}))).await;
        assert_eq!(statuses(&reads), vec![204, 204], "round {round}");
        let tag = format!("/v1/conversations/{conversation}/tags/vip");
        let tags = at_once(2, |_| app.put(&tag, &agents[0].token, None)).await;
        assert_eq!(statuses(&tags), vec![200, 200], "round {round}");
        let seen = fixtures::conversation(&app, &agents[0], conversation).await;
        assert_eq!(seen["tags"], json!(["vip"]), "round {round}");
        assert_eq!(seen["unread"], false, "round {round}");
    }
}

async fn replies_at_once_in_one_organization_keep_one_gapless_event_log(app: TestApp) {
    // Four agents reply twice each, all eight at the same instant, in four conversations of
    // one organization: each reply lands once, its writer stays a reader of what they wrote,
    // and the organization's cursors stay consecutive (the events' insert and the cursor
    // bump are one statement on PostgreSQL).
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 4).await;
    for round in 0..ROUNDS {
        let mut conversations = Vec::new();
        for (n, _) in agents.iter().enumerate() {
            let from = customer(round * 4 + n as u32);
            conversations.push(channel.text(&app, &from, "Hi").await);
        }
        let paths: Vec<String> = conversations
            .iter()
            .map(|id| format!("/v1/conversations/{id}/messages"))
            .collect();
        let replies = at_once(8, |i| {
            let body = json!({"body": format!("Reply {i}")});
            app.post(&paths[i % 4], &agents[i % 4].token, body)
        })
        .await;
        assert_eq!(
            statuses(&replies),
            vec![201; 8],
            "round {round}: {replies:?}"
        );
        for (n, conversation) in conversations.iter().enumerate() {
            let seen = fixtures::conversation(&app, &agents[n], *conversation).await;
            assert_eq!(seen["message_count"], 3, "round {round}");
            assert_eq!(
                seen["unread"], false,
                "round {round}: the writer has read it"
            );
        }
    }
    let log = crate::realtime::replay_all(&app, &app.url(""), &admin, 0).await;
    let cursors = crate::realtime::cursors(&log);
    assert!(
        cursors.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "cursors with a gap or a repeat: {cursors:?}"
    );
    let mut created: Vec<&Value> = log
        .iter()
        .filter(|frame| frame["type"] == "message.created")
        .map(|frame| &frame["data"]["message"]["id"])
        .collect();
    let all = created.len();
    created.sort_by_key(|id| id.as_i64());
    created.dedup();
    assert_eq!(created.len(), all, "a message announced twice");
    assert_eq!(all, ROUNDS as usize * 12, "4 texts and 8 replies a round");
}

async fn unread_counts_stay_exact_while_agents_read_reply_and_mark_at_once(app: TestApp) {
    // Four agents each read one conversation, reply in the next and mark the one after
    // unread, twelve requests at the same instant while the figures are being folded, in
    // conversations everyone has read:
    // each agent's kept unread count (and every other count) still agrees with the rows.
    let (admin, channel, agents) = team_inbox(&app, json!({"agent_visibility": "all"}), 4).await;
    let mut viewers: Vec<&Session> = agents.iter().collect();
    viewers.push(&admin);
    for round in 0..ROUNDS {
        let mut conversations = Vec::new();
        for n in 0..4 {
            conversations.push(channel.text(&app, &customer(round * 4 + n), "Hi").await);
        }
        for agent in &agents {
            for id in &conversations {
                let read = format!("/v1/conversations/{id}/read");
                app.post(&read, &agent.token, json!({})).await.expect(204);
            }
        }
        let requests: Vec<(String, Value, &Session)> = (0..12)
            .map(|i| {
                let (agent, action) = (&agents[i % 4], i / 4);
                let id = conversations[(i % 4 + action) % 4];
                let (what, body) = match action {
                    0 => ("read", json!({})),
                    1 => ("messages", json!({"body": format!("Reply {i}")})),
                    _ => ("unread", json!({})),
                };
                (format!("/v1/conversations/{id}/{what}"), body, agent)
            })
            .collect();
        // The server's folding of the figures runs meanwhile too (PostgreSQL; a no-op on
        // SQLite), so the triggers' inserts race its delete-and-reinsert.
        let store = app.running().state.store.clone();
        let done = Arc::new(AtomicBool::new(false));
        let until = done.clone();
        let folding = tokio::task::spawn_blocking(move || {
            let mut folds = 0;
            while folds == 0 || !until.load(Ordering::Relaxed) {
                store
                    .write(persistence::repo::conversation_list::compact_read_up_counts)
                    .expect("folded");
                folds += 1;
            }
        });
        let replies = at_once(12, |i| {
            let (path, body, agent) = &requests[i];
            app.post(path, &agent.token, body.clone())
        })
        .await;
        done.store(true, Ordering::Relaxed);
        folding.await.expect("folding ran");
        let mut got = statuses(&replies);
        got.sort_unstable();
        assert_eq!(got, [vec![201; 4], vec![204; 8]].concat(), "round {round}");
        crate::counts::assert_agree(&app, &viewers, channel.id, &[], &format!("round {round}"))
            .await;
    }
}

async fn refresh(app: &TestApp, token: &str) -> Reply {
    let body = json!({"refresh_token": token});
    app.send(reqwest::Method::POST, "/v1/auth/refresh", None, Some(body))
        .await
}

async fn two_tabs_refreshing_the_same_session_both_stay_signed_in(app: TestApp) {
    for round in 0..ROUNDS {
        let session = app.admin().await;
        let replies = at_once(2, |_| refresh(&app, &session.refresh_token)).await;
        assert_eq!(
            statuses(&replies),
            vec![200, 200],
            "round {round}: {replies:?}"
        );
        // Each tab goes on with the pair it got: both keep working.
        for reply in &replies {
            let tab = crate::support::session_from(&reply.body);
            app.get("/v1/me", &tab.token).await.expect(200);
            let next = refresh(&app, &tab.refresh_token).await.expect(200);
            app.get("/v1/me", &crate::support::session_from(&next.body).token)
                .await
                .expect(200);
        }
    }
}

/// A sign-out and a refresh of the same session at the same instant: whichever commits
/// first, the session ends, the pair the refresh may have handed out included.
async fn a_sign_out_racing_a_refresh_ends_the_session_whoever_wins(app: TestApp) {
    for round in 0..ROUNDS {
        let session = app.admin().await;
        let replies = at_once(2, |i| {
            let (app, token) = (app.clone(), session.refresh_token.clone());
            async move {
                if i == 0 {
                    let body = json!({"refresh_token": token});
                    app.send(reqwest::Method::POST, "/v1/auth/logout", None, Some(body))
                        .await
                } else {
                    refresh(&app, &token).await
                }
            }
        })
        .await;
        assert_eq!(replies[0].status, 204, "round {round}: {replies:?}");
        let mut tokens = vec![session.token.clone()];
        match replies[1].status {
            200 => {
                let tab = crate::support::session_from(&replies[1].body);
                refresh(&app, &tab.refresh_token)
                    .await
                    .expect_problem(401, "unauthenticated");
                tokens.push(tab.token);
            }
            401 => {}
            other => panic!("round {round}: the refresh answered {other}: {replies:?}"),
        }
        for token in &tokens {
            app.get("/v1/me", token)
                .await
                .expect_problem(401, "unauthenticated");
        }
    }
}

on_both_backends_with!(side_by_side =>
    a_sign_out_racing_a_refresh_ends_the_session_whoever_wins,
    guarded_sends_let_exactly_one_through,
    two_agents_claiming_at_once_leave_one_owner_who_got_200,
    a_send_racing_a_close_lands_before_it_or_is_refused,
    auto_assignment_never_pushes_an_agent_past_the_limit,
    concurrent_retries_with_one_idempotency_key_send_once,
    a_burst_from_a_new_customer_makes_one_contact_and_one_conversation,
    two_tabs_reading_and_tagging_at_once_both_succeed,
    replies_at_once_in_one_organization_keep_one_gapless_event_log,
    unread_counts_stay_exact_while_agents_read_reply_and_mark_at_once,
    two_tabs_refreshing_the_same_session_both_stay_signed_in,
);
