//! `storm`: realtime under load, against a running `switchboard serve` on 127.0.0.1 (it
//! refuses any other address). It
//! (a) creates an organization with N agents (rows written straight to the server's
//!     database, tokens signed with the server's `SWITCHBOARD_JWT_SECRET`: password hashing
//!     is not what is measured) and a history of customer messages through the API,
//! (b) opens each count of `--sockets` sockets of that organization at once and reports the
//!     sockets the server closed (by close code), the `presence.updated` frames received in
//!     total, and the server's resident memory (`VmRSS` sampled, and `VmHWM`, from
//!     /proc/PID/status),
//! (c) floods `resume` frames over the whole history (50 from one socket, and 50 spread over
//!     10 sockets) and measures how long a new customer message takes to reach an unrelated
//!     agent's socket, median of `--runs` runs, against the same without a flood.
//!
//! Every phase is bounded in time and count. Usage:
//! `storm --url http://127.0.0.1:8080 --database-url postgres://… --jwt-secret … --pid PID
//!  [--sockets 1000,5000] [--history 3000] [--runs 5] [--window-secs 15]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use persistence::Store;
use persistence::repo::users::{self, NewUser};
use serde_json::{Value, json};
use switchboard_bench::client::{self, Api, Channel, Socket};
use switchboard_bench::report::median;
use switchboard_bench::sys;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "bench password that is long enough";

struct Args {
    url: String,
    database_url: String,
    jwt_secret: String,
    pid: Option<u32>,
    sockets: Vec<usize>,
    history: usize,
    runs: usize,
    window: Duration,
}

fn args() -> Result<Args, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut raw = std::env::args().skip(1);
    while let Some(key) = raw.next() {
        let Some(name) = key.strip_prefix("--") else {
            return Err(format!("unexpected argument {key:?}"));
        };
        let value = raw
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_string(), value);
    }
    let get = |name: &str| map.get(name).cloned();
    let url = get("url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    if !url.starts_with("http://127.0.0.1:") {
        return Err(format!("--url must be http://127.0.0.1:PORT (got {url})"));
    }
    let database_url = get("database-url")
        .or_else(|| std::env::var("SWITCHBOARD_DATABASE_URL").ok())
        .ok_or("--database-url (the server's database) is required")?;
    if !(database_url.contains("@127.0.0.1") || database_url.starts_with("sqlite://")) {
        return Err("--database-url must be on 127.0.0.1".into());
    }
    let jwt_secret = get("jwt-secret")
        .or_else(|| std::env::var("SWITCHBOARD_JWT_SECRET").ok())
        .ok_or("--jwt-secret (the server's) is required")?;
    let number = |name: &str, default: usize| -> Result<usize, String> {
        get(name).map_or(Ok(default), |value| {
            value
                .parse()
                .map_err(|_| format!("--{name} must be a number"))
        })
    };
    let sockets = get("sockets")
        .unwrap_or_else(|| "1000,5000".into())
        .split(',')
        .map(|count| {
            count
                .trim()
                .parse::<usize>()
                .map_err(|_| "--sockets: numbers".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    if sockets.iter().any(|count| *count > 20_000) {
        return Err("--sockets: at most 20000".into());
    }
    Ok(Args {
        url,
        database_url,
        jwt_secret,
        pid: get("pid").and_then(|pid| pid.parse().ok()),
        sockets,
        history: number("history", 3000)?.min(50_000),
        runs: number("runs", 5)?.clamp(1, 50),
        window: Duration::from_secs(number("window-secs", 15)?.clamp(1, 120) as u64),
    })
}

/// The server's memory: (VmRSS, VmHWM) in MiB.
fn memory(pid: Option<u32>) -> Option<(f64, f64)> {
    let memory = sys::memory(pid?).ok()?;
    Some((
        memory.rss_kib as f64 / 1024.0,
        memory.hwm_kib as f64 / 1024.0,
    ))
}

struct Org {
    admin_token: String,
    agents: Vec<(i64, String)>,
    watcher_token: String,
    channel: i64,
    secret: String,
}

async fn json_call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value, String> {
    let api = Api {
        http: client.clone(),
    };
    api.call(method, &url, token, body.as_ref()).await
}

async fn setup(args: &Args, client: &reqwest::Client) -> Result<Org, String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let agents_wanted = args.sockets.iter().copied().max().unwrap_or(0).max(2);
    let store = Store::open(&args.database_url, 2).map_err(|error| error.to_string())?;
    let email = format!("admin-{stamp}@bench.example.com");
    let org_name = format!("Bench {stamp}");
    let secret = args.jwt_secret.clone();
    let started = Instant::now();
    let (admin_token, agents) = tokio::task::spawn_blocking({
        let email = email.clone();
        move || -> Result<(String, Vec<(i64, String)>), String> {
            api::bootstrap::create_admin(&store, &org_name, &email, PASSWORD, "Bench Admin")
                .map_err(|error| error.to_string())?;
            let keys = api::auth::TokenKeys::new(&secret, 6 * 3600);
            let admin = store
                .read(|conn| users::find_for_login(conn, &email, None))
                .map_err(|error| error.to_string())?
                .into_iter()
                .next()
                .ok_or("the admin just created")?
                .0;
            let org = admin.org_id;
            let created = store
                .write(|conn| {
                    (0..agents_wanted)
                        .map(|n| {
                            users::insert(
                                conn,
                                NewUser {
                                    org_id: org,
                                    email: &format!("agent{n}-{stamp}@bench.example.com"),
                                    name: &format!("Agent {n}"),
                                    role: domain::Role::Agent,
                                    password_hash: "not a real hash",
                                },
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|error| error.to_string())?;
            // Tokens of no sign-in (no refresh token behind them): checked against the user's
            // epoch only, as the server does for tokens from before sign-ins were named.
            let token =
                |user: &domain::User| keys.issue(user, "").map_err(|error| error.to_string());
            let agents = created
                .iter()
                .map(|user| Ok((user.id.get(), token(user)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok((token(&admin)?, agents))
        }
    })
    .await
    .map_err(|error| error.to_string())??;
    eprintln!(
        "created an organization with {} agents in {:.1} s",
        agents.len(),
        started.elapsed().as_secs_f64()
    );
    let base = &args.url;
    let inbox = json_call(
        client,
        reqwest::Method::POST,
        format!("{base}/v1/inboxes"),
        Some(&admin_token),
        Some(json!({"name": "Support"})),
    )
    .await?["id"]
        .as_i64()
        .ok_or("inbox id")?;
    // Agent 0 is the watcher: a member of the inbox, unrelated to the flood.
    let (watcher_id, watcher_token) = agents[0].clone();
    json_call(
        client,
        reqwest::Method::PUT,
        format!("{base}/v1/inboxes/{inbox}/members/{watcher_id}"),
        Some(&admin_token),
        None,
    )
    .await?;
    let channel = json_call(
        client,
        reqwest::Method::POST,
        format!("{base}/v1/inboxes/{inbox}/channels"),
        Some(&admin_token),
        Some(json!({"type": "sms", "address": format!("+1415{:07}", stamp % 10_000_000), "name": "Bench line"})),
    )
    .await?;
    let org = Org {
        admin_token,
        agents,
        watcher_token,
        channel: channel["id"].as_i64().ok_or("channel id")?,
        secret: channel["inbound_secret"]
            .as_str()
            .ok_or("inbound_secret")?
            .to_string(),
    };
    // The history: customers' messages (two or three events each), 16 at a time.
    let started = Instant::now();
    let messages = args.history / 2;
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..16 {
        let (client, next, base) = (client.clone(), next.clone(), base.clone());
        let (channel, secret) = (org.channel, org.secret.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages as u64 {
                    return Ok::<(), String>(());
                }
                let from = format!("+1212555{:04}", n % 200);
                inbound(
                    &client,
                    &base,
                    channel,
                    &secret,
                    &from,
                    &format!("History {n}"),
                )
                .await?;
            }
        }));
    }
    for writer in writers {
        writer.await.map_err(|error| error.to_string())??;
    }
    eprintln!(
        "wrote {messages} customer messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(org)
}

/// A customer's signed message; returns the message id.
async fn inbound(
    client: &reqwest::Client,
    base: &str,
    channel: i64,
    secret: &str,
    from: &str,
    body: &str,
) -> Result<i64, String> {
    let api = Api {
        http: client.clone(),
    };
    let channel = Channel {
        id: channel,
        secret: secret.to_string(),
    };
    let (_, message) = api.inbound(base, &channel, from, body).await?;
    Ok(message)
}

async fn connect(base: &str, token: &str) -> Result<Socket, String> {
    client::connect(&client::ws_url(base, token), None).await
}

#[derive(Default)]
struct StormOutcome {
    connected: usize,
    refused: usize,
    closed: BTreeMap<String, usize>,
    presence_frames: u64,
    max_presence_frames: u64,
}

/// Opens `count` sockets at once and reads them for `window`.
async fn storm(args: &Args, org: &Org, count: usize) -> (StormOutcome, Duration) {
    let outcome = Arc::new(Mutex::new(StormOutcome::default()));
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + args.window;
    let mut tasks = Vec::new();
    for (_, token) in org.agents.iter().take(count) {
        let (base, token, outcome) = (args.url.clone(), token.clone(), outcome.clone());
        tasks.push(tokio::spawn(async move {
            let socket = match tokio::time::timeout_at(deadline, connect(&base, &token)).await {
                Ok(Ok(socket)) => socket,
                _ => {
                    outcome.lock().await.refused += 1;
                    return None;
                }
            };
            outcome.lock().await.connected += 1;
            let (sink, mut stream) = socket.split();
            let mut presence = 0u64;
            let mut closed = None;
            loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => break,
                    Ok(None) => {
                        closed = Some("ended".to_string());
                        break;
                    }
                    Ok(Some(Err(error))) => {
                        closed = Some(format!("error: {error}"));
                        break;
                    }
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if text.as_str().contains("\"presence.updated\"") {
                            presence += 1;
                        }
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        closed = Some(
                            frame.map_or("close".into(), |frame| u16::from(frame.code).to_string()),
                        );
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                }
            }
            let mut outcome = outcome.lock().await;
            outcome.presence_frames += presence;
            outcome.max_presence_frames = outcome.max_presence_frames.max(presence);
            if let Some(code) = closed {
                *outcome.closed.entry(code).or_default() += 1;
            }
            drop(outcome);
            // Keep the socket until every task is done, then close it.
            Some((sink, stream))
        }));
    }
    let mut kept = Vec::new();
    for task in tasks {
        if let Ok(Some(socket)) = task.await {
            kept.push(socket);
        }
    }
    let elapsed = began.elapsed();
    for (mut sink, _) in kept {
        let _ = sink.close().await;
    }
    let outcome = Arc::try_unwrap(outcome)
        .map(Mutex::into_inner)
        .unwrap_or_default();
    (outcome, elapsed)
}

/// The watcher's socket: skips frames until the message arrives.
async fn wait_for_message(socket: &mut Socket, message: i64, limit: Duration) -> Option<Duration> {
    let began = Instant::now();
    let needle = format!("\"message\":{{\"id\":{message},");
    loop {
        let left = limit.checked_sub(began.elapsed())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if text.as_str().contains("\"message.created\"") && text.as_str().contains(&needle)
                {
                    return Some(began.elapsed());
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

/// One run: `sockets` admin sockets each send `per_socket` resumes from 0, then a customer
/// writes; returns how long the watcher waited for it (from just before the POST) and how
/// the flood's sockets ended.
async fn flood_run(
    args: &Args,
    client: &reqwest::Client,
    org: &Org,
    watcher: &mut Socket,
    sockets: usize,
    per_socket: usize,
    run: usize,
) -> Result<(f64, BTreeMap<String, usize>), String> {
    let mut flooders = Vec::new();
    for _ in 0..sockets {
        let mut socket = connect(&args.url, &org.admin_token).await?;
        for _ in 0..per_socket {
            let frame = json!({"type": "resume", "after": "0"}).to_string();
            if socket.send(Message::text(frame)).await.is_err() {
                break;
            }
        }
        flooders.push(socket);
    }
    let began = Instant::now();
    let message = inbound(
        client,
        &args.url,
        org.channel,
        &org.secret,
        &format!("+1646555{:04}", run % 10_000),
        "Is anyone there?",
    )
    .await?;
    let waited = wait_for_message(watcher, message, Duration::from_secs(120)).await;
    let delay = waited.map(|_| began.elapsed().as_secs_f64() * 1000.0);
    // How the flood's sockets fared (closed with 4429, or still open).
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for mut socket in flooders {
        let end = loop {
            match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    break frame.map_or("close".into(), |frame| u16::from(frame.code).to_string());
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => break "ended".into(),
                Err(_) => break "open".into(),
            }
        };
        *ends.entry(end).or_default() += 1;
        let _ = socket.close(None).await;
    }
    // Settle: the server has caught up once the watcher hears a probe.
    let probe = inbound(
        client,
        &args.url,
        org.channel,
        &org.secret,
        "+16465559999",
        "probe",
    )
    .await?;
    wait_for_message(watcher, probe, Duration::from_secs(300)).await;
    delay
        .map(|delay| (delay, ends))
        .ok_or_else(|| "the live message never arrived".into())
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("storm: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = args()?;
    let client = reqwest::Client::new();
    let org = setup(&args, &client).await?;
    println!("# storm against {}", args.url);
    println!();
    if let Some((rss, hwm)) = memory(args.pid) {
        println!("server memory after setup: VmRSS {rss:.0} MiB, VmHWM {hwm:.0} MiB");
    }

    println!();
    println!(
        "## Mass connect (one organization, one agent per socket, read for {} s)",
        args.window.as_secs()
    );
    println!();
    println!(
        "| sockets | connected | refused | closed by server | presence frames (total) | max per socket | RSS peak during (MiB) | VmHWM after (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for count in &args.sockets {
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let peak = Arc::new(std::sync::Mutex::new(0f64));
        let sampler = {
            let (sampling, peak, pid) = (sampling.clone(), peak.clone(), args.pid);
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    if let Some((rss, _)) = memory(pid) {
                        let mut peak = peak.lock().unwrap();
                        *peak = peak.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let (outcome, _elapsed) = storm(&args, &org, *count).await;
        sampling.store(false, Ordering::Relaxed);
        let _ = sampler.await;
        let closed: usize = outcome.closed.values().sum();
        let by_code: Vec<String> = outcome
            .closed
            .iter()
            .map(|(code, n)| format!("{n}×{code}"))
            .collect();
        let peak = *peak.lock().unwrap();
        let hwm = memory(args.pid).map_or(f64::NAN, |(_, hwm)| hwm);
        println!(
            "| {count} | {} | {} | {closed} {} | {} | {} | {peak:.0} | {hwm:.0} |",
            outcome.connected,
            outcome.refused,
            if by_code.is_empty() {
                String::new()
            } else {
                format!("({})", by_code.join(", "))
            },
            outcome.presence_frames,
            outcome.max_presence_frames,
        );
        // Let the disconnects settle before the next count.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }

    println!();
    println!(
        "## Resume flood over the history ({} messages) vs. a live message to an unrelated agent",
        args.history / 2
    );
    println!();
    let mut watcher = connect(&args.url, &org.watcher_token).await?;
    let mut table = Vec::new();
    for (label, sockets, per_socket) in [
        ("no flood", 0, 0),
        ("50 resumes from one socket", 1, 50),
        ("50 resumes from 10 sockets (5 each)", 10, 5),
    ] {
        let mut delays = Vec::new();
        let mut ends: BTreeMap<String, usize> = BTreeMap::new();
        for run in 0..args.runs {
            match flood_run(&args, &client, &org, &mut watcher, sockets, per_socket, run).await {
                Ok((delay, run_ends)) => {
                    delays.push(delay);
                    for (end, n) in run_ends {
                        *ends.entry(end).or_default() += n;
                    }
                }
                Err(error) => eprintln!("{label}, run {run}: {error}"),
            }
        }
        let max = delays.iter().copied().fold(f64::NAN, f64::max);
        let runs = delays.len();
        let med = median(&mut delays);
        table.push(format!(
            "| {label} | {runs} | {med:.0} | {max:.0} | {} |",
            ends.iter()
                .map(|(end, n)| format!("{n}×{end}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    println!("| flood | runs | median delay (ms) | max delay (ms) | flood sockets ended |");
    println!("|---|---|---|---|---|");
    for line in table {
        println!("{line}");
    }
    if let Some((rss, hwm)) = memory(args.pid) {
        println!();
        println!("server memory at the end: VmRSS {rss:.0} MiB, VmHWM {hwm:.0} MiB");
    }
    Ok(())
}
