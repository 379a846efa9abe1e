//! Provider channels end to end: Twilio (sms/mms, WhatsApp) and Meta (the WhatsApp Cloud
//! API, Messenger, Instagram) against local fakes that check every request as the real
//! services do (`fake_twilio`, `fake_meta`). Inbound calls are signed as the providers sign
//! them, over the public URL the server is configured with.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::attachments::{png, upload};
use crate::fake_meta::{self, FakeGraph, hub_signature};
use crate::fake_twilio::{self, FakeTwilio, form_body, twilio_signature};
use crate::fixtures::{self, messages};
use crate::on_both_backends_run_by;
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};

/// What the providers call: the server as the operator published it.
const PUBLIC_URL: &str = "https://switchboard.example";
const CUSTOMER: &str = "+14155552671";
const BUSINESS: &str = "+14155550100";
const PATIENCE: Duration = Duration::from_secs(10);

/// The fakes a test talks to, started before the server that is configured with them.
pub(crate) struct Fakes {
    pub(crate) twilio: FakeTwilio,
    pub(crate) graph: FakeGraph,
}

async fn with_fakes<F, Fut>(backend: Backend, name: &str, body: F)
where
    F: FnOnce(TestApp, Arc<Fakes>) -> Fut,
    Fut: Future<Output = ()>,
{
    let fakes = Arc::new(Fakes {
        twilio: FakeTwilio::start().await,
        graph: FakeGraph::start().await,
    });
    let (twilio, graph) = (fakes.twilio.url.clone(), fakes.graph.url.clone());
    let used = fakes.clone();
    // Customers' files land in a directory of the test's own.
    support::run_with_data_dir(
        backend,
        name,
        move |config| {
            config.public_url = Some(PUBLIC_URL.into());
            config.twilio_api_url = twilio;
            config.meta_graph_url = graph;
            config.delivery_base_delay_ms = 50;
            config.delivery_max_attempts = 3;
            // Several writers, so that the races below run side by side.
            crate::races::side_by_side(config);
        },
        move |app| body(app, used),
    )
    .await;
    fakes.twilio.stop().await;
    fakes.graph.stop().await;
}

// ---- scenario helpers ----

async fn channel(app: &TestApp, admin: &Session, spec: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let name = format!(
        "Support {}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let inbox = app.inbox(admin, &name, json!({}), &[]).await;
    app.post(&format!("/v1/inboxes/{inbox}/channels"), &admin.token, spec)
        .await
        .expect(201)
        .body
}

async fn twilio_channel(app: &TestApp, admin: &Session, kind: &str) -> Value {
    channel(
        app,
        admin,
        json!({"type": kind, "provider": "twilio", "address": BUSINESS, "name": "Front desk",
               "credentials": {"account_sid": fake_twilio::ACCOUNT_SID, "auth_token": fake_twilio::AUTH_TOKEN}}),
    )
    .await
}

async fn meta_channel(app: &TestApp, admin: &Session, kind: &str, address: &str) -> Value {
    channel(
        app,
        admin,
        json!({"type": kind, "provider": "meta", "address": address, "name": "Social",
               "credentials": {"access_token": fake_meta::ACCESS_TOKEN, "app_secret": fake_meta::APP_SECRET,
                               "verify_token": fake_meta::VERIFY_TOKEN}}),
    )
    .await
}

fn id_of(channel: &Value) -> i64 {
    channel["id"].as_i64().expect("channel id")
}

/// A form POST to one of the channel's Twilio endpoints, signed with `token` (Twilio's
/// signature over the public URL) or with no signature at all.
async fn twilio_call(
    app: &TestApp,
    channel: i64,
    endpoint: &str,
    token: Option<&str>,
    params: &[(&str, &str)],
) -> Reply {
    let path = format!("/v1/channels/{channel}/{endpoint}");
    let mut request = app
        .client()
        .post(app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(params));
    if let Some(token) = token {
        let signature = twilio_signature(token, &format!("{PUBLIC_URL}{path}"), params);
        request = request.header("X-Twilio-Signature", signature);
    }
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// A Meta webhook POST, signed with `secret`.
async fn meta_call(app: &TestApp, channel: i64, secret: &str, payload: &Value) -> Reply {
    let raw = serde_json::to_vec(payload).expect("JSON");
    let response = app
        .client()
        .post(app.url(&format!("/v1/channels/{channel}/meta")))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", hub_signature(secret, &raw))
        .body(raw)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

/// The single conversation of the organization (asserting there is exactly one).
async fn only_conversation(app: &TestApp, admin: &Session) -> Value {
    let list = fixtures::list(app, admin, "status=open").await;
    let items = list.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1, "conversations: {}", list.body);
    items[0].clone()
}

async fn conversation_count(app: &TestApp, admin: &Session) -> usize {
    let list = fixtures::list(app, admin, "status=open").await;
    list.body["items"].as_array().map_or(0, Vec::len)
}

/// Waits until the newest message of the conversation that `wanted` accepts shows up.
async fn wait_for_message(
    app: &TestApp,
    admin: &Session,
    conversation: i64,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = messages(app, admin, conversation).await;
        if let Some(message) = found.iter().find(|message| wanted(message)) {
            return message.clone();
        }
        assert!(
            Instant::now() < deadline,
            "waited in vain for {what}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn reply(app: &TestApp, admin: &Session, conversation: i64, body: Value) -> Reply {
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &admin.token,
        body,
    )
    .await
}

// ---- Twilio ----

async fn a_twilio_mms_is_stored_with_its_image_and_a_wrong_signature_changes_nothing(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let channel = twilio_channel(&app, &admin, "sms").await;
    let id = id_of(&channel);
    assert_eq!(
        channel["callback_url"],
        format!("{PUBLIC_URL}/v1/channels/{id}/twilio")
    );
    assert_eq!(channel["provider"], "twilio");
    let media = fakes.twilio.add_media(png(), "image/png");
    let params = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", fake_twilio::ACCOUNT_SID),
        ("From", CUSTOMER),
        ("To", BUSINESS),
        ("Body", "Here is the broken part"),
        ("NumMedia", "1"),
        ("MediaUrl0", media.as_str()),
        ("MediaContentType0", "image/png"),
    ];
    // Signed with another token, or not at all: refused, nothing stored, nothing fetched.
    twilio_call(
        &app,
        id,
        "twilio",
        Some("0123456789abcdef0123456789abcdef"),
        &params,
    )
    .await
    .expect_problem(401, "unauthenticated");
    twilio_call(&app, id, "twilio", None, &params)
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(conversation_count(&app, &admin).await, 0);
    assert!(fakes.twilio.media_fetches().is_empty());

    let stored = twilio_call(&app, id, "twilio", Some(fake_twilio::AUTH_TOKEN), &params)
        .await
        .expect(200);
    assert!(
        stored
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/xml")),
        "TwiML is XML: {:?}",
        stored.header("content-type")
    );
    let conversation = only_conversation(&app, &admin).await;
    assert_eq!(conversation["contact"]["phone_numbers"][0], CUSTOMER);
    let conversation_id = conversation["id"].as_i64().expect("id");
    let found = messages(&app, &admin, conversation_id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["body"], "Here is the broken part");
    assert_eq!(found[0]["direction"], "inbound");
    let files = found[0]["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 1, "{found:?}");
    assert_eq!(files[0]["content_type"], "image/png");
    assert_eq!(files[0]["size"], png().len());
    // Fetched once, with the account's credentials (then from the CDN Twilio redirects to).
    let fetches = fakes.twilio.media_fetches();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert!(
        fetches[0].1,
        "the media was fetched without the account's credentials"
    );

    // Twilio retries a webhook it thinks failed: the same MessageSid stores nothing new.
    twilio_call(&app, id, "twilio", Some(fake_twilio::AUTH_TOKEN), &params)
        .await
        .expect(200);
    assert_eq!(messages(&app, &admin, conversation_id).await.len(), 1);
    assert_eq!(
        fakes.twilio.media_fetches().len(),
        1,
        "a replay fetched the media again"
    );

    // The credentials are never shown back.
    let listed = app
        .get(
            &format!("/v1/inboxes/{}/channels", channel["inbox_id"]),
            &admin.token,
        )
        .await
        .expect(200);
    let text = listed.body.to_string();
    assert!(!text.contains(fake_twilio::AUTH_TOKEN), "{text}");
    assert!(
        listed.body["items"][0].get("credentials").is_none(),
        "{text}"
    );
}

async fn a_reply_reaches_twilio_signed_and_its_delivered_callback_updates_it(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let channel = twilio_channel(&app, &admin, "sms").await;
    let id = id_of(&channel);
    twilio_call(
        &app,
        id,
        "twilio",
        Some(fake_twilio::AUTH_TOKEN),
        &[
            ("MessageSid", "SM1"),
            ("From", CUSTOMER),
            ("To", BUSINESS),
            ("Body", "Is it ready?"),
        ],
    )
    .await
    .expect(200);
    let conversation = only_conversation(&app, &admin).await["id"]
        .as_i64()
        .expect("id");
    let file = upload(&app, &admin, png(), "invoice.png").await;
    let sent = reply(
        &app,
        &admin,
        conversation,
        json!({"body": "Yes, come by at five", "attachment_ids": [file]}),
    )
    .await
    .expect(201);
    let message = sent.id();
    let sends = fakes.twilio.wait_for_sends(1).await;
    let request = &sends[0];
    assert!(request.authorized, "sent without the account's basic auth");
    assert_eq!(request.account_sid, fake_twilio::ACCOUNT_SID);
    assert_eq!(request.field("To"), Some(CUSTOMER));
    assert_eq!(request.field("From"), Some(BUSINESS));
    assert_eq!(request.field("Body"), Some("Yes, come by at five"));
    let media = request.all("MediaUrl");
    assert_eq!(media.len(), 1, "{:?}", request.fields);
    assert!(
        media[0].starts_with(&format!(
            "{PUBLIC_URL}/v1/public/attachments/{file}?expires="
        )),
        "{}",
        media[0]
    );
    assert_eq!(
        request.field("StatusCallback"),
        Some(format!("{PUBLIC_URL}/v1/channels/{id}/twilio/status").as_str())
    );
    let sid = request.sid.clone().expect("the fake named the message");
    wait_for_message(
        &app,
        &admin,
        conversation,
        "the reply marked sent",
        |found| found["id"] == message && found["delivery_status"] == "sent",
    )
    .await;

    // A forged callback changes nothing; Twilio's own moves the message on.
    let callback = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("To", CUSTOMER),
    ];
    twilio_call(
        &app,
        id,
        "twilio/status",
        Some("ffffffffffffffffffffffffffffffff"),
        &callback,
    )
    .await
    .expect_problem(401, "unauthenticated");
    twilio_call(
        &app,
        id,
        "twilio/status",
        Some(fake_twilio::AUTH_TOKEN),
        &callback,
    )
    .await
    .expect(200);
    let delivered = wait_for_message(&app, &admin, conversation, "delivered", |found| {
        found["id"] == message
    })
    .await;
    assert_eq!(delivered["delivery_status"], "delivered", "{delivered}");

    // Twilio refuses the next one: failed for good, with Twilio's code for the agent.
    fakes
        .twilio
        .fail_next(400, 21610, "Attempt to send to unsubscribed recipient");
    let refused = reply(&app, &admin, conversation, json!({"body": "Still there?"}))
        .await
        .expect(201)
        .id();
    let failed = wait_for_message(
        &app,
        &admin,
        conversation,
        "the refused reply failed",
        |found| found["id"] == refused && found["delivery_status"] == "failed",
    )
    .await;
    let error = failed["delivery_error"].as_str().unwrap_or_default();
    assert!(error.contains("21610"), "{failed}");
    assert_eq!(
        fakes.twilio.sent().len(),
        2,
        "a refused message was sent again"
    );
}

async fn whatsapp_through_twilio_keeps_the_prefix_off_the_contact_and_on_the_wire(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let id = id_of(&twilio_channel(&app, &admin, "whatsapp").await);
    let from = format!("whatsapp:{CUSTOMER}");
    let to = format!("whatsapp:{BUSINESS}");
    twilio_call(
        &app,
        id,
        "twilio",
        Some(fake_twilio::AUTH_TOKEN),
        &[
            ("MessageSid", "SMwa1"),
            ("From", &from),
            ("To", &to),
            ("Body", "Hola"),
            ("ProfileName", "Rosa"),
        ],
    )
    .await
    .expect(200);
    let conversation = only_conversation(&app, &admin).await;
    assert_eq!(conversation["contact"]["phone_numbers"][0], CUSTOMER);
    assert_eq!(conversation["contact"]["name"], "Rosa");
    reply(
        &app,
        &admin,
        conversation["id"].as_i64().expect("id"),
        json!({"body": "¡Hola Rosa!"}),
    )
    .await
    .expect(201);
    let sends = fakes.twilio.wait_for_sends(1).await;
    assert_eq!(sends[0].field("To"), Some(from.as_str()));
    assert_eq!(sends[0].field("From"), Some(to.as_str()));
}

// ---- Meta ----

async fn the_meta_handshake_echoes_the_challenge_only_for_the_verify_token(
    app: TestApp,
    _fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let channel = meta_channel(&app, &admin, "facebook", fake_meta::PAGE_ID).await;
    let id = id_of(&channel);
    assert_eq!(
        channel["callback_url"],
        format!("{PUBLIC_URL}/v1/channels/{id}/meta")
    );
    let handshake = |token: &str| {
        format!(
            "/v1/channels/{id}/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        )
    };
    let answer = app
        .client()
        .get(app.url(&handshake(fake_meta::VERIFY_TOKEN)))
        .send()
        .await
        .expect("request reaches the server");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.expect("body"), "1158201444");
    app.send(reqwest::Method::GET, &handshake("guess"), None, None)
        .await
        .expect_problem(403, "forbidden");
    // A webhook channel has no handshake.
    let inbox = app.inbox(&admin, "Other", json!({}), &[]).await;
    let plain = fixtures::sms_channel(&app, &admin, inbox, "+14155550199").await;
    app.send(
        reqwest::Method::GET,
        &format!(
            "/v1/channels/{}/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1",
            plain.id,
            fake_meta::VERIFY_TOKEN
        ),
        None,
        None,
    )
    .await
    .expect_problem(403, "forbidden");
}

async fn a_whatsapp_cloud_batch_of_three_messages_and_its_statuses_are_all_stored(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let id = id_of(&meta_channel(&app, &admin, "whatsapp", fake_meta::PHONE_NUMBER_ID).await);
    let now = chrono::Utc::now().timestamp();
    let (ana, bo) = ("14155552671", "447911123456");
    let photo = fakes.graph.add_media(png(), "image/png");
    let batch = fake_meta::whatsapp_messages(
        fake_meta::PHONE_NUMBER_ID,
        vec![
            fake_meta::whatsapp_text(ana, "wamid.ana-1", now - 5, "My order has not arrived"),
            fake_meta::whatsapp_image(
                ana,
                "wamid.ana-2",
                now - 4,
                &photo,
                "image/png",
                Some("The box"),
            ),
            fake_meta::whatsapp_text(bo, "wamid.bo-1", now - 3, "Do you ship to the UK?"),
        ],
        vec![(ana, "Ana"), (bo, "Bo")],
    );
    meta_call(&app, id, "not the app secret", &batch)
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(conversation_count(&app, &admin).await, 0);
    meta_call(&app, id, fake_meta::APP_SECRET, &batch)
        .await
        .expect(200);
    // Meta retries a batch it thinks failed: nothing is stored twice.
    meta_call(&app, id, fake_meta::APP_SECRET, &batch)
        .await
        .expect(200);

    let list = fixtures::list(&app, &admin, "status=open").await;
    let conversations = list.body["items"].as_array().expect("items").clone();
    assert_eq!(conversations.len(), 2, "{}", list.body);
    let of = |number: &str| {
        conversations
            .iter()
            .find(|conversation| conversation["contact"]["phone_numbers"][0] == number)
            .unwrap_or_else(|| panic!("no conversation with {number}: {conversations:?}"))
            .clone()
    };
    let with_ana = of("+14155552671");
    assert_eq!(with_ana["contact"]["name"], "Ana");
    assert_eq!(of("+447911123456")["contact"]["name"], "Bo");
    let ana_conversation = with_ana["id"].as_i64().expect("id");
    let found = messages(&app, &admin, ana_conversation).await;
    assert_eq!(found.len(), 2, "{found:?}");
    // Newest first: the picture with its caption, then the text.
    assert_eq!(found[0]["body"], "The box");
    assert_eq!(found[0]["attachments"][0]["content_type"], "image/png");
    assert_eq!(found[1]["body"], "My order has not arrived");
    let fetches = fakes.graph.media_fetches();
    assert!(
        !fetches.is_empty() && fetches.iter().all(|(_, authorized)| *authorized),
        "{fetches:?}"
    );

    // The reply goes out through the Cloud API; its statuses come back in a batch.
    let sent = reply(
        &app,
        &admin,
        ana_conversation,
        json!({"body": "It ships tomorrow"}),
    )
    .await
    .expect(201)
    .id();
    let sends = fakes.graph.wait_for_sends(1).await;
    assert!(sends[0].authorized, "sent without the access token");
    assert_eq!(
        sends[0].path,
        format!("/v21.0/{}/messages", fake_meta::PHONE_NUMBER_ID)
    );
    assert_eq!(sends[0].body["messaging_product"], "whatsapp");
    assert_eq!(sends[0].body["to"], ana);
    assert_eq!(sends[0].body["type"], "text");
    assert_eq!(sends[0].body["text"]["body"], "It ships tomorrow");
    let wamid = sends[0].id.clone().expect("the fake named the message");
    wait_for_message(&app, &admin, ana_conversation, "the reply sent", |found| {
        found["id"] == sent && found["delivery_status"] == "sent"
    })
    .await;
    let statuses = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
        {"field": "messages", "value": fake_meta::whatsapp_status(fake_meta::PHONE_NUMBER_ID, &wamid, "delivered", ana, now, None)["entry"][0]["changes"][0]["value"].clone()},
        {"field": "messages", "value": fake_meta::whatsapp_status(fake_meta::PHONE_NUMBER_ID, &wamid, "read", ana, now + 1, None)["entry"][0]["changes"][0]["value"].clone()},
        {"field": "messages", "value": fake_meta::whatsapp_status(fake_meta::PHONE_NUMBER_ID, "wamid.unknown", "delivered", ana, now, None)["entry"][0]["changes"][0]["value"].clone()},
    ]}]});
    meta_call(&app, id, fake_meta::APP_SECRET, &statuses)
        .await
        .expect(200);
    let delivered = wait_for_message(
        &app,
        &admin,
        ana_conversation,
        "the reply delivered",
        |found| found["id"] == sent && found["delivery_status"] == "delivered",
    )
    .await;
    assert!(delivered["delivery_error"].is_null(), "{delivered}");

    // A failed status carries Meta's code to the agent.
    let second = reply(
        &app,
        &admin,
        ana_conversation,
        json!({"body": "Tracking: 1Z999"}),
    )
    .await
    .expect(201)
    .id();
    let sends = fakes.graph.wait_for_sends(2).await;
    let second_wamid = sends[1].id.clone().expect("named");
    wait_for_message(&app, &admin, ana_conversation, "sent", |found| {
        found["id"] == second && found["delivery_status"] == "sent"
    })
    .await;
    let failure = fake_meta::whatsapp_status(
        fake_meta::PHONE_NUMBER_ID,
        &second_wamid,
        "failed",
        ana,
        now,
        Some((131026, "Message undeliverable")),
    );
    meta_call(&app, id, fake_meta::APP_SECRET, &failure)
        .await
        .expect(200);
    let failed = wait_for_message(&app, &admin, ana_conversation, "failed", |found| {
        found["id"] == second && found["delivery_status"] == "failed"
    })
    .await;
    assert!(
        failed["delivery_error"]
            .as_str()
            .unwrap_or_default()
            .contains("131026"),
        "{failed}"
    );

    // Ana reacts to the reply: her reaction shows on it; taking it back removes it.
    let react = |emoji: &str| {
        fake_meta::whatsapp_messages(
            fake_meta::PHONE_NUMBER_ID,
            vec![fake_meta::whatsapp_reaction(
                ana,
                &format!("wamid.react-{emoji}"),
                now,
                &wamid,
                emoji,
            )],
            vec![(ana, "Ana")],
        )
    };
    meta_call(&app, id, fake_meta::APP_SECRET, &react("👍"))
        .await
        .expect(200);
    let reacted = wait_for_message(&app, &admin, ana_conversation, "the reaction", |found| {
        found["id"] == sent
            && found["reactions"]
                .as_array()
                .is_some_and(|list| !list.is_empty())
    })
    .await;
    assert_eq!(reacted["reactions"][0]["emoji"], "👍");
    assert_eq!(reacted["reactions"][0]["contact"], true);
    meta_call(&app, id, fake_meta::APP_SECRET, &react(""))
        .await
        .expect(200);
    wait_for_message(
        &app,
        &admin,
        ana_conversation,
        "the reaction taken back",
        |found| found["id"] == sent && found["reactions"].as_array().is_some_and(Vec::is_empty),
    )
    .await;
    assert_eq!(
        messages(&app, &admin, ana_conversation).await.len(),
        4,
        "a reaction became a message"
    );
}

/// A voice note and a document on WhatsApp arrive as files, fetched through the Graph API
/// with the token; a file reply goes out as a media message with a link that expires.
async fn whatsapp_voice_notes_and_documents_arrive_as_files_and_files_go_out_as_links(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let id = id_of(&meta_channel(&app, &admin, "whatsapp", fake_meta::PHONE_NUMBER_ID).await);
    let now = chrono::Utc::now().timestamp();
    let ana = "14155552671";
    let voice = fakes
        .graph
        .add_media(crate::attachments::ogg(), "audio/ogg");
    let invoice = fakes
        .graph
        .add_media(crate::attachments::pdf(), "application/pdf");
    let batch = fake_meta::whatsapp_messages(
        fake_meta::PHONE_NUMBER_ID,
        vec![
            fake_meta::whatsapp_audio(ana, "wamid.voice", now - 2, &voice, true),
            fake_meta::whatsapp_document(
                ana,
                "wamid.doc",
                now - 1,
                &invoice,
                "application/pdf",
                "invoice-42.pdf",
            ),
        ],
        vec![(ana, "Ana")],
    );
    meta_call(&app, id, fake_meta::APP_SECRET, &batch)
        .await
        .expect(200);
    let conversation = only_conversation(&app, &admin).await["id"]
        .as_i64()
        .expect("id");
    let found = messages(&app, &admin, conversation).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0]["attachments"][0]["content_type"],
        "application/pdf"
    );
    assert_eq!(found[0]["attachments"][0]["filename"], "invoice-42.pdf");
    assert!(
        found[1]["attachments"][0]["content_type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("audio/")),
        "{found:?}"
    );

    let file = upload(&app, &admin, png(), "label.png").await;
    reply(
        &app,
        &admin,
        conversation,
        json!({"body": "Your label", "attachment_ids": [file]}),
    )
    .await
    .expect(201);
    let sends = fakes.graph.wait_for_sends(2).await;
    assert_eq!(sends[0].body["type"], "text");
    assert_eq!(sends[0].body["text"]["body"], "Your label");
    assert_eq!(sends[1].body["type"], "image");
    let link = sends[1].body["image"]["link"].as_str().unwrap_or_default();
    assert!(
        link.starts_with(&format!(
            "{PUBLIC_URL}/v1/public/attachments/{file}?expires="
        )),
        "{}",
        sends[1].body
    );
}

async fn a_messenger_message_is_answered_through_the_send_api(app: TestApp, fakes: Arc<Fakes>) {
    let admin = app.admin().await;
    let id = id_of(&meta_channel(&app, &admin, "facebook", fake_meta::PAGE_ID).await);
    let psid = "6789012345678901";
    let now = chrono::Utc::now().timestamp_millis();
    let payload = fake_meta::messenger_message(
        "page",
        fake_meta::PAGE_ID,
        psid,
        "m_first",
        now,
        Some("Are you open on Sunday?"),
        &[],
    );
    meta_call(&app, id, fake_meta::APP_SECRET, &payload)
        .await
        .expect(200);
    let conversation = only_conversation(&app, &admin).await;
    // The sender's page-scoped id is their address on the channel, not a phone number.
    assert_eq!(conversation["contact"]["phone_numbers"], json!([]));
    let conversation_id = conversation["id"].as_i64().expect("id");
    assert_eq!(
        messages(&app, &admin, conversation_id).await[0]["body"],
        "Are you open on Sunday?"
    );

    let sent = reply(
        &app,
        &admin,
        conversation_id,
        json!({"body": "Yes, ten to four"}),
    )
    .await
    .expect(201)
    .id();
    let sends = fakes.graph.wait_for_sends(1).await;
    assert!(sends[0].authorized);
    assert_eq!(sends[0].path, "/v21.0/me/messages");
    assert_eq!(sends[0].body["recipient"]["id"], psid);
    assert_eq!(sends[0].body["messaging_type"], "RESPONSE");
    assert_eq!(sends[0].body["message"]["text"], "Yes, ten to four");
    wait_for_message(&app, &admin, conversation_id, "the reply sent", |found| {
        found["id"] == sent && found["delivery_status"] == "sent"
    })
    .await;
    // A file alone goes as an attachment the platform fetches by its link.
    let file = upload(&app, &admin, png(), "map.png").await;
    reply(
        &app,
        &admin,
        conversation_id,
        json!({"attachment_ids": [file]}),
    )
    .await
    .expect(201);
    let sends = fakes.graph.wait_for_sends(2).await;
    let attachment = &sends[1].body["message"]["attachment"];
    assert_eq!(attachment["type"], "image", "{}", sends[1].body);
    assert!(
        attachment["payload"]["url"].as_str().is_some_and(
            |url| url.starts_with(&format!("{PUBLIC_URL}/v1/public/attachments/{file}"))
        ),
        "{}",
        sends[1].body
    );

    // Instagram speaks the same Messenger platform, on its own channel.
    let instagram = id_of(&meta_channel(&app, &admin, "instagram", fake_meta::IG_ACCOUNT_ID).await);
    let payload = fake_meta::messenger_message(
        "instagram",
        fake_meta::IG_ACCOUNT_ID,
        "17840000000000001",
        "m_ig",
        now,
        Some("Love the new colours"),
        &[],
    );
    meta_call(&app, instagram, fake_meta::APP_SECRET, &payload)
        .await
        .expect(200);
    assert_eq!(conversation_count(&app, &admin).await, 2);
    // A page's event posted to the Instagram channel belongs to neither: nothing stored.
    let stray = fake_meta::messenger_message(
        "page",
        fake_meta::PAGE_ID,
        psid,
        "m_stray",
        now,
        Some("stray"),
        &[],
    );
    meta_call(&app, instagram, fake_meta::APP_SECRET, &stray)
        .await
        .expect(200);
    assert_eq!(conversation_count(&app, &admin).await, 2);
}

async fn a_whatsapp_reply_after_24_hours_is_refused_until_the_customer_writes(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let id = id_of(&meta_channel(&app, &admin, "whatsapp", fake_meta::PHONE_NUMBER_ID).await);
    let ana = "14155552671";
    let day_ago = chrono::Utc::now().timestamp() - 25 * 3600;
    let old = fake_meta::whatsapp_messages(
        fake_meta::PHONE_NUMBER_ID,
        vec![fake_meta::whatsapp_text(
            ana,
            "wamid.old",
            day_ago,
            "Hello?",
        )],
        vec![(ana, "Ana")],
    );
    meta_call(&app, id, fake_meta::APP_SECRET, &old)
        .await
        .expect(200);
    let conversation = only_conversation(&app, &admin).await["id"]
        .as_i64()
        .expect("id");
    reply(
        &app,
        &admin,
        conversation,
        json!({"body": "Sorry for the wait"}),
    )
    .await
    .expect_problem(422, "channel_window_closed");
    // Notes stay inside: always allowed. Nothing went to Meta.
    reply(
        &app,
        &admin,
        conversation,
        json!({"body": "She wrote yesterday", "kind": "note"}),
    )
    .await
    .expect(201);
    assert!(fakes.graph.sent().is_empty());

    let fresh = fake_meta::whatsapp_messages(
        fake_meta::PHONE_NUMBER_ID,
        vec![fake_meta::whatsapp_text(
            ana,
            "wamid.new",
            chrono::Utc::now().timestamp(),
            "Anyone?",
        )],
        vec![(ana, "Ana")],
    );
    meta_call(&app, id, fake_meta::APP_SECRET, &fresh)
        .await
        .expect(200);
    reply(&app, &admin, conversation, json!({"body": "Here now"}))
        .await
        .expect(201);
    fakes.graph.wait_for_sends(1).await;
    // And the business still cannot start a WhatsApp conversation.
    app.post(
        "/v1/conversations",
        &admin.token,
        json!({"channel_id": id, "to": "+14155559999", "body": "Hi"}),
    )
    .await
    .expect_problem(422, "channel_cannot_initiate");
}

async fn provider_channels_check_what_they_are_given(app: TestApp, _fakes: Arc<Fakes>) {
    let admin = app.admin().await;
    let inbox = app.inbox(&admin, "Checks", json!({}), &[]).await;
    let path = format!("/v1/inboxes/{inbox}/channels");
    let twilio =
        json!({"account_sid": fake_twilio::ACCOUNT_SID, "auth_token": fake_twilio::AUTH_TOKEN});
    for (spec, field) in [
        (
            json!({"type": "facebook", "provider": "twilio", "address": "123", "name": "x", "credentials": twilio}),
            "provider",
        ),
        (
            json!({"type": "sms", "provider": "twilio", "address": BUSINESS, "name": "x"}),
            "credentials",
        ),
        (
            json!({"type": "sms", "provider": "twilio", "address": BUSINESS, "name": "x", "credentials": {"account_sid": "AC1"}}),
            "credentials",
        ),
        (
            json!({"type": "sms", "provider": "twilio", "address": BUSINESS, "name": "x", "credentials": twilio, "outbound_url": "https://bridge.example/send"}),
            "outbound_url",
        ),
        (
            json!({"type": "whatsapp", "provider": "meta", "address": "+14155550100", "name": "x", "credentials": {"access_token": "a", "app_secret": "b", "verify_token": "c"}}),
            "address",
        ),
        (
            json!({"type": "sms", "address": BUSINESS, "name": "x", "credentials": twilio}),
            "credentials",
        ),
    ] {
        let refused = app
            .post(&path, &admin.token, spec.clone())
            .await
            .expect_problem(422, "validation_failed");
        let fields: Vec<&str> = refused.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|error| error["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{spec} → {}", refused.body);
    }
    // Credentials are sealed at rest: the database never holds the token in clear.
    let created = app
        .post(&path, &admin.token, json!({"type": "sms", "provider": "twilio", "address": BUSINESS, "name": "x", "credentials": twilio}))
        .await
        .expect(201);
    let id = created.id();
    let store = app.running().state.store.clone();
    let sealed = actix_web::web::block(move || {
        store.read(|conn| {
            Ok(
                persistence::repo::channels::get_with_secret(conn, domain::ChannelId(id))?
                    .and_then(|(_, secrets)| secrets.credentials),
            )
        })
    })
    .await
    .expect("blocking pool")
    .expect("read")
    .expect("sealed credentials");
    assert!(!sealed.contains(fake_twilio::AUTH_TOKEN), "{sealed}");
    assert!(sealed.starts_with("v1."), "{sealed}");
}

/// Meta retries a batch while the first delivery is still being stored (and Twilio a
/// webhook): the copies arrive at the same instant, and everything is stored once.
async fn a_provider_retrying_at_once_stores_everything_once(app: TestApp, _fakes: Arc<Fakes>) {
    let admin = app.admin().await;
    let cloud = id_of(&meta_channel(&app, &admin, "whatsapp", fake_meta::PHONE_NUMBER_ID).await);
    let sms = id_of(&twilio_channel(&app, &admin, "sms").await);
    const COPIES: usize = 3;
    let now = chrono::Utc::now().timestamp();
    for round in 0..crate::races::ROUNDS {
        let wa_id = format!("1415555{:04}", 3000 + round);
        let batch = fake_meta::whatsapp_messages(
            fake_meta::PHONE_NUMBER_ID,
            vec![
                fake_meta::whatsapp_text(&wa_id, &format!("wamid.r{round}-1"), now, "first"),
                fake_meta::whatsapp_text(&wa_id, &format!("wamid.r{round}-2"), now, "second"),
            ],
            vec![(wa_id.as_str(), "Racer")],
        );
        let replies = crate::races::at_once(COPIES, |_| {
            meta_call(&app, cloud, fake_meta::APP_SECRET, &batch)
        })
        .await;
        assert_eq!(
            crate::races::statuses(&replies),
            [200; COPIES],
            "round {round}: {replies:?}"
        );
        let number = format!("+{wa_id}");
        let sid = format!("SMrace{round}");
        let from = format!("+1415556{:04}", 3000 + round);
        let params = [
            ("MessageSid", sid.as_str()),
            ("From", from.as_str()),
            ("To", BUSINESS),
            ("Body", "hello"),
        ];
        let replies = crate::races::at_once(COPIES, |_| {
            twilio_call(&app, sms, "twilio", Some(fake_twilio::AUTH_TOKEN), &params)
        })
        .await;
        assert_eq!(
            crate::races::statuses(&replies),
            [200; COPIES],
            "round {round}: {replies:?}"
        );
        for (address, expected) in [(number, 2), (from.clone(), 1)] {
            let found = app
                .get(
                    &format!("/v1/contacts?q={}", address.trim_start_matches('+')),
                    &admin.token,
                )
                .await
                .expect(200);
            let contacts = found.body["items"].as_array().expect("items");
            assert_eq!(
                contacts.len(),
                1,
                "round {round}: one contact for {address}: {}",
                found.body
            );
            let contact = contacts[0]["id"].as_i64().expect("id");
            let conversations =
                fixtures::list_ids(&app, &admin, &format!("contact_id={contact}")).await;
            assert_eq!(
                conversations.len(),
                1,
                "round {round}: one conversation for {address}"
            );
            let stored = messages(&app, &admin, conversations[0]).await;
            assert_eq!(
                stored.len(),
                expected,
                "round {round}: {address}: {stored:?}"
            );
        }
    }
}

/// The providers' own documented payloads (the fixtures) are read as they describe.
async fn the_providers_documented_payloads_are_stored_as_they_describe(
    app: TestApp,
    fakes: Arc<Fakes>,
) {
    let admin = app.admin().await;
    let body_of_newest = |conversation: &Value| conversation["last_message_preview"].clone();

    // Twilio: an MMS (its media link pointed at the fake), and a WhatsApp message.
    let sms = id_of(&twilio_channel(&app, &admin, "sms").await);
    let media = fakes.twilio.add_media(png(), "image/png");
    let mms: Vec<(String, String)> = fake_twilio::fixture_params("twilio_mms.json")
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "MediaUrl0" => (name, media.clone()),
            "MediaContentType0" => (name, "image/png".to_string()),
            _ => (name, value),
        })
        .collect();
    let pairs: Vec<(&str, &str)> = mms
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    twilio_call(&app, sms, "twilio", Some(fake_twilio::AUTH_TOKEN), &pairs)
        .await
        .expect(200);
    let stored = only_conversation(&app, &admin).await;
    assert_eq!(
        body_of_newest(&stored),
        "Here is a photo of the damaged package"
    );
    let found = messages(&app, &admin, stored["id"].as_i64().expect("id")).await;
    assert_eq!(
        found[0]["attachments"].as_array().map(Vec::len),
        Some(1),
        "{found:?}"
    );

    let whatsapp = id_of(
        &channel(&app, &admin, json!({"type": "whatsapp", "provider": "twilio",
            "address": fake_twilio::WHATSAPP_NUMBER.trim_start_matches("whatsapp:"), "name": "WA",
            "credentials": {"account_sid": fake_twilio::ACCOUNT_SID, "auth_token": fake_twilio::AUTH_TOKEN}}))
        .await,
    );
    let wa = fake_twilio::fixture_params("twilio_whatsapp.json");
    let pairs: Vec<(&str, &str)> = wa
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    twilio_call(
        &app,
        whatsapp,
        "twilio",
        Some(fake_twilio::AUTH_TOKEN),
        &pairs,
    )
    .await
    .expect(200);
    let list = fixtures::list(&app, &admin, &format!("channel_id={whatsapp}")).await;
    assert_eq!(
        list.body["items"][0]["contact"]["name"], "Jane Doe",
        "{}",
        list.body
    );

    // Meta: WhatsApp text and image, statuses of a message we never sent, Messenger, Instagram.
    let cloud = id_of(&meta_channel(&app, &admin, "whatsapp", fake_meta::PHONE_NUMBER_ID).await);
    for name in [
        "whatsapp_text.json",
        "whatsapp_image.json",
        "whatsapp_failed_status.json",
    ] {
        meta_call(
            &app,
            cloud,
            fake_meta::APP_SECRET,
            &fake_meta::fixture(name),
        )
        .await
        .expect(200);
    }
    for status in fake_meta::fixture("whatsapp_statuses.json")
        .as_array()
        .expect("an array of webhooks")
    {
        meta_call(&app, cloud, fake_meta::APP_SECRET, status)
            .await
            .expect(200);
    }
    let list = fixtures::list(&app, &admin, &format!("channel_id={cloud}")).await;
    let sheena = &list.body["items"][0];
    assert_eq!(sheena["contact"]["name"], "Sheena Nelson", "{}", list.body);
    assert_eq!(sheena["contact"]["phone_numbers"][0], "+16505551234");
    let thread = messages(&app, &admin, sheena["id"].as_i64().expect("id")).await;
    let bodies: Vec<&str> = thread
        .iter()
        .filter_map(|message| message["body"].as_str())
        .collect();
    // The image's media id is not the fake's: stored with its caption, without the file.
    assert_eq!(bodies, ["Black jacket", "Does it come in another color?"]);

    let page = id_of(&meta_channel(&app, &admin, "facebook", fake_meta::PAGE_ID).await);
    meta_call(
        &app,
        page,
        fake_meta::APP_SECRET,
        &fake_meta::fixture("messenger_text.json"),
    )
    .await
    .expect(200);
    let list = fixtures::list(&app, &admin, &format!("channel_id={page}")).await;
    assert_eq!(
        body_of_newest(&list.body["items"][0]),
        "This is a text message",
        "{}",
        list.body
    );
    let instagram = id_of(&meta_channel(&app, &admin, "instagram", fake_meta::IG_ACCOUNT_ID).await);
    meta_call(
        &app,
        instagram,
        fake_meta::APP_SECRET,
        &fake_meta::fixture("instagram_text.json"),
    )
    .await
    .expect(200);
    let list = fixtures::list(&app, &admin, &format!("channel_id={instagram}")).await;
    assert_eq!(
        body_of_newest(&list.body["items"][0]),
        "Hi, is this still available?",
        "{}",
        list.body
    );
}

on_both_backends_run_by!(with_fakes =>
    a_provider_retrying_at_once_stores_everything_once,
    the_providers_documented_payloads_are_stored_as_they_describe,
    a_twilio_mms_is_stored_with_its_image_and_a_wrong_signature_changes_nothing,
    a_reply_reaches_twilio_signed_and_its_delivered_callback_updates_it,
    whatsapp_through_twilio_keeps_the_prefix_off_the_contact_and_on_the_wire,
    the_meta_handshake_echoes_the_challenge_only_for_the_verify_token,
    a_whatsapp_cloud_batch_of_three_messages_and_its_statuses_are_all_stored,
    a_messenger_message_is_answered_through_the_send_api,
    whatsapp_voice_notes_and_documents_arrive_as_files_and_files_go_out_as_links,
    a_whatsapp_reply_after_24_hours_is_refused_until_the_customer_writes,
    provider_channels_check_what_they_are_given,
);
