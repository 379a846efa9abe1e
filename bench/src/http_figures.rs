//! The HTTP figures: sends (figure 1: across organizations and inside one, latency, SQL
//! statements per send) and inbound ingestion (figure 8), with B1, the bare handler they
//! are multiples of, measured by the same code.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::baselines;
use crate::client::{self, Api};
use crate::fixtures::{self, Agent};
use crate::harness::Run;
use crate::load::{self, Errors};
use crate::report::{Figure, median};
use crate::setup::Lab;

/// A reply of an ordinary length (B1 parses the same body).
pub const REPLY: &str = "Thanks for waiting! I checked your order: it left our warehouse this morning and you will get the tracking number by text within the hour.";
const CUSTOMER: &str =
    "Hi, I ordered a blue jacket last week and it has not arrived yet. Can you check where it is?";
/// Requests a fixed-rate series may have waiting at once (past it they queue in the client,
/// and that wait counts in their latency).
const MAX_IN_FLIGHT: usize = 256;
/// Customers per inbound client (each client writes for its own, so no two requests of one
/// new customer race).
const CUSTOMERS_PER_CLIENT: usize = 8;

/// B1's figures, as the targets use them.
#[derive(Debug, Clone, Copy)]
pub struct B1 {
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
}

impl B1 {
    /// The fixed rate of every latency series: about half of B1's maximum.
    pub fn rate(&self) -> f64 {
        (self.throughput / 2.0).max(1.0)
    }
}

/// The median over the run's runs of `clients` closed-loop clients' throughput.
async fn throughput<F, Fut>(run: &Run, clients: usize, work: F) -> (f64, Errors)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let mut values = Vec::new();
    let mut errors = Errors::default();
    for _ in 0..run.scale.runs {
        let warm = load::closed_loop(clients, run.sizes.warmup, work.clone()).await;
        errors.merge(&warm.errors);
        let measured = load::closed_loop(clients, run.sizes.window, work.clone()).await;
        errors.merge(&measured.errors);
        values.push(measured.per_second());
    }
    (median(&mut values), errors)
}

/// p50 and p99 (medians over the runs) of `samples` requests at `rate`, spread over
/// `slots` clients (request n is slot `n % slots`'s).
async fn latency<F, Fut>(run: &Run, rate: f64, slots: usize, work: F) -> (f64, f64, Errors)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let slots = slots.max(1);
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    let mut errors = Errors::default();
    for _ in 0..run.scale.runs {
        let work = work.clone();
        let series = load::fixed_rate(rate, run.scale.samples, MAX_IN_FLIGHT, move |n| {
            work((n as usize) % slots, n / slots as u64)
        })
        .await;
        errors.merge(&series.errors);
        p50s.push(series.latency.p50);
        p99s.push(series.latency.p99);
    }
    (median(&mut p50s), median(&mut p99s), errors)
}

/// B1 on the setup's database: a table of its own, a child process, throughput at the
/// run's client count, then latency at half of it.
pub async fn b1(run: &Run, lab: &Lab) -> Result<(B1, Vec<Figure>), String> {
    let b = lab.backend().as_str();
    let phase = run.phase(format!("{b} · B1 bare handler"));
    let database = lab.target.database_url.clone();
    tokio::task::spawn_blocking(move || baselines::create_b1_table(&database))
        .await
        .map_err(|error| error.to_string())??;
    let child = baselines::start_b1(&lab.target.database_url, &run.logs).await?;
    let url = Arc::new(format!("{}/send", child.url));
    let body = Arc::new(serde_json::to_vec(&json!({"body": REPLY})).map_err(|e| e.to_string())?);
    let api = lab.api.clone();
    let work = move |_slot: usize, _n: u64| {
        let (api, url, body) = (api.clone(), url.clone(), body.clone());
        async move { api.post_bytes(&url, None, &[], body.to_vec()).await }
    };
    phase.set_message("throughput");
    let (max, mut errors) = throughput(run, run.sizes.clients, work.clone()).await;
    let rate = (max / 2.0).max(1.0);
    phase.set_message(format!("latency at {rate:.0}/s"));
    let (p50, p99, latency_errors) = latency(run, rate, 1, work).await;
    errors.merge(&latency_errors);
    drop(child);
    let database = lab.target.database_url.clone();
    tokio::task::spawn_blocking(move || baselines::drop_b1_table(&database))
        .await
        .map_err(|error| error.to_string())??;
    phase.note(&format!(
        "{max:.0} req/s; at {rate:.0}/s p50 {p50:.2} ms, p99 {p99:.2} ms"
    ));
    phase.finish();
    let clients = run.sizes.clients;
    Ok((
        B1 {
            throughput: max,
            p50,
            p99,
        },
        vec![
            Figure::reference(format!("b1.{b}.throughput.c{clients}"), max, "req/s"),
            Figure::reference(format!("b1.{b}.latency.p50"), p50, "ms"),
            Figure::reference(format!("b1.{b}.latency.p99"), p99, "ms"),
            run.errors_figure(&format!("b1.{b}"), &errors),
        ],
    ))
}

/// A reply by one of `agents` (slot `n`), each to the instance the slot is spread to.
fn replies(
    lab: &Lab,
    agents: &[Agent],
) -> Result<impl Fn(usize, u64) -> ReplyFuture + Clone + Send + Sync + 'static, String> {
    let targets: Arc<Vec<(String, String)>> = Arc::new(
        agents
            .iter()
            .enumerate()
            .map(|(n, agent)| {
                (
                    format!(
                        "{}/v1/conversations/{}/messages",
                        lab.url(n),
                        agent.conversation
                    ),
                    agent.token.clone(),
                )
            })
            .collect(),
    );
    if targets.is_empty() {
        return Err("no agents to send with".into());
    }
    let body = Arc::new(serde_json::to_vec(&json!({"body": REPLY})).map_err(|e| e.to_string())?);
    let api = lab.api.clone();
    Ok(move |slot: usize, _n: u64| -> ReplyFuture {
        let (url, token) = targets[slot % targets.len()].clone();
        let (api, body) = (api.clone(), body.clone());
        Box::pin(async move { api.post_bytes(&url, Some(&token), &[], body.to_vec()).await })
    })
}

type ReplyFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Figure 1: sends across organizations (one agent each), inside one organization, their
/// latency at half of B1's maximum, and SQL statements per send.
pub async fn sends(run: &Run, lab: &Lab, b1: &B1) -> Result<Vec<Figure>, String> {
    let b = lab.backend().as_str();
    let (orgs, agents) = (run.sizes.orgs, run.sizes.agents);
    let phase = run.phase(format!(
        "{b} · send fixtures ({orgs} organizations, {agents} agents)"
    ));
    let spread = fixtures::orgs_with_an_agent(lab, orgs).await?;
    let team = fixtures::agents_in_seeded_org(lab, agents).await?;
    phase.finish();

    let phase = run.phase(format!("{b} · send throughput and latency"));
    let mut errors = Errors::default();
    let mut figures = Vec::new();
    let b1_throughput = ("B1 throughput", b1.throughput);
    for (label, group, limit) in [
        (format!("orgs{orgs}"), &spread, 0.7),
        (format!("org1.agents{agents}"), &team, 0.3),
    ] {
        phase.set_message(format!("{label}: throughput"));
        let work = replies(lab, group)?;
        let (value, failed) = throughput(run, group.len(), work.clone()).await;
        errors.merge(&failed);
        figures.push(Figure::at_least(
            format!("send.{b}.throughput.{label}"),
            value,
            "req/s",
            b1_throughput,
            limit,
        ));
        phase.set_message(format!("{label}: latency at {:.0}/s", b1.rate()));
        let (p50, p99, failed) = latency(run, b1.rate(), group.len(), work).await;
        errors.merge(&failed);
        figures.push(Figure::compared(
            format!("send.{b}.latency.{label}.p50"),
            p50,
            "ms",
            ("B1 p50", b1.p50),
        ));
        figures.push(Figure::at_most(
            format!("send.{b}.latency.{label}.p99"),
            p99,
            "ms",
            ("B1 p99", b1.p99),
            2.0,
        ));
        phase.note(&format!(
            "{label}: {value:.0} req/s; p50 {p50:.1} ms, p99 {p99:.1} ms"
        ));
    }
    phase.finish();

    let phase = run.phase(format!("{b} · SQL statements per send"));
    let statements = statements_per_send(run, lab, &team[0]).await?;
    phase.note(&format!("{statements:.1} statements per send"));
    phase.finish();
    figures.push(Figure::reference(
        format!("send.{b}.sql_statements"),
        statements,
        "statements",
    ));
    figures.push(run.errors_figure(&format!("send.{b}"), &errors));
    Ok(figures)
}

const QUERIES: &str = "switchboard_db_queries_total";

async fn queries(api: &Api, urls: &[String]) -> Result<f64, String> {
    let mut total = 0.0;
    for url in urls {
        total += api.metric(url, QUERIES).await?;
    }
    Ok(total)
}

/// `switchboard_db_queries_total` over every instance across `sql_sends` sequential
/// replies, less what the instances run meanwhile on their own (measured just before over
/// a second), per reply. The delivery of each reply (a sandbox channel) is included.
async fn statements_per_send(run: &Run, lab: &Lab, agent: &Agent) -> Result<f64, String> {
    let urls = &lab.target.urls;
    let idle_from = queries(&lab.api, urls).await?;
    let idle_started = Instant::now();
    tokio::time::sleep(run.sizes.settle.max(Duration::from_millis(300))).await;
    let background =
        (queries(&lab.api, urls).await? - idle_from) / idle_started.elapsed().as_secs_f64();
    let before = queries(&lab.api, urls).await?;
    let started = Instant::now();
    let sends = run.sizes.sql_sends.max(1);
    for _ in 0..sends {
        lab.api
            .reply(lab.url(0), &agent.token, agent.conversation, REPLY)
            .await?;
    }
    // The deliveries of the last replies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = queries(&lab.api, urls).await?;
    let own = background * started.elapsed().as_secs_f64();
    Ok(((after - before - own) / sends as f64).max(0.0))
}

/// Figure 8: customers' messages through the signed channel webhook, committed and
/// published, at the run's client count; and their latency at half of B1's maximum.
pub async fn inbound(run: &Run, lab: &Lab, b1: &B1) -> Result<Vec<Figure>, String> {
    let b = lab.backend().as_str();
    let clients = run.sizes.clients;
    let phase = run.phase(format!("{b} · inbound ingestion"));
    let urls: Arc<Vec<String>> = Arc::new(
        (0..clients)
            .map(|n| format!("{}/v1/channels/{}/inbound", lab.url(n), lab.channel.id))
            .collect(),
    );
    let channel = Arc::new(lab.channel.clone());
    let api = lab.api.clone();
    let work = move |slot: usize, n: u64| {
        let (api, urls, channel) = (api.clone(), urls.clone(), channel.clone());
        async move {
            let customer = slot * CUSTOMERS_PER_CLIENT + (n as usize % CUSTOMERS_PER_CLIENT);
            let from = format!("+1646{:07}", 5_550_000 + customer);
            let (raw, signature) = client::inbound_request(&channel, &from, CUSTOMER)?;
            let url = &urls[slot % urls.len()];
            api.post_bytes(url, None, &[("X-Switchboard-Signature", &signature)], raw)
                .await
        }
    };
    // Every customer's first message (a new contact and conversation) before the clock runs.
    phase.set_message("first messages");
    let first: Vec<Result<(), String>> =
        futures_util::stream::iter(0..clients * CUSTOMERS_PER_CLIENT)
            .map(|customer| {
                let work = work.clone();
                async move {
                    work(
                        customer / CUSTOMERS_PER_CLIENT,
                        (customer % CUSTOMERS_PER_CLIENT) as u64,
                    )
                    .await
                }
            })
            .buffer_unordered(clients)
            .collect()
            .await;
    let mut errors = Errors::default();
    for result in first {
        if let Err(error) = result {
            errors.merge(&Errors {
                count: 1,
                first: Some(error),
            });
        }
    }
    phase.set_message("throughput");
    let (value, failed) = throughput(run, clients, work.clone()).await;
    errors.merge(&failed);
    phase.set_message(format!("latency at {:.0}/s", b1.rate()));
    let (p50, p99, failed) = latency(run, b1.rate(), clients, work).await;
    errors.merge(&failed);
    phase.note(&format!(
        "{value:.0} req/s; p50 {p50:.1} ms, p99 {p99:.1} ms"
    ));
    phase.finish();
    Ok(vec![
        Figure::at_least(
            format!("inbound.{b}.throughput.c{clients}"),
            value,
            "req/s",
            ("B1 throughput", b1.throughput),
            0.5,
        ),
        Figure::compared(
            format!("inbound.{b}.latency.p50"),
            p50,
            "ms",
            ("B1 p50", b1.p50),
        ),
        Figure::compared(
            format!("inbound.{b}.latency.p99"),
            p99,
            "ms",
            ("B1 p99", b1.p99),
        ),
        run.errors_figure(&format!("inbound.{b}"), &errors),
    ])
}
