//! The OpenAPI document integrators read is the one the server serves, and the API reference
//! page works without the internet.

use serde_json::{Value, json};

use crate::fixtures;
use crate::support::{TestApp, into_reply};
use crate::{on_both_backends, on_both_backends_with};

async fn the_served_document_matches_the_committed_one(app: TestApp) {
    let served = app
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    let committed: Value =
        serde_json::from_str(openapi::COMMITTED_SPEC).expect("openapi/openapi.json is JSON");
    assert!(
        served.body == committed,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
    // Every operation has a `<verb>_<resource>` id and documents its problem responses.
    let paths = served.body["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/v1/auth/login") && paths.contains_key("/v1/inboxes/{id}/channels")
    );
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                id.contains('_') || id == "login" || id == "logout",
                "{method} {path} has operationId {id:?}"
            );
        }
    }
}

async fn the_reference_page_is_served_from_the_binary(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .expect("client");
    let page = client.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("swagger-ui"),
        "not the reference page: {html:.200}"
    );
    // Its scripts come from this server, not a CDN.
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let reply = client.get(app.url(asset)).send().await.expect("asset");
        assert_eq!(reply.status(), 200, "{asset}");
    }
    assert!(
        !html.contains("https://cdn") && !html.contains("unpkg.com"),
        "the page loads from a CDN"
    );
}

/// Every endpoint of the contract's core sections (Auth and session, Administration,
/// Conversations, Contacts, Internal chats, Channels in and out, Realtime), as the client
/// teams code against them: the document must describe each one.
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("put", "/v1/me/queues/{inbox_id}"),
    ("put", "/v1/me/status"),
    ("get", "/v1/users"),
    ("post", "/v1/users"),
    ("get", "/v1/users/{id}"),
    ("patch", "/v1/users/{id}"),
    ("get", "/v1/teams"),
    ("post", "/v1/teams"),
    ("get", "/v1/teams/{id}"),
    ("patch", "/v1/teams/{id}"),
    ("delete", "/v1/teams/{id}"),
    ("put", "/v1/teams/{id}/members/{user_id}"),
    ("delete", "/v1/teams/{id}/members/{user_id}"),
    ("get", "/v1/inboxes"),
    ("post", "/v1/inboxes"),
    ("get", "/v1/inboxes/{id}"),
    ("patch", "/v1/inboxes/{id}"),
    ("get", "/v1/inboxes/{id}/members"),
    ("put", "/v1/inboxes/{id}/members/{user_id}"),
    ("delete", "/v1/inboxes/{id}/members/{user_id}"),
    ("get", "/v1/inboxes/{id}/channels"),
    ("post", "/v1/inboxes/{id}/channels"),
    ("get", "/v1/inboxes/{id}/canned-responses"),
    ("post", "/v1/inboxes/{id}/canned-responses"),
    ("patch", "/v1/canned-responses/{id}"),
    ("delete", "/v1/canned-responses/{id}"),
    ("get", "/v1/tags"),
    ("post", "/v1/tags"),
    ("patch", "/v1/tags/{id}"),
    ("delete", "/v1/tags/{id}"),
    ("get", "/v1/conversations"),
    ("get", "/v1/conversations/counts"),
    ("post", "/v1/conversations"),
    ("get", "/v1/conversations/{id}"),
    ("post", "/v1/conversations/{id}/assign"),
    ("post", "/v1/conversations/{id}/close"),
    ("post", "/v1/conversations/{id}/move"),
    ("post", "/v1/conversations/{id}/read"),
    ("post", "/v1/conversations/{id}/unread"),
    ("put", "/v1/conversations/{id}/pin"),
    ("delete", "/v1/conversations/{id}/pin"),
    ("put", "/v1/conversations/{id}/tags/{tag_name}"),
    ("delete", "/v1/conversations/{id}/tags/{tag_name}"),
    ("put", "/v1/conversations/{id}/contact"),
    ("post", "/v1/conversations/bulk"),
    ("get", "/v1/conversations/{id}/messages"),
    ("post", "/v1/conversations/{id}/messages"),
    ("post", "/v1/conversations/{id}/survey"),
    ("get", "/v1/conversations/{id}/activity"),
    ("put", "/v1/messages/{id}/reactions/{emoji}"),
    ("delete", "/v1/messages/{id}/reactions/{emoji}"),
    ("post", "/v1/attachments"),
    ("get", "/v1/attachments/{id}"),
    ("get", "/v1/contacts"),
    ("post", "/v1/contacts"),
    ("get", "/v1/contacts/{id}"),
    ("patch", "/v1/contacts/{id}"),
    ("delete", "/v1/contacts/{id}"),
    ("put", "/v1/contacts/{id}/favorite"),
    ("delete", "/v1/contacts/{id}/favorite"),
    ("put", "/v1/contacts/{id}/opt-out"),
    ("get", "/v1/contacts/{id}/conversations"),
    ("post", "/v1/contacts/{id}/merge"),
    ("post", "/v1/contacts/import"),
    ("get", "/v1/contacts/export"),
    ("get", "/v1/chats"),
    ("post", "/v1/chats"),
    ("get", "/v1/chats/{id}/messages"),
    ("post", "/v1/chats/{id}/messages"),
    ("post", "/v1/channels/{id}/inbound"),
    ("post", "/v1/channels/{id}/status"),
    ("get", "/v1/public/surveys/{token}"),
    ("post", "/v1/public/surveys/{token}"),
    ("get", "/v1/surveys/summary"),
    ("get", "/v1/public/attachments/{id}"),
    ("get", "/v1/ws"),
    ("get", "/v1/events"),
    ("get", "/v1/presence"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[test]
fn the_document_describes_every_endpoint_of_the_contract() {
    let document: Value =
        serde_json::from_str(openapi::COMMITTED_SPEC).expect("openapi/openapi.json is JSON");
    let missing: Vec<String> = CONTRACT
        .iter()
        .filter(|(method, path)| document["paths"][*path][*method].is_null())
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the OpenAPI document: {missing:?}"
    );
}

/// Every committed problem response is a problem document with a `code` enum, and every
/// response has a description (what validators and client generators require).
#[test]
fn every_problem_response_names_its_codes() {
    let document: Value =
        serde_json::from_str(openapi::COMMITTED_SPEC).expect("openapi/openapi.json is JSON");
    let mut bare = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let name = format!("{method} {path} {status}");
                if response["description"].as_str().is_none_or(str::is_empty) {
                    bare.push(format!("{name}: no description"));
                }
                let problem = &response["content"]["application/problem+json"];
                let status: u16 = status.parse().expect("a numeric status");
                if status >= 400 && path != "/readyz" {
                    let codes = &problem["schema"]["allOf"][1]["properties"]["code"]["enum"];
                    if codes.as_array().is_none_or(Vec::is_empty) {
                        bare.push(format!("{name}: no code enum"));
                    }
                }
            }
        }
    }
    assert!(bare.is_empty(), "{bare:#?}");
}

/// The client guide's table of codes names every code the server has, with its status.
#[test]
fn the_error_guide_lists_every_code() {
    let guide = include_str!("../../../docs/errors.md");
    let missing: Vec<String> = openapi::ErrorCode::ALL
        .iter()
        .filter(|code| !guide.contains(&format!("| {} | `{code}` |", code.status())))
        .map(ToString::to_string)
        .collect();
    assert!(missing.is_empty(), "docs/errors.md lacks {missing:?}");
}

/// The validators' limits are stated on the fields they apply to, and no entry of the table
/// names a schema or field the document lacks.
#[test]
fn request_schemas_state_the_validators_limits() {
    let mut document: Value =
        serde_json::from_str(openapi::COMMITTED_SPEC).expect("openapi/openapi.json is JSON");
    let name = &document["components"]["schemas"]["CreateUser"]["properties"]["name"];
    assert_eq!(name["maxLength"], domain::validate::limits::NAME);
    assert_eq!(name["minLength"], 1);
    let missing = openapi::constraints::apply(&mut document);
    assert!(missing.is_empty(), "no such schema fields: {missing:?}");
}

/// Every `$ref` names a schema the document defines (generators stop at the first that
/// does not).
#[test]
fn every_reference_is_defined() {
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        ("$ref", Some(target)) => found.push(target),
                        _ => refs(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }
    let document: Value =
        serde_json::from_str(openapi::COMMITTED_SPEC).expect("openapi/openapi.json is JSON");
    let mut found = Vec::new();
    refs(&document, &mut found);
    let undefined: Vec<&str> = found
        .into_iter()
        .filter(|target| {
            let name = target.trim_start_matches("#/components/schemas/");
            document["components"]["schemas"][name].is_null()
        })
        .collect();
    assert!(undefined.is_empty(), "{undefined:?}");
}

/// A method a path does not have answers 405 with `Allow`; an unknown path 404; both as
/// problem documents.
async fn unserved_methods_answer_405_with_allow(app: TestApp) {
    let admin = app.admin().await;
    for (method, path, allow) in [
        ("PATCH", "/v1/tags", "GET, POST"),
        ("TRACE", "/v1/tags", "GET, POST"),
        ("POST", "/v1/conversations/12", "GET"),
        ("PUT", "/healthz", "GET"),
        // A literal path is not an id of its parameterized neighbour.
        ("PATCH", "/v1/contacts/import", "POST"),
        ("OPTIONS", "/v1/conversations/bulk", "POST"),
    ] {
        let request = app
            .client()
            .request(method.parse().expect("method"), app.url(path))
            .bearer_auth(&admin.token);
        let reply = into_reply(request.send().await.expect("reaches the server")).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        assert_eq!(reply.body["code"], "method_not_allowed", "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    app.get("/v1/nothing-here", &admin.token)
        .await
        .expect_problem(404, "not_found");
}

fn small_bodies(config: &mut api::Config) {
    config.max_body = 2048;
    config.max_upload = 4096;
}

/// A body over the limit is refused with a problem document on raw-body endpoints too.
async fn an_oversized_raw_body_is_a_problem_document(app: TestApp) {
    let big = vec![b'x'; 64 * 1024];
    let reply = app
        .client()
        .post(app.url("/v1/auth/login"))
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("reaches the server");
    let reply = into_reply(reply).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.body["code"], "payload_too_large");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

/// An `Idempotency-Key` that is not visible ASCII is refused, not silently ignored (which
/// would send a retried message twice).
async fn an_unreadable_idempotency_key_is_refused(app: TestApp) {
    let admin = app.admin().await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[]).await;
    let channel = fixtures::sms_channel(&app, &admin, inbox, "+14155550000").await;
    let conversation = channel.text(&app, &fixtures::customer(1), "hello").await;
    let key = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").expect("obs-text header");
    let path = format!("/v1/conversations/{conversation}/messages");
    for _ in 0..2 {
        let request = app
            .client()
            .post(app.url(&path))
            .bearer_auth(&admin.token)
            .header("Idempotency-Key", key.clone())
            .json(&json!({"kind": "note", "body": "once"}));
        let reply = into_reply(request.send().await.expect("reaches the server")).await;
        reply.expect_problem(400, "bad_request");
    }
    let notes = fixtures::messages(&app, &admin, conversation).await;
    assert!(!notes.iter().any(|message| message["body"] == "once"));
}

/// JSON does not tell `4` from `4.0` (nor does JSON Schema): a whole number with a fraction
/// is the integer; an optional body sent as `null` is no body.
async fn whole_numbers_and_null_bodies_are_read_as_json_means_them(app: TestApp) {
    let admin = app.admin().await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[]).await;
    let reply = app
        .post(
            "/v1/tags",
            &admin.token,
            json!({"name": "vip", "color": "#1f8ceb"}),
        )
        .await
        .expect(201);
    assert_eq!(reply.body["name"], "vip");
    let moved = app
        .post(
            "/v1/inboxes",
            &admin.token,
            json!({"name": "Sales", "auto_assign_limit": 3.0}),
        )
        .await;
    assert!(moved.status == 201, "{}", moved.body);
    assert_eq!(moved.body["auto_assign_limit"], 3, "{}", moved.body);
    let fractional = app
        .post(
            "/v1/inboxes",
            &admin.token,
            json!({"name": "Billing", "auto_assign_limit": 3.5}),
        )
        .await;
    fractional.expect_problem(400, "bad_request");
    let channel = fixtures::sms_channel(&app, &admin, inbox, "+14155550000").await;
    let conversation = channel.text(&app, &fixtures::customer(6), "hi").await;
    let close = app
        .client()
        .post(app.url(&format!("/v1/conversations/{conversation}/close")))
        .bearer_auth(&admin.token)
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .expect("reaches the server");
    let close = into_reply(close).await.expect(200);
    assert_eq!(close.body["status"], "closed");
    assert_eq!(close.body["spam"], false);
}

/// A provider retry whose id carries stray spaces is the same message, answered with the
/// original ids.
async fn a_padded_provider_id_replays_the_original(app: TestApp) {
    let admin = app.admin().await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[]).await;
    let channel = fixtures::sms_channel(&app, &admin, inbox, "+14155550000").await;
    let from = fixtures::customer(2);
    let first = fixtures::inbound(&app, channel.id, &channel.secret, "m-17", &from, "hi")
        .await
        .expect(200);
    let again = fixtures::inbound(&app, channel.id, &channel.secret, "  m-17 ", &from, "hi")
        .await
        .expect(200);
    assert_eq!(again.body, first.body);
    let conversation = first.body["conversation_id"].as_i64().expect("id");
    assert_eq!(
        fixtures::messages(&app, &admin, conversation).await.len(),
        1
    );
}

/// Whether `value` has what `schema` (an AsyncAPI or OpenAPI schema, `$ref`s into
/// `schemas`) requires: every required property, no property it does not declare, and the
/// same of nested objects and array items. Types are left to the JSON Schema validators of
/// `make api-check`; this catches shapes that drift.
fn conforms(value: &Value, schema: &Value, schemas: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return conforms(value, &schemas[name], schemas, at);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[key].as_array() {
            let results: Vec<Result<(), String>> = options
                .iter()
                .map(|option| conforms(value, option, schemas, at))
                .collect();
            return match key {
                "allOf" => results.into_iter().collect(),
                _ if results.iter().any(Result::is_ok) => Ok(()),
                _ => Err(format!("{at}: matches none of {key}: {results:?}")),
            };
        }
    }
    if value.is_null() {
        return Ok(()); // Nullability is the validators' business.
    }
    if let (Some(object), Some(properties)) = (value.as_object(), schema["properties"].as_object())
    {
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap_or_default();
            if !object.contains_key(required) {
                return Err(format!("{at}: lacks `{required}`"));
            }
        }
        for (key, field) in object {
            let Some(declared) = properties.get(key) else {
                return Err(format!("{at}: `{key}` is not in the schema"));
            };
            conforms(field, declared, schemas, &format!("{at}.{key}"))?;
        }
    }
    if let (Some(items), Some(item)) = (value.as_array(), schema.get("items")) {
        for (index, element) in items.iter().enumerate() {
            conforms(element, item, schemas, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

/// The AsyncAPI document served, committed and generated are one.
async fn the_served_asyncapi_document_matches_the_committed_one(app: TestApp) {
    let served = app.get("/asyncapi.json", "").await.expect(200).body;
    let committed: Value =
        serde_json::from_str(openapi::COMMITTED_ASYNCAPI).expect("openapi/asyncapi.json is JSON");
    assert!(
        served == committed && committed == api::asyncapi_json(),
        "openapi/asyncapi.json is stale: run `make openapi`"
    );
}

/// A working day's events, as a client receives them, have exactly the shapes the AsyncAPI
/// document gives their type.
async fn events_have_the_shapes_the_asyncapi_document_gives(app: TestApp) {
    let document = api::asyncapi_json();
    let schemas = &document["components"]["schemas"];
    let messages = &document["channels"]["live"]["messages"];
    let admin = app.admin().await;
    let agent = app.user(&admin, "agent", "Alex Agent").await;
    let support = fixtures::inbox(&app, &admin, "Support", json!({}), &[&agent]).await;
    let sales = fixtures::inbox(&app, &admin, "Sales", json!({}), &[&agent]).await;
    let sms = fixtures::sms_channel(&app, &admin, support, "+14155550000").await;
    let conversation = sms.text(&app, &fixtures::customer(3), "my order?").await;
    let assign = format!("/v1/conversations/{conversation}/assign");
    app.post(&assign, &admin.token, json!({"assignee_id": agent.user_id}))
        .await
        .expect(200);
    let messages_path = format!("/v1/conversations/{conversation}/messages");
    let reply = app
        .post(
            &messages_path,
            &agent.token,
            json!({"kind": "message", "body": "on its way"}),
        )
        .await
        .expect(201);
    let reaction = format!("/v1/messages/{}/reactions/%F0%9F%91%8D", reply.body["id"]);
    assert!(app.put(&reaction, &agent.token, None).await.status < 300);
    app.post(
        &format!("/v1/conversations/{conversation}/move"),
        &agent.token,
        json!({"inbox_id": sales}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/conversations/{conversation}/close"),
        &admin.token,
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        "/v1/contacts",
        &admin.token,
        json!({"name": "Ana", "phone_numbers": [fixtures::customer(4)]}),
    )
    .await
    .expect(201);
    let csv = format!("name,phone_numbers\nBea,{}\n", fixtures::customer(5));
    let imported = app
        .client()
        .post(app.url("/v1/contacts/import"))
        .bearer_auth(&admin.token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("reaches the server");
    assert_eq!(imported.status(), 200);
    let chat = app
        .post(
            "/v1/chats",
            &admin.token,
            json!({"kind": "direct", "member_ids": [agent.user_id]}),
        )
        .await
        .body["id"]
        .clone();
    app.post(
        &format!("/v1/chats/{chat}/messages"),
        &admin.token,
        json!({"body": "lunch?"}),
    )
    .await
    .expect(201);

    let events = crate::realtime::replay_all(&app, &app.url(""), &admin, 0).await;
    let mut seen = std::collections::BTreeSet::new();
    for event in &events {
        let kind = event["type"].as_str().expect("type");
        let message = messages
            .as_object()
            .expect("messages")
            .values()
            .find(|message| message["name"] == kind)
            .unwrap_or_else(|| panic!("`{kind}` is not in the AsyncAPI document"));
        if let Err(why) = conforms(event, &message["payload"], schemas, kind) {
            panic!("{why}\n{event}");
        }
        seen.insert(kind.to_string());
    }
    let expected = [
        "conversation.created",
        "conversation.updated",
        "conversation.assigned",
        "conversation.moved",
        "conversation.closed",
        "message.created",
        "message.updated",
        "contact.updated",
        "contacts.imported",
        "chat.message.created",
    ];
    for kind in expected {
        assert!(seen.contains(kind), "no `{kind}` among {seen:?}");
    }
}

on_both_backends!(
    the_served_asyncapi_document_matches_the_committed_one,
    events_have_the_shapes_the_asyncapi_document_gives,
    the_served_document_matches_the_committed_one,
    the_reference_page_is_served_from_the_binary,
    unserved_methods_answer_405_with_allow,
    an_unreadable_idempotency_key_is_refused,
    a_padded_provider_id_replays_the_original,
    whole_numbers_and_null_bodies_are_read_as_json_means_them,
);

on_both_backends_with!(small_bodies => an_oversized_raw_body_is_a_problem_document);
