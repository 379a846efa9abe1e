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

on_both_backends!(
    the_served_document_matches_the_committed_one,
    the_reference_page_is_served_from_the_binary
);
