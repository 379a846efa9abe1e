//! Administration of inboxes: settings, private inboxes and members, and what another
//! organization may not see of them (API.md, Administration). Channels and canned responses
//! are in `admin_channels`.

use serde_json::{Value, json};

use crate::admin::{UNKNOWN_ID, assert_timestamp, expect_invalid, item_ids, items};
use crate::admin_channels::canned_post;
use crate::on_both_backends;
use crate::support::{Reply, TestApp};

async fn create_inbox(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post("/v1/inboxes", token, body).await
}

fn member_ids(reply: &Reply) -> Vec<i64> {
    items(reply)
        .iter()
        .map(|member| member["user_id"].as_i64().expect("user_id"))
        .collect()
}

async fn only_admins_create_inboxes_and_unset_settings_take_the_defaults(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    for refused in [&manager, &agent] {
        create_inbox(&app, &refused.token, json!({"name": "Mine"}))
            .await
            .expect_problem(403, "forbidden");
    }

    let support = create_inbox(&app, &admin.token, json!({"name": " Support "}))
        .await
        .expect(201);
    let body = &support.body;
    assert!(body["id"].as_i64().is_some(), "body: {body}");
    assert_eq!(body["name"], "Support");
    assert_eq!(body["kind"], "shared");
    assert_eq!(body["owner_id"], Value::Null);
    assert_eq!(body["assignment_mode"], true);
    assert_eq!(body["agent_visibility"], "all");
    assert_eq!(body["allow_move"], true);
    assert_eq!(body["auto_assign"], false);
    assert_eq!(body["auto_assign_limit"], Value::Null);
    assert_timestamp(&body["created_at"]);
    let fetched = app
        .get(&format!("/v1/inboxes/{}", support.id()), &admin.token)
        .await
        .expect(200);
    assert_eq!(fetched.body, support.body);
    let members = app
        .get(
            &format!("/v1/inboxes/{}/members", support.id()),
            &admin.token,
        )
        .await
        .expect(200);
    assert!(items(&members).is_empty(), "a new inbox has no members");

    let settings = json!({
        "name": "VIP",
        "kind": "shared",
        "assignment_mode": false,
        "agent_visibility": "assigned_and_unassigned",
        "allow_move": false,
        "auto_assign": true,
        "auto_assign_limit": 5,
    });
    let vip = create_inbox(&app, &admin.token, settings.clone())
        .await
        .expect(201);
    for (field, value) in settings.as_object().expect("object") {
        assert_eq!(&vip.body[field], value, "{field}; body: {}", vip.body);
    }
    let fetched = app
        .get(&format!("/v1/inboxes/{}", vip.id()), &admin.token)
        .await
        .expect(200);
    assert_eq!(fetched.body, vip.body);

    let listed = app.get("/v1/inboxes", &admin.token).await.expect(200);
    assert_eq!(item_ids(&listed), vec![support.id(), vip.id()]);
}

async fn inbox_settings_are_checked(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    expect_invalid(
        create_inbox(&app, &admin.token, json!({"name": "  "})).await,
        "name",
    );
    for limit in [0, -1, 1001] {
        expect_invalid(
            create_inbox(
                &app,
                &admin.token,
                json!({"name": "Limited", "auto_assign_limit": limit}),
            )
            .await,
            "auto_assign_limit",
        );
    }
    expect_invalid(
        create_inbox(
            &app,
            &admin.token,
            json!({"name": "Mine", "kind": "private"}),
        )
        .await,
        "owner_id",
    );
    expect_invalid(
        create_inbox(
            &app,
            &admin.token,
            json!({"name": "Mine", "kind": "private", "owner_id": UNKNOWN_ID}),
        )
        .await,
        "owner_id",
    );
    expect_invalid(
        create_inbox(
            &app,
            &admin.token,
            json!({"name": "Shared", "owner_id": agent.user_id}),
        )
        .await,
        "owner_id",
    );
    for malformed in [
        json!({"name": "Odd", "kind": "public"}),
        json!({"name": "Odd", "agent_visibility": "none"}),
        json!({"name": "Odd", "colour": "red"}),
        json!({"kind": "shared"}),
    ] {
        create_inbox(&app, &admin.token, malformed)
            .await
            .expect_problem(400, "bad_request");
    }
    let listed = app.get("/v1/inboxes", &admin.token).await.expect(200);
    assert!(items(&listed).is_empty(), "refused inboxes were created");

    let id = app.inbox(&admin, "Support", json!({}), &[]).await;
    let path = format!("/v1/inboxes/{id}");
    expect_invalid(
        app.patch(&path, &admin.token, json!({"name": ""})).await,
        "name",
    );
    expect_invalid(
        app.patch(&path, &admin.token, json!({"auto_assign_limit": 0}))
            .await,
        "auto_assign_limit",
    );
    for malformed in [
        json!({"kind": "private"}),
        json!({"owner_id": agent.user_id}),
        json!({"allow_move": "yes"}),
    ] {
        app.patch(&path, &admin.token, malformed)
            .await
            .expect_problem(400, "bad_request");
    }
    let unchanged = app.get(&path, &admin.token).await.expect(200);
    assert_eq!(unchanged.body["name"], "Support");
    assert_eq!(unchanged.body["kind"], "shared");
    assert_eq!(unchanged.body["auto_assign_limit"], Value::Null);
}

async fn members_see_their_inboxes_and_others_do_not_know_they_exist(app: TestApp) {
    let admin = app.admin().await;
    let member = app.user(&admin, "agent", "Alex Agent").await;
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let support = app.inbox(&admin, "Support", json!({}), &[&member]).await;
    let sales = app.inbox(&admin, "Sales", json!({}), &[&manager]).await;

    let all = app.get("/v1/inboxes", &admin.token).await.expect(200);
    assert_eq!(item_ids(&all), vec![support, sales]);
    assert!(all.body["next_cursor"].is_null());
    let mine = app.get("/v1/inboxes", &member.token).await.expect(200);
    assert_eq!(item_ids(&mine), vec![support]);
    let managers = app.get("/v1/inboxes", &manager.token).await.expect(200);
    assert_eq!(item_ids(&managers), vec![sales]);
    let none = app.get("/v1/inboxes", &outsider.token).await.expect(200);
    assert_eq!(none.body, json!({"items": [], "next_cursor": null}));

    let support_path = format!("/v1/inboxes/{support}");
    let seen = app.get(&support_path, &member.token).await.expect(200);
    assert_eq!(seen.body["name"], "Support");
    for stranger in [&outsider, &manager] {
        app.get(&support_path, &stranger.token)
            .await
            .expect_problem(404, "not_found");
    }
    app.get(&format!("/v1/inboxes/{UNKNOWN_ID}"), &admin.token)
        .await
        .expect_problem(404, "not_found");

    let me = app.get("/v1/me", &member.token).await.expect(200);
    assert_eq!(
        me.body["memberships"],
        json!([{"inbox_id": support, "logged_in": true}])
    );
}

async fn admins_and_the_inbox_managers_change_its_settings(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let other_manager = app.user(&admin, "manager", "Max Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let id = app
        .inbox(&admin, "Support", json!({}), &[&manager, &agent])
        .await;
    let path = format!("/v1/inboxes/{id}");

    let by_admin = app
        .patch(
            &path,
            &admin.token,
            json!({"name": "Customer care", "auto_assign": true, "auto_assign_limit": 3}),
        )
        .await
        .expect(200);
    assert_eq!(by_admin.body["name"], "Customer care");
    assert_eq!(by_admin.body["auto_assign"], true);
    assert_eq!(by_admin.body["auto_assign_limit"], 3);
    assert_eq!(by_admin.body["id"], id);

    // The inbox's manager changes settings; leaving the limit out keeps it.
    let by_manager = app
        .patch(
            &path,
            &manager.token,
            json!({"agent_visibility": "assigned_and_unassigned", "allow_move": false, "assignment_mode": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        by_manager.body["agent_visibility"],
        "assigned_and_unassigned"
    );
    assert_eq!(by_manager.body["allow_move"], false);
    assert_eq!(by_manager.body["assignment_mode"], false);
    assert_eq!(by_manager.body["auto_assign_limit"], 3);
    assert_eq!(by_manager.body["name"], "Customer care");
    assert_eq!(by_manager.body["auto_assign"], true);
    assert_eq!(by_manager.body["created_at"], by_admin.body["created_at"]);

    // An explicit null lifts the limit.
    let unlimited = app
        .patch(&path, &manager.token, json!({"auto_assign_limit": null}))
        .await
        .expect(200);
    assert_eq!(unlimited.body["auto_assign_limit"], Value::Null);
    assert_eq!(unlimited.body["auto_assign"], true);
    let read = app.get(&path, &agent.token).await.expect(200);
    assert_eq!(read.body, unlimited.body);

    // Another manager does not know the inbox; its agent may read but not change it.
    app.patch(&path, &other_manager.token, json!({"name": "Taken"}))
        .await
        .expect_problem(404, "not_found");
    app.patch(&path, &agent.token, json!({"name": "Mine"}))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &outsider.token, json!({"name": "Mine"}))
        .await
        .expect_problem(404, "not_found");
    app.patch(&path, &admin.token, json!({"nickname": "cc"}))
        .await
        .expect_problem(400, "bad_request");
    app.patch(
        &format!("/v1/inboxes/{UNKNOWN_ID}"),
        &admin.token,
        json!({"name": "Ghost"}),
    )
    .await
    .expect_problem(404, "not_found");
    let after = app.get(&path, &admin.token).await.expect(200);
    assert_eq!(after.body, unlimited.body);
}

async fn a_private_inbox_belongs_to_its_owner_alone(app: TestApp) {
    let admin = app.admin().await;
    let owner = app.user(&admin, "agent", "Olivia Owner").await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let shared = app
        .inbox(&admin, "Support", json!({}), &[&owner, &manager, &agent])
        .await;

    let created = create_inbox(
        &app,
        &admin.token,
        json!({"name": "Olivia's number", "kind": "private", "owner_id": owner.user_id}),
    )
    .await
    .expect(201);
    let private = created.id();
    assert_eq!(created.body["kind"], "private");
    assert_eq!(created.body["owner_id"], owner.user_id);
    let path = format!("/v1/inboxes/{private}");

    // The owner is its one member and sees it.
    let members = app
        .get(&format!("{path}/members"), &owner.token)
        .await
        .expect(200);
    assert_eq!(member_ids(&members), vec![owner.user_id]);
    let listed = app.get("/v1/inboxes", &owner.token).await.expect(200);
    assert_eq!(item_ids(&listed), vec![shared, private]);
    let seen = app.get(&path, &owner.token).await.expect(200);
    assert_eq!(seen.body, created.body);
    let me = app.get("/v1/me", &owner.token).await.expect(200);
    let memberships: Vec<i64> = me.body["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter_map(|membership| membership["inbox_id"].as_i64())
        .collect();
    assert!(memberships.contains(&private), "body: {}", me.body);

    // Nobody else of the organization knows it, not even a manager.
    for other in [&manager, &agent] {
        let listed = app.get("/v1/inboxes", &other.token).await.expect(200);
        assert_eq!(item_ids(&listed), vec![shared]);
        app.get(&path, &other.token)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("{path}/members"), &other.token)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("{path}/channels"), &other.token)
            .await
            .expect_problem(404, "not_found");
        app.patch(&path, &other.token, json!({"name": "Peek"}))
            .await
            .expect_problem(404, "not_found");
    }

    // It takes no other member; the owner again is fine.
    for other in [&manager, &agent] {
        expect_invalid(
            app.put(
                &format!("{path}/members/{}", other.user_id),
                &admin.token,
                None,
            )
            .await,
            "user_id",
        );
    }
    app.put(
        &format!("{path}/members/{}", owner.user_id),
        &admin.token,
        None,
    )
    .await
    .expect(200);
    let members = app
        .get(&format!("{path}/members"), &admin.token)
        .await
        .expect(200);
    assert_eq!(member_ids(&members), vec![owner.user_id]);
}

async fn admins_manage_inbox_members_and_members_see_each_other(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let newcomer = app.user(&admin, "agent", "Nina Newcomer").await;
    let id = app
        .inbox(&admin, "Support", json!({}), &[&manager, &agent])
        .await;
    let path = format!("/v1/inboxes/{id}/members");

    let listed = app.get(&path, &agent.token).await.expect(200);
    assert_eq!(member_ids(&listed), vec![manager.user_id, agent.user_id]);
    let alex = items(&listed)
        .iter()
        .find(|member| member["user_id"] == agent.user_id)
        .expect("agent listed")
        .clone();
    assert_eq!(
        alex,
        json!({
            "user_id": agent.user_id,
            "name": "Alex Agent",
            "email": format!("alex.agent@{}.example.com", admin.org_id),
            "role": "agent",
            "logged_in": true,
        })
    );
    // The admin reads it without being a member; an outsider does not know it.
    let by_admin = app.get(&path, &admin.token).await.expect(200);
    assert_eq!(by_admin.body, listed.body);
    app.get(&path, &newcomer.token)
        .await
        .expect_problem(404, "not_found");

    // Membership is the admin's to give, even to the inbox's manager.
    let newcomer_path = format!("{path}/{}", newcomer.user_id);
    app.put(&newcomer_path, &manager.token, None)
        .await
        .expect_problem(403, "forbidden");
    app.delete(&format!("{path}/{}", agent.user_id), &manager.token)
        .await
        .expect_problem(403, "forbidden");
    app.put(&newcomer_path, &agent.token, None)
        .await
        .expect_problem(403, "forbidden");

    for _ in 0..2 {
        let added = app
            .put(&newcomer_path, &admin.token, None)
            .await
            .expect(200);
        assert_eq!(
            added.body,
            json!({
                "user_id": newcomer.user_id,
                "name": "Nina Newcomer",
                "email": format!("nina.newcomer@{}.example.com", admin.org_id),
                "role": "agent",
                "logged_in": true,
            })
        );
    }
    let listed = app.get(&path, &newcomer.token).await.expect(200);
    assert_eq!(
        member_ids(&listed),
        vec![manager.user_id, agent.user_id, newcomer.user_id]
    );
    app.get(&format!("/v1/inboxes/{id}"), &newcomer.token)
        .await
        .expect(200);

    let removed = app
        .delete(&format!("{path}/{}", agent.user_id), &admin.token)
        .await
        .expect(204);
    assert!(removed.body.is_null(), "body: {}", removed.body);
    let listed = app.get(&path, &manager.token).await.expect(200);
    assert_eq!(member_ids(&listed), vec![manager.user_id, newcomer.user_id]);
    app.get(&format!("/v1/inboxes/{id}"), &agent.token)
        .await
        .expect_problem(404, "not_found");
    let agents_inboxes = app.get("/v1/inboxes", &agent.token).await.expect(200);
    assert!(items(&agents_inboxes).is_empty());

    // Unknown users and inboxes.
    app.put(&format!("{path}/{UNKNOWN_ID}"), &admin.token, None)
        .await
        .expect_problem(404, "not_found");
    app.delete(&format!("{path}/{UNKNOWN_ID}"), &admin.token)
        .await
        .expect_problem(404, "not_found");
    app.put(
        &format!("/v1/inboxes/{UNKNOWN_ID}/members/{}", agent.user_id),
        &admin.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    app.get(&format!("/v1/inboxes/{UNKNOWN_ID}/members"), &admin.token)
        .await
        .expect_problem(404, "not_found");
}

async fn another_organization_cannot_see_or_touch_our_inboxes(app: TestApp) {
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[&agent]).await;
    let channel_body = json!({"type": "sms", "address": "+14155552671", "name": "Main"});
    app.post(
        &format!("/v1/inboxes/{inbox}/channels"),
        &admin.token,
        channel_body.clone(),
    )
    .await
    .expect(201);
    let canned = canned_post(&app, inbox, &admin, "greet", "Hello")
        .await
        .expect(201)
        .id();

    let globex = app.other_org("Globex").await;
    let globex_agent = app.user(&globex, "agent", "Gina Globex").await;
    let theirs = app
        .inbox(&globex, "Globex desk", json!({}), &[&globex_agent])
        .await;

    let path = format!("/v1/inboxes/{inbox}");
    app.get(&path, &globex.token)
        .await
        .expect_problem(404, "not_found");
    app.patch(&path, &globex.token, json!({"name": "Ours now"}))
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("{path}/members"), &globex.token)
        .await
        .expect_problem(404, "not_found");
    for user in [agent.user_id, globex_agent.user_id] {
        app.put(&format!("{path}/members/{user}"), &globex.token, None)
            .await
            .expect_problem(404, "not_found");
        app.delete(&format!("{path}/members/{user}"), &globex.token)
            .await
            .expect_problem(404, "not_found");
    }
    app.get(&format!("{path}/channels"), &globex.token)
        .await
        .expect_problem(404, "not_found");
    app.post(
        &format!("{path}/channels"),
        &globex.token,
        json!({"type": "sms", "address": "+14155550100", "name": "Sneaky"}),
    )
    .await
    .expect_problem(404, "not_found");
    app.get(&format!("{path}/canned-responses"), &globex.token)
        .await
        .expect_problem(404, "not_found");
    canned_post(&app, inbox, &globex, "sneaky", "Sneaky")
        .await
        .expect_problem(404, "not_found");
    let canned_path = format!("/v1/canned-responses/{canned}");
    app.patch(&canned_path, &globex.token, json!({"title": "Ours now"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&canned_path, &globex.token)
        .await
        .expect_problem(404, "not_found");

    // Our users cannot be added to their inbox, nor theirs to ours.
    app.put(
        &format!("/v1/inboxes/{theirs}/members/{}", agent.user_id),
        &globex.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    app.put(
        &format!("{path}/members/{}", globex_agent.user_id),
        &admin.token,
        None,
    )
    .await
    .expect_problem(404, "not_found");
    expect_invalid(
        create_inbox(
            &app,
            &globex.token,
            json!({"name": "Stolen number", "kind": "private", "owner_id": agent.user_id}),
        )
        .await,
        "owner_id",
    );

    // Each organization lists its own inboxes; a number may be a channel in both.
    let their_list = app.get("/v1/inboxes", &globex.token).await.expect(200);
    assert_eq!(item_ids(&their_list), vec![theirs]);
    let our_list = app.get("/v1/inboxes", &admin.token).await.expect(200);
    assert_eq!(item_ids(&our_list), vec![inbox]);
    app.post(
        &format!("/v1/inboxes/{theirs}/channels"),
        &globex.token,
        channel_body,
    )
    .await
    .expect(201);

    // Nothing of ours changed.
    let ours = app.get(&path, &admin.token).await.expect(200);
    assert_eq!(ours.body["name"], "Support");
    let members = app
        .get(&format!("{path}/members"), &agent.token)
        .await
        .expect(200);
    assert_eq!(member_ids(&members), vec![agent.user_id]);
    let canned_list = app
        .get(&format!("{path}/canned-responses"), &agent.token)
        .await
        .expect(200);
    assert_eq!(item_ids(&canned_list), vec![canned]);
    assert_eq!(items(&canned_list)[0]["title"], "Hello");
    let channels = app
        .get(&format!("{path}/channels"), &agent.token)
        .await
        .expect(200);
    assert_eq!(items(&channels).len(), 1);
}

/// Below the handlers: the repository itself never ties a user to another tenant's inbox or
/// team, whatever a handler passed it.
async fn memberships_never_cross_organizations_even_below_the_handlers(app: TestApp) {
    use persistence::repo::{inboxes, teams, users};
    let admin = app.admin().await;
    let other = app.other_org("Globex").await;
    let inbox = app.inbox(&admin, "Support", json!({}), &[]).await;
    let team = app
        .post("/v1/teams", &admin.token, json!({"name": "Billing"}))
        .await
        .expect(201)
        .id();
    let store = app.running().state.store.clone();
    let (org, foreign) = (
        domain::OrgId(admin.org_id),
        (domain::OrgId(other.org_id), domain::UserId(other.user_id)),
    );
    let refused = actix_web::web::block(move || {
        store.write(|conn| {
            let stranger = users::get(conn, foreign.0, foreign.1)?.expect("the other admin");
            let inbox = inboxes::get(conn, org, domain::InboxId(inbox))?.expect("inbox");
            let team =
                persistence::repo::teams::get(conn, org, domain::TeamId(team))?.expect("team");
            Ok((
                inboxes::add_member(conn, &inbox, &stranger).is_err(),
                teams::add_member(conn, &team, &stranger).is_err(),
                inboxes::remove_member(conn, &inbox, &stranger).is_err(),
                teams::remove_member(conn, &team, &stranger).is_err(),
            ))
        })
    })
    .await
    .expect("blocking pool")
    .expect("the lookups");
    assert_eq!(refused, (true, true, true, true));
    let members = app
        .get(&format!("/v1/inboxes/{inbox}/members"), &admin.token)
        .await
        .expect(200);
    assert_eq!(items(&members).len(), 0);
}

on_both_backends!(
    memberships_never_cross_organizations_even_below_the_handlers,
    only_admins_create_inboxes_and_unset_settings_take_the_defaults,
    inbox_settings_are_checked,
    members_see_their_inboxes_and_others_do_not_know_they_exist,
    admins_and_the_inbox_managers_change_its_settings,
    a_private_inbox_belongs_to_its_owner_alone,
    admins_manage_inbox_members_and_members_see_each_other,
    another_organization_cannot_see_or_touch_our_inboxes,
);
