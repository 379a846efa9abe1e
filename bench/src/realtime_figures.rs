//! The realtime figures: idle sockets' memory and CPU (figure 4), fan-out to one inbox's
//! sockets (figure 3), delivery across instances (figure 2) and a live event during a long
//! replay (figure 9); with B3, the bare broadcast server, and the client's own floor,
//! measured by the same code on the same kind of sockets.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use persistence::Store;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::baselines;
use crate::client::{self, Api};
use crate::fixtures;
use crate::fleet::Fleet;
use crate::harness::Run;
use crate::process::Child;
use crate::report::{Figure, Latency, median};
use crate::setup::Lab;
use crate::sys;

/// The customer whose messages trigger the fan-out.
const FANOUT_CUSTOMER: &str = "+16465550999";
/// Sockets must be open this long before a frame is timed: a new socket holds live events
/// for 750 ms, waiting for a `resume`.
const RESUME_GRACE: Duration = Duration::from_millis(1_000);

/// B2's figures, as the delivery target uses them.
#[derive(Debug, Clone, Copy)]
pub struct B2 {
    pub p50: f64,
    pub p99: f64,
}

/// B2: Redis PUBLISH → SUBSCRIBE.
pub async fn b2(run: &Run, backend: &str, redis_url: &str) -> Result<(B2, Vec<Figure>), String> {
    let phase = run.phase(format!("{backend} · B2 Redis publish → subscribe"));
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for _ in 0..run.scale.runs {
        let mut samples = baselines::b2_samples(redis_url, run.sizes.oneway_samples).await?;
        let latency = Latency::of(&mut samples);
        p50s.push(latency.p50);
        p99s.push(latency.p99);
    }
    let b2 = B2 {
        p50: median(&mut p50s),
        p99: median(&mut p99s),
    };
    phase.note(&format!("p50 {:.3} ms, p99 {:.3} ms", b2.p50, b2.p99));
    phase.finish();
    Ok((
        b2,
        vec![
            Figure::reference(format!("b2.{backend}.publish_subscribe.p50"), b2.p50, "ms"),
            Figure::reference(format!("b2.{backend}.publish_subscribe.p99"), b2.p99, "ms"),
        ],
    ))
}

/// How a batch of idle sockets went.
struct Idle {
    connected: usize,
    /// Still open at the end.
    kept: usize,
    refused: usize,
    first_refusal: Option<String>,
    rss_per_socket_kib: f64,
    cpu_percent: f64,
    connect_seconds: f64,
}

/// Opens `count` sockets to the process `pid` and reads its memory growth and its CPU while
/// they idle.
async fn idle_fleet(
    run: &Run,
    pid: u32,
    count: usize,
    url: impl Fn(usize) -> String,
) -> Result<Idle, String> {
    let before = sys::memory(pid)?;
    let mut fleet = Fleet::new();
    let opened = fleet.grow(count, run.sizes.connect_concurrency, url).await;
    tokio::time::sleep(run.sizes.settle).await;
    let cpu = sys::cpu_percent(pid, run.sizes.idle_window).await?;
    let after = sys::memory(pid)?;
    fleet.settle();
    let kept = fleet.open();
    fleet.close().await;
    Ok(Idle {
        connected: opened.connected,
        kept,
        refused: opened.refused,
        first_refusal: opened.first_refusal,
        rss_per_socket_kib: (after.rss_kib as f64 - before.rss_kib as f64)
            / opened.connected.max(1) as f64,
        cpu_percent: cpu,
        connect_seconds: opened.took.as_secs_f64(),
    })
}

/// B3's process.
pub struct B3 {
    pub child: Child,
}

impl B3 {
    pub async fn start(run: &Run) -> Result<B3, String> {
        Ok(B3 {
            child: baselines::start_b3(&run.logs).await?,
        })
    }

    fn ws(&self) -> String {
        format!("{}/ws", self.child.url.replacen("http://", "ws://", 1))
    }

    /// Sends a marked frame to every socket; returns when it was sent and answered.
    async fn trigger(&self, api: &Api, marker: u64) -> Result<Sent, String> {
        let body = baselines::b3_frame(marker, marker).into_bytes();
        let sent = Instant::now();
        api.post_bytes(&format!("{}/trigger", self.child.url), None, &[], body)
            .await?;
        Ok(Sent {
            sent,
            answered: Instant::now(),
        })
    }
}

/// Figure 4: idle sockets on the first instance, against B3's (a fresh B3 process, first).
pub async fn idle(run: &Run, lab: &Lab, b3: &B3) -> Result<Vec<Figure>, String> {
    let b = lab.backend().as_str();
    let count = run.sizes.idle_sockets;
    let phase = run.phase(format!("{b} · {count} idle sockets (B3, then the server)"));
    let ws = b3.ws();
    let base = idle_fleet(run, b3.child.pid, count, |_| ws.clone()).await?;
    phase.note(&format!(
        "B3: {} connected in {:.1} s, {:.1} KiB per socket, CPU {:.2} %",
        base.connected, base.connect_seconds, base.rss_per_socket_kib, base.cpu_percent
    ));
    let accounts = &lab.target.accounts;
    if accounts.is_empty() {
        return Err("no signed-in accounts".into());
    }
    let instance = lab.url(0).to_string();
    let server = idle_fleet(run, lab.target.pids[0], count, |n| {
        client::ws_url(&instance, &accounts[n % accounts.len()].access_token)
    })
    .await?;
    phase.note(&format!(
        "server: {} connected in {:.1} s ({} refused, {} still open), {:.1} KiB per socket, CPU {:.2} %",
        server.connected,
        server.connect_seconds,
        server.refused,
        server.kept,
        server.rss_per_socket_kib,
        server.cpu_percent
    ));
    if let Some(refusal) = &server.first_refusal {
        phase.note(&format!("first refusal: {refusal}"));
    }
    phase.finish();
    let name = format!("idle.{b}.sockets{count}");
    let mut figures = vec![
        Figure::reference(
            format!("b3.{b}.idle.sockets{count}.rss_per_socket"),
            base.rss_per_socket_kib,
            "KiB",
        ),
        Figure::reference(
            format!("b3.{b}.idle.sockets{count}.cpu"),
            base.cpu_percent,
            "%",
        ),
        Figure::at_most(
            format!("{name}.rss_per_socket"),
            server.rss_per_socket_kib,
            "KiB",
            ("B3 per socket", base.rss_per_socket_kib),
            1.5,
        ),
        Figure::absolute(
            format!("{name}.rss_per_socket.limit"),
            server.rss_per_socket_kib,
            "KiB",
            "≤ 16 KiB",
            server.rss_per_socket_kib <= 16.0,
        ),
        Figure::absolute(
            format!("{name}.cpu"),
            server.cpu_percent,
            "%",
            "< 5 % of a core",
            server.cpu_percent < 5.0,
        ),
    ];
    let connected = Figure::absolute(
        format!("{name}.connected"),
        server.kept as f64,
        "count",
        &format!(
            "= {count} (none refused or dropped, {} at a time)",
            run.sizes.connect_concurrency
        ),
        server.kept == count,
    );
    if server.kept != count {
        run.problem(format!(
            "{name}: {} of {count} sockets stayed open ({} refused); {}",
            server.kept,
            server.refused,
            server.first_refusal.as_deref().unwrap_or("none refused")
        ));
    }
    if base.kept != count {
        run.problem(format!(
            "B3: {} of {count} idle sockets stayed open; {}",
            base.kept,
            base.first_refusal.as_deref().unwrap_or("none refused")
        ));
    }
    figures.push(connected);
    Ok(figures)
}

/// When a trigger's request went out, and when its answer came.
#[derive(Debug, Clone, Copy)]
struct Sent {
    sent: Instant,
    answered: Instant,
}

/// What rounds of one frame to every socket gave: medians over the rounds of the p95 over
/// all sockets, timed from the trigger's request and from its answer; frames missing.
struct Rounds {
    p95: f64,
    p95_after_answer: f64,
    missing: usize,
}

/// Rounds of one marked frame to every socket of `fleet`.
async fn rounds<F, Fut>(run: &Run, fleet: &mut Fleet, trigger: F) -> Result<Rounds, String>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Sent, String>>,
{
    let expected = fleet.opened;
    let limit = Duration::from_secs(10) + Duration::from_millis(2 * expected as u64);
    let (mut p95s, mut after_answer) = (Vec::new(), Vec::new());
    let mut missing = 0;
    for _ in 0..run.sizes.fanout_rounds {
        let marker = client::next_marker();
        let sent = trigger(marker).await?;
        let arrivals = fleet.arrivals(marker, expected, limit).await;
        missing += expected - arrivals.len();
        let since = |from: Instant| -> f64 {
            let mut times: Vec<Duration> = arrivals
                .iter()
                .map(|arrival| arrival.at.saturating_duration_since(from))
                .collect();
            Latency::of(&mut times).p95
        };
        p95s.push(since(sent.sent));
        after_answer.push(since(sent.answered));
        tokio::time::sleep(run.sizes.pause).await;
    }
    Ok(Rounds {
        p95: median(&mut p95s),
        p95_after_answer: median(&mut after_answer),
        missing,
    })
}

/// The client's floor: p99 of one frame from B3 to one socket (trigger → receipt).
pub async fn client_floor(run: &Run, lab: &Lab, b3: &B3) -> Result<f64, String> {
    let ws = b3.ws();
    let mut one = Fleet::new();
    let opened = one.grow(1, 1, |_| ws.clone()).await;
    if opened.connected != 1 {
        return Err(format!(
            "B3 refused a socket: {}",
            opened.first_refusal.unwrap_or_default()
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::new();
    let mut floor_missing = 0;
    for _ in 0..run.sizes.oneway_samples {
        let marker = client::next_marker();
        let sent = b3.trigger(&lab.api, marker).await?;
        match one
            .arrivals(marker, 1, Duration::from_secs(5))
            .await
            .first()
        {
            Some(arrival) => times.push(arrival.at.saturating_duration_since(sent.sent)),
            None => floor_missing += 1,
        }
    }
    one.close().await;
    let floor = Latency::of(&mut times).p99;
    if floor_missing > 0 {
        run.problem(format!(
            "B3 lost {floor_missing} frame(s) to its one socket"
        ));
    }
    Ok(floor)
}

/// Figure 3 (fan-out to 1,000, 5,000 and 10,000 sockets of one inbox) against B3 at the
/// same counts, and the client's floor (one frame from B3 to one socket). Returns the
/// figures and the floor's p99.
pub async fn fanout(run: &Run, lab: &Lab, b3: &B3) -> Result<(Vec<Figure>, f64), String> {
    let b = lab.backend().as_str();
    let mut figures = Vec::new();
    let phase = run.phase(format!("{b} · client floor and B3 fan-out"));
    let floor = client_floor(run, lab, b3).await?;
    let ws = b3.ws();
    figures.push(Figure::reference(
        format!("floor.{b}.client_frame.p99"),
        floor,
        "ms",
    ));

    let mut base = Vec::new();
    let mut fleet = Fleet::new();
    for &count in &run.sizes.fanout {
        phase.set_message(format!("{count} sockets"));
        fleet
            .grow(
                count.saturating_sub(fleet.opened),
                run.sizes.connect_concurrency,
                |_| ws.clone(),
            )
            .await;
        // B3 holds nothing back: a settle is enough.
        tokio::time::sleep(run.sizes.settle).await;
        let measured = rounds(run, &mut fleet, |marker| b3.trigger(&lab.api, marker)).await?;
        figures.push(Figure::reference(
            format!("b3.{b}.fanout.sockets{count}.p95"),
            measured.p95,
            "ms",
        ));
        if measured.missing > 0 {
            run.problem(format!(
                "B3 at {count} sockets: {} frame(s) missing",
                measured.missing
            ));
        }
        base.push(measured.p95);
    }
    fleet.close().await;
    phase.note(&format!(
        "floor p99 {floor:.2} ms; B3 p95 {}",
        run.sizes
            .fanout
            .iter()
            .zip(&base)
            .map(|(count, p95)| format!("{count}: {p95:.1} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    phase.finish();

    let phase = run.phase(format!("{b} · fan-out to one inbox's sockets"));
    let agents = lab.support_agents();
    if agents.is_empty() {
        return Err("the Support inbox has no signed-in agents".into());
    }
    let mut fleet = Fleet::new();
    let trigger = |marker: u64| async move {
        let body = format!("Is anyone there? {}", client::marker_text(marker));
        let sent = Instant::now();
        lab.api
            .inbound(lab.url(0), &lab.channel, FANOUT_CUSTOMER, &body)
            .await?;
        Ok::<Sent, String>(Sent {
            sent,
            answered: Instant::now(),
        })
    };
    // The customer's conversation exists before the clock runs.
    trigger(client::next_marker()).await?;
    for (&count, &b3_p95) in run.sizes.fanout.iter().zip(&base) {
        phase.set_message(format!("{count} sockets"));
        let opened = fleet
            .grow(
                count.saturating_sub(fleet.opened),
                run.sizes.connect_concurrency,
                |n| client::ws_url(lab.url(n), &agents[n % agents.len()].access_token),
            )
            .await;
        if let Some(refusal) = opened.first_refusal {
            phase.note(&format!("{} refused, the first: {refusal}", opened.refused));
        }
        tokio::time::sleep(RESUME_GRACE.max(run.sizes.settle)).await;
        let measured = rounds(run, &mut fleet, &trigger).await?;
        phase.note(&format!(
            "{count} sockets: p95 {:.1} ms ({:.1} ms after the webhook's answer), {} missing",
            measured.p95, measured.p95_after_answer, measured.missing
        ));
        figures.push(Figure::at_most(
            format!("fanout.{b}.sockets{count}.p95"),
            measured.p95,
            "ms",
            ("B3 p95", b3_p95),
            1.5,
        ));
        // The same frames timed from the webhook's 200: the fan-out without the ingestion.
        figures.push(Figure::compared(
            format!("fanout.{b}.sockets{count}.p95_after_answer"),
            measured.p95_after_answer,
            "ms",
            ("B3 p95", b3_p95),
        ));
        figures.push(run.must_be_zero(
            &format!("fanout.{b}.sockets{count}.missing"),
            measured.missing,
            "frame(s) missing",
        ));
    }
    fleet.close().await;
    phase.finish();
    Ok((figures, floor))
}

/// Figure 2: an agent's reply on the first instance → a colleague's frame on the second
/// (the same instance on SQLite), timed from the sender's 201.
pub async fn delivery(
    run: &Run,
    lab: &Lab,
    b2: Option<B2>,
    floor: f64,
) -> Result<Vec<Figure>, String> {
    let b = lab.backend().as_str();
    let phase = run.phase(format!("{b} · delivery to another instance"));
    let agents = lab.support_agents();
    let (Some(sender), Some(receiver)) = (agents.first(), agents.get(1)) else {
        return Err("the Support inbox needs two signed-in agents".into());
    };
    let conversation = lab
        .api
        .post(
            &format!("{}/v1/conversations", lab.url(0)),
            Some(&sender.access_token),
            json!({"channel_id": lab.channel.id, "to": "+12125550142", "body": "Hello from Bench Co."}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the conversation's id")?;
    let mut fleet = Fleet::new();
    let receiving = lab.other_url().to_string();
    let opened = fleet
        .grow(1, 1, |_| client::ws_url(&receiving, &receiver.access_token))
        .await;
    if opened.connected != 1 {
        return Err(format!(
            "the receiver's socket did not open: {}",
            opened.first_refusal.unwrap_or_default()
        ));
    }
    tokio::time::sleep(RESUME_GRACE).await;
    let (mut p50s, mut p99s, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    let mut missing = 0;
    for _ in 0..run.scale.runs {
        let (mut delays, mut whole) = (Vec::new(), Vec::new());
        for _ in 0..run.sizes.oneway_samples {
            let marker = client::next_marker();
            let body = format!(
                "{} {}",
                crate::http_figures::REPLY,
                client::marker_text(marker)
            );
            let sent = Instant::now();
            lab.api
                .reply(lab.url(0), &sender.access_token, conversation, &body)
                .await?;
            let answered = Instant::now();
            match fleet
                .arrivals(marker, 1, Duration::from_secs(10))
                .await
                .first()
            {
                Some(arrival) => {
                    delays.push(arrival.at.saturating_duration_since(answered));
                    whole.push(arrival.at.saturating_duration_since(sent));
                }
                None => missing += 1,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let latency = Latency::of(&mut delays);
        p50s.push(latency.p50);
        p99s.push(latency.p99);
        ends.push(Latency::of(&mut whole).p99);
    }
    fleet.close().await;
    let (p50, p99, end) = (median(&mut p50s), median(&mut p99s), median(&mut ends));
    phase.note(&format!(
        "201 → frame p50 {p50:.2} ms, p99 {p99:.2} ms; request → frame p99 {end:.2} ms"
    ));
    phase.finish();
    let mut figures = Vec::new();
    match b2 {
        Some(b2) => {
            figures.push(Figure::compared(
                format!("delivery.{b}.p50"),
                p50,
                "ms",
                ("B2 p50", b2.p50),
            ));
            figures.push(
                Figure::at_most(
                    format!("delivery.{b}.p99"),
                    p99,
                    "ms",
                    ("3 × B2 p99 + client floor", 3.0 * b2.p99 + floor),
                    1.0,
                )
                .with_target("≤ 3 × B2 p99 + client floor p99"),
            );
        }
        None => {
            figures.push(Figure::reference(format!("delivery.{b}.p50"), p50, "ms"));
            figures.push(Figure::reference(format!("delivery.{b}.p99"), p99, "ms"));
        }
    }
    figures.push(Figure::reference(
        format!("delivery.{b}.request_to_frame.p99"),
        end,
        "ms",
    ));
    figures.push(run.must_be_zero(
        &format!("delivery.{b}.missing"),
        missing,
        "frame(s) missing",
    ));
    Ok(figures)
}

/// The id of a logged event's frame (`{"id":"N",…`); none for presence and typing.
fn frame_id(frame: &str) -> Option<i64> {
    let rest = frame.strip_prefix("{\"id\":\"")?;
    let end = rest.find('"')?;
    rest[..end].parse().ok()
}

/// A replay of every event up to `last` on a new admin socket: frames received with an id
/// up to `last`, and how long it took.
async fn replay_once(url: String, last: i64) -> Result<(usize, Duration), String> {
    let mut socket = client::connect(&url, None).await?;
    let started = Instant::now();
    socket
        .send(Message::text(
            json!({"type": "resume", "after": "0"}).to_string(),
        ))
        .await
        .map_err(|error| format!("sending resume: {error}"))?;
    let mut received = 0usize;
    let limit = Duration::from_secs(120);
    while let Some(left) = limit.checked_sub(started.elapsed()) {
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Some(id) = frame_id(text.as_str())
                    && id <= last
                {
                    received += 1;
                    if id == last {
                        break;
                    }
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!("the replaying socket was closed: {frame:?}"));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => return Err(format!("the replaying socket: {error}")),
            Ok(None) | Err(_) => break,
        }
    }
    let took = started.elapsed();
    let _ = tokio::time::timeout(Duration::from_secs(3), socket.close(None)).await;
    Ok((received, took))
}

/// Figure 9: a live event's delay to an agent while an admin of the same organization (on
/// the same instance) replays its whole history of `history` events, against the same delay
/// with no replay.
pub async fn replay(run: &Run, lab: &Lab) -> Result<Vec<Figure>, String> {
    let b = lab.backend().as_str();
    let history = run.sizes.history;
    let phase = run.phase(format!("{b} · replay fixtures ({history} events)"));
    let store = Store::open(&lab.target.database_url, 2).map_err(|error| error.to_string())?;
    let org = fixtures::org(lab, &store, "bench-replay", "Bench Replay", 7_100_000).await?;
    let watcher = fixtures::agent(
        lab,
        &org.admin,
        org.inbox,
        org.channel.id,
        "watcher@bench-replay.example",
        5_570_000,
    )
    .await?;
    let last_seq = |store: Store, org: i64| async move {
        tokio::task::spawn_blocking(move || {
            store
                .read(|conn| persistence::repo::events::last_seq(conn, domain::OrgId(org)))
                .map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| error.to_string())?
    };
    const CUSTOMERS: usize = 50;
    let mut written = 0usize;
    loop {
        let last = last_seq(store.clone(), org.id).await?;
        phase.set_message(format!("{last} events"));
        if last >= history as i64 {
            break;
        }
        // Each message to an existing conversation logs two events.
        let wanted = ((history as i64 - last) as usize).div_ceil(2);
        // First one message per customer (each makes their conversation; distinct
        // customers never race), then the rest, any number at once.
        let wanted = if written == 0 {
            wanted.min(CUSTOMERS)
        } else {
            wanted
        };
        let results: Vec<Result<(i64, i64), String>> = futures_util::stream::iter(0..wanted)
            .map(|n| {
                let number = written + n;
                let from = format!("+1718{:07}", 5_550_000 + number % CUSTOMERS);
                let channel = org.channel.clone();
                async move {
                    lab.api
                        .inbound(
                            lab.url(number),
                            &channel,
                            &from,
                            "Hello, a question about my bill.",
                        )
                        .await
                }
            })
            .buffer_unordered(run.sizes.clients)
            .collect()
            .await;
        for result in results {
            result?;
        }
        written += wanted;
    }
    let last = last_seq(store.clone(), org.id).await?;
    phase.finish();

    let phase = run.phase(format!("{b} · live delay during a {last}-event replay"));
    let mut fleet = Fleet::new();
    let instance = lab.url(0).to_string();
    let opened = fleet
        .grow(1, 1, |_| client::ws_url(&instance, &watcher.token))
        .await;
    if opened.connected != 1 {
        return Err(format!(
            "the watcher's socket did not open: {}",
            opened.first_refusal.unwrap_or_default()
        ));
    }
    tokio::time::sleep(RESUME_GRACE).await;
    let mut missing_live = 0;
    let probe = async |fleet: &mut Fleet| -> Result<Option<Duration>, String> {
        let marker = client::next_marker();
        let body = format!("Are you still there? {}", client::marker_text(marker));
        let sent = Instant::now();
        lab.api
            .inbound(&instance, &org.channel, "+19175550100", &body)
            .await?;
        Ok(fleet
            .arrivals(marker, 1, Duration::from_secs(10))
            .await
            .first()
            .map(|arrival| arrival.at.saturating_duration_since(sent)))
    };
    let probes = run.sizes.replay_probes.max(1);
    let mut idle = Vec::new();
    for _ in 0..run.scale.runs * probes {
        match probe(&mut fleet).await? {
            Some(delay) => idle.push(delay),
            None => missing_live += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut during = Vec::new();
    let (mut durations, mut replay_missing) = (Vec::new(), 0usize);
    for _ in 0..run.scale.runs {
        let replaying = tokio::spawn(replay_once(client::ws_url(&instance, &org.admin), last));
        let mut taken = 0;
        // Probes while the replay runs (the first one always).
        while taken == 0 || (taken < probes && !replaying.is_finished()) {
            match probe(&mut fleet).await? {
                Some(delay) => during.push(delay),
                None => missing_live += 1,
            }
            taken += 1;
        }
        let (received, took) = replaying
            .await
            .map_err(|error| format!("the replay task: {error}"))??;
        replay_missing += (last as usize).saturating_sub(received);
        durations.push(took.as_secs_f64() * 1000.0);
        tokio::time::sleep(run.sizes.pause).await;
    }
    fleet.close().await;
    let idle = Latency::of(&mut idle);
    let busy = Latency::of(&mut during);
    let duration = median(&mut durations);
    phase.note(&format!(
        "idle p50 {:.1} ms; during replay p50 {:.1} ms ({} probes); replay took {duration:.0} ms",
        idle.p50, busy.p50, busy.count
    ));
    phase.finish();
    let name = format!("replay.{b}.events{history}");
    Ok(vec![
        Figure::reference(format!("replay.{b}.idle_delay.p50"), idle.p50, "ms"),
        Figure::at_most(
            format!("{name}.live_delay.p50"),
            busy.p50,
            "ms",
            ("idle delay p50", idle.p50),
            1.5,
        ),
        Figure::compared(
            format!("{name}.live_delay.p95"),
            busy.p95,
            "ms",
            ("idle delay p95", idle.p95),
        ),
        Figure::reference(format!("{name}.duration"), duration, "ms"),
        run.must_be_zero(
            &format!("{name}.missing"),
            replay_missing,
            "replayed event(s) missing",
        ),
        run.must_be_zero(
            &format!("{name}.live_missing"),
            missing_live,
            "live frame(s) missing",
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ids_are_read_from_logged_events_only() {
        assert_eq!(
            frame_id(r#"{"id":"42","type":"message.created"}"#),
            Some(42)
        );
        assert_eq!(frame_id(r#"{"type":"presence.updated"}"#), None);
    }
}
