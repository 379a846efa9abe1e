//! Administration: the user directory, teams, tags, and what another organization may not
//! see of them (API.md, Roles and Administration). Inboxes, members, channels and canned
//! responses are in `admin_inboxes`.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{PASSWORD, Reply, TestApp};

/// An id no organization has.
pub const UNKNOWN_ID: i64 = 987_654_321;

/// Asserts a 422 `validation_failed` whose `errors` name `field`.
#[track_caller]
pub fn expect_invalid(reply: Reply, field: &str) -> Reply {
    let reply = reply.expect_problem(422, "validation_failed");
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {}", reply.body))
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert!(
        fields.contains(&field),
        "expected an error on {field:?}; body: {}",
        reply.body
    );
    reply
}

/// The ids of a list's `items`.
pub fn item_ids(reply: &Reply) -> Vec<i64> {
    items(reply)
        .iter()
        .map(|item| {
            item["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("item without id: {item}"))
        })
        .collect()
}

/// A list's `items`.
pub fn items(reply: &Reply) -> &Vec<Value> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", reply.body))
}

/// Asserts an RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-21T09:30:00.123Z`.
#[track_caller]
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 24
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && bytes[23] == b'Z'
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23) || c.is_ascii_digit());
    assert!(
        shape_ok,
        "not an RFC 3339 UTC millisecond timestamp: {text}"
    );
}

async fn create_user(app: &TestApp, token: &str, email: &str, name: &str, role: &str) -> Reply {
    app.post(
        "/v1/users",
        token,
        json!({"email": email, "name": name, "role": role, "password": PASSWORD}),
    )
    .await
}

async fn an_admin_creates_users_of_every_role(app: TestApp) {
    let admin = app.admin().await;
    for role in ["admin", "manager", "agent"] {
        let email = format!("New.{role}@Example.COM");
        let created = create_user(&app, &admin.token, &email, &format!("  New {role} "), role)
            .await
            .expect(201);
        let user = &created.body;
        assert!(user["id"].as_i64().is_some(), "body: {user}");
        assert_eq!(user["org_id"], admin.org_id);
        assert_eq!(user["email"], format!("new.{role}@example.com"));
        assert_eq!(user["name"], format!("New {role}"));
        assert_eq!(user["role"], role);
        assert_eq!(user["active"], true);
        assert!(
            matches!(user["status"].as_str(), Some("online" | "away" | "offline")),
            "body: {user}"
        );
        assert_timestamp(&user["created_at"]);

        // The admin reads back the same user, and the user signs in with any case of it.
        let fetched = app
            .get(&format!("/v1/users/{}", created.id()), &admin.token)
            .await
            .expect(200);
        assert_eq!(fetched.body, created.body);
        let session = app.login(&email, PASSWORD).await;
        assert_eq!(session.user_id, created.id());
        let me = app.get("/v1/me", &session.token).await.expect(200);
        assert_eq!(me.body["role"], role);
    }

    // What is malformed is named.
    let bad = app
        .post(
            "/v1/users",
            &admin.token,
            json!({"email": "not-an-address", "name": " ", "role": "agent", "password": "short"}),
        )
        .await;
    let bad = expect_invalid(bad, "email");
    let bad = expect_invalid(bad, "name");
    expect_invalid(bad, "password");
    app.post(
        "/v1/users",
        &admin.token,
        json!({"email": "x@example.com", "name": "X", "role": "owner", "password": PASSWORD}),
    )
    .await
    .expect_problem(400, "bad_request");
}

async fn an_e_mail_address_belongs_to_one_user_of_the_organization_whatever_its_case(app: TestApp) {
    let admin = app.admin().await;
    create_user(&app, &admin.token, "ana@example.com", "Ana", "agent")
        .await
        .expect(201);
    create_user(&app, &admin.token, "ana@example.com", "Ana Again", "agent")
        .await
        .expect_problem(409, "email_taken");
    create_user(
        &app,
        &admin.token,
        " ANA@Example.Com ",
        "Ana Shouting",
        "manager",
    )
    .await
    .expect_problem(409, "email_taken");
    // The bootstrap admin's address is taken too.
    create_user(&app, &admin.token, "Admin@Example.com", "Second", "admin")
        .await
        .expect_problem(409, "email_taken");

    let listed = app
        .get("/v1/users?limit=100", &admin.token)
        .await
        .expect(200);
    let anas = items(&listed)
        .iter()
        .filter(|user| user["email"] == "ana@example.com")
        .count();
    assert_eq!(anas, 1, "body: {}", listed.body);
}

async fn sign_in(app: &TestApp, body: Value) -> Reply {
    app.send(reqwest::Method::POST, "/v1/auth/login", None, Some(body))
        .await
}

/// An address is unique per organization: another organization's account with it is neither
/// revealed nor in the way, and sign-in asks which organization only someone who knows the
/// password of more than one.
async fn an_e_mail_may_have_an_account_in_each_organization_and_sign_in_asks_which(app: TestApp) {
    let acme = app.admin().await;
    let beta = app.other_org("Beta").await;
    let email = "ana@example.com";
    let ana_at_acme = create_user(&app, &acme.token, email, "Ana", "agent")
        .await
        .expect(201);
    // Beta creates its own Ana as if Acme's did not exist; a second one in Beta is refused.
    let ana_at_beta = create_user(&app, &beta.token, email, "Ana B", "manager")
        .await
        .expect(201);
    create_user(&app, &beta.token, " ANA@example.com", "Ana Again", "agent")
        .await
        .expect_problem(409, "email_taken");
    assert_ne!(ana_at_acme.body["id"], ana_at_beta.body["id"]);
    assert_eq!(ana_at_beta.body["org_id"], beta.org_id);

    // One password for both: sign-in lists the two organizations and signs in to the one
    // named.
    let ask = sign_in(&app, json!({"email": email, "password": PASSWORD}))
        .await
        .expect_problem(409, "organization_required");
    let mut offered: Vec<(i64, String)> = ask.body["organizations"]
        .as_array()
        .unwrap_or_else(|| panic!("no organizations in {}", ask.body))
        .iter()
        .map(|org| {
            (
                org["id"].as_i64().expect("an id"),
                org["name"].as_str().expect("a name").to_string(),
            )
        })
        .collect();
    offered.sort();
    let mut expected = vec![
        (acme.org_id, "Acme".to_string()),
        (beta.org_id, "Beta".to_string()),
    ];
    expected.sort();
    assert_eq!(offered, expected);
    let at_beta = sign_in(
        &app,
        json!({"email": email, "password": PASSWORD, "org_id": beta.org_id}),
    )
    .await
    .expect(200);
    assert_eq!(at_beta.body["user"]["id"], ana_at_beta.body["id"]);
    assert_eq!(at_beta.body["user"]["role"], "manager");
    // A wrong password says no more than for anyone else, organizations included.
    let wrong = sign_in(
        &app,
        json!({"email": email, "password": "not her password"}),
    )
    .await
    .expect_problem(401, "invalid_credentials");
    assert!(wrong.body.get("organizations").is_none(), "{}", wrong.body);
    // An organization where the address has no account is a wrong sign-in too.
    let nobody = app.other_org("Gamma").await;
    sign_in(
        &app,
        json!({"email": email, "password": PASSWORD, "org_id": nobody.org_id}),
    )
    .await
    .expect_problem(401, "invalid_credentials");

    // Beta gives its Ana another password: each password now opens one account, at once.
    let beta_password = "beta's own passphrase";
    app.patch(
        &format!("/v1/users/{}", ana_at_beta.body["id"]),
        &beta.token,
        json!({"password": beta_password}),
    )
    .await
    .expect(200);
    let at_acme = app.login(email, PASSWORD).await;
    assert_eq!(at_acme.org_id, acme.org_id);
    assert_eq!(at_acme.user_id, ana_at_acme.body["id"]);
    let at_beta = app.login(email, beta_password).await;
    assert_eq!(at_beta.org_id, beta.org_id);
    sign_in(
        &app,
        json!({"email": email, "password": beta_password, "org_id": acme.org_id}),
    )
    .await
    .expect_problem(401, "invalid_credentials");
    // Each account sees only its own organization.
    let me = app.get("/v1/me", &at_acme.token).await.expect(200);
    assert_eq!(me.body["org_id"], acme.org_id);
    app.get(
        &format!("/v1/users/{}", ana_at_beta.body["id"]),
        &acme.token,
    )
    .await
    .expect_problem(404, "not_found");
}

async fn a_manager_may_list_users_page_by_page_but_not_create_or_change_them(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    for n in 0..5 {
        create_user(
            &app,
            &admin.token,
            &format!("extra{n}@example.com"),
            &format!("Extra {n}"),
            "agent",
        )
        .await
        .expect(201);
    }
    let everyone: Vec<i64> = item_ids(
        &app.get("/v1/users?limit=100", &admin.token)
            .await
            .expect(200),
    );
    assert_eq!(everyone.len(), 8, "admin, manager, agent and five extras");

    // The manager walks the directory two at a time: every user once, oldest first.
    let mut seen = Vec::new();
    let mut path = "/v1/users?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = app.get(&path, &manager.token).await.expect(200);
        let ids = item_ids(&page);
        assert!(ids.len() <= 2, "page larger than limit: {}", page.body);
        seen.extend(ids);
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/users?limit=2&cursor={cursor}"),
            None => {
                assert!(page.body["next_cursor"].is_null(), "body: {}", page.body);
                break;
            }
        }
    }
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a user was repeated: {seen:?}");
    assert_eq!(seen, everyone);
    assert!(seen.contains(&manager.user_id) && seen.contains(&agent.user_id));

    // The default page holds them all and says it is the last.
    let all = app.get("/v1/users", &manager.token).await.expect(200);
    assert_eq!(item_ids(&all), everyone);
    assert!(all.body["next_cursor"].is_null());

    // Limits and cursors are checked.
    for bad in [
        "/v1/users?limit=0",
        "/v1/users?limit=101",
        "/v1/users?cursor=%25%25%25",
    ] {
        app.get(bad, &manager.token)
            .await
            .expect_problem(400, "bad_request");
    }

    // Managers do not create, read one by one, or change users.
    create_user(&app, &manager.token, "new@example.com", "New", "agent")
        .await
        .expect_problem(403, "forbidden");
    let agent_path = format!("/v1/users/{}", agent.user_id);
    app.get(&agent_path, &manager.token)
        .await
        .expect_problem(403, "forbidden");
    app.patch(&agent_path, &manager.token, json!({"role": "manager"}))
        .await
        .expect_problem(403, "forbidden");

    // Agents do not even list them.
    app.get("/v1/users", &agent.token)
        .await
        .expect_problem(403, "forbidden");
    create_user(&app, &agent.token, "new@example.com", "New", "agent")
        .await
        .expect_problem(403, "forbidden");
    app.get(&format!("/v1/users/{}", manager.user_id), &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.patch(&agent_path, &agent.token, json!({"name": "Me"}))
        .await
        .expect_problem(403, "forbidden");

    // Nothing changed.
    let still = app.get(&agent_path, &admin.token).await.expect(200);
    assert_eq!(still.body["role"], "agent");
    assert_eq!(still.body["name"], "Alex Agent");
}

async fn an_admin_changes_users_but_cannot_lock_themselves_out(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let agent_path = format!("/v1/users/{}", agent.user_id);

    let renamed = app
        .patch(&agent_path, &admin.token, json!({"name": "Alexandra"}))
        .await
        .expect(200);
    assert_eq!(renamed.body["name"], "Alexandra");
    assert_eq!(renamed.body["role"], "agent");
    assert_eq!(renamed.body["id"], agent.user_id);
    let promoted = app
        .patch(&agent_path, &admin.token, json!({"role": "manager"}))
        .await
        .expect(200);
    assert_eq!(promoted.body["role"], "manager");
    assert_eq!(promoted.body["name"], "Alexandra");
    let me = app.get("/v1/me", &agent.token).await.expect(200);
    assert_eq!(me.body["role"], "manager");
    assert_eq!(me.body["name"], "Alexandra");
    expect_invalid(
        app.patch(&agent_path, &admin.token, json!({"name": ""}))
            .await,
        "name",
    );
    expect_invalid(
        app.patch(&agent_path, &admin.token, json!({"password": "short"}))
            .await,
        "password",
    );
    app.patch(&agent_path, &admin.token, json!({"nickname": "Al"}))
        .await
        .expect_problem(400, "bad_request");

    // No self-deactivation, no self-demotion; re-stating the own role is fine.
    let me_path = format!("/v1/users/{}", admin.user_id);
    expect_invalid(
        app.patch(&me_path, &admin.token, json!({"active": false}))
            .await,
        "active",
    );
    expect_invalid(
        app.patch(&me_path, &admin.token, json!({"role": "agent"}))
            .await,
        "role",
    );
    expect_invalid(
        app.patch(&me_path, &admin.token, json!({"role": "manager"}))
            .await,
        "role",
    );
    let same = app
        .patch(
            &me_path,
            &admin.token,
            json!({"role": "admin", "name": "Boss"}),
        )
        .await
        .expect(200);
    assert_eq!(same.body["role"], "admin");
    assert_eq!(same.body["active"], true);
    assert_eq!(same.body["name"], "Boss");

    // Another admin may be demoted and deactivated; deactivation locks them out at once.
    let other_admin = app.user(&admin, "admin", "Other Admin").await;
    let other_path = format!("/v1/users/{}", other_admin.user_id);
    let off = app
        .patch(
            &other_path,
            &admin.token,
            json!({"role": "agent", "active": false}),
        )
        .await
        .expect(200);
    assert_eq!(off.body["role"], "agent");
    assert_eq!(off.body["active"], false);
    app.get("/v1/me", &other_admin.token)
        .await
        .expect_problem(401, "account_disabled");

    // Unknown ids.
    let unknown = format!("/v1/users/{UNKNOWN_ID}");
    app.get(&unknown, &admin.token)
        .await
        .expect_problem(404, "not_found");
    app.patch(&unknown, &admin.token, json!({"name": "Nobody"}))
        .await
        .expect_problem(404, "not_found");
}

async fn managers_build_teams_and_agents_may_not(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let agent2 = app.user(&admin, "agent", "Bea Agent").await;

    let created = app
        .post(
            "/v1/teams",
            &manager.token,
            json!({"name": " Billing ", "member_ids": [agent2.user_id, agent.user_id]}),
        )
        .await
        .expect(201);
    let team = created.id();
    assert_eq!(created.body["name"], "Billing");
    let mut expected = vec![agent.user_id, agent2.user_id];
    expected.sort_unstable();
    let mut members: Vec<i64> = created.body["member_ids"]
        .as_array()
        .expect("member_ids")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    members.sort_unstable();
    assert_eq!(members, expected);
    assert_timestamp(&created.body["created_at"]);

    let empty = app
        .post("/v1/teams", &admin.token, json!({"name": "Sales"}))
        .await
        .expect(201);
    assert_eq!(empty.body["member_ids"], json!([]));

    let listed = app.get("/v1/teams", &manager.token).await.expect(200);
    assert_eq!(item_ids(&listed), vec![team, empty.id()]);
    assert!(listed.body["next_cursor"].is_null());
    let first = app.get("/v1/teams?limit=1", &admin.token).await.expect(200);
    assert_eq!(item_ids(&first), vec![team]);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = app
        .get(&format!("/v1/teams?limit=1&cursor={cursor}"), &admin.token)
        .await
        .expect(200);
    assert_eq!(item_ids(&second), vec![empty.id()]);
    assert!(second.body["next_cursor"].is_null());

    let team_path = format!("/v1/teams/{team}");
    let fetched = app.get(&team_path, &admin.token).await.expect(200);
    assert_eq!(fetched.body, created.body);
    let renamed = app
        .patch(
            &team_path,
            &manager.token,
            json!({"name": "Billing & Refunds"}),
        )
        .await
        .expect(200);
    assert_eq!(renamed.body["name"], "Billing & Refunds");
    assert_eq!(renamed.body["member_ids"], created.body["member_ids"]);
    let unchanged = app
        .patch(&team_path, &manager.token, json!({}))
        .await
        .expect(200);
    assert_eq!(unchanged.body["name"], "Billing & Refunds");

    // Agents are grouped, they do not group.
    app.get("/v1/teams", &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.post("/v1/teams", &agent.token, json!({"name": "Rebels"}))
        .await
        .expect_problem(403, "forbidden");
    app.get(&team_path, &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.patch(&team_path, &agent.token, json!({"name": "Mine"}))
        .await
        .expect_problem(403, "forbidden");
    app.put(
        &format!("{team_path}/members/{}", agent.user_id),
        &agent.token,
        None,
    )
    .await
    .expect_problem(403, "forbidden");
    app.delete(
        &format!("{team_path}/members/{}", agent.user_id),
        &agent.token,
    )
    .await
    .expect_problem(403, "forbidden");
    app.delete(&team_path, &agent.token)
        .await
        .expect_problem(403, "forbidden");
    let after = app.get(&team_path, &admin.token).await.expect(200);
    assert_eq!(after.body["name"], "Billing & Refunds");
}

async fn team_names_are_unique_and_members_are_users_of_the_organization(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let globex = app.other_org("Globex").await;

    expect_invalid(
        app.post(
            "/v1/teams",
            &admin.token,
            json!({"name": "Ghosts", "member_ids": [agent.user_id, UNKNOWN_ID]}),
        )
        .await,
        "member_ids",
    );
    expect_invalid(
        app.post(
            "/v1/teams",
            &admin.token,
            json!({"name": "Spies", "member_ids": [globex.user_id]}),
        )
        .await,
        "member_ids",
    );
    expect_invalid(
        app.post("/v1/teams", &admin.token, json!({"name": "  "}))
            .await,
        "name",
    );
    // Refused teams were not created half-way.
    let listed = app.get("/v1/teams", &admin.token).await.expect(200);
    assert_eq!(items(&listed).len(), 0, "body: {}", listed.body);

    let support = app
        .post("/v1/teams", &admin.token, json!({"name": "Support"}))
        .await
        .expect(201)
        .id();
    app.post("/v1/teams", &admin.token, json!({"name": "Support"}))
        .await
        .expect_problem(409, "duplicate");
    let sales = app
        .post("/v1/teams", &admin.token, json!({"name": "Sales"}))
        .await
        .expect(201)
        .id();
    app.patch(
        &format!("/v1/teams/{sales}"),
        &admin.token,
        json!({"name": "Support"}),
    )
    .await
    .expect_problem(409, "duplicate");
    expect_invalid(
        app.patch(
            &format!("/v1/teams/{sales}"),
            &admin.token,
            json!({"name": ""}),
        )
        .await,
        "name",
    );
    app.post("/v1/teams", &admin.token, json!({"name": "X", "lead": 1}))
        .await
        .expect_problem(400, "bad_request");

    // Another organization may have its own "Support".
    app.post("/v1/teams", &globex.token, json!({"name": "Support"}))
        .await
        .expect(201);

    let listed = app.get("/v1/teams", &admin.token).await.expect(200);
    assert_eq!(item_ids(&listed), vec![support, sales]);
    assert_eq!(items(&listed)[1]["name"], "Sales");
}

async fn team_membership_is_idempotent_and_shows_in_the_members_profile(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let team = app
        .post("/v1/teams", &admin.token, json!({"name": "Night shift"}))
        .await
        .expect(201)
        .id();
    let member_path = format!("/v1/teams/{team}/members/{}", agent.user_id);

    for _ in 0..2 {
        let added = app
            .put(&member_path, &manager.token, None)
            .await
            .expect(200);
        assert_eq!(added.body["id"], team);
        assert_eq!(added.body["name"], "Night shift");
        assert_eq!(added.body["member_ids"], json!([agent.user_id]));
    }
    let me = app.get("/v1/me", &agent.token).await.expect(200);
    assert_eq!(me.body["teams"], json!([team]));
    let other_me = app.get("/v1/me", &manager.token).await.expect(200);
    assert_eq!(other_me.body["teams"], json!([]));

    app.put(
        &format!("/v1/teams/{team}/members/{UNKNOWN_ID}"),
        &admin.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    app.put(
        &format!("/v1/teams/{UNKNOWN_ID}/members/{}", agent.user_id),
        &admin.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");

    for _ in 0..2 {
        let removed = app.delete(&member_path, &manager.token).await.expect(200);
        assert_eq!(removed.body["id"], team);
        assert_eq!(removed.body["member_ids"], json!([]));
    }
    let me = app.get("/v1/me", &agent.token).await.expect(200);
    assert_eq!(me.body["teams"], json!([]));

    // Deleting a team takes its memberships with it.
    app.put(&member_path, &admin.token, None).await.expect(200);
    let team_path = format!("/v1/teams/{team}");
    let deleted = app.delete(&team_path, &manager.token).await.expect(204);
    assert!(deleted.body.is_null(), "body: {}", deleted.body);
    app.get(&team_path, &admin.token)
        .await
        .expect_problem(404, "not_found");
    app.patch(&team_path, &admin.token, json!({"name": "Back"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&team_path, &admin.token)
        .await
        .expect_problem(404, "not_found");
    app.put(&member_path, &admin.token, None)
        .await
        .expect_problem(404, "not_found");
    let listed = app.get("/v1/teams", &admin.token).await.expect(200);
    assert!(items(&listed).is_empty(), "body: {}", listed.body);
    let me = app.get("/v1/me", &agent.token).await.expect(200);
    assert_eq!(me.body["teams"], json!([]));
}

async fn everyone_reads_tags_and_supervisors_create_them(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;

    let vip = app
        .post("/v1/tags", &admin.token, json!({"name": "vip"}))
        .await
        .expect(201);
    assert!(vip.body["id"].as_i64().is_some());
    assert_eq!(vip.body["name"], "vip");
    assert_eq!(vip.body["color"], "#8a8f98");
    let billing = app
        .post(
            "/v1/tags",
            &manager.token,
            json!({"name": "billing", "color": "#1F8CEB"}),
        )
        .await
        .expect(201);
    assert_eq!(billing.body["name"], "billing");
    assert_eq!(billing.body["color"], "#1f8ceb");

    app.post("/v1/tags", &agent.token, json!({"name": "mine"}))
        .await
        .expect_problem(403, "forbidden");
    app.post("/v1/tags", &manager.token, json!({"name": "vip"}))
        .await
        .expect_problem(409, "duplicate");
    for color in ["blue", "#12345", "#gggggg", "1f8ceb"] {
        expect_invalid(
            app.post(
                "/v1/tags",
                &admin.token,
                json!({"name": "colourful", "color": color}),
            )
            .await,
            "color",
        );
    }
    expect_invalid(
        app.post("/v1/tags", &admin.token, json!({"name": "vip/urgent"}))
            .await,
        "name",
    );
    expect_invalid(
        app.post("/v1/tags", &admin.token, json!({"name": " "}))
            .await,
        "name",
    );
    app.post("/v1/tags", &admin.token, json!({"label": "x"}))
        .await
        .expect_problem(400, "bad_request");

    // Agents read the whole list, by name whatever the case.
    let urgent = app
        .post("/v1/tags", &manager.token, json!({"name": "Urgent"}))
        .await
        .expect(201);
    for reader in [&agent, &manager, &admin] {
        let listed = app.get("/v1/tags", &reader.token).await.expect(200);
        assert_eq!(
            listed.body["items"],
            json!([billing.body, urgent.body, vip.body]),
            "body: {}",
            listed.body
        );
    }
}

async fn another_organization_cannot_see_or_touch_our_users_teams_and_tags(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let team = app
        .post(
            "/v1/teams",
            &admin.token,
            json!({"name": "Support", "member_ids": [agent.user_id]}),
        )
        .await
        .expect(201)
        .id();
    app.post("/v1/tags", &admin.token, json!({"name": "vip"}))
        .await
        .expect(201);

    let globex = app.other_org("Globex").await;
    assert_ne!(globex.org_id, admin.org_id);
    let globex_agent = app.user(&globex, "agent", "Gina Globex").await;
    let globex_team = app
        .post("/v1/teams", &globex.token, json!({"name": "Globex crew"}))
        .await
        .expect(201)
        .id();

    // Our users are unknown to them.
    for user in [agent.user_id, admin.user_id] {
        let path = format!("/v1/users/{user}");
        app.get(&path, &globex.token)
            .await
            .expect_problem(404, "not_found");
        app.patch(&path, &globex.token, json!({"name": "Hijacked"}))
            .await
            .expect_problem(404, "not_found");
    }
    let their_users = app.get("/v1/users", &globex.token).await.expect(200);
    let mut expected = vec![globex.user_id, globex_agent.user_id];
    expected.sort_unstable();
    assert_eq!(item_ids(&their_users), expected);
    assert!(
        items(&their_users)
            .iter()
            .all(|user| user["org_id"] == globex.org_id)
    );
    let our_users = app.get("/v1/users", &admin.token).await.expect(200);
    assert_eq!(item_ids(&our_users), vec![admin.user_id, agent.user_id]);

    // Our teams too, and our users cannot join theirs (nor theirs ours).
    let team_path = format!("/v1/teams/{team}");
    app.get(&team_path, &globex.token)
        .await
        .expect_problem(404, "not_found");
    app.patch(&team_path, &globex.token, json!({"name": "Ours now"}))
        .await
        .expect_problem(404, "not_found");
    for member in [agent.user_id, globex_agent.user_id] {
        let path = format!("{team_path}/members/{member}");
        app.put(&path, &globex.token, None)
            .await
            .expect_problem(404, "not_found");
        app.delete(&path, &globex.token)
            .await
            .expect_problem(404, "not_found");
    }
    app.delete(&team_path, &globex.token)
        .await
        .expect_problem(404, "not_found");
    app.put(
        &format!("/v1/teams/{globex_team}/members/{}", agent.user_id),
        &globex.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    app.put(
        &format!("/v1/teams/{team}/members/{}", globex_agent.user_id),
        &admin.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    let their_teams = app.get("/v1/teams", &globex.token).await.expect(200);
    assert_eq!(item_ids(&their_teams), vec![globex_team]);
    assert_eq!(items(&their_teams)[0]["member_ids"], json!([]));
    let ours = app.get(&team_path, &admin.token).await.expect(200);
    assert_eq!(ours.body["name"], "Support");
    assert_eq!(ours.body["member_ids"], json!([agent.user_id]));

    // Tags: each organization its own list, and the same name in both.
    let their_tags = app.get("/v1/tags", &globex.token).await.expect(200);
    assert!(items(&their_tags).is_empty(), "body: {}", their_tags.body);
    let their_vip = app
        .post(
            "/v1/tags",
            &globex.token,
            json!({"name": "vip", "color": "#000000"}),
        )
        .await
        .expect(201);
    let their_tags = app.get("/v1/tags", &globex_agent.token).await.expect(200);
    assert_eq!(item_ids(&their_tags), vec![their_vip.id()]);
    let our_tags = app.get("/v1/tags", &agent.token).await.expect(200);
    assert_eq!(items(&our_tags).len(), 1);
    assert_eq!(items(&our_tags)[0]["color"], "#8a8f98");
}

on_both_backends!(
    an_admin_creates_users_of_every_role,
    an_e_mail_address_belongs_to_one_user_of_the_organization_whatever_its_case,
    an_e_mail_may_have_an_account_in_each_organization_and_sign_in_asks_which,
    a_manager_may_list_users_page_by_page_but_not_create_or_change_them,
    an_admin_changes_users_but_cannot_lock_themselves_out,
    managers_build_teams_and_agents_may_not,
    team_names_are_unique_and_members_are_users_of_the_organization,
    team_membership_is_idempotent_and_shows_in_the_members_profile,
    everyone_reads_tags_and_supervisors_create_them,
    another_organization_cannot_see_or_touch_our_users_teams_and_tags,
);
