//! The conversation rules (API.md, Conversations → Rules): closed is final, spam, assignment,
//! visibility, moving; and each user's own view: read state, pins; tags and bulk actions.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::fixtures::{
    self, Channel, conversation, counts, customer, list, list_ids, messages, sms_channel, tick,
};
use crate::on_both_backends;
use crate::support::{Reply, Session, TestApp, into_reply};

fn path(id: i64, action: &str) -> String {
    format!("/v1/conversations/{id}/{action}")
}

async fn assign(app: &TestApp, by: &Session, id: i64, body: Value) -> crate::support::Reply {
    app.post(&path(id, "assign"), &by.token, body).await
}

/// The activity entries of a conversation with this action.
async fn activity(app: &TestApp, session: &Session, id: i64, action: &str) -> Vec<Value> {
    let reply = app
        .get(&path(id, "activity"), &session.token)
        .await
        .expect(200);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| entry["action"] == action)
        .cloned()
        .collect()
}

fn activity_lines(thread: &[Value]) -> Vec<String> {
    thread
        .iter()
        .filter(|message| message["kind"] == "activity")
        .map(|message| message["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Closed is final

async fn a_closed_conversation_is_final_and_the_customer_starts_a_new_one(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[&agent]).await;
    let sales = fixtures::inbox(&app, &admin, "Sales", json!({}), &[&agent]).await;
    let sms = sms_channel(&app, &admin, support, "+14155550000").await;
    fixtures::tag(&app, &admin, "billing").await;
    let id = sms.text(&app, "+14155552671", "Thanks, all good").await;

    let closed = app
        .post(&path(id, "close"), &agent.token, json!({}))
        .await
        .expect(200);
    assert_eq!(closed.body["id"], id);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["spam"], false);
    assert_eq!(closed.body["closed_by"], agent.user_id);
    assert!(
        closed.body["closed_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{}",
        closed.body
    );
    assert_eq!(conversation(&app, &agent, id).await["status"], "closed");

    app.post(
        &path(id, "messages"),
        &agent.token,
        json!({"body": "One more thing"}),
    )
    .await
    .expect_problem(422, "conversation_closed");
    app.post(
        &path(id, "messages"),
        &agent.token,
        json!({"body": "note", "kind": "note"}),
    )
    .await
    .expect_problem(422, "conversation_closed");
    assign(&app, &agent, id, json!({"assignee_id": agent.user_id}))
        .await
        .expect_problem(422, "conversation_closed");
    assign(&app, &admin, id, json!({"assignee_id": null}))
        .await
        .expect_problem(422, "conversation_closed");
    app.put(&path(id, "tags/billing"), &agent.token, None)
        .await
        .expect_problem(422, "conversation_closed");
    app.post(&path(id, "move"), &agent.token, json!({"inbox_id": sales}))
        .await
        .expect_problem(422, "conversation_closed");
    app.post(&path(id, "close"), &agent.token, json!({}))
        .await
        .expect_problem(422, "conversation_closed");
    let unchanged = conversation(&app, &agent, id).await;
    assert_eq!(unchanged["message_count"], 1);
    assert_eq!(unchanged["inbox_id"], support);
    assert_eq!(unchanged["tags"], json!([]));
    assert_eq!(unchanged["closed_at"], closed.body["closed_at"]);
    let closes = activity(&app, &agent, id, "closed").await;
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0]["actor_id"], agent.user_id);
    assert_eq!(activity_lines(&messages(&app, &agent, id).await).len(), 1);

    // The customer writes again: a new conversation.
    let again = sms.text(&app, "+14155552671", "Hello again").await;
    assert_ne!(again, id);
    let fresh = conversation(&app, &agent, again).await;
    assert_eq!(fresh["status"], "open");
    assert_eq!(fresh["message_count"], 1);
    assert_eq!(fresh["contact"]["id"], unchanged["contact"]["id"]);
    assert_eq!(list_ids(&app, &agent, "").await, vec![again]);
    assert_eq!(list_ids(&app, &agent, "status=closed").await, vec![id]);
    assert_eq!(conversation(&app, &agent, id).await["message_count"], 1);
}

async fn spam_disappears_from_every_list_but_an_admin_can_still_open_it(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&manager, &agent]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let spam = sms.text(&app, &customer(1), "WIN A FREE CRUISE").await;
    let real = sms.text(&app, &customer(2), "Where is my parcel?").await;
    let done = sms.text(&app, &customer(3), "ok thanks").await;
    app.post(&path(done, "close"), &agent.token, json!({}))
        .await
        .expect(200);

    let closed = app
        .post(&path(spam, "close"), &manager.token, json!({"spam": true}))
        .await
        .expect(200);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["spam"], true);
    assert_eq!(closed.body["closed_by"], manager.user_id);

    for viewer in [&admin, &manager, &agent] {
        assert_eq!(list_ids(&app, viewer, "").await, vec![real]);
        assert_eq!(list_ids(&app, viewer, "status=closed").await, vec![done]);
        assert_eq!(
            list_ids(&app, viewer, "status=archived").await,
            Vec::<i64>::new()
        );
        let contact = closed.body["contact"]["id"].clone();
        assert_eq!(
            list_ids(&app, viewer, &format!("status=closed&contact_id={contact}")).await,
            Vec::<i64>::new()
        );
        let figures = counts(&app, viewer, "").await;
        assert_eq!(figures["open"], 1);
        assert_eq!(figures["closed"], 1);
        assert_eq!(figures["unread"], 1);
    }
    let seen = conversation(&app, &admin, spam).await;
    assert_eq!(seen["spam"], true);
    assert_eq!(seen["status"], "closed");
    assert_eq!(
        messages(&app, &admin, spam).await.len(),
        2,
        "the message and the close line"
    );
    let closes = activity(&app, &admin, spam, "closed").await;
    assert_eq!(closes[0]["data"]["spam"], true);
}

// ---------------------------------------------------------------------------------------
// Assignment

async fn assignment_is_refused_when_the_inbox_has_it_off(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let members = [&admin, &manager, &agent];
    let inbox = fixtures::inbox(
        &app,
        &admin,
        "Walk-in",
        json!({"assignment_mode": false}),
        &members,
    )
    .await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let id = sms.text(&app, "+14155552671", "Hello").await;

    for (by, assignee) in [
        (&admin, agent.user_id),
        (&manager, agent.user_id),
        (&agent, agent.user_id),
    ] {
        assign(&app, by, id, json!({"assignee_id": assignee}))
            .await
            .expect_problem(422, "assignment_disabled");
    }
    assign(&app, &admin, id, json!({"assignee_id": null}))
        .await
        .expect_problem(422, "assignment_disabled");
    let bulk = app
        .post(
            "/v1/conversations/bulk",
            &manager.token,
            json!({"ids": [id], "action": "assign", "assignee_id": agent.user_id}),
        )
        .await
        .expect(200);
    assert_eq!(
        bulk.body,
        json!({"done": [], "failed": [{"id": id, "code": "assignment_disabled"}]})
    );
    let seen = conversation(&app, &agent, id).await;
    assert_eq!(seen["assignee_id"], Value::Null);
    assert!(activity(&app, &admin, id, "assigned").await.is_empty());

    // Turning it on lets the same request through.
    app.patch(
        &format!("/v1/inboxes/{inbox}"),
        &admin.token,
        json!({"assignment_mode": true}),
    )
    .await
    .expect(200);
    let taken = assign(&app, &agent, id, json!({"assignee_id": agent.user_id}))
        .await
        .expect(200);
    assert_eq!(taken.body["assignee_id"], agent.user_id);
}

async fn agents_claim_and_managers_assign_within_the_inbox_and_team(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let stranger = app.user(&admin, "agent", "Sam Stranger").await;
    let settings = json!({"assignment_mode": true, "agent_visibility": "assigned_and_unassigned"});
    let inbox = fixtures::inbox(&app, &admin, "Support", settings, &[&manager, &alex, &bea]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let billing = fixtures::team(&app, &admin, "Billing", &[&bea]).await;
    let first = sms.text(&app, &customer(1), "Hello").await;
    let second = sms.text(&app, &customer(2), "Hi").await;

    // An agent claims an unassigned conversation, and may hand it back.
    let claimed = assign(&app, &alex, first, json!({"assignee_id": alex.user_id}))
        .await
        .expect(200);
    assert_eq!(claimed.body["assignee_id"], alex.user_id);
    assert_eq!(claimed.body["team_id"], Value::Null);
    // Taking a colleague's is not allowed where agents see only their own: Bea saw it
    // unassigned, and Alex was first (a lost race, 409, though she cannot see it now).
    assign(&app, &bea, first, json!({"assignee_id": bea.user_id}))
        .await
        .expect_problem(409, "conversation_changed");
    app.get(&format!("/v1/conversations/{first}"), &bea.token)
        .await
        .expect_problem(404, "not_found");
    // An agent may not assign a colleague.
    assign(&app, &alex, second, json!({"assignee_id": bea.user_id}))
        .await
        .expect_problem(403, "forbidden");
    assign(&app, &alex, first, json!({"assignee_id": bea.user_id}))
        .await
        .expect_problem(403, "forbidden");
    assert_eq!(
        conversation(&app, &alex, first).await["assignee_id"],
        alex.user_id
    );

    // A manager assigns anyone in the inbox.
    let given = assign(&app, &manager, second, json!({"assignee_id": bea.user_id}))
        .await
        .expect(200);
    assert_eq!(given.body["assignee_id"], bea.user_id);
    assign(
        &app,
        &manager,
        first,
        json!({"assignee_id": stranger.user_id}),
    )
    .await
    .expect_problem(422, "assignee_not_member");
    assign(&app, &admin, first, json!({"assignee_id": 999_999}))
        .await
        .expect_problem(422, "assignee_not_member");
    // With a team, the assignee must be in it.
    assign(
        &app,
        &manager,
        first,
        json!({"assignee_id": alex.user_id, "team_id": billing}),
    )
    .await
    .expect_problem(422, "assignee_not_in_team");
    let teamed = assign(
        &app,
        &manager,
        second,
        json!({"assignee_id": bea.user_id, "team_id": billing}),
    )
    .await
    .expect(200);
    assert_eq!(teamed.body["team_id"], billing);
    assign(
        &app,
        &manager,
        second,
        json!({"assignee_id": bea.user_id, "team_id": 999_999}),
    )
    .await
    .expect_problem(422, "validation_failed");
    assert_eq!(
        conversation(&app, &manager, first).await["assignee_id"],
        alex.user_id
    );

    // The agent hands theirs back; the manager unassigns.
    let released = assign(&app, &alex, first, json!({"assignee_id": null}))
        .await
        .expect(200);
    assert_eq!(released.body["assignee_id"], Value::Null);
    assign(&app, &manager, second, json!({"assignee_id": null}))
        .await
        .expect(200);

    // Every assignment is in the audit trail and in the thread.
    let entries = activity(&app, &manager, first, "assigned").await;
    let trail: Vec<(Value, Value)> = entries
        .iter()
        .map(|entry| {
            (
                entry["actor_id"].clone(),
                entry["data"]["assignee_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        vec![
            (json!(alex.user_id), json!(alex.user_id)),
            (json!(alex.user_id), Value::Null),
        ]
    );
    for entry in &entries {
        assert!(entry["id"].is_i64() && entry["at"].is_string(), "{entry}");
    }
    let entries = activity(&app, &manager, second, "assigned").await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0]["actor_id"], manager.user_id);
    assert_eq!(entries[0]["data"]["assignee_id"], bea.user_id);
    assert_eq!(entries[1]["data"]["team_id"], billing);
    assert_eq!(entries[2]["data"]["assignee_id"], Value::Null);
    let thread = messages(&app, &manager, second).await;
    let lines: Vec<&Value> = thread
        .iter()
        .filter(|message| message["kind"] == "activity")
        .collect();
    assert_eq!(lines.len(), 3, "{thread:?}");
    for line in lines {
        assert_eq!(line["direction"], "internal");
        assert_eq!(line["delivery_status"], Value::Null);
        assert!(line["body"].as_str().is_some_and(|body| !body.is_empty()));
    }
    assert_eq!(
        conversation(&app, &manager, second).await["message_count"],
        1,
        "activity is not a message"
    );
}

// ---------------------------------------------------------------------------------------
// Visibility

async fn agents_see_the_unassigned_and_their_own_and_lose_what_goes_to_a_colleague(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let cleo = app.user(&admin, "agent", "Cleo Agent").await;
    let settings = json!({"agent_visibility": "assigned_and_unassigned"});
    let inbox = fixtures::inbox(
        &app,
        &admin,
        "Support",
        settings,
        &[&manager, &alex, &bea, &cleo],
    )
    .await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let billing = fixtures::team(&app, &manager, "Billing", &[&bea, &cleo]).await;
    let first = sms.text(&app, &customer(1), "one").await;
    let second = sms.text(&app, &customer(2), "two").await;
    let third = sms.text(&app, &customer(3), "three").await;
    let set = |ids: Vec<i64>| ids.into_iter().collect::<HashSet<i64>>();
    let everything = HashSet::from([first, second, third]);

    for agent in [&alex, &bea, &cleo] {
        assert_eq!(set(list_ids(&app, agent, "").await), everything);
    }

    // A manager gives the first to Bea: Alex and Cleo no longer see it.
    assign(&app, &manager, first, json!({"assignee_id": bea.user_id}))
        .await
        .expect(200);
    for agent in [&alex, &cleo] {
        app.get(&path(first, ""), &agent.token)
            .await
            .expect_problem(404, "not_found");
        assert_eq!(
            set(list_ids(&app, agent, "").await),
            HashSet::from([second, third])
        );
        app.get(&path(first, "messages"), &agent.token)
            .await
            .expect_problem(404, "not_found");
        app.post(
            &path(first, "messages"),
            &agent.token,
            json!({"body": "hi"}),
        )
        .await
        .expect_problem(404, "not_found");
        app.post(&path(first, "close"), &agent.token, json!({}))
            .await
            .expect_problem(404, "not_found");
    }
    conversation(&app, &bea, first).await;
    assert_eq!(set(list_ids(&app, &bea, "").await), everything);
    assert_eq!(counts(&app, &alex, "").await["open"], 2);

    // Alex claims the second, then a manager hands it to Bea: Alex loses it.
    assign(&app, &alex, second, json!({"assignee_id": alex.user_id}))
        .await
        .expect(200);
    assert_eq!(list_ids(&app, &alex, "assignee=me").await, vec![second]);
    app.get(&path(second, ""), &cleo.token)
        .await
        .expect_problem(404, "not_found");
    assign(&app, &manager, second, json!({"assignee_id": bea.user_id}))
        .await
        .expect(200);
    app.get(&path(second, ""), &alex.token)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(list_ids(&app, &alex, "").await, vec![third]);

    // Assigned with a team, it is visible to the team's members.
    assign(
        &app,
        &manager,
        third,
        json!({"assignee_id": bea.user_id, "team_id": billing}),
    )
    .await
    .expect(200);
    conversation(&app, &cleo, third).await;
    assert_eq!(list_ids(&app, &cleo, "").await, vec![third]);
    app.get(&path(third, ""), &alex.token)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(list_ids(&app, &alex, "").await, Vec::<i64>::new());
    assert_eq!(counts(&app, &alex, "").await["open"], 0);
    // Managers and admins see everything.
    for supervisor in [&manager, &admin] {
        assert_eq!(set(list_ids(&app, supervisor, "").await), everything);
    }
}

async fn with_visibility_all_member_agents_see_everything_and_nobody_else_does(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let outside_manager = app.user(&admin, "manager", "Otto Manager").await;
    let inbox = fixtures::inbox(
        &app,
        &admin,
        "Support",
        json!({"agent_visibility": "all"}),
        &[&alex, &bea],
    )
    .await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let first = sms.text(&app, &customer(1), "one").await;
    let second = sms.text(&app, &customer(2), "two").await;
    assign(&app, &admin, first, json!({"assignee_id": bea.user_id}))
        .await
        .expect(200);
    let both = HashSet::from([first, second]);
    for agent in [&alex, &bea] {
        assert_eq!(
            list_ids(&app, agent, "")
                .await
                .into_iter()
                .collect::<HashSet<_>>(),
            both
        );
        conversation(&app, agent, first).await;
    }
    // Where agents see everything, an agent may take a colleague's conversation.
    let taken = assign(&app, &alex, first, json!({"assignee_id": alex.user_id}))
        .await
        .expect(200);
    assert_eq!(taken.body["assignee_id"], alex.user_id);

    let other = app.other_org("Globex").await;
    for stranger in [&outsider, &outside_manager, &other] {
        for id in [first, second] {
            app.get(&path(id, ""), &stranger.token)
                .await
                .expect_problem(404, "not_found");
            app.get(&path(id, "activity"), &stranger.token)
                .await
                .expect_problem(404, "not_found");
            app.post(&path(id, "read"), &stranger.token, json!({}))
                .await
                .expect_problem(404, "not_found");
        }
        assert_eq!(list_ids(&app, stranger, "").await, Vec::<i64>::new());
        assert_eq!(
            list_ids(&app, stranger, &format!("inbox_id={inbox}")).await,
            Vec::<i64>::new()
        );
        let figures = counts(&app, stranger, "").await;
        assert_eq!(figures["open"], 0);
        assert_eq!(figures["unread"], 0);
    }
    assign(&app, &other, second, json!({"assignee_id": other.user_id}))
        .await
        .expect_problem(404, "not_found");
    app.post(&path(second, "close"), &other.token, json!({}))
        .await
        .expect_problem(404, "not_found");
    assert_eq!(conversation(&app, &admin, second).await["status"], "open");
}

// ---------------------------------------------------------------------------------------
// Moving

async fn moving_needs_allow_move_and_membership_of_both_inboxes(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let locked = fixtures::inbox(
        &app,
        &admin,
        "Locked",
        json!({"allow_move": false}),
        &[&manager, &agent],
    )
    .await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[&manager, &agent]).await;
    let sales = fixtures::inbox(&app, &admin, "Sales", json!({}), &[&agent]).await;
    let locked_line = sms_channel(&app, &admin, locked, "+14155550000").await;
    let support_line = sms_channel(&app, &admin, support, "+14155550001").await;

    let stuck = locked_line.text(&app, &customer(1), "hello").await;
    app.post(
        &path(stuck, "move"),
        &manager.token,
        json!({"inbox_id": support}),
    )
    .await
    .expect_problem(422, "move_disabled");
    assert_eq!(
        conversation(&app, &manager, stuck).await["inbox_id"],
        locked
    );

    let id = support_line.text(&app, &customer(2), "I want to buy").await;
    assign(&app, &manager, id, json!({"assignee_id": manager.user_id}))
        .await
        .expect(200);
    // The manager is not a member of Sales.
    let refused = app
        .post(
            &path(id, "move"),
            &manager.token,
            json!({"inbox_id": sales}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert!(refused.body["errors"].is_array(), "{}", refused.body);
    app.post(
        &path(id, "move"),
        &manager.token,
        json!({"inbox_id": 999_999}),
    )
    .await
    .expect_problem(404, "not_found");
    app.post(
        &path(id, "move"),
        &manager.token,
        json!({"inbox_id": support}),
    )
    .await
    .expect_problem(422, "validation_failed");
    assert_eq!(conversation(&app, &manager, id).await["inbox_id"], support);

    // The agent is a member of both; the assignee (the manager) is not in Sales.
    let moved = app
        .post(&path(id, "move"), &agent.token, json!({"inbox_id": sales}))
        .await
        .expect(200);
    assert_eq!(moved.body["inbox_id"], sales);
    assert_eq!(
        moved.body["assignee_id"],
        Value::Null,
        "the assignee is not in Sales"
    );
    assert_eq!(conversation(&app, &agent, id).await["inbox_id"], sales);
    app.get(&path(id, ""), &manager.token)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(
        list_ids(&app, &agent, &format!("inbox_id={sales}")).await,
        vec![id]
    );
    let entries = activity(&app, &admin, id, "moved").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor_id"], agent.user_id);
    assert_eq!(entries[0]["data"]["from_inbox_id"], support);
    assert_eq!(entries[0]["data"]["to_inbox_id"], sales);
    assert_eq!(
        activity_lines(&messages(&app, &admin, id).await).len(),
        2,
        "assigned, moved"
    );

    // An assignee who is a member of the target keeps the conversation.
    let kept = support_line.text(&app, &customer(3), "another").await;
    assign(&app, &agent, kept, json!({"assignee_id": agent.user_id}))
        .await
        .expect(200);
    let moved = app
        .post(
            &path(kept, "move"),
            &agent.token,
            json!({"inbox_id": sales}),
        )
        .await
        .expect(200);
    assert_eq!(moved.body["assignee_id"], agent.user_id);
    // The customer's next message follows the conversation.
    assert_eq!(
        support_line.text(&app, &customer(3), "still there?").await,
        kept
    );
}

// ---------------------------------------------------------------------------------------
// Each user's view: read state, pins

async fn read_state_is_each_users_own(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex, &bea]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let id = sms.text(&app, &customer(1), "hello").await;
    let other = sms.text(&app, &customer(2), "hi").await;

    for viewer in [&alex, &bea, &admin] {
        assert_eq!(conversation(&app, viewer, id).await["unread"], true);
        assert_eq!(counts(&app, viewer, "").await["unread"], 2);
    }
    let read = app
        .post(&path(id, "read"), &alex.token, json!({}))
        .await
        .expect(204);
    assert_eq!(read.body, Value::Null);
    assert_eq!(conversation(&app, &alex, id).await["unread"], false);
    assert_eq!(conversation(&app, &bea, id).await["unread"], true);
    assert_eq!(list_ids(&app, &alex, "unread=true").await, vec![other]);
    assert_eq!(list_ids(&app, &bea, "unread=true").await.len(), 2);
    assert_eq!(counts(&app, &alex, "").await["unread"], 1);
    assert_eq!(counts(&app, &bea, "").await["unread"], 2);
    let page = list(&app, &alex, "").await;
    for item in page.body["items"].as_array().expect("items") {
        assert_eq!(item["unread"], item["id"] != id, "{item}");
    }

    app.post(&path(id, "unread"), &alex.token, json!({}))
        .await
        .expect(204);
    assert_eq!(conversation(&app, &alex, id).await["unread"], true);
    assert_eq!(counts(&app, &alex, "").await["unread"], 2);
    app.post(&path(id, "read"), &alex.token, json!({}))
        .await
        .expect(204);
    assert_eq!(conversation(&app, &alex, id).await["unread"], false);

    // A new message makes it unread again; the reader's own reply does not.
    sms.text(&app, &customer(1), "are you there?").await;
    assert_eq!(conversation(&app, &alex, id).await["unread"], true);
    app.post(&path(id, "messages"), &alex.token, json!({"body": "Yes!"}))
        .await
        .expect(201);
    assert_eq!(conversation(&app, &alex, id).await["unread"], false);
    assert_eq!(conversation(&app, &bea, id).await["unread"], true);
    assert_eq!(list_ids(&app, &alex, "unread=true").await, vec![other]);
}

async fn pins_put_conversations_first_for_the_pinner_only(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex, &bea]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(sms.text(&app, &customer(n), "hello").await);
        tick().await;
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(list_ids(&app, &alex, "").await, newest_first);

    let pinned = app
        .put(&path(ids[0], "pin"), &alex.token, None)
        .await
        .expect(200);
    assert_eq!(pinned.body["pinned"], true);
    assert!(pinned.body["pin_position"].is_i64(), "{}", pinned.body);
    assert_eq!(
        list_ids(&app, &alex, "").await,
        vec![ids[0], ids[3], ids[2], ids[1]]
    );
    // A second pin goes after the first; the rest keep their order.
    app.put(&path(ids[1], "pin"), &alex.token, None)
        .await
        .expect(200);
    assert_eq!(
        list_ids(&app, &alex, "").await,
        vec![ids[0], ids[1], ids[3], ids[2]]
    );
    // An explicit position reorders the pins.
    let first_pin = pinned.body["pin_position"].as_i64().expect("position");
    let moved = app
        .put(
            &path(ids[0], "pin"),
            &alex.token,
            Some(json!({"position": first_pin + 5})),
        )
        .await
        .expect(200);
    assert_eq!(moved.body["pin_position"], first_pin + 5);
    let page = list(&app, &alex, "").await;
    assert_eq!(fixtures::ids(&page), vec![ids[1], ids[0], ids[3], ids[2]]);
    let items = page.body["items"].as_array().expect("items");
    assert_eq!(items[0]["pinned"], true);
    assert!(
        items[0]["pin_position"].as_i64() < Some(first_pin + 5),
        "{}",
        page.body
    );
    assert_eq!(items[1]["pinned"], true);
    assert_eq!(items[1]["pin_position"], first_pin + 5);
    assert_eq!(items[2]["pinned"], false);
    assert_eq!(items[2]["pin_position"], Value::Null);
    // Pins come first in every sort, and survive new messages elsewhere.
    assert_eq!(
        list_ids(&app, &alex, "sort=oldest_conversations").await,
        vec![ids[1], ids[0], ids[2], ids[3]]
    );
    sms.text(&app, &customer(2), "new message").await;
    assert_eq!(
        list_ids(&app, &alex, "").await,
        vec![ids[1], ids[0], ids[2], ids[3]]
    );

    // Bea's list is her own.
    assert_eq!(
        list_ids(&app, &bea, "").await,
        vec![ids[2], ids[3], ids[1], ids[0]]
    );
    assert_eq!(conversation(&app, &bea, ids[1]).await["pinned"], false);

    let unpinned = app
        .delete(&path(ids[1], "pin"), &alex.token)
        .await
        .expect(200);
    assert_eq!(unpinned.body["pinned"], false);
    app.delete(&path(ids[0], "pin"), &alex.token)
        .await
        .expect(200);
    assert_eq!(
        list_ids(&app, &alex, "").await,
        vec![ids[2], ids[3], ids[1], ids[0]]
    );
}

// ---------------------------------------------------------------------------------------
// Tags and bulk actions

async fn tags_label_conversations_and_filter_the_list(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&agent]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    fixtures::tag(&app, &admin, "billing").await;
    fixtures::tag(&app, &admin, "urgent").await;
    let id = sms.text(&app, &customer(1), "I was charged twice").await;
    let other = sms.text(&app, &customer(2), "hello").await;

    let tagged = app
        .put(&path(id, "tags/billing"), &agent.token, None)
        .await
        .expect(200);
    assert_eq!(tagged.body["tags"], json!(["billing"]));
    app.put(&path(id, "tags/urgent"), &agent.token, None)
        .await
        .expect(200);
    let again = app
        .put(&path(id, "tags/billing"), &agent.token, None)
        .await
        .expect(200);
    assert_eq!(again.body["tags"], json!(["billing", "urgent"]));
    assert_eq!(
        conversation(&app, &agent, id).await["tags"],
        json!(["billing", "urgent"])
    );
    assert_eq!(list_ids(&app, &agent, "tag=billing").await, vec![id]);
    assert_eq!(counts(&app, &agent, "tag=billing").await["open"], 1);
    assert_eq!(
        list_ids(&app, &agent, "tag=nonexistent").await,
        Vec::<i64>::new()
    );
    assert_eq!(conversation(&app, &agent, other).await["tags"], json!([]));

    app.put(&path(id, "tags/nonexistent"), &agent.token, None)
        .await
        .expect_problem(404, "not_found");
    let entries = activity(&app, &agent, id, "tagged").await;
    assert_eq!(entries.len(), 2, "re-tagging records nothing: {entries:?}");
    assert_eq!(entries[0]["data"]["tag"], "billing");
    assert_eq!(entries[0]["actor_id"], agent.user_id);

    let removed = app
        .delete(&path(id, "tags/billing"), &agent.token)
        .await
        .expect(200);
    assert_eq!(removed.body["tags"], json!(["urgent"]));
    assert_eq!(
        list_ids(&app, &agent, "tag=billing").await,
        Vec::<i64>::new()
    );
    assert_eq!(activity(&app, &agent, id, "untagged").await.len(), 1);

    // Another organization's tag of the same name is theirs.
    let globex = app.other_org("Globex").await;
    fixtures::tag(&app, &globex, "vip").await;
    app.put(&path(id, "tags/vip"), &agent.token, None)
        .await
        .expect_problem(404, "not_found");
    app.put(&path(id, "tags/urgent"), &globex.token, None)
        .await
        .expect_problem(404, "not_found");
}

async fn managers_act_in_bulk_and_each_conversation_answers_for_itself(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&manager, &agent]).await;
    let sms = sms_channel(&app, &admin, inbox, "+14155550000").await;
    fixtures::tag(&app, &admin, "vip").await;
    let good = sms.text(&app, &customer(1), "one").await;
    let open_a = sms.text(&app, &customer(2), "two").await;
    let open_b = sms.text(&app, &customer(3), "three").await;
    let closed = sms.text(&app, &customer(4), "four").await;
    app.post(&path(closed, "close"), &agent.token, json!({}))
        .await
        .expect(200);
    let globex = app.other_org("Globex").await;
    let theirs_inbox = fixtures::inbox(&app, &globex, "Theirs", json!({}), &[&globex]).await;
    let theirs: Channel = sms_channel(&app, &globex, theirs_inbox, "+14155550009").await;
    let foreign = theirs.text(&app, &customer(1), "hello").await;
    let unknown = 999_999;

    app.post(
        "/v1/conversations/bulk",
        &agent.token,
        json!({"ids": [good], "action": "close"}),
    )
    .await
    .expect_problem(403, "forbidden");
    assert_eq!(conversation(&app, &agent, good).await["status"], "open");

    let closing = app
        .post(
            "/v1/conversations/bulk",
            &manager.token,
            json!({"ids": [good, closed, unknown, foreign], "action": "close"}),
        )
        .await
        .expect(200);
    assert_eq!(
        closing.body,
        json!({
            "done": [good],
            "failed": [
                {"id": closed, "code": "conversation_closed"},
                {"id": unknown, "code": "not_found"},
                {"id": foreign, "code": "not_found"},
            ],
        })
    );
    let seen = conversation(&app, &manager, good).await;
    assert_eq!(seen["status"], "closed");
    assert_eq!(seen["closed_by"], manager.user_id);
    assert_eq!(conversation(&app, &globex, foreign).await["status"], "open");

    let assigning = app
        .post(
            "/v1/conversations/bulk",
            &admin.token,
            json!({"ids": [open_a, open_b, closed], "action": "assign", "assignee_id": agent.user_id}),
        )
        .await
        .expect(200);
    assert_eq!(
        assigning.body,
        json!({"done": [open_a, open_b], "failed": [{"id": closed, "code": "conversation_closed"}]})
    );
    assert_eq!(
        list_ids(&app, &agent, "assignee=me&sort=oldest_conversations").await,
        vec![open_a, open_b]
    );
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let refused = app
        .post(
            "/v1/conversations/bulk",
            &manager.token,
            json!({"ids": [open_a], "action": "assign", "assignee_id": outsider.user_id}),
        )
        .await
        .expect(200);
    assert_eq!(
        refused.body["failed"],
        json!([{"id": open_a, "code": "assignee_not_member"}])
    );

    let tagging = app
        .post(
            "/v1/conversations/bulk",
            &manager.token,
            json!({"ids": [open_a, open_b, good], "action": "tag", "tag": "vip"}),
        )
        .await
        .expect(200);
    assert_eq!(
        tagging.body,
        json!({"done": [open_a, open_b], "failed": [{"id": good, "code": "conversation_closed"}]})
    );
    assert_eq!(
        list_ids(&app, &manager, "tag=vip&sort=oldest_conversations").await,
        vec![open_a, open_b]
    );
    let unknown_tag = app
        .post(
            "/v1/conversations/bulk",
            &manager.token,
            json!({"ids": [open_a], "action": "tag", "tag": "nope"}),
        )
        .await
        .expect(200);
    assert_eq!(
        unknown_tag.body,
        json!({"done": [], "failed": [{"id": open_a, "code": "not_found"}]})
    );

    for malformed in [
        json!({"ids": [], "action": "close"}),
        json!({"ids": [open_a], "action": "tag"}),
        json!({"ids": (1..=101).collect::<Vec<i64>>(), "action": "close"}),
    ] {
        app.post("/v1/conversations/bulk", &manager.token, malformed)
            .await
            .expect_problem(422, "validation_failed");
    }
}

/// A raw body with a JSON content type, as a buggy client might send it.
async fn raw(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: &str) -> Reply {
    let request = app
        .client()
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    into_reply(request.send().await.expect("request reaches the server")).await
}

async fn malformed_optional_bodies_are_refused_and_change_nothing(app: TestApp) {
    let admin = app.admin().await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[]).await;
    let sms = sms_channel(&app, &admin, support, "+14155550000").await;
    let id = sms.text(&app, &customer(1), "Buy cheap watches").await;

    // A spam close the client got wrong must not become an ordinary (final) close.
    for bad in [
        r#"{"spam": tru}"#,
        r#"{"spam": "yes"}"#,
        r#"{"spam": true, "x": 1}"#,
        "[]",
    ] {
        raw(
            &app,
            reqwest::Method::POST,
            &path(id, "close"),
            &admin.token,
            bad,
        )
        .await
        .expect_problem(400, "bad_request");
        assert_eq!(
            conversation(&app, &admin, id).await["status"],
            "open",
            "{bad}"
        );
    }
    for bad in [r#"{"position": "top"}"#, r#"{"position": 1"#] {
        raw(
            &app,
            reqwest::Method::PUT,
            &path(id, "pin"),
            &admin.token,
            bad,
        )
        .await
        .expect_problem(400, "bad_request");
        assert_eq!(
            conversation(&app, &admin, id).await["pinned"],
            false,
            "{bad}"
        );
    }
    // Left out, the bodies are optional, as before.
    raw(
        &app,
        reqwest::Method::PUT,
        &path(id, "pin"),
        &admin.token,
        "",
    )
    .await
    .expect(200);
    let closed = raw(
        &app,
        reqwest::Method::POST,
        &path(id, "close"),
        &admin.token,
        "",
    )
    .await
    .expect(200);
    assert_eq!(closed.body["spam"], false);
    // And a well-formed one does what it says.
    let other = sms.text(&app, &customer(2), "Cheap watches again").await;
    let spam = raw(
        &app,
        reqwest::Method::POST,
        &path(other, "close"),
        &admin.token,
        r#"{"spam": true}"#,
    )
    .await
    .expect(200);
    assert_eq!(spam.body["spam"], true);
}

on_both_backends!(
    malformed_optional_bodies_are_refused_and_change_nothing,
    a_closed_conversation_is_final_and_the_customer_starts_a_new_one,
    spam_disappears_from_every_list_but_an_admin_can_still_open_it,
    assignment_is_refused_when_the_inbox_has_it_off,
    agents_claim_and_managers_assign_within_the_inbox_and_team,
    agents_see_the_unassigned_and_their_own_and_lose_what_goes_to_a_colleague,
    with_visibility_all_member_agents_see_everything_and_nobody_else_does,
    moving_needs_allow_move_and_membership_of_both_inboxes,
    read_state_is_each_users_own,
    pins_put_conversations_first_for_the_pinner_only,
    tags_label_conversations_and_filter_the_list,
    managers_act_in_bulk_and_each_conversation_answers_for_itself,
);
