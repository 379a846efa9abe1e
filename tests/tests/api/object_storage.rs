//! Attachments on S3-compatible object storage (README → Operations): two instances on one
//! bucket serve and deliver each other's files, byte for byte, a file larger than one
//! multipart part included; what a refused write stored is removed; and with the store away,
//! uploads and downloads answer 503 `service_unavailable` and nothing is recorded. A local
//! directory that cannot take a file answers 503 too.
//!
//! The store is `moto` in server mode (`pip install 'moto[server]'`; `SWITCHBOARD_TEST_MOTO`
//! names the program when it is not `moto_server` on the PATH), started on a free port for
//! each test and killed with it. Without it the tests are skipped, and say so, except
//! under CI=true, where that fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::attachments::{big_png, png};
use crate::delivery::Provider;
use crate::fixtures::{self, customer, external_id, inbound_raw, sign};
use crate::support::{self, Backend, Session, TestApp, into_reply};

/// Where customers reach the server, as configured: the links are built on it.
const PUBLIC: &str = "https://switchboard.example";
const BUCKET: &str = "switchboard-attachments";
const PREFIX: &str = "tenant-files";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// A local S3-compatible server for one test.
struct S3 {
    child: Child,
    endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// Starts moto on a free port with an empty bucket; `None` (skipped) without moto.
    async fn start(test_name: &str) -> Option<S3> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let program =
            std::env::var("SWITCHBOARD_TEST_MOTO").unwrap_or_else(|_| "moto_server".into());
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                if in_ci() {
                    panic!("CI=true but {program} cannot start: {error}");
                }
                eprintln!("SKIPPED {test_name}: {program} cannot start ({error})");
                support::record_skip(&format!("{test_name} (no moto_server)"));
                return None;
            }
        };
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.put(format!("{}/{BUCKET}", s3.endpoint)).send().await {
                Ok(response) if response.status().is_success() => return Some(s3),
                outcome => {
                    assert!(
                        Instant::now() < deadline,
                        "moto did not create the bucket within 30 s: {outcome:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Points a configuration at the bucket.
    fn configure(&self, config: &mut api::Config) {
        on_bucket(&self.endpoint, config);
    }

    /// The keys in the bucket (as the S3 API lists them).
    async fn keys(&self) -> Vec<String> {
        let listing = reqwest::Client::new()
            .get(format!("{}/{BUCKET}?list-type=2", self.endpoint))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("a listing");
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect()
    }

    /// The store goes away.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration on the test's bucket at `endpoint`.
fn on_bucket(endpoint: &str, config: &mut api::Config) {
    config.storage_url = Some(format!("s3://{BUCKET}/{PREFIX}"));
    config.storage_endpoint = Some(endpoint.to_string());
    config.storage_region = Some("us-east-1".into());
    config.storage_key_id = Some("testing".into());
    config.storage_secret = Some("testing".into());
    config.public_url = Some(PUBLIC.into());
    config.delivery_base_delay_ms = 50;
}

/// Runs `body` with the first instance on a fresh bucket.
async fn with_bucket<F, Fut>(backend: Backend, test_name: &str, body: F)
where
    F: FnOnce(TestApp, S3) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(s3) = S3::start(test_name).await else {
        return;
    };
    let endpoint = s3.endpoint.clone();
    support::run(
        backend,
        test_name,
        move |config| on_bucket(&endpoint, config),
        move |app| body(app, s3),
    )
    .await;
}

/// `GET` of `path` at `base` as `session` (or a provider, without one): status, bytes, body.
async fn get_bytes(
    app: &TestApp,
    base: &str,
    path: &str,
    session: Option<&Session>,
) -> (u16, Vec<u8>, Value) {
    let mut request = app.client().get(format!("{base}{path}"));
    if let Some(session) = session {
        request = request.bearer_auth(&session.token);
    }
    let response = request.send().await.expect("request reaches the server");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body").to_vec();
    let problem = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, bytes, problem)
}

/// `POST /v1/attachments` at `base`.
async fn upload_at(app: &TestApp, base: &str, session: &Session, bytes: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("photo.png");
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = app
        .client()
        .post(format!("{base}/v1/attachments"))
        .bearer_auth(&session.token)
        .multipart(form)
        .send()
        .await
        .expect("request reaches the server");
    let reply = into_reply(response).await;
    (reply.status, reply.body)
}

fn attachment_rows(app: &TestApp) -> i64 {
    use persistence::diesel::dsl::count_star;
    use persistence::diesel::prelude::*;
    use persistence::schema::attachments;
    app.running()
        .state
        .store
        .read(|conn| Ok(attachments::table.select(count_star()).first::<i64>(conn)?))
        .expect("count attachments")
}

async fn two_instances_on_one_bucket_serve_and_deliver_each_others_files(app: TestApp, s3: S3) {
    let b = app.spawn_another(|config| s3.configure(config)).await;
    let (a_base, b_base) = (app.url(""), b.url(""));
    let provider = Provider::start(200).await;
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::channel(
        &app,
        &admin,
        inbox,
        json!({"type": "whatsapp", "address": "+14155550100", "name": "WhatsApp", "outbound_url": provider.url}),
    )
    .await;
    let conversation = line.text(&app, &customer(1), "Send me the photos?").await;

    // Uploaded through A, read through B.
    let small = png();
    let (status, uploaded) = upload_at(&app, &a_base, &alex, small.clone()).await;
    assert_eq!(status, 201, "{uploaded}");
    let small_id = uploaded["id"].as_i64().expect("an id");
    let (status, served, problem) = get_bytes(
        &app,
        &b_base,
        &format!("/v1/attachments/{small_id}"),
        Some(&alex),
    )
    .await;
    assert_eq!(status, 200, "{problem}");
    assert_eq!(served, small, "byte for byte through the other instance");

    // Larger than one multipart part (5 MiB): uploaded through B in parts, read through A.
    let large = big_png(6 * 1024 * 1024 + 123);
    let (status, uploaded) = upload_at(&app, &b_base, &alex, large.clone()).await;
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["size"], large.len());
    let large_id = uploaded["id"].as_i64().expect("an id");
    let (status, served, _) = get_bytes(
        &app,
        &a_base,
        &format!("/v1/attachments/{large_id}"),
        Some(&alex),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        served == large,
        "the large file comes back whole and unchanged"
    );

    // Sent through B (on WhatsApp, which carries files over 5 MB); the provider fetches the
    // links from A.
    let sent = app
        .client()
        .post(format!("{b_base}/v1/conversations/{conversation}/messages"))
        .bearer_auth(&alex.token)
        .json(&json!({"body": "Here they are", "attachment_ids": [small_id, large_id]}))
        .send()
        .await
        .expect("request reaches the server");
    into_reply(sent).await.expect(201);
    let delivered = provider.wait_for(1).await;
    let links: Vec<String> = delivered[0].body["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("no attachments in {}", delivered[0].body))
        .iter()
        .map(|entry| entry["url"].as_str().expect("a url").to_string())
        .collect();
    assert_eq!(links.len(), 2);
    for (link, expected) in links.iter().zip([&small, &large]) {
        let path = link.strip_prefix(PUBLIC).expect("a link on the public URL");
        let (status, served, problem) = get_bytes(&app, &a_base, path, None).await;
        assert_eq!(status, 200, "{problem}");
        assert!(&served == expected, "{link} serves the file sent");
    }
    // The bucket holds the two files, under the configured prefix, and nothing else.
    let keys = s3.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|key| key.starts_with(&format!("{PREFIX}/"))),
        "{keys:?}"
    );
    provider.stop().await;
    b.stop().await;
}

async fn what_a_refused_write_stored_is_removed(app: TestApp, s3: S3) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let inbox = fixtures::inbox(&app, &admin, "Support", json!({}), &[&alex]).await;
    let line = fixtures::sms_channel(&app, &admin, inbox, "+14155550100").await;
    let photo = crate::attachments::base64(&png());
    // An inbound message whose file is stored before its transaction, which then refuses
    // it (the sender is not a phone number): the file goes too.
    let raw = serde_json::to_vec(&json!({
        "external_id": external_id(),
        "from": "not a number",
        "body": "see attached",
        "attachments": [{"content_type": "image/png", "filename": "a.png", "data_base64": photo}],
    }))
    .expect("JSON");
    let signature = sign(&line.secret, &raw);
    inbound_raw(&app, line.id, Some(&signature), raw)
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(s3.keys().await, Vec::<String>::new());
    // An upload over the limit is given up part-way: no object, no row.
    let too_large = big_png(17 * 1024 * 1024);
    let (status, body) = upload_at(&app, &app.url(""), &alex, too_large).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    assert_eq!(s3.keys().await, Vec::<String>::new());
    assert_eq!(attachment_rows(&app), 0);
    // The same message from a phone number keeps its file.
    let raw = serde_json::to_vec(&json!({
        "external_id": external_id(),
        "from": customer(1),
        "body": "see attached",
        "attachments": [{"content_type": "image/png", "filename": "a.png", "data_base64": photo}],
    }))
    .expect("JSON");
    let signature = sign(&line.secret, &raw);
    inbound_raw(&app, line.id, Some(&signature), raw)
        .await
        .expect(200);
    assert_eq!(s3.keys().await.len(), 1);
    assert_eq!(attachment_rows(&app), 1);
}

async fn with_the_store_away_files_answer_503_and_nothing_is_recorded(app: TestApp, mut s3: S3) {
    let admin = app.admin().await;
    let alex = app.user(&admin, "agent", "Alex Agent").await;
    let base = app.url("");
    let (status, uploaded) = upload_at(&app, &base, &alex, png()).await;
    assert_eq!(status, 201, "{uploaded}");
    let id = uploaded["id"].as_i64().expect("an id");
    let ready = app
        .client()
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let ready = into_reply(ready).await.expect(200);
    assert_eq!(ready.body["storage"], "ok", "{}", ready.body);

    s3.kill();
    // Refused within the storage client's retry bound (seconds), not left hanging.
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(60),
        upload_at(&app, &base, &alex, png()),
    )
    .await
    .expect("the upload is answered, not left hanging");
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("service_unavailable")),
        "{body}"
    );
    assert_eq!(attachment_rows(&app), 1, "the refused upload left no row");
    let (status, _, problem) =
        get_bytes(&app, &base, &format!("/v1/attachments/{id}"), Some(&alex)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("service_unavailable"))
    );
    // Readiness names the store, but stays ready: every instance shares it, so taking this
    // one out of rotation would not help, and everything else still works.
    let ready = app
        .client()
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let ready = into_reply(ready).await.expect(200);
    assert_eq!(ready.body["storage"], "down", "{}", ready.body);
    app.get("/v1/me", &alex.token).await.expect(200);
}

/// The local directory cannot take the file (here a path through a regular file, which
/// fails for root too; a full disk fails the same way): 503, and no row.
async fn with_the_data_directory_unwritable_uploads_answer_503(backend: Backend, test_name: &str) {
    let blocker = tempfile::NamedTempFile::new().expect("a temporary file");
    let data_dir = blocker.path().join("data");
    support::run(
        backend,
        test_name,
        move |config| config.data_dir = data_dir,
        |app| async move {
            let admin = app.admin().await;
            let alex = app.user(&admin, "agent", "Alex Agent").await;
            let (status, body) = upload_at(&app, &app.url(""), &alex, png()).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (503, Some("service_unavailable")),
                "{body}"
            );
            assert_eq!(attachment_rows(&app), 0);
        },
    )
    .await;
    drop(blocker);
}

mod with_the_data_directory_unwritable_uploads_answer_503 {
    #[actix_web::test]
    async fn sqlite() {
        super::with_the_data_directory_unwritable_uploads_answer_503(
            crate::support::Backend::Sqlite,
            concat!(module_path!(), "::sqlite"),
        )
        .await;
    }

    #[actix_web::test]
    async fn postgres() {
        super::with_the_data_directory_unwritable_uploads_answer_503(
            crate::support::Backend::Postgres,
            concat!(module_path!(), "::postgres"),
        )
        .await;
    }
}

crate::on_both_backends_run_by!(with_bucket =>
    two_instances_on_one_bucket_serve_and_deliver_each_others_files,
    what_a_refused_write_stored_is_removed,
    with_the_store_away_files_answer_503_and_nothing_is_recorded,
);
