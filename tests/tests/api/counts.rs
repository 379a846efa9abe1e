//! The tab counts come from buckets the database keeps as conversations change (inbox,
//! state, assignee, team). They must always agree with counting the rows themselves: the
//! same counts asked with a channel filter (which the buckets do not keep, so the rows are
//! scanned) select the same conversations here, since the organization has one channel.

use serde_json::{Value, json};

use crate::fixtures::{counts, customer, inbox, sms_channel, team};
use crate::on_both_backends;
use crate::support::{Session, TestApp};

fn path(id: i64, action: &str) -> String {
    format!("/v1/conversations/{id}/{action}")
}

/// Every viewer's counts, kept and scanned, with and without an inbox filter.
async fn assert_agree(
    app: &TestApp,
    viewers: &[&Session],
    channel: i64,
    inboxes: &[i64],
    when: &str,
) {
    for viewer in viewers {
        let mut queries = vec![(String::new(), format!("channel_id={channel}"))];
        for inbox in inboxes {
            queries.push((
                format!("inbox_id={inbox}"),
                format!("inbox_id={inbox}&channel_id={channel}"),
            ));
        }
        for (kept, scanned) in queries {
            let kept_counts = counts(app, viewer, &kept).await;
            let scanned_counts = counts(app, viewer, &scanned).await;
            assert_eq!(
                kept_counts, scanned_counts,
                "{when}: user {} counts ?{kept} disagree with the rows",
                viewer.user_id
            );
        }
    }
}

async fn kept_counts_agree_with_the_rows(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Kept").await;
    let bea = app.user(&admin, "agent", "Bea Kept").await;
    let carl = app.user(&admin, "agent", "Carl Kept").await;
    let billing = team(&app, &admin, "Billing", &[&alex, &bea]).await;
    let support = inbox(
        &app,
        &admin,
        "Support",
        json!({"agent_visibility": "assigned_and_unassigned"}),
        &[&alex, &bea, &carl],
    )
    .await;
    let sales = inbox(&app, &admin, "Sales", json!({}), &[&alex, &bea]).await;
    let channel = sms_channel(&app, &admin, support, "+14155550100").await;
    let viewers = [&admin, &alex, &bea, &carl];
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(channel.text(&app, &customer(n), "Hello").await);
    }
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after the texts",
    )
    .await;

    let assign = |id: i64, body: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            app.post(&path(id, "assign"), &admin.token, body)
                .await
                .expect(200)
        }
    };
    for id in &ids[0..3] {
        assign(*id, json!({"assignee_id": alex.user_id})).await;
    }
    for id in &ids[3..5] {
        assign(*id, json!({"assignee_id": bea.user_id, "team_id": billing})).await;
    }
    assign(ids[5], json!({"assignee_id": carl.user_id})).await;
    assign(ids[0], json!({"assignee_id": null})).await;
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after assigning",
    )
    .await;

    app.post(&path(ids[1], "close"), &admin.token, json!({}))
        .await
        .expect(200);
    app.post(&path(ids[6], "close"), &admin.token, json!({"spam": true}))
        .await
        .expect(200);
    for id in [ids[3], ids[7]] {
        app.post(&path(id, "move"), &alex.token, json!({"inbox_id": sales}))
            .await
            .expect(200);
    }
    // A closed conversation's customer writes again: a new open one.
    ids.push(channel.text(&app, &customer(1), "Me again").await);
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after closing and moving",
    )
    .await;

    // And the figures themselves, for the admin who sees everything: 13 conversations, one
    // closed, one spam (in no tab).
    let all = counts(&app, &admin, "").await;
    assert_eq!(all["open"], 11, "{all}");
    assert_eq!(all["closed"], 1, "{all}");
    assert_eq!(all["archived"], 0, "{all}");
    // Carl sees Support's unassigned, his own, and nothing of Sales.
    let carls = counts(&app, &carl, "").await;
    assert_eq!(carls["mine"], 1, "{carls}");
    assert_eq!(carls["others"], 0, "{carls}");
}

on_both_backends!(kept_counts_agree_with_the_rows);
