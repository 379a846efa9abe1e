//! The OpenAPI document integrators read is the one the server serves, and the API reference
//! page works without the internet.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::TestApp;

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

on_both_backends!(
    the_served_document_matches_the_committed_one,
    the_reference_page_is_served_from_the_binary
);
