//! The authorization matrix: every operation of the OpenAPI document, called by each kind of
//! caller, with the status the wire contract (API.md: Conventions, Roles, Auth, Administration,
//! Conversations, Contacts, Internal chats, Channels in and out) says each one must get.
//!
//! The expectations are written in [`table`], one row per operation. The test fails when an
//! operation of the served document has no row or a row names no operation, so a new endpoint
//! cannot skip the matrix. Every cell is run, and the disagreeing ones are listed together at
//! the end.
//!
//! Beyond the status, a refusal must carry its `code` (`unauthenticated`, `account_disabled`,
//! `forbidden`, `not_found`, `validation_failed`), and some successful answers are read too:
//! a list a caller may call must not show them what is not theirs (another organization's
//! users, tags, contacts, conversations, events; an inbox's conversations to an outsider).
//!
//! Each request carries a body and query that the operation accepts, so that the status says
//! who may call it rather than what was wrong with the request. Every cell builds its own
//! request right before it is sent: operations that change or remove something act on a
//! target made for that cell alone (a fresh conversation, contact, tag, team, inbox, user,
//! session, survey…), so no cell depends on what another one did. As a second guard, each
//! row runs its refused callers first (anonymous, deactivated, other admin, outsider).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

use crate::attachments::png;
use crate::fixtures::{self, Channel, SIGNATURE_HEADER, customer, external_id, sign};
use crate::support::{self, Backend, PASSWORD, Reply, Session, TestApp, into_reply};
use crate::{fake_meta, fake_twilio};

// ---------------------------------------------------------------------------------------
// Callers

/// Who calls: the columns of the table, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// The admin of organization A.
    Admin,
    /// A manager of A who is a member of the inbox of the fixture's conversation.
    Manager,
    /// An agent of A who is a member of that inbox.
    Member,
    /// An agent of A who is not a member of that inbox.
    Outsider,
    /// The admin of another organization, B.
    OtherAdmin,
    /// No `Authorization` header.
    Anonymous,
    /// An agent of A (a member of the inbox) deactivated by the admin after signing in,
    /// calling with the token from before.
    Deactivated,
}

impl Caller {
    const COLUMNS: [Caller; 7] = [
        Caller::Admin,
        Caller::Manager,
        Caller::Member,
        Caller::Outsider,
        Caller::OtherAdmin,
        Caller::Anonymous,
        Caller::Deactivated,
    ];

    /// The order the cells of a row run in: the refused callers first.
    const RUN_ORDER: [Caller; 7] = [
        Caller::Anonymous,
        Caller::Deactivated,
        Caller::OtherAdmin,
        Caller::Outsider,
        Caller::Member,
        Caller::Manager,
        Caller::Admin,
    ];

    fn column(self) -> usize {
        Caller::COLUMNS
            .iter()
            .position(|caller| *caller == self)
            .expect("every caller has a column")
    }

    fn name(self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::Manager => "manager",
            Caller::Member => "member",
            Caller::Outsider => "outsider",
            Caller::OtherAdmin => "other_admin",
            Caller::Anonymous => "anonymous",
            Caller::Deactivated => "deactivated",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The world the cells act in

/// Organization A (an inbox with an sms channel and a conversation on it, a contact, a
/// chat, a team, a tag, a file sent to the customer, a survey) and organization B.
struct World {
    app: TestApp,
    admin: Session,
    manager: Session,
    member: Session,
    outsider: Session,
    other_admin: Session,
    deactivated: Session,
    /// An agent of B (a colleague for B's admin to chat with).
    other_member: Session,
    /// An agent of A with no part in anything: the target of membership changes.
    spare: i64,
    /// An agent of A who signs in for the auth rows.
    login_email: String,
    /// The inbox (members: manager, member, deactivated) and its sandbox sms channel.
    inbox: i64,
    line: Channel,
    /// Two inboxes for moves (members: admin, manager, member): moving needs the mover in
    /// both (API.md, Conversations, Rules), admins included.
    move_from: Channel,
    move_to: i64,
    /// B's inbox channel (B's admin starts conversations on it).
    other_line: Channel,
    /// Provider channels of A: a Twilio number and a Messenger page (their calls are
    /// authorized by the provider's signature).
    twilio_line: i64,
    page_line: i64,
    /// A's web chat: its public widget token, and a visitor's session on it.
    widget_token: String,
    visitor_token: String,
    /// An open, unassigned conversation on `line`.
    conversation: i64,
    /// The customer's first message in it.
    message: i64,
    /// The conversation's contact.
    customer_contact: i64,
    /// A contact of A with no conversation.
    contact: i64,
    /// A PNG the member sent to the customer in `conversation`, and its signed link.
    attachment: i64,
    link: String,
    /// The token of a survey sent in `conversation`.
    survey_token: String,
    /// A team chat of admin, manager and member.
    chat: i64,
    team: i64,
    tag: i64,
    tag_name: String,
    /// Makes names, numbers and addresses unique.
    counter: Cell<u32>,
}

impl World {
    async fn build(app: TestApp) -> World {
        let admin = app.admin().await;
        let manager = app.user(&admin, "manager", "Mona Manager").await;
        let member = app.user(&admin, "agent", "Alex Member").await;
        let outsider = app.user(&admin, "agent", "Olive Outsider").await;
        let deactivated = app.user(&admin, "agent", "Dee Deactivated").await;
        let spare = app.user(&admin, "agent", "Sam Spare").await.user_id;
        let login_email = "lena.login@example.com".to_string();
        app.post(
            "/v1/users",
            &admin.token,
            json!({"email": login_email, "name": "Lena Login", "role": "agent", "password": PASSWORD}),
        )
        .await
        .expect(201);

        let inbox = app
            .inbox(
                &admin,
                "Support",
                json!({}),
                &[&manager, &member, &deactivated],
            )
            .await;
        let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550000").await;
        let from = app
            .inbox(
                &admin,
                "Moves from",
                json!({}),
                &[&admin, &manager, &member],
            )
            .await;
        let move_from = fixtures::sms_channel(&app, &admin, from, "+14155550001").await;
        let move_to = app
            .inbox(&admin, "Moves to", json!({}), &[&admin, &manager, &member])
            .await;

        let arrived = fixtures::inbound(
            &app,
            line.id,
            &line.secret,
            &external_id(),
            &customer(1),
            "Hello, is my order on its way?",
        )
        .await
        .expect(200);
        let conversation = arrived.body["conversation_id"]
            .as_i64()
            .expect("conversation_id");
        let message = arrived.body["message_id"].as_i64().expect("message_id");
        let customer_contact = fixtures::conversation(&app, &admin, conversation).await["contact"]
            ["id"]
            .as_i64()
            .expect("the conversation's contact");
        let contact = app
            .post(
                "/v1/contacts",
                &admin.token,
                json!({"name": "Carla Contact", "phone_numbers": ["+14155570000"]}),
            )
            .await
            .expect(201)
            .id();

        // A file sent to the customer: readable like its conversation, and by signed link.
        let upload = crate::attachments::upload(&app, &member, png(), "photo.png").await;
        let sent = app
            .post(
                &format!("/v1/conversations/{conversation}/messages"),
                &member.token,
                json!({"body": "Here is the photo", "attachment_ids": [upload]}),
            )
            .await
            .expect(201);
        assert_eq!(
            sent.body["attachments"][0]["id"], upload,
            "the reply carries the file: {}",
            sent.body
        );
        let link = app
            .running()
            .state
            .links
            .url("", upload, chrono::Utc::now());

        let survey_token = survey(&app, &member, conversation).await;
        // An answered survey, so that the inbox shows in the survey summary.
        let rated = line.text(&app, &customer(2), "Thanks, all good").await;
        let answered = survey(&app, &member, rated).await;
        app.send(
            reqwest::Method::POST,
            &format!("/v1/public/surveys/{answered}"),
            None,
            Some(json!({"rating": 4})),
        )
        .await
        .expect(200);
        let chat = app
            .post(
                "/v1/chats",
                &admin.token,
                json!({"kind": "team", "name": "Leads", "member_ids": [manager.user_id, member.user_id]}),
            )
            .await
            .expect(201)
            .id();
        let team = fixtures::team(&app, &admin, "Tier 1", &[&member]).await;
        let tag_name = "vip".to_string();
        let tag = fixtures::tag(&app, &admin, &tag_name).await;

        let other_admin = app.other_org("Globex").await;
        let other_member = app.user(&other_admin, "agent", "Bo Globex").await;
        let other_inbox = app
            .inbox(&other_admin, "Globex support", json!({}), &[&other_member])
            .await;
        let other_line =
            fixtures::sms_channel(&app, &other_admin, other_inbox, "+14155559000").await;

        let twilio_line = app
            .post(
                &format!("/v1/inboxes/{inbox}/channels"),
                &admin.token,
                json!({"type": "sms", "provider": "twilio", "address": "+14155550002", "name": "Twilio line",
                       "credentials": {"account_sid": fake_twilio::ACCOUNT_SID, "auth_token": fake_twilio::AUTH_TOKEN}}),
            )
            .await
            .expect(201)
            .id();
        let page_line = app
            .post(
                &format!("/v1/inboxes/{inbox}/channels"),
                &admin.token,
                json!({"type": "facebook", "provider": "meta", "address": fake_meta::PAGE_ID, "name": "Page",
                       "credentials": {"access_token": fake_meta::ACCESS_TOKEN, "app_secret": fake_meta::APP_SECRET,
                                       "verify_token": fake_meta::VERIFY_TOKEN}}),
            )
            .await
            .expect(201)
            .id();
        let widget_token = app
            .post(
                &format!("/v1/inboxes/{inbox}/channels"),
                &admin.token,
                json!({"type": "webchat", "provider": "webchat", "address": "shop.example", "name": "Chat",
                       "credentials": {"allowed_origins": ["https://shop.example"]}}),
            )
            .await
            .expect(201)
            .body["widget_token"]
            .as_str()
            .expect("widget_token")
            .to_string();
        let visitor_token = app
            .send(
                reqwest::Method::POST,
                &format!("/v1/webchat/{widget_token}/sessions"),
                None,
                Some(json!({"name": "Vic Visitor"})),
            )
            .await
            .expect(201)
            .body["visitor_token"]
            .as_str()
            .expect("visitor_token")
            .to_string();

        // Deactivated after signing in: the old token now answers `account_disabled`.
        app.patch(
            &format!("/v1/users/{}", deactivated.user_id),
            &admin.token,
            json!({"active": false}),
        )
        .await
        .expect(200);
        app.get("/v1/me", &deactivated.token)
            .await
            .expect_problem(401, "account_disabled");

        World {
            app,
            admin,
            manager,
            member,
            outsider,
            other_admin,
            deactivated,
            other_member,
            spare,
            login_email,
            inbox,
            line,
            move_from,
            move_to,
            other_line,
            twilio_line,
            page_line,
            widget_token,
            visitor_token,
            conversation,
            message,
            customer_contact,
            contact,
            attachment: upload,
            link,
            survey_token,
            chat,
            team,
            tag,
            tag_name,
            counter: Cell::new(100),
        }
    }

    fn session(&self, caller: Caller) -> Option<&Session> {
        match caller {
            Caller::Admin => Some(&self.admin),
            Caller::Manager => Some(&self.manager),
            Caller::Member => Some(&self.member),
            Caller::Outsider => Some(&self.outsider),
            Caller::OtherAdmin => Some(&self.other_admin),
            Caller::Deactivated => Some(&self.deactivated),
            Caller::Anonymous => None,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        self.session(caller).map(|session| session.token.as_str())
    }

    /// A number never handed out before in this test.
    fn next(&self) -> u32 {
        let n = self.counter.get();
        self.counter.set(n + 1);
        n
    }

    /// A new open, unassigned conversation on `line` (a new customer writes in).
    async fn conversation_on(&self, line: &Channel) -> i64 {
        line.text(&self.app, &customer(self.next()), "A new question")
            .await
    }

    /// A new open, unassigned conversation in the fixture's inbox.
    async fn fresh_conversation(&self) -> i64 {
        self.conversation_on(&self.line).await
    }

    /// A new contact of A with a number of its own.
    async fn fresh_contact(&self) -> i64 {
        let n = self.next();
        self.app
            .post(
                "/v1/contacts",
                &self.admin.token,
                json!({"name": format!("Contact {n}"), "phone_numbers": [contact_number(n)]}),
            )
            .await
            .expect(201)
            .id()
    }

    async fn fresh_canned(&self) -> i64 {
        let n = self.next();
        self.app
            .post(
                &format!("/v1/inboxes/{}/canned-responses", self.inbox),
                &self.admin.token,
                json!({"shortcut": format!("s{n}"), "title": format!("Canned {n}"), "body": "Thanks!"}),
            )
            .await
            .expect(201)
            .id()
    }

    async fn fresh_tag(&self) -> i64 {
        fixtures::tag(&self.app, &self.admin, &format!("tag {}", self.next())).await
    }

    /// A new team with `members` in it.
    async fn fresh_team(&self, members: &[i64]) -> i64 {
        let n = self.next();
        self.app
            .post(
                "/v1/teams",
                &self.admin.token,
                json!({"name": format!("Team {n}"), "member_ids": members}),
            )
            .await
            .expect(201)
            .id()
    }

    /// A new inbox with the manager and the member in it, and `extra` users.
    async fn fresh_inbox(&self, extra: &[i64]) -> i64 {
        let n = self.next();
        let id = self
            .app
            .inbox(
                &self.admin,
                &format!("Inbox {n}"),
                json!({}),
                &[&self.manager, &self.member],
            )
            .await;
        for user in extra {
            self.app
                .put(
                    &format!("/v1/inboxes/{id}/members/{user}"),
                    &self.admin.token,
                    None,
                )
                .await
                .expect(200);
        }
        id
    }

    async fn fresh_user(&self) -> i64 {
        let n = self.next();
        self.app
            .post(
                "/v1/users",
                &self.admin.token,
                json!({"email": format!("user{n}@example.com"), "name": format!("User {n}"), "role": "agent", "password": PASSWORD}),
            )
            .await
            .expect(201)
            .id()
    }

    /// A new session of the login user: its refresh token.
    async fn fresh_refresh_token(&self) -> String {
        self.app
            .login(&self.login_email, PASSWORD)
            .await
            .refresh_token
    }
}

/// A contact's phone number (the customers who write in are `+1415556NNNN`).
fn contact_number(n: u32) -> String {
    format!("+1415557{:04}", n % 10_000)
}

/// Sends a survey into the conversation as `session`; answers its token.
async fn survey(app: &TestApp, session: &Session, conversation: i64) -> String {
    let sent = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/conversations/{conversation}/survey"),
            Some(&session.token),
            None,
        )
        .await
        .expect(201);
    sent.body["survey_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no survey_token in {}", sent.body))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Requests

/// What one cell sends: the concrete path (with its query) and the body.
struct Call {
    path: String,
    payload: Payload,
}

enum Payload {
    None,
    Json(Value),
    Csv(String),
    /// A multipart upload with one `file` part.
    File(Vec<u8>, &'static str),
    /// A provider's call, signed as that provider signs (`header: signature`).
    Signed {
        raw: Vec<u8>,
        content_type: &'static str,
        header: &'static str,
        signature: String,
    },
    /// A WebSocket upgrade.
    Upgrade,
    /// A web chat visitor's request: their token authorizes it, whoever the caller is.
    Visitor {
        token: String,
        body: Option<Value>,
        file: Option<Vec<u8>>,
    },
}

impl Call {
    fn bare(path: impl Into<String>) -> Call {
        Call {
            path: path.into(),
            payload: Payload::None,
        }
    }

    fn json(path: impl Into<String>, body: Value) -> Call {
        Call {
            path: path.into(),
            payload: Payload::Json(body),
        }
    }

    fn signed(path: impl Into<String>, secret: &str, body: Value) -> Call {
        let raw = serde_json::to_vec(&body).expect("JSON");
        let signature = sign(secret, &raw);
        Call {
            path: path.into(),
            payload: Payload::Signed {
                raw,
                content_type: "application/json",
                header: SIGNATURE_HEADER,
                signature,
            },
        }
    }

    /// A Twilio webhook: form-encoded, signed with the account's auth token over the URL
    /// the server publishes.
    fn twilio(world: &World, path: String, params: &[(&str, &str)]) -> Call {
        let url = format!("{}{path}", world.app.running().state.config.public_base());
        let signature = fake_twilio::twilio_signature(fake_twilio::AUTH_TOKEN, &url, params);
        Call {
            path,
            payload: Payload::Signed {
                raw: fake_twilio::form_body(params).into_bytes(),
                content_type: "application/x-www-form-urlencoded",
                header: "X-Twilio-Signature",
                signature,
            },
        }
    }

    /// A Meta webhook, signed with the app secret.
    fn meta(path: String, body: &Value) -> Call {
        let raw = serde_json::to_vec(body).expect("JSON");
        let signature = fake_meta::hub_signature(fake_meta::APP_SECRET, &raw);
        Call {
            path,
            payload: Payload::Signed {
                raw,
                content_type: "application/json",
                header: "X-Hub-Signature-256",
                signature,
            },
        }
    }

    fn visitor(world: &World, path: &str, body: Option<Value>, file: Option<Vec<u8>>) -> Call {
        Call {
            path: path.into(),
            payload: Payload::Visitor {
                token: world.visitor_token.clone(),
                body,
                file,
            },
        }
    }
}

/// Sends the cell's request with the caller's bearer token (if any).
async fn perform(world: &World, method: &str, call: Call, token: Option<&str>) -> Reply {
    let app = &world.app;
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let request = app.client().request(method, app.url(&call.path));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let request = match call.payload {
        Payload::None => request,
        Payload::Json(body) => request.json(&body),
        Payload::Csv(text) => request.header("Content-Type", "text/csv").body(text),
        Payload::File(bytes, filename) => {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(filename);
            request.multipart(reqwest::multipart::Form::new().part("file", part))
        }
        Payload::Signed {
            raw,
            content_type,
            header,
            signature,
        } => request
            .header("Content-Type", content_type)
            .header(header, signature)
            .body(raw),
        Payload::Upgrade => return upgrade(world, &call.path, token).await,
        Payload::Visitor { token, body, file } => {
            let method = if body.is_some() || file.is_some() {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            };
            if call.path.starts_with("/v1/webchat/ws") {
                let path = format!("{}?visitor_token={token}", call.path);
                return upgrade(world, &path, None).await;
            }
            // The caller's own token is left out: the visitor's is the authorization.
            let request = app
                .client()
                .request(method, app.url(&call.path))
                .bearer_auth(token);
            let request = match (body, file) {
                (Some(body), _) => request.json(&body),
                (None, Some(bytes)) => {
                    let part = reqwest::multipart::Part::bytes(bytes).file_name("visitor.png");
                    request.multipart(reqwest::multipart::Form::new().part("file", part))
                }
                (None, None) => request,
            };
            return into_reply(request.send().await.expect("request reaches the server")).await;
        }
    };
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// A WebSocket upgrade: 101 when accepted (the socket is closed at once), else the refusal.
async fn upgrade(world: &World, path: &str, token: Option<&str>) -> Reply {
    let mut request = format!("ws://{}{path}", world.app.running().addr)
        .into_client_request()
        .expect("a valid WebSocket URL");
    if let Some(token) = token {
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut stream, response)) => {
            let _ = stream.close(None).await;
            Reply {
                status: response.status().as_u16(),
                headers: reqwest::header::HeaderMap::new(),
                body: Value::Null,
            }
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|bytes| {
                    serde_json::from_slice(bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
                })
                .unwrap_or(Value::Null);
            Reply {
                status: response.status().as_u16(),
                headers: reqwest::header::HeaderMap::new(),
                body,
            }
        }
        Err(other) => panic!("GET {path}: the upgrade failed without an HTTP answer: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Rows

type Make = Box<dyn Fn(Rc<World>, Caller) -> LocalBoxFuture<'static, Call>>;

/// A check of a successful answer's body, beyond its status (`Some(complaint)` when wrong).
type Check = fn(&World, Caller, &Reply) -> Option<String>;

/// One operation: method, path template, the status each caller must get (in the order of
/// [`Caller::COLUMNS`]), and how a cell builds its request.
struct Row {
    method: &'static str,
    path: &'static str,
    expected: [u16; 7],
    make: Make,
    check: Option<Check>,
}

fn row<F, Fut>(method: &'static str, path: &'static str, expected: [u16; 7], make: F) -> Row
where
    F: Fn(Rc<World>, Caller) -> Fut + 'static,
    Fut: Future<Output = Call> + 'static,
{
    Row {
        method,
        path,
        expected,
        make: Box::new(move |world, caller| make(world, caller).boxed_local()),
        check: None,
    }
}

impl Row {
    fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
}

/// Statuses every caller gets alike (public endpoints).
const fn all(status: u16) -> [u16; 7] {
    [status; 7]
}

/// `GET <path><query>` for every caller (a path without parameters).
fn read(path: &'static str, query: &'static str, expected: [u16; 7]) -> Row {
    row("GET", path, expected, move |_, _| async move {
        Call::bare(format!("{path}{query}"))
    })
}

/// Whether `id` is among the listed `items` exactly when `caller` is one of `visible_to`.
fn listing(reply: &Reply, caller: Caller, id: i64, visible_to: &[Caller]) -> Option<String> {
    let Some(items) = reply.body["items"].as_array() else {
        return Some("no items in the answer".into());
    };
    let listed = items.iter().any(|item| item["id"] == id);
    let wanted = visible_to.contains(&caller);
    (listed != wanted).then(|| {
        format!(
            "item {id} {} in the list",
            if listed { "must not be" } else { "missing" }
        )
    })
}

const ORG_A: &[Caller] = &[
    Caller::Admin,
    Caller::Manager,
    Caller::Member,
    Caller::Outsider,
];
const SUPERVISORS_A: &[Caller] = &[Caller::Admin, Caller::Manager];
const INBOX_VIEWERS: &[Caller] = &[Caller::Admin, Caller::Manager, Caller::Member];

/// The conversation's path under `/v1/conversations/{id}`.
fn conversation_path(id: i64, rest: &str) -> String {
    format!("/v1/conversations/{id}{rest}")
}

/// 👍, as a path segment.
const THUMBS_UP: &str = "%F0%9F%91%8D";

/// The matrix. Columns: admin, manager, member, outsider, other_admin, anonymous,
/// deactivated. Reasons are given where the rules of API.md are not plain.
#[rustfmt::skip]
fn table() -> Vec<Row> {
    vec![
        // --- Operations: public, whatever bearer token comes with the request.
        read("/healthz", "", all(200)),
        read("/readyz", "", all(200)),
        // Public while no SWITCHBOARD_METRICS_TOKEN is set (the test configuration); a
        // user's token is neither needed nor refused.
        read("/metrics", "", all(200)),

        // --- Auth and session: public; the body (credentials, a refresh token of a fresh
        // session) is what counts, never the bearer token.
        row("POST", "/v1/auth/login", all(200), |w, _| async move {
            Call::json("/v1/auth/login", json!({"email": w.login_email, "password": PASSWORD}))
        }),
        row("POST", "/v1/auth/refresh", all(200), |w, _| async move {
            Call::json("/v1/auth/refresh", json!({"refresh_token": w.fresh_refresh_token().await}))
        }),
        row("POST", "/v1/auth/logout", all(204), |w, _| async move {
            Call::json("/v1/auth/logout", json!({"refresh_token": w.fresh_refresh_token().await}))
        }),
        read("/v1/me", "", [200, 200, 200, 200, 200, 401, 401]),
        // Queues are the caller's own in inboxes they are a member of ("404: not a member"):
        // the admin sees the inbox but is not in it.
        row("PUT", "/v1/me/queues/{inbox_id}", [404, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/me/queues/{}", w.inbox), json!({"logged_in": true}))
        }),
        row("PUT", "/v1/me/status", [200, 200, 200, 200, 200, 401, 401], |_, _| async move {
            Call::json("/v1/me/status", json!({"status": "online"}))
        }),

        // --- Users: listing is for admins and managers; the rest is the admin's. Another
        // organization's admin lists and creates in their own organization.
        read("/v1/users", "?limit=100", [200, 200, 403, 403, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.member.user_id, SUPERVISORS_A)
        }),
        row("POST", "/v1/users", [201, 403, 403, 403, 201, 401, 401], |w, _| async move {
            let n = w.next();
            Call::json("/v1/users", json!({"email": format!("new{n}@example.com"), "name": format!("New {n}"), "role": "agent", "password": PASSWORD}))
        }),
        // One by one, users are the admin's only (API.md, Administration), not managers'.
        row("GET", "/v1/users/{id}", [200, 403, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/users/{}", w.spare))
        }),
        row("PATCH", "/v1/users/{id}", [200, 403, 403, 403, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/users/{}", w.fresh_user().await), json!({"name": "Renamed"}))
        }),

        // --- Teams: admins and managers; agents are grouped, they do not group. Teams are
        // the organization's, not an inbox's, so both agents are refused by role (403).
        read("/v1/teams", "?limit=100", [200, 200, 403, 403, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.team, SUPERVISORS_A)
        }),
        row("POST", "/v1/teams", [201, 201, 403, 403, 201, 401, 401], |w, _| async move {
            Call::json("/v1/teams", json!({"name": format!("New team {}", w.next())}))
        }),
        row("GET", "/v1/teams/{id}", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/teams/{}", w.team))
        }),
        row("PATCH", "/v1/teams/{id}", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/teams/{}", w.fresh_team(&[]).await), json!({"name": format!("Renamed team {}", w.next())}))
        }),
        row("DELETE", "/v1/teams/{id}", [204, 204, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/teams/{}", w.fresh_team(&[]).await))
        }),
        row("PUT", "/v1/teams/{id}/members/{user_id}", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/teams/{}/members/{}", w.fresh_team(&[]).await, w.spare))
        }),
        row("DELETE", "/v1/teams/{id}/members/{user_id}", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/teams/{}/members/{}", w.fresh_team(&[w.spare]).await, w.spare))
        }),

        // --- Inboxes: members see theirs, the admin all; settings are the admin's and the
        // inbox's managers'; membership and channels are the admin's. An inbox the outsider
        // is not in is unknown to them: 404 for everything addressed through it (its
        // settings, members, channels, canned responses), where the member, who sees it,
        // is refused by role (403).
        read("/v1/inboxes", "?limit=100", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.inbox, INBOX_VIEWERS)
        }),
        row("POST", "/v1/inboxes", [201, 403, 403, 403, 201, 401, 401], |w, _| async move {
            Call::json("/v1/inboxes", json!({"name": format!("New inbox {}", w.next())}))
        }),
        row("GET", "/v1/inboxes/{id}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}", w.inbox))
        }),
        // A fresh inbox with the manager and the member in it.
        row("PATCH", "/v1/inboxes/{id}", [200, 200, 403, 404, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/inboxes/{}", w.fresh_inbox(&[]).await), json!({"name": format!("Renamed inbox {}", w.next())}))
        }),
        row("GET", "/v1/inboxes/{id}/members", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}/members", w.inbox))
        }),
        row("PUT", "/v1/inboxes/{id}/members/{user_id}", [200, 403, 403, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}/members/{}", w.fresh_inbox(&[]).await, w.spare))
        }),
        row("DELETE", "/v1/inboxes/{id}/members/{user_id}", [204, 403, 403, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}/members/{}", w.fresh_inbox(&[w.spare]).await, w.spare))
        }),
        row("GET", "/v1/inboxes/{id}/channels", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}/channels", w.inbox))
        }),
        row("POST", "/v1/inboxes/{id}/channels", [201, 403, 403, 404, 404, 401, 401], |w, _| async move {
            let address = format!("+1415555{:04}", 1000 + w.next());
            Call::json(format!("/v1/inboxes/{}/channels", w.inbox), json!({"type": "sms", "address": address, "name": "Another line"}))
        }),

        // --- Canned responses: the inbox's members read them; admins and managers write.
        // They belong to the inbox, which the outsider does not see (404).
        row("GET", "/v1/inboxes/{id}/canned-responses", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/inboxes/{}/canned-responses", w.inbox))
        }),
        row("POST", "/v1/inboxes/{id}/canned-responses", [201, 201, 403, 404, 404, 401, 401], |w, _| async move {
            let n = w.next();
            Call::json(format!("/v1/inboxes/{}/canned-responses", w.inbox), json!({"shortcut": format!("new{n}"), "title": "Greeting", "body": "Hello!"}))
        }),
        row("PATCH", "/v1/canned-responses/{id}", [200, 200, 403, 404, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/canned-responses/{}", w.fresh_canned().await), json!({"title": "Updated"}))
        }),
        row("DELETE", "/v1/canned-responses/{id}", [204, 204, 403, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/canned-responses/{}", w.fresh_canned().await))
        }),

        // --- Tags: everyone reads them; admins and managers write.
        read("/v1/tags", "?limit=100", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.tag, ORG_A)
        }),
        row("POST", "/v1/tags", [201, 201, 403, 403, 201, 401, 401], |w, _| async move {
            Call::json("/v1/tags", json!({"name": format!("new tag {}", w.next())}))
        }),
        row("PATCH", "/v1/tags/{id}", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/tags/{}", w.fresh_tag().await), json!({"color": "#336699"}))
        }),
        row("DELETE", "/v1/tags/{id}", [204, 204, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/tags/{}", w.fresh_tag().await))
        }),

        // --- Conversations. The outsider and the other organization's admin may not see the
        // fixture's conversations: 404, never 403.
        read("/v1/conversations", "?sort=oldest_conversations&limit=100", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.conversation, INBOX_VIEWERS)
        }),
        // The outsider is in no inbox: every count is theirs, so every count is 0.
        read("/v1/conversations/counts", "", [200, 200, 200, 200, 200, 401, 401]).check(|_, caller, reply| {
            let open = reply.body["open"].as_i64();
            match caller {
                Caller::Outsider => (open != Some(0)).then(|| format!("{open:?} open conversations counted")),
                Caller::Admin | Caller::Manager | Caller::Member => (open < Some(1)).then(|| format!("{open:?} open conversations counted")),
                _ => None,
            }
        }),
        // Starting a conversation: on A's channel, except B's admin, who starts one on B's
        // own channel (a collection endpoint: they act in their own organization). The
        // outsider names a channel of an inbox they are not in; the document gives this
        // operation no 404, and a body naming what the caller may not use is
        // `validation_failed`, as elsewhere (an unknown assignee, merge's `other_id`).
        row("POST", "/v1/conversations", [201, 201, 201, 422, 201, 401, 401], |w, caller| async move {
            let channel = if caller == Caller::OtherAdmin { w.other_line.id } else { w.line.id };
            Call::json("/v1/conversations", json!({"channel_id": channel, "to": customer(w.next()), "body": "Hello from the shop"}))
        }),
        // Bulk actions are for supervisors. B's admin may call it, but A's conversation is
        // not theirs: it must fail on its own (not_found) and stay open.
        row("POST", "/v1/conversations/bulk", [200, 200, 403, 403, 200, 401, 401], |w, _| async move {
            Call::json("/v1/conversations/bulk", json!({"ids": [w.fresh_conversation().await], "action": "close"}))
        }).check(|_, caller, reply| {
            let done = reply.body["done"].as_array().map_or(0, Vec::len);
            let want = usize::from(caller != Caller::OtherAdmin);
            (done != want).then(|| format!("{done} conversation(s) done, {want} expected"))
        }),
        row("GET", "/v1/conversations/{id}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.conversation, ""))
        }),
        // Everyone assigns the manager (a member of the inbox): admins and managers assign
        // anyone, an agent only themselves (403), and the outsider, who may not see the
        // conversation, must hear 404 rather than the member's 403.
        row("POST", "/v1/conversations/{id}/assign", [200, 200, 403, 404, 404, 401, 401], |w, _| async move {
            Call::json(conversation_path(w.fresh_conversation().await, "/assign"), json!({"assignee_id": w.manager.user_id}))
        }),
        row("POST", "/v1/conversations/{id}/close", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::json(conversation_path(w.fresh_conversation().await, "/close"), json!({}))
        }),
        // Source and target inboxes have admin, manager and member in them (the mover must
        // be in both); the outsider is in neither.
        row("POST", "/v1/conversations/{id}/move", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            let id = w.conversation_on(&w.move_from).await;
            Call::json(conversation_path(id, "/move"), json!({"inbox_id": w.move_to}))
        }),
        row("POST", "/v1/conversations/{id}/read", [204, 204, 204, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.fresh_conversation().await, "/read"))
        }),
        row("POST", "/v1/conversations/{id}/unread", [204, 204, 204, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.fresh_conversation().await, "/unread"))
        }),
        row("PUT", "/v1/conversations/{id}/pin", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::json(conversation_path(w.fresh_conversation().await, "/pin"), json!({}))
        }),
        // Pinned first by the caller (where they can), so the unpin undoes something.
        row("DELETE", "/v1/conversations/{id}/pin", [200, 200, 200, 404, 404, 401, 401], |w, caller| async move {
            let id = w.fresh_conversation().await;
            if let Some(token) = w.token(caller) {
                let _ = w.app.put(&conversation_path(id, "/pin"), token, Some(json!({}))).await;
            }
            Call::bare(conversation_path(id, "/pin"))
        }),
        row("PUT", "/v1/conversations/{id}/tags/{tag_name}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.fresh_conversation().await, &format!("/tags/{}", w.tag_name)))
        }),
        // Tagged first by the member, so the untag undoes something.
        row("DELETE", "/v1/conversations/{id}/tags/{tag_name}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            let path = conversation_path(w.fresh_conversation().await, &format!("/tags/{}", w.tag_name));
            w.app.put(&path, &w.member.token, None).await.expect(200);
            Call::bare(path)
        }),
        row("PUT", "/v1/conversations/{id}/contact", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            let id = w.fresh_conversation().await;
            Call::json(conversation_path(id, "/contact"), json!({"contact_id": w.fresh_contact().await}))
        }),
        row("GET", "/v1/conversations/{id}/messages", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.conversation, "/messages"))
        }),
        row("POST", "/v1/conversations/{id}/messages", [201, 201, 201, 404, 404, 401, 401], |w, _| async move {
            Call::json(conversation_path(w.fresh_conversation().await, "/messages"), json!({"body": "On its way!", "kind": "message"}))
        }),
        row("POST", "/v1/conversations/{id}/survey", [201, 201, 201, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.fresh_conversation().await, "/survey"))
        }),
        row("GET", "/v1/conversations/{id}/activity", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(conversation_path(w.conversation, "/activity"))
        }),
        // Reactions are each user's own; authorized like the message's conversation.
        row("PUT", "/v1/messages/{id}/reactions/{emoji}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/messages/{}/reactions/{THUMBS_UP}", w.message))
        }),
        // The caller reacts first (where they can), so taking it back undoes something.
        row("DELETE", "/v1/messages/{id}/reactions/{emoji}", [200, 200, 200, 404, 404, 401, 401], |w, caller| async move {
            let path = format!("/v1/messages/{}/reactions/{THUMBS_UP}", w.message);
            if let Some(token) = w.token(caller) {
                let _ = w.app.put(&path, token, None).await;
            }
            Call::bare(path)
        }),

        // --- Attachments: anyone signed in uploads; a sent file is read like its
        // conversation.
        row("POST", "/v1/attachments", [201, 201, 201, 201, 201, 401, 401], |_, _| async move {
            Call { path: "/v1/attachments".into(), payload: Payload::File(png(), "photo.png") }
        }),
        row("GET", "/v1/attachments/{id}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/attachments/{}", w.attachment))
        }),
        // The signed link is the authorization, whoever presents it.
        row("GET", "/v1/public/attachments/{id}", all(200), |w, _| async move {
            Call::bare(w.link.clone())
        }),

        // --- Contacts: the organization's directory, which every user of it sees (the
        // outsider too); deleting, merging and CSV are for admins and managers, so agents
        // are refused by role (403).
        read("/v1/contacts", "?q=carla&limit=100", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.contact, ORG_A)
        }),
        row("POST", "/v1/contacts", [201, 201, 201, 201, 201, 401, 401], |w, _| async move {
            let n = w.next();
            Call::json("/v1/contacts", json!({"name": format!("New contact {n}"), "phone_numbers": [contact_number(n)]}))
        }),
        read("/v1/contacts/export", "", [200, 200, 403, 403, 200, 401, 401]).check(|_, caller, reply| {
            let listed = reply.body.as_str().is_some_and(|csv| csv.contains("Carla Contact"));
            (listed != SUPERVISORS_A.contains(&caller)).then(|| format!("A's contact listed: {listed}"))
        }),
        row("POST", "/v1/contacts/import", [200, 200, 403, 403, 200, 401, 401], |w, _| async move {
            let n = w.next();
            Call {
                path: "/v1/contacts/import".into(),
                payload: Payload::Csv(format!("name,phone_numbers\nImported {n},{}\n", contact_number(n))),
            }
        }),
        row("GET", "/v1/contacts/{id}", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/contacts/{}", w.contact))
        }),
        row("PATCH", "/v1/contacts/{id}", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/contacts/{}", w.fresh_contact().await), json!({"company": "Initech"}))
        }),
        row("DELETE", "/v1/contacts/{id}", [204, 204, 403, 403, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/contacts/{}", w.fresh_contact().await))
        }),
        row("PUT", "/v1/contacts/{id}/favorite", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/contacts/{}/favorite", w.fresh_contact().await))
        }),
        // Favorited first by the caller (where they can), so the unfavorite undoes it.
        row("DELETE", "/v1/contacts/{id}/favorite", [200, 200, 200, 200, 404, 401, 401], |w, caller| async move {
            let path = format!("/v1/contacts/{}/favorite", w.fresh_contact().await);
            if let Some(token) = w.token(caller) {
                let _ = w.app.put(&path, token, None).await;
            }
            Call::bare(path)
        }),
        row("PUT", "/v1/contacts/{id}/opt-out", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/contacts/{}/opt-out", w.fresh_contact().await), json!({"sms": true}))
        }),
        // The history applies the visibility rules: the outsider gets the contact's page,
        // without the conversation of the inbox they are not in.
        row("GET", "/v1/contacts/{id}/conversations", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/contacts/{}/conversations", w.customer_contact))
        }).check(|w, caller, reply| listing(reply, caller, w.conversation, INBOX_VIEWERS)),
        row("GET", "/v1/contacts/{id}/activity", [200, 200, 200, 200, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/contacts/{}/activity", w.contact))
        }),
        row("POST", "/v1/contacts/{id}/merge", [200, 200, 403, 403, 404, 401, 401], |w, _| async move {
            let kept = w.fresh_contact().await;
            let other = w.fresh_contact().await;
            Call::json(format!("/v1/contacts/{kept}/merge"), json!({"other_id": other}))
        }),

        // --- Internal chats: anyone signed in starts one with colleagues of their own
        // organization; a chat is its members' only.
        read("/v1/chats", "", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            listing(reply, caller, w.chat, INBOX_VIEWERS)
        }),
        row("POST", "/v1/chats", [201, 201, 201, 201, 201, 401, 401], |w, caller| async move {
            let colleague = if caller == Caller::OtherAdmin { w.other_member.user_id } else { w.spare };
            Call::json("/v1/chats", json!({"kind": "team", "name": format!("Chat {}", w.next()), "member_ids": [colleague]}))
        }),
        row("GET", "/v1/chats/{id}", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/chats/{}", w.chat))
        }),
        row("GET", "/v1/chats/{id}/messages", [200, 200, 200, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/chats/{}/messages", w.chat))
        }),
        row("POST", "/v1/chats/{id}/messages", [201, 201, 201, 404, 404, 401, 401], |w, _| async move {
            Call::json(format!("/v1/chats/{}/messages", w.chat), json!({"body": "Standup in five"}))
        }),
        row("POST", "/v1/chats/{id}/read", [204, 204, 204, 404, 404, 401, 401], |w, _| async move {
            Call::bare(format!("/v1/chats/{}/read", w.chat))
        }),

        // --- Channels in and out: the channel's signature is the authorization.
        row("POST", "/v1/channels/{id}/inbound", all(200), |w, _| async move {
            let body = json!({"external_id": external_id(), "from": customer(w.next()), "body": "Hi there"});
            Call::signed(format!("/v1/channels/{}/inbound", w.line.id), &w.line.secret, body)
        }),
        // A report for a reply of the cell's own, named by our message id.
        row("POST", "/v1/channels/{id}/status", all(200), |w, _| async move {
            let id = w.fresh_conversation().await;
            let sent = w.app
                .post(&conversation_path(id, "/messages"), &w.member.token, json!({"body": "Shipped today"}))
                .await
                .expect(201)
                .id();
            let body = json!({"external_id": sent.to_string(), "status": "delivered"});
            Call::signed(format!("/v1/channels/{}/status", w.line.id), &w.line.secret, body)
        }),
        // Twilio's and Meta's signatures are the authorization, whoever else calls.
        row("POST", "/v1/channels/{id}/twilio", all(200), |w, _| async move {
            let sid = format!("SM{}", external_id());
            let from = customer(w.next());
            let params = [("MessageSid", sid.as_str()), ("From", from.as_str()), ("To", "+14155550002"), ("Body", "Hi")];
            Call::twilio(&w, format!("/v1/channels/{}/twilio", w.twilio_line), &params)
        }),
        // A status of a message the channel never sent: taken (Twilio stops retrying).
        row("POST", "/v1/channels/{id}/twilio/status", all(200), |w, _| async move {
            let sid = format!("SM{}", external_id());
            let params = [("MessageSid", sid.as_str()), ("MessageStatus", "delivered")];
            Call::twilio(&w, format!("/v1/channels/{}/twilio/status", w.twilio_line), &params)
        }),
        row("GET", "/v1/channels/{id}/meta", all(200), |w, _| async move {
            Call::bare(format!(
                "/v1/channels/{}/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=42",
                w.page_line,
                fake_meta::VERIFY_TOKEN
            ))
        }),
        row("POST", "/v1/channels/{id}/meta", all(200), |w, _| async move {
            let sender = format!("{}", 6_000_000 + w.next());
            let payload = fake_meta::messenger_message("page", fake_meta::PAGE_ID, &sender, &external_id(), 1_765_000_000_000, Some("Hi"), &[]);
            Call::meta(format!("/v1/channels/{}/meta", w.page_line), &payload)
        }),
        // The widget token is public; visitors' tokens authorize the rest.
        row("POST", "/v1/webchat/{widget_token}/sessions", all(201), |w, _| async move {
            Call::json(format!("/v1/webchat/{}/sessions", w.widget_token), json!({}))
        }),
        row("GET", "/v1/webchat/messages", all(200), |w, _| async move {
            Call::visitor(&w, "/v1/webchat/messages", None, None)
        }),
        row("POST", "/v1/webchat/messages", all(201), |w, _| async move {
            Call::visitor(&w, "/v1/webchat/messages", Some(json!({"body": "Still there?"})), None)
        }),
        row("POST", "/v1/webchat/attachments", all(201), |w, _| async move {
            Call::visitor(&w, "/v1/webchat/attachments", None, Some(png()))
        }),
        row("GET", "/v1/webchat/ws", all(101), |w, _| async move {
            Call::visitor(&w, "/v1/webchat/ws", None, None)
        }),
        // The survey's token is the customer's authorization.
        row("GET", "/v1/public/surveys/{token}", all(200), |w, _| async move {
            Call::bare(format!("/v1/public/surveys/{}", w.survey_token))
        }),
        // Answered once: each cell answers a survey of its own.
        row("POST", "/v1/public/surveys/{token}", all(200), |w, _| async move {
            let token = survey(&w.app, &w.member, w.fresh_conversation().await).await;
            Call::json(format!("/v1/public/surveys/{token}"), json!({"rating": 5}))
        }),
        // Admins and managers; B's admin reads their own organization's (without A's inbox,
        // where a survey was answered).
        read("/v1/surveys/summary", "", [200, 200, 403, 403, 200, 401, 401]).check(|w, caller, reply| {
            let Some(inboxes) = reply.body["inboxes"].as_array() else {
                return Some("no inboxes in the summary".into());
            };
            let listed = inboxes.iter().any(|entry| entry["inbox_id"] == w.inbox);
            (listed != SUPERVISORS_A.contains(&caller)).then(|| format!("A's inbox listed: {listed}"))
        }),

        // --- Realtime.
        row("GET", "/v1/ws", [101, 101, 101, 101, 101, 401, 401], |_, _| async move {
            Call { path: "/v1/ws".into(), payload: Payload::Upgrade }
        }),
        // Each caller hears of what they may see: the fixture's conversation is not the
        // outsider's nor B's.
        read("/v1/events", "?after=0&limit=100", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            let Some(items) = reply.body["items"].as_array() else {
                return Some("no items in the page".into());
            };
            let heard = items.iter().any(|event| {
                event["data"]["conversation"]["id"] == w.conversation
                    || event["data"]["conversation_id"] == w.conversation
            });
            (heard != INBOX_VIEWERS.contains(&caller)).then(|| format!("events of the fixture's conversation heard: {heard}"))
        }),
        read("/v1/presence", "", [200, 200, 200, 200, 200, 401, 401]).check(|w, caller, reply| {
            let Some(users) = reply.body["users"].as_array() else {
                return Some("no users in the answer".into());
            };
            let listed = users.iter().any(|user| user["user_id"] == w.member.user_id);
            (listed != ORG_A.contains(&caller)).then(|| format!("A's member listed: {listed}"))
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// The test

/// The `code` a refusal must carry.
fn expected_code(status: u16, caller: Caller) -> Option<&'static str> {
    match status {
        401 if caller == Caller::Deactivated => Some("account_disabled"),
        401 => Some("unauthenticated"),
        403 => Some("forbidden"),
        404 => Some("not_found"),
        422 => Some("validation_failed"),
        _ => None,
    }
}

/// Whether a concrete path (query left out) is an instance of the template.
fn matches_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template.iter().zip(&path).all(|(want, got)| {
            (want.starts_with('{') && want.ends_with('}') && !got.is_empty()) || want == got
        })
}

/// A short, single-line view of a body.
fn excerpt(body: &Value) -> String {
    let text = match body {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let text = text.replace('\n', " ");
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// The document's operations (`METHOD path`) and the statuses each lists.
fn operations(document: &Value) -> Vec<(String, BTreeSet<u16>)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if !matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                continue;
            }
            let statuses = operation["responses"]
                .as_object()
                .map(|responses| responses.keys().filter_map(|s| s.parse().ok()).collect())
                .unwrap_or_default();
            found.push((format!("{} {path}", method.to_uppercase()), statuses));
        }
    }
    found
}

async fn every_operation_answers_each_caller_as_the_contract_says(app: TestApp) {
    let document = app
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .expect(200)
        .body;
    let documented = operations(&document);
    let rows = table();
    let mut failures = Vec::new();
    let mut cell_failures = 0;

    // The table and the document name the same operations, each once.
    let mut named = BTreeSet::new();
    for row in &rows {
        let key = format!("{} {}", row.method, row.path);
        if !named.insert(key.clone()) {
            failures.push(format!("{key}: two rows"));
        }
        match documented.iter().find(|(operation, _)| *operation == key) {
            None => failures.push(format!("{key}: a row for no operation of the document")),
            Some((_, statuses)) => {
                for status in BTreeSet::from(row.expected) {
                    if !statuses.contains(&status) {
                        failures.push(format!(
                            "{key}: expects {status}, which the document does not list"
                        ));
                    }
                }
            }
        }
    }
    for (operation, _) in &documented {
        if !named.contains(operation) {
            failures.push(format!(
                "{operation}: an operation of the document without a row"
            ));
        }
    }

    let world = Rc::new(World::build(app).await);
    let mut cells = 0;
    for row in &rows {
        for caller in Caller::RUN_ORDER {
            let call = (row.make)(world.clone(), caller).await;
            assert!(
                matches_template(row.path, &call.path),
                "the row {} {} builds the path {}",
                row.method,
                row.path,
                call.path
            );
            let path = call.path.clone();
            let reply = perform(&world, row.method, call, world.token(caller)).await;
            cells += 1;
            let expected = row.expected[caller.column()];
            let code = reply.body["code"].as_str();
            let complaint = if reply.status != expected {
                Some(format!("expected {expected}, got {}", reply.status))
            } else if let Some(want) = expected_code(expected, caller)
                && code != Some(want)
            {
                Some(format!(
                    "expected {expected} `{want}`, got {} `{}`",
                    reply.status,
                    code.unwrap_or("-")
                ))
            } else if (200..300).contains(&reply.status) {
                row.check.and_then(|check| check(&world, caller, &reply))
            } else {
                None
            };
            if let Some(complaint) = complaint {
                cell_failures += 1;
                failures.push(format!(
                    "{} {} as {}: {complaint} ({path}): {}",
                    row.method,
                    row.path,
                    caller.name(),
                    excerpt(&reply.body)
                ));
            }
        }
    }

    let mut report = String::new();
    for failure in &failures {
        let _ = writeln!(report, "  {failure}");
    }
    assert!(
        failures.is_empty(),
        "{cell_failures} of {cells} cells ({} operations × 7 callers) and {} entries of the table disagree with the contract:\n{report}",
        rows.len(),
        failures.len() - cell_failures,
    );
}

// ---------------------------------------------------------------------------------------
// Both backends, with the uploaded files in a directory of the test's own.

async fn with_files<F, Fut>(backend: Backend, test_name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    support::run_with_data_dir(backend, test_name, support::no_changes, body).await;
}

crate::on_both_backends_run_by!(with_files => every_operation_answers_each_caller_as_the_contract_says);
