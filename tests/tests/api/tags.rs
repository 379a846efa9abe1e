//! Tags (API.md, Administration): supervisors rename and delete the organization's tags, and
//! every conversation follows; names stay unique when renames race, and a tag deleted while
//! someone puts it on a conversation leaves no trace.

use serde_json::{Value, json};

use crate::fixtures::{self, customer};
use crate::on_both_backends;
use crate::on_both_backends_with;
use crate::races::{ROUNDS, at_once, side_by_side, statuses};
use crate::support::{Reply, Session, TestApp};

fn tag_path(id: i64) -> String {
    format!("/v1/tags/{id}")
}

/// The conversation's tag names, as `session` sees them.
async fn tags_of(app: &TestApp, session: &Session, conversation: i64) -> Value {
    fixtures::conversation(app, session, conversation).await["tags"].clone()
}

async fn put_tag(app: &TestApp, session: &Session, conversation: i64, name: &str) -> Reply {
    app.put(
        &format!("/v1/conversations/{conversation}/tags/{name}"),
        &session.token,
        None,
    )
    .await
}

/// The organization's tag names, in list order.
async fn tag_names(app: &TestApp, session: &Session) -> Vec<String> {
    let page = app
        .get("/v1/tags?limit=100", &session.token)
        .await
        .expect(200);
    page.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", page.body))
        .iter()
        .map(|tag| tag["name"].as_str().expect("name").to_string())
        .collect()
}

async fn supervisors_rename_and_delete_tags_and_conversations_follow(app: TestApp) {
    let admin = app.admin().await;
    let mia = app.user(&admin, "manager", "Mia Manager").await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex, &mia]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    let vip = fixtures::tag(&app, &admin, "vip").await;
    let billing = fixtures::tag(&app, &mia, "billing").await;
    let both = line.text(&app, &customer(1), "My invoice is wrong").await;
    let one = line.text(&app, &customer(2), "Hello").await;
    put_tag(&app, &alex, both, "vip").await.expect(200);
    put_tag(&app, &alex, both, "billing").await.expect(200);
    put_tag(&app, &alex, one, "vip").await.expect(200);

    // A rename: every conversation shows the new name, and the filter takes it.
    let renamed = app
        .patch(&tag_path(vip), &mia.token, json!({"name": "priority"}))
        .await
        .expect(200);
    assert_eq!(
        renamed.body,
        json!({"id": vip, "name": "priority", "color": "#8a8f98"})
    );
    assert_eq!(
        tags_of(&app, &alex, both).await,
        json!(["billing", "priority"])
    );
    assert_eq!(tags_of(&app, &alex, one).await, json!(["priority"]));
    let mut tagged = fixtures::list_ids(&app, &alex, "tag=priority").await;
    tagged.sort_unstable();
    assert_eq!(tagged, [both, one]);
    assert!(
        fixtures::list_ids(&app, &alex, "tag=vip").await.is_empty(),
        "the old name is gone"
    );
    put_tag(&app, &alex, one, "vip")
        .await
        .expect_problem(404, "not_found");

    let recolored = app
        .patch(&tag_path(vip), &admin.token, json!({"color": "#ff8800"}))
        .await
        .expect(200);
    assert_eq!(
        recolored.body,
        json!({"id": vip, "name": "priority", "color": "#ff8800"})
    );
    let unchanged = app
        .patch(&tag_path(vip), &admin.token, json!({}))
        .await
        .expect(200);
    assert_eq!(unchanged.body, recolored.body);

    // The same checks as a new tag's.
    app.patch(&tag_path(vip), &admin.token, json!({"name": "billing"}))
        .await
        .expect_problem(409, "duplicate");
    let invalid = app
        .patch(
            &tag_path(vip),
            &admin.token,
            json!({"name": "  ", "color": "red"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let fields: Vec<&str> = invalid.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["name", "color"]);
    app.patch(&tag_path(vip), &admin.token, json!({"label": "x"}))
        .await
        .expect_problem(400, "bad_request");

    // Agents put tags on conversations; they do not change the organization's tags.
    app.patch(&tag_path(vip), &alex.token, json!({"name": "mine"}))
        .await
        .expect_problem(403, "forbidden");
    app.delete(&tag_path(vip), &alex.token)
        .await
        .expect_problem(403, "forbidden");
    // Another organization's tags do not exist for this one.
    let globex = app.other_org("Globex").await;
    app.patch(&tag_path(vip), &globex.token, json!({"name": "ours"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&tag_path(vip), &globex.token)
        .await
        .expect_problem(404, "not_found");
    app.patch(&tag_path(999_999), &admin.token, json!({"name": "ghost"}))
        .await
        .expect_problem(404, "not_found");
    assert_eq!(tag_names(&app, &admin).await, ["billing", "priority"]);

    // A deletion takes the tag off every conversation.
    app.delete(&tag_path(billing), &mia.token).await.expect(204);
    assert_eq!(tags_of(&app, &alex, both).await, json!(["priority"]));
    assert!(
        fixtures::list_ids(&app, &alex, "tag=billing")
            .await
            .is_empty()
    );
    assert_eq!(tag_names(&app, &admin).await, ["priority"]);
    app.delete(&tag_path(billing), &mia.token)
        .await
        .expect_problem(404, "not_found");
    // The name is free again; the new tag is on no conversation.
    fixtures::tag(&app, &admin, "billing").await;
    assert_eq!(tags_of(&app, &alex, both).await, json!(["priority"]));
}

async fn two_renames_to_one_name_leave_one_tag_with_it(app: TestApp) {
    let admin = app.admin().await;
    for round in 0..ROUNDS {
        let ids = [
            fixtures::tag(&app, &admin, &format!("first-{round}")).await,
            fixtures::tag(&app, &admin, &format!("second-{round}")).await,
        ];
        let wanted = format!("wanted-{round}");
        let paths = ids.map(tag_path);
        let replies = at_once(2, |i| {
            app.patch(&paths[i], &admin.token, json!({"name": wanted}))
        })
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {:?}", statuses(&replies));
        for lost in replies.iter().filter(|reply| reply.status != 200) {
            assert_eq!(lost.status, 409, "round {round}: {}", lost.body);
            assert_eq!(lost.body["code"], "duplicate", "round {round}");
        }
        let names = tag_names(&app, &admin).await;
        assert_eq!(
            names.iter().filter(|name| **name == wanted).count(),
            1,
            "round {round}: {names:?}"
        );
    }
}

async fn a_rename_and_a_recoloring_at_once_both_hold(app: TestApp) {
    let admin = app.admin().await;
    let mia = app.user(&admin, "manager", "Mia Manager").await;
    for round in 0..ROUNDS {
        let tag = fixtures::tag(&app, &admin, &format!("old-{round}")).await;
        let path = tag_path(tag);
        let name = format!("new-{round}");
        let changes = [json!({"name": name}), json!({"color": "#00aa55"})];
        let people = [&admin, &mia];
        let replies = at_once(2, |i| {
            app.patch(&path, &people[i].token, changes[i].clone())
        })
        .await;
        assert_eq!(statuses(&replies), [200, 200], "round {round}");
        let page = app
            .get("/v1/tags?limit=100", &admin.token)
            .await
            .expect(200);
        let stored = page.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["id"] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("round {round}: tag {tag} is gone"));
        assert_eq!(
            stored,
            json!({"id": tag, "name": name, "color": "#00aa55"}),
            "round {round}: neither change is lost"
        );
    }
}

async fn a_tag_deleted_while_it_is_put_on_a_conversation_leaves_no_trace(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    let (mut tagged_first, mut deleted_first) = (0, 0);
    for round in 0..ROUNDS {
        let name = format!("promo-{round}");
        let tag = fixtures::tag(&app, &admin, &name).await;
        let conversation = line.text(&app, &customer(round), "Is the sale on?").await;
        let tagging = format!("/v1/conversations/{conversation}/tags/{name}");
        let deleting = tag_path(tag);
        let replies = at_once(2, |i| {
            let (method, path, session) = if i == 0 {
                (reqwest::Method::PUT, &tagging, &alex)
            } else {
                (reqwest::Method::DELETE, &deleting, &admin)
            };
            app.send(method, path, Some(&session.token), None)
        })
        .await;
        assert_eq!(replies[1].status, 204, "round {round}: {}", replies[1].body);
        match replies[0].status {
            200 => tagged_first += 1,
            404 => deleted_first += 1,
            other => panic!(
                "round {round}: tagging answered {other}: {}",
                replies[0].body
            ),
        }
        assert_eq!(
            tags_of(&app, &alex, conversation).await,
            json!([]),
            "round {round}: the deleted tag is on no conversation"
        );
    }
    assert_eq!(tagged_first + deleted_first, ROUNDS);
}

on_both_backends!(supervisors_rename_and_delete_tags_and_conversations_follow);
on_both_backends_with!(side_by_side =>
    two_renames_to_one_name_leave_one_tag_with_it,
    a_rename_and_a_recoloring_at_once_both_hold,
    a_tag_deleted_while_it_is_put_on_a_conversation_leaves_no_trace,
);
