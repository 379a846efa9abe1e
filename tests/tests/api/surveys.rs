//! Satisfaction surveys (API.md, Channels in and out): an agent sends one, the customer
//! answers once through the public link, the answer shows in the conversation and reaches
//! the people who see it live, and supervisors read the results per inbox and per agent.

use serde_json::{Value, json};

use crate::fixtures::{self, Channel, customer};
use crate::on_both_backends;
use crate::on_both_backends_with;
use crate::races::{ROUNDS, at_once, side_by_side, statuses};
use crate::realtime::Ws;
use crate::support::{Reply, Session, TestApp};

/// Sends a survey into the conversation as `session`; answers the survey's token.
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
    assert_eq!(sent.body["kind"], "survey", "{}", sent.body);
    sent.body["survey_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no survey_token in {}", sent.body))
        .to_string()
}

/// The customer's answer through the public link: no sign-in.
async fn answer(app: &TestApp, token: &str, body: Value) -> Reply {
    app.send(
        reqwest::Method::POST,
        &format!("/v1/public/surveys/{token}"),
        None,
        Some(body),
    )
    .await
}

async fn public_survey(app: &TestApp, token: &str) -> Reply {
    app.send(
        reqwest::Method::GET,
        &format!("/v1/public/surveys/{token}"),
        None,
        None,
    )
    .await
}

async fn assign(app: &TestApp, by: &Session, conversation: i64, to: &Session) {
    app.post(
        &format!("/v1/conversations/{conversation}/assign"),
        &by.token,
        json!({"assignee_id": to.user_id}),
    )
    .await
    .expect(200);
}

/// The conversation's answers to surveys: inbound messages of kind `survey`.
async fn answers_in(app: &TestApp, session: &Session, conversation: i64) -> Vec<Value> {
    fixtures::messages(app, session, conversation)
        .await
        .into_iter()
        .filter(|message| message["kind"] == "survey" && message["direction"] == "inbound")
        .collect()
}

// ---------------------------------------------------------------------------------------
// The answer

async fn an_answer_is_recorded_once_and_shown_in_its_closed_conversation(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let olive = app.user(&admin, "agent", "Olive Outsider").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    let conversation = line.text(&app, &customer(1), "Where is my parcel?").await;
    assign(&app, &alex, conversation, &alex).await;
    let token = survey(&app, &alex, conversation).await;
    // Surveys go out as a conversation ends: the answer comes after the close.
    app.post(
        &format!("/v1/conversations/{conversation}/close"),
        &alex.token,
        json!({}),
    )
    .await
    .expect(200);
    let before = fixtures::conversation(&app, &admin, conversation).await;
    let contact_id = before["contact"]["id"].as_i64().expect("contact id");

    let addr = app.running().addr;
    let mut alex_ws = Ws::connect(addr, &alex, "alex (assignee)").await;
    let mut olive_ws = Ws::connect(addr, &olive, "olive (not a member)").await;

    let shown = public_survey(&app, &token).await.expect(200);
    assert_eq!(shown.body["answered"], false, "{}", shown.body);
    assert!(
        shown.body["question"]
            .as_str()
            .is_some_and(|q| !q.is_empty())
    );

    let answered = answer(
        &app,
        &token,
        json!({"rating": 4, "comment": "  Quick and kind "}),
    )
    .await
    .expect(200);
    assert_eq!(
        answered.body,
        json!({"question": shown.body["question"], "answered": true, "rating": 4, "comment": "Quick and kind"})
    );

    let body = "Rated 4/5: Quick and kind";
    let created = alex_ws.expect_event("message.created").await;
    assert_eq!(created["data"]["conversation_id"], conversation);
    let message = &created["data"]["message"];
    assert_eq!(message["kind"], "survey", "{message}");
    assert_eq!(message["direction"], "inbound", "{message}");
    assert_eq!(
        message["author"],
        json!({"type": "contact", "id": contact_id}),
        "{message}"
    );
    assert_eq!(message["body"], body, "{message}");
    assert_eq!(message["delivery_status"], Value::Null, "{message}");
    let updated = alex_ws.expect_event("conversation.updated").await;
    let seen = &updated["data"]["conversation"];
    assert_eq!(seen["id"], conversation);
    assert_eq!(seen["status"], "closed", "the answer does not reopen it");
    assert_eq!(seen["last_message_id"], message["id"]);
    assert_eq!(seen["last_message_preview"], body);
    assert_eq!(
        seen["message_count"],
        before["message_count"].as_i64().expect("count") + 1
    );
    olive_ws.expect_silence().await;

    let thread = fixtures::messages(&app, &alex, conversation).await;
    assert_eq!(thread[0]["id"], message["id"], "the newest message");
    assert_eq!(thread[0]["body"], body);
    let after = fixtures::conversation(&app, &alex, conversation).await;
    assert_eq!(after["status"], "closed");
    assert_eq!(after["closed_at"], before["closed_at"]);
    assert_eq!(after["last_message_preview"], body);

    // Once only: a second answer changes nothing.
    answer(
        &app,
        &token,
        json!({"rating": 1, "comment": "changed my mind"}),
    )
    .await
    .expect_problem(409, "duplicate");
    assert_eq!(answers_in(&app, &alex, conversation).await.len(), 1);
    let kept = public_survey(&app, &token).await.expect(200);
    assert_eq!(kept.body["rating"], 4);
    assert_eq!(kept.body["comment"], "Quick and kind");
    alex_ws.expect_silence().await;

    let refused = answer(&app, &token, json!({"rating": 6}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "rating");
    answer(&app, "no-such-token", json!({"rating": 5}))
        .await
        .expect_problem(404, "not_found");
    public_survey(&app, "no-such-token")
        .await
        .expect_problem(404, "not_found");
}

async fn two_answers_at_once_record_one(app: TestApp) {
    let admin = app.admin().await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    for round in 0..ROUNDS {
        let conversation = line.text(&app, &customer(round), "Thanks!").await;
        let token = survey(&app, &admin, conversation).await;
        let path = format!("/v1/public/surveys/{token}");
        let replies = at_once(3, |i| {
            app.send(
                reqwest::Method::POST,
                &path,
                None,
                Some(json!({"rating": i + 1})),
            )
        })
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {:?}", statuses(&replies));
        for lost in replies.iter().filter(|reply| reply.status != 200) {
            assert_eq!(lost.status, 409, "round {round}: {}", lost.body);
            assert_eq!(lost.body["code"], "duplicate", "round {round}");
        }
        let rating = won[0].body["rating"].as_i64().expect("rating");
        let recorded = answers_in(&app, &admin, conversation).await;
        assert_eq!(recorded.len(), 1, "round {round}: {recorded:?}");
        assert_eq!(recorded[0]["body"], format!("Rated {rating}/5"));
        let kept = public_survey(&app, &token).await.expect(200);
        assert_eq!(kept.body["rating"], rating, "round {round}");
        let seen = fixtures::conversation(&app, &admin, conversation).await;
        assert_eq!(
            seen["message_count"], 3,
            "round {round}: the customer's text, the survey, one answer"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The summary

/// A customer's conversation on `line`, assigned to `assignee` (or not), surveyed and
/// answered with `rating`; answers the conversation and when the answer was given.
async fn rated(
    app: &TestApp,
    admin: &Session,
    line: &Channel,
    n: u32,
    assignee: Option<&Session>,
    rating: i32,
) -> (i64, String) {
    let conversation = line.text(app, &customer(n), "Hello").await;
    if let Some(assignee) = assignee {
        assign(app, admin, conversation, assignee).await;
    }
    let token = survey(app, admin, conversation).await;
    answer(app, &token, json!({"rating": rating}))
        .await
        .expect(200);
    let recorded = answers_in(app, admin, conversation).await;
    let at = recorded[0]["created_at"]
        .as_str()
        .expect("created_at")
        .to_string();
    // The next answer gets a later millisecond, so periods split between them.
    fixtures::tick().await;
    (conversation, at)
}

async fn summary(app: &TestApp, session: &Session, query: &str) -> Reply {
    app.get(&format!("/v1/surveys/summary?{query}"), &session.token)
        .await
}

fn inbox_result(inbox: i64, answered: i64, mean: f64) -> Value {
    json!({"inbox_id": inbox, "answered": answered, "mean_rating": mean})
}

fn agent_result(agent: &Session, answered: i64, mean: f64) -> Value {
    json!({"user_id": agent.user_id, "answered": answered, "mean_rating": mean})
}

async fn the_summary_counts_answers_per_inbox_and_agent_over_a_period(app: TestApp) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let bea = app.user(&admin, "agent", "Bea Agent").await;
    let mia = app.user(&admin, "manager", "Mia Manager").await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex, &bea, &mia]).await;
    let sales = fixtures::inbox(&app, &admin, "Sales", json!({}), &[&alex, &bea]).await;
    let support_line = fixtures::sms_channel(&app, &admin, support, "+14155550100").await;
    let sales_line = fixtures::sms_channel(&app, &admin, sales, "+14155550200").await;

    let (_, first) = rated(&app, &admin, &support_line, 1, Some(&alex), 3).await;
    let (second_conversation, second) = rated(&app, &admin, &support_line, 2, Some(&alex), 4).await;
    rated(&app, &admin, &support_line, 3, Some(&bea), 5).await;
    rated(&app, &admin, &sales_line, 4, Some(&bea), 2).await;
    let (_, last) = rated(&app, &admin, &sales_line, 5, None, 1).await;
    // Sent, never answered: counts for nothing.
    let unanswered = support_line.text(&app, &customer(6), "Hi").await;
    survey(&app, &admin, unanswered).await;
    assert!(first < second && second < last);

    let everything = summary(&app, &admin, "").await.expect(200);
    assert_eq!(
        everything.body,
        json!({
            "inboxes": [inbox_result(support, 3, 4.0), inbox_result(sales, 2, 1.5)],
            "agents": [agent_result(&alex, 2, 3.5), agent_result(&bea, 2, 3.5)],
        }),
        "unassigned answers count for their inbox only"
    );
    let from_second = format!("from={second}");
    let expected = json!({
        "inboxes": [inbox_result(support, 2, 4.5), inbox_result(sales, 2, 1.5)],
        "agents": [agent_result(&alex, 1, 4.0), agent_result(&bea, 2, 3.5)],
    });
    assert_eq!(
        summary(&app, &admin, &from_second).await.expect(200).body,
        expected,
        "`from` is inclusive: the first answer is out, the second in"
    );
    assert_eq!(
        summary(&app, &admin, &format!("{from_second}&to={last}"))
            .await
            .expect(200)
            .body,
        json!({
            "inboxes": [inbox_result(support, 2, 4.5), inbox_result(sales, 1, 2.0)],
            "agents": [agent_result(&alex, 1, 4.0), agent_result(&bea, 2, 3.5)],
        }),
        "`to` is exclusive: the last answer is out"
    );
    assert_eq!(
        summary(&app, &admin, &format!("{from_second}&inbox_id={sales}"))
            .await
            .expect(200)
            .body,
        json!({"inboxes": [inbox_result(sales, 2, 1.5)], "agents": [agent_result(&bea, 1, 2.0)]})
    );
    assert_eq!(
        summary(&app, &admin, &format!("from={second}&to={second}"))
            .await
            .expect(200)
            .body,
        json!({"inboxes": [], "agents": []}),
        "an empty period"
    );

    // A rating stays with the agent who had the conversation when the customer answered.
    assign(&app, &admin, second_conversation, &bea).await;
    assert_eq!(
        summary(&app, &admin, &from_second).await.expect(200).body,
        expected
    );

    // A manager reads the inboxes they belong to, and the agents' answers in those.
    assert_eq!(
        summary(&app, &mia, &from_second).await.expect(200).body,
        json!({
            "inboxes": [inbox_result(support, 2, 4.5)],
            "agents": [agent_result(&alex, 1, 4.0), agent_result(&bea, 1, 5.0)],
        })
    );
    summary(&app, &mia, &format!("inbox_id={sales}"))
        .await
        .expect_problem(404, "not_found");
    summary(&app, &alex, "")
        .await
        .expect_problem(403, "forbidden");

    summary(&app, &admin, "from=yesterday")
        .await
        .expect_problem(400, "bad_request");
    summary(&app, &admin, "to=2026-13-01T00:00:00Z")
        .await
        .expect_problem(400, "bad_request");
    let reversed = summary(&app, &admin, &format!("from={last}&to={second}"))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(reversed.body["errors"][0]["field"], "from");

    // Another organization's results are not there, nor its inboxes.
    let globex = app.other_org("Globex").await;
    assert_eq!(
        summary(&app, &globex, "").await.expect(200).body,
        json!({"inboxes": [], "agents": []})
    );
    summary(&app, &globex, &format!("inbox_id={support}"))
        .await
        .expect_problem(404, "not_found");
}

on_both_backends!(
    an_answer_is_recorded_once_and_shown_in_its_closed_conversation,
    the_summary_counts_answers_per_inbox_and_agent_over_a_period,
);
on_both_backends_with!(side_by_side => two_answers_at_once_record_one);
