//! Contacts (API.md, Contacts), as a support team uses its directory: naming a customer
//! whatever way their number was typed, searching, favorites of one's own, an opt-out taken
//! by phone, a customer's history across tabs, merging duplicates, and CSV in and out.

use serde_json::{Value, json};

use crate::fixtures::{self, Channel, customer, messages, sms_channel};
use crate::races::{ROUNDS, at_once, side_by_side};
use crate::support::{Reply, Session, TestApp, into_reply};
use crate::{on_both_backends, on_both_backends_with};

/// An admin, a manager and two agents; the agents and the manager in one inbox with an
/// sms channel.
struct Team {
    admin: Session,
    manager: Session,
    agent: Session,
    other_agent: Session,
    sms: Channel,
}

async fn team(app: &TestApp) -> Team {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let other_agent = app.user(&admin, "agent", "Bea Agent").await;
    let inbox = fixtures::inbox(
        app,
        &admin,
        "Support",
        json!({}),
        &[&manager, &agent, &other_agent],
    )
    .await;
    let sms = sms_channel(app, &admin, inbox, "+14155550000").await;
    Team {
        admin,
        manager,
        agent,
        other_agent,
        sms,
    }
}

async fn create(app: &TestApp, session: &Session, body: Value) -> Value {
    app.post("/v1/contacts", &session.token, body)
        .await
        .expect(201)
        .body
}

async fn search(app: &TestApp, session: &Session, query: &str) -> Vec<i64> {
    let reply = app
        .get(&format!("/v1/contacts?{query}"), &session.token)
        .await
        .expect(200);
    fixtures::ids(&reply)
}

fn id(body: &Value) -> i64 {
    body["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {body}"))
}

fn q(text: &str) -> String {
    format!("q={}", urlencode(text))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn import(app: &TestApp, session: &Session, content_type: &str, csv: &str) -> Reply {
    let response = app
        .client()
        .post(app.url("/v1/contacts/import"))
        .bearer_auth(&session.token)
        .header("Content-Type", content_type)
        .body(csv.to_string())
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

async fn export(app: &TestApp, session: &Session) -> (u16, Option<String>, String) {
    let response = app
        .client()
        .get(app.url("/v1/contacts/export"))
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("request reaches the server");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    (status, content_type, response.text().await.expect("body"))
}

// ---------------------------------------------------------------------------------------

async fn number_formats_normalize_to_one_contact(app: TestApp) {
    let team = team(&app).await;
    let ana = create(
        &app,
        &team.agent,
        json!({"name": "Ana Lima", "phone_numbers": ["(415) 555-2671"], "email": "Ana@Lima.example", "company": "Acme Freight"}),
    )
    .await;
    assert_eq!(ana["phone_numbers"], json!(["+14155552671"]));
    assert_eq!(ana["email"], "ana@lima.example");
    assert_eq!(ana["favorite"], false);
    assert_eq!(ana["opted_out"], json!({"sms": false}));

    // The same number typed another way is the same customer.
    app.post(
        "/v1/contacts",
        &team.agent.token,
        json!({"name": "Ana again", "phone_numbers": ["+1 415 555 2671"]}),
    )
    .await
    .expect_problem(409, "duplicate");
    let reply = fixtures::inbound(
        &app,
        team.sms.id,
        &team.sms.secret,
        &fixtures::external_id(),
        "415.555.2671",
        "Hi, it's Ana",
    )
    .await
    .expect(200);
    let conversation = reply.body["conversation_id"].as_i64().expect("id");
    let seen = fixtures::conversation(&app, &team.agent, conversation).await;
    assert_eq!(seen["contact"]["id"], id(&ana));
    assert_eq!(seen["contact"]["name"], "Ana Lima");

    for query in [
        "555-2671",
        "(415) 555-2671",
        "4155552671",
        "+14155552671",
        "2671",
        "ana",
        "LIMA",
        "ana lima",
        "acme",
        "freight",
        "ana@lima.example",
    ] {
        assert_eq!(
            search(&app, &team.other_agent, &q(query)).await,
            vec![id(&ana)],
            "{query}"
        );
    }
    for query in ["bob", "555-9999", "ana smith", "%", "!!"] {
        assert!(
            search(&app, &team.agent, &q(query)).await.is_empty(),
            "{query}"
        );
    }

    // Another organization neither finds nor opens it.
    let stranger = app.other_org("Globex").await;
    assert!(search(&app, &stranger, &q("ana")).await.is_empty());
    app.get(&format!("/v1/contacts/{}", id(&ana)), &stranger.token)
        .await
        .expect_problem(404, "not_found");
    // Bad input is refused with its reason.
    let bad = app
        .post(
            "/v1/contacts",
            &team.agent.token,
            json!({"name": "X", "phone_numbers": ["12"], "email": "nope"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["email", "phone_numbers[0]"]);
    app.post("/v1/contacts", &team.agent.token, json!({}))
        .await
        .expect_problem(422, "validation_failed");
    app.post("/v1/contacts", &team.agent.token, json!(["Ana"]))
        .await
        .expect_problem(400, "bad_request");
}

async fn the_directory_pages_by_name_and_edits_follow(app: TestApp) {
    let team = team(&app).await;
    let mut made = Vec::new();
    for name in ["carla", "Bruno", "ana", "Dora", "Élodie"] {
        made.push((
            name,
            id(&create(&app, &team.agent, json!({"name": name})).await),
        ));
    }
    let unnamed = id(&create(&app, &team.agent, json!({"phone_numbers": [customer(7)]})).await);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/contacts?limit=2&cursor={cursor}"),
            None => "/v1/contacts?limit=2".to_string(),
        };
        let page = app.get(&path, &team.agent.token).await.expect(200);
        seen.extend(fixtures::ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let by_name = |name: &str| made.iter().find(|(n, _)| *n == name).map(|(_, id)| *id);
    let expected: Vec<i64> = ["ana", "Bruno", "carla", "Dora", "Élodie"]
        .iter()
        .filter_map(|name| by_name(name))
        .chain([unnamed])
        .collect();
    assert_eq!(seen, expected);

    // A patch: fields left out stay, null clears, phone_numbers replaces.
    let dora = by_name("Dora").expect("dora");
    let patched = app
        .patch(
            &format!("/v1/contacts/{dora}"),
            &team.agent.token,
            json!({"name": "Dora Souza", "company": "Initech", "phone_numbers": ["415 555 0199"]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(patched["name"], "Dora Souza");
    assert_eq!(patched["phone_numbers"], json!(["+14155550199"]));
    assert_eq!(search(&app, &team.agent, &q("souza")).await, vec![dora]);
    assert_eq!(search(&app, &team.agent, &q("0199")).await, vec![dora]);
    let cleared = app
        .patch(
            &format!("/v1/contacts/{dora}"),
            &team.agent.token,
            json!({"company": null, "phone_numbers": []}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["company"], Value::Null);
    assert_eq!(cleared["name"], "Dora Souza");
    assert!(search(&app, &team.agent, &q("initech")).await.is_empty());
    assert!(search(&app, &team.agent, &q("0199")).await.is_empty());
    // A number of someone else's is refused.
    app.patch(
        &format!("/v1/contacts/{dora}"),
        &team.agent.token,
        json!({"phone_numbers": [customer(7)]}),
    )
    .await
    .expect_problem(409, "duplicate");
    app.patch(
        &format!("/v1/contacts/{dora}"),
        &team.agent.token,
        json!({"nickname": "D"}),
    )
    .await
    .expect_problem(400, "bad_request");
    app.get("/v1/contacts?cursor=garbage", &team.agent.token)
        .await
        .expect_problem(400, "bad_request");
    let activity = app
        .get(&format!("/v1/contacts/{dora}/activity"), &team.agent.token)
        .await
        .expect(200)
        .body;
    let actions: Vec<&str> = activity["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["created", "updated", "updated"]);
    assert_eq!(
        activity["items"][1]["data"]["fields"],
        json!(["name", "phone_numbers", "company"])
    );
}

async fn favorites_belong_to_each_user(app: TestApp) {
    let team = team(&app).await;
    let ana = id(&create(&app, &team.agent, json!({"name": "Ana"})).await);
    let bruno = id(&create(&app, &team.agent, json!({"name": "Bruno"})).await);
    let path = format!("/v1/contacts/{ana}/favorite");
    let marked = app
        .put(&path, &team.agent.token, None)
        .await
        .expect(200)
        .body;
    assert_eq!(marked["favorite"], true);
    app.put(&path, &team.agent.token, None).await.expect(200);

    assert_eq!(search(&app, &team.agent, "favorite=true").await, vec![ana]);
    assert!(
        search(&app, &team.other_agent, "favorite=true")
            .await
            .is_empty()
    );
    assert_eq!(search(&app, &team.other_agent, "").await, vec![ana, bruno]);
    let mine = app
        .get(&format!("/v1/contacts/{ana}"), &team.agent.token)
        .await
        .expect(200)
        .body;
    let theirs = app
        .get(&format!("/v1/contacts/{ana}"), &team.other_agent.token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        (mine["favorite"].clone(), theirs["favorite"].clone()),
        (json!(true), json!(false))
    );

    let unmarked = app.delete(&path, &team.agent.token).await.expect(200).body;
    assert_eq!(unmarked["favorite"], false);
    assert!(search(&app, &team.agent, "favorite=true").await.is_empty());
    app.put("/v1/contacts/999999/favorite", &team.agent.token, None)
        .await
        .expect_problem(404, "not_found");
}

async fn a_manual_opt_out_blocks_texts_while_notes_still_work(app: TestApp) {
    let team = team(&app).await;
    let conversation = team
        .sms
        .text(&app, &customer(1), "Please call me instead")
        .await;
    let contact = fixtures::conversation(&app, &team.agent, conversation).await["contact"]["id"]
        .as_i64()
        .expect("contact id");
    let path = format!("/v1/contacts/{contact}/opt-out");
    let opted = app
        .put(&path, &team.agent.token, Some(json!({"sms": true})))
        .await
        .expect(200)
        .body;
    assert_eq!(opted["opted_out"], json!({"sms": true}));
    let send = format!("/v1/conversations/{conversation}/messages");
    app.post(&send, &team.agent.token, json!({"body": "Hello?"}))
        .await
        .expect_problem(422, "contact_opted_out");
    app.post(
        &send,
        &team.agent.token,
        json!({"body": "Customer asked by phone to stop texts", "kind": "note"}),
    )
    .await
    .expect(201);

    // Recorded with who did it, and announced to the team.
    let trail = app
        .get(
            &format!("/v1/contacts/{contact}/activity"),
            &team.manager.token,
        )
        .await
        .expect(200)
        .body;
    let last = trail["items"]
        .as_array()
        .and_then(|items| items.last())
        .cloned()
        .expect("entry");
    assert_eq!(last["action"], "opted_out");
    assert_eq!(last["actor_id"], team.agent.user_id);
    assert_eq!(last["data"]["source"], "manual");
    let events = crate::realtime::replay_all(&app, &app.url(""), &team.other_agent, 0).await;
    let announced = events
        .iter()
        .rfind(|event| {
            event["type"] == "contact.updated" && event["data"]["contact"]["id"] == contact
        })
        .expect("a contact.updated event");
    assert_eq!(
        announced["data"]["contact"]["opted_out"],
        json!({"sms": true})
    );

    // Back in: texts go again.
    app.put(&path, &team.agent.token, Some(json!({"sms": false})))
        .await
        .expect(200);
    app.post(&send, &team.agent.token, json!({"body": "Hello again"}))
        .await
        .expect(201);
    app.put(&path, &team.agent.token, Some(json!({"sms": "yes"})))
        .await
        .expect_problem(400, "bad_request");
    app.put(&path, &team.agent.token, None)
        .await
        .expect_problem(400, "bad_request");
}

async fn history_spans_tabs_and_hides_what_the_caller_may_not_see(app: TestApp) {
    let team = team(&app).await;
    let private_inbox =
        fixtures::inbox(&app, &team.admin, "VIP", json!({}), &[&team.manager]).await;
    let vip = sms_channel(&app, &team.admin, private_inbox, "+14155550001").await;
    let number = customer(5);
    let first = team.sms.text(&app, &number, "First question").await;
    app.post(
        &format!("/v1/conversations/{first}/close"),
        &team.agent.token,
        json!({}),
    )
    .await
    .expect(200);
    fixtures::tick().await;
    let elsewhere = vip.text(&app, &number, "Asking the VIP line").await;
    fixtures::tick().await;
    let spam = team.sms.text(&app, &number, "WIN A PRIZE").await;
    app.post(
        &format!("/v1/conversations/{spam}/close"),
        &team.manager.token,
        json!({"spam": true}),
    )
    .await
    .expect(200);
    fixtures::tick().await;
    let latest = team.sms.text(&app, &number, "Second question").await;
    let contact = fixtures::conversation(&app, &team.agent, latest).await["contact"]["id"]
        .as_i64()
        .expect("contact");
    let history = |session: &Session, query: &str| {
        let path = format!("/v1/contacts/{contact}/conversations?{query}");
        let app = app.clone();
        let token = session.token.clone();
        async move { fixtures::ids(&app.get(&path, &token).await.expect(200)) }
    };
    // Newest first across open and closed; the agent is not in the VIP inbox and spam is
    // the admin's alone.
    assert_eq!(history(&team.agent, "").await, vec![latest, first]);
    assert_eq!(
        history(&team.manager, "").await,
        vec![latest, elsewhere, first]
    );
    assert_eq!(
        history(&team.admin, "").await,
        vec![latest, spam, elsewhere, first]
    );
    let page = app
        .get(
            &format!("/v1/contacts/{contact}/conversations?limit=2"),
            &team.admin.token,
        )
        .await
        .expect(200);
    assert_eq!(fixtures::ids(&page), vec![latest, spam]);
    let cursor = page.body["next_cursor"].as_str().expect("more");
    assert_eq!(
        history(&team.admin, &format!("limit=2&cursor={cursor}")).await,
        vec![elsewhere, first]
    );
}

async fn merging_moves_numbers_conversations_favorites_and_opt_outs(app: TestApp) {
    let team = team(&app).await;
    let other_inbox = fixtures::inbox(
        &app,
        &team.admin,
        "Sales",
        json!({}),
        &[&team.manager, &team.agent],
    )
    .await;
    let sales = sms_channel(&app, &team.admin, other_inbox, "+14155550002").await;
    let keep = id(&create(
        &app,
        &team.agent,
        json!({"name": "Ana Lima", "phone_numbers": [customer(1)]}),
    )
    .await);
    // The same customer texting from a second phone, opted out there.
    let old = team
        .sms
        .text(&app, &customer(2), "From my work phone")
        .await;
    app.post(
        &format!("/v1/conversations/{old}/close"),
        &team.agent.token,
        json!({}),
    )
    .await
    .expect(200);
    let open = sales.text(&app, &customer(2), "STOP").await;
    let other = fixtures::conversation(&app, &team.agent, open).await["contact"]["id"]
        .as_i64()
        .expect("contact");
    app.patch(
        &format!("/v1/contacts/{other}"),
        &team.agent.token,
        json!({"email": "ana@work.example", "notes": "Prefers e-mail"}),
    )
    .await
    .expect(200);
    app.put(
        &format!("/v1/contacts/{other}/favorite"),
        &team.other_agent.token,
        None,
    )
    .await
    .expect(200);

    let path = format!("/v1/contacts/{keep}/merge");
    app.post(&path, &team.agent.token, json!({"other_id": other}))
        .await
        .expect_problem(403, "forbidden");
    app.post(&path, &team.manager.token, json!({"other_id": keep}))
        .await
        .expect_problem(422, "validation_failed");
    let merged = app
        .post(&path, &team.manager.token, json!({"other_id": other}))
        .await
        .expect(200)
        .body;
    assert_eq!(merged["id"], keep);
    assert_eq!(merged["name"], "Ana Lima");
    assert_eq!(merged["phone_numbers"], json!([customer(1), customer(2)]));
    assert_eq!(merged["email"], "ana@work.example");
    assert_eq!(merged["notes"], "Prefers e-mail");
    assert_eq!(merged["opted_out"], json!({"sms": true}));

    app.get(&format!("/v1/contacts/{other}"), &team.manager.token)
        .await
        .expect_problem(404, "not_found");
    // The merged-in contact is gone: named in the body it is a bad `other_id`, in the path an
    // unknown contact, whichever of the two ids is the lower.
    let refused = app
        .post(&path, &team.manager.token, json!({"other_id": other}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "other_id");
    app.post(
        &format!("/v1/contacts/{other}/merge"),
        &team.manager.token,
        json!({"other_id": keep}),
    )
    .await
    .expect_problem(404, "not_found");
    for conversation in [old, open] {
        let seen = fixtures::conversation(&app, &team.manager, conversation).await;
        assert_eq!(seen["contact"]["id"], keep);
    }
    let favorite = app
        .get(&format!("/v1/contacts/{keep}"), &team.other_agent.token)
        .await
        .expect(200)
        .body;
    assert_eq!(favorite["favorite"], true);
    assert_eq!(
        fixtures::ids(
            &app.get(
                &format!("/v1/contacts/{keep}/conversations"),
                &team.manager.token
            )
            .await
            .expect(200)
        )
        .len(),
        2
    );
    // The second phone's next message continues the open conversation, on the kept contact.
    let again = sales.text(&app, &customer(2), "START").await;
    assert_eq!(again, open);
    let trail = app
        .get(
            &format!("/v1/contacts/{keep}/activity"),
            &team.manager.token,
        )
        .await
        .expect(200)
        .body;
    let merge = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|entry| entry["action"] == "merged")
        .cloned()
        .expect("merged entry");
    assert_eq!(merge["data"]["other_id"], other);
    assert_eq!(merge["data"]["conversations"], 2);
    assert_eq!(merge["actor_id"], team.manager.user_id);
    // Authored messages follow too: the customer's messages name the kept contact.
    let authors: Vec<Value> = messages(&app, &team.manager, old)
        .await
        .iter()
        .filter(|message| message["author"]["type"] == "contact")
        .map(|message| message["author"]["id"].clone())
        .collect();
    assert_eq!(authors, vec![json!(keep)]);
}

async fn a_merge_that_would_leave_two_open_conversations_on_one_channel_is_refused(app: TestApp) {
    let team = team(&app).await;
    let first = team.sms.text(&app, &customer(1), "Phone one").await;
    let second = team.sms.text(&app, &customer(2), "Phone two").await;
    let contact_of = |conversation: i64| {
        let app = app.clone();
        let session = team.agent.clone();
        async move {
            fixtures::conversation(&app, &session, conversation).await["contact"]["id"]
                .as_i64()
                .expect("contact")
        }
    };
    let (keep, other) = (contact_of(first).await, contact_of(second).await);
    let path = format!("/v1/contacts/{keep}/merge");
    app.post(&path, &team.manager.token, json!({"other_id": other}))
        .await
        .expect_problem(422, "validation_failed");
    // Nothing moved.
    assert_eq!(contact_of(second).await, other);
    app.post(
        &format!("/v1/conversations/{second}/close"),
        &team.agent.token,
        json!({}),
    )
    .await
    .expect(200);
    app.post(&path, &team.manager.token, json!({"other_id": other}))
        .await
        .expect(200);
    assert_eq!(contact_of(second).await, keep);
}

async fn deleting_a_contact_keeps_history_and_forgets_the_person(app: TestApp) {
    let team = team(&app).await;
    let conversation = team.sms.text(&app, &customer(3), "Hello").await;
    let contact = fixtures::conversation(&app, &team.agent, conversation).await["contact"]["id"]
        .as_i64()
        .expect("contact");
    app.patch(
        &format!("/v1/contacts/{contact}"),
        &team.agent.token,
        json!({"name": "Carla Dias", "email": "carla@example.com"}),
    )
    .await
    .expect(200);
    app.put(
        &format!("/v1/contacts/{contact}/favorite"),
        &team.agent.token,
        None,
    )
    .await
    .expect(200);
    app.delete(&format!("/v1/contacts/{contact}"), &team.agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.delete(&format!("/v1/contacts/{contact}"), &team.manager.token)
        .await
        .expect(204);
    let seen = fixtures::conversation(&app, &team.agent, conversation).await;
    assert_eq!(seen["contact"]["id"], contact);
    assert_eq!(seen["contact"]["name"], Value::Null);
    assert_eq!(seen["contact"]["email"], Value::Null);
    assert_eq!(seen["contact"]["favorite"], false);
    assert_eq!(seen["contact"]["phone_numbers"], json!([customer(3)]));
    assert!(search(&app, &team.agent, &q("carla")).await.is_empty());
    assert_eq!(messages(&app, &team.agent, conversation).await.len(), 1);

    // One without any conversation is gone altogether.
    let lead = id(&create(&app, &team.agent, json!({"name": "Cold Lead"})).await);
    app.delete(&format!("/v1/contacts/{lead}"), &team.admin.token)
        .await
        .expect(204);
    app.get(&format!("/v1/contacts/{lead}"), &team.admin.token)
        .await
        .expect_problem(404, "not_found");
}

const IMPORT: &str = "name,phone_numbers,email,company,notes\r
Ana Lima,(415) 555-2671;+1 415 555 0001,ana@example.com,Acme,\"Likes calls, not texts\"\r
Bad Phone,12345,,,\r
Bad Mail,,not-an-email,,\r
\"Multi
Line\",,multi@example.com,,\r
Carla Dias,415-555-0003,,\"Dias, Ltd\",\r
,,,,\r
Updated Name,+14155550003,carla@example.com,,\r
";

async fn a_csv_import_reports_bad_rows_and_keeps_the_good_ones(app: TestApp) {
    let team = team(&app).await;
    let reply = import(&app, &team.manager, "text/csv", IMPORT)
        .await
        .expect(200);
    assert_eq!(reply.body["created"], 3, "{}", reply.body);
    assert_eq!(reply.body["updated"], 1, "{}", reply.body);
    let failed: Vec<(i64, String)> = reply.body["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|failure| {
            (
                failure["row"].as_i64().expect("row"),
                failure["code"].as_str().expect("code").to_string(),
            )
        })
        .collect();
    // Rows as a spreadsheet shows them: the header is row 1; the quoted line break makes
    // the multi-line name take two lines.
    assert_eq!(
        failed,
        vec![
            (3, "validation_failed".to_string()),
            (4, "validation_failed".to_string()),
            (8, "validation_failed".to_string()),
        ]
    );
    let ana = search(&app, &team.agent, &q("ana lima")).await;
    assert_eq!(ana.len(), 1);
    let ana = app
        .get(&format!("/v1/contacts/{}", ana[0]), &team.agent.token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        ana["phone_numbers"],
        json!(["+14155552671", "+14155550001"])
    );
    assert_eq!(ana["notes"], "Likes calls, not texts");
    let carla = search(&app, &team.agent, &q("0003")).await;
    assert_eq!(carla.len(), 1);
    let carla = app
        .get(&format!("/v1/contacts/{}", carla[0]), &team.agent.token)
        .await
        .expect(200)
        .body;
    assert_eq!(carla["name"], "Updated Name");
    assert_eq!(carla["company"], "Dias, Ltd");
    assert_eq!(carla["email"], "carla@example.com");
    assert_eq!(search(&app, &team.agent, &q("multi")).await.len(), 1);

    // The import is announced once for its batch (not a frame per row), naming the contacts
    // it created or updated.
    let events = crate::realtime::replay_all(&app, &app.url(""), &team.other_agent, 0).await;
    let imported: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == "contacts.imported")
        .collect();
    assert_eq!(imported.len(), 1, "{events:?}");
    let mut announced: Vec<i64> = imported[0]["data"]["contact_ids"]
        .as_array()
        .expect("contact_ids")
        .iter()
        .map(|id| id.as_i64().expect("id"))
        .collect();
    announced.sort_unstable();
    let mut listed = search(&app, &team.agent, "limit=100").await;
    listed.sort_unstable();
    assert_eq!(announced, listed);
    assert!(
        !events
            .iter()
            .any(|event| event["type"] == "contact.updated")
    );

    // The whole file is refused when it is not the CSV the endpoint takes.
    import(&app, &team.manager, "text/csv", "name,fax\r\nAna,123\r\n")
        .await
        .expect_problem(400, "bad_request");
    import(&app, &team.manager, "application/json", IMPORT)
        .await
        .expect_problem(415, "unsupported_media_type");
    import(&app, &team.agent, "text/csv", IMPORT)
        .await
        .expect_problem(403, "forbidden");
    assert_eq!(search(&app, &team.agent, "limit=100").await.len(), 3);
}

async fn an_export_round_trips_through_an_import(app: TestApp) {
    let team = team(&app).await;
    create(
        &app,
        &team.agent,
        json!({"name": "=HYPERLINK(\"http://evil\")", "phone_numbers": [customer(1), customer(2)], "notes": "line one\nline two, with comma"}),
    )
    .await;
    create(
        &app,
        &team.agent,
        json!({"name": "Bruno", "email": "bruno@example.com", "company": "Initech"}),
    )
    .await;
    let (status, content_type, csv) = export(&app, &team.manager).await;
    assert_eq!(status, 200);
    assert!(
        content_type
            .as_deref()
            .is_some_and(|value| value.starts_with("text/csv"))
    );
    assert!(
        csv.starts_with("name,phone_numbers,email,company,notes\r\n"),
        "{csv}"
    );
    assert!(csv.contains("'=HYPERLINK"), "a formula is defused: {csv}");
    assert!(
        csv.contains(&format!("{};{}", customer(1), customer(2))),
        "{csv}"
    );
    let (status, _, _) = export(&app, &team.agent).await;
    assert_eq!(status, 403);

    let elsewhere = app.other_org("Globex").await;
    let reply = import(&app, &elsewhere, "text/csv", &csv).await.expect(200);
    assert_eq!(reply.body["created"], 2, "{}", reply.body);
    assert_eq!(reply.body["failed"], json!([]));
    let copied = app
        .get("/v1/contacts", &elsewhere.token)
        .await
        .expect(200)
        .body;
    let original = app
        .get("/v1/contacts", &team.agent.token)
        .await
        .expect(200)
        .body;
    let shape = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|contact| {
                json!([
                    contact["name"],
                    contact["phone_numbers"],
                    contact["email"],
                    contact["company"],
                    contact["notes"]
                ])
            })
            .collect()
    };
    assert_eq!(shape(&copied), shape(&original));
}

// ---------------------------------------------------------------------------------------
// Races (PostgreSQL runs them side by side)

/// A contact with one number, the `n`th test customer's; answers its id.
async fn numbered(app: &TestApp, session: &Session, n: u32) -> i64 {
    id(&create(app, session, json!({"phone_numbers": [customer(n)]})).await)
}

/// Sorted statuses of a round, for comparing against an expected set.
fn sorted(replies: &[Reply]) -> Vec<u16> {
    let mut statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    statuses.sort_unstable();
    statuses
}

async fn two_agents_saving_one_number_at_once_make_one_contact(app: TestApp) {
    let team = team(&app).await;
    for round in 0..ROUNDS {
        let number = customer(100 + round);
        let sessions = [&team.agent, &team.other_agent];
        let replies = at_once(2, |i| {
            app.post(
                "/v1/contacts",
                &sessions[i].token,
                json!({"name": format!("Caller {round}"), "phone_numbers": [number]}),
            )
        })
        .await;
        assert_eq!(sorted(&replies), vec![201, 409], "round {round}");
        assert_eq!(search(&app, &team.agent, &q(&number)).await.len(), 1);
    }
}

async fn merging_one_pair_both_ways_at_once_keeps_one_contact(app: TestApp) {
    let team = team(&app).await;
    for round in 0..ROUNDS {
        let one = numbered(&app, &team.agent, 200 + round).await;
        let two = numbered(&app, &team.agent, 300 + round).await;
        let paths = [
            format!("/v1/contacts/{one}/merge"),
            format!("/v1/contacts/{two}/merge"),
        ];
        let others = [two, one];
        let replies = at_once(2, |i| {
            app.post(
                &paths[i],
                &team.manager.token,
                json!({"other_id": others[i]}),
            )
        })
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {:?}", sorted(&replies));
        let lost = replies
            .iter()
            .find(|reply| reply.status != 200)
            .expect("a loser");
        assert!(
            [404, 422].contains(&lost.status) && lost.body["code"].is_string(),
            "round {round}: {} {}",
            lost.status,
            lost.body
        );
        let survivor = won[0].body["id"].as_i64().expect("id");
        let kept = app
            .get(&format!("/v1/contacts/{survivor}"), &team.agent.token)
            .await
            .expect(200)
            .body;
        assert_eq!(kept["phone_numbers"].as_array().map(Vec::len), Some(2));
    }
}

/// An agent adds a number to a contact while a manager merges it away: the number ends
/// on the surviving contact (the edit came first) or nowhere (the edit found it gone),
/// never on a deleted contact or on two.
async fn an_edit_racing_a_merge_is_kept_or_refused_whole(app: TestApp) {
    let team = team(&app).await;
    for round in 0..ROUNDS {
        let keep = numbered(&app, &team.agent, 400 + round).await;
        let other = numbered(&app, &team.agent, 500 + round).await;
        let added = customer(600 + round);
        let (manager, agent, app) = (&team.manager, &team.agent, &app);
        let edit = json!({"name": "Edited", "phone_numbers": [customer(500 + round), added]});
        let replies = at_once(2, |i| {
            let edit = edit.clone();
            async move {
                match i {
                    0 => {
                        let merge = json!({"other_id": other});
                        app.post(&format!("/v1/contacts/{keep}/merge"), &manager.token, merge)
                            .await
                    }
                    _ => {
                        app.patch(&format!("/v1/contacts/{other}"), &agent.token, edit)
                            .await
                    }
                }
            }
        })
        .await;
        assert_eq!(replies[0].status, 200, "round {round}: {}", replies[0].body);
        let edit = &replies[1];
        assert!(
            [200, 404].contains(&edit.status),
            "round {round}: {} {}",
            edit.status,
            edit.body
        );
        app.get(&format!("/v1/contacts/{other}"), &team.agent.token)
            .await
            .expect(404);
        let kept = app
            .get(&format!("/v1/contacts/{keep}"), &team.agent.token)
            .await
            .expect(200)
            .body;
        let numbers: Vec<&str> = kept["phone_numbers"]
            .as_array()
            .expect("numbers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let found = search(app, &team.agent, &q(&added)).await;
        if edit.status == 200 {
            assert!(numbers.contains(&added.as_str()), "round {round}: {kept}");
            assert_eq!(found, vec![keep], "round {round}");
        } else {
            assert_eq!(edit.body["code"], "not_found", "round {round}");
            assert!(!numbers.contains(&added.as_str()), "round {round}: {kept}");
            assert!(found.is_empty(), "round {round}: {found:?}");
        }
    }
}

/// A customer texts in from a number at the instant a manager imports it: one contact holds
/// the number, the conversation is that contact's, and the import row is taken (created or
/// updated), not lost to the race.
async fn an_import_racing_an_inbound_text_from_its_number_makes_one_contact(app: TestApp) {
    let team = team(&app).await;
    for round in 0..ROUNDS {
        let number = customer(700 + round);
        let csv = format!("name,phone_numbers\nImported {round},{number}\n");
        let (manager, sms, app) = (&team.manager, &team.sms, &app);
        let replies = at_once(2, |i| {
            let csv = csv.clone();
            let number = number.clone();
            async move {
                match i {
                    0 => import(app, manager, "text/csv", &csv).await,
                    _ => {
                        fixtures::inbound(
                            app,
                            sms.id,
                            &sms.secret,
                            &fixtures::external_id(),
                            &number,
                            "hello?",
                        )
                        .await
                    }
                }
            }
        })
        .await;
        let imported = &replies[0];
        assert_eq!(imported.status, 200, "round {round}: {}", imported.body);
        assert_eq!(
            imported.body["failed"],
            json!([]),
            "round {round}: {}",
            imported.body
        );
        let taken = imported.body["created"].as_i64().unwrap_or(0)
            + imported.body["updated"].as_i64().unwrap_or(0);
        assert_eq!(taken, 1, "round {round}: {}", imported.body);
        assert_eq!(replies[1].status, 200, "round {round}: {}", replies[1].body);
        let found = search(app, &team.agent, &q(&number)).await;
        assert_eq!(found.len(), 1, "round {round}: one contact holds {number}");
        let conversation_id = replies[1].body["conversation_id"].as_i64().expect("id");
        let conversation = fixtures::conversation(app, &team.agent, conversation_id).await;
        assert_eq!(
            conversation["contact"]["id"], found[0],
            "round {round}: {conversation}"
        );
        let contact = app
            .get(&format!("/v1/contacts/{}", found[0]), &team.agent.token)
            .await
            .expect(200)
            .body;
        assert_eq!(
            contact["name"],
            format!("Imported {round}"),
            "round {round}"
        );
    }
}

/// Favorites pressed in two tabs at once, and a favorite racing the contact's deletion:
/// each press answers success or 404, and the list agrees with what was answered.
async fn favorite_presses_at_once_leave_one_favorite(app: TestApp) {
    let team = team(&app).await;
    for round in 0..ROUNDS {
        let contact = id(&create(&app, &team.agent, json!({"name": format!("Fav {round}")})).await);
        let path = format!("/v1/contacts/{contact}/favorite");
        let replies = at_once(2, |_| app.put(&path, &team.agent.token, None)).await;
        for reply in &replies {
            assert!(
                reply.status < 300,
                "round {round}: {} {}",
                reply.status,
                reply.body
            );
        }
        let favorites = all_favorites(&app, &team.agent).await;
        assert_eq!(
            favorites.iter().filter(|id| **id == contact).count(),
            1,
            "round {round}"
        );
        let replies = at_once(2, |_| app.delete(&path, &team.agent.token)).await;
        for reply in &replies {
            assert!(
                reply.status < 300,
                "round {round}: {} {}",
                reply.status,
                reply.body
            );
        }
        assert!(!all_favorites(&app, &team.agent).await.contains(&contact));

        // A favorite racing the contact's deletion.
        let (manager, other_agent, path, app) = (&team.manager, &team.other_agent, &path, &app);
        let replies = at_once(2, |i| async move {
            match i {
                0 => {
                    app.delete(&format!("/v1/contacts/{contact}"), &manager.token)
                        .await
                }
                _ => app.put(path, &other_agent.token, None).await,
            }
        })
        .await;
        assert!(
            replies[0].status < 300,
            "round {round}: {}",
            replies[0].body
        );
        assert!(
            replies[1].status < 300 || replies[1].status == 404,
            "round {round}: {} {}",
            replies[1].status,
            replies[1].body
        );
        assert!(
            !all_favorites(app, &team.other_agent)
                .await
                .contains(&contact)
        );
    }
}

async fn all_favorites(app: &TestApp, session: &Session) -> Vec<i64> {
    let page = app
        .get("/v1/contacts?favorite=true&limit=100", &session.token)
        .await
        .expect(200)
        .body;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect()
}

on_both_backends!(
    number_formats_normalize_to_one_contact,
    the_directory_pages_by_name_and_edits_follow,
    favorites_belong_to_each_user,
    a_manual_opt_out_blocks_texts_while_notes_still_work,
    history_spans_tabs_and_hides_what_the_caller_may_not_see,
    merging_moves_numbers_conversations_favorites_and_opt_outs,
    a_merge_that_would_leave_two_open_conversations_on_one_channel_is_refused,
    deleting_a_contact_keeps_history_and_forgets_the_person,
    a_csv_import_reports_bad_rows_and_keeps_the_good_ones,
    an_export_round_trips_through_an_import,
);

on_both_backends_with!(side_by_side =>
    two_agents_saving_one_number_at_once_make_one_contact,
    merging_one_pair_both_ways_at_once_keeps_one_contact,
    an_edit_racing_a_merge_is_kept_or_refused_whole,
    an_import_racing_an_inbound_text_from_its_number_makes_one_contact,
    favorite_presses_at_once_leave_one_favorite,
);
