//! Sends per second in one organization: `agents` agents each reply in their own
//! conversation as fast as the server answers, all at once, for a fixed time. Prints
//! sends/s and latency percentiles. Run against a server started separately (release
//! build), e.g.:
//!
//!   cargo run --release -p switchboard-bench --bin sends -- http://127.0.0.1:18080 admin@example.com PASSWORD 16 10
//!
//! Only talks to the address it is given; bounded in time. (`bench` measures the same, and
//! more, against servers it starts itself.)

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_bench::client::{self, Api};
use switchboard_bench::http_figures::REPLY;
use switchboard_bench::report::Latency;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("sends: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |n: usize, default: &str| args.get(n).cloned().unwrap_or_else(|| default.into());
    let base = arg(1, "http://127.0.0.1:18080");
    let email = arg(2, "admin@example.com");
    let password = arg(3, "correct horse battery");
    let agents: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(16);
    let seconds: u64 = args
        .get(5)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .min(120);
    client::check_local(&base)?;
    let api = Api::new()?;

    let (admin, _) = api.login(&base, &email, &password).await?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos() % 1_000_000);
    let inbox = api
        .post(
            &format!("{base}/v1/inboxes"),
            Some(&admin),
            json!({"name": format!("Bench {run}"), "agent_visibility": "all"}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the inbox's id")?;
    let channel = api
        .post(
            &format!("{base}/v1/inboxes/{inbox}/channels"),
            Some(&admin),
            json!({"type": "sms", "address": format!("+1415555{:04}", run % 10_000), "name": "Bench"}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the channel's id")?;
    let mut people = Vec::new();
    for n in 0..agents {
        let agent_email = format!("bench{run}-{n}@example.com");
        let user = api
            .post(
                &format!("{base}/v1/users"),
                Some(&admin),
                json!({"email": agent_email, "name": format!("Agent {n}"), "role": "agent", "password": "bench password 123"}),
            )
            .await?["id"]
            .as_i64()
            .ok_or("the user's id")?;
        api.call(
            reqwest::Method::PUT,
            &format!("{base}/v1/inboxes/{inbox}/members/{user}"),
            Some(&admin),
            None,
        )
        .await?;
        let (token, _) = api.login(&base, &agent_email, "bench password 123").await?;
        let conversation = api
            .post(
                &format!("{base}/v1/conversations"),
                Some(&token),
                json!({"channel_id": channel, "to": format!("+1415556{:04}", (run as usize * 97 + n) % 10_000), "body": "Hello"}),
            )
            .await?["id"]
            .as_i64()
            .ok_or("the conversation's id")?;
        people.push((token, conversation));
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (token, conversation) in people {
        let (api, base) = (api.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let at = Instant::now();
                api.reply(&base, &token, conversation, REPLY).await?;
                latencies.push(at.elapsed());
            }
            Ok::<Vec<Duration>, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|error| error.to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sends = all.len();
    let latency = Latency::of(&mut all);
    println!(
        "agents={agents} seconds={elapsed:.1} sends={sends} sends_per_s={:.0} p50_ms={:.1} p99_ms={:.1}",
        sends as f64 / elapsed,
        latency.p50,
        latency.p99,
    );
    Ok(())
}
