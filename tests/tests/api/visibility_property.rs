//! The list query and `GET /v1/conversations/{id}` agree on visibility (API.md, Conversations
//! → Rules → Visibility), for generated users, inbox settings, teams and conversations.
//!
//! Each case builds a small world straight through the repositories (no HTTP: fast), then,
//! for every user, pages through the open, closed and archived tabs with a small page size
//! (following the cursor to the end, with random pins, sorts and message times so every
//! phase of the list is crossed) and asks the single-conversation check about every
//! conversation. The list must hold exactly the non-spam conversations the check admits, and
//! both must match the rules as API.md states them, worked out here independently.
//!
//! The realtime audience (what the fan-out, `resume` and `GET /v1/events` deliver) is held to
//! the same answer: for a page of events about every conversation, decided in one call, each
//! user receives an event exactly when `GET /v1/conversations/{id}` answers 200 for them and
//! they are active; a `conversation.assigned` also reaches its previous assignee; a
//! deactivated user receives nothing.

use std::collections::BTreeSet;

use api::error::ApiError;
use api::service::visibility;
use domain::conversation::{AuthorType, Direction, MessageKind};
use domain::{
    Actor, AgentVisibility, ChannelType, ConversationId, DomainError, InboxKind, InboxSettings,
    OrgId, Role, TeamId, UserId,
};
use persistence::repo::conversation_list::{self, Filter, Position, Sort, Tab};
use persistence::repo::conversations::NewConversation;
use persistence::repo::messages::NewMessage;
use persistence::repo::users::NewUser;
use persistence::repo::{
    channels, contacts, conversation_state, conversations, inboxes, messages, orgs, teams, users,
};
use persistence::{DbConnection, Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{Backend, TestDb};

const MAX_USERS: usize = 6;

// References between generated things are small numbers taken modulo the count (readable
// and shrinking towards the first one).

#[derive(Debug, Clone)]
struct InboxSpec {
    /// `Some(owner)`: a private inbox.
    private_owner: Option<usize>,
    agent_visibility: AgentVisibility,
    /// Membership of user `i` (only the first `users.len()` count).
    members: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Spam,
    /// Closed and archived (what `archive_into` leaves behind).
    Archived,
}

#[derive(Debug, Clone)]
struct ConversationSpec {
    inbox: usize,
    assignee: Option<usize>,
    team: Option<usize>,
    state: State,
    /// Seconds after the world's start of its last message; `None`: no message yet.
    message_at: Option<u8>,
}

#[derive(Debug, Clone)]
struct World {
    roles: Vec<Role>,
    inboxes: Vec<InboxSpec>,
    /// Per team, membership of user `i`.
    teams: Vec<Vec<bool>>,
    conversations: Vec<ConversationSpec>,
    /// (user, conversation) pins, in order.
    pins: Vec<(usize, usize)>,
    other_org: bool,
    sort: Sort,
    page_size: i64,
    /// A user deactivated after the world is built.
    deactivated: Option<usize>,
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![1 => Just(Role::Admin), 1 => Just(Role::Manager), 2 => Just(Role::Agent)]
}

fn inbox() -> impl Strategy<Value = InboxSpec> {
    (
        prop_oneof![3 => Just(None), 1 => (0..MAX_USERS).prop_map(Some)],
        prop_oneof![
            Just(AgentVisibility::All),
            Just(AgentVisibility::AssignedAndUnassigned)
        ],
        prop::collection::vec(any::<bool>(), MAX_USERS),
    )
        .prop_map(|(private_owner, agent_visibility, members)| InboxSpec {
            private_owner,
            agent_visibility,
            members,
        })
}

fn conversation() -> impl Strategy<Value = ConversationSpec> {
    (
        0..3usize,
        prop::option::of(0..MAX_USERS),
        prop::option::weighted(0.4, 0..2usize),
        prop_oneof![
            6 => Just(State::Open),
            3 => Just(State::Closed),
            1 => Just(State::Spam),
            1 => Just(State::Archived),
        ],
        prop::option::of(0u8..4),
    )
        .prop_map(
            |(inbox, assignee, team, state, message_at)| ConversationSpec {
                inbox,
                assignee,
                team,
                state,
                message_at,
            },
        )
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(role(), 4..=MAX_USERS),
        prop::collection::vec(inbox(), 2..=3),
        prop::collection::vec(prop::collection::vec(any::<bool>(), MAX_USERS), 1..=2),
        prop::collection::vec(conversation(), 6..=15),
        prop::collection::vec((0..MAX_USERS, 0..15usize), 0..6),
        any::<bool>(),
        prop_oneof![
            Just(Sort::RecentConversations),
            Just(Sort::OldestConversations),
            Just(Sort::RecentMessages),
            Just(Sort::OldestMessages),
        ],
        1i64..=4,
        prop::option::weighted(0.3, 0..MAX_USERS),
    )
        .prop_map(
            |(
                roles,
                inboxes,
                teams,
                conversations,
                pins,
                other_org,
                sort,
                page_size,
                deactivated,
            )| World {
                roles,
                inboxes,
                teams,
                conversations,
                pins,
                other_org,
                sort,
                page_size,
                deactivated,
            },
        )
}

/// What was built, in the world's terms.
struct Built {
    org: OrgId,
    users: Vec<Actor>,
    /// Per conversation of the world: its id, inbox (index), assignee and team ids.
    conversations: Vec<(ConversationId, usize, Option<UserId>, Option<TeamId>)>,
    team_ids: Vec<TeamId>,
    foreign: Vec<ConversationId>,
}

fn build(conn: &mut DbConnection, world: &World) -> Result<Built, StoreError> {
    let org = orgs::insert(conn, "Acme")?.id;
    let n = world.roles.len();
    let mut actors = Vec::new();
    let mut people = Vec::new();
    for (i, role) in world.roles.iter().enumerate() {
        let email = format!("user{i}@acme.test");
        let user = users::insert(
            conn,
            NewUser {
                org_id: org,
                email: &email,
                name: &format!("User {i}"),
                role: *role,
                password_hash: "not a real hash",
            },
        )?;
        actors.push(user.actor());
        people.push(user);
    }
    let mut team_ids = Vec::new();
    for (t, members) in world.teams.iter().enumerate() {
        let team = teams::insert(conn, org, &format!("Team {t}"))?;
        for (i, person) in people.iter().enumerate() {
            if members[i] {
                teams::add_member(conn, &team, person)?;
            }
        }
        team_ids.push(team.id);
    }
    let mut inbox_ids = Vec::new();
    let mut channel_ids = Vec::new();
    for (b, spec) in world.inboxes.iter().enumerate() {
        let settings = InboxSettings {
            kind: if spec.private_owner.is_some() {
                InboxKind::Private
            } else {
                InboxKind::Shared
            },
            owner_id: spec.private_owner.map(|owner| actors[owner % n].user_id),
            agent_visibility: spec.agent_visibility,
            ..InboxSettings::default()
        };
        let inbox = inboxes::insert(conn, org, &format!("Inbox {b}"), &settings)?;
        for (i, person) in people.iter().enumerate() {
            if spec.members[i] {
                inboxes::add_member(conn, &inbox, person)?;
            }
        }
        let address = format!("+1555000{b:04}");
        let channel = channels::insert(
            conn,
            channels::NewChannel {
                org_id: org,
                inbox_id: inbox.id,
                channel_type: ChannelType::Sms,
                address: &address,
                name: &format!("Line {b}"),
                appended_message: None,
                outbound_url: None,
                inbound_secret: "secret",
                provider: domain::ChannelProvider::Webhook,
                credentials: None,
                widget_token: None,
            },
        )?;
        inbox_ids.push(inbox.id);
        channel_ids.push(channel.id);
    }
    let start = persistence::now();
    let mut built = Vec::new();
    for (k, spec) in world.conversations.iter().enumerate() {
        let b = spec.inbox % inbox_ids.len();
        let (contact, _) =
            contacts::find_or_create_by_number(conn, org, &format!("+1555100{k:04}"))?;
        let mut conversation = conversations::insert(
            conn,
            NewConversation {
                org_id: org,
                inbox_id: inbox_ids[b],
                channel_id: channel_ids[b],
                contact_id: contact.id,
                archived: spec.state == State::Archived,
                customer_address: None,
            },
        )?;
        let id = conversation.id();
        let assignee = spec.assignee.map(|user| actors[user % n].user_id);
        let team = spec.team.map(|team| team_ids[team % team_ids.len()]);
        if assignee.is_some() || team.is_some() {
            conversations::set_assignment(conn, &mut conversation, assignee, team)?;
        }
        if let Some(seconds) = spec.message_at {
            let message = messages::insert(
                conn,
                NewMessage {
                    org_id: org,
                    conversation_id: id,
                    direction: Direction::Inbound,
                    kind: MessageKind::Message,
                    body: "hello",
                    author_type: AuthorType::Contact,
                    author_id: Some(contact.id.get()),
                    delivery_status: None,
                    external_id: None,
                    canned_response_id: None,
                },
            )?;
            let at = start + std::time::Duration::from_secs(u64::from(seconds));
            conversations::note_message(conn, &mut conversation, message.id, at, "hello")?;
        }
        match spec.state {
            State::Open => {}
            State::Closed | State::Archived => {
                conversations::close(conn, &mut conversation, None, false)?;
            }
            State::Spam => {
                conversations::close(conn, &mut conversation, None, true)?;
            }
        }
        built.push((id, b, assignee, team));
    }
    for (user, conversation) in &world.pins {
        let (id, ..) = built[conversation % built.len()];
        let locked = conversations::lock(conn, org, id)?.expect("the conversation just built");
        conversation_state::pin(conn, actors[user % n].user_id, &locked, None)?;
    }
    if let Some(user) = world.deactivated {
        let changes = users::UserChanges {
            active: Some(false),
            ..Default::default()
        };
        users::update(conn, org, actors[user % n].user_id, changes)?;
    }
    let mut foreign = Vec::new();
    if world.other_org {
        let other = orgs::insert(conn, "Globex")?.id;
        users::insert(
            conn,
            NewUser {
                org_id: other,
                email: "admin@globex.test",
                name: "Globex admin",
                role: Role::Admin,
                password_hash: "not a real hash",
            },
        )?;
        let inbox = inboxes::insert(conn, other, "Globex inbox", &InboxSettings::default())?;
        let channel = channels::insert(
            conn,
            channels::NewChannel {
                org_id: other,
                inbox_id: inbox.id,
                channel_type: ChannelType::Sms,
                address: "+15559990000",
                name: "Globex line",
                appended_message: None,
                outbound_url: None,
                inbound_secret: "secret",
                provider: domain::ChannelProvider::Webhook,
                credentials: None,
                widget_token: None,
            },
        )?;
        let (contact, _) = contacts::find_or_create_by_number(conn, other, "+15559991111")?;
        let conversation = conversations::insert(
            conn,
            NewConversation {
                org_id: other,
                inbox_id: inbox.id,
                channel_id: channel.id,
                contact_id: contact.id,
                archived: false,
                customer_address: None,
            },
        )?;
        foreign.push(conversation.id());
    }
    Ok(Built {
        org,
        users: actors,
        conversations: built,
        team_ids,
        foreign,
    })
}

/// API.md's visibility rule, stated directly over the generated world.
fn rule_admits(world: &World, built: &Built, user: usize, conversation: usize) -> bool {
    let n = world.roles.len();
    let me = built.users[user].user_id;
    let (_, b, assignee, team) = built.conversations[conversation];
    let inbox = &world.inboxes[b];
    if let Some(owner) = inbox.private_owner {
        return owner % n == user;
    }
    let member = inbox.members[user];
    match world.roles[user] {
        Role::Admin => true,
        _ if !member => false,
        Role::Manager => true,
        Role::Agent => match inbox.agent_visibility {
            AgentVisibility::All => true,
            AgentVisibility::AssignedAndUnassigned => {
                assignee.is_none()
                    || assignee == Some(me)
                    || team.is_some_and(|team| {
                        let t = built.team_ids.iter().position(|id| *id == team).unwrap();
                        world.teams[t][user]
                    })
            }
        },
    }
}

/// Every page of one tab, checking the pages as it goes.
fn list_tab(
    conn: &mut DbConnection,
    scope: &conversation_list::Scope,
    org: OrgId,
    tab: Tab,
    sort: Sort,
    limit: i64,
) -> Result<Vec<ConversationId>, TestCaseError> {
    let filter = Filter {
        org: Some(org),
        tab: Some(tab),
        ..Filter::default()
    };
    let mut ids = Vec::new();
    let mut after: Option<Position> = None;
    for _ in 0..100 {
        let page = conversation_list::list(conn, scope, &filter, sort, after, limit)
            .map_err(|error| TestCaseError::fail(format!("list failed: {error}")))?;
        prop_assert!(page.items.len() as i64 <= limit, "a page over its limit");
        for conversation in &page.items {
            prop_assert_eq!(conversation.org_id, org);
            prop_assert!(!conversation.spam, "spam {:?} listed", conversation.id);
        }
        ids.extend(page.items.iter().map(|conversation| conversation.id));
        match page.next {
            Some(next) => {
                prop_assert_eq!(
                    page.items.len() as i64,
                    limit,
                    "a short page that says more follow"
                );
                after = Some(next);
            }
            None => return Ok(ids),
        }
    }
    Err(TestCaseError::fail(format!(
        "{tab:?}: the cursor never ends (seen {ids:?})"
    )))
}

fn check(backend: Backend, world: &World) -> Result<(), TestCaseError> {
    let db = TestDb::create(backend, "visibility_property").expect("test database");
    let store = Store::open(db.url(), 1).expect("open store");
    store.migrate().expect("migrate");
    let built = store.write(|conn| build(conn, world)).expect("build world");
    let mut conn = store.conn().expect("connection");
    let conn: &mut DbConnection = &mut conn;
    check_audience(conn, world, &built)?;

    for (u, actor) in built.users.iter().enumerate() {
        let scope = visibility::scope(conn, actor)
            .map_err(|error| TestCaseError::fail(format!("scope failed: {error:?}")))?;

        let mut listed = BTreeSet::new();
        for tab in [Tab::Open, Tab::Closed, Tab::Archived] {
            let ids = list_tab(conn, &scope, built.org, tab, world.sort, world.page_size)?;
            for id in ids {
                prop_assert!(
                    listed.insert(id),
                    "user {u}: {id:?} listed twice (tab {tab:?})"
                );
            }
        }

        let mut admitted = BTreeSet::new();
        for (k, (id, ..)) in built.conversations.iter().enumerate() {
            let answer = visibility::visible(conn, actor, *id);
            let spec = &world.conversations[k];
            let rule = rule_admits(world, &built, u, k);
            match &answer {
                Ok(found) => prop_assert_eq!(found.conversation.id, *id),
                Err(ApiError::Domain(DomainError::NotFound)) => {}
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "visible({id:?}) failed: {error:?}"
                    )));
                }
            }
            prop_assert_eq!(
                answer.is_ok(),
                rule,
                "user {} ({:?}): GET of conversation {} ({:?}) disagrees with API.md",
                u,
                world.roles[u],
                k,
                spec
            );
            if answer.is_ok() && spec.state != State::Spam {
                admitted.insert(*id);
            }
            if spec.state == State::Spam {
                prop_assert!(!listed.contains(id), "user {u}: spam {id:?} listed");
            }
            // Sanity against the rules, independent of the helpers above.
            let b = built.conversations[k].1;
            let inbox = &world.inboxes[b];
            if spec.state != State::Spam {
                if inbox.private_owner.is_none() && world.roles[u] == Role::Admin {
                    prop_assert!(listed.contains(id), "admin {u} misses {id:?}");
                }
                if let Some(owner) = inbox.private_owner {
                    prop_assert_eq!(
                        listed.contains(id),
                        owner % world.roles.len() == u,
                        "user {}: private conversation {:?}",
                        u,
                        id
                    );
                }
            }
        }

        for id in &built.foreign {
            prop_assert!(
                visibility::visible(conn, actor, *id).is_err(),
                "user {u} sees the other organization's {id:?}"
            );
            prop_assert!(!listed.contains(id));
        }

        prop_assert_eq!(
            &listed,
            &admitted,
            "user {} ({:?}): the list and GET disagree (scope {:?})",
            u,
            world.roles[u],
            scope
        );
    }
    Ok(())
}

/// The realtime audience agrees with `GET /v1/conversations/{id}` for every user: one page
/// of events (each conversation as `conversation.updated` carrying its facts, as
/// `message.created` decided on the row, and as `conversation.assigned` from a previous
/// assignee) is decided in one call.
fn check_audience(
    conn: &mut DbConnection,
    world: &World,
    built: &Built,
) -> Result<(), TestCaseError> {
    let n = world.roles.len();
    let everyone: Vec<i64> = built
        .users
        .iter()
        .map(|actor| actor.user_id.get())
        .collect();
    let active = |u: usize| world.deactivated.map(|d| d % n) != Some(u);
    let mut page = Vec::new();
    let mut expected = Vec::new();
    for (k, (id, ..)) in built.conversations.iter().enumerate() {
        let row = conversations::get(conn, built.org, *id)
            .map_err(|error| TestCaseError::fail(format!("get: {error}")))?
            .expect("the conversation just built");
        let facts = serde_json::json!({
            "id": id.get(),
            "inbox_id": row.inbox_id.get(),
            "assignee_id": row.assignee_id.map(UserId::get),
            "team_id": row.team_id.map(TeamId::get),
        });
        let mut admitted = std::collections::BTreeSet::new();
        for (u, actor) in built.users.iter().enumerate() {
            if active(u) && visibility::visible(conn, actor, *id).is_ok() {
                admitted.insert(actor.user_id.get());
            }
        }
        let previous = k % n;
        let mut with_previous = admitted.clone();
        if active(previous) {
            with_previous.insert(built.users[previous].user_id.get());
        }
        let event = |event_type, payload: serde_json::Value| {
            std::sync::Arc::new(api::live::stored_to_bus(
                persistence::repo::events::StoredEvent {
                    org_id: built.org,
                    seq: 1,
                    event_type,
                    inbox_id: Some(row.inbox_id),
                    conversation_id: Some(*id),
                    payload: payload.to_string(),
                    created_at: persistence::now(),
                },
            ))
        };
        page.push(event(
            domain::EventType::ConversationUpdated,
            serde_json::json!({"conversation": facts}),
        ));
        expected.push(admitted.clone());
        page.push(event(
            domain::EventType::MessageCreated,
            serde_json::json!({"conversation_id": id.get(), "message": {}}),
        ));
        expected.push(admitted);
        page.push(event(
            domain::EventType::ConversationAssigned,
            serde_json::json!({
                "conversation": facts,
                "assignee_id": row.assignee_id.map(UserId::get),
                "previous_assignee_id": built.users[previous].user_id.get(),
            }),
        ));
        expected.push(with_previous);
    }
    let decided = api::live::audience::decide(conn, built.org, &page, &everyone)
        .map_err(|error| TestCaseError::fail(format!("decide: {error:?}")))?;
    prop_assert_eq!(decided.len(), page.len());
    for ((event, recipients), expected) in page.iter().zip(decided).zip(expected) {
        let recipients: std::collections::BTreeSet<i64> = recipients.into_iter().collect();
        prop_assert_eq!(
            &recipients,
            &expected,
            "{} about conversation {:?}: the audience disagrees with GET",
            event.event_type.as_str(),
            event.conversation_id
        );
    }
    Ok(())
}

fn run(backend: Backend, cases: u32, name: &str) {
    // Skipped, and said so, when PostgreSQL cannot be reached outside CI.
    if TestDb::create(backend, name).is_none() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // A case is a fresh database: bound the shrinking of a failure.
        max_shrink_iters: 512,
        max_shrink_time: 90_000,
        ..Config::default()
    });
    if let Err(error) = runner.run(&world(), |world| check(backend, &world)) {
        panic!("{error}");
    }
}

#[test]
fn list_and_get_agree_on_visibility_sqlite() {
    run(
        Backend::Sqlite,
        64,
        "visibility_property::list_and_get_agree_on_visibility",
    );
}

#[test]
fn list_and_get_agree_on_visibility_postgres() {
    run(
        Backend::Postgres,
        8,
        "visibility_property::list_and_get_agree_on_visibility",
    );
}
