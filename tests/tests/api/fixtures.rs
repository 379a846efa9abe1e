//! Scenario builders shared by the conversation-facing tests: inboxes with members, channels
//! with their inbound secret, signed inbound messages from customers, tags, teams, and
//! small readers for the conversation list.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{Reply, Session, TestApp, into_reply};

pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";

/// A channel as created by an admin, with the secret that signs its provider's calls.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: i64,
    pub inbox_id: i64,
    pub secret: String,
    /// The creation answer (without relying on it for the secret).
    pub body: Value,
}

impl Channel {
    /// A customer's text arriving on this channel, with a fresh provider id; answers the
    /// conversation id.
    pub async fn text(&self, app: &TestApp, from: &str, body: &str) -> i64 {
        let reply = inbound(app, self.id, &self.secret, &external_id(), from, body)
            .await
            .expect(200);
        reply.body["conversation_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no conversation_id in {}", reply.body))
    }
}

/// A shared inbox with `settings` (e.g. `{"assignment_mode": false}`) and `members`.
pub async fn inbox(
    app: &TestApp,
    admin: &Session,
    name: &str,
    settings: Value,
    members: &[&Session],
) -> i64 {
    app.inbox(admin, name, settings, members).await
}

/// Adds a member to an inbox (as an admin).
pub async fn add_member(app: &TestApp, admin: &Session, inbox_id: i64, member: &Session) {
    app.put(
        &format!("/v1/inboxes/{inbox_id}/members/{}", member.user_id),
        &admin.token,
        None,
    )
    .await
    .expect(200);
}

/// An sms channel on `address` (any spelling of a phone number).
pub async fn sms_channel(app: &TestApp, admin: &Session, inbox_id: i64, address: &str) -> Channel {
    channel(
        app,
        admin,
        inbox_id,
        json!({"type": "sms", "address": address, "name": format!("SMS {address}")}),
    )
    .await
}

/// A channel from a full creation body (`type`, `address`, `name`, `appended_message`, …).
pub async fn channel(app: &TestApp, admin: &Session, inbox_id: i64, spec: Value) -> Channel {
    let reply = app
        .post(
            &format!("/v1/inboxes/{inbox_id}/channels"),
            &admin.token,
            spec,
        )
        .await
        .expect(201);
    let secret = reply.body["inbound_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no inbound_secret in {}", reply.body))
        .to_string();
    Channel {
        id: reply.id(),
        inbox_id,
        secret,
        body: reply.body,
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, as a provider signs its calls.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A provider message id never used before in this test process.
pub fn external_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("ext-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A customer's message, signed with the channel's secret.
pub async fn inbound(
    app: &TestApp,
    channel_id: i64,
    secret: &str,
    external_id: &str,
    from: &str,
    body: &str,
) -> Reply {
    let raw = serde_json::to_vec(&json!({"external_id": external_id, "from": from, "body": body}))
        .expect("JSON");
    let signature = sign(secret, &raw);
    inbound_raw(app, channel_id, Some(&signature), raw).await
}

/// A raw call to the inbound endpoint with whatever signature header (or none).
pub async fn inbound_raw(
    app: &TestApp,
    channel_id: i64,
    signature: Option<&str>,
    raw: Vec<u8>,
) -> Reply {
    let mut request = app
        .client()
        .post(app.url(&format!("/v1/channels/{channel_id}/inbound")))
        .header("Content-Type", "application/json")
        .body(raw);
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// A POST with an `Idempotency-Key` header.
pub async fn post_with_key(
    app: &TestApp,
    path: &str,
    session: &Session,
    key: &str,
    body: Value,
) -> Reply {
    let request = app
        .client()
        .post(app.url(path))
        .bearer_auth(&session.token)
        .header("Idempotency-Key", key)
        .json(&body);
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// A tag (created by an admin or manager); answers its id.
pub async fn tag(app: &TestApp, session: &Session, name: &str) -> i64 {
    app.post("/v1/tags", &session.token, json!({"name": name}))
        .await
        .expect(201)
        .id()
}

/// A team with `members`; answers its id.
pub async fn team(app: &TestApp, session: &Session, name: &str, members: &[&Session]) -> i64 {
    let id = app
        .post("/v1/teams", &session.token, json!({"name": name}))
        .await
        .expect(201)
        .id();
    for member in members {
        app.put(
            &format!("/v1/teams/{id}/members/{}", member.user_id),
            &session.token,
            None,
        )
        .await
        .expect(200);
    }
    id
}

/// A distinct North American customer number, `+1415556NNNN` (the tests' business
/// numbers are `+1415555NNNN`).
pub fn customer(n: u32) -> String {
    format!("+1415556{:04}", n % 10_000)
}

/// One conversation as `session` sees it (asserting 200).
pub async fn conversation(app: &TestApp, session: &Session, id: i64) -> Value {
    app.get(&format!("/v1/conversations/{id}"), &session.token)
        .await
        .expect(200)
        .body
}

/// The ids of one list page (`query` without the leading `?`).
pub async fn list_ids(app: &TestApp, session: &Session, query: &str) -> Vec<i64> {
    ids(&list(app, session, query).await)
}

/// One list page (asserting 200).
pub async fn list(app: &TestApp, session: &Session, query: &str) -> Reply {
    app.get(&format!("/v1/conversations?{query}"), &session.token)
        .await
        .expect(200)
}

/// The `id`s of a page's `items`.
pub fn ids(reply: &Reply) -> Vec<i64> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", reply.body))
        .iter()
        .map(|item| item["id"].as_i64().expect("item id"))
        .collect()
}

/// Counts as `session` sees them.
pub async fn counts(app: &TestApp, session: &Session, query: &str) -> Value {
    app.get(&format!("/v1/conversations/counts?{query}"), &session.token)
        .await
        .expect(200)
        .body
}

/// The conversation's messages, newest first (first page of 100).
pub async fn messages(app: &TestApp, session: &Session, id: i64) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/v1/conversations/{id}/messages?limit=100"),
            &session.token,
        )
        .await
        .expect(200);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Sleeps long enough for the next event to get a later millisecond timestamp, so orders
/// by time are unambiguous. (Not a timing assertion: nothing waits for the server.)
pub async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// A demo organization seeded through the library (`seed_demo`, the loader of
/// `switchboard seed-demo`) into the test's database: the store, the admin's scope over
/// every inbox (full visibility) and the organization.
pub async fn seeded_org(
    app: &TestApp,
    org: &str,
    conversations: u64,
    seed: u64,
) -> (
    persistence::Store,
    persistence::repo::conversation_list::Scope,
    domain::OrgId,
) {
    use api::seed::{Progress, SeedOptions, seed_demo};
    let store = app.running().state.store.clone();
    let options = SeedOptions {
        org: org.into(),
        conversations,
        seed,
    };
    let seeding = store.clone();
    let report = actix_web::web::block(move || seed_demo(&seeding, &options, &|_: Progress| {}))
        .await
        .expect("blocking pool")
        .expect("seeded");
    let scope = persistence::repo::conversation_list::Scope {
        user: report.user(domain::Role::Admin).expect("an admin").id,
        full: report.inboxes.iter().map(|inbox| inbox.id).collect(),
        partial: Vec::new(),
        teams: Vec::new(),
    };
    (store, scope, domain::OrgId(report.org_id.get()))
}
