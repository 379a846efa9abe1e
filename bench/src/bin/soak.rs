//! `soak` (`make soak`): the production shape (two `switchboard serve` instances on
//! PostgreSQL with Redis, or one on SQLite) under ten minutes of mixed traffic: customers
//! writing in, agents replying, lists and counts read, and WebSocket clients that keep
//! disconnecting and resuming. Every 10 s it reads each instance's resident memory and open
//! file descriptors from /proc. It fails on any failed request or frame error, and when
//! memory or descriptors grow from the first half of the run to the second (a leak), and
//! writes `target/bench/soak.json`. `--smoke` runs it for seconds on a tiny database and
//! fails only on errors (CI).
//!
//! Only 127.0.0.1 is contacted; every wait is bounded; Ctrl-C stops every child.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_bench::client;
use switchboard_bench::harness::{Run, Sizes};
use switchboard_bench::process;
use switchboard_bench::setup::{self, Lab, Options};
use switchboard_bench::sys;
use switchboard_bench::target::{Backend, Scale};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(
    name = "soak",
    about = "Mixed traffic with reconnecting sockets for minutes; memory and descriptors must stay flat (127.0.0.1 only)"
)]
struct Cli {
    /// Seconds of traffic, and a tiny database: fails only on errors.
    #[arg(long)]
    smoke: bool,
    /// Minutes of traffic (default 10; the smoke run lasts 15 s).
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// The `switchboard` binary.
    #[arg(long, default_value = "target/release/switchboard")]
    server: PathBuf,
    /// `postgres` (two instances with Redis) or `sqlite` (one instance).
    #[arg(long, default_value = "postgres")]
    setup: String,
    /// WebSocket clients that keep reconnecting.
    #[arg(long, default_value_t = 100)]
    sockets: usize,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error}");
            process::kill_all();
            ExitCode::FAILURE
        }
    }
}

/// What the traffic did, counted by every task.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
    frames: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counts {
    fn record<T>(&self, outcome: Result<T, String>) -> Option<T> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                first.get_or_insert(error);
                None
            }
        }
    }
}

/// One reading of every instance.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    at_s: f64,
    rss_kib: Vec<u64>,
    open_files: Vec<usize>,
    requests: u64,
    errors: u64,
    connects: u64,
}

fn open_files(pid: u32) -> Result<usize, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .map_err(|error| format!("/proc/{pid}/fd: {error}"))
}

async fn soak(cli: Cli) -> Result<bool, String> {
    sys::raise_open_files()?;
    let backend = match cli.setup.as_str() {
        "postgres" => Backend::Postgres,
        "sqlite" => Backend::Sqlite,
        other => return Err(format!("--setup {other}: postgres or sqlite")),
    };
    let server = std::fs::canonicalize(&cli.server).map_err(|error| {
        format!(
            "{}: {error} (build it: cargo build --release -p switchboard-api, or pass --server)",
            cli.server.display()
        )
    })?;
    let out = PathBuf::from(if cli.smoke {
        "target/bench/smoke"
    } else {
        "target/bench"
    });
    let logs = out.join("soak-logs");
    std::fs::create_dir_all(&logs).map_err(|error| format!("{}: {error}", logs.display()))?;
    let (length, every, conversations) = if cli.smoke {
        (Duration::from_secs(15), Duration::from_secs(3), 300)
    } else {
        (
            Duration::from_secs(cli.minutes.clamp(1, 120) * 60),
            Duration::from_secs(10),
            20_000,
        )
    };
    let scale = Scale {
        conversations,
        deep_page: 2,
        samples: 10,
        runs: 1,
    };
    let run = Run::new(Sizes::smoke(), scale, true, logs);
    let options = Options {
        server,
        postgres_url: cli.postgres_url.clone(),
        redis_url: cli.redis_url.clone(),
        out: out.clone(),
        templates: PathBuf::from("target/bench/templates"),
        conversations: Some(conversations),
        seed: 2026,
        fresh: false,
    };
    let lab = setup::start(&run, backend, &options).await?;
    run.say(&format!(
        "soak: {} instance(s) on {}, {} s of traffic, {} reconnecting sockets",
        lab.instances.len(),
        lab.version,
        length.as_secs(),
        cli.sockets
    ));

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let lab = Arc::new(lab);
    let agents: Vec<String> = lab
        .support_agents()
        .iter()
        .take(4)
        .map(|account| account.access_token.clone())
        .collect();
    if agents.is_empty() {
        return Err("the seeded Support inbox has no agent".into());
    }
    for (n, token) in agents.iter().enumerate() {
        tasks.push(tokio::spawn(replies(
            lab.clone(),
            token.clone(),
            n,
            counts.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(inbound(
        lab.clone(),
        counts.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(reads(
        lab.clone(),
        agents[0].clone(),
        counts.clone(),
        stop.clone(),
    )));
    for n in 0..cli.sockets {
        let token = agents[n % agents.len()].clone();
        tasks.push(tokio::spawn(socket(
            lab.clone(),
            token,
            n,
            counts.clone(),
            stop.clone(),
        )));
    }

    let began = Instant::now();
    let mut samples = Vec::new();
    while began.elapsed() < length {
        tokio::time::sleep(every.min(length.saturating_sub(began.elapsed()))).await;
        let mut sample = Sample {
            at_s: began.elapsed().as_secs_f64(),
            rss_kib: Vec::new(),
            open_files: Vec::new(),
            requests: counts.requests.load(Ordering::Relaxed),
            errors: counts.errors.load(Ordering::Relaxed),
            connects: counts.connects.load(Ordering::Relaxed),
        };
        for pid in &lab.target.pids {
            sample.rss_kib.push(sys::memory(*pid)?.rss_kib);
            sample.open_files.push(open_files(*pid)?);
        }
        run.say(&format!(
            "{:>6.0} s  rss {:?} KiB  fds {:?}  requests {}  errors {}  socket connects {}",
            sample.at_s,
            sample.rss_kib,
            sample.open_files,
            sample.requests,
            sample.errors,
            sample.connects
        ));
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    }

    let errors = counts.errors.load(Ordering::Relaxed);
    let mut ok = errors == 0;
    if let Some(first) = counts
        .first_error
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
    {
        run.say(&format!("soak: {errors} error(s), the first: {first}"));
    }
    // Flat: the second half's mean within 10 % (memory) and 10 % + 20 (descriptors: the
    // reconnecting sockets come and go) of the first half's, after the first sample.
    let mut verdicts = Vec::new();
    if !cli.smoke && samples.len() >= 5 {
        let settled = &samples[1..];
        let (first, second) = settled.split_at(settled.len() / 2);
        for instance in 0..lab.target.pids.len() {
            let mean = |part: &[Sample], read: &dyn Fn(&Sample) -> f64| {
                part.iter().map(read).sum::<f64>() / part.len() as f64
            };
            let rss = |sample: &Sample| sample.rss_kib[instance] as f64;
            let fds = |sample: &Sample| sample.open_files[instance] as f64;
            let (rss_a, rss_b) = (mean(first, &rss), mean(second, &rss));
            let (fds_a, fds_b) = (mean(first, &fds), mean(second, &fds));
            let rss_flat = rss_b <= rss_a * 1.10;
            let fds_flat = fds_b <= fds_a * 1.10 + 20.0;
            ok &= rss_flat && fds_flat;
            verdicts.push(json!({
                "instance": instance + 1,
                "rss_kib_first_half": rss_a.round(),
                "rss_kib_second_half": rss_b.round(),
                "rss_growth": rss_b / rss_a,
                "rss_flat": rss_flat,
                "open_files_first_half": fds_a.round(),
                "open_files_second_half": fds_b.round(),
                "open_files_flat": fds_flat,
            }));
            run.say(&format!(
                "instance {}: memory {:.0} → {:.0} KiB ({:+.1} %){}, descriptors {:.0} → {:.0}{}",
                instance + 1,
                rss_a,
                rss_b,
                (rss_b / rss_a - 1.0) * 100.0,
                if rss_flat { "" } else { " GROWING" },
                fds_a,
                fds_b,
                if fds_flat { "" } else { " GROWING" },
            ));
        }
    }
    let report = json!({
        "setup": cli.setup,
        "seconds": length.as_secs(),
        "sockets": cli.sockets,
        "requests": counts.requests.load(Ordering::Relaxed),
        "errors": errors,
        "socket_connects": counts.connects.load(Ordering::Relaxed),
        "frames": counts.frames.load(Ordering::Relaxed),
        "samples": samples,
        "verdicts": verdicts,
        "pass": ok,
    });
    let path = out.join("soak.json");
    std::fs::write(&path, format!("{report:#}\n"))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    run.say(&format!(
        "soak: {} requests, {errors} errors, {} socket connects, {} frames; {} ({})",
        report["requests"],
        report["socket_connects"],
        report["frames"],
        if ok { "pass" } else { "FAIL" },
        path.display()
    ));
    Ok(ok)
}

/// An agent replying in the conversations it sees, one every ~50 ms.
async fn replies(
    lab: Arc<Lab>,
    token: String,
    n: usize,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let base = lab.url(n).to_string();
    let listed = counts.record(
        lab.api
            .call(
                reqwest::Method::GET,
                &format!(
                    "{base}/v1/conversations?inbox_id={}&limit=25",
                    lab.support.id
                ),
                Some(&token),
                None,
            )
            .await,
    );
    let ids: Vec<i64> = listed
        .as_ref()
        .and_then(|page| page["items"].as_array())
        .map(|items| {
            items
                .iter()
                // Opted-out customers get no texts (a 422, rightly): reply to the others.
                .filter(|item| item["contact"]["opted_out"]["sms"] != true)
                .filter_map(|item| item["id"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) && !ids.is_empty() {
        let conversation = ids[(turn + n) % ids.len()];
        turn += 1;
        counts.record(
            lab.api
                .reply(&base, &token, conversation, "On it, one moment")
                .await,
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Customers writing in through the signed webhook, one every ~50 ms, from 500 numbers.
async fn inbound(lab: Arc<Lab>, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let from = format!("+1415557{:04}", n % 500);
        let base = lab.url(n as usize).to_string();
        counts.record(
            lab.api
                .inbound(&base, &lab.channel, &from, "Is anyone there?")
                .await,
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lists and counts an agent's app reloads, every ~100 ms.
async fn reads(lab: Arc<Lab>, token: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut n = 0usize;
    let paths = [
        "/v1/conversations?limit=25".to_string(),
        format!(
            "/v1/conversations?inbox_id={}&status=open&limit=25",
            lab.support.id
        ),
        "/v1/conversations/counts".to_string(),
        "/v1/me".to_string(),
    ];
    while !stop.load(Ordering::Relaxed) {
        let base = lab.url(n).to_string();
        let path = &paths[n % paths.len()];
        n += 1;
        counts.record(
            lab.api
                .call(
                    reqwest::Method::GET,
                    &format!("{base}{path}"),
                    Some(&token),
                    None,
                )
                .await,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that stays connected for a few seconds, goes away, and comes back (to either
/// instance) resuming from the last event it holds.
async fn socket(
    lab: Arc<Lab>,
    token: String,
    n: usize,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let mut last: Option<String> = None;
    let mut round = n;
    // Spread the first connects over a second.
    tokio::time::sleep(Duration::from_millis((n as u64 * 10) % 1000)).await;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let url = client::ws_url(lab.url(round), &token);
        let Some(mut socket) =
            counts.record(client::connect(&url, Some(client::source_for(n))).await)
        else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        counts.connects.fetch_add(1, Ordering::Relaxed);
        if let Some(after) = &last {
            let resume = json!({"type": "resume", "after": after}).to_string();
            if counts
                .record(
                    socket
                        .send(Message::text(resume))
                        .await
                        .map_err(|error| error.to_string()),
                )
                .is_none()
            {
                continue;
            }
        }
        let stay = Duration::from_millis(2_000 + (round as u64 * 997) % 6_000);
        let until = Instant::now() + stay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                break;
            }
            match tokio::time::timeout(left, socket.next()).await {
                Err(_) => break,
                Ok(Some(Ok(Message::Text(text)))) => {
                    counts.frames.fetch_add(1, Ordering::Relaxed);
                    if let Ok(frame) = serde_json::from_str::<Value>(&text)
                        && let Some(id) = frame["id"].as_str()
                    {
                        last = Some(id.to_string());
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    counts.record::<()>(Err(format!("the server closed a socket: {frame:?}")));
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(error))) => {
                    counts.record::<()>(Err(format!("socket: {error}")));
                    break;
                }
                Ok(None) => {
                    counts.record::<()>(Err("the server ended a socket".into()));
                    break;
                }
            }
        }
        let _ = socket.close(None).await;
    }
}
