//! Signing in and staying signed in: tokens, rotation, deactivation, rate limits, the
//! caller's own profile, and the problem documents every bad request gets.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_EMAIL, Backend, PASSWORD, Reply, Session, TestApp, TestDb, into_reply, test_config,
};
use crate::{on_both_backends, on_both_backends_with};

/// `POST /v1/auth/login` without asserting the outcome.
async fn try_login(app: &TestApp, email: &str, password: &str) -> Reply {
    app.send(
        Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    app.send(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh_token})),
    )
    .await
}

async fn logout(app: &TestApp, refresh_token: &str) -> Reply {
    app.send(
        Method::POST,
        "/v1/auth/logout",
        None,
        Some(json!({"refresh_token": refresh_token})),
    )
    .await
}

/// Sends `body` as is, with the given content type (`None`: no content type).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app.client().request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request
        .body(body)
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

/// `GET path` with a raw `Authorization` header (or none).
async fn get_with_authorization(app: &TestApp, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = app.client().get(app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    into_reply(request.send().await.expect("request reaches the server")).await
}

/// The e-mail `TestApp::user` gives a user called `name`.
fn email_of(admin: &Session, name: &str) -> String {
    format!(
        "{}@{}.example.com",
        name.to_lowercase().replace(' ', "."),
        admin.org_id
    )
}

/// RFC 3339 UTC with exactly millisecond precision: `2026-11-21T09:30:00.123Z`.
#[track_caller]
fn assert_millis_utc(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    let matches = text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        });
    assert!(
        matches,
        "{text:?} is not RFC 3339 UTC with millisecond precision"
    );
}

/// The `Retry-After` of a 429, as seconds.
#[track_caller]
fn retry_after(reply: &Reply) -> u64 {
    let value = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After; body: {}", reply.body));
    let seconds: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not a number of seconds"));
    assert!(seconds > 0, "Retry-After must be positive, got {seconds}");
    seconds
}

// --- Sign-in ---------------------------------------------------------------------------

async fn signing_in_returns_a_token_pair_and_the_user(app: TestApp) {
    let reply = try_login(&app, ADMIN_EMAIL, PASSWORD).await.expect(200);
    let body = &reply.body;
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_ne!(body["access_token"], body["refresh_token"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900, "the default access-token lifetime");

    let user = &body["user"];
    assert!(user["id"].is_i64(), "{user}");
    assert!(user["org_id"].is_i64(), "{user}");
    assert_eq!(user["email"], ADMIN_EMAIL);
    assert!(user["name"].is_string(), "{user}");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["active"], true);
    assert!(
        ["online", "away", "offline"].contains(&user["status"].as_str().unwrap_or_default()),
        "{user}"
    );
    assert_millis_utc(&user["created_at"]);
    assert!(
        user.get("password_hash").is_none() && user.get("password").is_none(),
        "{user}"
    );

    // The access token works, and /v1/me is the same user.
    let token = body["access_token"].as_str().unwrap_or_default();
    let me = app.get("/v1/me", token).await.expect(200);
    for field in [
        "id",
        "org_id",
        "email",
        "name",
        "role",
        "active",
        "created_at",
    ] {
        assert_eq!(me.body[field], user[field], "{field}");
    }

    // E-mail matching ignores case and surrounding blanks.
    let shouted = try_login(&app, "  ADMIN@Example.COM ", PASSWORD)
        .await
        .expect(200);
    assert_eq!(shouted.body["user"]["id"], user["id"]);
    assert_ne!(
        shouted.body["refresh_token"], body["refresh_token"],
        "each sign-in is a session of its own"
    );

    // A user created with a mixed-case e-mail signs in with any case too.
    let admin = crate::support::session_from(body);
    app.post(
        "/v1/users",
        &admin.token,
        json!({"email": "Ana.Lima@Example.com", "name": "Ana Lima", "role": "agent", "password": PASSWORD}),
    )
    .await
    .expect(201);
    let ana = try_login(&app, "ana.lima@EXAMPLE.com", PASSWORD)
        .await
        .expect(200);
    assert_eq!(ana.body["user"]["email"], "ana.lima@example.com");
    assert_eq!(ana.body["user"]["role"], "agent");
}

async fn wrong_passwords_and_unknown_emails_are_refused_alike(app: TestApp) {
    let wrong = try_login(&app, ADMIN_EMAIL, "not the password at all")
        .await
        .expect_problem(401, "invalid_credentials");
    let unknown = try_login(&app, "nobody@example.com", PASSWORD)
        .await
        .expect_problem(401, "invalid_credentials");
    // Nothing tells an attacker which of the two it was.
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.body.get("access_token").is_none());
    // An empty password is just a wrong one.
    try_login(&app, ADMIN_EMAIL, "")
        .await
        .expect_problem(401, "invalid_credentials");
    // The right password still works afterwards (below the failure limit).
    app.admin().await;
}

// --- Refresh, rotation, sign-out ---------------------------------------------------------

async fn refreshing_rotates_the_pair_and_the_old_token_stops_working(app: TestApp) {
    let first = app.admin().await;
    let renewed = refresh(&app, &first.refresh_token).await.expect(200);
    let body = &renewed.body;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["id"], first.user_id);
    assert_eq!(body["user"]["email"], ADMIN_EMAIL);
    assert_millis_utc(&body["user"]["created_at"]);
    let second = crate::support::session_from(body);
    assert_ne!(second.refresh_token, first.refresh_token);
    app.get("/v1/me", &second.token).await.expect(200);

    // The presented refresh token is spent.
    refresh(&app, &first.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");

    // Tokens that were never issued, and an empty one, are refused the same way.
    refresh(&app, "not-a-refresh-token")
        .await
        .expect_problem(401, "unauthenticated");
    refresh(&app, "")
        .await
        .expect_problem(401, "unauthenticated");
    // An access token is not a refresh token.
    refresh(&app, &second.token)
        .await
        .expect_problem(401, "unauthenticated");
}

/// Without the grace window for concurrent refreshes, any reuse is a replay at once.
fn no_reuse_grace(config: &mut api::Config) {
    config.refresh_reuse_grace_secs = 0;
}

on_both_backends_with!(no_reuse_grace =>
    refreshing_rotates_the_pair_and_the_old_token_stops_working,
    reusing_a_spent_refresh_token_revokes_the_whole_family,
);

async fn reusing_a_spent_refresh_token_revokes_the_whole_family(app: TestApp) {
    let phone = app.admin().await;
    let laptop = app.admin().await;

    let stolen = phone.refresh_token.clone();
    let rotated = refresh(&app, &phone.refresh_token).await.expect(200);
    let newest = crate::support::session_from(&rotated.body);
    app.get("/v1/me", &newest.token).await.expect(200);

    // Somebody presents the spent token again: refused, and the family is revoked, so the
    // newest token of that session stops working too.
    refresh(&app, &stolen)
        .await
        .expect_problem(401, "unauthenticated");
    refresh(&app, &newest.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    refresh(&app, &stolen)
        .await
        .expect_problem(401, "unauthenticated");
    // The access token the session holds ends with it.
    app.get("/v1/me", &newest.token)
        .await
        .expect_problem(401, "unauthenticated");
    app.get("/v1/me", &laptop.token).await.expect(200);

    // The other session of the same user is untouched, and keeps rotating.
    let laptop_next = refresh(&app, &laptop.refresh_token).await.expect(200);
    let laptop_next = crate::support::session_from(&laptop_next.body);
    refresh(&app, &laptop_next.refresh_token).await.expect(200);
    // Signing in again starts a fresh session.
    let again = app.admin().await;
    refresh(&app, &again.refresh_token).await.expect(200);
}

async fn signing_out_ends_that_session_only(app: TestApp) {
    let phone = app.admin().await;
    let laptop = app.admin().await;
    // Both sessions were just used, so the server has them checked and kept.
    app.get("/v1/me", &phone.token).await.expect(200);
    app.get("/v1/me", &laptop.token).await.expect(200);

    let out = logout(&app, &phone.refresh_token).await.expect(204);
    assert_eq!(out.body, Value::Null, "204 has no body");
    refresh(&app, &phone.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    // The phone's access token ends with its session, long before it expires.
    let ended = app
        .get("/v1/me", &phone.token)
        .await
        .expect_problem(401, "unauthenticated");
    assert!(
        ended.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("signed out")),
        "{}",
        ended.body
    );
    app.get("/v1/me", &laptop.token).await.expect(200);
    refresh(&app, &laptop.refresh_token).await.expect(200);

    // Signing out twice, or with a token nobody issued, is not an error.
    logout(&app, &phone.refresh_token).await.expect(204);
    logout(&app, "never-issued").await.expect(204);

    // Signing out with a rotated session's newest token ends the whole session.
    let tablet = app.admin().await;
    let rotated = refresh(&app, &tablet.refresh_token).await.expect(200);
    let newest = crate::support::session_from(&rotated.body);
    app.get("/v1/me", &newest.token).await.expect(200);
    logout(&app, &newest.refresh_token).await.expect(204);
    refresh(&app, &newest.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    // Every access token the session was given ends, the first one's included.
    for token in [&tablet.token, &newest.token] {
        app.get("/v1/me", token)
            .await
            .expect_problem(401, "unauthenticated");
    }

    // The body is still checked.
    send_raw(
        &app,
        Method::POST,
        "/v1/auth/logout",
        None,
        Some("application/json"),
        "{}",
    )
    .await
    .expect_problem(400, "bad_request");
}

// --- Deactivation and password changes ---------------------------------------------------

async fn a_deactivated_user_is_locked_out_at_once(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let email = email_of(&admin, "Ana");
    app.get("/v1/me", &ana.token).await.expect(200);

    let changed = app
        .patch(
            &format!("/v1/users/{}", ana.user_id),
            &admin.token,
            json!({"active": false}),
        )
        .await
        .expect(200);
    assert_eq!(changed.body["active"], false);

    // Her access token stops working at once, not when it expires.
    app.get("/v1/me", &ana.token)
        .await
        .expect_problem(401, "account_disabled");
    app.put(
        "/v1/me/status",
        &ana.token,
        Some(json!({"status": "online"})),
    )
    .await
    .expect_problem(401, "account_disabled");
    // So does her refresh token.
    refresh(&app, &ana.refresh_token)
        .await
        .expect_problem(401, "account_disabled");
    // The right password does not let her back in; a wrong one says no more than usual.
    try_login(&app, &email, PASSWORD)
        .await
        .expect_problem(401, "account_disabled");
    try_login(&app, &email, "a wrong password")
        .await
        .expect_problem(401, "invalid_credentials");
    // Colleagues are unaffected.
    app.get("/v1/me", &admin.token).await.expect(200);

    // Reactivated, she signs in again.
    let changed = app
        .patch(
            &format!("/v1/users/{}", ana.user_id),
            &admin.token,
            json!({"active": true}),
        )
        .await
        .expect(200);
    assert_eq!(changed.body["active"], true);
    let back = app.login(&email, PASSWORD).await;
    let me = app.get("/v1/me", &back.token).await.expect(200);
    assert_eq!(me.body["id"], ana.user_id);
    assert_eq!(me.body["active"], true);
    refresh(&app, &back.refresh_token).await.expect(200);
    // The sessions from before the deactivation stay ended, access tokens included, though
    // the old one has not expired yet.
    refresh(&app, &ana.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    app.get("/v1/me", &ana.token)
        .await
        .expect_problem(401, "unauthenticated");
}

async fn changing_a_password_signs_the_user_out_and_only_the_new_one_works(app: TestApp) {
    let admin = app.admin().await;
    let bo = app.user(&admin, "manager", "Bo").await;
    let email = email_of(&admin, "Bo");
    let new_password = "a brand new passphrase";

    app.patch(
        &format!("/v1/users/{}", bo.user_id),
        &admin.token,
        json!({"password": new_password}),
    )
    .await
    .expect(200);

    refresh(&app, &bo.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    // The access token from before the change ends at once too.
    app.get("/v1/me", &bo.token)
        .await
        .expect_problem(401, "unauthenticated");
    try_login(&app, &email, PASSWORD)
        .await
        .expect_problem(401, "invalid_credentials");
    let fresh = app.login(&email, new_password).await;
    assert_eq!(fresh.user_id, bo.user_id);
    refresh(&app, &fresh.refresh_token).await.expect(200);

    // A password that is too short is refused and changes nothing.
    let refused = app
        .patch(
            &format!("/v1/users/{}", bo.user_id),
            &admin.token,
            json!({"password": "short"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "password");
    app.login(&email, new_password).await;
}

// --- Rate limiting -----------------------------------------------------------------------

/// A sign-in from the client address `from` (the server trusts `X-Forwarded-For` here).
async fn login_from(app: &TestApp, from: &str, email: &str, password: &str) -> Reply {
    let response = app
        .client()
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(response).await
}

async fn failures_hold_the_account_from_that_address_only_and_the_hold_grows(app: TestApp) {
    let admin = app.admin().await;
    app.user(&admin, "agent", "Cy").await;
    let email = email_of(&admin, "Cy");
    let (guesser, owner) = ("203.0.113.50", "198.51.100.7");

    for _ in 0..3 {
        login_from(&app, guesser, &email, "guessing wrong")
            .await
            .expect_problem(401, "invalid_credentials");
    }
    // Held from there, even with the right password, whatever the case of the address…
    let held = login_from(&app, guesser, &email, PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
    let first = retry_after(&held);
    assert!(
        (4..=5).contains(&first),
        "the first hold is 5 s, got {first}"
    );
    login_from(&app, guesser, &email.to_uppercase(), PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
    // …while its owner signs in from their own address, and another account from the
    // guesser's address is not held either.
    login_from(&app, owner, &email, PASSWORD).await.expect(200);
    login_from(&app, guesser, ADMIN_EMAIL, PASSWORD)
        .await
        .expect(200);

    // After the hold, the next failure from there doubles it.
    tokio::time::sleep(std::time::Duration::from_secs(first)).await;
    login_from(&app, guesser, &email, "still guessing")
        .await
        .expect_problem(401, "invalid_credentials");
    let held = login_from(&app, guesser, &email, PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
    let second = retry_after(&held);
    assert!(
        (9..=10).contains(&second),
        "the hold doubled to 10 s, got {second}"
    );
}

fn failures_hold_the_account_from_that_address_only_and_the_hold_grows_config(
    config: &mut api::Config,
) {
    config.trust_proxy = true;
    config.login_failures_per_account = 3;
}

on_both_backends_with!(failures_hold_the_account_from_that_address_only_and_the_hold_grows_config => failures_hold_the_account_from_that_address_only_and_the_hold_grows);

async fn failures_spread_over_many_accounts_trip_the_address_limit(app: TestApp) {
    for email in ["one@example.com", "two@example.com", "three@example.com"] {
        try_login(&app, email, "whatever")
            .await
            .expect_problem(401, "invalid_credentials");
    }
    let held = try_login(&app, ADMIN_EMAIL, PASSWORD)
        .await
        .expect_problem(429, "rate_limited");
    retry_after(&held);
}

fn failures_spread_over_many_accounts_trip_the_address_limit_config(config: &mut api::Config) {
    config.login_failures_per_account = 100;
    config.login_failures_per_address = 3;
}

on_both_backends_with!(failures_spread_over_many_accounts_trip_the_address_limit_config => failures_spread_over_many_accounts_trip_the_address_limit);

/// Behind a trusted proxy, the forwarded client address is what counts, IPv4 or IPv6.
async fn behind_a_proxy_each_forwarded_client_is_counted_apart(app: TestApp) {
    for (client, neighbour) in [
        ("203.0.113.7", "203.0.113.8"),
        ("2001:db8::1", "2001:db8::2"),
    ] {
        for _ in 0..2 {
            login_from(&app, client, ADMIN_EMAIL, "wrong")
                .await
                .expect_problem(401, "invalid_credentials");
        }
        login_from(&app, client, ADMIN_EMAIL, PASSWORD)
            .await
            .expect_problem(429, "rate_limited");
        // A different client behind the same proxy is not held.
        login_from(&app, neighbour, ADMIN_EMAIL, PASSWORD)
            .await
            .expect(200);
    }
}

fn behind_a_proxy_each_forwarded_client_is_counted_apart_config(config: &mut api::Config) {
    config.trust_proxy = true;
    config.login_failures_per_account = 100;
    config.login_failures_per_address = 2;
}

on_both_backends_with!(behind_a_proxy_each_forwarded_client_is_counted_apart_config => behind_a_proxy_each_forwarded_client_is_counted_apart);

// --- Access tokens -----------------------------------------------------------------------

async fn requests_without_a_genuine_access_token_are_refused(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;

    get_with_authorization(&app, "/v1/me", None)
        .await
        .expect_problem(401, "unauthenticated");
    get_with_authorization(&app, "/v1/me", Some("Bearer garbage"))
        .await
        .expect_problem(401, "unauthenticated");
    get_with_authorization(&app, "/v1/me", Some("Bearer "))
        .await
        .expect_problem(401, "unauthenticated");
    get_with_authorization(&app, "/v1/me", Some(&format!("Basic {}", ana.token)))
        .await
        .expect_problem(401, "unauthenticated");
    // A refresh token is not an access token.
    get_with_authorization(
        &app,
        "/v1/me",
        Some(&format!("Bearer {}", ana.refresh_token)),
    )
    .await
    .expect_problem(401, "unauthenticated");

    // Ana's signature on the admin's claims: forged, refused.
    let parts: Vec<&str> = ana.token.split('.').collect();
    let admin_parts: Vec<&str> = admin.token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT");
    let forged = format!("{}.{}.{}", parts[0], admin_parts[1], parts[2]);
    app.get("/v1/me", &forged)
        .await
        .expect_problem(401, "unauthenticated");
    app.get("/v1/users", &forged)
        .await
        .expect_problem(401, "unauthenticated");

    // Another deployment, with the same bootstrap admin but its own signing secret.
    let other_db = TestDb::create(Backend::Sqlite, "auth::other_server").expect("sqlite");
    let mut config = test_config(&other_db);
    config.jwt_secret = Some("another deployment's secret, also long enough".into());
    let other = api::spawn(config).await.expect("second server starts");
    let response = app
        .client()
        .post(other.url("/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("second server answers");
    let foreign = into_reply(response).await;
    other.stop().await;
    let foreign = foreign.expect(200);
    let token = foreign.body["access_token"].as_str().expect("access_token");

    app.get("/v1/me", token)
        .await
        .expect_problem(401, "unauthenticated");
    // Its refresh token means nothing here either.
    let refresh_token = foreign.body["refresh_token"].as_str().expect("refresh");
    refresh(&app, refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    // The scheme is case-insensitive; the genuine token still works.
    let me = get_with_authorization(&app, "/v1/me", Some(&format!("bearer {}", ana.token)))
        .await
        .expect(200);
    assert_eq!(me.body["id"], ana.user_id);
}

async fn an_expired_access_token_is_refused_but_the_session_can_be_refreshed(app: TestApp) {
    let admin = app.admin().await;
    app.get("/v1/me", &admin.token)
        .await
        .expect_problem(401, "unauthenticated");
    // The refresh token is not the access token: it still trades for a new pair.
    let renewed = refresh(&app, &admin.refresh_token).await.expect(200);
    assert_eq!(renewed.body["user"]["id"], admin.user_id);
}

fn an_expired_access_token_is_refused_but_the_session_can_be_refreshed_config(
    config: &mut api::Config,
) {
    // Tokens are born a minute past their expiry (beyond any clock-skew leeway).
    config.access_token_ttl = -60;
}

on_both_backends_with!(an_expired_access_token_is_refused_but_the_session_can_be_refreshed_config => an_expired_access_token_is_refused_but_the_session_can_be_refreshed);

// --- The caller's own profile ------------------------------------------------------------

async fn me_shows_the_inboxes_and_teams_an_admin_set_up(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let bo = app.user(&admin, "agent", "Bo").await;

    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(me.body["memberships"], json!([]));
    assert_eq!(me.body["teams"], json!([]));
    assert_eq!(me.body["role"], "agent");
    assert_eq!(me.body["email"], email_of(&admin, "Ana"));
    assert_millis_utc(&me.body["created_at"]);

    let support = app.inbox(&admin, "Support", json!({}), &[&ana, &bo]).await;
    let sales = app.inbox(&admin, "Sales", json!({}), &[&ana]).await;
    let _billing = app.inbox(&admin, "Billing", json!({}), &[&bo]).await;
    let night = app
        .post(
            "/v1/teams",
            &admin.token,
            json!({"name": "Night shift", "member_ids": [ana.user_id, bo.user_id]}),
        )
        .await
        .expect(201)
        .id();
    let _vip = app
        .post(
            "/v1/teams",
            &admin.token,
            json!({"name": "VIP", "member_ids": [bo.user_id]}),
        )
        .await
        .expect(201)
        .id();

    let me = app.get("/v1/me", &ana.token).await.expect(200);
    let mut memberships = me.body["memberships"]
        .as_array()
        .expect("memberships")
        .clone();
    memberships.sort_by_key(|m| m["inbox_id"].as_i64());
    let mut expected = vec![
        json!({"inbox_id": support, "logged_in": true}),
        json!({"inbox_id": sales, "logged_in": true}),
    ];
    expected.sort_by_key(|m| m["inbox_id"].as_i64());
    assert_eq!(memberships, expected);
    assert_eq!(me.body["teams"], json!([night]));
}

async fn an_agent_logs_out_of_a_queue_and_colleagues_see_it(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;
    let bo = app.user(&admin, "manager", "Bo").await;
    let support = app.inbox(&admin, "Support", json!({}), &[&ana, &bo]).await;
    let sales = app.inbox(&admin, "Sales", json!({}), &[&bo]).await;

    let out = app
        .put(
            &format!("/v1/me/queues/{support}"),
            &ana.token,
            Some(json!({"logged_in": false})),
        )
        .await
        .expect(200);
    assert_eq!(out.body, json!({"inbox_id": support, "logged_in": false}));

    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(
        me.body["memberships"],
        json!([{"inbox_id": support, "logged_in": false}])
    );
    let members = app
        .get(&format!("/v1/inboxes/{support}/members"), &bo.token)
        .await
        .expect(200);
    let items = members.body["items"].as_array().expect("items");
    let logged_in_of = |user_id: i64| {
        items
            .iter()
            .find(|m| m["user_id"] == user_id)
            .unwrap_or_else(|| panic!("user {user_id} not in {items:?}"))["logged_in"]
            .clone()
    };
    assert_eq!(logged_in_of(ana.user_id), false);
    assert_eq!(
        logged_in_of(bo.user_id),
        true,
        "only Ana's own queue changed"
    );

    // And back in.
    app.put(
        &format!("/v1/me/queues/{support}"),
        &ana.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect(200);
    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(me.body["memberships"][0]["logged_in"], true);

    // Not her inbox, or no inbox at all: not found, and nothing changes.
    app.put(
        &format!("/v1/me/queues/{sales}"),
        &ana.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect_problem(404, "not_found");
    app.put(
        "/v1/me/queues/999999",
        &ana.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect_problem(404, "not_found");
    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(me.body["memberships"].as_array().map(Vec::len), Some(1));
    // Another organization's inbox is as unknown as a missing one.
    let other = app.other_org("Globex").await;
    let theirs = app.inbox(&other, "Theirs", json!({}), &[]).await;
    app.put(
        &format!("/v1/me/queues/{theirs}"),
        &ana.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect_problem(404, "not_found");

    // A body without `logged_in`, or a path that is not an id, is a bad request.
    app.put(
        &format!("/v1/me/queues/{support}"),
        &ana.token,
        Some(json!({})),
    )
    .await
    .expect_problem(400, "bad_request");
    app.put(
        "/v1/me/queues/support",
        &ana.token,
        Some(json!({"logged_in": true})),
    )
    .await
    .expect_problem(400, "bad_request");
}

async fn an_agent_sets_their_status_and_a_message(app: TestApp) {
    let admin = app.admin().await;
    let ana = app.user(&admin, "agent", "Ana").await;

    let away = app
        .put(
            "/v1/me/status",
            &ana.token,
            Some(json!({"status": "away", "message": "back at 2"})),
        )
        .await
        .expect(200);
    assert_eq!(away.body["id"], ana.user_id);
    assert_eq!(away.body["status"], "away");
    assert_eq!(away.body["status_message"], "back at 2");
    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(me.body["status"], "away");
    assert_eq!(me.body["status_message"], "back at 2");
    // The admin sees it in the directory too.
    let seen = app
        .get(&format!("/v1/users/{}", ana.user_id), &admin.token)
        .await
        .expect(200);
    assert_eq!(seen.body["status"], "away");

    // Without a message, the old one is cleared.
    let online = app
        .put(
            "/v1/me/status",
            &ana.token,
            Some(json!({"status": "online"})),
        )
        .await
        .expect(200);
    assert_eq!(online.body["status"], "online");
    assert_eq!(online.body["status_message"], Value::Null);

    // Unknown statuses and missing ones are bad requests; an overlong message is invalid.
    for body in [
        json!({"status": "busy"}),
        json!({"status": "AWAY"}),
        json!({"message": "no status"}),
        json!({"status": "away", "mood": "sunny"}),
    ] {
        app.put("/v1/me/status", &ana.token, Some(body))
            .await
            .expect_problem(400, "bad_request");
    }
    let long = app
        .put(
            "/v1/me/status",
            &ana.token,
            Some(json!({"status": "away", "message": "x".repeat(500)})),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(long.body["errors"][0]["field"], "message");
    let me = app.get("/v1/me", &ana.token).await.expect(200);
    assert_eq!(
        me.body["status"], "online",
        "refused changes change nothing"
    );
}

// --- Problem documents for bad input -----------------------------------------------------

async fn malformed_bodies_get_problem_documents(app: TestApp) {
    let json_type = Some("application/json");
    let login = "/v1/auth/login";

    // Not JSON at all, or cut short.
    send_raw(&app, Method::POST, login, None, json_type, "{\"email\": ")
        .await
        .expect_problem(400, "bad_request");
    send_raw(&app, Method::POST, login, None, json_type, "not json")
        .await
        .expect_problem(400, "bad_request");
    send_raw(&app, Method::POST, login, None, json_type, "")
        .await
        .expect_problem(400, "bad_request");
    // An array is not the object the contract names, even where serde would take it.
    let as_array = json!([ADMIN_EMAIL, PASSWORD]).to_string();
    send_raw(&app, Method::POST, login, None, json_type, as_array)
        .await
        .expect_problem(400, "bad_request");
    // A field the endpoint does not know.
    app.send(
        Method::POST,
        login,
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": PASSWORD, "remember": true})),
    )
    .await
    .expect_problem(400, "bad_request");
    // A field of the wrong type, or a missing one.
    app.send(
        Method::POST,
        login,
        None,
        Some(json!({"email": 42, "password": PASSWORD})),
    )
    .await
    .expect_problem(400, "bad_request");
    app.send(
        Method::POST,
        login,
        None,
        Some(json!({"email": ADMIN_EMAIL})),
    )
    .await
    .expect_problem(400, "bad_request");

    // A body that is not declared as JSON, even if it is.
    let credentials = json!({"email": ADMIN_EMAIL, "password": PASSWORD}).to_string();
    send_raw(
        &app,
        Method::POST,
        login,
        None,
        Some("text/plain"),
        credentials.clone(),
    )
    .await
    .expect_problem(415, "unsupported_media_type");
    send_raw(&app, Method::POST, login, None, None, credentials.clone())
        .await
        .expect_problem(415, "unsupported_media_type");

    // Authenticated endpoints check bodies the same way.
    let admin = app.admin().await;
    send_raw(
        &app,
        Method::PUT,
        "/v1/me/status",
        Some(&admin.token),
        json_type,
        "{status: away}",
    )
    .await
    .expect_problem(400, "bad_request");

    // About 2 MiB of valid JSON, over the 1 MiB default limit.
    let padding = "x".repeat(2 * 1024 * 1024);
    let body = json!({"email": ADMIN_EMAIL, "password": padding}).to_string();
    send_raw(
        &app,
        Method::POST,
        "/v1/auth/login",
        None,
        Some("application/json"),
        body,
    )
    .await
    .expect_problem(413, "payload_too_large");

    // None of that held the account: the same credentials, sent properly, work.
    send_raw(&app, Method::POST, login, None, json_type, credentials)
        .await
        .expect(200);
}

async fn bad_query_and_path_values_are_bad_requests(app: TestApp) {
    let admin = app.admin().await;
    for path in [
        "/v1/users?limit=0",
        "/v1/users?limit=-1",
        "/v1/users?limit=abc",
        "/v1/users?limit=101",
        "/v1/users?cursor=garbage!!",
        &format!("/v1/users?cursor={}", "A".repeat(2049)),
    ] {
        let reply = app.get(path, &admin.token).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        reply.expect_problem(400, "bad_request");
    }
    // An empty cursor is no cursor: the first page.
    let first = app.get("/v1/users?cursor=", &admin.token).await.expect(200);
    assert_eq!(first.body["items"][0]["id"], admin.user_id);
    // The edges of the range are fine.
    let page = app
        .get("/v1/users?limit=100", &admin.token)
        .await
        .expect(200);
    assert!(page.body["items"].is_array());
    assert!(page.body.get("next_cursor").is_some());
    app.get("/v1/users?limit=1", &admin.token).await.expect(200);

    app.get("/v1/users/abc", &admin.token)
        .await
        .expect_problem(400, "bad_request");
    app.get("/v1/users/99999999999999999999", &admin.token)
        .await
        .expect_problem(400, "bad_request");
    app.get("/v1/users/424242", &admin.token)
        .await
        .expect_problem(404, "not_found");

    // Unknown paths answer with a problem document, signed in or not.
    app.get("/v1/nothing-here", &admin.token)
        .await
        .expect_problem(404, "not_found");
    app.send(Method::POST, "/v2/auth/login", None, Some(json!({})))
        .await
        .expect_problem(404, "not_found");
    app.send(Method::GET, "/", None, None)
        .await
        .expect_problem(404, "not_found");
}

async fn validation_errors_name_each_invalid_field(app: TestApp) {
    let admin = app.admin().await;
    let refused = app
        .post(
            "/v1/users",
            &admin.token,
            json!({"email": "not-an-email", "name": "Dee", "role": "agent", "password": "short"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let errors = refused.body["errors"].as_array().expect("errors");
    let mut fields: Vec<&str> = errors
        .iter()
        .map(|error| error["field"].as_str().unwrap_or_default())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["email", "password"], "{}", refused.body);
    for error in errors {
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }

    // One bad field is named alone.
    let refused = app
        .post(
            "/v1/users",
            &admin.token,
            json!({"email": "dee@example.com", "name": "Dee", "role": "agent", "password": "short"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"].as_array().map(Vec::len), Some(1));
    assert_eq!(refused.body["errors"][0]["field"], "password");

    // Nothing was created: the corrected request succeeds, and its e-mail is then taken.
    let good =
        json!({"email": "dee@example.com", "name": "Dee", "role": "agent", "password": PASSWORD});
    app.post("/v1/users", &admin.token, good.clone())
        .await
        .expect(201);
    app.post(
        "/v1/users",
        &admin.token,
        json!({"email": "DEE@example.com", "name": "Dee 2", "role": "agent", "password": PASSWORD}),
    )
    .await
    .expect_problem(409, "email_taken");

    // An unknown role is a malformed body, not a validation failure.
    app.post(
        "/v1/users",
        &admin.token,
        json!({"email": "eve@example.com", "name": "Eve", "role": "owner", "password": PASSWORD}),
    )
    .await
    .expect_problem(400, "bad_request");
}

// --- Operations --------------------------------------------------------------------------

async fn operators_see_health_readiness_metrics_and_request_ids(app: TestApp) {
    let health = app
        .send(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(health.body, json!({"status": "ok"}));

    let ready = app
        .send(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    assert_eq!(ready.body["database"], "ok", "{}", ready.body);
    assert_eq!(ready.body["redis"], "not_configured", "{}", ready.body);

    let admin = app.admin().await;
    app.get("/v1/me", &admin.token).await.expect(200);
    app.get("/v1/users/1234567", &admin.token)
        .await
        .expect_problem(404, "not_found");

    let metrics = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain")),
        "{:?}",
        metrics.header("content-type")
    );
    let text = metrics.body.as_str().expect("Prometheus text");
    let counted = |route: &str, status: &str| {
        text.lines().any(|line| {
            line.starts_with("switchboard_http_requests_total{")
                && line.contains(&format!("route=\"{route}\""))
                && line.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(counted("/v1/me", "200"), "{text}");
    assert!(
        counted("/v1/users/{id}", "404"),
        "routes are labelled by pattern, not by id: {text}"
    );
    assert!(
        !text.contains("1234567"),
        "no raw ids in metric labels: {text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with("switchboard_db_pool_connections")),
        "{text}"
    );

    // Every response carries a request id, its own unless the client sent one.
    let mut seen = Vec::new();
    for reply in [
        app.send(Method::GET, "/healthz", None, None).await,
        app.get("/v1/me", &admin.token).await,
        app.send(Method::GET, "/v1/me", None, None).await,
        app.send(Method::GET, "/no/such/path", None, None).await,
        try_login(&app, ADMIN_EMAIL, "wrong password").await,
    ] {
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {} {}", reply.status, reply.body));
        assert!(!id.is_empty());
        seen.push(id.to_string());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "each request its own id: {seen:?}"
    );

    // A client's own id is echoed back, on success and on error alike.
    for (path, status) in [("/v1/me", 200), ("/v1/users/abc", 400)] {
        let response = app
            .client()
            .get(app.url(path))
            .bearer_auth(&admin.token)
            .header("X-Request-Id", "trace-4f2a-from-the-app")
            .send()
            .await
            .expect("request reaches the server");
        let reply = into_reply(response).await.expect(status);
        assert_eq!(
            reply.header("x-request-id"),
            Some("trace-4f2a-from-the-app")
        );
    }
}

on_both_backends!(
    signing_in_returns_a_token_pair_and_the_user,
    wrong_passwords_and_unknown_emails_are_refused_alike,
    signing_out_ends_that_session_only,
    a_deactivated_user_is_locked_out_at_once,
    changing_a_password_signs_the_user_out_and_only_the_new_one_works,
    requests_without_a_genuine_access_token_are_refused,
    me_shows_the_inboxes_and_teams_an_admin_set_up,
    an_agent_logs_out_of_a_queue_and_colleagues_see_it,
    an_agent_sets_their_status_and_a_message,
    malformed_bodies_get_problem_documents,
    bad_query_and_path_values_are_bad_requests,
    validation_errors_name_each_invalid_field,
    operators_see_health_readiness_metrics_and_request_ids,
);

fn metrics_token(config: &mut api::Config) {
    config.metrics_token = Some("scraper secret 7f3a".into());
}

async fn a_metrics_token_keeps_metrics_to_whoever_bears_it(app: TestApp) {
    for (why, token) in [
        ("no token", None),
        ("a wrong token", Some("scraper secret 7f3b")),
        ("a prefix of it", Some("scraper secret")),
    ] {
        let refused = app.send(Method::GET, "/metrics", token, None).await;
        assert_eq!(refused.status, 401, "{why}: {}", refused.body);
        assert_eq!(refused.body["code"], "unauthenticated", "{why}");
    }
    // A user's access token is not the metrics token either.
    let admin = app.admin().await;
    app.get("/metrics", &admin.token)
        .await
        .expect_problem(401, "unauthenticated");
    let metrics = app
        .send(Method::GET, "/metrics", Some("scraper secret 7f3a"), None)
        .await
        .expect(200);
    assert!(
        metrics
            .body
            .as_str()
            .is_some_and(|text| text.contains("switchboard_http_requests_total")),
        "{}",
        metrics.body
    );
    // Health and readiness stay open to the load balancer.
    app.send(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.send(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
}

on_both_backends_with!(metrics_token => a_metrics_token_keeps_metrics_to_whoever_bears_it);
