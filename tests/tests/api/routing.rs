//! Auto-assignment and the private-number history: what happens to a conversation before
//! anyone touches it.

use serde_json::json;

use crate::fixtures::{self, customer};
use crate::on_both_backends;
use crate::support::TestApp;

async fn new_conversations_go_to_the_least_busy_member_in_the_queue(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let bob = app.user(&admin, "agent", "Bob").await;
    let settings = json!({"auto_assign": true, "auto_assign_limit": 1});
    let inbox = fixtures::inbox(&app, &admin, "Support", settings, &[&ana, &bob]).await;
    let channel = fixtures::sms_channel(&app, &admin, inbox, "+14155550101").await;

    // Bob steps out of the queue: only Ana takes new conversations.
    app.put(
        &format!("/v1/me/queues/{inbox}"),
        &bob.token,
        Some(json!({"logged_in": false})),
    )
    .await
    .expect(200);
    let first = channel.text(&app, &customer(1), "Hello").await;
    let first_view = fixtures::conversation(&app, &admin, first).await;
    assert_eq!(first_view["assignee_id"], ana.user_id);

    // Ana is at the inbox's limit and Bob is out: the next one waits unassigned.
    let second = channel.text(&app, &customer(2), "Hi there").await;
    assert_eq!(
        fixtures::conversation(&app, &admin, second).await["assignee_id"],
        json!(null)
    );

    // A customer writing again in an open conversation does not re-route it.
    channel.text(&app, &customer(1), "Are you there?").await;
    assert_eq!(
        fixtures::conversation(&app, &admin, first).await["assignee_id"],
        ana.user_id
    );

    // Bob is back: the next new conversation is his.
    app.put(
        &format!("/v1/me/queues/{inbox}"),
        &bob.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect(200);
    let third = channel.text(&app, &customer(3), "Good morning").await;
    assert_eq!(
        fixtures::conversation(&app, &admin, third).await["assignee_id"],
        bob.user_id
    );

    // The trail says it was automatic.
    let activity = app
        .get(&format!("/v1/conversations/{third}/activity"), &admin.token)
        .await
        .expect(200);
    let entry = &activity.body["items"][0];
    assert_eq!(entry["action"], "assigned");
    assert_eq!(entry["actor_id"], json!(null));
    assert_eq!(entry["data"]["automatic"], true);
}

async fn without_auto_assign_or_assignment_mode_nothing_is_routed(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let plain = fixtures::inbox(&app, &admin, "Plain", json!({}), &[&ana]).await;
    let off = fixtures::inbox(
        &app,
        &admin,
        "No assignment",
        json!({"auto_assign": true, "assignment_mode": false}),
        &[&ana],
    )
    .await;
    for (inbox, number) in [(plain, "+14155550102"), (off, "+14155550103")] {
        let channel = fixtures::sms_channel(&app, &admin, inbox, number).await;
        let id = channel.text(&app, &customer(9), "Hello").await;
        assert_eq!(
            fixtures::conversation(&app, &admin, id).await["assignee_id"],
            json!(null)
        );
    }
}

async fn a_private_number_joining_a_shared_inbox_brings_its_history_archived(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let bob = app.user(&admin, "agent", "Bob").await;
    let private = app
        .post(
            "/v1/inboxes",
            &admin.token,
            json!({"name": "Ana's phone", "kind": "private", "owner_id": ana.user_id}),
        )
        .await
        .expect(201)
        .id();
    let personal = fixtures::sms_channel(&app, &admin, private, "+14155550110").await;
    let old = personal.text(&app, &customer(4), "Hi Ana, it's me").await;
    assert_eq!(
        fixtures::conversation(&app, &ana, old).await["archived"],
        false
    );

    let shared = fixtures::inbox(&app, &admin, "Sales", json!({}), &[&bob]).await;
    let joined = app
        .post(
            &format!("/v1/inboxes/{shared}/channels"),
            &admin.token,
            json!({"type": "sms", "address": "(415) 555-0110", "name": "Sales line"}),
        )
        .await
        .expect(201);
    assert_eq!(joined.body["inbox_id"], shared);
    let secret = joined.body["inbound_secret"]
        .as_str()
        .expect("a new secret")
        .to_string();
    assert_ne!(secret, personal.secret, "the provider gets a new secret");

    // The old thread is now the shared inbox's, archived and read-only.
    let archived = fixtures::conversation(&app, &bob, old).await;
    assert_eq!(archived["inbox_id"], shared);
    assert_eq!(archived["archived"], true);
    assert_eq!(archived["status"], "closed");
    assert_eq!(
        fixtures::list_ids(&app, &bob, "status=archived").await,
        vec![old]
    );
    assert!(
        !fixtures::list_ids(&app, &bob, "status=open")
            .await
            .contains(&old)
    );
    app.post(
        &format!("/v1/conversations/{old}/messages"),
        &bob.token,
        json!({"body": "hello"}),
    )
    .await
    .expect_problem(422, "conversation_closed");

    // The customer writing again starts a live conversation in the shared inbox.
    let channel = fixtures::Channel {
        id: joined.id(),
        inbox_id: shared,
        secret,
        body: joined.body.clone(),
    };
    let fresh = channel.text(&app, &customer(4), "Still there?").await;
    assert_ne!(fresh, old);
    let view = fixtures::conversation(&app, &bob, fresh).await;
    assert_eq!(
        (view["archived"].clone(), view["status"].clone()),
        (json!(false), json!("open"))
    );
    // The old secret no longer signs anything.
    fixtures::inbound(
        &app,
        personal.id,
        &personal.secret,
        &fixtures::external_id(),
        &customer(4),
        "old secret",
    )
    .await
    .expect_problem(401, "unauthenticated");
}

on_both_backends!(
    new_conversations_go_to_the_least_busy_member_in_the_queue,
    without_auto_assign_or_assignment_mode_nothing_is_routed,
    a_private_number_joining_a_shared_inbox_brings_its_history_archived,
);
