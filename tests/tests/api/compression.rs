//! Answers are gzip-compressed for clients that ask (every browser and mobile HTTP stack),
//! whole, with a length, and the same JSON as uncompressed.

use std::io::Read;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestApp;

async fn fetch(app: &TestApp, path: &str, token: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.client().get(app.url(path)).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    request.send().await.expect("request reaches the server")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

async fn a_list_page_is_gzipped_for_clients_that_ask(app: TestApp) {
    let admin = app.admin().await;
    for n in 0..30 {
        app.post(
            "/v1/contacts",
            &admin.token,
            json!({"name": format!("Customer number {n}"), "phone_numbers": [format!("+1415555{n:04}")]}),
        )
        .await
        .expect(201);
    }
    let path = "/v1/contacts?limit=30";

    let plain = fetch(&app, path, &admin.token, None).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    let plain: Value = serde_json::from_slice(&plain.bytes().await.unwrap()).unwrap();
    assert_eq!(plain["items"].as_array().map(Vec::len), Some(30));

    let packed = fetch(&app, path, &admin.token, Some("br;q=1.0, gzip;q=0.8")).await;
    assert_eq!(packed.status(), 200);
    assert_eq!(header(&packed, "content-encoding").as_deref(), Some("gzip"));
    assert!(
        header(&packed, "vary")
            .is_some_and(|vary| vary.to_ascii_lowercase().contains("accept-encoding")),
        "a cache must key on Accept-Encoding"
    );
    assert_eq!(
        header(&packed, "transfer-encoding"),
        None,
        "sent whole, not chunked"
    );
    let length: usize = header(&packed, "content-length")
        .and_then(|length| length.parse().ok())
        .expect("a Content-Length");
    let bytes = packed.bytes().await.unwrap();
    assert_eq!(bytes.len(), length);
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_ref())
        .read_to_string(&mut text)
        .expect("a complete gzip stream");
    assert!(
        bytes.len() * 2 < text.len(),
        "compressed: {} of {}",
        bytes.len(),
        text.len()
    );
    let unpacked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(unpacked, plain);

    // Refused with q=0, it is not used.
    let refused = fetch(&app, path, &admin.token, Some("gzip;q=0")).await;
    assert_eq!(header(&refused, "content-encoding"), None);
    // A problem document is JSON too, and comes back whole.
    let missing = fetch(&app, "/v1/contacts/999999", &admin.token, Some("gzip")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(&missing, "content-encoding").as_deref(),
        Some("gzip")
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(missing.bytes().await.unwrap().as_ref())
        .read_to_string(&mut text)
        .expect("a complete gzip stream");
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["code"], "not_found");
}

on_both_backends!(a_list_page_is_gzipped_for_clients_that_ask);
