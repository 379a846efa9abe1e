//! An inbox's channels (the numbers and accounts customers write to) and canned responses
//! (API.md, Administration).

use serde_json::{Value, json};

use crate::admin::{UNKNOWN_ID, assert_timestamp, expect_invalid, item_ids, items};
use crate::on_both_backends;
use crate::support::{Reply, Session, TestApp};

async fn admins_attach_channels_and_their_secret_is_shown_once(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let id = app
        .inbox(&admin, "Support", json!({}), &[&manager, &agent])
        .await;
    let path = format!("/v1/inboxes/{id}/channels");
    let sms = json!({"type": "sms", "address": "(415) 555-2671", "name": "Main line"});

    for refused in [&manager, &agent] {
        app.post(&path, &refused.token, sms.clone())
            .await
            .expect_problem(403, "forbidden");
    }
    app.post(&path, &outsider.token, sms.clone())
        .await
        .expect_problem(404, "not_found");

    let created = app.post(&path, &admin.token, sms).await.expect(201);
    let body = &created.body;
    assert!(body["id"].as_i64().is_some(), "body: {body}");
    assert_eq!(body["inbox_id"], id);
    assert_eq!(body["type"], "sms");
    assert_eq!(body["address"], "+14155552671");
    assert_eq!(body["name"], "Main line");
    assert_eq!(body["appended_message"], Value::Null);
    assert_eq!(body["outbound_url"], Value::Null);
    assert_timestamp(&body["created_at"]);
    let secret = body["inbound_secret"]
        .as_str()
        .expect("inbound_secret")
        .to_string();
    assert!(!secret.is_empty());

    let hooked = app
        .post(
            &path,
            &admin.token,
            json!({
                "type": "whatsapp",
                "address": "+44 20 7946 0958",
                "name": "WhatsApp",
                "appended_message": "Reply STOP to opt out",
                "outbound_url": "https://provider.example.com/send",
            }),
        )
        .await
        .expect(201);
    assert_eq!(hooked.body["type"], "whatsapp");
    assert_eq!(hooked.body["address"], "+442079460958");
    assert_eq!(hooked.body["appended_message"], "Reply STOP to opt out");
    assert_eq!(
        hooked.body["outbound_url"],
        "https://provider.example.com/send"
    );
    let other_secret = hooked.body["inbound_secret"].as_str().expect("secret");
    assert_ne!(other_secret, secret, "each channel has its own secret");

    // Members list the channels; the secret is never shown again.
    for reader in [&agent, &manager, &admin] {
        let listed = app.get(&path, &reader.token).await.expect(200);
        assert_eq!(item_ids(&listed), vec![created.id(), hooked.id()]);
        let text = listed.body.to_string();
        assert!(
            !text.contains("inbound_secret") && !text.contains(&secret),
            "the list leaks a secret: {text}"
        );
        let mut expected = created.body.clone();
        expected
            .as_object_mut()
            .expect("object")
            .remove("inbound_secret");
        assert_eq!(items(&listed)[0], expected);
    }
    app.get(&path, &outsider.token)
        .await
        .expect_problem(404, "not_found");
}

async fn channel_addresses_are_checked_and_unique_in_the_organization(app: TestApp) {
    let admin = app.admin().await;
    let support = app.inbox(&admin, "Support", json!({}), &[]).await;
    let sales = app.inbox(&admin, "Sales", json!({}), &[]).await;
    let support_path = format!("/v1/inboxes/{support}/channels");
    let sales_path = format!("/v1/inboxes/{sales}/channels");
    app.post(
        &support_path,
        &admin.token,
        json!({"type": "sms", "address": "(415) 555-2671", "name": "Main"}),
    )
    .await
    .expect(201);

    // The same number, however typed, in any inbox of the organization.
    for (path, address) in [
        (&support_path, "+14155552671"),
        (&sales_path, "415.555.2671"),
    ] {
        app.post(
            path,
            &admin.token,
            json!({"type": "sms", "address": address, "name": "Again"}),
        )
        .await
        .expect_problem(409, "duplicate");
    }

    expect_invalid(
        app.post(
            &sales_path,
            &admin.token,
            json!({"type": "whatsapp", "address": "my-page", "name": "WA"}),
        )
        .await,
        "address",
    );
    expect_invalid(
        app.post(
            &sales_path,
            &admin.token,
            json!({"type": "sms", "address": "123", "name": "Short"}),
        )
        .await,
        "address",
    );
    let facebook = app
        .post(
            &sales_path,
            &admin.token,
            json!({"type": "facebook", "address": "104329857763321", "name": "Acme on Facebook"}),
        )
        .await
        .expect(201);
    assert_eq!(facebook.body["type"], "facebook");
    assert_eq!(facebook.body["address"], "104329857763321");
    for url in [
        "ftp://provider.example.com/send",
        "provider.example.com",
        "https://",
    ] {
        expect_invalid(
            app.post(
                &sales_path,
                &admin.token,
                json!({"type": "webchat", "address": "site-widget", "name": "Web", "outbound_url": url}),
            )
            .await,
            "outbound_url",
        );
    }
    let web = app
        .post(
            &sales_path,
            &admin.token,
            json!({"type": "webchat", "address": "site-widget", "name": "Web", "outbound_url": "http://localhost:9000/hook"}),
        )
        .await
        .expect(201);
    assert_eq!(web.body["outbound_url"], "http://localhost:9000/hook");
    expect_invalid(
        app.post(
            &sales_path,
            &admin.token,
            json!({"type": "instagram", "address": "acme", "name": ""}),
        )
        .await,
        "name",
    );
    for malformed in [
        json!({"type": "fax", "address": "+14155550000", "name": "Fax"}),
        json!({"address": "+14155550000", "name": "No type"}),
        json!({"type": "sms", "address": "+14155550000", "name": "S", "secret": "mine"}),
    ] {
        app.post(&sales_path, &admin.token, malformed)
            .await
            .expect_problem(400, "bad_request");
    }
    app.post(
        &format!("/v1/inboxes/{UNKNOWN_ID}/channels"),
        &admin.token,
        json!({"type": "sms", "address": "+14155550000", "name": "Nowhere"}),
    )
    .await
    .expect_problem(404, "not_found");

    let listed = app.get(&sales_path, &admin.token).await.expect(200);
    assert_eq!(item_ids(&listed), vec![facebook.id(), web.id()]);
}

pub async fn canned_post(
    app: &TestApp,
    inbox: i64,
    who: &Session,
    shortcut: &str,
    title: &str,
) -> Reply {
    app.post(
        &format!("/v1/inboxes/{inbox}/canned-responses"),
        &who.token,
        json!({"shortcut": shortcut, "title": title, "body": format!("Text of {title}")}),
    )
    .await
}

async fn members_search_canned_responses_and_supervisors_write_them(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let outside_manager = app.user(&admin, "manager", "Max Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let outsider = app.user(&admin, "agent", "Olga Outsider").await;
    let support = app
        .inbox(&admin, "Support", json!({}), &[&manager, &agent])
        .await;
    let sales = app
        .inbox(&admin, "Sales", json!({}), &[&outside_manager])
        .await;
    let path = format!("/v1/inboxes/{support}/canned-responses");

    let greet = canned_post(&app, support, &admin, "greet", "Hello")
        .await
        .expect(201);
    assert_eq!(
        greet.body,
        json!({
            "id": greet.id(),
            "inbox_id": support,
            "shortcut": "greet",
            "title": "Hello",
            "body": "Text of Hello",
        })
    );
    let progress = canned_post(&app, support, &manager, "status", "Progress update")
        .await
        .expect(201);
    let bye = canned_post(&app, support, &manager, "bye", "Goodbye")
        .await
        .expect(201);
    // "gre" inside a shortcut is not a prefix match, and the body is not searched.
    let ingress = canned_post(&app, support, &admin, "ingress", "Access")
        .await
        .expect(201);

    canned_post(&app, support, &agent, "mine", "Mine")
        .await
        .expect_problem(403, "forbidden");
    for stranger in [&outsider, &outside_manager] {
        canned_post(&app, support, stranger, "theirs", "Theirs")
            .await
            .expect_problem(404, "not_found");
        app.get(&path, &stranger.token)
            .await
            .expect_problem(404, "not_found");
    }

    let all = app.get(&path, &agent.token).await.expect(200);
    let mut everything = vec![greet.id(), progress.id(), bye.id(), ingress.id()];
    everything.sort_unstable();
    let mut listed = item_ids(&all);
    listed.sort_unstable();
    assert_eq!(listed, everything);
    for query in ["gre", "GRE", "%20gre%20"] {
        let found = app
            .get(&format!("{path}?q={query}"), &agent.token)
            .await
            .expect(200);
        let mut ids = item_ids(&found);
        ids.sort_unstable();
        let mut expected = vec![greet.id(), progress.id()];
        expected.sort_unstable();
        assert_eq!(ids, expected, "q={query}: {}", found.body);
    }
    let nothing = app
        .get(&format!("{path}?q=zzz"), &manager.token)
        .await
        .expect(200);
    assert!(items(&nothing).is_empty());

    // A shortcut is one per inbox, whatever its case; another inbox may reuse it.
    for taken in ["greet", "GREET"] {
        canned_post(&app, support, &manager, taken, "Hi again")
            .await
            .expect_problem(409, "duplicate");
    }
    let elsewhere = canned_post(&app, sales, &outside_manager, "greet", "Welcome")
        .await
        .expect(201);
    assert_eq!(elsewhere.body["inbox_id"], sales);
    let sales_list = app
        .get(
            &format!("/v1/inboxes/{sales}/canned-responses"),
            &admin.token,
        )
        .await
        .expect(200);
    assert_eq!(item_ids(&sales_list), vec![elsewhere.id()]);

    expect_invalid(
        canned_post(&app, support, &admin, "two words", "Bad").await,
        "shortcut",
    );
    expect_invalid(
        app.post(
            &path,
            &admin.token,
            json!({"shortcut": "empty", "title": "Empty", "body": " "}),
        )
        .await,
        "body",
    );
}

async fn supervisors_edit_and_delete_canned_responses(app: TestApp) {
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager", "Mona Manager").await;
    let outside_manager = app.user(&admin, "manager", "Max Manager").await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let support = app
        .inbox(&admin, "Support", json!({}), &[&manager, &agent])
        .await;
    let greet = canned_post(&app, support, &admin, "greet", "Hello")
        .await
        .expect(201);
    let bye = canned_post(&app, support, &admin, "bye", "Goodbye")
        .await
        .expect(201);
    let path = format!("/v1/canned-responses/{}", greet.id());

    let edited = app
        .patch(
            &path,
            &manager.token,
            json!({"title": "Warm hello", "body": "Hi there!"}),
        )
        .await
        .expect(200);
    assert_eq!(
        edited.body,
        json!({
            "id": greet.id(),
            "inbox_id": support,
            "shortcut": "greet",
            "title": "Warm hello",
            "body": "Hi there!",
        })
    );
    let renamed = app
        .patch(&path, &admin.token, json!({"shortcut": "Hi"}))
        .await
        .expect(200);
    assert_eq!(renamed.body["shortcut"], "hi");
    assert_eq!(renamed.body["title"], "Warm hello");
    app.patch(&path, &manager.token, json!({"shortcut": "bye"}))
        .await
        .expect_problem(409, "duplicate");
    expect_invalid(
        app.patch(&path, &manager.token, json!({"title": ""})).await,
        "title",
    );
    app.patch(&path, &manager.token, json!({"inbox_id": 1}))
        .await
        .expect_problem(400, "bad_request");

    app.patch(&path, &agent.token, json!({"title": "Mine"}))
        .await
        .expect_problem(403, "forbidden");
    app.delete(&path, &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &outside_manager.token, json!({"title": "Mine"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&path, &outside_manager.token)
        .await
        .expect_problem(404, "not_found");

    let deleted = app.delete(&path, &manager.token).await.expect(204);
    assert!(deleted.body.is_null(), "body: {}", deleted.body);
    app.patch(&path, &admin.token, json!({"title": "Back"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&path, &admin.token)
        .await
        .expect_problem(404, "not_found");
    let listed = app
        .get(
            &format!("/v1/inboxes/{support}/canned-responses"),
            &agent.token,
        )
        .await
        .expect(200);
    assert_eq!(item_ids(&listed), vec![bye.id()]);
    app.delete(&format!("/v1/canned-responses/{}", bye.id()), &admin.token)
        .await
        .expect(204);
    app.patch(
        &format!("/v1/canned-responses/{UNKNOWN_ID}"),
        &admin.token,
        json!({"title": "Ghost"}),
    )
    .await
    .expect_problem(404, "not_found");
}

on_both_backends!(
    admins_attach_channels_and_their_secret_is_shown_once,
    channel_addresses_are_checked_and_unique_in_the_organization,
    members_search_canned_responses_and_supervisors_write_them,
    supervisors_edit_and_delete_canned_responses,
);
