//! The baselines every target is a multiple of, measured in the same run on the same
//! machine: B1, a bare actix-web handler doing a send's JSON parse and one INSERT through a
//! pool of the server's size; B2, raw Redis PUBLISH → SUBSCRIBE; B3, a minimal actix-ws
//! broadcast server. B1 and B3 run as child processes of their own (the `bench` binary
//! started again with a hidden subcommand), so /proc tells their memory and CPU apart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures_util::StreamExt;
use persistence::{DbConnection, Store};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::process::{self, Child, Spec};

/// The table B1 writes, created and dropped by the harness around B1's run.
pub const B1_TABLE: &str = "bench_baseline";

/// `SWITCHBOARD_DB_POOL`'s default: B1 gets the server's pool size.
pub const POOL: u32 = 16;

/// Creates B1's table in the setup's database.
pub fn create_b1_table(database_url: &str) -> Result<(), String> {
    let statement = if database_url.starts_with("sqlite:") {
        format!(
            "CREATE TABLE IF NOT EXISTS {B1_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             conversation_id INTEGER NOT NULL, body TEXT NOT NULL, \
             created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
    } else {
        format!(
            "CREATE TABLE IF NOT EXISTS {B1_TABLE} (id BIGSERIAL PRIMARY KEY, \
             conversation_id BIGINT NOT NULL, body TEXT NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    };
    execute(database_url, &statement)
}

pub fn drop_b1_table(database_url: &str) -> Result<(), String> {
    execute(database_url, &format!("DROP TABLE IF EXISTS {B1_TABLE}"))
}

fn execute(database_url: &str, statement: &str) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let store = Store::open(database_url, 1).map_err(|error| error.to_string())?;
    store
        .write(|conn| conn.batch_execute(statement).map_err(Into::into))
        .map_err(|error| format!("{statement}: {error}"))
}

#[derive(Deserialize)]
struct SendBody {
    body: String,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn insert(conn: &mut DbConnection, body: &str) -> Result<i64, diesel::result::Error> {
    let inserted: Inserted = match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(format!(
            "INSERT INTO {B1_TABLE} (conversation_id, body) VALUES (1, $1) RETURNING id"
        ))
        .bind::<Text, _>(body)
        .get_result(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(format!(
            "INSERT INTO {B1_TABLE} (conversation_id, body) VALUES (1, ?) RETURNING id"
        ))
        .bind::<Text, _>(body)
        .get_result(lite)?,
    };
    Ok(inserted.id)
}

async fn b1_send(
    store: web::Data<Store>,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = body.into_inner().body;
    let store = store.into_inner();
    let (id, body) = web::block(move || {
        store
            .write(|conn| Ok(insert(conn, &body)?))
            .map(|id| (id, body))
    })
    .await?
    .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(HttpResponse::Created().json(json!({
        "id": id,
        "conversation_id": 1,
        "direction": "outbound",
        "kind": "message",
        "body": body,
        "created_at": chrono::Utc::now(),
    })))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// `bench __b1`: B1's server, until killed.
pub fn serve_b1(database_url: &str, bind: &str, pool: u32) -> Result<(), String> {
    let store = Store::open(database_url, pool).map_err(|error| error.to_string())?;
    let store = web::Data::new(store);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(store.clone())
                .route("/send", web::post().to(b1_send))
                .route("/healthz", web::get().to(healthz))
        })
        .bind(bind)
        .map_err(|error| format!("B1: cannot listen on {bind}: {error}"))?
        .run()
        .await
        .map_err(|error| error.to_string())
    })
}

type Frames = broadcast::Sender<Arc<str>>;

async fn b3_ws(
    request: HttpRequest,
    body: web::Payload,
    frames: web::Data<Frames>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, mut messages) = actix_ws::handle(&request, body)?;
    let mut frames = frames.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                frame = frames.recv() => match frame {
                    Ok(frame) => {
                        if session.text(frame.to_string()).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

async fn b3_trigger(frames: web::Data<Frames>, body: web::Bytes) -> HttpResponse {
    let frame: Arc<str> = Arc::from(String::from_utf8_lossy(&body).as_ref());
    let receivers = frames.send(frame).unwrap_or(0);
    HttpResponse::Ok().json(json!({"receivers": receivers}))
}

/// `bench __b3`: B3's server, until killed. `GET /ws` opens a socket; `POST /trigger` sends
/// its body as a text frame to every open socket.
pub fn serve_b3(bind: &str) -> Result<(), String> {
    let (frames, _) = broadcast::channel::<Arc<str>>(256);
    let frames = web::Data::new(frames);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(frames.clone())
                .route("/ws", web::get().to(b3_ws))
                .route("/trigger", web::post().to(b3_trigger))
                .route("/healthz", web::get().to(healthz))
        })
        .bind(bind)
        .map_err(|error| format!("B3: cannot listen on {bind}: {error}"))?
        .run()
        .await
        .map_err(|error| error.to_string())
    })
}

/// A frame of the size and shape of a reply's `message.created`, carrying `marker`.
pub fn b3_frame(marker: u64, seq: u64) -> String {
    json!({
        "id": seq.to_string(),
        "type": "message.created",
        "at": chrono::Utc::now(),
        "data": {
            "conversation_id": 1,
            "message": {
                "id": seq, "conversation_id": 1, "direction": "inbound", "kind": "message",
                "body": format!("Hi, my order has not arrived yet, can you check? {}", crate::client::marker_text(marker)),
                "author": {"type": "contact", "id": 1}, "attachments": [], "reactions": [],
                "delivery_status": null, "survey_token": null, "created_at": chrono::Utc::now(),
            }
        }
    })
    .to_string()
}

/// Starts B1 (`bench __b1`) on the setup's database and waits for it.
pub async fn start_b1(database_url: &str, logs: &Path) -> Result<Child, String> {
    let port = process::free_port()?;
    let exe = std::env::current_exe().map_err(|error| format!("the bench binary: {error}"))?;
    let mut child = Child::spawn(Spec {
        name: "b1",
        program: &exe,
        args: vec![
            "__b1".into(),
            "--database-url".into(),
            database_url.into(),
            "--bind".into(),
            format!("127.0.0.1:{port}"),
            "--pool".into(),
            POOL.to_string(),
        ],
        env: Vec::new(),
        log: logs.join("b1.log"),
        url: format!("http://127.0.0.1:{port}"),
    })?;
    child
        .wait_ready("/healthz", Duration::from_secs(30))
        .await?;
    Ok(child)
}

/// Starts B3 (`bench __b3`) and waits for it.
pub async fn start_b3(logs: &Path) -> Result<Child, String> {
    let port = process::free_port()?;
    let exe = std::env::current_exe().map_err(|error| format!("the bench binary: {error}"))?;
    let mut child = Child::spawn(Spec {
        name: "b3",
        program: &exe,
        args: vec!["__b3".into(), "--bind".into(), format!("127.0.0.1:{port}")],
        env: Vec::new(),
        log: logs.join("b3.log"),
        url: format!("http://127.0.0.1:{port}"),
    })?;
    child
        .wait_ready("/healthz", Duration::from_secs(30))
        .await?;
    Ok(child)
}

/// B2: `samples` PUBLISH → message times on one Redis, from one process over two
/// connections (one publishing, one subscribed), one at a time, with payloads the size of
/// an event.
pub async fn b2_samples(redis_url: &str, samples: usize) -> Result<Vec<Duration>, String> {
    const STEP: Duration = Duration::from_secs(5);
    let client =
        redis::Client::open(redis_url).map_err(|error| format!("Redis {redis_url}: {error}"))?;
    let mut subscriber = tokio::time::timeout(STEP, client.get_async_pubsub())
        .await
        .map_err(|_| "Redis: no subscriber connection within 5 s".to_string())?
        .map_err(|error| format!("Redis: {error}"))?;
    let channel = format!("switchboard-bench-b2-{}", std::process::id());
    tokio::time::timeout(STEP, subscriber.subscribe(&channel))
        .await
        .map_err(|_| "Redis: SUBSCRIBE took over 5 s".to_string())?
        .map_err(|error| format!("Redis SUBSCRIBE: {error}"))?;
    let mut publisher = tokio::time::timeout(STEP, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "Redis: no connection within 5 s".to_string())?
        .map_err(|error| format!("Redis: {error}"))?;
    let mut messages = subscriber.on_message();
    let padding = "x".repeat(900);
    let mut times = Vec::with_capacity(samples);
    for n in 0..samples + 10 {
        let payload = format!("{n}:{padding}");
        let sent = Instant::now();
        let mut command = redis::cmd("PUBLISH");
        command.arg(&channel).arg(&payload);
        tokio::time::timeout(STEP, command.query_async::<i64>(&mut publisher))
            .await
            .map_err(|_| "Redis: PUBLISH took over 5 s".to_string())?
            .map_err(|error| format!("Redis PUBLISH: {error}"))?;
        loop {
            let message = tokio::time::timeout(STEP, messages.next())
                .await
                .map_err(|_| format!("Redis: message {n} did not arrive within 5 s"))?
                .ok_or("Redis: the subscription ended")?;
            let text: String = message
                .get_payload()
                .map_err(|error| format!("Redis payload: {error}"))?;
            if text.split(':').next() == Some(n.to_string().as_str()) {
                break;
            }
        }
        // The first ones warm the connections up.
        if n >= 10 {
            times.push(sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(times)
}

/// `redis_version` of `INFO server`.
pub async fn redis_version(redis_url: &str) -> Result<String, String> {
    let client =
        redis::Client::open(redis_url).map_err(|error| format!("Redis {redis_url}: {error}"))?;
    let info = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut conn)
            .await
    })
    .await
    .map_err(|_| "Redis: INFO took over 5 s".to_string())?
    .map_err(|error| format!("Redis INFO: {error}"))?;
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(|version| format!("Redis {}", version.trim()))
        .ok_or_else(|| "Redis INFO: no redis_version".to_string())
}
