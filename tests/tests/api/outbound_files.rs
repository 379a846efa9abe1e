//! Outbound files (API.md, Channels in and out): the files of an agent's reply travel to the
//! provider as signed, expiring links that serve the very bytes without a bearer token; a
//! link that was tampered with or has run out is refused, and a note's files never leave.

use std::future::Future;

use serde_json::{Value, json};

use crate::attachments::{pdf, png, upload};
use crate::delivery::Provider;
use crate::fixtures::{self, Channel, customer};
use crate::support::{self, Backend, Session, TestApp, into_reply};

/// Where customers reach the server, as configured: the links are built on it.
const PUBLIC: &str = "https://switchboard.example";

/// Runs `body` with the files in a directory of the test's own, the public URL set and
/// quick retries.
async fn run_sending_files<F, Fut>(backend: Backend, test_name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let configure = |config: &mut api::Config| {
        config.public_url = Some(PUBLIC.into());
        config.delivery_base_delay_ms = 50;
    };
    support::run_with_data_dir(backend, test_name, configure, body).await;
}

/// An agent in an inbox whose sms channel delivers to `provider`, with a customer's
/// conversation on it.
struct Desk {
    alex: Session,
    conversation: i64,
}

async fn desk(app: &TestApp, provider: &Provider) -> Desk {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(app, &admin, "Support", json!({}), &[&alex]).await;
    let line: Channel = fixtures::channel(
        app,
        &admin,
        inbox,
        json!({"type": "sms", "address": "+14155550100", "name": "Main line", "outbound_url": provider.url}),
    )
    .await;
    let conversation = line
        .text(app, &customer(1), "Could you send me the invoice?")
        .await;
    Desk { alex, conversation }
}

/// A GET without a bearer token, as the provider fetches a link: status, content type, bytes.
async fn fetch(app: &TestApp, link: &str) -> (u16, Option<String>, Vec<u8>, Value) {
    let path = link
        .strip_prefix(PUBLIC)
        .unwrap_or_else(|| panic!("{link} is not under {PUBLIC}"));
    let response = app
        .client()
        .get(app.url(path))
        .send()
        .await
        .expect("request reaches the server");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await.expect("response body").to_vec();
    let problem = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content_type, bytes, problem)
}

#[track_caller]
fn assert_refused(answer: &(u16, Option<String>, Vec<u8>, Value), status: u16, code: &str) {
    let (got, content_type, _, problem) = answer;
    assert_eq!(*got, status, "{problem}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(problem["code"], code, "{problem}");
}

/// A link to `id` signed by the server's own key, as if made at `at`.
fn link_made_at(app: &TestApp, id: i64, at: chrono::DateTime<chrono::Utc>) -> String {
    app.running().state.links.url(PUBLIC, id, at)
}

async fn a_replys_files_travel_as_signed_links_that_serve_the_same_bytes(app: TestApp) {
    let provider = Provider::start(200).await;
    let desk = desk(&app, &provider).await;
    let files = [
        (png(), "photo.png", "image/png"),
        (pdf(), "invoice.pdf", "application/pdf"),
    ];
    let mut ids = Vec::new();
    for (bytes, name, _) in &files {
        ids.push(upload(&app, &desk.alex, bytes.clone(), name).await);
    }
    let sent = app
        .post(
            &format!("/v1/conversations/{}/messages", desk.conversation),
            &desk.alex.token,
            json!({"body": "Here you go", "attachment_ids": ids}),
        )
        .await
        .expect(201);
    let delivered = provider.wait_for(1).await;
    let payload = &delivered[0].body;
    assert_eq!(payload["message_id"], sent.body["id"]);
    let attachments = payload["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("no attachments in {payload}"));
    assert_eq!(attachments.len(), 2, "{payload}");
    let mut links = Vec::new();
    for (entry, (bytes, name, content_type)) in attachments.iter().zip(&files) {
        let keys: Vec<&str> = entry
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["content_type", "filename", "size", "url"], "{entry}");
        assert_eq!(entry["content_type"], *content_type);
        assert_eq!(entry["filename"], *name);
        assert_eq!(entry["size"], bytes.len());
        let url = entry["url"].as_str().expect("url").to_string();
        assert!(
            url.starts_with(&format!("{PUBLIC}/v1/public/attachments/")),
            "{url}"
        );
        let (status, served_type, served, problem) = fetch(&app, &url).await;
        assert_eq!(status, 200, "{problem}");
        assert_eq!(served_type.as_deref(), Some(*content_type));
        assert_eq!(&served, bytes, "byte for byte");
        links.push(url);
    }

    // Tampering with any part of a link makes it unknown.
    let genuine = &links[0];
    let (base, signature) = genuine.split_once("&signature=").expect("a signature");
    let flipped_last = match signature.chars().last() {
        Some('0') => '1',
        _ => '0',
    };
    let tampered = format!(
        "{base}&signature={}{flipped_last}",
        &signature[..signature.len() - 1]
    );
    assert_refused(&fetch(&app, &tampered).await, 404, "not_found");
    let expires: i64 = base
        .split("expires=")
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("expires");
    let longer = genuine.replace(
        &format!("expires={expires}"),
        &format!("expires={}", expires + 86_400),
    );
    assert_refused(&fetch(&app, &longer).await, 404, "not_found");
    let other_file = genuine.replace(
        &format!("/attachments/{}?", ids[0]),
        &format!("/attachments/{}?", ids[1]),
    );
    assert_refused(&fetch(&app, &other_file).await, 404, "not_found");
    assert_refused(&fetch(&app, base).await, 400, "bad_request");

    // A genuine link that has run out is refused as such.
    let stale = link_made_at(
        &app,
        ids[0],
        chrono::Utc::now() - chrono::Duration::hours(2),
    );
    assert_refused(&fetch(&app, &stale).await, 403, "forbidden");
    provider.stop().await;
}

async fn a_notes_files_never_leave(app: TestApp) {
    let provider = Provider::start(200).await;
    let desk = desk(&app, &provider).await;
    let path = format!("/v1/conversations/{}/messages", desk.conversation);
    let internal = upload(&app, &desk.alex, png(), "screenshot.png").await;
    let note = app
        .post(
            &path,
            &desk.alex.token,
            json!({"kind": "note", "body": "What the customer sees", "attachment_ids": [internal]}),
        )
        .await
        .expect(201);
    assert_eq!(note.body["attachments"][0]["id"], internal);
    let reply = app
        .post(&path, &desk.alex.token, json!({"body": "Sending it now"}))
        .await
        .expect(201);
    let delivered = provider.wait_for(1).await;
    assert_eq!(delivered[0].body["message_id"], reply.body["id"]);
    assert_eq!(delivered[0].body["attachments"], json!([]));
    // Everything queued before the reply has gone out by now: the note never was.
    assert!(
        provider
            .seen()
            .iter()
            .all(|seen| seen.body["message_id"] == reply.body["id"]),
        "{:?}",
        provider.seen()
    );
    // Not even a link signed with the server's own key opens a note's file, or an upload
    // that was never sent.
    let now = chrono::Utc::now();
    assert_refused(
        &fetch(&app, &link_made_at(&app, internal, now)).await,
        404,
        "not_found",
    );
    let unsent = upload(&app, &desk.alex, pdf(), "draft.pdf").await;
    assert_refused(
        &fetch(&app, &link_made_at(&app, unsent, now)).await,
        404,
        "not_found",
    );
    // The note's file is still there for the team, with a bearer token.
    let response = app
        .client()
        .get(app.url(&format!("/v1/attachments/{internal}")))
        .bearer_auth(&desk.alex.token)
        .send()
        .await
        .expect("request reaches the server");
    assert_eq!(into_reply(response).await.status, 200);
    provider.stop().await;
}

crate::on_both_backends_run_by!(run_sending_files =>
    a_replys_files_travel_as_signed_links_that_serve_the_same_bytes,
    a_notes_files_never_leave,
);
