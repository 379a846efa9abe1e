//! What figures need beyond the seeded organization, made through the API like a customer
//! would: more organizations (their first admin through the library, as `switchboard
//! create-admin` does, since organizations have no endpoint), agents who sign in for real,
//! inboxes, channels and conversations.

use futures_util::StreamExt;
use persistence::Store;
use serde_json::json;

use crate::client::Channel;
use crate::setup::Lab;

/// The fixtures' password (every bench user has it; they live only in the run's copy).
pub const PASSWORD: &str = "bench password that is long enough";

/// An agent with a conversation of their own to reply in.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: i64,
    pub token: String,
    pub conversation: i64,
}

/// An organization made for a figure: its admin, one inbox and one SMS channel in it.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: i64,
    pub admin: String,
    pub inbox: i64,
    pub channel: Channel,
}

/// Creates organization `name` and its first admin (e-mail `admin@{slug}.example`) in the
/// setup's database, as `switchboard create-admin` does. On SQLite the server (another
/// process) may hold the write lock when this transaction's read turns into a write, which
/// SQLite refuses at once rather than waiting: that is retried.
pub async fn create_admin(store: &Store, slug: &str, name: &str) -> Result<(), String> {
    let (store, name) = (store.clone(), name.to_string());
    let email = format!("admin@{slug}.example");
    tokio::task::spawn_blocking(move || {
        let mut attempts = 0;
        loop {
            match api::bootstrap::create_admin(&store, &name, &email, PASSWORD, "Bench Admin") {
                Ok(_) => return Ok(()),
                Err(error) if error.to_string().contains("locked") && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(error) => return Err(format!("creating organization {name}: {error}")),
            }
        }
    })
    .await
    .map_err(|error| error.to_string())?
}

/// Creates organization `name` with an admin (e-mail `admin@{slug}.example`), signs the
/// admin in and gives it an inbox and a channel on number `+1415{number}`.
pub async fn org(
    lab: &Lab,
    store: &Store,
    slug: &str,
    name: &str,
    number: u32,
) -> Result<Org, String> {
    create_admin(store, slug, name).await?;
    signed_in_org(lab, slug, number).await
}

/// The rest of [`org`], once the organization and its admin exist.
async fn signed_in_org(lab: &Lab, slug: &str, number: u32) -> Result<Org, String> {
    let email = format!("admin@{slug}.example");
    let base = lab.url(0);
    let (admin, _) = lab.api.login(base, &email, PASSWORD).await?;
    let inbox = lab
        .api
        .post(
            &format!("{base}/v1/inboxes"),
            Some(&admin),
            json!({"name": "Support"}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the inbox's id")?;
    let channel = inbox_channel(lab, &admin, inbox, &format!("+1415{number:07}")).await?;
    let org = lab
        .api
        .call(
            reqwest::Method::GET,
            &format!("{base}/v1/me"),
            Some(&admin),
            None,
        )
        .await?;
    Ok(Org {
        id: org["org_id"].as_i64().ok_or("GET /v1/me: no org_id")?,
        admin,
        inbox,
        channel,
    })
}

/// A new SMS channel on `address` in `inbox`.
pub async fn inbox_channel(
    lab: &Lab,
    admin: &str,
    inbox: i64,
    address: &str,
) -> Result<Channel, String> {
    let base = lab.url(0);
    let created = lab
        .api
        .post(
            &format!("{base}/v1/inboxes/{inbox}/channels"),
            Some(admin),
            json!({"type": "sms", "address": address, "name": "Bench line"}),
        )
        .await?;
    Ok(Channel {
        id: created["id"].as_i64().ok_or("the channel's id")?,
        secret: created["inbound_secret"]
            .as_str()
            .ok_or("the channel's inbound_secret")?
            .to_string(),
    })
}

/// A new agent of the admin's organization, member of `inbox`, signed in, with a
/// conversation they started on `channel` to customer `+1212{customer}`.
pub async fn agent(
    lab: &Lab,
    admin: &str,
    inbox: i64,
    channel: i64,
    email: &str,
    customer: u32,
) -> Result<Agent, String> {
    let base = lab.url(0);
    let id = lab
        .api
        .post(
            &format!("{base}/v1/users"),
            Some(admin),
            json!({"email": email, "name": "Bench Agent", "role": "agent", "password": PASSWORD}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the user's id")?;
    lab.api
        .call(
            reqwest::Method::PUT,
            &format!("{base}/v1/inboxes/{inbox}/members/{id}"),
            Some(admin),
            None,
        )
        .await?;
    let (token, _) = lab.api.login(base, email, PASSWORD).await?;
    let conversation = lab
        .api
        .post(
            &format!("{base}/v1/conversations"),
            Some(&token),
            json!({"channel_id": channel, "to": format!("+1212{customer:07}"), "body": "Hello, this is Bench Co."}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the conversation's id")?;
    Ok(Agent {
        id,
        token,
        conversation,
    })
}

/// `count` organizations with one agent each (and that agent's conversation).
pub async fn orgs_with_an_agent(lab: &Lab, count: usize) -> Result<Vec<Agent>, String> {
    let store = Store::open(&lab.target.database_url, 2).map_err(|error| error.to_string())?;
    // The organizations first, one at a time, while the server is idle.
    for n in 0..count {
        create_admin(&store, &format!("bench-org-{n}"), &format!("Bench Org {n}")).await?;
    }
    drop(store);
    let made: Vec<Result<Agent, String>> = futures_util::stream::iter(0..count)
        .map(|n| async move {
            let slug = format!("bench-org-{n}");
            let org = signed_in_org(lab, &slug, 7_000_000 + n as u32).await?;
            agent(
                lab,
                &org.admin,
                org.inbox,
                org.channel.id,
                &format!("agent@{slug}.example"),
                5_550_000 + n as u32,
            )
            .await
        })
        .buffered(4)
        .collect()
        .await;
    made.into_iter().collect()
}

/// `count` new agents of the seeded organization in an inbox of their own, each with a
/// conversation.
pub async fn agents_in_seeded_org(lab: &Lab, count: usize) -> Result<Vec<Agent>, String> {
    let base = lab.url(0);
    let inbox = lab
        .api
        .post(
            &format!("{base}/v1/inboxes"),
            Some(&lab.admin),
            json!({"name": "Bench sends"}),
        )
        .await?["id"]
        .as_i64()
        .ok_or("the inbox's id")?;
    let channel = inbox_channel(lab, &lab.admin, inbox, "+14155559002").await?;
    let made: Vec<Result<Agent, String>> = futures_util::stream::iter(0..count)
        .map(|n| {
            let channel = channel.id;
            async move {
                agent(
                    lab,
                    &lab.admin,
                    inbox,
                    channel,
                    &format!("bench.agent{n}@bench-co.example"),
                    5_560_000 + n as u32,
                )
                .await
            }
        })
        .buffered(4)
        .collect()
        .await;
    made.into_iter().collect()
}
