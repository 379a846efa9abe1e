//! Conversations, as customers write in and agents answer (API.md, Conversations and
//! Channels in and out): inbound messages, replies and notes, the list with its filters,
//! sorts, pages and counts. The rules (closing, assignment, visibility, moving, read state,
//! pins, tags, bulk) are in `conversation_rules`.

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::fixtures::{
    self, Channel, conversation, counts, customer, inbound, inbound_raw, list, list_ids, messages,
    post_with_key, sign, sms_channel, tick,
};
use crate::on_both_backends;
use crate::support::{Session, TestApp};

/// An admin, a manager and an agent in one inbox with an sms channel.
struct Desk {
    admin: Session,
    manager: Session,
    agent: Session,
    inbox: i64,
    sms: Channel,
}

async fn desk(app: &TestApp, settings: Value) -> Desk {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(app, &admin, "Support", settings, &[&manager, &agent]).await;
    let sms = sms_channel(app, &admin, inbox, "+14155550000").await;
    Desk {
        admin,
        manager,
        agent,
        inbox,
        sms,
    }
}

// ---------------------------------------------------------------------------------------
// Inbound

async fn a_customer_texts_in_and_the_team_sees_one_conversation(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let outsider = app.user(&desk.admin, "agent", "Olga Outsider").await;

    let first = inbound(
        &app,
        desk.sms.id,
        &desk.sms.secret,
        "sm-1",
        "(415) 555-2671",
        "Hi, my order has not arrived",
    )
    .await
    .expect(200);
    let id = first.body["conversation_id"]
        .as_i64()
        .expect("conversation_id");
    let first_message = first.body["message_id"].as_i64().expect("message_id");

    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["status"], "open");
    assert_eq!(seen["inbox_id"], desk.inbox);
    assert_eq!(seen["channel_id"], desk.sms.id);
    assert_eq!(seen["contact"]["phone_numbers"], json!(["+14155552671"]));
    assert_eq!(seen["contact"]["name"], Value::Null);
    assert_eq!(seen["contact"]["opted_out"], json!({"sms": false}));
    assert_eq!(seen["message_count"], 1);
    assert_eq!(seen["assignee_id"], Value::Null);
    assert_eq!(seen["archived"], false);
    assert_eq!(seen["spam"], false);
    assert_eq!(seen["last_message_preview"], "Hi, my order has not arrived");
    for member in [&desk.admin, &desk.manager, &desk.agent] {
        assert_eq!(list_ids(&app, member, "").await, vec![id]);
    }
    assert_eq!(list_ids(&app, &outsider, "").await, Vec::<i64>::new());

    // The same number writes again (spelled differently): the same conversation goes on.
    let second = inbound(
        &app,
        desk.sms.id,
        &desk.sms.secret,
        "sm-2",
        "+1 415-555-2671",
        "Order #1234\nPlease check",
    )
    .await
    .expect(200);
    assert_eq!(second.body["conversation_id"], id);
    assert_ne!(second.body["message_id"], first_message);
    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["message_count"], 2);
    assert_eq!(seen["last_message_preview"], "Order #1234");
    assert_eq!(seen["last_message_id"], second.body["message_id"]);

    let thread = messages(&app, &desk.agent, id).await;
    assert_eq!(thread.len(), 2, "thread: {thread:?}");
    assert_eq!(thread[0]["id"], second.body["message_id"], "newest first");
    assert_eq!(thread[0]["body"], "Order #1234\nPlease check");
    assert_eq!(thread[1]["id"], first_message);
    for message in &thread {
        assert_eq!(message["direction"], "inbound");
        assert_eq!(message["kind"], "message");
        assert_eq!(message["author"]["type"], "contact");
        assert_eq!(message["author"]["id"], seen["contact"]["id"]);
        assert_eq!(message["delivery_status"], Value::Null);
        assert_eq!(message["conversation_id"], id);
    }
}

async fn forged_or_unsigned_inbound_calls_are_refused(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let raw =
        serde_json::to_vec(&json!({"external_id": "x-1", "from": "+14155552671", "body": "hi"}))
            .expect("JSON");
    let tampered =
        serde_json::to_vec(&json!({"external_id": "x-1", "from": "+14155552671", "body": "HI"}))
            .expect("JSON");
    let good = sign(&desk.sms.secret, &raw);
    let refusals = [
        (desk.sms.id, None, raw.clone()),
        (desk.sms.id, Some(sign("not the secret", &raw)), raw.clone()),
        (desk.sms.id, Some(good.clone()), tampered),
        (desk.sms.id, Some("sha256=zz".to_string()), raw.clone()),
        (
            desk.sms.id,
            Some(good.trim_start_matches("sha256=").to_string()),
            raw.clone(),
        ),
        (999_999, Some(good.clone()), raw.clone()),
    ];
    for (channel, signature, body) in refusals {
        inbound_raw(&app, channel, signature.as_deref(), body)
            .await
            .expect_problem(401, "unauthenticated");
    }
    assert_eq!(list_ids(&app, &desk.admin, "").await, Vec::<i64>::new());
    assert_eq!(counts(&app, &desk.admin, "").await["open"], 0);

    // The other channel's secret does not sign for this one.
    let other = sms_channel(&app, &desk.admin, desk.inbox, "+14155550001").await;
    inbound_raw(
        &app,
        desk.sms.id,
        Some(&sign(&other.secret, &raw)),
        raw.clone(),
    )
    .await
    .expect_problem(401, "unauthenticated");
    inbound_raw(&app, desk.sms.id, Some(&good), raw)
        .await
        .expect(200);
}

async fn a_provider_retrying_a_message_creates_nothing_new(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let first = inbound(
        &app,
        desk.sms.id,
        &desk.sms.secret,
        "retry-1",
        "+14155552671",
        "Hello?",
    )
    .await
    .expect(200);
    let id = first.body["conversation_id"].as_i64().expect("id");
    for _ in 0..2 {
        let replay = inbound(
            &app,
            desk.sms.id,
            &desk.sms.secret,
            "retry-1",
            "+14155552671",
            "Hello?",
        )
        .await
        .expect(200);
        assert_eq!(replay.body, first.body);
    }
    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["message_count"], 1);
    assert_eq!(messages(&app, &desk.agent, id).await.len(), 1);

    // The same provider id on another channel is another message.
    let other = sms_channel(&app, &desk.admin, desk.inbox, "+14155550001").await;
    let elsewhere = inbound(
        &app,
        other.id,
        &other.secret,
        "retry-1",
        "+14155552671",
        "Hello?",
    )
    .await
    .expect(200);
    assert_ne!(elsewhere.body["conversation_id"], id);
}

async fn concurrent_deliveries_of_one_message_store_it_once(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    // A first message from a new number (contact, conversation and message all new), then
    // one more into the existing conversation: each delivered 8 times at once.
    for (external, body) in [("burst-1", "first"), ("burst-2", "second")] {
        let replies = join_all((0..8).map(|_| {
            inbound(
                &app,
                desk.sms.id,
                &desk.sms.secret,
                external,
                "+14155552671",
                body,
            )
        }))
        .await;
        let mut answers = HashSet::new();
        for reply in replies {
            let reply = reply.expect(200);
            answers.insert((
                reply.body["conversation_id"]
                    .as_i64()
                    .expect("conversation_id"),
                reply.body["message_id"].as_i64().expect("message_id"),
            ));
        }
        assert_eq!(
            answers.len(),
            1,
            "every delivery answers the same ids: {answers:?}"
        );
    }
    let listed = list(&app, &desk.admin, "").await;
    let items = listed.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one conversation: {}", listed.body);
    assert_eq!(items[0]["message_count"], 2);
    let id = items[0]["id"].as_i64().expect("id");
    let bodies: Vec<Value> = messages(&app, &desk.admin, id)
        .await
        .iter()
        .map(|message| message["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("second"), json!("first")]);
}

async fn a_new_customers_burst_of_texts_lands_whole_in_one_conversation(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    // A long text split by the carrier, delivered as several webhooks at once; then, after
    // a close, another burst that must start exactly one new conversation.
    let mut conversations = Vec::new();
    for round in 0..2 {
        let parts: Vec<String> = (0..6)
            .map(|part| format!("round {round} part {part}"))
            .collect();
        let externals: Vec<String> = (0..6).map(|_| fixtures::external_id()).collect();
        let replies = join_all(parts.iter().zip(&externals).map(|(body, external)| {
            inbound(
                &app,
                desk.sms.id,
                &desk.sms.secret,
                external,
                "+14155552671",
                body,
            )
        }))
        .await;
        let mut ids = HashSet::new();
        for reply in replies {
            ids.insert(
                reply.expect(200).body["conversation_id"]
                    .as_i64()
                    .expect("id"),
            );
        }
        assert_eq!(ids.len(), 1, "one conversation: {ids:?}");
        let id = ids.into_iter().next().expect("id");
        assert_eq!(
            conversation(&app, &desk.agent, id).await["message_count"],
            6
        );
        app.post(
            &format!("/v1/conversations/{id}/close"),
            &desk.agent.token,
            json!({}),
        )
        .await
        .expect(200);
        conversations.push(id);
    }
    assert_ne!(conversations[0], conversations[1]);
    assert_eq!(
        list_ids(&app, &desk.agent, "status=closed&sort=oldest_conversations").await,
        conversations
    );
}

async fn stop_opts_the_customer_out_of_texts_until_start(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let id = desk.sms.text(&app, "+14155552671", "Hi there").await;
    let path = format!("/v1/conversations/{id}/messages");
    app.post(
        &path,
        &desk.agent.token,
        json!({"body": "Hello! How can we help?"}),
    )
    .await
    .expect(201);

    desk.sms.text(&app, "+14155552671", "STOP").await;
    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["contact"]["opted_out"], json!({"sms": true}));
    let before = seen["message_count"].clone();
    app.post(&path, &desk.agent.token, json!({"body": "Are you sure?"}))
        .await
        .expect_problem(422, "contact_opted_out");
    let note = app
        .post(
            &path,
            &desk.agent.token,
            json!({"body": "Customer opted out; call them instead", "kind": "note"}),
        )
        .await
        .expect(201);
    assert_eq!(note.body["kind"], "note");
    assert_eq!(note.body["direction"], "internal");
    assert_eq!(
        conversation(&app, &desk.agent, id).await["message_count"],
        before
    );
    // Nor can the business start a new conversation with them.
    app.post(
        "/v1/conversations",
        &desk.agent.token,
        json!({"channel_id": desk.sms.id, "to": "+14155552671", "body": "A new offer"}),
    )
    .await
    .expect_problem(422, "contact_opted_out");

    desk.sms.text(&app, "+14155552671", "start").await;
    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["contact"]["opted_out"], json!({"sms": false}));
    app.post(&path, &desk.agent.token, json!({"body": "Welcome back"}))
        .await
        .expect(201);
}

// ---------------------------------------------------------------------------------------
// Sending

async fn agents_reply_with_the_channel_signature_and_leave_internal_notes(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let signed = fixtures::channel(
        &app,
        &desk.admin,
        desk.inbox,
        json!({"type": "sms", "address": "+14155550001", "name": "Signed", "appended_message": "- Acme Support"}),
    )
    .await;
    let id = signed
        .text(&app, "+14155552671", "Do you ship to Canada?")
        .await;
    let path = format!("/v1/conversations/{id}/messages");

    let reply = app
        .post(&path, &desk.agent.token, json!({"body": "Yes, we do."}))
        .await
        .expect(201);
    let message = &reply.body;
    assert_eq!(message["conversation_id"], id);
    assert_eq!(message["direction"], "outbound");
    assert_eq!(message["kind"], "message");
    assert_eq!(message["body"], "Yes, we do.\n\n- Acme Support");
    assert_eq!(
        message["author"],
        json!({"type": "user", "id": desk.agent.user_id})
    );
    assert_eq!(
        message["delivery_status"], "sent",
        "no outbound_url: sandbox"
    );
    assert_eq!(message["attachments"], json!([]));
    assert_eq!(message["reactions"], json!([]));
    let seen = conversation(&app, &desk.agent, id).await;
    assert_eq!(seen["message_count"], 2);
    assert_eq!(seen["last_message_id"], message["id"]);
    assert_eq!(seen["last_message_preview"], "Yes, we do.");

    let note = app
        .post(
            &path,
            &desk.manager.token,
            json!({"body": "VIP customer", "kind": "note"}),
        )
        .await
        .expect(201);
    assert_eq!(note.body["direction"], "internal");
    assert_eq!(note.body["kind"], "note");
    assert_eq!(
        note.body["body"], "VIP customer",
        "notes carry no signature"
    );
    assert_eq!(note.body["delivery_status"], Value::Null);
    assert_eq!(
        note.body["author"],
        json!({"type": "user", "id": desk.manager.user_id})
    );

    // A canned response fills an empty body.
    let canned = app
        .post(
            &format!("/v1/inboxes/{}/canned-responses", desk.inbox),
            &desk.manager.token,
            json!({"shortcut": "thanks", "title": "Thanks", "body": "Thanks for writing to us!"}),
        )
        .await
        .expect(201);
    let from_canned = app
        .post(
            &path,
            &desk.agent.token,
            json!({"body": "", "canned_response_id": canned.id()}),
        )
        .await
        .expect(201);
    assert_eq!(
        from_canned.body["body"],
        "Thanks for writing to us!\n\n- Acme Support"
    );
    app.post(&path, &desk.agent.token, json!({"body": "   "}))
        .await
        .expect_problem(422, "validation_failed");

    let thread = messages(&app, &desk.agent, id).await;
    let kinds: Vec<(Value, Value)> = thread
        .iter()
        .map(|message| (message["kind"].clone(), message["direction"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (json!("message"), json!("outbound")),
            (json!("note"), json!("internal")),
            (json!("message"), json!("outbound")),
            (json!("message"), json!("inbound")),
        ]
    );

    // A channel without a signature sends the text as written.
    let plain = desk
        .sms
        .text(&app, "+14155552671", "Another question")
        .await;
    let sent = app
        .post(
            &format!("/v1/conversations/{plain}/messages"),
            &desk.agent.token,
            json!({"body": "Sure"}),
        )
        .await
        .expect(201);
    assert_eq!(sent.body["body"], "Sure");
}

async fn a_retried_send_with_an_idempotency_key_sends_once(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let id = desk.sms.text(&app, "+14155552671", "Hello").await;
    let path = format!("/v1/conversations/{id}/messages");
    let body = json!({"body": "We are on it"});

    let first = post_with_key(&app, &path, &desk.agent, "send-1", body.clone())
        .await
        .expect(201);
    let again = post_with_key(&app, &path, &desk.agent, "send-1", body.clone())
        .await
        .expect(201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body, first.body);
    assert_eq!(
        conversation(&app, &desk.agent, id).await["message_count"],
        2
    );

    post_with_key(
        &app,
        &path,
        &desk.agent,
        "send-1",
        json!({"body": "Something else"}),
    )
    .await
    .expect_problem(422, "validation_failed");
    // Another user's key is their own.
    let theirs = post_with_key(&app, &path, &desk.manager, "send-1", body.clone())
        .await
        .expect(201);
    assert_ne!(theirs.body["id"], first.body["id"]);
    // Concurrent retries too.
    let burst = join_all(
        (0..6).map(|_| post_with_key(&app, &path, &desk.agent, "send-2", json!({"body": "Once"}))),
    )
    .await;
    let mut sent = HashSet::new();
    for reply in burst {
        sent.insert(reply.expect(201).body["id"].as_i64().expect("id"));
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        conversation(&app, &desk.agent, id).await["message_count"],
        4
    );

    // Starting a conversation is idempotent the same way.
    let start =
        json!({"channel_id": desk.sms.id, "to": "+14155550123", "body": "Your order shipped"});
    let created = post_with_key(
        &app,
        "/v1/conversations",
        &desk.agent,
        "start-1",
        start.clone(),
    )
    .await
    .expect(201);
    let replayed = post_with_key(&app, "/v1/conversations", &desk.agent, "start-1", start)
        .await
        .expect(201);
    assert_eq!(replayed.body["id"], created.body["id"]);
    assert_eq!(
        conversation(&app, &desk.agent, created.id()).await["message_count"],
        1
    );
}

async fn a_guarded_reply_is_refused_when_the_customer_wrote_meanwhile(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let id = desk.sms.text(&app, "+14155552671", "Is it in stock?").await;
    let path = format!("/v1/conversations/{id}/messages");
    let last = conversation(&app, &desk.agent, id).await["last_message_id"].clone();
    assert!(last.is_i64());

    let answered = app
        .post(
            &path,
            &desk.agent.token,
            json!({"body": "Yes", "if_last_message_id": last}),
        )
        .await
        .expect(201);
    // Now the agent's own reply is the last message; the customer writes meanwhile.
    assert_eq!(
        conversation(&app, &desk.agent, id).await["last_message_id"],
        answered.body["id"]
    );
    desk.sms
        .text(&app, "+14155552671", "Actually, in blue?")
        .await;
    app.post(
        &path,
        &desk.manager.token,
        json!({"body": "Yes, it is", "if_last_message_id": answered.body["id"]}),
    )
    .await
    .expect_problem(409, "conversation_changed");
    assert_eq!(
        conversation(&app, &desk.agent, id).await["message_count"],
        3
    );
    let fresh = conversation(&app, &desk.agent, id).await["last_message_id"].clone();
    app.post(
        &path,
        &desk.manager.token,
        json!({"body": "Blue too", "if_last_message_id": fresh}),
    )
    .await
    .expect(201);
}

async fn agents_start_a_conversation_by_texting_a_number(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let created = app
        .post(
            "/v1/conversations",
            &desk.agent.token,
            json!({"channel_id": desk.sms.id, "to": "(415) 555-0100", "body": "Your order shipped"}),
        )
        .await
        .expect(201);
    let body = &created.body;
    assert_eq!(body["status"], "open");
    assert_eq!(body["inbox_id"], desk.inbox);
    assert_eq!(body["channel_id"], desk.sms.id);
    assert_eq!(body["contact"]["phone_numbers"], json!(["+14155550100"]));
    assert!(body["contact"]["id"].is_i64());
    assert_eq!(body["message_count"], 1);
    assert_eq!(body["last_message_preview"], "Your order shipped");
    let thread = messages(&app, &desk.agent, created.id()).await;
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0]["direction"], "outbound");
    assert_eq!(
        thread[0]["author"],
        json!({"type": "user", "id": desk.agent.user_id})
    );
    assert_eq!(thread[0]["delivery_status"], "sent");

    // The customer's answer lands in that conversation.
    let answer = desk.sms.text(&app, "+14155550100", "Thanks!").await;
    assert_eq!(answer, created.id());

    // By an existing contact too.
    let known = app
        .post(
            "/v1/conversations",
            &desk.manager.token,
            json!({"channel_id": desk.sms.id, "contact_id": body["contact"]["id"], "body": "And the invoice"}),
        )
        .await
        .expect(201);
    assert_eq!(known.id(), created.id(), "the open conversation goes on");

    // WhatsApp conversations are started by customers only.
    let whatsapp = fixtures::channel(
        &app,
        &desk.admin,
        desk.inbox,
        json!({"type": "whatsapp", "address": "+14155550002", "name": "WhatsApp"}),
    )
    .await;
    app.post(
        "/v1/conversations",
        &desk.agent.token,
        json!({"channel_id": whatsapp.id, "to": "+14155550101", "body": "Hello"}),
    )
    .await
    .expect_problem(422, "channel_cannot_initiate");
    for refused in [
        json!({"channel_id": desk.sms.id, "to": "not a number", "body": "Hello"}),
        json!({"channel_id": desk.sms.id, "body": "Hello"}),
        json!({"channel_id": desk.sms.id, "to": "+14155550101", "body": ""}),
        json!({"channel_id": 999_999, "to": "+14155550101", "body": "Hello"}),
    ] {
        app.post("/v1/conversations", &desk.agent.token, refused)
            .await
            .expect_problem(422, "validation_failed");
    }
    assert_eq!(list_ids(&app, &desk.agent, "").await, vec![created.id()]);
}

// ---------------------------------------------------------------------------------------
// The list

async fn the_list_filters_by_assignee_participant_contact_channel_inbox_and_text(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let members = [&manager, &alex, &bea];
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &members).await;
    let sales = fixtures::inbox(&app, &admin, "Sales", json!({}), &members).await;
    let main = sms_channel(&app, &admin, support, "+14155550000").await;
    let second = sms_channel(&app, &admin, support, "+14155550001").await;
    let deals = sms_channel(&app, &admin, sales, "+14155550002").await;

    let invoice = main.text(&app, &customer(101), "My INVOICE is wrong").await;
    let hello = main.text(&app, &customer(102), "hello").await;
    let other_line = second.text(&app, &customer(103), "hi there").await;
    let deal = deals.text(&app, &customer(104), "a discount?").await;
    let all = HashSet::from([invoice, hello, other_line, deal]);

    app.post(
        &format!("/v1/conversations/{invoice}/assign"),
        &alex.token,
        json!({"assignee_id": alex.user_id}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/conversations/{hello}/assign"),
        &manager.token,
        json!({"assignee_id": bea.user_id}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/conversations/{other_line}/messages"),
        &alex.token,
        json!({"body": "Hi! How can we help?"}),
    )
    .await
    .expect(201);

    let set = |ids: Vec<i64>| ids.into_iter().collect::<HashSet<i64>>();
    assert_eq!(set(list_ids(&app, &alex, "").await), all);
    assert_eq!(list_ids(&app, &alex, "assignee=me").await, vec![invoice]);
    assert_eq!(list_ids(&app, &alex, "assignee=others").await, vec![hello]);
    assert_eq!(list_ids(&app, &bea, "assignee=me").await, vec![hello]);
    assert_eq!(
        set(list_ids(&app, &alex, "assignee=unassigned").await),
        HashSet::from([other_line, deal])
    );
    // Claiming wrote an activity line, not a message: only the reply makes a participant.
    assert_eq!(
        list_ids(&app, &alex, "participant=me").await,
        vec![other_line]
    );
    assert_eq!(
        list_ids(&app, &bea, "participant=me").await,
        Vec::<i64>::new()
    );

    let contact = conversation(&app, &alex, hello).await["contact"]["id"].clone();
    assert_eq!(
        list_ids(&app, &alex, &format!("contact_id={contact}")).await,
        vec![hello]
    );
    assert_eq!(
        list_ids(&app, &alex, &format!("channel_id={}", second.id)).await,
        vec![other_line]
    );
    assert_eq!(
        set(list_ids(&app, &alex, &format!("inbox_id={support}")).await),
        HashSet::from([invoice, hello, other_line])
    );
    assert_eq!(
        list_ids(&app, &alex, &format!("inbox_id={sales}")).await,
        vec![deal]
    );
    assert_eq!(
        list_ids(
            &app,
            &alex,
            &format!("inbox_id={support}&assignee=unassigned")
        )
        .await,
        vec![other_line]
    );

    // Text search: message text (any case), the contact's number in any spelling.
    assert_eq!(list_ids(&app, &alex, "q=invoice").await, vec![invoice]);
    assert_eq!(
        list_ids(&app, &alex, "q=how%20can%20we").await,
        vec![other_line]
    );
    assert_eq!(list_ids(&app, &alex, "q=556-0102").await, vec![hello]);
    assert_eq!(
        list_ids(&app, &alex, "q=(415)%20556-0104").await,
        vec![deal]
    );
    assert_eq!(
        list_ids(&app, &alex, "q=nothing%20like%20this").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        list_ids(&app, &alex, "q=%25").await,
        Vec::<i64>::new(),
        "wildcards are literal"
    );

    app.get("/v1/conversations?assignee=everyone", &alex.token)
        .await
        .expect_problem(400, "bad_request");
    app.get("/v1/conversations?limit=101", &alex.token)
        .await
        .expect_problem(400, "bad_request");
    app.get("/v1/conversations?cursor=garbage", &alex.token)
        .await
        .expect_problem(400, "bad_request");
}

async fn the_list_sorts_by_conversation_and_message_time(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let token = &desk.manager.token;
    let first = desk.sms.text(&app, &customer(1), "one").await;
    tick().await;
    let second = desk.sms.text(&app, &customer(2), "two").await;
    tick().await;
    let third = desk.sms.text(&app, &customer(3), "three").await;
    tick().await;
    // The first customer writes again: the most recent message, the oldest conversation.
    desk.sms.text(&app, &customer(1), "one again").await;

    let order = |query: &'static str| {
        let app = app.clone();
        let manager = desk.manager.clone();
        async move { list_ids(&app, &manager, query).await }
    };
    assert_eq!(
        order("").await,
        vec![first, third, second],
        "default: recent_messages"
    );
    assert_eq!(
        order("sort=recent_messages").await,
        vec![first, third, second]
    );
    assert_eq!(
        order("sort=oldest_messages").await,
        vec![second, third, first]
    );
    assert_eq!(
        order("sort=recent_conversations").await,
        vec![third, second, first]
    );
    assert_eq!(
        order("sort=oldest_conversations").await,
        vec![first, second, third]
    );

    // The closed tab sorts conversation sorts by close time.
    for id in [second, first, third] {
        app.post(&format!("/v1/conversations/{id}/close"), token, json!({}))
            .await
            .expect(200);
        tick().await;
    }
    assert_eq!(
        order("status=closed&sort=recent_conversations").await,
        vec![third, first, second]
    );
    assert_eq!(
        order("status=closed&sort=oldest_conversations").await,
        vec![second, first, third]
    );
    assert_eq!(
        order("status=closed&sort=recent_messages").await,
        vec![first, third, second]
    );
    assert_eq!(order("").await, Vec::<i64>::new());
    let closed = list(&app, &desk.manager, "status=closed").await;
    for item in closed.body["items"].as_array().expect("items") {
        assert_eq!(item["status"], "closed");
    }
}

/// Walks `sort` with pages of 3, letting two new customers write in after the first page;
/// every conversation that existed before is seen exactly once.
async fn walk_while_customers_write_in(app: &TestApp, desk: &Desk, sort: &str, seed: u32) {
    let mut before = HashSet::new();
    for n in 0..7 {
        before.insert(desk.sms.text(app, &customer(seed + n), "hello").await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("sort={sort}&limit=3&cursor={cursor}"),
            None => format!("sort={sort}&limit=3"),
        };
        let page = list(app, &desk.manager, &query).await;
        let items = fixtures::ids(&page);
        assert!(items.len() <= 3, "{}", page.body);
        seen.extend(items);
        pages += 1;
        if pages == 1 {
            for n in 0..2 {
                desk.sms.text(app, &customer(seed + 100 + n), "new").await;
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 20, "the walk does not end");
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a conversation was repeated: {seen:?}"
    );
    assert!(
        before.is_subset(&unique),
        "skipped: {:?} (saw {seen:?})",
        before.difference(&unique).collect::<Vec<_>>()
    );
}

async fn paging_recent_messages_is_stable_while_customers_write_in(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    walk_while_customers_write_in(&app, &desk, "recent_messages", 200).await;
}

async fn paging_oldest_conversations_is_stable_while_customers_write_in(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    walk_while_customers_write_in(&app, &desk, "oldest_conversations", 300).await;
    // A pinned conversation comes first and is not repeated on later pages either.
    let oldest = list_ids(&app, &desk.manager, "sort=oldest_conversations&limit=1").await[0];
    let newest = list_ids(&app, &desk.manager, "sort=recent_conversations&limit=1").await[0];
    app.put(
        &format!("/v1/conversations/{newest}/pin"),
        &desk.manager.token,
        None,
    )
    .await
    .expect(200);
    let mut seen = Vec::new();
    let mut query = "sort=oldest_conversations&limit=2".to_string();
    for _ in 0..20 {
        let page = list(&app, &desk.manager, &query).await;
        seen.extend(fixtures::ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => query = format!("sort=oldest_conversations&limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    assert_eq!(
        seen.iter().copied().collect::<HashSet<_>>().len(),
        9,
        "{seen:?}"
    );
    assert_eq!(&seen[..2], &[newest, oldest]);
}

async fn counts_agree_with_the_lists(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let bea = app.user(&desk.admin, "agent", "Bea Agent").await;
    fixtures::add_member(&app, &desk.admin, desk.inbox, &bea).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(desk.sms.text(&app, &customer(n), "hello").await);
    }
    let assign = |id: i64, who: i64| {
        let app = app.clone();
        let token = desk.manager.token.clone();
        async move {
            app.post(
                &format!("/v1/conversations/{id}/assign"),
                &token,
                json!({"assignee_id": who}),
            )
            .await
            .expect(200);
        }
    };
    assign(ids[0], desk.agent.user_id).await;
    assign(ids[1], desk.agent.user_id).await;
    assign(ids[2], bea.user_id).await;
    app.post(
        &format!("/v1/conversations/{}/close", ids[3]),
        &desk.agent.token,
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/conversations/{}/read", ids[0]),
        &desk.agent.token,
        json!({}),
    )
    .await
    .expect(204);

    let figures = counts(&app, &desk.agent, "").await;
    assert_eq!(
        figures,
        json!({"open": 5, "closed": 1, "archived": 0, "unread": 4, "mine": 2, "unassigned": 2, "others": 1})
    );
    for viewer in [&desk.agent, &bea, &desk.manager, &desk.admin] {
        let figures = counts(&app, viewer, "").await;
        let length = |query: &'static str| {
            let app = app.clone();
            let viewer = viewer.clone();
            async move {
                list_ids(&app, &viewer, &format!("limit=100&{query}"))
                    .await
                    .len() as i64
            }
        };
        assert_eq!(figures["open"], length("").await);
        assert_eq!(figures["closed"], length("status=closed").await);
        assert_eq!(figures["archived"], length("status=archived").await);
        assert_eq!(figures["unread"], length("unread=true").await);
        assert_eq!(figures["mine"], length("assignee=me").await);
        assert_eq!(figures["unassigned"], length("assignee=unassigned").await);
        assert_eq!(figures["others"], length("assignee=others").await);
    }
    // Counts take the list's filters.
    let filtered = counts(
        &app,
        &desk.agent,
        &format!(
            "contact_id={}",
            conversation(&app, &desk.agent, ids[0]).await["contact"]["id"]
        ),
    )
    .await;
    assert_eq!(filtered["open"], 1);
    assert_eq!(filtered["mine"], 1);
    assert_eq!(filtered["unread"], 0);
    assert_eq!(filtered["closed"], 0);
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

async fn a_page_of_100_costs_as_many_statements_as_a_page_of_5(app: TestApp) {
    let desk = desk(&app, json!({})).await;
    let tag = fixtures::tag(&app, &desk.admin, "vip").await;
    assert!(tag > 0);
    for n in 0..14 {
        let id = desk.sms.text(&app, &customer(n), "hello").await;
        match n % 4 {
            0 => {
                app.put(
                    &format!("/v1/conversations/{id}/tags/vip"),
                    &desk.admin.token,
                    None,
                )
                .await
                .expect(200);
            }
            1 => {
                app.put(
                    &format!("/v1/conversations/{id}/pin"),
                    &desk.admin.token,
                    None,
                )
                .await
                .expect(200);
            }
            2 => {
                app.post(
                    &format!("/v1/conversations/{id}/read"),
                    &desk.admin.token,
                    json!({}),
                )
                .await
                .expect(204);
            }
            _ => {}
        }
    }
    let small = list(&app, &desk.admin, "limit=5").await;
    assert_eq!(fixtures::ids(&small).len(), 5);
    let large = list(&app, &desk.admin, "limit=100").await;
    assert_eq!(fixtures::ids(&large).len(), 14);

    // The counter is this server's: its background work (the delivery queue, realtime) adds
    // to it, never takes from it. So each figure is the least seen over a few tries; a true
    // N+1 shows in every try.
    let mut least = [i64::MAX, i64::MAX];
    for _ in 0..30 {
        for (slot, query) in ["limit=5", "limit=100"].into_iter().enumerate() {
            let before = queries_so_far(&app).await;
            list(&app, &desk.admin, query).await;
            let after = queries_so_far(&app).await;
            least[slot] = least[slot].min(after - before);
        }
        if least[0] == least[1] {
            break;
        }
    }
    assert!(least[0] > 0, "the list runs SQL: {least:?}");
    assert_eq!(
        least[0], least[1],
        "statements for 5 rows vs 100 rows: {least:?}"
    );
}

on_both_backends!(
    a_customer_texts_in_and_the_team_sees_one_conversation,
    forged_or_unsigned_inbound_calls_are_refused,
    a_provider_retrying_a_message_creates_nothing_new,
    concurrent_deliveries_of_one_message_store_it_once,
    a_new_customers_burst_of_texts_lands_whole_in_one_conversation,
    stop_opts_the_customer_out_of_texts_until_start,
    agents_reply_with_the_channel_signature_and_leave_internal_notes,
    a_retried_send_with_an_idempotency_key_sends_once,
    a_guarded_reply_is_refused_when_the_customer_wrote_meanwhile,
    agents_start_a_conversation_by_texting_a_number,
    the_list_filters_by_assignee_participant_contact_channel_inbox_and_text,
    the_list_sorts_by_conversation_and_message_time,
    paging_recent_messages_is_stable_while_customers_write_in,
    paging_oldest_conversations_is_stable_while_customers_write_in,
    counts_agree_with_the_lists,
    a_page_of_100_costs_as_many_statements_as_a_page_of_5,
);
