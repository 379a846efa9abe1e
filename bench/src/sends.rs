//! Sends per second in one organization: `agents` agents each reply in their own
//! conversation as fast as the server answers, all at once, for a fixed time. Prints
//! sends/s and latency percentiles. Run against a server started separately (release
//! build), e.g.:
//!
//!   cargo run --release -p switchboard-bench --bin sends -- http://127.0.0.1:18080 admin@example.com PASSWORD 16 10
//!
//! Only talks to the address it is given; bounded in time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn login(&self, email: &str, password: &str) -> (String, i64) {
        let body = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        (
            body["access_token"].as_str().expect("token").to_string(),
            body["user"]["id"].as_i64().expect("user id"),
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:18080".into());
    let email = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "admin@example.com".into());
    let password = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "correct horse battery".into());
    let agents: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(16);
    let seconds: u64 = args
        .get(5)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .min(120);
    // A load tool for this machine's own server only.
    let local = ["http://127.", "http://localhost:", "http://[::1]:"];
    if !local.iter().any(|prefix| base.starts_with(prefix)) {
        eprintln!("sends only talks to a server on this machine (127.0.0.0/8, localhost, [::1])");
        std::process::exit(2);
    }
    let client = std::sync::Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(agents * 2)
            .build()
            .expect("client"),
        base,
    });

    let (admin, _) = client.login(&email, &password).await;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos() % 1_000_000);
    let inbox = client
        .call(
            reqwest::Method::POST,
            "/v1/inboxes",
            Some(&admin),
            json!({"name": format!("Bench {run}"), "agent_visibility": "all"}),
        )
        .await["id"]
        .as_i64()
        .expect("inbox id");
    let channel = client
        .call(
            reqwest::Method::POST,
            &format!("/v1/inboxes/{inbox}/channels"),
            Some(&admin),
            json!({"type": "sms", "address": format!("+1415555{:04}", run % 10_000), "name": "Bench"}),
        )
        .await["id"]
        .as_i64()
        .expect("channel id");
    let mut people = Vec::new();
    for n in 0..agents {
        let agent_email = format!("bench{run}-{n}@example.com");
        let user = client
            .call(
                reqwest::Method::POST,
                "/v1/users",
                Some(&admin),
                json!({"email": agent_email, "name": format!("Agent {n}"), "role": "agent", "password": "bench password 123"}),
            )
            .await["id"]
            .as_i64()
            .expect("user id");
        client
            .call(
                reqwest::Method::PUT,
                &format!("/v1/inboxes/{inbox}/members/{user}"),
                Some(&admin),
                Value::Null,
            )
            .await;
        let (token, _) = client.login(&agent_email, "bench password 123").await;
        let conversation = client
            .call(
                reqwest::Method::POST,
                "/v1/conversations",
                Some(&token),
                json!({"channel_id": channel, "to": format!("+1415556{:04}", (run as usize * 97 + n) % 10_000), "body": "Hello"}),
            )
            .await["id"]
            .as_i64()
            .expect("conversation id");
        people.push((token, conversation));
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (token, conversation) in people {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let path = format!("/v1/conversations/{conversation}/messages");
            while Instant::now() < deadline {
                let at = Instant::now();
                client
                    .call(
                        reqwest::Method::POST,
                        &path,
                        Some(&token),
                        json!({"body": "Thanks, on it"}),
                    )
                    .await;
                latencies.push(at.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("agent task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "agents={agents} seconds={elapsed:.1} sends={} sends_per_s={:.0} p50_ms={:.1} p99_ms={:.1}",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
    );
}
