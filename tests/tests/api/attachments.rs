//! Files and reactions: uploads sniffed by their bytes, sent with a message when the channel
//! may carry them, read like the conversation they were sent in; customers' inlined files;
//! emoji reactions per user.

use std::future::Future;

use serde_json::{Value, json};

use crate::fixtures::{self, Channel, customer, external_id, inbound_raw, messages, sign};
use crate::support::{self, Backend, Reply, Session, TestApp, into_reply};

// ---------------------------------------------------------------------------------------
// Harness: every test keeps its files in a directory of its own.

const DEFAULT_MAX_UPLOAD: usize = 16 * 1024 * 1024;

/// Runs `body` with the attachments stored in a temporary data directory and `max_upload`.
async fn run_with_files<F, Fut>(backend: Backend, test_name: &str, max_upload: usize, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let configure = move |config: &mut api::Config| config.max_upload = max_upload;
    support::run_with_data_dir(backend, test_name, configure, body).await;
}

/// Like `on_both_backends!`, with a data directory of the test's own and an upload limit.
macro_rules! with_files {
    ($($name:ident => $max_upload:expr),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::run_with_files(
                    $crate::support::Backend::Sqlite,
                    concat!(module_path!(), "::sqlite"),
                    $max_upload,
                    super::$name,
                )
                .await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::run_with_files(
                    $crate::support::Backend::Postgres,
                    concat!(module_path!(), "::postgres"),
                    $max_upload,
                    super::$name,
                )
                .await;
            }
        }
    )*};
}

// ---------------------------------------------------------------------------------------
// Small valid files (and one that is not allowed).

pub(crate) fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.extend_from_slice(b"\x1f\x15\xc4\x89\0\0\0\x0bIDATx\x9cc\0\x01\0\0\x05\0\x01");
    bytes
}

fn jpeg() -> Vec<u8> {
    b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xFF\xD9".to_vec()
}

/// A JPEG padded to `size` bytes.
fn big_jpeg(size: usize) -> Vec<u8> {
    let mut bytes = jpeg();
    bytes.resize(size, 0x5A);
    bytes
}

/// A PNG padded to `size` bytes.
pub(crate) fn big_png(size: usize) -> Vec<u8> {
    let mut bytes = png();
    bytes.resize(size, 0xA5);
    bytes
}

pub(crate) fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

pub(crate) fn ogg() -> Vec<u8> {
    b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x13OpusHead\x01\x01".to_vec()
}

fn vcard() -> Vec<u8> {
    b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ana Customer\r\nTEL:+14155560001\r\nEND:VCARD\r\n".to_vec()
}

fn mp4() -> Vec<u8> {
    b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08free".to_vec()
}

fn exe() -> Vec<u8> {
    b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0This program cannot be run in DOS mode.".to_vec()
}

/// Standard base64 with padding, as channel providers inline files.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes a path segment (every byte but the unreserved ASCII ones).
fn segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Calls.

/// `POST /v1/attachments` with one `file` part; the filename goes as is (as browsers and
/// curl send it), `declared` is the part's Content-Type.
async fn upload_as(
    app: &TestApp,
    token: Option<&str>,
    bytes: Vec<u8>,
    filename: &str,
    declared: Option<&str>,
) -> Reply {
    let mut part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string());
    if let Some(declared) = declared {
        part = part.mime_str(declared).expect("a valid MIME type");
    }
    let form = reqwest::multipart::Form::new()
        .percent_encode_noop()
        .part("file", part);
    send_form(app, token, form).await
}

async fn send_form(app: &TestApp, token: Option<&str>, form: reqwest::multipart::Form) -> Reply {
    let mut request = app
        .client()
        .post(app.url("/v1/attachments"))
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// Uploads a file as `session`, asserting 201; answers the upload's id.
pub(crate) async fn upload(
    app: &TestApp,
    session: &Session,
    bytes: Vec<u8>,
    filename: &str,
) -> i64 {
    upload_as(app, Some(&session.token), bytes, filename, None)
        .await
        .expect(201)
        .id()
}

/// `GET /v1/attachments/{id}`: status, content type and the raw bytes.
async fn download(app: &TestApp, session: &Session, id: i64) -> (u16, Option<String>, Vec<u8>) {
    let response = app
        .client()
        .get(app.url(&format!("/v1/attachments/{id}")))
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
    let bytes = response.bytes().await.expect("response body").to_vec();
    (status, content_type, bytes)
}

/// Asserts that `session` may not read the attachment (and sees a 404 problem).
async fn cannot_download(app: &TestApp, session: &Session, id: i64) {
    app.get(&format!("/v1/attachments/{id}"), &session.token)
        .await
        .expect_problem(404, "not_found");
}

async fn send(app: &TestApp, session: &Session, conversation: i64, body: Value) -> Reply {
    app.post(
        &format!("/v1/conversations/{conversation}/messages"),
        &session.token,
        body,
    )
    .await
}

/// A signed inbound message with inlined files; answers the reply.
async fn inbound_with_files(
    app: &TestApp,
    channel: &Channel,
    from: &str,
    body: &str,
    attachments: Value,
) -> Reply {
    let raw = serde_json::to_vec(&json!({
        "external_id": external_id(),
        "from": from,
        "body": body,
        "attachments": attachments,
    }))
    .expect("JSON");
    let signature = sign(&channel.secret, &raw);
    inbound_raw(app, channel.id, Some(&signature), raw).await
}

fn attachment_ids(message: &Value) -> Vec<i64> {
    message["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("no attachments in {message}"))
        .iter()
        .map(|item| item["id"].as_i64().expect("attachment id"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The desk most tests work at.

struct Desk {
    admin: Session,
    /// A member of the inbox who sends the files.
    alex: Session,
    /// Another member.
    bea: Session,
    /// An agent of the organization who is not a member of the inbox.
    olga: Session,
    inbox: i64,
    sms: Channel,
    /// An open sms conversation with a customer.
    conversation: i64,
}

async fn desk(app: &TestApp) -> Desk {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let olga = app.user(&admin, "agent", "Olga Outsider").await;
    let inbox = fixtures::inbox(app, &admin, "Support", json!({}), &[&alex, &bea]).await;
    let sms = fixtures::sms_channel(app, &admin, inbox, "+14155550001").await;
    let conversation = sms
        .text(app, &customer(1), "Can you send me the picture?")
        .await;
    Desk {
        admin,
        alex,
        bea,
        olga,
        inbox,
        sms,
        conversation,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Uploads

async fn uploads_are_known_by_their_bytes_and_lose_their_paths(app: TestApp) {
    let desk = desk(&app).await;
    let token = Some(desk.alex.token.as_str());

    let bytes = png();
    let reply = upload_as(&app, token, bytes.clone(), "../../x.png", Some("image/png"))
        .await
        .expect(201);
    let id = reply.id();
    assert_eq!(
        reply.body,
        json!({"id": id, "content_type": "image/png", "size": bytes.len(), "filename": "x.png"})
    );

    // Each allowed family, named by its bytes whatever the client declared (or did not).
    for (bytes, filename, declared, expected) in [
        (jpeg(), "photo.jpg", Some("image/jpg"), "image/jpeg"),
        (jpeg(), "photo.jpeg", None, "image/jpeg"),
        (png(), "shot", Some("application/octet-stream"), "image/png"),
        (
            b"GIF89a\x01\0\x01\0\0\0\0;".to_vec(),
            "a.gif",
            Some("image/gif"),
            "image/gif",
        ),
        (
            pdf(),
            "invoice.pdf",
            Some("application/pdf"),
            "application/pdf",
        ),
        (vcard(), "ana.vcf", Some("text/vcard"), "text/vcard"),
        (ogg(), "voice.ogg", Some("audio/ogg"), "audio/ogg"),
        (mp4(), "clip.mp4", Some("video/mp4"), "video/mp4"),
    ] {
        let size = bytes.len();
        let reply = upload_as(&app, token, bytes, filename, declared)
            .await
            .expect(201);
        assert_eq!(reply.body["content_type"], expected, "{filename}");
        assert_eq!(reply.body["size"], size, "{filename}");
        assert_eq!(reply.body["filename"], filename);
    }

    // Names lose Windows paths and quotes, keep their letters; downloads carry them in an
    // ASCII `filename` every client reads, and exactly as `filename*` (RFC 6266).
    for (sent, kept, disposition) in [
        (
            "C:\\Users\\alex\\scan.pdf",
            "scan.pdf",
            "attachment; filename=\"scan.pdf\"",
        ),
        ("/etc/passwd", "passwd", "attachment; filename=\"passwd\""),
        (
            "résumé été.pdf",
            "résumé été.pdf",
            "attachment; filename=\"r_sum_ _t_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%C3%A9t%C3%A9.pdf",
        ),
        ("..", "file", "attachment; filename=\"file\""),
    ] {
        let reply = upload_as(&app, token, pdf(), sent, Some("application/pdf"))
            .await
            .expect(201);
        assert_eq!(reply.body["filename"], kept, "sent as {sent:?}");
        let response = app
            .client()
            .get(app.url(&format!("/v1/attachments/{}", reply.id())))
            .bearer_auth(&desk.alex.token)
            .send()
            .await
            .expect("request reaches the server");
        assert_eq!(response.status().as_u16(), 200);
        let header = response
            .headers()
            .get("content-disposition")
            .map(|value| value.as_bytes().to_vec())
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&header),
            disposition,
            "sent as {sent:?}"
        );
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
    }

    // Unknown types, and files that are not what they claim, are refused.
    upload_as(&app, token, exe(), "setup.exe", None)
        .await
        .expect_problem(415, "unsupported_attachment");
    upload_as(&app, token, exe(), "cat.png", Some("image/png"))
        .await
        .expect_problem(415, "unsupported_attachment");
    upload_as(
        &app,
        token,
        b"<html><script>".to_vec(),
        "a.html",
        Some("text/html"),
    )
    .await
    .expect_problem(415, "unsupported_attachment");
    upload_as(&app, token, png(), "doc.pdf", Some("application/pdf"))
        .await
        .expect_problem(415, "unsupported_attachment");
    upload_as(&app, token, jpeg(), "photo.png", Some("image/png"))
        .await
        .expect_problem(415, "unsupported_attachment");
    upload_as(&app, token, ogg(), "clip.mp4", Some("video/mp4"))
        .await
        .expect_problem(415, "unsupported_attachment");
    upload_as(&app, token, Vec::new(), "empty.png", Some("image/png"))
        .await
        .expect_problem(415, "unsupported_attachment");

    // No `file` part: a malformed request.
    let form = reqwest::multipart::Form::new().text("other", "hello");
    send_form(&app, token, form)
        .await
        .expect_problem(400, "bad_request");
    // Not multipart at all.
    app.post("/v1/attachments", &desk.alex.token, json!({"file": "x"}))
        .await
        .expect_problem(400, "bad_request");

    // Only signed-in users upload.
    upload_as(&app, None, png(), "x.png", Some("image/png"))
        .await
        .expect_problem(401, "unauthenticated");
    upload_as(&app, Some("not a token"), png(), "x.png", None)
        .await
        .expect_problem(401, "unauthenticated");

    // The uploader reads it back, byte for byte.
    let (status, content_type, read) = download(&app, &desk.alex, id).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("image/png"));
    assert_eq!(read, bytes);
    app.get("/v1/attachments/999999", &desk.alex.token)
        .await
        .expect_problem(404, "not_found");
    app.send(
        reqwest::Method::GET,
        &format!("/v1/attachments/{id}"),
        None,
        None,
    )
    .await
    .expect_problem(401, "unauthenticated");
}

async fn uploads_over_the_limit_are_refused(app: TestApp) {
    let desk = desk(&app).await;
    let token = Some(desk.alex.token.as_str());
    upload_as(
        &app,
        token,
        big_png(100 * 1024),
        "big.png",
        Some("image/png"),
    )
    .await
    .expect_problem(413, "payload_too_large");
    // Just under the limit (64 KiB, the multipart envelope aside) is fine.
    let reply = upload_as(&app, token, big_png(60 * 1024), "ok.png", Some("image/png"))
        .await
        .expect(201);
    assert_eq!(reply.body["size"], 60 * 1024);
    // The refused one was not recorded: the next send carries only what was accepted.
    let sent = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "", "attachment_ids": [reply.id()]}),
    )
    .await
    .expect(201);
    assert_eq!(attachment_ids(&sent.body), vec![reply.id()]);
}

// ---------------------------------------------------------------------------------------
// 2. Sending

async fn files_go_out_with_messages_and_are_read_like_their_conversation(app: TestApp) {
    let desk = desk(&app).await;
    let bytes = png();
    let id = upload(&app, &desk.alex, bytes.clone(), "map.png").await;

    // Before it is sent, only the uploader may read it.
    assert_eq!(download(&app, &desk.alex, id).await.0, 200);
    cannot_download(&app, &desk.bea, id).await;
    cannot_download(&app, &desk.admin, id).await;
    cannot_download(&app, &desk.olga, id).await;

    // Someone else's upload, an unknown id or another organization's upload is refused.
    let other = app.other_org("Globex").await;
    let foreign = upload(&app, &other, png(), "foreign.png").await;
    for refused in [id, 999_999, foreign] {
        send(
            &app,
            &desk.bea,
            desk.conversation,
            json!({"body": "Here", "attachment_ids": [refused]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    }
    assert_eq!(messages(&app, &desk.alex, desk.conversation).await.len(), 1);

    // A picture alone is a message (an MMS may be just a picture).
    let sent = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "", "attachment_ids": [id]}),
    )
    .await
    .expect(201);
    assert_eq!(
        sent.body["attachments"],
        json!([{"id": id, "content_type": "image/png", "size": bytes.len(), "filename": "map.png"}])
    );
    assert_eq!(sent.body["body"], "");
    assert_eq!(sent.body["direction"], "outbound");
    let thread = messages(&app, &desk.bea, desk.conversation).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[0]["id"], sent.body["id"]);
    assert_eq!(thread[0]["attachments"], sent.body["attachments"]);
    assert_eq!(thread[1]["attachments"], json!([]));

    // Sent, it is read like its conversation: members and the admin, not outsiders.
    for reader in [&desk.alex, &desk.bea, &desk.admin] {
        let (status, content_type, read) = download(&app, reader, id).await;
        assert_eq!(status, 200);
        assert_eq!(content_type.as_deref(), Some("image/png"));
        assert_eq!(read, bytes);
    }
    cannot_download(&app, &desk.olga, id).await;
    cannot_download(&app, &other, id).await;
    // And the other organization's file is not ours to read either.
    cannot_download(&app, &desk.admin, foreign).await;

    // An attachment goes out once.
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Again", "attachment_ids": [id]}),
    )
    .await
    .expect_problem(422, "validation_failed");
    // Nor twice in one message.
    let twice = upload(&app, &desk.alex, pdf(), "twice.pdf").await;
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Twice", "attachment_ids": [twice, twice]}),
    )
    .await
    .expect_problem(422, "validation_failed");
    assert_eq!(messages(&app, &desk.alex, desk.conversation).await.len(), 2);

    // Several files, with text, in the order given at upload.
    let card = upload(&app, &desk.alex, vcard(), "ana.vcf").await;
    let sent = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Invoice and contact", "attachment_ids": [card, twice]}),
    )
    .await
    .expect(201);
    let mut expected = vec![twice, card];
    expected.sort_unstable();
    assert_eq!(attachment_ids(&sent.body), expected);

    // A retried send (same Idempotency-Key) answers the first result, files included.
    let receipt = upload(&app, &desk.alex, pdf(), "receipt.pdf").await;
    let path = format!("/v1/conversations/{}/messages", desk.conversation);
    let body = json!({"body": "Your receipt", "attachment_ids": [receipt]});
    let first = fixtures::post_with_key(&app, &path, &desk.alex, "receipt-1", body.clone())
        .await
        .expect(201);
    let retried = fixtures::post_with_key(&app, &path, &desk.alex, "receipt-1", body)
        .await
        .expect(201);
    assert_eq!(retried.body, first.body);
    assert_eq!(attachment_ids(&first.body), vec![receipt]);

    // Two sends racing for one upload: one takes it, the other is refused whole.
    let contested = upload(&app, &desk.alex, png(), "contested.png").await;
    let before = messages(&app, &desk.alex, desk.conversation).await.len();
    let racing = futures_util::future::join_all((0..4).map(|n| {
        send(
            &app,
            &desk.alex,
            desk.conversation,
            json!({"body": format!("Race {n}"), "attachment_ids": [contested]}),
        )
    }))
    .await;
    let won: Vec<&Reply> = racing.iter().filter(|reply| reply.status == 201).collect();
    assert_eq!(won.len(), 1, "{racing:?}");
    for reply in racing.iter().filter(|reply| reply.status != 201) {
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert_eq!(reply.body["code"], "validation_failed");
    }
    assert_eq!(
        messages(&app, &desk.alex, desk.conversation).await.len(),
        before + 1
    );
    assert_eq!(attachment_ids(&won[0].body), vec![contested]);

    // A new outbound conversation may start with a file.
    let invoice = upload(&app, &desk.alex, pdf(), "invoice.pdf").await;
    let started = app
        .post(
            "/v1/conversations",
            &desk.alex.token,
            json!({"channel_id": desk.sms.id, "to": customer(2), "body": "Your invoice", "attachment_ids": [invoice]}),
        )
        .await
        .expect(201);
    let thread = messages(&app, &desk.bea, started.id()).await;
    assert_eq!(thread.len(), 1);
    assert_eq!(attachment_ids(&thread[0]), vec![invoice]);
    assert_eq!(
        thread[0]["attachments"][0]["content_type"],
        "application/pdf"
    );
    let (status, _, read) = download(&app, &desk.bea, invoice).await;
    assert_eq!((status, read), (200, pdf()));
    // ... but not with someone else's.
    let bea_file = upload(&app, &desk.bea, pdf(), "bea.pdf").await;
    app.post(
        "/v1/conversations",
        &desk.alex.token,
        json!({"channel_id": desk.sms.id, "to": customer(3), "body": "Hi", "attachment_ids": [bea_file]}),
    )
    .await
    .expect_problem(422, "validation_failed");
    let conversations = fixtures::list_ids(&app, &desk.admin, "").await;
    assert_eq!(
        conversations.len(),
        2,
        "no conversation for the refused start"
    );
}

async fn channels_carry_what_they_may_and_nothing_is_half_written(app: TestApp) {
    let desk = desk(&app).await;
    let before = fixtures::conversation(&app, &desk.alex, desk.conversation).await;

    // Voice notes are WhatsApp's.
    let voice = upload(&app, &desk.alex, ogg(), "voice.ogg").await;
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Listen", "attachment_ids": [voice]}),
    )
    .await
    .expect_problem(422, "attachment_not_allowed_on_channel");
    // With an allowed file beside it, the whole send is refused: neither is taken.
    let picture = upload(&app, &desk.alex, png(), "pic.png").await;
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Both", "attachment_ids": [picture, voice]}),
    )
    .await
    .expect_problem(422, "attachment_not_allowed_on_channel");
    // Nor a new sms conversation.
    app.post(
        "/v1/conversations",
        &desk.alex.token,
        json!({"channel_id": desk.sms.id, "to": customer(9), "body": "Listen", "attachment_ids": [voice]}),
    )
    .await
    .expect_problem(422, "attachment_not_allowed_on_channel");

    // Larger than 5 MB does not go by sms/mms.
    let large = big_jpeg(5_500_000);
    let poster = upload(&app, &desk.alex, large.clone(), "poster.jpg").await;
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "The poster", "attachment_ids": [poster]}),
    )
    .await
    .expect_problem(422, "attachment_not_allowed_on_channel");

    // Nothing was written: no message, the conversation as it was, the files unattached.
    assert_eq!(messages(&app, &desk.alex, desk.conversation).await.len(), 1);
    let after = fixtures::conversation(&app, &desk.alex, desk.conversation).await;
    assert_eq!(after["message_count"], before["message_count"]);
    assert_eq!(after["last_message_at"], before["last_message_at"]);
    assert_eq!(
        after["last_message_preview"],
        before["last_message_preview"]
    );
    assert_eq!(fixtures::list_ids(&app, &desk.admin, "").await.len(), 1);
    for id in [voice, picture, poster] {
        cannot_download(&app, &desk.bea, id).await;
    }

    // The picture goes alone.
    let sent = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "The picture", "attachment_ids": [picture]}),
    )
    .await
    .expect(201);
    assert_eq!(attachment_ids(&sent.body), vec![picture]);

    // A note never leaves: it carries the voice note even on sms.
    let note = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Their voicemail", "kind": "note", "attachment_ids": [voice]}),
    )
    .await
    .expect(201);
    assert_eq!(note.body["kind"], "note");
    assert_eq!(note.body["direction"], "internal");
    assert_eq!(attachment_ids(&note.body), vec![voice]);
    let (status, content_type, read) = download(&app, &desk.bea, voice).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("audio/ogg"));
    assert_eq!(read, ogg());

    // WhatsApp carries voice notes and large files (after the customer wrote first).
    let whatsapp = fixtures::channel(
        &app,
        &desk.admin,
        desk.inbox,
        json!({"type": "whatsapp", "address": "+14155550002", "name": "WhatsApp"}),
    )
    .await;
    let chat = whatsapp.text(&app, &customer(5), "Hola").await;
    let voice_again = upload(&app, &desk.alex, ogg(), "reply.ogg").await;
    let sent = send(
        &app,
        &desk.alex,
        chat,
        json!({"body": "", "attachment_ids": [voice_again, poster]}),
    )
    .await
    .expect(201);
    assert_eq!(attachment_ids(&sent.body), vec![poster, voice_again]);
    assert_eq!(sent.body["attachments"][0]["size"], large.len());
    let (status, content_type, read) = download(&app, &desk.bea, poster).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    assert!(read == large, "the large file comes back whole");
}

// ---------------------------------------------------------------------------------------
// 3. Customers' files

async fn customers_files_arrive_inlined(app: TestApp) {
    let desk = desk(&app).await;
    let photo = jpeg();
    let reply = inbound_with_files(
        &app,
        &desk.sms,
        &customer(1),
        "Here is the damage",
        json!([{"content_type": "image/jpeg", "filename": "../photo.jpg", "data_base64": base64(&photo)}]),
    )
    .await
    .expect(200);
    assert_eq!(reply.body["conversation_id"], desk.conversation);
    let message_id = reply.body["message_id"].as_i64().expect("message_id");
    let thread = messages(&app, &desk.bea, desk.conversation).await;
    assert_eq!(thread[0]["id"], message_id);
    assert_eq!(thread[0]["direction"], "inbound");
    let files = thread[0]["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 1, "{}", thread[0]);
    assert_eq!(files[0]["content_type"], "image/jpeg");
    assert_eq!(files[0]["filename"], "photo.jpg");
    assert_eq!(files[0]["size"], photo.len());
    let file = files[0]["id"].as_i64().expect("attachment id");
    for reader in [&desk.alex, &desk.bea, &desk.admin] {
        let (status, content_type, read) = download(&app, reader, file).await;
        assert_eq!(status, 200);
        assert_eq!(content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(read, photo);
    }
    cannot_download(&app, &desk.olga, file).await;
    // An agent cannot send the customer's file as their own.
    send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Yours", "attachment_ids": [file]}),
    )
    .await
    .expect_problem(422, "validation_failed");

    // A replay creates nothing, files included.
    let raw = serde_json::to_vec(&json!({
        "external_id": "replayed-1",
        "from": customer(1),
        "body": "Two files",
        "attachments": [
            {"content_type": "application/pdf", "filename": "a.pdf", "data_base64": base64(&pdf())},
            {"content_type": "audio/ogg", "filename": "b.ogg", "data_base64": base64(&ogg())},
        ],
    }))
    .expect("JSON");
    let signature = sign(&desk.sms.secret, &raw);
    let first = inbound_raw(&app, desk.sms.id, Some(&signature), raw.clone())
        .await
        .expect(200);
    let again = inbound_raw(&app, desk.sms.id, Some(&signature), raw)
        .await
        .expect(200);
    assert_eq!(first.body, again.body);
    let thread = messages(&app, &desk.alex, desk.conversation).await;
    assert_eq!(thread.len(), 3);
    assert_eq!(thread[0]["attachments"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        thread[0]["attachments"][0]["content_type"],
        "application/pdf"
    );
    assert_eq!(thread[0]["attachments"][1]["content_type"], "audio/ogg");

    // A file of a type we do not keep (or not what it claims) is left out, not the message.
    let reply = inbound_with_files(
        &app,
        &desk.sms,
        &customer(1),
        "And the program",
        json!([
            {"content_type": "application/octet-stream", "filename": "setup.exe", "data_base64": base64(&exe())},
            {"content_type": "image/png", "filename": "really.png", "data_base64": base64(&exe())},
            {"content_type": "application/pdf", "filename": "not.pdf", "data_base64": base64(&png())},
            {"content_type": "image/png", "filename": "kept.png", "data_base64": base64(&png())},
        ]),
    )
    .await
    .expect(200);
    let thread = messages(&app, &desk.alex, desk.conversation).await;
    assert_eq!(thread.len(), 4);
    assert_eq!(thread[0]["id"], reply.body["message_id"]);
    assert_eq!(thread[0]["body"], "And the program");
    let kept = thread[0]["attachments"].as_array().expect("attachments");
    assert_eq!(kept.len(), 1, "{}", thread[0]);
    assert_eq!(kept[0]["filename"], "kept.png");

    // Data that is not base64 refuses the call, and nothing is written.
    inbound_with_files(
        &app,
        &desk.sms,
        &customer(1),
        "Broken",
        json!([{"content_type": "image/jpeg", "filename": "x.jpg", "data_base64": "not base64!!"}]),
    )
    .await
    .expect_problem(422, "validation_failed");
    assert_eq!(messages(&app, &desk.alex, desk.conversation).await.len(), 4);

    // A customer's first message may be a picture alone.
    let reply = inbound_with_files(
        &app,
        &desk.sms,
        &customer(7),
        "",
        json!([{"content_type": "image/jpeg", "filename": "selfie.jpg", "data_base64": base64(&photo)}]),
    )
    .await
    .expect(200);
    let new = reply.body["conversation_id"]
        .as_i64()
        .expect("conversation");
    let thread = messages(&app, &desk.bea, new).await;
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0]["attachments"][0]["filename"], "selfie.jpg");
}

// ---------------------------------------------------------------------------------------
// 4. Reactions

fn reactions_path(message: i64, emoji: &str) -> String {
    format!("/v1/messages/{message}/reactions/{}", segment(emoji))
}

async fn reactions_are_per_user(app: TestApp) {
    let desk = desk(&app).await;
    let thread = messages(&app, &desk.alex, desk.conversation).await;
    let message = thread[0]["id"].as_i64().expect("message id");
    let thumbs = "👍";
    assert_eq!(
        reactions_path(message, thumbs),
        format!("/v1/messages/{message}/reactions/%F0%9F%91%8D")
    );

    let reply = app
        .put(&reactions_path(message, thumbs), &desk.alex.token, None)
        .await
        .expect(200);
    assert_eq!(reply.body["id"], message);
    assert_eq!(
        reply.body["reactions"],
        json!([{"emoji": thumbs, "user_ids": [desk.alex.user_id], "contact": false}])
    );
    // Twice is once.
    let reply = app
        .put(&reactions_path(message, thumbs), &desk.alex.token, None)
        .await
        .expect(200);
    assert_eq!(
        reply.body["reactions"],
        json!([{"emoji": thumbs, "user_ids": [desk.alex.user_id], "contact": false}])
    );
    // A second user joins the same emoji; another emoji comes after.
    app.put(&reactions_path(message, thumbs), &desk.bea.token, None)
        .await
        .expect(200);
    let reply = app
        .put(&reactions_path(message, "❤️"), &desk.bea.token, None)
        .await
        .expect(200);
    assert_eq!(
        reply.body["reactions"],
        json!([
            {"emoji": thumbs, "user_ids": [desk.alex.user_id, desk.bea.user_id], "contact": false},
            {"emoji": "❤️", "user_ids": [desk.bea.user_id], "contact": false},
        ])
    );
    // The list shows them.
    let listed = messages(&app, &desk.admin, desk.conversation).await;
    assert_eq!(listed[0]["reactions"], reply.body["reactions"]);

    // Taking one's reaction back leaves the others'.
    let reply = app
        .delete(&reactions_path(message, thumbs), &desk.alex.token)
        .await
        .expect(200);
    assert_eq!(
        reply.body["reactions"],
        json!([
            {"emoji": thumbs, "user_ids": [desk.bea.user_id], "contact": false},
            {"emoji": "❤️", "user_ids": [desk.bea.user_id], "contact": false},
        ])
    );
    // Again changes nothing; nor does taking back what one never gave.
    app.delete(&reactions_path(message, thumbs), &desk.alex.token)
        .await
        .expect(200);
    let reply = app
        .delete(&reactions_path(message, "❤️"), &desk.alex.token)
        .await
        .expect(200);
    assert_eq!(reply.body["reactions"].as_array().map(Vec::len), Some(2));
    // The last one gone, the emoji is gone.
    app.delete(&reactions_path(message, "❤️"), &desk.bea.token)
        .await
        .expect(200);
    let listed = messages(&app, &desk.alex, desk.conversation).await;
    assert_eq!(
        listed[0]["reactions"],
        json!([{"emoji": thumbs, "user_ids": [desk.bea.user_id], "contact": false}])
    );

    // The agent's own outbound message, and a note, take reactions too.
    let reply = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "On it"}),
    )
    .await
    .expect(201);
    let ours = reply.id();
    let note = send(
        &app,
        &desk.alex,
        desk.conversation,
        json!({"body": "Careful", "kind": "note"}),
    )
    .await
    .expect(201)
    .id();
    for id in [ours, note] {
        let reply = app
            .put(&reactions_path(id, "🎉"), &desk.bea.token, None)
            .await
            .expect(200);
        assert_eq!(
            reply.body["reactions"],
            json!([{"emoji": "🎉", "user_ids": [desk.bea.user_id], "contact": false}])
        );
    }

    // Skin tones and joined sequences are one emoji each.
    for one in ["👍🏽", "👩‍💻", "🇵🇹"] {
        let reply = app
            .put(&reactions_path(ours, one), &desk.alex.token, None)
            .await
            .expect(200);
        assert!(
            reply.body["reactions"]
                .as_array()
                .is_some_and(|all| all.iter().any(|reaction| reaction["emoji"] == one)),
            "{one}: {}",
            reply.body
        );
        app.delete(&reactions_path(ours, one), &desk.alex.token)
            .await
            .expect(200);
    }

    // The same reaction sent at once from several devices is still idempotent.
    let rocket = reactions_path(ours, "🚀");
    let replies =
        futures_util::future::join_all((0..8).map(|_| app.put(&rocket, &desk.alex.token, None)))
            .await;
    for reply in replies {
        reply.expect(200);
    }
    let listed = messages(&app, &desk.bea, desk.conversation).await;
    let reacted = listed
        .iter()
        .find(|item| item["id"] == ours)
        .expect("our message");
    assert_eq!(
        reacted["reactions"],
        json!([
            {"emoji": "🎉", "user_ids": [desk.bea.user_id], "contact": false},
            {"emoji": "🚀", "user_ids": [desk.alex.user_id], "contact": false},
        ])
    );

    // Those who may not see the conversation see no message.
    let other = app.other_org("Globex").await;
    for outsider in [&desk.olga, &other] {
        app.put(&reactions_path(message, thumbs), &outsider.token, None)
            .await
            .expect_problem(404, "not_found");
        app.delete(&reactions_path(message, thumbs), &outsider.token)
            .await
            .expect_problem(404, "not_found");
    }
    app.put(&reactions_path(999_999, thumbs), &desk.alex.token, None)
        .await
        .expect_problem(404, "not_found");

    // One emoji: no spaces, no control characters, not a sentence, not markup, not two.
    for refused in [
        "a b",
        " 👍",
        "\u{7}",
        &thumbs.repeat(20),
        "<script>",
        "x",
        "👍👍",
        "1",
    ] {
        app.put(&reactions_path(message, refused), &desk.alex.token, None)
            .await
            .expect_problem(422, "validation_failed");
    }
    let listed = messages(&app, &desk.alex, desk.conversation).await;
    let reacted = listed
        .iter()
        .find(|item| item["id"] == message)
        .expect("the first message");
    assert_eq!(
        reacted["reactions"],
        json!([{"emoji": thumbs, "user_ids": [desk.bea.user_id], "contact": false}]),
        "refused and outsiders' reactions changed nothing"
    );
}

with_files!(
    uploads_are_known_by_their_bytes_and_lose_their_paths => super::DEFAULT_MAX_UPLOAD,
    uploads_over_the_limit_are_refused => 64 * 1024,
    files_go_out_with_messages_and_are_read_like_their_conversation => super::DEFAULT_MAX_UPLOAD,
    channels_carry_what_they_may_and_nothing_is_half_written => 8 * 1024 * 1024,
    customers_files_arrive_inlined => super::DEFAULT_MAX_UPLOAD,
    reactions_are_per_user => super::DEFAULT_MAX_UPLOAD,
);
