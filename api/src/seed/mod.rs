//! `switchboard seed-demo`: a new, believable organization to look at and to benchmark
//! against: people, teams, inboxes with every kind of channel and setting, customers, and
//! months of conversations in every state, with chats between colleagues. The SQL is the
//! persistence layer's (`repo::bulk`); this module decides what happened.

mod story;
mod words;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::{
    AgentVisibility, CannedResponseId, ChannelId, ChannelType, InboxId, InboxKind, InboxSettings,
    OrgId, Role, TagId, TeamId, UserId, validate,
};
use persistence::repo::bulk::{self, ChatRow};
use persistence::repo::{canned, channels, inboxes, orgs, tags, teams, users};
use persistence::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::{hash_password, random_token};

/// Conversations written per transaction: large enough for multi-row statements to pay,
/// small enough that a running server's writes wait for one batch at most.
const BATCH: u64 = 2_000;
pub const MAX_CONVERSATIONS: u64 = 5_000_000;
// Each conversation brings at most one new customer, and each customer a number of their own.
const _: () = assert!(MAX_CONVERSATIONS <= story::MAX_CUSTOMERS);

pub struct SeedOptions {
    /// The new organization's name.
    pub org: String,
    pub conversations: u64,
    /// Same seed, same organization (names, texts, who did what; times follow the clock).
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            org: "Demo Co".into(),
            conversations: 5_000,
            seed: 2026,
        }
    }
}

/// Conversations by state, as the list's tabs count them (spam is in none of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct States {
    pub open: u64,
    pub closed: u64,
    pub archived: u64,
    pub spam: u64,
}

impl States {
    fn add(&mut self, other: &States) {
        self.open += other.open;
        self.closed += other.closed;
        self.archived += other.archived;
        self.spam += other.spam;
    }

    pub fn total(&self) -> u64 {
        self.open + self.closed + self.archived + self.spam
    }
}

#[derive(Debug, Clone)]
pub struct DemoUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct DemoInbox {
    pub id: InboxId,
    pub name: String,
    pub kind: InboxKind,
    /// Who sees it: its members (a private inbox: its owner alone).
    pub members: Vec<UserId>,
    pub conversations: States,
}

/// Rows written, per table.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// The organization, users, teams, inboxes, members, channels, tags, canned responses.
    pub setup: u64,
    pub contacts: u64,
    pub contact_addresses: u64,
    pub favorites: u64,
    pub conversations: u64,
    pub messages: u64,
    pub inbound_receipts: u64,
    pub activity: u64,
    pub participants: u64,
    pub reads: u64,
    pub pins: u64,
    pub conversation_tags: u64,
    pub chats: u64,
    pub chat_members: u64,
    pub chat_messages: u64,
}

impl Rows {
    pub fn total(&self) -> u64 {
        self.setup
            + self.contacts
            + self.contact_addresses
            + self.favorites
            + self.conversations
            + self.messages
            + self.inbound_receipts
            + self.activity
            + self.participants
            + self.reads
            + self.pins
            + self.conversation_tags
            + self.chats
            + self.chat_members
            + self.chat_messages
    }
}

#[derive(Debug, Clone)]
pub struct SeedReport {
    pub org_id: OrgId,
    pub org_name: String,
    /// Every demo user's password, generated for this run and shown once.
    pub password: String,
    pub users: Vec<DemoUser>,
    pub inboxes: Vec<DemoInbox>,
    pub conversations: States,
    pub rows: Rows,
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn user(&self, role: Role) -> Option<&DemoUser> {
        self.users.iter().find(|user| user.role == role)
    }
}

/// How far the seeding is: conversations written of those asked for.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(
        "an organization named {0:?} exists already; seed-demo only creates new ones (choose another with --org)"
    )]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Person {
    name: &'static str,
    role: Role,
}

const ADMIN: Person = Person {
    name: "Alex Morgan",
    role: Role::Admin,
};
const MANAGERS: [&str; 2] = ["Priya Shah", "Marcus Lee"];
const AGENTS: [&str; 10] = [
    "Sofia Garcia",
    "Liam Chen",
    "Emma Wilson",
    "Noah Patel",
    "Olivia Brown",
    "Ethan Nguyen",
    "Ava Johnson",
    "Lucas Silva",
    "Mia Kim",
    "Daniel Okafor",
];
/// Teams by name, with their agents (indexes into `AGENTS`).
const TEAMS: [(&str, &[usize]); 3] = [
    ("Tier 1", &[0, 1, 2, 3, 4]),
    ("Tier 2", &[5, 6, 7]),
    ("Billing specialists", &[2, 3, 8]),
];
const TAGS: [(&str, &str); 8] = [
    ("billing", "#f59e0b"),
    ("bug", "#ef4444"),
    ("feature-request", "#8b5cf6"),
    ("order", "#3b82f6"),
    ("refund", "#10b981"),
    ("shipping", "#0ea5e9"),
    ("urgent", "#dc2626"),
    ("vip", "#eab308"),
];

struct InboxSpec {
    name: &'static str,
    settings: InboxSettings,
    managers: &'static [usize],
    agents: &'static [usize],
    /// A private inbox's owner (an index into `AGENTS`).
    owner: Option<usize>,
    canned: &'static [(&'static str, &'static str, &'static str)],
}

struct ChannelSpec {
    inbox: usize,
    channel_type: ChannelType,
    address: &'static str,
    name: &'static str,
    appended: Option<&'static str>,
    /// Share of customers who write to it.
    weight: u32,
    /// A number that was an agent's personal one until `days` ago: what they had on it is
    /// the inbox's archive.
    rehomed: Option<(i64, usize)>,
}

fn inbox_specs() -> Vec<InboxSpec> {
    const GREETING: (&str, &str, &str) = (
        "greeting",
        "Greeting",
        "Hi! Thanks for reaching out to Demo Co. How can I help you today?",
    );
    const CLOSING: (&str, &str, &str) =
        ("thanks", "Closing", "Glad I could help! Have a great day.");
    vec![
        InboxSpec {
            name: "Support",
            settings: InboxSettings::default(),
            managers: &[0, 1],
            agents: &[0, 1, 2, 3, 4, 5, 6],
            owner: None,
            canned: &[
                GREETING,
                (
                    "hours",
                    "Opening hours",
                    "We're here Monday to Friday, 8am to 6pm Pacific.",
                ),
                (
                    "returns",
                    "Return policy",
                    "You can return any item within 30 days for a full refund.",
                ),
                CLOSING,
            ],
        },
        InboxSpec {
            name: "Sales",
            settings: InboxSettings {
                agent_visibility: AgentVisibility::AssignedAndUnassigned,
                auto_assign: true,
                auto_assign_limit: Some(8),
                ..InboxSettings::default()
            },
            managers: &[0],
            agents: &[5, 6, 7, 8, 9],
            owner: None,
            canned: &[
                GREETING,
                (
                    "pricing",
                    "Pricing",
                    "Plans start at $29 per user per month. Full pricing: https://demo-co.example/pricing",
                ),
                (
                    "demo",
                    "Book a demo",
                    "Book a demo at a time that suits you: https://demo-co.example/demo",
                ),
                CLOSING,
            ],
        },
        InboxSpec {
            name: "Billing",
            settings: InboxSettings {
                assignment_mode: false,
                allow_move: false,
                ..InboxSettings::default()
            },
            managers: &[1],
            agents: &[2, 3, 8],
            owner: None,
            canned: &[
                GREETING,
                (
                    "invoice",
                    "Invoice copy",
                    "I've emailed a copy of your invoice to the address on your account.",
                ),
                (
                    "card",
                    "Update card",
                    "You can update your card any time under Settings > Billing.",
                ),
                CLOSING,
            ],
        },
        InboxSpec {
            name: "Sofia's phone",
            settings: InboxSettings {
                kind: InboxKind::Private,
                assignment_mode: false,
                ..InboxSettings::default()
            },
            managers: &[],
            agents: &[],
            owner: Some(0),
            canned: &[],
        },
    ]
}

const CHANNELS: [ChannelSpec; 7] = [
    ChannelSpec {
        inbox: 0,
        channel_type: ChannelType::Sms,
        address: "+14155550100",
        name: "Support line",
        appended: None,
        weight: 28,
        rehomed: None,
    },
    ChannelSpec {
        inbox: 0,
        channel_type: ChannelType::Webchat,
        address: "demo-co-website",
        name: "Website chat",
        appended: None,
        weight: 12,
        rehomed: None,
    },
    ChannelSpec {
        inbox: 0,
        channel_type: ChannelType::Facebook,
        address: "104857600123456",
        name: "Demo Co on Facebook",
        appended: None,
        weight: 8,
        rehomed: None,
    },
    ChannelSpec {
        inbox: 1,
        channel_type: ChannelType::Sms,
        address: "+14155550142",
        name: "Sales line",
        appended: Some("Reply STOP to opt out."),
        weight: 15,
        rehomed: Some((45, 9)),
    },
    ChannelSpec {
        inbox: 1,
        channel_type: ChannelType::Instagram,
        address: "17841400123456789",
        name: "@democo on Instagram",
        appended: None,
        weight: 7,
        rehomed: None,
    },
    ChannelSpec {
        inbox: 2,
        channel_type: ChannelType::Whatsapp,
        address: "+14155550177",
        name: "Billing on WhatsApp",
        appended: None,
        weight: 22,
        rehomed: None,
    },
    ChannelSpec {
        inbox: 3,
        channel_type: ChannelType::Sms,
        address: "+14155550199",
        name: "Sofia's mobile",
        appended: None,
        weight: 8,
        rehomed: None,
    },
];

/// The organization as the story needs it.
pub(crate) struct Cast {
    org: OrgId,
    names: HashMap<UserId, &'static str>,
    teams: Vec<(TeamId, Vec<UserId>)>,
    inboxes: Vec<InboxCast>,
    channels: Vec<ChannelCast>,
    tags: Vec<(TagId, &'static str)>,
}

struct InboxCast {
    id: InboxId,
    owner: Option<UserId>,
    assignment_mode: bool,
    auto_assign: bool,
    agents: Vec<UserId>,
    managers: Vec<UserId>,
    canned: Vec<(CannedResponseId, String)>,
}

struct ChannelCast {
    id: ChannelId,
    inbox: usize,
    channel_type: ChannelType,
    appended: Option<&'static str>,
    weight: u32,
    rehomed: Option<(DateTime<Utc>, UserId)>,
}

impl Cast {
    fn name(&self, user: UserId) -> &'static str {
        self.names.get(&user).copied().unwrap_or("Someone")
    }

    fn first_name(&self, user: UserId) -> &'static str {
        let name = self.name(user);
        name.split_once(' ').map_or(name, |(first, _)| first)
    }

    fn team_of(&self, user: UserId) -> Option<TeamId> {
        self.teams
            .iter()
            .find(|(_, members)| members.contains(&user))
            .map(|(team, _)| *team)
    }

    fn tag_index(&self, name: &str) -> usize {
        self.tags
            .iter()
            .position(|(_, tag)| *tag == name)
            .unwrap_or(0)
    }
}

/// `Demo Co` → `demo-co`: the demo users' e-mail domain is `demo-co.example`.
fn slug(org: &str) -> String {
    let mut slug = String::new();
    for c in org.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() { "demo".into() } else { slug }
}

fn email_of(name: &str, role: Role, domain: &str) -> String {
    match role {
        Role::Admin => format!("admin@{domain}"),
        _ => format!("{}@{domain}", name.to_lowercase().replace(' ', ".")),
    }
}

/// Fills the database with a new demo organization of `options.conversations`
/// conversations. Other organizations are not touched; an existing organization of that
/// name is refused before anything is written. Written in batches of a few thousand
/// conversations, one transaction each: a failure part way leaves the batches before it.
pub fn seed_demo(
    store: &Store,
    options: &SeedOptions,
    progress: &dyn Fn(Progress),
) -> Result<SeedReport, SeedError> {
    let started = Instant::now();
    let org_name = validate::text("org", &options.org, domain::validate::limits::NAME)
        .map_err(|error| SeedError::Invalid(format!("--org {}", error.message)))?;
    if options.conversations > MAX_CONVERSATIONS {
        return Err(SeedError::Invalid(format!(
            "--conversations is at most {MAX_CONVERSATIONS}"
        )));
    }
    if store
        .read(|conn| orgs::find_by_name(conn, &org_name))?
        .is_some()
    {
        return Err(SeedError::Exists(org_name));
    }
    // Contacts from before search terms existed get theirs now, while the database is still
    // small of them: the loader writes the terms of what it seeds, and the server's start-up
    // backfill would otherwise walk every seeded contact again in one transaction.
    store.write(persistence::repo::contacts::backfill_terms)?;
    let password = random_token(12);
    // One hash for everyone: argon2 is slow on purpose, and these are demo accounts.
    let password_hash =
        hash_password(&password).map_err(|error| SeedError::Invalid(error.to_string()))?;
    let now = persistence::now();
    let since = now - chrono::Duration::days(story::HISTORY_DAYS);
    let (cast, users, demo_inboxes, setup_rows) = store
        .write(|conn| setup(conn, &org_name, &password_hash, now, since))
        .map_err(|error| match error {
            StoreError::Conflict(ref name) if name.contains("organizations") => {
                SeedError::Exists(org_name.clone())
            }
            // Demo e-mails are unique per organization, and this one is new: nothing else
            // can conflict but a concurrent seeding, caught above.
            other => SeedError::Store(other),
        })?;

    let total = options.conversations;
    let mut rows = Rows {
        setup: setup_rows,
        ..Rows::default()
    };
    let mut by_inbox = vec![States::default(); cast.inboxes.len()];
    let mut generator = story::Generator::new(&cast, options.seed, total, now);
    progress(Progress { done: 0, total });
    let mut done = 0;
    while done < total {
        let end = (done + BATCH).min(total);
        let batch = store.write(|conn| {
            bulk::tune_for_loading(conn)?;
            let batch = generator.batch(conn, done..end)?;
            batch.write(conn)?;
            Ok(batch)
        })?;
        rows.contacts += batch.contacts.len() as u64;
        rows.contact_addresses += batch.addresses.len() as u64;
        rows.favorites += batch.favorites.len() as u64;
        rows.conversations += batch.conversations.len() as u64;
        rows.messages += batch.messages.len() as u64;
        rows.inbound_receipts += batch.receipts.len() as u64;
        rows.activity += batch.activity.len() as u64;
        rows.participants += batch.participants.len() as u64;
        rows.reads += batch.reads.len() as u64;
        rows.pins += batch.pins.len() as u64;
        rows.conversation_tags += batch.tags.len() as u64;
        for (sum, states) in by_inbox.iter_mut().zip(&batch.states) {
            sum.add(states);
        }
        done = end;
        progress(Progress { done, total });
    }
    // The loader's read states left a row per batch in the unread figures: fold them.
    store.write(persistence::repo::conversation_list::compact_read_up_counts)?;
    let (chats, members, lines) =
        store.write(|conn| chats(conn, &cast, options.seed, since, now))?;
    rows.chats = chats;
    rows.chat_members = members;
    rows.chat_messages = lines;

    let mut conversations = States::default();
    for states in &by_inbox {
        conversations.add(states);
    }
    let inboxes = demo_inboxes
        .into_iter()
        .zip(by_inbox)
        .map(|(inbox, states)| DemoInbox {
            conversations: states,
            ..inbox
        })
        .collect();
    Ok(SeedReport {
        org_id: cast.org,
        org_name,
        password,
        users,
        inboxes,
        conversations,
        rows,
        elapsed: started.elapsed(),
    })
}

type Setup = (Cast, Vec<DemoUser>, Vec<DemoInbox>, u64);

/// The organization and everything its conversations need, dated back to `since`.
fn setup(
    conn: &mut persistence::DbConnection,
    org_name: &str,
    password_hash: &str,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<Setup, StoreError> {
    let domain = format!("{}.example", slug(org_name));
    // The first statement writes: on SQLite it takes the write lock before anything is read.
    let org = orgs::insert(conn, org_name)?;
    let mut rows = 1u64;
    let people: Vec<Person> = std::iter::once(ADMIN)
        .chain(MANAGERS.iter().map(|name| Person {
            name,
            role: Role::Manager,
        }))
        .chain(AGENTS.iter().map(|name| Person {
            name,
            role: Role::Agent,
        }))
        .collect();
    let mut created = Vec::new();
    let mut names = HashMap::new();
    for person in &people {
        let email = email_of(person.name, person.role, &domain);
        let user = users::insert(
            conn,
            users::NewUser {
                org_id: org.id,
                email: &email,
                name: person.name,
                role: person.role,
                password_hash,
            },
        )?;
        names.insert(user.id, person.name);
        created.push(user);
        rows += 1;
    }
    let managers: Vec<&domain::User> = created.iter().filter(|u| u.role == Role::Manager).collect();
    let agents: Vec<&domain::User> = created.iter().filter(|u| u.role == Role::Agent).collect();

    let mut team_cast = Vec::new();
    for (name, members) in TEAMS {
        let team = teams::insert(conn, org.id, name)?;
        rows += 1;
        for member in members {
            teams::add_member(conn, &team, agents[*member])?;
            rows += 1;
        }
        team_cast.push((team.id, members.iter().map(|m| agents[*m].id).collect()));
    }

    let mut inbox_cast = Vec::new();
    let mut demo_inboxes = Vec::new();
    for spec in inbox_specs() {
        let owner = spec.owner.map(|index| agents[index]);
        let settings = InboxSettings {
            owner_id: owner.map(|user| user.id),
            ..spec.settings.clone()
        };
        let inbox = inboxes::insert(conn, org.id, spec.name, &settings)?;
        rows += 1;
        let inbox_managers: Vec<&domain::User> =
            spec.managers.iter().map(|index| managers[*index]).collect();
        let inbox_agents: Vec<&domain::User> = owner
            .into_iter()
            .chain(spec.agents.iter().map(|index| agents[*index]))
            .collect();
        for member in inbox_managers.iter().chain(&inbox_agents) {
            inboxes::add_member(conn, &inbox, member)?;
            rows += 1;
        }
        let mut responses = Vec::new();
        for (shortcut, title, body) in spec.canned {
            let response = canned::insert(conn, org.id, inbox.id, shortcut, title, body)?;
            responses.push((response.id, body.to_string()));
            rows += 1;
        }
        let members: Vec<UserId> = inbox_managers
            .iter()
            .chain(&inbox_agents)
            .map(|user| user.id)
            .collect();
        demo_inboxes.push(DemoInbox {
            id: inbox.id,
            name: spec.name.to_string(),
            kind: settings.kind,
            members,
            conversations: States::default(),
        });
        inbox_cast.push(InboxCast {
            id: inbox.id,
            owner: owner.map(|user| user.id),
            assignment_mode: settings.assignment_mode,
            auto_assign: settings.auto_assign,
            agents: inbox_agents.iter().map(|user| user.id).collect(),
            managers: inbox_managers.iter().map(|user| user.id).collect(),
            canned: responses,
        });
    }

    let mut channel_cast = Vec::new();
    for spec in &CHANNELS {
        let channel = channels::insert(
            conn,
            channels::NewChannel {
                org_id: org.id,
                inbox_id: inbox_cast[spec.inbox].id,
                channel_type: spec.channel_type,
                address: spec.address,
                name: spec.name,
                appended_message: spec.appended,
                outbound_url: None,
                inbound_secret: &random_token(32),
                provider: domain::ChannelProvider::Webhook,
                credentials: None,
                widget_token: None,
            },
        )?;
        rows += 1;
        channel_cast.push(ChannelCast {
            id: channel.id,
            inbox: spec.inbox,
            channel_type: spec.channel_type,
            appended: spec.appended,
            weight: spec.weight,
            rehomed: spec
                .rehomed
                .map(|(days, agent)| (now - chrono::Duration::days(days), agents[agent].id)),
        });
    }

    let mut tag_cast = Vec::new();
    for (name, color) in TAGS {
        let tag = tags::insert(conn, org.id, name, color)?;
        tag_cast.push((tag.id, name));
        rows += 1;
    }
    bulk::backdate_setup(conn, org.id, since - chrono::Duration::days(1))?;

    let users = created
        .iter()
        .map(|user| DemoUser {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
        })
        .collect();
    let cast = Cast {
        org: org.id,
        names,
        teams: team_cast,
        inboxes: inbox_cast,
        channels: channel_cast,
        tags: tag_cast,
    };
    Ok((cast, users, demo_inboxes, rows))
}

/// Colleagues talking: direct chats between pairs, and one chat per team.
fn chats(
    conn: &mut persistence::DbConnection,
    cast: &Cast,
    seed: u64,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(u64, u64, u64), StoreError> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a7);
    let people: Vec<UserId> = {
        let mut ids: Vec<UserId> = cast.names.keys().copied().collect();
        ids.sort();
        ids
    };
    let mut groups: Vec<(ChatRow, Vec<UserId>)> = Vec::new();
    // The admin with each manager, each manager with some agents, agents among themselves.
    for (a, b) in [
        (0, 1),
        (0, 2),
        (1, 3),
        (1, 8),
        (2, 5),
        (3, 4),
        (6, 7),
        (9, 10),
    ] {
        let (Some(&one), Some(&other)) = (people.get(a), people.get(b)) else {
            continue;
        };
        let (low, high) = (one.min(other), one.max(other));
        groups.push((
            ChatRow {
                org_id: cast.org,
                kind: "direct",
                name: None,
                direct_key: Some(format!("{}:{}", low.get(), high.get())),
                created_at: since,
            },
            vec![low, high],
        ));
    }
    for ((name, _), (_, members)) in TEAMS.iter().zip(&cast.teams) {
        groups.push((
            ChatRow {
                org_id: cast.org,
                kind: "team",
                name: Some(name.to_string()),
                direct_key: None,
                created_at: since,
            },
            members.clone(),
        ));
    }
    let span = (now - since).num_milliseconds();
    let (mut chats, mut members, mut lines) = (0, 0, 0);
    for (chat, group) in groups {
        let count = rng.random_range(12..60);
        let mut times: Vec<i64> = (0..count).map(|_| rng.random_range(0..span)).collect();
        times.sort_unstable();
        let said: Vec<(UserId, String, DateTime<Utc>)> = times
            .into_iter()
            .map(|at| {
                let author = group[rng.random_range(0..group.len())];
                let line = words::CHAT_LINES[rng.random_range(0..words::CHAT_LINES.len())];
                (
                    author,
                    line.to_string(),
                    since + chrono::Duration::milliseconds(at),
                )
            })
            .collect();
        bulk::insert_chat(conn, &chat, &group, &said)?;
        chats += 1;
        members += group.len() as u64;
        lines += said.len() as u64;
    }
    Ok((chats, members, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_become_mail_domains() {
        assert_eq!(slug("Demo Co"), "demo-co");
        assert_eq!(slug("  Ünïcode & Sons, Ltd. "), "n-code-sons-ltd");
        assert_eq!(slug("???"), "demo");
        assert!(
            validate::email(
                "e",
                &email_of("Priya Shah", Role::Manager, "demo-co.example")
            )
            .is_ok()
        );
    }
}
