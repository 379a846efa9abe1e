//! The tab counts come from buckets the database keeps as conversations change (inbox,
//! state, assignee, team), and unread from what each user has read up to, kept per bucket as
//! they read and as messages arrive. They must always agree with counting the rows: the
//! same counts asked with a channel filter (which the buckets do not keep, so the rows are
//! scanned) select the same conversations here, since the organization has one channel.

use persistence::diesel::prelude::*;
use persistence::repo::conversation_list;
use persistence::schema::read_up_counts;
use serde_json::{Value, json};

use crate::fixtures::{counts, customer, inbox, sms_channel, team};
use crate::on_both_backends;
use crate::support::{Session, TestApp};

fn path(id: i64, action: &str) -> String {
    format!("/v1/conversations/{id}/{action}")
}

/// Every viewer's counts, kept and scanned, with and without an inbox filter.
pub(crate) async fn assert_agree(
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
    assert_eq!(all["unread"], 11, "nobody has read anything yet: {all}");

    // Reading, replying, marking unread, new customer messages, and conversations that
    // move, close or change hands after being read.
    let read = |session: &Session, id: i64| {
        let app = &app;
        let token = session.token.clone();
        async move {
            app.post(&path(id, "read"), &token, json!({}))
                .await
                .expect(204)
        }
    };
    for id in [ids[8], ids[9], ids[10], ids[2], ids[12]] {
        read(&admin, id).await;
    }
    read(&alex, ids[2]).await;
    read(&alex, ids[9]).await;
    read(&bea, ids[4]).await;
    read(&bea, ids[3]).await;
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after reading",
    )
    .await;
    let all = counts(&app, &admin, "").await;
    assert_eq!(all["unread"], 6, "the admin read 5 of 11: {all}");

    // The customer of ids[8] writes again; Alex replies in ids[2] (still read for him, no
    // longer for the admin); Bea marks ids[4] unread; ids[9] is assigned after being read,
    // ids[10] is closed and ids[3] goes back to Support.
    channel.text(&app, &customer(8), "One more thing").await;
    app.post(
        &format!("/v1/conversations/{}/messages", ids[2]),
        &alex.token,
        json!({"body": "On it"}),
    )
    .await
    .expect(201);
    app.post(&path(ids[4], "unread"), &bea.token, json!({}))
        .await
        .expect(204);
    assign(ids[9], json!({"assignee_id": carl.user_id})).await;
    app.post(&path(ids[10], "close"), &admin.token, json!({}))
        .await
        .expect(200);
    app.post(
        &path(ids[3], "move"),
        &alex.token,
        json!({"inbox_id": support}),
    )
    .await
    .expect(200);
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after writing, marking and moving read conversations",
    )
    .await;
    let all = counts(&app, &admin, "").await;
    assert_eq!(all["open"], 10, "{all}");
    assert_eq!(
        all["unread"], 8,
        "read up: ids[9] and ids[12] (ids[8] and ids[2] have new messages, ids[10] closed): {all}"
    );
    // Reading them again counts them again.
    read(&admin, ids[8]).await;
    read(&admin, ids[2]).await;
    assert_eq!(counts(&app, &admin, "").await["unread"], 6);
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after reading again",
    )
    .await;
    // Carl sees Support's unassigned, his own (ids[5], and ids[9] since it was assigned to
    // him), and nothing of Sales; he has read nothing.
    let carls = counts(&app, &carl, "").await;
    assert_eq!(carls["mine"], 2, "{carls}");
    assert_eq!(carls["unread"], carls["open"], "{carls}");
    assert_eq!(carls["others"], 0, "{carls}");

    // Folding the read-up figures (PostgreSQL keeps a row per change until then) leaves one
    // row per key and every count as it was.
    let before = counts(&app, &alex, "").await;
    let keys: Vec<(i64, i64, i64, i64)> = app
        .running()
        .state
        .store
        .write(|conn| {
            conversation_list::compact_read_up_counts(conn)?;
            Ok(read_up_counts::table
                .select((
                    read_up_counts::user_id,
                    read_up_counts::inbox_id,
                    read_up_counts::assignee_id,
                    read_up_counts::team_id,
                ))
                .load(conn)?)
        })
        .expect("folded");
    let mut distinct = keys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len(), "a key left with several rows");
    assert_eq!(counts(&app, &alex, "").await, before);
    assert_agree(
        &app,
        &viewers,
        channel.id,
        &[support, sales],
        "after folding",
    )
    .await;
}

on_both_backends!(kept_counts_agree_with_the_rows);
